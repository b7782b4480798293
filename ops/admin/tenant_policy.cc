#include "ops/admin/tenant_policy.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <ostream>
#include <pqxx/pqxx>
#include <vector>

#include "ops/admin/lookup.h"
#include "ops/admin/names.h"
#include "ops/admin/table.h"

namespace popgate::admin {
namespace {

constexpr int64_t kColumnMax = std::numeric_limits<int32_t>::max();  // SQL integer

// A whole number in [min, 2^31-1], or UserError naming `option`.
std::string number(const std::string& text, int64_t min, const std::string& option,
                   const std::string& also) {
  int64_t value = 0;
  const char* first = text.data();
  const char* last = first + text.size();
  const auto [end, ec] = std::from_chars(first, last, value);
  if (first == last || ec != std::errc{} || end != last || value < min || value > kColumnMax) {
    throw UserError(option + " '" + text + "' must be a number from " + std::to_string(min) +
                    " to " + std::to_string(kColumnMax) + also);
  }
  return std::to_string(value);
}

// N, or `keyword` for NULL.
ColumnChange number_or(const std::optional<std::string>& text, int64_t min,
                       const std::string& option, const std::string& keyword) {
  if (!text) return {};
  if (lowercase_ascii(*text) == keyword) return {true, ""};
  return {true, number(*text, min, option, " or '" + keyword + "'")};
}

}  // namespace

bool TenantPolicyUpdate::any() const noexcept {
  return login_delay_s.set || expire_days.set || require_tls.set || sessions_max.set ||
         logins_per_minute.set || mechanisms.set || delete_mode.set || retention_days.set;
}

std::string canonical_mechanisms(std::string_view list) {
  if (lowercase_ascii(list) == "all") return "";
  std::vector<std::string_view> chosen;
  size_t at = 0;
  while (at < list.size()) {
    const size_t end = list.find_first_of(" ,\t", at);
    const std::string_view word = list.substr(at, end == std::string_view::npos ? end : end - at);
    at = end == std::string_view::npos ? list.size() : end + 1;
    if (word.empty()) continue;
    const std::string upper = [&] {
      std::string u(word);
      for (char& c : u) c = (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
      return u;
    }();
    const auto known = std::find(kMechanismNames.begin(), kMechanismNames.end(), upper);
    if (known == kMechanismNames.end()) {
      std::string names;
      for (const auto name : kMechanismNames)
        names += (names.empty() ? "" : " ") + std::string(name);
      throw UserError("--mechanisms: unknown mechanism '" + std::string(word) +
                      "' (known: " + names + "; or 'all')");
    }
    if (std::find(chosen.begin(), chosen.end(), *known) == chosen.end()) chosen.push_back(*known);
  }
  if (chosen.empty()) {
    throw UserError("--mechanisms: the list is empty (name at least one, or 'all')");
  }
  std::string out;
  for (const auto name : chosen) out += (out.empty() ? "" : " ") + std::string(name);
  return out;
}

TenantPolicyUpdate parse_tenant_policy(const TenantPolicyArgs& a) {
  TenantPolicyUpdate u;
  if (a.login_delay) u.login_delay_s = {true, number(*a.login_delay, 0, "--login-delay", "")};
  u.expire_days = number_or(a.expire_days, 0, "--expire-days", "never");
  if (a.require_tls) {
    const std::string v = lowercase_ascii(*a.require_tls);
    if (v != "yes" && v != "no") {
      throw UserError("--require-tls '" + *a.require_tls + "' must be 'yes' or 'no'");
    }
    u.require_tls = {true, v == "yes" ? "true" : "false"};
  }
  u.sessions_max = number_or(a.sessions_max, 1, "--sessions-max", "default");
  u.logins_per_minute = number_or(a.logins_per_minute, 1, "--logins-per-minute", "default");
  if (a.mechanisms) u.mechanisms = {true, canonical_mechanisms(*a.mechanisms)};
  if (a.delete_mode) {
    const std::string v = lowercase_ascii(*a.delete_mode);
    if (v != "delete" && v != "hide") {
      throw UserError("--delete-mode '" + *a.delete_mode + "' must be 'delete' or 'hide'");
    }
    u.delete_mode = {true, v};
  }
  u.retention_days = number_or(a.retention_days, 1, "--retention-days", "never");
  return u;
}

int tenant_set(Context& ctx, std::string_view text, const TenantPolicyArgs& args) {
  const std::string domain = require_domain(text);
  const TenantPolicyUpdate u = parse_tenant_policy(args);
  if (!u.any()) throw UserError("tenant set: nothing to change (see --help for the options)");
  pqxx::work tx(ctx.db(), "tenant_set");
  const int64_t tenant_id = find_tenant(tx, domain);
  // Each column: keep it unless its flag is set; '' is NULL.
  tx.exec_params(
      "UPDATE popgate.tenants SET"
      " login_delay_s = CASE WHEN $2 THEN NULLIF($3, '')::int ELSE login_delay_s END,"
      " expire_days = CASE WHEN $4 THEN NULLIF($5, '')::int ELSE expire_days END,"
      " require_tls = CASE WHEN $6 THEN NULLIF($7, '')::bool ELSE require_tls END,"
      " sessions_max = CASE WHEN $8 THEN NULLIF($9, '')::int ELSE sessions_max END,"
      " logins_per_minute = CASE WHEN $10 THEN NULLIF($11, '')::int ELSE logins_per_minute END,"
      " mechanisms = CASE WHEN $12 THEN string_to_array(NULLIF($13, ''), ' ') ELSE mechanisms END,"
      " delete_mode = CASE WHEN $14 THEN $15 ELSE delete_mode END,"
      " retention_days = CASE WHEN $16 THEN NULLIF($17, '')::int ELSE retention_days END"
      " WHERE tenant_id = $1",
      tenant_id, u.login_delay_s.set, u.login_delay_s.value, u.expire_days.set, u.expire_days.value,
      u.require_tls.set, u.require_tls.value, u.sessions_max.set, u.sessions_max.value,
      u.logins_per_minute.set, u.logins_per_minute.value, u.mechanisms.set, u.mechanisms.value,
      u.delete_mode.set, u.delete_mode.value, u.retention_days.set, u.retention_days.value);
  tx.commit();
  ctx.out() << "changed the policy of tenant " << domain << "\n";
  return kExitOk;
}

int tenant_show(Context& ctx, std::string_view text) {
  const std::string domain = require_domain(text);
  pqxx::read_transaction tx(ctx.db(), "tenant_show");
  (void)find_tenant(tx, domain);
  const auto row = tx.exec_params1(
      "SELECT login_delay_s, expire_days, require_tls, sessions_max, logins_per_minute,"
      " coalesce(array_to_string(mechanisms, ' '), ''), delete_mode, retention_days"
      " FROM popgate.tenants WHERE domain = $1",
      domain);
  auto or_word = [](const pqxx::field& f, const char* word) {
    return f.is_null() ? std::string(word) : std::string(f.c_str());
  };
  const std::string mechanisms = row[5].c_str();
  print_table(ctx.out(), {{"domain", domain},
                          {"login-delay", row[0].c_str()},
                          {"expire-days", or_word(row[1], "never")},
                          {"require-tls", row[2].as<bool>() ? "yes" : "no"},
                          {"sessions-max", or_word(row[3], "default")},
                          {"logins-per-minute", or_word(row[4], "default")},
                          {"mechanisms", mechanisms.empty() ? "all" : mechanisms},
                          {"delete-mode", row[6].c_str()},
                          {"retention-days", or_word(row[7], "never")}});
  return kExitOk;
}

}  // namespace popgate::admin
