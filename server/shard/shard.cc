// The shard loop: accept, receive, send, timers and stopping. Storage and
// KDF traffic is in shard_store.cc.
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
#include "server/net/listener.h"

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

Shard::Shard(ShardOptions options, auth::KdfPool& kdf)
    : opts_(std::move(options)),
      kdf_(kdf),
      out_pool_(opts_.output_buffer_bytes),
      table_(opts_.connections_max) {
  control_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  POPGATE_CHECK(control_fd_ >= 0, "eventfd");
  tick_ts_.tv_sec = opts_.tick.count() / 1000;
  tick_ts_.tv_nsec = (opts_.tick.count() % 1000) * 1'000'000;
}

Shard::~Shard() {
  // A forced stop can leave a password check running for this shard.
  kdf_.detach(outbox_);
  if (!listener_closed_ && opts_.listener_fd >= 0) close(opts_.listener_fd);
  if (control_fd_ >= 0) close(control_fd_);
}

int Shard::run() {
  if (int rc = ring_.init(opts_.ring_entries); rc < 0) return rc;
  if (int rc = recv_buffers_.init(ring_.raw(), 0, opts_.recv_buffers, opts_.recv_buffer_bytes); rc < 0) {
    return rc;
  }
  pg_ = std::make_unique<storage::PgClient>(opts_.storage);
  now_ = Clock::now();
  next_renewal_ = now_ + opts_.storage.lock_lease / 3;
  arm_accept();
  arm_poll(Op::kPollStorage, pg_->event_fd());
  arm_poll(Op::kPollKdf, outbox_.event_fd());
  arm_poll(Op::kPollControl, control_fd_);
  arm_tick();
  started_.store(true, std::memory_order_release);
  POPGATE_LOG(kDebug, "shard_started").unum("shard", opts_.index).unum("ring_flags", ring_.setup_flags());

  while (!done_) {
    ring_.submit_and_wait(1);
    now_ = Clock::now();
    counters_.loop_wakeups.add();
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
    // Storage and KDF replies can also arrive without a wakeup (a request
    // refused at once); drain until both are quiet.
    while (drain_storage() || drain_kdf()) {
    }
    if (stopping_) check_stopped();
  }
  pg_.reset();  // closes database connections; unsent releases lapse by lease
  return 0;
}

void Shard::request_stop(std::chrono::milliseconds drain) noexcept {
  drain_ms_.store(drain.count(), std::memory_order_relaxed);
  stop_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  ssize_t n = write(control_fd_, &one, sizeof one);
  (void)n;  // an eventfd write only fails when the counter would overflow
}

// ---- Arming ----------------------------------------------------------------------

void Shard::arm_accept() noexcept {
  if (listener_closed_ || accept_armed_) return;
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_multishot_accept(sqe, opts_.listener_fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, net::pack(Op::kAccept));
  accept_armed_ = true;
}

void Shard::arm_poll(Op op, int fd) noexcept {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_poll_add(sqe, fd, POLLIN);
  io_uring_sqe_set_data64(sqe, net::pack(op));
}

void Shard::arm_tick() noexcept {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_timeout(sqe, &tick_ts_, 0, 0);
  io_uring_sqe_set_data64(sqe, net::pack(Op::kTick));
}

void Shard::arm_recv(Connection& c) noexcept {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_recv(sqe, c.fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = recv_buffers_.group_id();
  io_uring_sqe_set_data64(sqe, net::pack(Op::kRecv, c.slot, c.generation));
  c.recv_armed = true;
}

void Shard::submit_send(Connection& c) noexcept {
  pop3::Session& s = *c.session;
  const std::string_view out = s.pending_output();
  s.begin_send();
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_send(sqe, c.fd, out.data(), out.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, net::pack(Op::kSend, c.slot, c.generation));
  c.send_inflight = true;
}

// ---- Completions -------------------------------------------------------------------

void Shard::handle_cqe(const io_uring_cqe& cqe) noexcept {
  const net::UserData ud = net::unpack(cqe.user_data);
  switch (ud.op) {
    case Op::kAccept:
      handle_accept(cqe);
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
    case Op::kPollStorage:
      pg_->handle_events(now_);
      drain_storage();
      arm_poll(Op::kPollStorage, pg_->event_fd());
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

void Shard::handle_accept(const io_uring_cqe& cqe) noexcept {
  const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  if (!more) accept_armed_ = false;
  if (cqe.res >= 0) {
    on_accepted(cqe.res);
  } else if (cqe.res != -ECANCELED) {
    counters_.accept_errors.add();
    if (cqe.res == -EMFILE || cqe.res == -ENFILE || cqe.res == -ENOMEM || cqe.res == -ENOBUFS) {
      // Out of descriptors or memory: retrying at once would spin. Try
      // again on the next tick.
      accept_paused_ = true;
      if (more) {
        io_uring_sqe* sqe = ring_.sqe();
        io_uring_prep_cancel64(sqe, net::pack(Op::kAccept), 0);
        io_uring_sqe_set_data64(sqe, net::pack(Op::kCancel));
      }
      POPGATE_LOG(kWarn, "accept_failed").unum("shard", opts_.index).str("error", std::strerror(-cqe.res));
      return;
    }
  }
  if (!accept_armed_ && !stopping_ && !accept_paused_) arm_accept();
}

void Shard::on_accepted(int fd) noexcept {
  Connection* c = stopping_ ? nullptr : table_.allocate();
  if (c == nullptr) {
    counters_.connections_rejected.add();
    close(fd);
    return;
  }
  c->fd = fd;
  c->recv_armed = c->send_inflight = c->closing = c->lingering = c->cancel_sent = false;
  c->store_inflight = 0;
  c->in_buffer = -1;
  c->in_offset = c->in_length = 0;
  c->bytes_in = c->bytes_out = 0;
  c->opened_at = now_;
  c->session_id = (static_cast<int64_t>(opts_.index) << 48) | next_session_id_++;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  c->peer[0] = '\0';
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    net::format_endpoint(reinterpret_cast<sockaddr*>(&peer), len, c->peer.data(), c->peer.size());
  }
  c->session.emplace(opts_.session, out_pool_, counters_.pop3, now_);
  counters_.connections_accepted.add();
  counters_.connections_active.store(table_.active(), std::memory_order_relaxed);
  pump(*c);
}

void Shard::handle_recv(Connection& c, const io_uring_cqe& cqe) noexcept {
  c.recv_armed = false;
  int32_t buffer = -1;
  if (cqe.flags & IORING_CQE_F_BUFFER) {
    buffer = static_cast<int32_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    recv_buffers_.note_taken();
  }
  if (c.closing) {
    if (buffer >= 0) recv_buffers_.recycle(static_cast<uint16_t>(buffer));
    maybe_finish_close(c);
    return;
  }
  if (c.lingering) {
    // Whatever the peer still sends after our last reply is dropped; EOF
    // or an error ends the linger.
    if (buffer >= 0) recv_buffers_.recycle(static_cast<uint16_t>(buffer));
    if (cqe.res > 0 && now_ < c.linger_until) {
      arm_recv(c);
    } else {
      begin_close(c);
    }
    return;
  }
  if (cqe.res > 0 && buffer >= 0) {
    c.in_buffer = buffer;
    c.in_offset = 0;
    c.in_length = static_cast<uint32_t>(cqe.res);
    c.bytes_in += static_cast<uint64_t>(cqe.res);
    counters_.bytes_received.add(static_cast<uint64_t>(cqe.res));
  } else {
    if (buffer >= 0) recv_buffers_.recycle(static_cast<uint16_t>(buffer));
    if (cqe.res == -ENOBUFS) {
      // Every receive buffer is held by sessions waiting on something;
      // re-arm once one comes back.
      counters_.recv_no_buffers.add();
      starved_.emplace_back(c.slot, c.generation);
      return;
    }
    // EOF (0) or an error: the peer is gone. No UPDATE.
    c.session->handle_peer_closed(now_);
  }
  pump(c);
}

void Shard::handle_send(Connection& c, const io_uring_cqe& cqe) noexcept {
  c.send_inflight = false;
  if (cqe.res > 0) {
    c.bytes_out += static_cast<uint64_t>(cqe.res);
    counters_.bytes_sent.add(static_cast<uint64_t>(cqe.res));
    c.session->handle_output_sent(static_cast<size_t>(cqe.res), now_);
  } else {
    c.session->handle_output_sent(0, now_);  // releases the in-flight mark
    c.session->handle_peer_closed(now_);
  }
  if (c.closing) {
    maybe_finish_close(c);
    return;
  }
  pump(c);
}

// ---- Driving a session ------------------------------------------------------------

void Shard::recycle_input(Connection& c) noexcept {
  if (c.in_buffer < 0) return;
  recv_buffers_.recycle(static_cast<uint16_t>(c.in_buffer));
  c.in_buffer = -1;
  c.in_offset = c.in_length = 0;
  // A buffer came back: a starved connection can receive again.
  while (!starved_.empty()) {
    const auto [slot, generation] = starved_.back();
    starved_.pop_back();
    Connection* s = table_.find(slot, generation);
    if (s != nullptr && !s->closing && !s->recv_armed && s->in_buffer < 0 &&
        s->session->wants_input()) {
      arm_recv(*s);
      break;
    }
  }
}

void Shard::feed_input(Connection& c) noexcept {
  pop3::Session& s = *c.session;
  const std::string_view bytes(recv_buffers_.data(static_cast<uint16_t>(c.in_buffer)) + c.in_offset,
                               c.in_length);
  const size_t used = s.handle_input(bytes, now_);
  c.in_offset += static_cast<uint32_t>(used);
  c.in_length -= static_cast<uint32_t>(used);
  if (c.in_length == 0) recycle_input(c);
}

void Shard::feed_body(Connection& c) noexcept {
  const size_t used = c.session->handle_body_chunk(pop3::StoreStatus::kOk, c.body_rest, now_);
  c.body_rest.remove_prefix(used);
  if (c.body_rest.empty()) c.body.reset();
}

void Shard::pump(Connection& c) noexcept {
  pop3::Session& s = *c.session;
  for (;;) {
    if (c.closing || c.lingering) return;
    if (const pop3::Request* r = s.take_request()) {
      submit_request(c, *r);
      continue;
    }
    if (c.body && s.wants_body_bytes()) {
      const size_t before = c.body_rest.size();
      feed_body(c);
      if (!c.body || c.body_rest.size() != before) continue;
    }
    if (c.in_buffer >= 0 && s.wants_input()) {
      const uint32_t before = c.in_length;
      feed_input(c);
      if (c.in_buffer < 0 || c.in_length != before) continue;
    }
    break;
  }
  const pop3::CloseMode mode = s.close_mode();
  if (mode == pop3::CloseMode::kNow) {
    begin_close(c);
    return;
  }
  if (!c.send_inflight && !s.pending_output().empty()) submit_send(c);
  if (mode == pop3::CloseMode::kAfterFlush) {
    if (!c.send_inflight && s.pending_output().empty()) begin_linger(c);
    return;
  }
  if (!c.recv_armed && c.in_buffer < 0 && s.wants_input()) arm_recv(c);
}

// ---- Closing ----------------------------------------------------------------------

// A graceful end: the last reply is out. Closing now with unread client
// bytes in the socket would make the kernel send RST, which can destroy that
// reply before the client reads it (a client that pipelined past QUIT). So
// send FIN and drain until the peer closes too, for at most `linger`.
void Shard::begin_linger(Connection& c) noexcept {
  if (c.lingering || c.closing) return;
  c.lingering = true;
  c.linger_until = now_ + opts_.linger;
  shutdown(c.fd, SHUT_WR);
  recycle_input(c);
  if (!c.recv_armed) arm_recv(c);
}

void Shard::begin_close(Connection& c) noexcept {
  c.lingering = false;
  if (!c.closing) {
    c.closing = true;
    // Wake any receive or send still parked on the socket.
    shutdown(c.fd, SHUT_RDWR);
  }
  if ((c.recv_armed || c.send_inflight) && !c.cancel_sent) {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_cancel_fd(sqe, c.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, net::pack(Op::kCancel));
    c.cancel_sent = true;
  }
  maybe_finish_close(c);
}

void Shard::maybe_finish_close(Connection& c) noexcept {
  if (!c.closing || c.recv_armed || c.send_inflight || c.store_inflight > 0) return;
  pop3::Session& s = *c.session;
  if (s.holds_maildrop()) release_lock(c);
  recycle_input(c);
  c.body.reset();
  c.body_rest = {};
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(now_ - c.opened_at);
  POPGATE_LOG(kInfo, "session_end")
      .str("listener", opts_.listener_name)
      .str("peer", c.peer_text())
      .str("user", s.login())
      .str("end", pop3::end_reason_name(s.end_reason()))
      .num("duration_ms", duration.count())
      .unum("bytes_in", c.bytes_in)
      .unum("bytes_out", c.bytes_out)
      .unum("shard", opts_.index);
  c.session.reset();
  close(c.fd);
  c.fd = -1;
  table_.release(c);
  counters_.connections_closed.add();
  counters_.connections_active.store(table_.active(), std::memory_order_relaxed);
}

// ---- Timers and stopping -------------------------------------------------------------

void Shard::handle_tick() noexcept {
  arm_tick();
  pg_->handle_tick(now_);
  if (accept_paused_ && !stopping_) {
    accept_paused_ = false;
    arm_accept();
  }
  if (now_ >= next_renewal_) {
    next_renewal_ = now_ + opts_.storage.lock_lease / 3;
    renew_leases();
  }
  if (stopping_ && !sessions_shut_ && now_ >= drain_deadline_) shutdown_sessions();
  // Linear scan: ~5 ns a connection, so 50,000 sessions cost a quarter of
  // a millisecond per tick; cheaper in code and cache than a timer wheel.
  table_.for_each_active([this](Connection& c) {
    if (c.lingering && now_ >= c.linger_until) {
      counters_.linger_timeouts.add();
      begin_close(c);
      return;
    }
    if (c.closing || c.lingering || now_ < c.session->deadline()) return;
    c.session->handle_timer(now_);
    pump(c);
  });
}

void Shard::handle_control() noexcept {
  uint64_t value = 0;
  ssize_t n = read(control_fd_, &value, sizeof value);
  (void)n;
  if (stop_requested_.load(std::memory_order_acquire) && !stopping_) begin_stop();
  if (!done_) arm_poll(Op::kPollControl, control_fd_);
}

void Shard::begin_stop() noexcept {
  stopping_ = true;
  const auto drain = std::chrono::milliseconds(drain_ms_.load(std::memory_order_relaxed));
  drain_deadline_ = now_ + drain;
  hard_deadline_ = drain_deadline_ + opts_.stop_grace;
  if (accept_armed_) {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_cancel64(sqe, net::pack(Op::kAccept), 0);
    io_uring_sqe_set_data64(sqe, net::pack(Op::kCancel));
  }
  // The pending accept holds its own reference to the socket; closing our
  // descriptor now stops new connections once the cancel lands.
  close(opts_.listener_fd);
  listener_closed_ = true;
  POPGATE_LOG(kInfo, "shard_stopping").unum("shard", opts_.index).num("drain_ms", drain.count())
      .unum("sessions", table_.active());
  if (drain.count() == 0) shutdown_sessions();
}

void Shard::shutdown_sessions() noexcept {
  sessions_shut_ = true;
  table_.for_each_active([this](Connection& c) {
    if (c.closing || c.lingering) return;
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
