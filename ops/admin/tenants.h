// `popgate-admin tenant add|list`: tenants are mail domains.
#pragma once

#include <string_view>

#include "ops/admin/context.h"

namespace popgate::admin {

// Lowercases and checks DOMAIN; UserError when invalid or already there.
[[nodiscard]] int tenant_add(Context& ctx, std::string_view domain);
// Every tenant with its user count, message count and stored octets.
[[nodiscard]] int tenant_list(Context& ctx);

}  // namespace popgate::admin
