#include "ops/admin/user_state.h"

#include <ostream>
#include <pqxx/pqxx>
#include <vector>

#include "ops/admin/lookup.h"
#include "ops/admin/table.h"
#include "ops/admin/units.h"

namespace popgate::admin {
namespace {

std::string bytes_text(int64_t bytes) {
  return std::to_string(bytes) + " (" + format_bytes(uint64_t(bytes)) + ")";
}

// "{SHA512-CRYPT}" from "{SHA512-CRYPT}$6$..."; "-" if it has no scheme.
std::string scheme_of(const std::string& hash) {
  const size_t close = hash.find('}');
  return hash.starts_with('{') && close != std::string::npos ? hash.substr(0, close + 1) : "-";
}

// The mechanisms the user's credentials allow, narrowed by the tenant's list.
std::string mechanisms_text(bool scram, bool apop, const std::string& tenant_list) {
  std::vector<std::string> allowed = {"USER", "PLAIN", "LOGIN"};
  if (scram) allowed.push_back("SCRAM-SHA-256");
  if (apop) allowed.push_back("APOP");
  std::string out;
  for (const auto& m : allowed) {
    const bool tenant_allows =
        tenant_list.empty() || (" " + tenant_list + " ").find(" " + m + " ") != std::string::npos;
    if (tenant_allows) out += (out.empty() ? "" : " ") + m;
  }
  return out.empty() ? "none (the tenant allows none of them)" : out;
}

std::string online_text(pqxx::transaction_base& tx, const UserRef& user) {
  const auto rows = tx.exec_params(
      "SELECT coalesce(client_address, '-'), holder_instance, kick_requested_at IS NOT NULL"
      " FROM popgate.maildrop_locks WHERE tenant_id = $1 AND user_id = $2"
      " AND lease_expires_at > now()",
      user.tenant_id, user.user_id);
  if (rows.empty()) return "no";
  std::string text = std::string("yes, from ") + rows[0][0].c_str() + " via " + rows[0][1].c_str();
  if (rows[0][2].as<bool>()) text += " (kick requested)";
  return text;
}

}  // namespace

int user_quota(Context& ctx, std::string_view text, std::string_view quota_text) {
  const Address address = require_address(text);
  std::optional<int64_t> quota;
  if (lowercase_ascii(quota_text) != "none") {
    quota = parse_byte_size(quota_text);
    if (!quota) {
      throw UserError("quota '" + std::string(quota_text) +
                      "' must be a number of bytes, optionally with a K, M, G or T suffix "
                      "(1K = 1024), or 'none'");
    }
  }
  pqxx::work tx(ctx.db(), "user_quota");
  const UserRef user = find_user(tx, address);
  const auto row = tx.exec_params1(
      "UPDATE popgate.users SET quota_bytes = NULLIF($3, '')::bigint"
      " WHERE tenant_id = $1 AND user_id = $2 RETURNING used_bytes",
      user.tenant_id, user.user_id, quota ? std::to_string(*quota) : std::string());
  tx.commit();
  const auto used = row[0].as<int64_t>();
  if (!quota) {
    ctx.out() << "removed the quota of " << user.login << "\n";
    return kExitOk;
  }
  ctx.out() << "set the quota of " << user.login << " to " << bytes_text(*quota) << "\n";
  if (used > *quota) {
    ctx.out() << "note: " << user.login << " already uses " << bytes_text(used)
              << ", more than that: deliveries are refused until it is below\n";
  }
  return kExitOk;
}

int user_show(Context& ctx, std::string_view text) {
  const Address address = require_address(text);
  pqxx::read_transaction tx(ctx.db(), "user_show");
  const UserRef user = find_user(tx, address);
  const auto u = tx.exec_params1(
      "SELECT u.enabled, u.quota_bytes, u.used_bytes, " + sql_utc("u.last_login_at") +
          ", u.password_hash, u.scram_sha256 IS NOT NULL, u.apop_secret IS NOT NULL,"
          " coalesce(array_to_string(t.mechanisms, ' '), ''),"
          " (SELECT count(*) FROM popgate.messages m WHERE m.tenant_id = u.tenant_id"
          "  AND m.user_id = u.user_id AND NOT m.hidden),"
          " (SELECT count(*) FROM popgate.messages m WHERE m.tenant_id = u.tenant_id"
          "  AND m.user_id = u.user_id AND m.hidden) "
          "FROM popgate.users u JOIN popgate.tenants t USING (tenant_id)"
          " WHERE u.tenant_id = $1 AND u.user_id = $2",
      user.tenant_id, user.user_id);
  const bool scram = u[5].as<bool>();
  const bool apop = u[6].as<bool>();
  print_table(ctx.out(),
              {{"login", user.login},
               {"enabled", u[0].as<bool>() ? "yes" : "no"},
               {"quota", u[1].is_null() ? "none" : bytes_text(u[1].as<int64_t>())},
               {"used", bytes_text(u[2].as<int64_t>())},
               {"messages", std::string(u[8].c_str()) + " (" + u[9].c_str() + " hidden)"},
               {"last-login", u[3].is_null() ? "never" : u[3].c_str()},
               {"password", scheme_of(u[4].c_str())},
               {"scram-sha-256", scram ? "yes" : "no"},
               {"apop", apop ? "yes" : "no"},
               {"mechanisms", mechanisms_text(scram, apop, u[7].c_str())},
               {"online", online_text(tx, user)}});
  return kExitOk;
}

int user_set_enabled(Context& ctx, std::string_view text, bool enabled, bool kick) {
  const Address address = require_address(text);
  pqxx::work tx(ctx.db(), "user_enable");
  const UserRef user = find_user(tx, address);
  tx.exec_params("UPDATE popgate.users SET enabled = $3 WHERE tenant_id = $1 AND user_id = $2",
                 user.tenant_id, user.user_id, enabled);
  const auto online = tx.exec_params(
      std::string("UPDATE popgate.maildrop_locks SET kick_requested_at = ") +
          (kick ? "coalesce(kick_requested_at, now())" : "kick_requested_at") +
          " WHERE tenant_id = $1 AND user_id = $2 AND lease_expires_at > now() RETURNING 1",
      user.tenant_id, user.user_id);
  tx.commit();
  ctx.out() << (enabled ? "enabled " : "disabled ") << user.login << "\n";
  if (!enabled && !online.empty()) {
    ctx.out() << (kick ? "asked its open session to end (within a lease renewal)\n"
                       : "note: a session is open; it goes on until it ends (popgate-admin "
                         "kick " +
                             user.login + ")\n");
  }
  return kExitOk;
}

}  // namespace popgate::admin
