#include "ops/admin/expire.h"

#include <unistd.h>

#include <ostream>
#include <pqxx/pqxx>
#include <vector>

#include "ops/admin/lookup.h"
#include "ops/admin/progress.h"
#include "ops/admin/units.h"

namespace popgate::admin {
namespace {

// pg_try_advisory_lock(class, tenant) key class shared by expire runs ("expi").
constexpr int kExpireLockClass = 0x65787069;
// How long the lock row taken for one batch would last if we died holding
// it; it is deleted in the same transaction, so nobody ever sees it.
constexpr const char* kBatchLease = "5 minutes";

// A policy that is not set ("never"), as the statements take it.
constexpr int kNever = -1;

struct Tenant {
  int64_t tenant_id = 0;
  std::string domain;
  int expire_days = kNever;     // RFC 2449 EXPIRE: days after retrieval
  int retention_days = kNever;  // days after delivery, retrieved or not
};

// Messages and their octets.
struct Amount {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  Amount& operator+=(const Amount& o) {
    messages += o.messages;
    bytes += o.bytes;
    return *this;
  }
};

struct Candidate {  // a maildrop with messages due
  int64_t user_id = 0;
  Amount expired;   // by EXPIRE
  Amount retained;  // by retention only
};

struct Tally {
  Amount expired;
  Amount retained;
  uint64_t maildrops = 0;
  uint64_t busy_maildrops = 0;
  uint64_t busy_messages = 0;
};

// $1 tenant, $2 expire_days, $3 retention_days (kNever: not set, and the
// condition is NULL). A message due by both counts as EXPIRE's.
constexpr const char* kExpiredCondition =
    "(retrieved_at IS NOT NULL"
    " AND retrieved_at <= now() - make_interval(days => NULLIF($2::int, -1)))";
constexpr const char* kRetainedCondition =
    "(received_at <= now() - make_interval(days => NULLIF($3::int, -1)))";

std::string due_condition() {
  return std::string("tenant_id = $1 AND (") + kExpiredCondition + " OR " + kRetainedCondition +
         ")";
}

std::vector<Tenant> tenants_to_expire(Context& ctx, const std::optional<std::string>& text) {
  pqxx::read_transaction tx(ctx.db(), "expire_tenants");
  std::string domain;
  if (text) {
    domain = require_domain(*text);
    (void)find_tenant(tx, domain);
  }
  std::vector<Tenant> out;
  for (const auto& r : tx.exec_params(
           "SELECT tenant_id, domain, coalesce(expire_days, -1), coalesce(retention_days, -1)"
           " FROM popgate.tenants WHERE (expire_days IS NOT NULL OR retention_days IS NOT NULL)"
           " AND ($1 = '' OR domain = $1) ORDER BY domain",
           domain)) {
    out.push_back(Tenant{r[0].as<int64_t>(), r[1].c_str(), r[2].as<int>(), r[3].as<int>()});
  }
  return out;
}

std::vector<Candidate> candidates(Context& ctx, const Tenant& t) {
  pqxx::read_transaction tx(ctx.db(), "expire_candidates");
  std::vector<Candidate> out;
  const auto rows = tx.exec_params(
      std::string("SELECT user_id, count(*) FILTER (WHERE by_expire),"
                  " coalesce(sum(size_bytes) FILTER (WHERE by_expire), 0),"
                  " count(*) FILTER (WHERE NOT by_expire),"
                  " coalesce(sum(size_bytes) FILTER (WHERE NOT by_expire), 0)"
                  " FROM (SELECT user_id, size_bytes, coalesce(") +
          kExpiredCondition + ", false) AS by_expire FROM popgate.messages WHERE " +
          due_condition() + ") due GROUP BY user_id ORDER BY user_id",
      t.tenant_id, t.expire_days, t.retention_days);
  for (const auto& r : rows) {
    out.push_back(Candidate{r[0].as<int64_t>(), {r[1].as<uint64_t>(), r[2].as<uint64_t>()},
                            {r[3].as<uint64_t>(), r[4].as<uint64_t>()}});
  }
  return out;
}

bool live_session(Context& ctx, const Tenant& t, int64_t user_id) {
  pqxx::read_transaction tx(ctx.db(), "expire_busy");
  return tx.exec_params1(
               "SELECT count(*) FROM popgate.maildrop_locks WHERE tenant_id = $1"
               " AND user_id = $2 AND lease_expires_at > now()",
               t.tenant_id, user_id)[0]
             .as<int64_t>() > 0;
}

std::string holder_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string("popgate-admin expire/") + host + "/" + std::to_string(::getpid());
}

struct BatchResult {
  bool busy = false;  // a session holds the maildrop
  Amount expired;
  Amount retained;
  [[nodiscard]] uint64_t messages() const { return expired.messages + retained.messages; }
};

// One transaction: take the maildrop lock unless a session has it, delete
// up to `batch` messages due, give the lock back.
BatchResult delete_batch(Context& ctx, const Tenant& t, int64_t user_id, uint64_t batch,
                         const std::string& holder) {
  pqxx::work tx(ctx.db(), "expire_batch");
  const auto locked = tx.exec_params(
      std::string("INSERT INTO popgate.maildrop_locks (tenant_id, user_id, holder_instance,"
                  " holder_session, acquired_at, lease_expires_at, listener)"
                  " VALUES ($1, $2, $3, 0, now(), now() + interval '") +
          kBatchLease +
          "', 'expire') ON CONFLICT (tenant_id, user_id) DO UPDATE SET"
          " holder_instance = EXCLUDED.holder_instance, holder_session = 0,"
          " acquired_at = now(), lease_expires_at = EXCLUDED.lease_expires_at,"
          " client_address = NULL, listener = EXCLUDED.listener, kick_requested_at = NULL"
          " WHERE popgate.maildrop_locks.lease_expires_at < now() RETURNING 1",
      t.tenant_id, user_id, holder);
  if (locked.empty()) return BatchResult{true, {}, {}};
  const auto done = tx.exec_params1(
      std::string("WITH gone AS (DELETE FROM popgate.messages WHERE tenant_id = $1"
                  " AND user_id = $4 AND message_id IN (SELECT message_id FROM popgate.messages"
                  " WHERE ") +
          due_condition() +
          " AND user_id = $4 ORDER BY message_id LIMIT $5) RETURNING size_bytes, coalesce(" +
          kExpiredCondition +
          ", false) AS by_expire)"
          " SELECT count(*) FILTER (WHERE by_expire),"
          " coalesce(sum(size_bytes) FILTER (WHERE by_expire), 0),"
          " count(*) FILTER (WHERE NOT by_expire),"
          " coalesce(sum(size_bytes) FILTER (WHERE NOT by_expire), 0) FROM gone",
      t.tenant_id, t.expire_days, t.retention_days, user_id, int64_t(batch));
  tx.exec_params(
      "DELETE FROM popgate.maildrop_locks WHERE tenant_id = $1 AND user_id = $2"
      " AND holder_instance = $3",
      t.tenant_id, user_id, holder);
  tx.commit();
  return BatchResult{false,
                     {done[0].as<uint64_t>(), done[1].as<uint64_t>()},
                     {done[2].as<uint64_t>(), done[3].as<uint64_t>()}};
}

std::string progress_detail(const Tenant& t) { return "deleted in " + t.domain; }

// Deletes a maildrop's messages due batch by batch, until a batch comes
// back short or a session holds the maildrop.
void expire_maildrop(Context& ctx, const Tenant& t, const Candidate& c, const ExpireArgs& args,
                     const std::string& holder, Tally& tally, Progress& progress) {
  bool deleted_any = false;
  for (;;) {
    const BatchResult r = delete_batch(ctx, t, c.user_id, args.batch, holder);
    if (r.busy) {
      ++tally.busy_maildrops;
      tally.busy_messages += c.expired.messages + c.retained.messages;
      break;
    }
    tally.expired += r.expired;
    tally.retained += r.retained;
    deleted_any = deleted_any || r.messages() > 0;
    progress.add(r.messages(), r.expired.bytes + r.retained.bytes, Progress::Clock::now(),
                 progress_detail(t));
    if (r.messages() < args.batch) break;
  }
  if (deleted_any) ++tally.maildrops;
}

std::string policy_text(const Tenant& t) {
  std::string out;
  if (t.expire_days != kNever) out = "expire-days " + std::to_string(t.expire_days);
  if (t.retention_days != kNever) {
    out += (out.empty() ? "" : ", ") + std::string("retention-days ") +
           std::to_string(t.retention_days);
  }
  return out;
}

void report(Context& ctx, const Tenant& t, const Tally& tally, bool dry_run) {
  Amount all = tally.expired;
  all += tally.retained;
  ctx.out() << "tenant " << t.domain << " (" << policy_text(t)
            << "): " << (dry_run ? "would delete " : "deleted ") << all.messages << " messages ("
            << format_bytes(all.bytes) << ") from " << tally.maildrops << " maildrops";
  if (t.expire_days != kNever && t.retention_days != kNever) {
    ctx.out() << " (expire: " << tally.expired.messages << " messages, "
              << format_bytes(tally.expired.bytes) << "; retention: " << tally.retained.messages
              << " messages, " << format_bytes(tally.retained.bytes) << ")";
  }
  if (tally.busy_maildrops != 0) {
    ctx.out() << "; skipped " << tally.busy_maildrops << " maildrops in use ("
              << tally.busy_messages << " expired messages kept for now)";
  }
  ctx.out() << "\n";
}

void expire_tenant(Context& ctx, const Tenant& t, const ExpireArgs& args,
                   const std::string& holder) {
  Tally tally;
  Progress progress(ctx.err(), "expire", args.progress_every, std::chrono::seconds(5),
                    Progress::Clock::now());
  for (const Candidate& c : candidates(ctx, t)) {
    if (!args.dry_run) {
      expire_maildrop(ctx, t, c, args, holder, tally, progress);
    } else if (live_session(ctx, t, c.user_id)) {
      ++tally.busy_maildrops;
      tally.busy_messages += c.expired.messages + c.retained.messages;
    } else {
      tally.expired += c.expired;
      tally.retained += c.retained;
      ++tally.maildrops;
    }
  }
  report(ctx, t, tally, args.dry_run);
}

// Holds the per-tenant advisory lock for as long as it lives. Session
// level: it survives the transactions in between, and ends with the
// connection if we die.
class TenantLock {
 public:
  TenantLock(Context& ctx, int64_t tenant_id) : ctx_(ctx), tenant_id_(tenant_id) {
    pqxx::nontransaction tx(ctx_.db(), "expire_lock");
    held_ = tx.exec_params1("SELECT pg_try_advisory_lock($1, ($2::bigint & 2147483647)::int)",
                            kExpireLockClass, tenant_id_)[0]
                .as<bool>();
  }
  ~TenantLock() {
    if (!held_) return;
    try {
      pqxx::nontransaction tx(ctx_.db(), "expire_unlock");
      tx.exec_params("SELECT pg_advisory_unlock($1, ($2::bigint & 2147483647)::int)",
                     kExpireLockClass, tenant_id_);
    } catch (const std::exception&) {
      // The connection is gone, and the lock with it.
    }
  }
  TenantLock(const TenantLock&) = delete;
  TenantLock& operator=(const TenantLock&) = delete;
  [[nodiscard]] bool held() const noexcept { return held_; }

 private:
  Context& ctx_;
  int64_t tenant_id_;
  bool held_ = false;
};

}  // namespace

int expire(Context& ctx, const ExpireArgs& args) {
  if (args.batch == 0) throw UserError("--batch must be at least 1");
  const std::vector<Tenant> tenants = tenants_to_expire(ctx, args.domain);
  if (tenants.empty()) {
    ctx.out() << (args.domain ? "tenant " + lowercase_ascii(*args.domain) + " keeps"
                              : std::string("every tenant keeps"))
              << " messages forever (expire-days never, retention-days never): nothing to do\n";
    return kExitOk;
  }
  const std::string holder = holder_name();
  for (const Tenant& t : tenants) {
    const TenantLock lock(ctx, t.tenant_id);
    if (!lock.held()) {
      ctx.out() << "tenant " << t.domain << ": skipped: another expire run is working on it\n";
      continue;
    }
    expire_tenant(ctx, t, args, holder);
  }
  return kExitOk;
}

}  // namespace popgate::admin
