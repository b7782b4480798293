// The schema, as an ordered list of versioned migrations compiled into the
// binaries (from storage/migrations/NNNN_name.sql), so containers need no
// files at run time. popgate-admin applies them; popgate refuses to start
// unless the database is at kSchemaVersion.
// Must not know: how they are applied (ops/ does that with libpqxx).
#pragma once

#include <span>
#include <string_view>

namespace popgate::storage {

struct Migration {
  int version;            // 1, 2, 3 ... without gaps
  std::string_view name;  // file stem, e.g. "0001_init"
  std::string_view sql;   // whole file; runs inside one transaction
};

// In version order.
[[nodiscard]] std::span<const Migration> migrations() noexcept;
// The version a database must be at for this build: the last migration's.
[[nodiscard]] int schema_version() noexcept;

}  // namespace popgate::storage
