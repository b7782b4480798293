// `popgate-admin who [DOMAIN]` and `kick LOGIN [--wait SECONDS]`: the
// sessions online across every gateway instance, read from the maildrop
// lock rows whose lease is live.
//
// Kicking needs the gateway's cooperation: kick sets kick_requested_at on
// the user's lock row, and the owning instance ends that session (without
// UPDATE) when it next renews its leases, every third of
// database.lock_lease_ms (about 10 s by default). An instance that has died
// renews nothing; its lock lapses with the lease instead.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ops/admin/context.h"

namespace popgate::admin {

// LOGIN CLIENT LISTENER INSTANCE SINCE LEASE_LEFT KICK, one row a session.
[[nodiscard]] int who(Context& ctx, const std::optional<std::string>& domain);

// Asks the session of LOGIN to end; says whether there was one (exit 0
// either way). With wait_s, waits that long for it to be gone: kExitUser
// when it is still there.
[[nodiscard]] int kick(Context& ctx, std::string_view address, std::optional<int> wait_s);

}  // namespace popgate::admin
