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

}  // namespace popgate::admin
