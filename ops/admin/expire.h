// `popgate-admin expire [DOMAIN] [--dry-run] [--batch N]`: the retention
// job that enforces each tenant's EXPIRE and retention policies (tenant set
// --expire-days, --retention-days).
//
// For every tenant with expire_days set, messages retrieved more than
// expire_days days ago (expire_days 0: retrieved at all) are deleted,
// hidden ones included (delete mode 'hide' keeps messages until then).
// For every tenant with retention_days set, messages delivered (received_at)
// more than retention_days days ago are deleted too, whether retrieved or
// not, hidden or not. Without retention, messages never retrieved are kept
// whatever their age. Each tenant's report counts the two apart (a message
// due by both counts as EXPIRE's).
//
// Safe from cron on several hosts at once: each tenant is worked on under
// a session-level pg_try_advisory_lock, so a second run skips a tenant the
// first is busy with. A maildrop with a live session is never touched: each
// batch first takes the maildrop lock itself (as a session would, inside
// the deleting transaction), so sessions see either all of a batch or none
// of it, and maildrops in use are skipped and reported.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ops/admin/context.h"

namespace popgate::admin {

struct ExpireArgs {
  std::optional<std::string> domain;
  bool dry_run = false;
  uint64_t batch = 1000;            // messages deleted per transaction
  uint64_t progress_every = 10000;  // messages; 0: by time only (every 5 s)
};

[[nodiscard]] int expire(Context& ctx, const ExpireArgs& args);

}  // namespace popgate::admin
