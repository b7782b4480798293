// Plain-text tables for the list commands: a header row, then data rows,
// columns left-aligned and separated by two spaces. Easy to read and to
// split on whitespace in scripts.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace popgate::admin {

using TableRow = std::vector<std::string>;

void print_table(std::ostream& out, const std::vector<TableRow>& rows);

}  // namespace popgate::admin
