// `popgate-admin tenant add|list|del`: tenants are mail domains.
#pragma once

#include <string_view>

#include "ops/admin/context.h"

namespace popgate::admin {

// Lowercases and checks DOMAIN; UserError when invalid or already there.
[[nodiscard]] int tenant_add(Context& ctx, std::string_view domain);
// Every tenant with its user count, message count and stored octets.
[[nodiscard]] int tenant_list(Context& ctx);
// Deletes a tenant. Refused (UserError) while it has users, unless `force`:
// then its users, their messages and locks go too (live sessions lose
// their maildrop: they can no longer read or delete anything).
[[nodiscard]] int tenant_del(Context& ctx, std::string_view domain, bool force);

}  // namespace popgate::admin
