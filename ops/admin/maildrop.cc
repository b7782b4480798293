#include "ops/admin/maildrop.h"

#include <ostream>
#include <pqxx/pqxx>

#include "ops/admin/lookup.h"
#include "ops/admin/table.h"

namespace popgate::admin {

int maildrop_list(Context& ctx, std::string_view text) {
  const Address address = require_address(text);
  pqxx::read_transaction tx(ctx.db(), "maildrop_list");
  const UserRef user = find_user(tx, address);
  const auto rows = tx.exec_params(
      "SELECT message_id, size_bytes, uidl,"
      " to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
      "FROM popgate.messages WHERE tenant_id = $1 AND user_id = $2 ORDER BY message_id",
      user.tenant_id, user.user_id);
  std::vector<TableRow> table{{"MSN", "MESSAGE_ID", "SIZE", "UIDL", "RECEIVED_AT"}};
  uint64_t total_bytes = 0;
  for (size_t index = 0; index < rows.size(); ++index) {
    const auto& row = rows[pqxx::result::size_type(index)];
    const size_t msn = index + 1;
    table.push_back(
        {std::to_string(msn), row[0].c_str(), row[1].c_str(), row[2].c_str(), row[3].c_str()});
    total_bytes += row[1].as<uint64_t>();
  }
  print_table(ctx.out(), table);
  ctx.out() << "total: " << rows.size() << " messages, " << total_bytes << " bytes\n";
  return kExitOk;
}

}  // namespace popgate::admin
