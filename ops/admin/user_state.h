// `popgate-admin user quota|show|enable|disable`: a user's quota, whether
// it may log in, and what it can log in with. Credentials themselves are
// users.h's.
#pragma once

#include <string_view>

#include "ops/admin/context.h"

namespace popgate::admin {

// BYTES with an optional K/M/G/T suffix (binary), or "none" for no quota.
// Deliveries (LMTP, import) are refused once used + message > quota; a
// quota below what is already used is allowed and says so.
[[nodiscard]] int user_quota(Context& ctx, std::string_view address, std::string_view quota);

// "KEY  VALUE" lines: login, enabled, quota, used, messages, last-login,
// password (the hash scheme), scram-sha-256, apop, mechanisms (those the
// credentials allow, narrowed by the tenant's list; listeners may narrow
// them further), online.
[[nodiscard]] int user_show(Context& ctx, std::string_view address);

// A disabled user cannot log in (the gateway looks up enabled users only).
// A session already open goes on unless `kick` asks it to end.
[[nodiscard]] int user_set_enabled(Context& ctx, std::string_view address, bool enabled, bool kick);

}  // namespace popgate::admin
