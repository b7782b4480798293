// `popgate-admin tenant set|show`: a tenant's login policy, the popgate.tenants
// columns of schema v2 (login delay, expiry, TLS, limits, mechanisms), v4
// (delete mode: what DELE then QUIT does, delete or hide) and v5 (retention:
// days a message is kept after delivery, retrieved or not).
// parse_tenant_policy() is pure (tests call it); the commands use the
// database.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "ops/admin/context.h"

namespace popgate::admin {

// The names a tenant may allow; the gateway matches them case-insensitively.
inline constexpr std::array<std::string_view, 7> kMechanismNames = {
    "USER", "PLAIN", "LOGIN", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2", "APOP"};

// The options as typed; unset ones stay as they are in the database.
struct TenantPolicyArgs {
  std::optional<std::string> login_delay;        // SECONDS (>= 0)
  std::optional<std::string> expire_days;        // N (>= 0) | never
  std::optional<std::string> require_tls;        // yes | no
  std::optional<std::string> sessions_max;       // N (> 0) | default
  std::optional<std::string> logins_per_minute;  // N (> 0) | default
  std::optional<std::string> mechanisms;         // "NAME ..." | all
  std::optional<std::string> delete_mode;        // delete | hide
  std::optional<std::string> retention_days;     // N (> 0) | never
};

// One column's new value as SQL text; "" stands for NULL.
struct ColumnChange {
  bool set = false;
  std::string value;
};

struct TenantPolicyUpdate {
  ColumnChange login_delay_s;
  ColumnChange expire_days;
  ColumnChange require_tls;  // "true" / "false"
  ColumnChange sessions_max;
  ColumnChange logins_per_minute;
  ColumnChange mechanisms;   // space-separated canonical names
  ColumnChange delete_mode;  // "delete" / "hide"
  ColumnChange retention_days;
  [[nodiscard]] bool any() const noexcept;
};

// Validates every given option; throws UserError naming the option and
// what it accepts.
[[nodiscard]] TenantPolicyUpdate parse_tenant_policy(const TenantPolicyArgs& args);
// "plain, SCRAM-sha-256" -> "PLAIN SCRAM-SHA-256" (space or comma separated,
// case-insensitive, duplicates dropped); "all" -> "" (every enabled one).
// Throws UserError for unknown names or an empty list.
[[nodiscard]] std::string canonical_mechanisms(std::string_view list);

[[nodiscard]] int tenant_set(Context& ctx, std::string_view domain, const TenantPolicyArgs& args);
// "KEY  VALUE" lines: domain, login-delay, expire-days, require-tls,
// sessions-max, logins-per-minute, mechanisms, delete-mode, retention-days.
[[nodiscard]] int tenant_show(Context& ctx, std::string_view domain);

}  // namespace popgate::admin
