// The shard loop: setup, accept, timers and stopping. Connection I/O (PROXY,
// TLS, session bytes) is in shard_io.cc; storage, KDF, auth steps and limits
// in shard_store.cc.
#include "server/shard/shard.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "server/base/check.h"
#include "server/base/log.h"

namespace popgate::shard {

using net::Op;

// ---- Connection table --------------------------------------------------------

Connection* ConnectionTable::allocate() {
  uint32_t slot = 0;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    if (allocated_ >= capacity_ || allocated_ >= net::kSlotsMax) return nullptr;
    if (allocated_ % kChunkSlots == 0) {
      chunks_.push_back(std::make_unique<Connection[]>(kChunkSlots));
      free_.reserve(chunks_.size() * kChunkSlots);
    }
    slot = allocated_++;
    at(slot).slot = slot;
  }
  Connection& c = at(slot);
  c.in_use = true;
  ++active_;
  return &c;
}

void ConnectionTable::release(Connection& c) noexcept {
  c.in_use = false;
  ++c.generation;
  --active_;
  free_.push_back(c.slot);
}

Connection* ConnectionTable::find(uint32_t slot, uint32_t generation) noexcept {
  if (slot >= allocated_) return nullptr;
  Connection& c = at(slot);
  return c.in_use && c.generation == generation ? &c : nullptr;
}

// ---- Setup ---------------------------------------------------------------------

std::string_view conn_state_name(ConnState s) noexcept {
  static constexpr std::array<std::string_view, kConnStates> kNames = {
      "proxy_header", "tls_handshake", "authorization", "transaction", "update", "closing", "lmtp"};
  const auto i = static_cast<size_t>(s);
  return i < kNames.size() ? kNames[i] : "unknown";
}

Shard::Shard(ShardOptions options, auth::KdfPool& kdf)
    : opts_(std::move(options)),
      kdf_(kdf),
      counters_(opts_.listeners.size(), 1 + opts_.cluster_conninfo.size()),
      tenants_(opts_.tenant_labels_max, opts_.tenant_labels_only),
      out_pool_(opts_.output_buffer_bytes),
      tls_pool_(tls::kCiphertextPendingBytesMax),
      tls_(opts_.tls),
      verify_cache_(std::max<uint32_t>(opts_.verify_cache_entries, 1),
                    std::chrono::duration_cast<Clock::duration>(opts_.verify_cache_ttl)),
      table_(opts_.connections_max),
      thresholds_(opts_.limits.thresholds != nullptr ? *opts_.limits.thresholds : default_thresholds_) {
  POPGATE_CHECK(opts_.listeners.size() <= 255, "at most 255 listeners");
  POPGATE_CHECK(1 + opts_.cluster_conninfo.size() <= storage::kClustersMax, "too many PostgreSQL clusters");
  for (ListenerOptions& l : opts_.listeners) listeners_.push_back(ListenerState{std::move(l)});
  opts_.listeners.clear();
  control_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  POPGATE_CHECK(control_fd_ >= 0, "eventfd");
  tick_ts_.tv_sec = opts_.tick.count() / 1000;
  tick_ts_.tv_nsec = (opts_.tick.count() % 1000) * 1'000'000;
}

Shard::~Shard() {
  // A forced stop can leave a password check running for this shard.
  kdf_.detach(outbox_);
  for (ListenerState& l : listeners_) {
    if (!l.closed && l.options.fd >= 0) close(l.options.fd);
  }
  if (control_fd_ >= 0) close(control_fd_);
}

int Shard::run() {
  if (int rc = ring_.init(opts_.ring_entries); rc < 0) return rc;
  if (int rc = recv_buffers_.init(ring_.raw(), 0, opts_.recv_buffers, opts_.recv_buffer_bytes); rc < 0) {
    return rc;
  }
  // One client per cluster, each with its own connections (and cap).
  pgs_.push_back(std::make_unique<storage::PgClient>(opts_.storage));
  for (const std::string& conninfo : opts_.cluster_conninfo) {
    storage::PgClientOptions o = opts_.storage;
    o.conninfo = conninfo;
    o.application_name += "/cluster" + std::to_string(pgs_.size());
    pgs_.push_back(std::make_unique<storage::PgClient>(std::move(o)));
  }
  now_ = Clock::now();
  next_renewal_ = now_ + opts_.storage.lock_lease / 3;
  for (uint8_t i = 0; i < listeners_.size(); ++i) arm_accept(i);
  for (uint32_t i = 0; i < pgs_.size(); ++i) arm_poll(Op::kPollStorage, pgs_[i]->event_fd(), i);
  arm_poll(Op::kPollKdf, outbox_.event_fd());
  arm_poll(Op::kPollControl, control_fd_);
  arm_tick();
  started_.store(true, std::memory_order_release);
  POPGATE_LOG(kDebug, "shard_started").unum("shard", opts_.index).unum("ring_flags", ring_.setup_flags());

  while (!done_) {
    const int submitted = ring_.submit_and_wait(1);
    now_ = Clock::now();
    counters_.loop_wakeups.add();
    if (submitted > 0) counters_.submit_batch.observe(static_cast<uint64_t>(submitted));
    io_uring* ring = ring_.raw();
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(ring, head, cqe) {
      handle_cqe(*cqe);
      ++seen;
    }
    io_uring_cq_advance(ring, seen);
    counters_.loop_completions.add(seen);
    counters_.completions_per_wakeup.observe(seen);
    // Storage and KDF replies can also arrive without a wakeup (a request
    // refused at once); drain until both are quiet.
    while (drain_storage() || drain_kdf()) {
    }
    if (stopping_) check_stopped();
  }
  pgs_.clear();  // closes database connections; unsent releases lapse by lease
  return 0;
}

void Shard::request_stop(std::chrono::milliseconds drain) noexcept {
  drain_ms_.store(drain.count(), std::memory_order_relaxed);
  stop_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  ssize_t n = write(control_fd_, &one, sizeof one);
  (void)n;  // an eventfd write only fails when the counter would overflow
}

void Shard::set_tls_context(std::shared_ptr<const tls::TlsContext> context) noexcept {
  {
    std::lock_guard lock(control_mu_);
    pending_tls_ = std::move(context);
    tls_pending_ = true;
  }
  const uint64_t one = 1;
  ssize_t n = write(control_fd_, &one, sizeof one);
  (void)n;
}

// ---- Arming ----------------------------------------------------------------------

void Shard::arm_accept(uint8_t listener) noexcept {
  ListenerState& l = listeners_[listener];
  if (l.closed || l.accept_armed) return;
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_multishot_accept(sqe, l.options.fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, net::pack(Op::kAccept, listener));
  l.accept_armed = true;
}

void Shard::arm_poll(Op op, int fd, uint32_t slot) noexcept {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_poll_add(sqe, fd, POLLIN);
  io_uring_sqe_set_data64(sqe, net::pack(op, slot));
}

void Shard::arm_tick() noexcept {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_timeout(sqe, &tick_ts_, 0, 0);
  io_uring_sqe_set_data64(sqe, net::pack(Op::kTick));
}

// ---- Completions -------------------------------------------------------------------

void Shard::handle_cqe(const io_uring_cqe& cqe) noexcept {
  const net::UserData ud = net::unpack(cqe.user_data);
  switch (ud.op) {
    case Op::kAccept:
      handle_accept(static_cast<uint8_t>(ud.slot), cqe);
      return;
    case Op::kRecv:
    case Op::kSend: {
      Connection* c = table_.find(ud.slot, ud.generation);
      if (c == nullptr) {
        // Cannot happen (slots outlive their I/O), but a provided buffer
        // must never leak.
        if (cqe.flags & IORING_CQE_F_BUFFER) {
          recv_buffers_.note_taken();
          recv_buffers_.recycle(static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
        }
        return;
      }
      if (ud.op == Op::kRecv) {
        handle_recv(*c, cqe);
      } else {
        handle_send(*c, cqe);
      }
      return;
    }
    case Op::kTick:
      handle_tick();
      return;
    case Op::kPollStorage:  // slot: the cluster
      pgs_[ud.slot]->handle_events(now_);
      drain_storage();
      arm_poll(Op::kPollStorage, pgs_[ud.slot]->event_fd(), ud.slot);
      return;
    case Op::kPollKdf:
      drain_kdf();
      arm_poll(Op::kPollKdf, outbox_.event_fd());
      return;
    case Op::kPollControl:
      handle_control();
      return;
    case Op::kCancel:
    case Op::kNone:
      return;
  }
}

void Shard::handle_accept(uint8_t listener, const io_uring_cqe& cqe) noexcept {
  ListenerState& l = listeners_[listener];
  const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  if (!more) l.accept_armed = false;
  if (cqe.res >= 0) {
    on_accepted(listener, cqe.res);
  } else if (cqe.res != -ECANCELED && !l.closed) {
    counters_.accept_errors.add();
    if (cqe.res == -EMFILE || cqe.res == -ENFILE || cqe.res == -ENOMEM || cqe.res == -ENOBUFS) {
      // Out of descriptors or memory: retrying at once would spin. Try
      // again on the next tick.
      l.accept_paused = true;
      if (more) {
        io_uring_sqe* sqe = ring_.sqe();
        io_uring_prep_cancel64(sqe, net::pack(Op::kAccept, listener), 0);
        io_uring_sqe_set_data64(sqe, net::pack(Op::kCancel));
      }
      POPGATE_LOG(kWarn, "accept_failed")
          .str("listener", l.options.name)
          .unum("shard", opts_.index)
          .str("error", std::strerror(-cqe.res));
      return;
    }
  }
  if (!l.accept_armed && !stopping_ && !l.accept_paused) arm_accept(listener);
}

void Shard::on_accepted(uint8_t listener, int fd) noexcept {
  Connection* c = stopping_ ? nullptr : table_.allocate();
  if (c == nullptr) {
    counters_.connections_rejected.add();
    counters_.listeners[listener].rejected.add();
    close(fd);
    return;
  }
  const ListenerState& l = listeners_[listener];
  c->fd = fd;
  c->listener = listener;
  c->recv_armed = c->send_inflight = c->closing = c->lingering = c->cancel_sent = false;
  c->secure = c->tls_close_queued = c->close_after_send = false;
  c->store_inflight = 0;
  c->in_buffer = -1;
  c->in_offset = c->in_length = 0;
  c->send_offset = c->send_length = 0;
  c->bytes_in = c->bytes_out = 0;
  c->address_key.reset();
  c->address_counted = false;
  c->user_counted.reset();
  c->tenant_counted.reset();
  c->tenant_sessions_max = c->tenant_logins_per_minute = -1;
  c->tenant_slot = UINT32_MAX;
  c->tenant_session_counted = false;
  c->opened_at = now_;
  c->server_name[0] = '\0';
  c->domain[0] = '\0';
  c->session_id = (static_cast<int64_t>(opts_.index) << 48) | next_session_id_++;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->client_len = sizeof c->client;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&c->client), &c->client_len) != 0) c->client_len = 0;
  set_peer_text(*c);
  POPGATE_LOG(kDebug, "connection_accepted")
      .str("listener", l.options.name)
      .str("peer", c->peer_text())
      .unum("shard", opts_.index);
  counters_.connections_accepted.add();
  counters_.connections_active.store(table_.active(), std::memory_order_relaxed);
  counters_.listeners[listener].accepted.add();
  counters_.listeners[listener].active.add();
  if (l.options.lmtp) {
    start_lmtp(*c);
    return;
  }
  c->session.emplace(l.options.session, out_pool_, counters_.pop3);
  if (l.options.proxy_protocol) {
    // Only the configured load balancers may speak first.
    if (c->client_len == 0 ||
        !l.options.trusted_proxies.contains(reinterpret_cast<const sockaddr*>(&c->client))) {
      counters_.proxy_untrusted.add();
      POPGATE_LOG(kWarn, "proxy_untrusted").str("listener", l.options.name).str("peer", c->peer_text());
      begin_close(*c);
      return;
    }
    if (proxy_pool_.empty()) {
      c->proxy = std::make_unique<proxy::ProxyParser>();
    } else {
      c->proxy = std::move(proxy_pool_.back());
      proxy_pool_.pop_back();
    }
    c->phase = Phase::kProxyHeader;
    c->setup_deadline =
        now_ + std::chrono::milliseconds(threshold(&LimitThresholds::proxy_header_timeout_ms));
    pump(*c);
    return;
  }
  start_connection(*c);
  pump(*c);
}

// ---- Timers and stopping -------------------------------------------------------------

void Shard::handle_tick() noexcept {
  arm_tick();
  for (const auto& pg : pgs_) pg->handle_tick(now_);
  for (uint8_t i = 0; i < listeners_.size(); ++i) {
    ListenerState& l = listeners_[i];
    if (l.accept_paused && !stopping_) {
      l.accept_paused = false;
      arm_accept(i);
    }
  }
  if (now_ >= next_renewal_) {
    next_renewal_ = now_ + opts_.storage.lock_lease / 3;
    renew_leases();
  }
  if (stopping_ && !sessions_shut_ && now_ >= drain_deadline_) shutdown_sessions();
  publish_storage_stats();
  // Linear scan: ~5 ns a connection, so 50,000 sessions cost a quarter of
  // a millisecond per tick; cheaper in code and cache than a timer wheel.
  // It also samples what every connection is doing, for the state gauges.
  std::array<int64_t, kConnStates> by_state{};
  table_.for_each_active([this, &by_state](Connection& c) {
    ++by_state[static_cast<size_t>(conn_state(c))];
    if (c.closing) return;
    if (c.lingering) {
      if (now_ >= c.linger_until) {
        counters_.linger_timeouts.add();
        begin_close(c);
      }
      return;
    }
    if (c.phase == Phase::kLmtp) {
      if (now_ < c.lmtp->deadline()) return;
      c.lmtp->handle_timer(now_);
      pump(c);
      return;
    }
    if (c.phase != Phase::kSession) {
      if (now_ >= c.setup_deadline) {
        (c.phase == Phase::kProxyHeader ? counters_.proxy_timeouts : counters_.tls_handshake_timeouts).add();
        begin_close(c);
      }
      return;
    }
    if (now_ < c.session->deadline()) return;
    c.session->handle_timer(now_);
    pump(c);
  });
  for (size_t i = 0; i < kConnStates; ++i) counters_.connections_by_state[i].set(by_state[i]);
}

ConnState Shard::conn_state(const Connection& c) noexcept {
  if (c.closing || c.lingering) return ConnState::kClosing;
  if (c.phase == Phase::kProxyHeader) return ConnState::kProxyHeader;
  if (c.phase == Phase::kTlsHandshake) return ConnState::kTlsHandshake;
  if (c.phase == Phase::kLmtp) return ConnState::kLmtp;
  switch (c.session->state()) {
    case pop3::Session::State::kAuthorization:
      return ConnState::kAuthorization;
    case pop3::Session::State::kTransaction:
      return ConnState::kTransaction;
    case pop3::Session::State::kUpdate:
      return ConnState::kUpdate;
    case pop3::Session::State::kDone:
      break;
  }
  return ConnState::kClosing;
}

void Shard::publish_storage_stats() noexcept {
  for (size_t i = 0; i < pgs_.size(); ++i) {
    const storage::PgClientStats st = pgs_[i]->stats();
    PgClusterCounters& k = counters_.pg_clusters[i];
    k.connections_up.set(st.connections_up);
    k.in_flight.set(st.in_flight);
    k.queued.set(st.queued);
    k.requests.set(static_cast<int64_t>(st.requests));
    k.errors_temporary.set(static_cast<int64_t>(st.errors_temporary));
    k.errors_permanent.set(static_cast<int64_t>(st.errors_permanent));
    k.timeouts.set(static_cast<int64_t>(st.timeouts));
    k.overloaded.set(static_cast<int64_t>(st.overloaded));
    k.deadline_expired.set(static_cast<int64_t>(st.deadline_expired));
    k.connect_failures.set(static_cast<int64_t>(st.connect_failures));
    k.reconnects.set(static_cast<int64_t>(st.reconnects));
  }
}

void Shard::handle_control() noexcept {
  uint64_t value = 0;
  ssize_t n = read(control_fd_, &value, sizeof value);
  (void)n;
  {
    std::lock_guard lock(control_mu_);
    if (tls_pending_) {
      tls_ = std::move(pending_tls_);
      tls_pending_ = false;
      POPGATE_LOG(kInfo, "tls_context_reloaded").unum("shard", opts_.index);
    }
  }
  if (stop_requested_.load(std::memory_order_acquire)) {
    if (!stopping_) {
      begin_stop();
    } else {
      // A second request (a second signal) may shorten the drain: "now".
      const auto drain = std::chrono::milliseconds(drain_ms_.load(std::memory_order_relaxed));
      if (now_ + drain < drain_deadline_) {
        drain_deadline_ = now_ + drain;
        hard_deadline_ = drain_deadline_ + opts_.stop_grace;
        POPGATE_LOG(kInfo, "shard_stop_hastened").unum("shard", opts_.index).num("drain_ms", drain.count());
        if (!sessions_shut_ && drain.count() == 0) shutdown_sessions();
      }
    }
  }
  if (!done_) arm_poll(Op::kPollControl, control_fd_);
}

void Shard::begin_stop() noexcept {
  stopping_ = true;
  const auto drain = std::chrono::milliseconds(drain_ms_.load(std::memory_order_relaxed));
  drain_deadline_ = now_ + drain;
  hard_deadline_ = drain_deadline_ + opts_.stop_grace;
  for (uint8_t i = 0; i < listeners_.size(); ++i) {
    ListenerState& l = listeners_[i];
    if (l.accept_armed) {
      io_uring_sqe* sqe = ring_.sqe();
      io_uring_prep_cancel64(sqe, net::pack(Op::kAccept, i), 0);
      io_uring_sqe_set_data64(sqe, net::pack(Op::kCancel));
    }
    // io_uring keeps its own reference to the socket for a while after the
    // cancel, and a listening socket outlives close() while any reference
    // does: the kernel would go on completing handshakes nobody accepts.
    // shutdown() takes it out of LISTEN at once, so new connections are
    // refused and the load balancer moves on.
    if (!l.closed) {
      ::shutdown(l.options.fd, SHUT_RDWR);
      close(l.options.fd);
    }
    l.closed = true;
  }
  POPGATE_LOG(kInfo, "shard_stopping").unum("shard", opts_.index).num("drain_ms", drain.count())
      .unum("sessions", table_.active());
  if (drain.count() == 0) shutdown_sessions();
}

void Shard::shutdown_sessions() noexcept {
  sessions_shut_ = true;
  table_.for_each_active([this](Connection& c) {
    if (c.closing || c.lingering) return;
    if (c.phase == Phase::kLmtp) {
      c.lmtp->handle_shutdown(now_);
      pump(c);
      return;
    }
    if (c.phase != Phase::kSession) {
      begin_close(c);
      return;
    }
    c.session->handle_shutdown(now_);
    pump(c);
  });
}

void Shard::check_stopped() noexcept {
  if (table_.active() == 0 && shard_requests_inflight_ == 0) {
    done_ = true;
    return;
  }
  if (now_ >= hard_deadline_) {
    // Something did not drain in time (a peer that will not read, a
    // database that does not answer). Locks still held lapse by lease.
    POPGATE_LOG(kWarn, "shard_stop_forced").unum("shard", opts_.index).unum("sessions", table_.active());
    done_ = true;
  }
}

}  // namespace popgate::shard
