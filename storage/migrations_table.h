// The embedded migration table, defined by the source that
// embed_migrations.cmake generates in the build tree. Internal to storage/:
// everyone else goes through migrations.h.
#pragma once

#include <cstddef>

#include "storage/migrations.h"

namespace popgate::storage::generated {

extern const Migration kMigrations[];  // in version order, 1..kMigrationCount
extern const std::size_t kMigrationCount;

}  // namespace popgate::storage::generated
