// A connection's bytes: receive, PROXY header, TLS, the session's input and
// output, sends, and closing.
//
//   socket -> [PROXY parser] -> [TlsStream feed/peek] -> Session::handle_input
//   Session output -> [TlsStream write/drain -> send block] -> socket
//
// Receives are armed only while the next stage can take bytes, which is the
// backpressure: a session that waits on the database or a client that does
// not read its reply stops us reading from that socket.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "server/auth/apop.h"
#include "server/base/log.h"
#include "server/net/listener.h"
#include "server/shard/shard.h"

namespace popgate::shard {

using net::Op;

namespace {
// Rounds of pump() work per event: each round moves input, requests or
// output along; the bound only guards against a bug looping forever.
constexpr int kPumpRoundsMax = 64;
}  // namespace

void Shard::set_peer_text(Connection& c) noexcept {
  c.peer[0] = '\0';
  if (c.client_len > 0) {
    net::format_endpoint(reinterpret_cast<const sockaddr*>(&c.client), c.client_len, c.peer.data(),
                         c.peer.size());
  }
}

// ---- Receiving --------------------------------------------------------------------------

void Shard::arm_recv(Connection& c) noexcept {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_recv(sqe, c.fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = recv_buffers_.group_id();
  io_uring_sqe_set_data64(sqe, net::pack(Op::kRecv, c.slot, c.generation));
  c.recv_armed = true;
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
    if (c.phase == Phase::kLmtp) {
      c.lmtp->handle_peer_closed(now_);
      pump(c);
      return;
    }
    if (c.phase != Phase::kSession) {
      begin_close(c);
      return;
    }
    c.session->handle_peer_closed(now_);
  }
  pump(c);
}

std::string_view Shard::received(const Connection& c) const noexcept {
  return {recv_buffers_.data(static_cast<uint16_t>(c.in_buffer)) + c.in_offset, c.in_length};
}

void Shard::advance_input(Connection& c, size_t used) noexcept {
  c.in_offset += static_cast<uint32_t>(used);
  c.in_length -= static_cast<uint32_t>(used);
  if (c.in_length == 0) recycle_input(c);
}

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
    if (s != nullptr && !s->closing && !s->lingering && !s->recv_armed && s->in_buffer < 0) {
      arm_recv(*s);
      break;
    }
  }
}

// ---- The pump: move everything along that can move ---------------------------------------

void Shard::pump(Connection& c) noexcept {
  if (c.phase == Phase::kLmtp) {
    pump_lmtp(c);
    return;
  }
  for (int round = 0; round < kPumpRoundsMax; ++round) {
    if (c.closing || c.lingering) return;
    bool progress = false;
    if (c.phase == Phase::kSession) {
      pop3::Session& s = *c.session;
      if (s.take_auth_failure()) on_auth_failure(c);
      if (const pop3::Request* r = s.take_request()) {
        submit_request(c, *r);
        continue;
      }
      progress = feed_body(c) || progress;
      if (c.tls) progress = tls_take_output(c) || progress;
    }
    progress = feed_input(c) || progress;
    if (!progress) break;
  }
  if (c.closing || c.lingering) return;
  if (c.phase == Phase::kSession) {
    pop3::Session& s = *c.session;
    // STLS accepted and its +OK sent: TLS starts now; anything that came in
    // clear after STLS was already dropped by the session.
    if (s.wants_tls() && !c.tls && s.pending_output().empty() && !c.send_inflight) start_tls(c);
  }
  flush_output(c);
  if (c.closing) return;
  if (c.phase == Phase::kSession) start_prefetch(c);

  // Closing decisions.
  if (c.phase == Phase::kSession) {
    pop3::Session& s = *c.session;
    const pop3::CloseMode mode = s.close_mode();
    if (mode == pop3::CloseMode::kNow) {
      begin_close(c);
      return;
    }
    if (mode == pop3::CloseMode::kAfterFlush && s.pending_output().empty()) {
      if (c.tls && !c.tls_close_queued) {
        c.tls->close();  // close_notify, so the client may resume later
        c.tls_close_queued = true;
        flush_output(c);
      }
      if (!c.send_inflight && (!c.tls || !c.tls->has_ciphertext())) begin_linger(c);
      return;
    }
  }
  if (c.close_after_send) {
    if (!c.send_inflight) begin_close(c);
    return;
  }

  // Receive when the next stage can take bytes.
  if (c.recv_armed || c.in_buffer >= 0) return;
  bool want = false;
  switch (c.phase) {
    case Phase::kProxyHeader:
    case Phase::kTlsHandshake:
      want = true;
      break;
    case Phase::kSession:
      want = c.session->wants_input() || (c.tls && !c.tls->handshake_complete());
      break;
    case Phase::kLmtp:
      break;  // pump_lmtp() decides
  }
  if (want) arm_recv(c);
}

bool Shard::feed_input(Connection& c) noexcept {
  switch (c.phase) {
    case Phase::kProxyHeader:
      return feed_proxy(c);
    case Phase::kTlsHandshake:
      return feed_tls(c);
    case Phase::kSession:
      return c.tls ? feed_tls(c) : feed_plain(c);
    case Phase::kLmtp:
      return feed_lmtp(c);
  }
  return false;
}

bool Shard::feed_plain(Connection& c) noexcept {
  pop3::Session& s = *c.session;
  if (c.in_buffer < 0 || !s.wants_input()) return false;
  const std::string_view bytes = received(c);
  const size_t used = s.handle_input(bytes, now_);
  advance_input(c, used);
  return used > 0;
}

bool Shard::feed_body(Connection& c) noexcept {
  if (!c.body || !c.session->wants_body_bytes()) return false;
  const size_t used = c.session->handle_body_chunk(pop3::StoreStatus::kOk, c.body_rest, now_);
  c.body_rest.remove_prefix(used);
  if (c.body_rest.empty()) c.body.reset();
  return used > 0 || !c.body;
}

// ---- PROXY header -----------------------------------------------------------------------

bool Shard::feed_proxy(Connection& c) noexcept {
  if (c.in_buffer < 0) return false;
  const std::string_view bytes = received(c);
  size_t consumed = 0;
  const proxy::ProxyParser::Status status = c.proxy->feed(bytes, &consumed);
  if (status == proxy::ProxyParser::Status::kInvalid) {
    const auto code = c.proxy->error_code();
    counters_.proxy_errors[static_cast<size_t>(code)].add();
    POPGATE_LOG(kWarn, "proxy_header_invalid")
        .str("listener", listeners_[c.listener].options.name)
        .str("peer", c.peer_text())
        .str("error", proxy::proxy_error_name(code));
    recycle_input(c);
    begin_close(c);
    return false;
  }
  advance_input(c, consumed);
  if (status == proxy::ProxyParser::Status::kNeedMore) return consumed > 0;
  const proxy::ProxyHeader& h = c.proxy->header();
  if (h.command == proxy::ProxyCommand::kLocal) {
    counters_.proxy_local.add();  // the balancer's own health check
  } else if (h.has_ip()) {
    std::memcpy(&c.client, &h.source, sizeof c.client);
    c.client_len = h.source_len;
    set_peer_text(c);
  }
  if (!h.authority.empty()) c.set_server_name(h.authority);
  // TLS ended at a trusted balancer counts as TLS for login rules.
  c.secure = listeners_[c.listener].options.proxy_tls_is_secure && h.ssl.present &&
             (h.ssl.client & proxy::kPp2ClientSsl) != 0;
  c.proxy->reset();
  proxy_pool_.push_back(std::move(c.proxy));
  start_connection(c);
  return true;
}

// ---- Connection start: limits, then TLS or the greeting -----------------------------------

void Shard::start_connection(Connection& c) noexcept {
  const ListenerState& l = listeners_[c.listener];
  if (c.client_len > 0) c.address_key = limits::address_key(reinterpret_cast<const sockaddr*>(&c.client));
  if (c.address_key && opts_.limits.connections_per_address != nullptr) {
    const limits::Acquire a = opts_.limits.connections_per_address->try_acquire(
        *c.address_key, threshold(&LimitThresholds::connections_per_address_max));
    if (a == limits::Acquire::kAcquired) {
      c.address_counted = true;
    } else {
      (a == limits::Acquire::kTableFull ? counters_.limit_table_full : counters_.limit_connections_per_address)
          .add();
      if (l.options.implicit_tls) {
        begin_close(c);  // no plaintext can be said on a TLS port
        return;
      }
      c.phase = Phase::kSession;
      c.session->refuse(pop3::RespCode::kSysTemp, "too many connections from your address", now_);
      return;
    }
  }
  if (l.options.implicit_tls) {
    if (!tls_) {
      begin_close(c);
      return;
    }
    c.tls.emplace(tls_);
    c.phase = Phase::kTlsHandshake;
    c.setup_deadline = now_ + l.options.session.login_idle_timeout;
    return;
  }
  c.phase = Phase::kSession;
  start_session(c, c.secure);
}

void Shard::start_session(Connection& c, bool secure) noexcept {
  c.secure = secure;
  const ListenerState& l = listeners_[c.listener];
  if (!l.options.session.apop) {
    c.session->start(now_, secure);
    return;
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::array<char, auth::kApopBannerBytesMax> buf{};
  auth::ApopBannerInputs in;
  in.pid = static_cast<uint64_t>(getpid());
  in.connection_serial = (uint64_t{opts_.index} << 48) | ++apop_serial_;
  in.random = static_cast<uint64_t>(c.session_id) ^ static_cast<uint64_t>(now_.time_since_epoch().count());
  in.clock = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch() / std::chrono::seconds(1));
  in.hostname = host;
  c.session->start(now_, secure, auth::make_apop_banner(in, buf));
}

// ---- TLS ------------------------------------------------------------------------------------

void Shard::start_tls(Connection& c) noexcept {
  if (!tls_) {
    tls_failed(c);
    return;
  }
  // RFC 2595 3.1: nothing received before the handshake may be used.
  recycle_input(c);
  c.tls.emplace(tls_);
}

void Shard::on_tls_handshake(Connection& c) noexcept {
  tls::TlsStream& t = *c.tls;
  if (!t.server_name().empty()) c.set_server_name(t.server_name());
  (t.version() == "TLSv1.3" ? counters_.tls_handshakes_tls13 : counters_.tls_handshakes_tls12).add();
  if (t.resumed()) counters_.tls_resumed.add();
  if (c.phase == Phase::kTlsHandshake) {
    c.phase = Phase::kSession;
    start_session(c, true);
  } else {
    c.secure = true;
    c.session->handle_tls_started(now_);
  }
}

void Shard::tls_failed(Connection& c) noexcept {
  counters_.tls_failures.add();
  POPGATE_LOG(kInfo, "tls_failed")
      .str("listener", listeners_[c.listener].options.name)
      .str("peer", c.peer_text())
      .str("error", c.tls ? c.tls->error() : std::string_view("no TLS context"));
  recycle_input(c);
  // Whatever alert the stream produced goes out, then the socket closes.
  c.close_after_send = true;
  flush_output(c);
  if (!c.send_inflight) begin_close(c);
}

bool Shard::feed_tls(Connection& c) noexcept {
  tls::TlsStream& t = *c.tls;
  bool progress = false;
  for (int guard = 0; guard < kPumpRoundsMax; ++guard) {
    if (c.in_buffer >= 0) {
      const std::string_view bytes = received(c);
      const size_t took = t.feed(bytes);
      if (took > 0) progress = true;
      advance_input(c, took);
    }
    const bool was_handshaking = c.phase == Phase::kTlsHandshake || (c.session && c.session->wants_tls());
    if (was_handshaking && t.handshake_complete()) {
      on_tls_handshake(c);
      progress = true;
    }
    size_t n = 0;
    const tls::TlsStream::ReadResult r = t.peek(tls_scratch_.data(), tls_scratch_.size(), &n);
    if (r == tls::TlsStream::ReadResult::kData) {
      if (c.phase != Phase::kSession || !c.session->wants_input()) break;  // stays in the stream
      const size_t used = c.session->handle_input(std::string_view(tls_scratch_.data(), n), now_);
      t.consume(used);
      if (used == 0) break;
      progress = true;
      continue;
    }
    if (r == tls::TlsStream::ReadResult::kWantMore) {
      if (c.in_buffer < 0) break;
      continue;
    }
    if (r == tls::TlsStream::ReadResult::kClosed) {
      if (c.phase == Phase::kSession) {
        c.session->handle_peer_closed(now_);
      } else {
        begin_close(c);
      }
      return true;
    }
    tls_failed(c);
    return false;
  }
  return progress;
}

// The session's plaintext into the TLS stream, as far as it takes it.
bool Shard::tls_take_output(Connection& c) noexcept {
  tls::TlsStream& t = *c.tls;
  pop3::Session& s = *c.session;
  if (!t.handshake_complete() || s.sending()) return false;
  bool progress = false;
  for (;;) {
    const std::string_view out = s.pending_output();
    if (out.empty()) break;
    const size_t took = t.write(out);
    if (took == 0) break;
    s.begin_send();
    s.handle_output_sent(took, now_);  // may produce more (LIST, a body)
    progress = true;
  }
  return progress;
}

// ---- Sending ------------------------------------------------------------------------------

void Shard::flush_output(Connection& c) noexcept {
  if (c.send_inflight || c.closing) return;
  if (c.tls) {
    if (!c.tls->has_ciphertext()) {
      release_send_block(c);
      return;
    }
    if (c.send_block == nullptr) c.send_block = tls_pool_.acquire();
    c.send_offset = 0;
    c.send_length = static_cast<uint32_t>(c.tls->drain(c.send_block, tls_pool_.block_bytes()));
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_send(sqe, c.fd, c.send_block, c.send_length, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, net::pack(Op::kSend, c.slot, c.generation));
    c.send_inflight = true;
    return;
  }
  if (c.phase == Phase::kLmtp) {
    const std::string_view out = c.lmtp->pending_output();
    if (out.empty()) return;
    c.lmtp->begin_send();
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_send(sqe, c.fd, out.data(), out.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, net::pack(Op::kSend, c.slot, c.generation));
    c.send_inflight = true;
    return;
  }
  if (c.phase != Phase::kSession) return;
  pop3::Session& s = *c.session;
  const std::string_view out = s.pending_output();
  if (out.empty()) return;
  s.begin_send();
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_send(sqe, c.fd, out.data(), out.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, net::pack(Op::kSend, c.slot, c.generation));
  c.send_inflight = true;
}

void Shard::release_send_block(Connection& c) noexcept {
  if (c.send_block == nullptr) return;
  tls_pool_.release(c.send_block);
  c.send_block = nullptr;
  c.send_offset = c.send_length = 0;
}

void Shard::handle_send(Connection& c, const io_uring_cqe& cqe) noexcept {
  c.send_inflight = false;
  const bool ok = cqe.res > 0;
  if (ok) {
    c.bytes_out += static_cast<uint64_t>(cqe.res);
    counters_.bytes_sent.add(static_cast<uint64_t>(cqe.res));
  }
  if (c.tls && c.send_block != nullptr) {
    if (ok) {
      c.send_offset += static_cast<uint32_t>(cqe.res);
      if (c.send_offset < c.send_length && !c.closing) {
        // A short write: the rest of the block goes next.
        io_uring_sqe* sqe = ring_.sqe();
        io_uring_prep_send(sqe, c.fd, c.send_block + c.send_offset, c.send_length - c.send_offset,
                           MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, net::pack(Op::kSend, c.slot, c.generation));
        c.send_inflight = true;
        return;
      }
    }
    release_send_block(c);
  } else if (c.phase == Phase::kSession) {
    // Plaintext: the session's own block was sent.
    c.session->handle_output_sent(ok ? static_cast<size_t>(cqe.res) : 0, now_);
  } else if (c.phase == Phase::kLmtp) {
    c.lmtp->handle_output_sent(ok ? static_cast<size_t>(cqe.res) : 0, now_);
  }
  if (!ok) {
    if (c.phase == Phase::kSession) c.session->handle_peer_closed(now_);
    if (c.phase == Phase::kLmtp) c.lmtp->handle_peer_closed(now_);
    begin_close(c);
    return;
  }
  if (c.closing) {
    maybe_finish_close(c);
    return;
  }
  pump(c);
}

// ---- Closing ------------------------------------------------------------------------------

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
  if (c.phase == Phase::kLmtp) {
    recycle_input(c);
    log_lmtp_end(c);
    c.lmtp.reset();
    finish_release(c);
    return;
  }
  pop3::Session& s = *c.session;
  if (s.holds_maildrop()) release_lock(c);
  release_limits(c);
  recycle_input(c);
  release_send_block(c);
  c.body.reset();
  c.body_rest = {};
  drop_prefetch(c);
  c.scram.reset();
  if (c.proxy) {
    c.proxy->reset();
    proxy_pool_.push_back(std::move(c.proxy));
  }
  const std::string_view tls_version = c.tls ? c.tls->version() : std::string_view("none");
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(now_ - c.opened_at);
  const pop3::SessionStats& st = s.stats();
  POPGATE_LOG(kInfo, "session_end")
      .str("listener", listeners_[c.listener].options.name)
      .str("peer", c.peer_text())
      .str("domain", c.domain_text())
      .str("user", s.login())
      .str("tls", tls_version)
      .str("sni", c.server_name_text())
      .str("mechanism", s.logged_in() ? pop3::mechanism_name(s.mechanism()) : "")
      .str("end", pop3::end_reason_name(s.end_reason()))
      .num("duration_ms", duration.count())
      .unum("commands", st.commands)
      .unum("retr", st.retr)
      .unum("retr_bytes", st.retr_bytes)
      .unum("top", st.top)
      .unum("dele", st.dele)
      .unum("bytes_in", c.bytes_in)
      .unum("bytes_out", c.bytes_out)
      .unum("shard", opts_.index);
  if (c.tenant_slot != UINT32_MAX) {
    TenantSeries& t = tenants_.at(c.tenant_slot);
    if (c.tenant_session_counted) t.sessions.sub();
    t.retr_bytes.add(st.retr_bytes);
    t.bytes_sent.add(c.bytes_out);
  }
  counters_.session_ends[static_cast<size_t>(s.end_reason())].add();
  c.tls.reset();
  c.session.reset();
  finish_release(c);
}

// The socket and the slot go; shared by POP3 and LMTP connections.
void Shard::finish_release(Connection& c) noexcept {
  const uint8_t listener = c.listener;
  close(c.fd);
  c.fd = -1;
  table_.release(c);
  counters_.connections_closed.add();
  counters_.connections_active.store(table_.active(), std::memory_order_relaxed);
  counters_.listeners[listener].closed.add();
  counters_.listeners[listener].active.sub();
}

}  // namespace popgate::shard
