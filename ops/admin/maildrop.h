// `popgate-admin maildrop list LOCAL@DOMAIN`: what a POP3 client would see
// at login, in the same order (message_id ascending, msn from 1).
#pragma once

#include <string_view>

#include "ops/admin/context.h"

namespace popgate::admin {

[[nodiscard]] int maildrop_list(Context& ctx, std::string_view address);

}  // namespace popgate::admin
