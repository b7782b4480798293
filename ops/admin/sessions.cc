#include "ops/admin/sessions.h"

#include <chrono>
#include <ostream>
#include <pqxx/pqxx>
#include <thread>

#include "ops/admin/lookup.h"
#include "ops/admin/table.h"

namespace popgate::admin {
namespace {

constexpr auto kWaitPoll = std::chrono::milliseconds(200);

struct Holder {
  std::string instance;
  int64_t session = 0;
};

std::string or_dash(const pqxx::field& f) {
  return f.is_null() || f.size() == 0 ? "-" : std::string(f.c_str());
}

// True while the lock row of `holder` still has a live lease.
bool still_online(Context& ctx, const UserRef& user, const Holder& holder) {
  pqxx::read_transaction tx(ctx.db(), "kick_wait");
  const auto row = tx.exec_params1(
      "SELECT count(*) FROM popgate.maildrop_locks WHERE tenant_id = $1 AND user_id = $2"
      " AND holder_instance = $3 AND holder_session = $4 AND lease_expires_at > now()",
      user.tenant_id, user.user_id, holder.instance, holder.session);
  return row[0].as<int64_t>() > 0;
}

int wait_until_gone(Context& ctx, const UserRef& user, const Holder& holder, int wait_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
  while (still_online(ctx, user, holder)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ctx.out() << "the session of " << user.login << " is still online after " << wait_s
                << " s (is instance " << holder.instance << " running and renewing leases?)\n";
      return kExitUser;
    }
    std::this_thread::sleep_for(kWaitPoll);
  }
  ctx.out() << "the session of " << user.login << " has ended\n";
  return kExitOk;
}

}  // namespace

int who(Context& ctx, const std::optional<std::string>& domain_text) {
  const std::string domain = domain_text ? require_domain(*domain_text) : std::string();
  pqxx::read_transaction tx(ctx.db(), "who");
  if (domain_text) (void)find_tenant(tx, domain);
  const auto rows = tx.exec_params(
      "SELECT u.local_part || '@' || t.domain, l.client_address, l.listener, l.holder_instance, " +
          sql_utc("l.acquired_at") +
          ", ceil(extract(epoch FROM l.lease_expires_at - now()))::int8,"
          " l.kick_requested_at IS NOT NULL "
          "FROM popgate.maildrop_locks l JOIN popgate.users u USING (tenant_id, user_id)"
          " JOIN popgate.tenants t USING (tenant_id) "
          "WHERE l.lease_expires_at > now() AND ($1 = '' OR t.domain = $1) "
          "ORDER BY t.domain, u.local_part",
      domain);
  std::vector<TableRow> table{
      {"LOGIN", "CLIENT", "LISTENER", "INSTANCE", "SINCE", "LEASE_LEFT", "KICK"}};
  for (const auto& row : rows) {
    table.push_back({row[0].c_str(), or_dash(row[1]), or_dash(row[2]), row[3].c_str(),
                     row[4].c_str(), std::string(row[5].c_str()) + "s",
                     row[6].as<bool>() ? "requested" : "-"});
  }
  print_table(ctx.out(), table);
  ctx.out() << rows.size() << " session(s) online\n";
  return kExitOk;
}

int kick(Context& ctx, std::string_view text, std::optional<int> wait_s) {
  const Address address = require_address(text);
  if (wait_s && *wait_s < 0) throw UserError("--wait must be 0 or more seconds");
  pqxx::work tx(ctx.db(), "kick");
  const UserRef user = find_user(tx, address);
  const auto rows = tx.exec_params(
      "UPDATE popgate.maildrop_locks SET kick_requested_at = coalesce(kick_requested_at, now())"
      " WHERE tenant_id = $1 AND user_id = $2 AND lease_expires_at > now()"
      " RETURNING holder_instance, holder_session, client_address, listener",
      user.tenant_id, user.user_id);
  tx.commit();
  if (rows.empty()) {
    ctx.out() << "no session of " << user.login << " is online\n";
    return kExitOk;
  }
  const Holder holder{rows[0][0].c_str(), rows[0][1].as<int64_t>()};
  ctx.out() << "asked instance " << holder.instance << " to end the session of " << user.login
            << " from " << or_dash(rows[0][2]) << " on listener " << or_dash(rows[0][3])
            << "; it ends at the instance's next lease renewal (a third of "
               "database.lock_lease_ms, about 10 s by default)\n";
  if (!wait_s) return kExitOk;
  return wait_until_gone(ctx, user, holder, *wait_s);
}

}  // namespace popgate::admin
