#include "ops/admin/table.h"

#include <algorithm>
#include <ostream>

namespace popgate::admin {

void print_table(std::ostream& out, const std::vector<TableRow>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      out << row[c];
      if (c + 1 < row.size()) out << std::string(widths[c] - row[c].size() + 2, ' ');
    }
    out << '\n';
  }
}

std::string sql_utc(std::string_view column) {
  return "to_char((" + std::string(column) +
         ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

}  // namespace popgate::admin
