#include "ops/admin/migrate.h"

#include <algorithm>
#include <map>
#include <ostream>
#include <pqxx/pqxx>
#include <string>

#include "storage/migrations.h"

namespace popgate::admin {
namespace {

// pg_advisory_xact_lock key shared by every popgate migrator ("popgate1").
constexpr int64_t kMigrateLockKey = 0x706f706761746531;

constexpr const char* kBootstrapSql =
    "CREATE SCHEMA IF NOT EXISTS popgate;"
    "CREATE TABLE IF NOT EXISTS popgate.schema_migrations ("
    "  version     int PRIMARY KEY,"
    "  name        text NOT NULL,"
    "  applied_at  timestamptz NOT NULL DEFAULT now())";

using Applied = std::map<int, std::string>;  // version -> name

Applied read_applied(pqxx::transaction_base& tx) {
  Applied applied;
  const auto exists = tx.exec("SELECT to_regclass('popgate.schema_migrations') IS NOT NULL");
  if (!exists[0][0].as<bool>()) return applied;
  for (const auto& row : tx.exec("SELECT version, name FROM popgate.schema_migrations")) {
    applied.emplace(row[0].as<int>(), row[1].as<std::string>());
  }
  return applied;
}

// Throws UserError when the database holds migrations this build does not
// know, or knows under another name.
void refuse_foreign(const Applied& applied) {
  const int build = storage::schema_version();
  if (!applied.empty() && applied.rbegin()->first > build) {
    throw UserError("database schema is at version " + std::to_string(applied.rbegin()->first) +
                    ", ahead of this build (version " + std::to_string(build) +
                    "); refusing to touch it: use a newer popgate-admin");
  }
  for (const auto& m : storage::migrations()) {
    const auto it = applied.find(m.version);
    if (it != applied.end() && it->second != m.name) {
      throw UserError("database migration " + std::to_string(m.version) + " is '" + it->second +
                      "', but this build calls it '" + std::string(m.name) +
                      "'; refusing to touch it");
    }
  }
}

// Applies `m` unless it is already recorded. True when it applied it.
bool apply_one(pqxx::connection_base& db, const storage::Migration& m) {
  pqxx::work tx(db, "migrate");
  tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrateLockKey);
  tx.exec("SET LOCAL client_min_messages = warning");  // no "already exists, skipping"
  tx.exec(kBootstrapSql);
  const Applied applied = read_applied(tx);
  refuse_foreign(applied);
  if (applied.contains(m.version)) return false;
  tx.exec(std::string(m.sql));
  tx.exec_params("INSERT INTO popgate.schema_migrations (version, name) VALUES ($1, $2)", m.version,
                 std::string(m.name));
  tx.commit();
  return true;
}

int pending_count(const Applied& applied) {
  const auto all = storage::migrations();
  return int(std::count_if(all.begin(), all.end(),
                           [&](const auto& m) { return !applied.contains(m.version); }));
}

}  // namespace

int migrate(Context& ctx) {
  int applied_now = 0;
  for (const auto& m : storage::migrations()) {
    if (!apply_one(ctx.db(), m)) continue;
    ctx.out() << "applied " << m.name << " (version " << m.version << ")\n";
    ++applied_now;
  }
  if (applied_now == 0) {
    ctx.out() << "schema is up to date (version " << storage::schema_version() << ")\n";
  }
  return kExitOk;
}

int migrate_check(Context& ctx) {
  pqxx::read_transaction tx(ctx.db(), "migrate_check");
  const Applied applied = read_applied(tx);
  refuse_foreign(applied);
  const int behind = pending_count(applied);
  const int build = storage::schema_version();
  if (behind == 0) {
    ctx.out() << "schema is up to date (version " << build << ")\n";
    return kExitOk;
  }
  ctx.out() << "schema is behind by " << behind << " migration(s) (this build needs version "
            << build << "); run: popgate-admin migrate\n";
  for (const auto& m : storage::migrations()) {
    if (!applied.contains(m.version)) ctx.out() << "  pending: " << m.name << "\n";
  }
  return kExitUser;
}

}  // namespace popgate::admin
