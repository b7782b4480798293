#include "storage/migrations.h"

#include "storage/migrations_table.h"

namespace popgate::storage {

// The generator has already refused gaps, duplicates and an empty list, so
// versions here are exactly 1..kMigrationCount.
std::span<const Migration> migrations() noexcept {
  return {generated::kMigrations, generated::kMigrationCount};
}

int schema_version() noexcept {
  return generated::kMigrations[generated::kMigrationCount - 1].version;
}

}  // namespace popgate::storage
