#include "bench/load/worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace popgate::bench {
namespace {

constexpr size_t kReadChunkBytes = 256 * 1024;
constexpr size_t kEventsMax = 512;
// After a failed session, a slot waits this long before the next one, so a
// refusing server is not hammered in a tight loop.
constexpr uint64_t kRetryDelayNs = 100'000'000;
constexpr uint64_t kSweepPeriodNs = 20'000'000;

uint64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ULL + uint64_t(ts.tv_nsec);
}

uint64_t ms_to_ns(uint64_t ms) noexcept { return ms * 1'000'000ULL; }

uint64_t event_data(uint32_t slot, uint32_t generation) noexcept {
  return (uint64_t(generation) << 32) | slot;
}

int ssl_ex_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

Worker::Worker(const Options& options, Control& control, SSL_CTX* tls, uint32_t index,
               uint32_t connections, uint32_t first_connection)
    : options_(options),
      control_(control),
      tls_(tls),
      spec_(group_spec(options.group, options.dataset)),
      index_(index),
      connections_(connections),
      first_connection_(first_connection),
      total_connections_(options.connections),
      users_(usable_users(options)),
      buf_(kReadChunkBytes) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  conns_.resize(connections_);
  for (uint32_t i = 0; i < connections_; ++i) {
    conns_[i].slot = i;
    conns_[i].global_index = options_.scenario == Scenario::kIdle
                                 ? index_ + options_.threads * i
                                 : first_connection_ + i;
  }
  ready_.reserve(connections_);
}

Worker::~Worker() {
  for (Conn& c : conns_) {
    close_connection(c);
    if (c.saved != nullptr) SSL_SESSION_free(c.saved);
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

bool Worker::draining() const noexcept {
  return control_.window_closed.load(std::memory_order_acquire);
}

// Loops restart a slot's session when it ends; idle and --once run each
// slot's session once.
bool Worker::restarts() const noexcept {
  return options_.scenario != Scenario::kIdle && !options_.once;
}

uint32_t Worker::active() const noexcept {
  uint32_t n = 0;
  for (const Conn& c : conns_) n += c.phase != Phase::kFree ? 1 : 0;
  return n;
}

void Worker::run() noexcept {
  uint64_t now = now_ns();
  if (restarts()) {
    for (Conn& c : conns_) start_session(c, now);
  }
  std::vector<epoll_event> events(kEventsMax);
  uint64_t next_sweep = now + kSweepPeriodNs;
  for (;;) {
    now = now_ns();
    if (control_.stop.load(std::memory_order_acquire)) {
      abandon_all();
      break;
    }
    if (!window_taken_ && draining()) {
      window_ = metrics_;
      window_taken_ = true;
      window_ready.store(true, std::memory_order_release);
    }
    if (!restarts() && !released_) ramp(now);
    if (!released_ && control_.release.load(std::memory_order_acquire)) {
      released_ = true;
      release_holders(now);
    }
    // Re-read connections whose read budget ran out.
    if (!ready_.empty()) {
      std::vector<uint32_t> batch;
      batch.swap(ready_);
      for (const uint32_t slot : batch) {
        Conn& c = conns_[slot];
        c.in_ready = false;
        if (c.phase != Phase::kFree && c.phase != Phase::kWaiting) read_some(c, now);
      }
    }
    if (now >= next_sweep) {
      sweep(now);
      next_sweep = now + kSweepPeriodNs;
    }
    // Loops end once the window closed and every session has QUIT; idle
    // and --once end once released and every held session has QUIT.
    if ((restarts() ? draining() : released_) && active() == 0) break;
    const int timeout_ms = ready_.empty() ? int(kTickPeriod.count()) : 0;
    const int n = ::epoll_wait(epoll_fd_, events.data(), int(events.size()), timeout_ms);
    now = now_ns();
    for (int i = 0; i < n; ++i) {
      const uint64_t data = events[size_t(i)].data.u64;
      const auto slot = uint32_t(data & 0xFFFFFFFFU);
      const auto generation = uint32_t(data >> 32);
      if (slot >= conns_.size()) continue;
      Conn& c = conns_[slot];
      if (c.generation != generation || c.fd < 0) continue;  // a closed connection's event
      handle_event(c, events[size_t(i)].events, now);
    }
  }
  if (!window_taken_) {
    window_ = metrics_;
    window_taken_ = true;
    window_ready.store(true, std::memory_order_release);
  }
  finished.store(true, std::memory_order_release);
}

void Worker::ramp(uint64_t now) {
  const uint32_t target = std::min<uint32_t>(target_open.load(std::memory_order_acquire), connections_);
  while (opened_ < target && in_login_ < kRampInflightPerThread) {
    Conn& c = conns_[opened_++];
    ++in_login_;
    start_session(c, now);
  }
}

void Worker::start_session(Conn& c, uint64_t now) {
  c.user = pick_user(c);
  ++c.session_seq;
  c.session_start_ns = now;
  c.command_start_ns = now;
  c.deadline_ns = now + ms_to_ns(options_.connect_timeout_ms);
  c.out.clear();
  c.stall_until_ns = 0;
  c.counted_holding = false;
  c.reached_hold = false;
  c.have_list_ref = false;
  c.have_uidl_ref = false;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    c.phase = Phase::kConnecting;
    fail(c, ErrorKind::kConnect, std::string("socket: ") + std::strerror(errno), now);
    return;
  }
  c.fd = fd;
  c.phase = Phase::kConnecting;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!options_.source_addrs.empty()) {
    // Pick the port at connect() time, per destination: with several
    // source addresses, each has its own ephemeral range.
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr = options_.source_addrs[source_next_++ % options_.source_addrs.size()];
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
      fail(c, ErrorKind::kConnect, std::string("bind: ") + std::strerror(errno), now);
      return;
    }
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(options_.uses_tls() ? options_.tls_port : options_.port);
  ::inet_pton(AF_INET, options_.host.c_str(), &dst.sin_addr);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = event_data(c.slot, c.generation);
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    fail(c, ErrorKind::kConnect, std::string("epoll_ctl: ") + std::strerror(errno), now);
    return;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) != 0 &&
      errno != EINPROGRESS) {
    fail(c, ErrorKind::kConnect, std::string("connect: ") + std::strerror(errno), now);
  }
}

void Worker::handle_event(Conn& c, uint32_t events, uint64_t now) {
  if (c.phase == Phase::kConnecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    finish_connect(c, now);
    if (c.fd < 0) return;
  }
  if (c.phase == Phase::kHandshake) {
    continue_handshake(c, now);
    return;
  }
  if ((events & EPOLLOUT) != 0 && !c.out.empty()) {
    flush(c, now);
    if (c.fd < 0) return;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) read_some(c, now);
}

void Worker::finish_connect(Conn& c, uint64_t now) {
  int error = 0;
  socklen_t len = sizeof error;
  ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len);
  if (error != 0) {
    fail(c, ErrorKind::kConnect, std::string("connect: ") + std::strerror(error), now);
    return;
  }
  if (options_.uses_tls()) {
    c.ssl = SSL_new(tls_);
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_connect_state(c.ssl);
    SSL_set_ex_data(c.ssl, ssl_ex_index(), &c);
    if (!options_.tls_server_name.empty()) {
      // SSL_set_tlsext_host_name() without its C cast.
      SSL_ctrl(c.ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(options_.tls_server_name.c_str()));
    }
    if (options_.tls_resume && c.saved != nullptr) SSL_set_session(c.ssl, c.saved);
    c.phase = Phase::kHandshake;
    continue_handshake(c, now);
    return;
  }
  c.phase = Phase::kReply;
  c.cmd = Cmd::kGreeting;
  c.reader.expect(ReplyReader::Shape::kStatus);
  c.deadline_ns = now + ms_to_ns(options_.command_timeout_ms);
  read_some(c, now);
}

void Worker::continue_handshake(Conn& c, uint64_t now) {
  ERR_clear_error();
  const int r = SSL_do_handshake(c.ssl);
  if (r == 1) {
    ++metrics_.tls_handshakes;
    if (SSL_session_reused(c.ssl) != 0) ++metrics_.tls_resumed;
    c.phase = Phase::kReply;
    c.cmd = Cmd::kGreeting;
    c.reader.expect(ReplyReader::Shape::kStatus);
    c.deadline_ns = now + ms_to_ns(options_.command_timeout_ms);
    read_some(c, now);
    return;
  }
  const int e = SSL_get_error(c.ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
  char why[160];
  ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
  fail(c, ErrorKind::kTls, std::string("TLS handshake: ") + why, now);
}

int Worker::new_session_callback(SSL* ssl, SSL_SESSION* session) {
  auto* c = static_cast<Conn*>(SSL_get_ex_data(ssl, ssl_ex_index()));
  if (c == nullptr) return 0;
  if (c->saved != nullptr) SSL_SESSION_free(c->saved);
  c->saved = session;
  return 1;  // we keep the reference
}

void Worker::read_some(Conn& c, uint64_t now) {
  size_t budget = kReadBudgetBytes;
  while (c.fd >= 0) {
    if (c.phase == Phase::kConnecting || c.phase == Phase::kHandshake) return;
    if (options_.stall_ms > 0 && c.cmd == Cmd::kRetr && c.phase == Phase::kReply &&
        !c.stalled_this_command && c.reader.body_octets() >= options_.stall_after_bytes &&
        c.reader.body_octets() > 0) {
      // Stop reading: the server must hold back, not buffer the message.
      c.stalled_this_command = true;
      c.stall_until_ns = now + ms_to_ns(options_.stall_ms);
      c.deadline_ns += ms_to_ns(options_.stall_ms);
    }
    if (c.stall_until_ns != 0) return;
    if (budget == 0) {
      if (!c.in_ready) {
        c.in_ready = true;
        ready_.push_back(c.slot);
      }
      return;
    }
    const size_t want = std::min(buf_.size(), budget);
    ssize_t n = 0;
    if (c.ssl != nullptr) {
      ERR_clear_error();
      const int r = SSL_read(c.ssl, buf_.data(), int(want));
      if (r <= 0) {
        const int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
          peer_closed(c, now);
          return;
        }
        if (c.phase == Phase::kWaitEof) {
          peer_closed(c, now);  // a reset after QUIT is a close
          return;
        }
        char why[160];
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
        fail(c, ErrorKind::kClosed, std::string("TLS read: ") + why + " / " + std::strerror(errno), now);
        return;
      }
      n = r;
    } else {
      n = ::recv(c.fd, buf_.data(), want, 0);
      if (n == 0) {
        peer_closed(c, now);
        return;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        if (c.phase == Phase::kWaitEof) {
          peer_closed(c, now);
          return;
        }
        fail(c, ErrorKind::kClosed, std::string("recv: ") + std::strerror(errno), now);
        return;
      }
    }
    budget -= size_t(n);
    now = now_ns();  // a reply may complete many reads after the event
    process_bytes(c, std::string_view(buf_.data(), size_t(n)), now);
  }
}

void Worker::process_bytes(Conn& c, std::string_view data, uint64_t now) {
  while (!data.empty() && c.fd >= 0) {
    if (c.phase != Phase::kReply) {
      fail(c, ErrorKind::kUnsolicited, "server sent bytes nobody asked for: " +
                                           std::string(data.substr(0, 60)), now);
      return;
    }
    size_t used = 0;
    const ReplyReader::Status st = c.reader.feed(data, &used);
    data.remove_prefix(used);
    const uint64_t octets = c.reader.body_octets();
    if (!draining()) metrics_.message_octets += octets - c.octets_seen;
    c.octets_seen = octets;
    if (st == ReplyReader::Status::kViolation) {
      fail(c, ErrorKind::kVerify, std::string(cmd_name(c.cmd)) + ": " +
                                      std::string(c.reader.violation()), now);
      return;
    }
    if (st == ReplyReader::Status::kDone) on_reply(c, now);
  }
}

void Worker::flush(Conn& c, uint64_t now) {
  while (!c.out.empty() && c.fd >= 0) {
    ssize_t n = 0;
    if (c.ssl != nullptr) {
      ERR_clear_error();
      const int r = SSL_write(c.ssl, c.out.data(), int(c.out.size()));
      if (r <= 0) {
        const int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return;
        fail(c, ErrorKind::kClosed, "TLS write failed", now);
        return;
      }
      n = r;
    } else {
      n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        fail(c, ErrorKind::kClosed, std::string("send: ") + std::strerror(errno), now);
        return;
      }
    }
    c.out.erase(0, size_t(n));
  }
}

void Worker::peer_closed(Conn& c, uint64_t now) {
  if (c.phase == Phase::kWaitEof) {
    end_session(c, true, now);
    return;
  }
  fail(c, ErrorKind::kClosed, std::string("server closed the connection while waiting for ") +
                                  std::string(cmd_name(c.cmd)), now);
}

void Worker::fail(Conn& c, ErrorKind kind, std::string_view why, uint64_t now) {
  ++metrics_.errors[size_t(kind)];
  if (samples_.size() < kErrorSamplesMax) {
    samples_.push_back(std::string(error_kind_name(kind)) + ": " + std::string(why));
  }
  end_session(c, false, now);
}

void Worker::end_session(Conn& c, bool ok, uint64_t now) {
  if (c.counted_holding) {
    holding.fetch_sub(1, std::memory_order_acq_rel);
    c.counted_holding = false;
  }
  close_connection(c);
  if (!restarts()) {
    if (c.phase != Phase::kFree && !c.reached_hold) {
      if (in_login_ > 0) --in_login_;
      failed.fetch_add(1, std::memory_order_acq_rel);
    }
    c.phase = Phase::kFree;
    return;
  }
  if (draining() || control_.stop.load(std::memory_order_acquire)) {
    c.phase = Phase::kFree;
    return;
  }
  c.phase = Phase::kWaiting;
  c.start_at_ns = ok ? now : now + kRetryDelayNs;
  if (ok) start_session(c, now);
}

void Worker::close_connection(Conn& c) noexcept {
  if (c.ssl != nullptr) {
    if (c.fd >= 0) {
      SSL_set_quiet_shutdown(c.ssl, 0);
      ERR_clear_error();
      (void)SSL_shutdown(c.ssl);  // close_notify, not waiting for the answer
    }
    SSL_free(c.ssl);
    c.ssl = nullptr;
  }
  if (c.fd >= 0) {
    ::close(c.fd);
    c.fd = -1;
  }
  ++c.generation;
  c.out.clear();
  c.deadline_ns = 0;
  c.stall_until_ns = 0;
}

void Worker::sweep(uint64_t now) {
  for (Conn& c : conns_) {
    switch (c.phase) {
      case Phase::kFree:
      case Phase::kHolding:
        break;
      case Phase::kWaiting:
        if (now >= c.start_at_ns) start_session(c, now);
        break;
      default:
        if (c.stall_until_ns != 0 && now >= c.stall_until_ns) {
          c.stall_until_ns = 0;
          read_some(c, now);
          if (c.fd < 0) break;
        }
        if (c.deadline_ns != 0 && now >= c.deadline_ns) {
          fail(c, c.phase == Phase::kConnecting  ? ErrorKind::kConnect
                  : c.phase == Phase::kHandshake ? ErrorKind::kTls
                                                 : ErrorKind::kTimeout,
               std::string("no progress in time, waiting for ") + std::string(cmd_name(c.cmd)), now);
        }
        break;
    }
  }
}

void Worker::release_holders(uint64_t now) {
  for (Conn& c : conns_) {
    if (c.phase != Phase::kHolding) continue;
    holding.fetch_sub(1, std::memory_order_acq_rel);
    c.counted_holding = false;
    if (options_.scenario == Scenario::kIdle && options_.idle_noop) {
      send(c, Cmd::kNoop, "NOOP\r\n", ReplyReader::Shape::kStatus, now);
    } else {
      send_quit(c, now);
    }
  }
}

void Worker::abandon_all() noexcept {
  for (Conn& c : conns_) {
    if (c.phase == Phase::kFree || c.phase == Phase::kWaiting) continue;
    ++metrics_.errors[size_t(ErrorKind::kAbandoned)];
    if (c.counted_holding) holding.fetch_sub(1, std::memory_order_acq_rel);
    c.counted_holding = false;
    close_connection(c);
    c.phase = Phase::kFree;
  }
}

}  // namespace popgate::bench
