// `popgate-admin migrate [--check]`: brings the database schema to the
// version compiled into this build (storage::migrations()), or only reports.
//
// Applied migrations are recorded in popgate.schema_migrations. Every
// migration runs in its own transaction, which first takes a transaction-level
// advisory lock, so concurrent migrators serialise and each migration is
// applied exactly once. A database that is ahead of this build (it has
// versions this build does not know) or disagrees about a migration's name
// is refused: that is someone else's schema.
#pragma once

#include "ops/admin/context.h"

namespace popgate::admin {

// Applies what is missing; prints each migration applied. kExitOk, or throws.
[[nodiscard]] int migrate(Context& ctx);
// Reports only: kExitOk when up to date, kExitUser when behind or ahead.
[[nodiscard]] int migrate_check(Context& ctx);

}  // namespace popgate::admin
