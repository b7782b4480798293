#include "ops/schema_check.h"

#include <algorithm>
#include <pqxx/pqxx>

#include "storage/migrations.h"

namespace popgate::ops {
namespace {

// libpq messages span lines ("...failed: Connection refused\n\tIs the
// server running..."); logs want one.
std::string one_line(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (!space) {
      out += c;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<int> read_applied(const std::string& dsn) {
  pqxx::connection db(dsn);
  pqxx::read_transaction tx(db, "schema_check");
  std::vector<int> applied;
  const auto exists = tx.exec("SELECT to_regclass('popgate.schema_migrations') IS NOT NULL");
  if (!exists[0][0].as<bool>()) return applied;
  for (const auto& row : tx.exec("SELECT version FROM popgate.schema_migrations")) {
    applied.push_back(row[0].as<int>());
  }
  return applied;
}

}  // namespace

std::optional<std::string> compare_schema(const std::vector<int>& applied) {
  const int build = storage::schema_version();
  const int newest = applied.empty() ? 0 : *std::max_element(applied.begin(), applied.end());
  if (newest > build) {
    return "database schema is at version " + std::to_string(newest) +
           ", ahead of this build (version " + std::to_string(build) +
           "): run a popgate that matches it";
  }
  const auto all = storage::migrations();
  const auto behind = std::count_if(all.begin(), all.end(), [&](const auto& m) {
    return std::find(applied.begin(), applied.end(), m.version) == applied.end();
  });
  if (behind == 0) return std::nullopt;
  return "database schema is behind by " + std::to_string(behind) +
         " migration(s) (this build needs version " + std::to_string(build) +
         "): run `popgate-admin migrate`";
}

std::optional<std::string> check_schema(const std::string& dsn) {
  try {
    return compare_schema(read_applied(dsn));
  } catch (const pqxx::broken_connection& e) {
    return "database unreachable: " + one_line(e.what());
  } catch (const std::exception& e) {
    return "cannot read the schema version: " + one_line(e.what());
  }
}

}  // namespace popgate::ops
