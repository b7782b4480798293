// Plain-text tables for the list commands: a header row, then data rows,
// columns left-aligned and separated by two spaces. Easy to read and to
// split on whitespace in scripts.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace popgate::admin {

using TableRow = std::vector<std::string>;

void print_table(std::ostream& out, const std::vector<TableRow>& rows);

// SQL that renders the timestamptz `column` as "2026-11-27T07:04:55Z" (UTC),
// the one way the admin commands print times.
[[nodiscard]] std::string sql_utc(std::string_view column);

}  // namespace popgate::admin
