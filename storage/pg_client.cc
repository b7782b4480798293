// PgClient's engine: request slots, routing, pipelines and their results,
// connection lifecycle and deadlines. See pg_client_impl.h for the state and
// the life of a request; the public entry points are in pg_client_api.cc.
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "storage/pg_client_impl.h"
#include "storage/pg_errors.h"

namespace popgate::storage {

using namespace client_detail;

PgClient::Impl::Impl(PgClientOptions options)
    : options_(std::move(options)),
      stuck_after_(options_.query_timeout +
                   std::max(options_.query_timeout / 4, kStuckGraceMin)),
      waiting_(std::min<std::size_t>(options_.queued_requests_max, kRequestsPrealloc)),
      completed_(kRequestsPrealloc) {
  if (options_.connections == 0 || options_.connections > kConnectionsMax) {
    throw std::invalid_argument("storage: connections must be 1..64");
  }
  if (options_.query_timeout.count() <= 0 || options_.connect_timeout.count() <= 0 ||
      options_.lock_lease.count() <= 0 || options_.reconnect_backoff_min.count() <= 0 ||
      options_.reconnect_backoff_max < options_.reconnect_backoff_min) {
    throw std::invalid_argument("storage: timeouts and backoffs must be positive, min <= max");
  }
  rng_ = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) ^
         reinterpret_cast<uintptr_t>(this);
  conns_.resize(options_.connections);
  for (Connection& k : conns_) k.backoff = options_.reconnect_backoff_min;
  outcomes_.reserve(options_.connections);
  requests_.reserve(kRequestsPrealloc);
  free_requests_.reserve(kRequestsPrealloc);
  for (std::size_t i = 0; i < kRequestsPrealloc; ++i) {
    requests_.push_back(new_request());
    free_requests_.push_back(static_cast<uint32_t>(kRequestsPrealloc - 1 - i));
  }

  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  ConnectorSettings cs;
  cs.conninfo = options_.conninfo;
  cs.application_name = options_.application_name;
  cs.connect_timeout = options_.connect_timeout;
  cs.statement_timeout = std::max(
      milliseconds{1}, options_.query_timeout - options_.query_timeout / kServerTimeoutShareDivisor);
  try {
    connector_ = std::make_unique<PgConnector>(std::move(cs), options_.connections);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kConnectorToken;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, connector_->ready_fd(), &ev) != 0) {
      throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
  } catch (...) {
    connector_.reset();
    ::close(epoll_fd_);
    throw;
  }
  for (std::size_t c = 0; c < conns_.size(); ++c) request_connect(static_cast<int>(c));
}

PgClient::Impl::~Impl() {
  connector_.reset();  // joins its thread
  for (Connection& k : conns_) {
    if (k.conn != nullptr) PQfinish(k.conn);
  }
  ::close(epoll_fd_);
}

// ---- request slots and completions ----

// A request slot with room for typical credentials and error text, so that
// decoding into it does not allocate once the slot exists.
std::unique_ptr<Request> PgClient::Impl::new_request() {
  auto r = std::make_unique<Request>();
  UserRecord& u = r->done.user;
  u.domain.reserve(kDomainBytesReserved);
  u.password_hash.reserve(kCredentialBytesReserved);
  u.scram_sha256.reserve(kCredentialBytesReserved);
  u.apop_secret.reserve(kSmallTextBytesReserved);
  u.policy.mechanisms.reserve(kSmallTextBytesReserved);
  r->done.error.reserve(kErrorBytesMax);
  return r;
}

uint32_t PgClient::Impl::begin(uint64_t tag, RequestKind kind, TimePoint now) noexcept {
  if (free_requests_.empty()) {
    requests_.push_back(new_request());
    // A slot is in at most one of these at a time, so sizing them with the
    // pool means only pool growth ever allocates, however bursty the load.
    const std::size_t slots = requests_.capacity();
    free_requests_.reserve(slots);
    completed_.reserve(slots);
    waiting_.reserve(std::min<std::size_t>(slots, options_.queued_requests_max));
    free_requests_.push_back(static_cast<uint32_t>(requests_.size() - 1));
  }
  const uint32_t id = free_requests_.back();
  free_requests_.pop_back();
  Request& r = req(id);
  Completion& d = r.done;
  r.plan = statement_plan(kind);
  d.tag = tag;
  d.kind = kind;
  d.status = Status::kOk;
  d.submitted = now;
  d.first_result = TimePoint{};
  d.error.clear();
  d.user.tenant_id = d.user.user_id = 0;
  d.user.since_last_login_s = -1;
  d.user.domain.clear();
  d.user.password_hash.clear();
  d.user.scram_sha256.clear();
  d.user.apop_secret.clear();
  d.user.policy.login_delay_s = 0;
  d.user.policy.expire_days = -1;
  d.user.policy.require_tls = false;
  d.user.policy.sessions_max = d.user.policy.logins_per_minute = -1;
  d.user.policy.mechanisms.clear();
  d.user.policy.hide_deleted = false;
  d.previous_uidls.clear();
  d.kicked.clear();
  d.lost.clear();
  d.message_id = 0;
  d.uidl.clear();
  d.listing.message_ids.clear();
  d.listing.sizes.clear();
  d.listing.uidl_ends.clear();
  d.listing.uidl_arena.clear();
  d.listing_hint = 0;
  d.body.reset();
  d.body_bytes = {};
  d.affected = 0;
  r.deadline = now + options_.query_timeout;
  r.params.clear();
  bump(requests_total_);
  return id;
}

void PgClient::Impl::finish(uint32_t id) noexcept {
  const Status s = req(id).done.status;
  if (s == Status::kTemporary) bump(errors_temporary_);
  if (s == Status::kPermanent) bump(errors_permanent_);
  completed_.push_back(id);
}

void PgClient::Impl::finish_status(uint32_t id, Status s) noexcept {
  req(id).done.status = s;
  finish(id);
}

void PgClient::Impl::fail_now(uint32_t id, Status s, std::string_view why) noexcept {
  fail_completion(req(id).done, s, why, "");
  finish(id);
}

// ---- routing ----

int PgClient::Impl::pick_connection() const noexcept {
  int best = -1;
  std::size_t best_depth = kPipelineDepthMax;
  for (std::size_t c = 0; c < conns_.size(); ++c) {
    const Connection& k = conns_[c];
    if (k.state == ConnState::kUp && k.in_flight.size() < best_depth) {
      best = static_cast<int>(c);
      best_depth = k.in_flight.size();
    }
  }
  return best;
}

void PgClient::Impl::route(uint32_t id, TimePoint now) noexcept {
  // Behind queued requests a new one waits its turn, keeping submit order.
  if (waiting_.empty()) {
    for (int c = pick_connection(); c >= 0; c = pick_connection()) {
      if (send(c, id, now)) return;
    }
  }
  if (waiting_.size() >= options_.queued_requests_max) {
    bump(overloaded_);
    fail_now(id, Status::kTemporary, "overloaded: request queue full");
    return;
  }
  waiting_.push_back(id);
}

void PgClient::Impl::drain_waiting(TimePoint now) noexcept {
  while (!waiting_.empty()) {
    const int c = pick_connection();
    if (c < 0) return;
    // A failed send closed connection c; the request stays first in line.
    if (send(c, waiting_.front(), now)) waiting_.pop_front();
  }
}

// Pipelines the request's statements and a Sync. False (request untouched,
// connection closed) when libpq refuses: nothing can have run, since without
// its Sync the server never commits a segment.
bool PgClient::Impl::send(int c, uint32_t id, TimePoint now) noexcept {
  Connection& k = conns_[static_cast<std::size_t>(c)];
  Request& r = req(id);
  ParamBlock::View v;
  r.params.view(v);
  const StatementPlan& plan = r.plan;
  for (uint8_t i = 0; i < plan.count; ++i) {
    const StatementDef& s = statement_def(plan.ids[i]);
    if (PQsendQueryPrepared(k.conn, s.name, s.param_count, v.values.data(), v.lengths.data(),
                            v.formats.data(), /*resultFormat=binary*/ 1) == 0) {
      close_connection(c, now, "send failed", true);
      return false;
    }
  }
  if (PQpipelineSync(k.conn) == 0) {
    close_connection(c, now, "send failed", true);
    return false;
  }
  if (k.in_flight.empty()) k.progress_at = now;
  k.in_flight.push_back(InFlight{id, 0, r.deadline});
  flush(c, now);
  return true;
}

void PgClient::Impl::flush(int c, TimePoint now) noexcept {
  Connection& k = conns_[static_cast<std::size_t>(c)];
  const int f = PQflush(k.conn);
  if (f < 0) {
    close_connection(c, now, "write failed", true);
    return;
  }
  const bool want = f == 1;
  if (want == k.want_write) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0U);
  ev.data.u64 = static_cast<uint64_t>(c);
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, k.sock, &ev) != 0) {
    close_connection(c, now, "epoll_ctl failed", false);
    return;
  }
  k.want_write = want;
}

// ---- results ----

void PgClient::Impl::read(int c, TimePoint now) noexcept {
  Connection& k = conns_[static_cast<std::size_t>(c)];
  if (PQconsumeInput(k.conn) == 0) {
    close_connection(c, now, "connection lost", true);
    return;
  }
  // Bytes arrived: the server is alive even if a large result (a body chunk
  // over a slow link) is not complete yet.
  k.progress_at = now;
  // In pipeline mode each statement's result is followed by one NULL and a
  // Sync by none; two NULLs in a row mean nothing more is buffered.
  int nulls = 0;
  while (PQisBusy(k.conn) == 0) {
    PGresult* res = PQgetResult(k.conn);
    if (res == nullptr) {
      if (++nulls == 2) break;
      // The next statement's results come next, none parsed yet: the one
      // moment libpq lets a pipelined statement switch to single-row mode.
      arm_row_by_row(k);
      continue;
    }
    nulls = 0;
    if (!on_result(c, res, now)) return;
    if (PQstatus(k.conn) == CONNECTION_BAD) break;
  }
  if (PQstatus(k.conn) == CONNECTION_BAD) close_connection(c, now, "connection lost", true);
}

// Asks libpq for the next statement's rows one at a time when that statement
// is row-by-row (is_row_by_row_statement). If libpq declines (the pipeline
// was aborted by an earlier error), the statement's results come whole, as
// before; decode_listing takes either.
void PgClient::Impl::arm_row_by_row(Connection& k) noexcept {
  if (k.in_flight.empty() || k.in_flight.front().request == kNoRequest) return;
  const InFlight& f = k.in_flight.front();
  const StatementPlan& plan = req(f.request).plan;
  if (f.statements_done < plan.count && is_row_by_row_statement(plan.ids[f.statements_done])) {
    (void)PQsetSingleRowMode(k.conn);
  }
}

// False when the connection was closed.
bool PgClient::Impl::on_result(int c, PGresult* res, TimePoint now) noexcept {
  Connection& k = conns_[static_cast<std::size_t>(c)];
  k.progress_at = now;
  if (k.in_flight.empty()) {
    PQclear(res);
    close_connection(c, now, "result without a request", false);
    return false;
  }
  InFlight& f = k.in_flight.front();
  if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
    PQclear(res);
    const InFlight done = f;
    k.in_flight.pop_front();
    k.backoff = options_.reconnect_backoff_min;  // the connection works
    if (done.request != kNoRequest) finish(done.request);
    return true;
  }
  if (f.request == kNoRequest) {  // completed already at its deadline
    PQclear(res);
    return true;
  }
  Request& r = req(f.request);
  const StatementPlan& plan = r.plan;
  if (f.statements_done >= plan.count) {
    PQclear(res);
    close_connection(c, now, "more results than statements", false);
    return false;
  }
  const StatementId sid = plan.ids[f.statements_done];
  // One row of a row-by-row statement: more results of it follow.
  if (PQresultStatus(res) == PGRES_SINGLE_TUPLE) {
    bump(rows_streamed_);
  } else {
    ++f.statements_done;
  }
  if (r.done.first_result == TimePoint{} && !is_scope_statement(sid)) r.done.first_result = now;
  if (!apply_statement_result(sid, res, r.done)) PQclear(res);
  return true;
}

// ---- connection lifecycle ----

void PgClient::Impl::close_connection(int c, TimePoint now, std::string_view why,
                                      bool libpq_detail) noexcept {
  Connection& k = conns_[static_cast<std::size_t>(c)];
  // Copy libpq's message before PQfinish frees it.
  std::string_view detail = libpq_detail ? PQerrorMessage(k.conn) : "";
  detail = detail.substr(0, std::min(detail.find_first_of("\r\n"), detail.size()));
  char reason[kErrorBytesMax];
  std::size_t reason_bytes = 0;
  for (const std::string_view part : {why, std::string_view(detail.empty() ? "" : ": "), detail}) {
    const std::size_t n = std::min(part.size(), sizeof reason - reason_bytes);
    std::copy_n(part.data(), n, reason + reason_bytes);
    reason_bytes += n;
  }
  const std::string_view message(reason, reason_bytes);

  // If libpq already closed the socket (PQsocket < 0), the kernel dropped it
  // from epoll and its number may belong to someone else now.
  if (PQsocket(k.conn) >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, k.sock, nullptr);
  PQfinish(k.conn);
  k.conn = nullptr;
  k.sock = -1;
  k.want_write = false;
  schedule_retry(k, now);

  // Without their Sync results nothing these requests did is committed.
  while (!k.in_flight.empty()) {
    const InFlight f = k.in_flight.front();
    k.in_flight.pop_front();
    if (f.request == kNoRequest) continue;
    Completion& d = req(f.request).done;
    if (d.status != Status::kTemporary && d.status != Status::kPermanent) {
      fail_completion(d, Status::kTemporary, message, "");
    }
    finish(f.request);
  }
}

void PgClient::Impl::schedule_retry(Connection& k, TimePoint now) noexcept {
  // Uniform in [backoff/2, backoff], so shards that lost the server at the
  // same moment do not all come back in the same millisecond.
  rng_ += 0x9e3779b97f4a7c15ULL;
  uint64_t z = rng_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const auto half = static_cast<uint64_t>(k.backoff.count()) / 2;
  const auto delay = milliseconds(static_cast<int64_t>(half + z % (half + 1)));
  k.state = ConnState::kDown;
  k.retry_at = now + delay;
  k.backoff = std::min(k.backoff * 2, options_.reconnect_backoff_max);
}

void PgClient::Impl::request_connect(int c) noexcept {
  Connection& k = conns_[static_cast<std::size_t>(c)];
  if (k.attempted) bump(reconnects_);
  k.attempted = true;
  k.state = ConnState::kConnecting;
  connector_->request(static_cast<uint32_t>(c));
}

void PgClient::Impl::adopt_connections(TimePoint now) noexcept {
  outcomes_.clear();
  connector_->take(outcomes_);
  for (ConnectOutcome& o : outcomes_) {
    Connection& k = conns_[o.slot];
    if (o.conn == nullptr) {
      bump(connect_failures_);
      last_connect_error_ = std::move(o.error);
      schedule_retry(k, now);
      continue;
    }
    k.conn = o.conn;
    k.sock = PQsocket(o.conn);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = o.slot;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, k.sock, &ev) != 0) {
      bump(connect_failures_);
      PQfinish(k.conn);
      k.conn = nullptr;
      k.sock = -1;
      schedule_retry(k, now);
      continue;
    }
    k.state = ConnState::kUp;
    k.want_write = false;
    k.progress_at = now;
  }
}

// ---- deadlines ----

void PgClient::Impl::expire(TimePoint now) noexcept {
  for (std::size_t c = 0; c < conns_.size(); ++c) {
    Connection& k = conns_[c];
    if (k.state == ConnState::kDown && now >= k.retry_at) {
      request_connect(static_cast<int>(c));
      continue;
    }
    if (k.state != ConnState::kUp || k.in_flight.empty()) continue;
    if (now - k.progress_at > stuck_after_) {
      // The server is silent past its own statement_timeout: a stopped or
      // partitioned server. PQcancel would block; closing does not.
      bump(timeouts_);
      close_connection(static_cast<int>(c), now, "query timeout: connection stuck", false);
      continue;
    }
    // Requests past their deadline complete now; their results, when they
    // come, are read and dropped.
    for (std::size_t i = 0; i < k.in_flight.size(); ++i) {
      InFlight& f = k.in_flight[i];
      if (f.request == kNoRequest || f.deadline > now) continue;
      bump(deadline_expired_);
      fail_now(f.request, Status::kTemporary, "query timeout");
      f.request = kNoRequest;
    }
  }
  while (!waiting_.empty() && req(waiting_.front()).deadline <= now) {
    const uint32_t id = waiting_.front();
    waiting_.pop_front();
    bump(deadline_expired_);
    Completion& d = req(id).done;
    const bool any_up = std::any_of(conns_.begin(), conns_.end(), [](const Connection& k) {
      return k.state == ConnState::kUp;
    });
    if (!any_up) {
      fail_completion(d, Status::kTemporary, "no database connection", last_connect_error_);
    } else {
      fail_completion(d, Status::kTemporary, "query timeout while queued", "");
    }
    finish(id);
  }
}

void PgClient::Impl::publish_gauges() noexcept {
  uint32_t up = 0;
  std::size_t in_flight = 0;
  for (const Connection& k : conns_) {
    up += k.state == ConnState::kUp ? 1 : 0;
    in_flight += k.in_flight.size();
  }
  connections_up_.store(up, std::memory_order_relaxed);
  in_flight_.store(static_cast<uint32_t>(in_flight), std::memory_order_relaxed);
  queued_.store(static_cast<uint32_t>(waiting_.size()), std::memory_order_relaxed);
}

}  // namespace popgate::storage
