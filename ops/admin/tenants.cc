#include "ops/admin/tenants.h"

#include <ostream>
#include <pqxx/pqxx>

#include "ops/admin/lookup.h"
#include "ops/admin/table.h"

namespace popgate::admin {

int tenant_add(Context& ctx, std::string_view text) {
  const std::string domain = require_domain(text);
  pqxx::work tx(ctx.db(), "tenant_add");
  const auto rows = tx.exec_params(
      "INSERT INTO popgate.tenants (domain) VALUES ($1) "
      "ON CONFLICT (domain) DO NOTHING RETURNING tenant_id",
      domain);
  if (rows.empty()) throw UserError("tenant '" + domain + "' already exists");
  tx.commit();
  ctx.out() << "added tenant " << domain << "\n";
  return kExitOk;
}

int tenant_list(Context& ctx) {
  pqxx::read_transaction tx(ctx.db(), "tenant_list");
  const auto rows = tx.exec(
      "SELECT t.domain,"
      " (SELECT count(*) FROM popgate.users u WHERE u.tenant_id = t.tenant_id),"
      " count(m.message_id), coalesce(sum(m.size_bytes), 0) "
      "FROM popgate.tenants t "
      "LEFT JOIN popgate.messages m ON m.tenant_id = t.tenant_id "
      "GROUP BY t.tenant_id, t.domain ORDER BY t.domain");
  std::vector<TableRow> table{{"DOMAIN", "USERS", "MESSAGES", "BYTES"}};
  for (const auto& row : rows) {
    table.push_back({row[0].c_str(), row[1].c_str(), row[2].c_str(), row[3].c_str()});
  }
  print_table(ctx.out(), table);
  return kExitOk;
}

int tenant_del(Context& ctx, std::string_view text, bool force) {
  const std::string domain = require_domain(text);
  pqxx::work tx(ctx.db(), "tenant_del");
  const int64_t tenant_id = find_tenant(tx, domain);
  // Lock the tenant row first, so no user is added while we count.
  tx.exec_params("SELECT 1 FROM popgate.tenants WHERE tenant_id = $1 FOR UPDATE", tenant_id);
  const auto held = tx.exec_params1(
      "SELECT (SELECT count(*) FROM popgate.users WHERE tenant_id = $1),"
      " (SELECT count(*) FROM popgate.messages WHERE tenant_id = $1),"
      " (SELECT coalesce(sum(size_bytes), 0) FROM popgate.messages WHERE tenant_id = $1),"
      " (SELECT count(*) FROM popgate.maildrop_locks WHERE tenant_id = $1"
      "  AND lease_expires_at > now())",
      tenant_id);
  const auto users = held[0].as<int64_t>();
  if (users > 0 && !force) {
    throw UserError("tenant '" + domain + "' still has " + std::to_string(users) + " user(s) and " +
                    held[1].c_str() +
                    " message(s); delete them first, or pass --force to delete them with it");
  }
  tx.exec_params("DELETE FROM popgate.tenants WHERE tenant_id = $1", tenant_id);
  tx.commit();
  ctx.out() << "deleted tenant " << domain << " (" << users << " users, " << held[1].c_str()
            << " messages, " << held[2].c_str() << " bytes)\n";
  if (held[3].as<int64_t>() > 0) {
    ctx.out() << "note: " << held[3].c_str()
              << " session(s) were online; they can no longer read or delete anything\n";
  }
  return kExitOk;
}

}  // namespace popgate::admin
