// `popgate-admin maildrop stats LOGIN` and `tenant stats [DOMAIN]`: how
// much is stored, what is retrieved, hidden and online. Read-only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ops/admin/context.h"

namespace popgate::admin {

// "KEY  VALUE" lines: login, messages, bytes, quota, used, retrieved,
// unretrieved, hidden, oldest, newest, online. Counts of messages exclude
// hidden ones (what a client sees); `hidden` counts those.
[[nodiscard]] int maildrop_stats(Context& ctx, std::string_view address);

// One row a tenant: DOMAIN USERS DISABLED ONLINE MESSAGES BYTES RETRIEVED
// HIDDEN HIDDEN_BYTES OLDEST.
[[nodiscard]] int tenant_stats(Context& ctx, const std::optional<std::string>& domain);

}  // namespace popgate::admin
