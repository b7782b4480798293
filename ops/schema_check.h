// The gateway's startup check that the database schema is the one this build
// was made for (storage::schema_version()). Runs once, before the shards
// start; it blocks (libpqxx) and that is fine there.
// Must not know: how migrations are applied (popgate-admin migrate does it).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace popgate::ops {

// nullopt when the database at `dsn` is reachable and exactly at
// storage::schema_version(); otherwise a one-line reason naming the problem:
// unreachable, behind by N (run `popgate-admin migrate`), or ahead. Never
// throws. A reason starts with "database unreachable" exactly when no
// connection could be made (callers may wait and retry those); schema
// reasons say "behind" or "ahead".
[[nodiscard]] std::optional<std::string> check_schema(const std::string& dsn);

// The pure comparison behind check_schema: `applied` versions (any order)
// against this build's migrations.
[[nodiscard]] std::optional<std::string> compare_schema(const std::vector<int>& applied);

}  // namespace popgate::ops
