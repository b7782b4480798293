// PgClient's public entry points: event handling, submissions (which
// validate and encode parameters, then hand the request to the engine),
// completions and stats.
#include "storage/pg_client.h"

#include <libpq-fe.h>
#include <sys/epoll.h>

#include <algorithm>
#include <utility>

#include "storage/login_name.h"
#include "storage/pg_codec.h"
#include "storage/pg_client_impl.h"

namespace popgate::storage {

using namespace client_detail;

namespace {
// The kept-UIDL sample as stored: at most kKeptUidlsMax UIDLs (the caller
// already cut it; this only guards the parameter block).
std::string_view kept_uidls(const SessionEnd& end) noexcept {
  return end.kept_uidls.substr(0, kKeptUidlsMax * 71);
}
}  // namespace

std::string_view to_string(Status s) noexcept {
  switch (s) {
    case Status::kOk:
      return "ok";
    case Status::kNotFound:
      return "not found";
    case Status::kInUse:
      return "in use";
    case Status::kTemporary:
      return "temporary failure";
    case Status::kPermanent:
      return "permanent failure";
    case Status::kOverQuota:
      return "over quota";
  }
  return "unknown";
}

std::string_view to_string(RequestKind k) noexcept {
  switch (k) {
    case RequestKind::kLookupUser:
      return "lookup_user";
    case RequestKind::kOpenMaildrop:
      return "open_maildrop";
    case RequestKind::kFetchBody:
      return "fetch_body";
    case RequestKind::kFetchBodies:
      return "fetch_bodies";
    case RequestKind::kCommitUpdate:
      return "commit_update";
    case RequestKind::kReleaseMaildrop:
      return "release_maildrop";
    case RequestKind::kRenewLeases:
      return "renew_leases";
    case RequestKind::kDeliver:
      return "deliver";
  }
  return "unknown";
}

void PgResultDeleter::operator()(pg_result* r) const noexcept { PQclear(r); }

PgClient::PgClient(PgClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

PgClient::~PgClient() = default;

int PgClient::event_fd() const noexcept { return impl_->epoll_fd_; }

void PgClient::handle_events(TimePoint now) noexcept {
  Impl& m = *impl_;
  epoll_event events[kEpollEventsMax];
  const int n = ::epoll_wait(m.epoll_fd_, events, kEpollEventsMax, 0);
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = events[i];
    if (ev.data.u64 == kConnectorToken) {
      m.adopt_connections(now);
      continue;
    }
    const auto c = static_cast<int>(ev.data.u64);
    // Closed (or replaced) earlier in this batch: a stale event is harmless
    // for a fresh connection, so only skip connections that are down.
    if (m.conns_[static_cast<std::size_t>(c)].state != ConnState::kUp) continue;
    if ((ev.events & EPOLLOUT) != 0) m.flush(c, now);
    if (m.conns_[static_cast<std::size_t>(c)].state != ConnState::kUp) continue;
    if ((ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) m.read(c, now);
  }
  m.drain_waiting(now);
  m.publish_gauges();
}

void PgClient::handle_tick(TimePoint now) noexcept {
  Impl& m = *impl_;
  m.expire(now);
  m.drain_waiting(now);
  m.publish_gauges();
}

void PgClient::lookup_user(uint64_t tag, std::string_view login, TimePoint now) noexcept {
  Impl& m = *impl_;
  const uint32_t id = m.begin(tag, RequestKind::kLookupUser, now);
  LoginName name;
  if (!parse_login(login, m.options_.default_domain, name)) {
    m.finish_status(id, Status::kNotFound);  // no such user, no query needed
    return;
  }
  ParamBlock& p = m.req(id).params;
  // Both fit: kParamInlineBytesMax exceeds kLoginBytesMax.
  (void)p.add_text(name.domain());
  (void)p.add_text(name.local_part());
  m.route(id, now);
  m.publish_gauges();
}

void PgClient::open_maildrop(uint64_t tag, int64_t tenant_id, int64_t user_id, LockHolder holder,
                             TimePoint now) noexcept {
  Impl& m = *impl_;
  const uint32_t id = m.begin(tag, RequestKind::kOpenMaildrop, now);
  ParamBlock& p = m.req(id).params;
  if (!valid_instance_id(holder.instance_id)) {
    m.fail_now(id, Status::kPermanent, "invalid lock holder instance id");
    return;
  }
  p.add_int8(tenant_id);
  p.add_int8(user_id);
  (void)p.add_text(holder.instance_id);
  p.add_int8(holder.session_id);
  p.add_int8(m.options_.lock_lease.count());
  // Both short (an address, a listener name): they fit the inline block.
  (void)p.add_text(holder.client.substr(0, kLockInfoBytesMax));
  (void)p.add_text(holder.listener.substr(0, kLockInfoBytesMax));
  m.route(id, now);
  m.publish_gauges();
}

void PgClient::fetch_body(uint64_t tag, int64_t tenant_id, int64_t user_id, int64_t message_id,
                          uint64_t offset, uint32_t length, TimePoint now) noexcept {
  Impl& m = *impl_;
  const uint32_t id = m.begin(tag, RequestKind::kFetchBody, now);
  // substring() counts from 1. An offset no body can reach still queries
  // (FROM the last position FOR 0) so a missing message stays kNotFound.
  int32_t from = INT32_MAX;
  int32_t count = 0;
  if (offset < kBodyOffsetMax) {
    from = static_cast<int32_t>(offset + 1);
    count = static_cast<int32_t>(std::min<uint64_t>(length, INT32_MAX));
  }
  ParamBlock& p = m.req(id).params;
  p.add_int8(tenant_id);
  p.add_int8(user_id);
  p.add_int8(message_id);
  p.add_int4(from);
  p.add_int4(count);
  m.route(id, now);
  m.publish_gauges();
}

void PgClient::fetch_bodies(uint64_t tag, int64_t tenant_id, int64_t user_id,
                            std::span<const int64_t> message_ids, TimePoint now) noexcept {
  Impl& m = *impl_;
  const uint32_t id = m.begin(tag, RequestKind::kFetchBodies, now);
  ParamBlock& p = m.req(id).params;
  p.add_int8(tenant_id);
  p.add_int8(user_id);
  p.add_int8_array(message_ids);
  m.route(id, now);
  m.publish_gauges();
}

bool fetched_body(const pg_result* rows, int64_t message_id, std::string_view* body) noexcept {
  if (rows == nullptr || PQnfields(rows) != 2) return false;
  const int n = PQntuples(rows);
  for (int r = 0; r < n; ++r) {
    int64_t id = 0;
    if (!decode_int8(PQgetvalue(rows, r, 0), PQgetlength(rows, r, 0), id) || id != message_id) continue;
    *body = std::string_view(PQgetvalue(rows, r, 1), static_cast<std::size_t>(PQgetlength(rows, r, 1)));
    return true;
  }
  return false;
}

void PgClient::commit_update(uint64_t tag, int64_t tenant_id, int64_t user_id, LockHolder holder,
                             std::span<const int64_t> message_ids, bool hide, const SessionEnd& end,
                             TimePoint now) noexcept {
  Impl& m = *impl_;
  const uint32_t id = m.begin(tag, RequestKind::kCommitUpdate, now);
  if (!valid_instance_id(holder.instance_id)) {
    m.fail_now(id, Status::kPermanent, "invalid lock holder instance id");
    return;
  }
  ParamBlock& p = m.req(id).params;
  p.add_int8(tenant_id);
  p.add_int8(user_id);
  (void)p.add_text(holder.instance_id);
  p.add_int8(holder.session_id);
  p.add_int8_array(message_ids);
  p.add_int8_array(end.retrieved_ids);
  if (!p.add_text(kept_uidls(end))) {
    m.fail_now(id, Status::kPermanent, "kept UIDLs too long");
    return;
  }
  p.add_int8(hide ? 1 : 0);
  if (message_ids.empty()) m.req(id).plan = commit_without_deletions_plan();
  m.route(id, now);
  m.publish_gauges();
}

void PgClient::release_maildrop(uint64_t tag, int64_t tenant_id, int64_t user_id,
                                LockHolder holder, const SessionEnd& end, TimePoint now) noexcept {
  Impl& m = *impl_;
  const uint32_t id = m.begin(tag, RequestKind::kReleaseMaildrop, now);
  if (!valid_instance_id(holder.instance_id)) {
    m.fail_now(id, Status::kPermanent, "invalid lock holder instance id");
    return;
  }
  ParamBlock& p = m.req(id).params;
  p.add_int8(tenant_id);
  p.add_int8(user_id);
  (void)p.add_text(holder.instance_id);
  p.add_int8(holder.session_id);
  p.add_int8_array(end.retrieved_ids);
  if (!p.add_text(kept_uidls(end))) {
    m.fail_now(id, Status::kPermanent, "kept UIDLs too long");
    return;
  }
  m.route(id, now);
  m.publish_gauges();
}

void PgClient::deliver(uint64_t tag, int64_t tenant_id, int64_t user_id, std::string_view body,
                       TimePoint now) noexcept {
  Impl& m = *impl_;
  const uint32_t id = m.begin(tag, RequestKind::kDeliver, now);
  ParamBlock& p = m.req(id).params;
  p.add_int8(tenant_id);
  p.add_int8(user_id);
  p.add_borrowed_bytes(body);
  m.route(id, now);
  m.publish_gauges();
}

void PgClient::renew_leases(uint64_t tag, std::string_view instance_id,
                            std::span<const int64_t> session_ids, TimePoint now) noexcept {
  Impl& m = *impl_;
  const uint32_t id = m.begin(tag, RequestKind::kRenewLeases, now);
  if (session_ids.empty()) {
    m.finish_status(id, Status::kOk);  // nothing to renew
    return;
  }
  if (!valid_instance_id(instance_id)) {
    m.fail_now(id, Status::kPermanent, "invalid lock holder instance id");
    return;
  }
  ParamBlock& p = m.req(id).params;
  (void)p.add_text(instance_id);
  p.add_int8(m.options_.lock_lease.count());
  p.add_int8_array(session_ids);
  m.route(id, now);
  m.publish_gauges();
}

bool PgClient::poll_completion(Completion& out) noexcept {
  Impl& m = *impl_;
  if (m.completed_.empty()) return false;
  const uint32_t id = m.completed_.front();
  m.completed_.pop_front();
  // Small strings are copied into the caller's (long-lived) completion and
  // keep their capacity on both sides, so a warm client never allocates for
  // them; the listing and the body result change hands.
  Completion& done = m.req(id).done;
  out.tag = done.tag;
  out.kind = done.kind;
  out.status = done.status;
  out.submitted = done.submitted;
  out.first_result = done.first_result;
  out.error.assign(done.error);
  UserRecord& u = out.user;
  const UserRecord& from = done.user;
  u.tenant_id = from.tenant_id;
  u.user_id = from.user_id;
  u.since_last_login_s = from.since_last_login_s;
  u.domain.assign(from.domain);
  u.password_hash.assign(from.password_hash);
  u.scram_sha256.assign(from.scram_sha256);
  u.apop_secret.assign(from.apop_secret);
  u.policy.login_delay_s = from.policy.login_delay_s;
  u.policy.expire_days = from.policy.expire_days;
  u.policy.require_tls = from.policy.require_tls;
  u.policy.sessions_max = from.policy.sessions_max;
  u.policy.logins_per_minute = from.policy.logins_per_minute;
  u.policy.mechanisms.assign(from.policy.mechanisms);
  u.policy.hide_deleted = from.policy.hide_deleted;
  out.listing = std::move(done.listing);
  out.previous_uidls.assign(done.previous_uidls);
  out.kicked.assign(done.kicked.begin(), done.kicked.end());
  out.lost.assign(done.lost.begin(), done.lost.end());
  out.message_id = done.message_id;
  out.uidl.assign(done.uidl);
  out.body = std::move(done.body);
  out.body_bytes = done.body_bytes;
  out.affected = done.affected;
  m.free_requests_.push_back(id);
  return true;
}

PgClientStats PgClient::stats() const noexcept {
  const Impl& m = *impl_;
  constexpr auto r = std::memory_order_relaxed;
  PgClientStats s;
  s.connections_up = m.connections_up_.load(r);
  s.requests = m.requests_total_.load(r);
  s.errors_temporary = m.errors_temporary_.load(r);
  s.errors_permanent = m.errors_permanent_.load(r);
  s.timeouts = m.timeouts_.load(r);
  s.reconnects = m.reconnects_.load(r);
  s.in_flight = m.in_flight_.load(r);
  s.queued = m.queued_.load(r);
  s.overloaded = m.overloaded_.load(r);
  s.rows_streamed = m.rows_streamed_.load(r);
  s.deadline_expired = m.deadline_expired_.load(r);
  s.connect_failures = m.connect_failures_.load(r);
  return s;
}

}  // namespace popgate::storage
