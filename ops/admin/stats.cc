#include "ops/admin/stats.h"

#include <cstdio>
#include <ostream>
#include <pqxx/pqxx>

#include "ops/admin/lookup.h"
#include "ops/admin/table.h"
#include "ops/admin/units.h"

namespace popgate::admin {
namespace {

std::string with_size(const pqxx::field& bytes) {
  const auto n = bytes.as<uint64_t>();
  return std::to_string(n) + " (" + format_bytes(n) + ")";
}

std::string or_word(const pqxx::field& f, const char* word) {
  return f.is_null() ? std::string(word) : std::string(f.c_str());
}

// "1234 (1.2 KiB, 12.0% of the quota)" or without the share when unlimited.
std::string usage(const pqxx::field& used, const pqxx::field& quota) {
  std::string text = with_size(used);
  if (quota.is_null() || quota.as<int64_t>() == 0) return text;
  const double share = 100.0 * double(used.as<int64_t>()) / double(quota.as<int64_t>());
  char percent[32];
  std::snprintf(percent, sizeof percent, "%.1f%%", share);
  text.insert(text.size() - 1, std::string(", ") + percent + " of the quota");
  return text;
}

std::string online_text(pqxx::transaction_base& tx, const UserRef& user) {
  const auto rows = tx.exec_params(
      "SELECT coalesce(client_address, '-'), coalesce(listener, '-'), holder_instance, " +
          sql_utc("acquired_at") +
          " FROM popgate.maildrop_locks WHERE tenant_id = $1 AND user_id = $2"
          " AND lease_expires_at > now()",
      user.tenant_id, user.user_id);
  if (rows.empty()) return "no";
  const auto& r = rows[0];
  return std::string("yes, from ") + r[0].c_str() + " on " + r[1].c_str() + " via " + r[2].c_str() +
         " since " + r[3].c_str();
}

}  // namespace

int maildrop_stats(Context& ctx, std::string_view text) {
  const Address address = require_address(text);
  pqxx::read_transaction tx(ctx.db(), "maildrop_stats");
  const UserRef user = find_user(tx, address);
  const auto m = tx.exec_params1(
      "SELECT count(*) FILTER (WHERE NOT hidden),"
      " coalesce(sum(size_bytes) FILTER (WHERE NOT hidden), 0),"
      " count(*) FILTER (WHERE NOT hidden AND retrieved_at IS NOT NULL),"
      " count(*) FILTER (WHERE NOT hidden AND retrieved_at IS NULL),"
      " count(*) FILTER (WHERE hidden), coalesce(sum(size_bytes) FILTER (WHERE hidden), 0), " +
          sql_utc("min(received_at) FILTER (WHERE NOT hidden)") + ", " +
          sql_utc("max(received_at) FILTER (WHERE NOT hidden)") +
          " FROM popgate.messages WHERE tenant_id = $1 AND user_id = $2",
      user.tenant_id, user.user_id);
  const auto u = tx.exec_params1(
      "SELECT quota_bytes, used_bytes FROM popgate.users WHERE tenant_id = $1 AND user_id = $2",
      user.tenant_id, user.user_id);
  print_table(ctx.out(), {{"login", user.login},
                          {"messages", m[0].c_str()},
                          {"bytes", with_size(m[1])},
                          {"quota", u[0].is_null() ? "none" : with_size(u[0])},
                          {"used", usage(u[1], u[0])},
                          {"retrieved", m[2].c_str()},
                          {"unretrieved", m[3].c_str()},
                          {"hidden", std::string(m[4].c_str()) + " (" +
                                         format_bytes(m[5].as<uint64_t>()) + ")"},
                          {"oldest", or_word(m[6], "-")},
                          {"newest", or_word(m[7], "-")},
                          {"online", online_text(tx, user)}});
  return kExitOk;
}

int tenant_stats(Context& ctx, const std::optional<std::string>& domain_text) {
  const std::string domain = domain_text ? require_domain(*domain_text) : std::string();
  pqxx::read_transaction tx(ctx.db(), "tenant_stats");
  if (domain_text) (void)find_tenant(tx, domain);
  const auto rows = tx.exec_params(
      "SELECT t.domain,"
      " (SELECT count(*) FROM popgate.users u WHERE u.tenant_id = t.tenant_id),"
      " (SELECT count(*) FROM popgate.users u WHERE u.tenant_id = t.tenant_id AND NOT u.enabled),"
      " (SELECT count(*) FROM popgate.maildrop_locks l WHERE l.tenant_id = t.tenant_id"
      "  AND l.lease_expires_at > now()),"
      " m.visible, m.visible_bytes, m.retrieved, m.hidden, m.hidden_bytes, " +
          sql_utc("m.oldest") +
          " FROM popgate.tenants t CROSS JOIN LATERAL ("
          "SELECT count(*) FILTER (WHERE NOT hidden) AS visible,"
          " coalesce(sum(size_bytes) FILTER (WHERE NOT hidden), 0) AS visible_bytes,"
          " count(*) FILTER (WHERE NOT hidden AND retrieved_at IS NOT NULL) AS retrieved,"
          " count(*) FILTER (WHERE hidden) AS hidden,"
          " coalesce(sum(size_bytes) FILTER (WHERE hidden), 0) AS hidden_bytes,"
          " min(received_at) FILTER (WHERE NOT hidden) AS oldest"
          " FROM popgate.messages x WHERE x.tenant_id = t.tenant_id) m "
          "WHERE $1 = '' OR t.domain = $1 ORDER BY t.domain",
      domain);
  std::vector<TableRow> table{{"DOMAIN", "USERS", "DISABLED", "ONLINE", "MESSAGES", "BYTES",
                               "RETRIEVED", "HIDDEN", "HIDDEN_BYTES", "OLDEST"}};
  for (const auto& r : rows) {
    TableRow row;
    for (int c = 0; c < 9; ++c) row.push_back(r[c].c_str());
    row.push_back(or_word(r[9], "-"));
    table.push_back(std::move(row));
  }
  print_table(ctx.out(), table);
  return kExitOk;
}

}  // namespace popgate::admin
