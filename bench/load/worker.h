// Worker: one generator thread. Its own epoll, its own connections (many,
// all non-blocking), each running the scenario's script over and over;
// every reply goes through a ReplyReader and the script's checks. Counts go
// to Metrics; the main thread reads them only after the worker published a
// snapshot (window_ready) or finished (finished).
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/common/dataset.h"
#include "bench/common/reply_reader.h"
#include "bench/load/metrics.h"
#include "bench/load/options.h"

namespace popgate::bench {

// Flags the main thread raises for every worker.
struct Control {
  std::atomic<bool> window_closed{false};  // stop counting; long sessions QUIT
  std::atomic<bool> release{false};        // holding sessions: (NOOP,) QUIT
  std::atomic<bool> stop{false};           // drain timed out: drop everything
  std::atomic<uint64_t> sessions_done{0};  // all workers, for --max-sessions
};

class Worker {
 public:
  Worker(const Options& options, Control& control, SSL_CTX* tls, uint32_t index,
         uint32_t connections, uint32_t first_connection);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void run() noexcept;
  // SSL_CTX_sess_set_new_cb: keeps the newest ticket of a connection.
  static int new_session_callback(SSL* ssl, SSL_SESSION* session);

  // Idle and --once: sessions to open in total (raised step by step).
  std::atomic<uint32_t> target_open{0};
  // Sessions logged in and holding (idle, --once).
  std::atomic<uint32_t> holding{0};
  // Sessions that ended without reaching the hold (errors): never retried.
  std::atomic<uint32_t> failed{0};
  std::atomic<bool> window_ready{false};
  std::atomic<bool> finished{false};

  // Valid after window_ready / finished.
  [[nodiscard]] const Metrics& window() const noexcept { return window_; }
  [[nodiscard]] const Metrics& total() const noexcept { return metrics_; }
  [[nodiscard]] const std::vector<std::string>& error_samples() const noexcept { return samples_; }

 private:
  enum class Phase : uint8_t {
    kFree,        // no connection
    kWaiting,     // between sessions (backoff after an error)
    kConnecting,
    kHandshake,
    kReply,       // a command (or the greeting) is out; reading its reply
    kHolding,     // logged in, doing nothing (idle, --once)
    kWaitEof,     // QUIT answered; the server closes
  };
  struct Conn {
    uint32_t slot = 0;
    uint32_t generation = 0;
    uint32_t global_index = 0;
    uint64_t session_seq = 0;
    Phase phase = Phase::kFree;
    int fd = -1;
    SSL* ssl = nullptr;
    SSL_SESSION* saved = nullptr;  // newest ticket, for resumption
    uint32_t user = 0;
    Cmd cmd = Cmd::kGreeting;
    ReplyReader reader;
    std::string out;          // unsent command bytes
    uint64_t session_start_ns = 0;
    uint64_t command_start_ns = 0;
    uint64_t deadline_ns = 0;  // of the current wait; 0 = none
    uint64_t start_at_ns = 0;  // kWaiting: when to connect
    uint64_t stall_until_ns = 0;
    bool stalled_this_command = false;
    bool in_ready = false;     // queued for more reading
    bool counted_holding = false;
    bool reached_hold = false;  // idle/--once: got as far as the hold
    uint64_t octets_seen = 0;  // reader.body_octets() already counted
    // Maildrop as STAT and LIST told it.
    uint64_t count = 0;
    uint64_t octets = 0;
    std::vector<uint32_t> sizes;
    // This session's first LIST and UIDL, checked line by line; later ones
    // must equal them (compared at memcmp speed).
    std::string list_ref;
    std::string uidl_ref;
    bool have_list_ref = false;
    bool have_uidl_ref = false;
    uint64_t msn = 0;           // current RETR / LIST n
    uint64_t expected_size = 0; // of that message
    uint32_t poll_left = 0;
  };

  // worker.cc: the loop, connections, I/O
  void start_session(Conn& c, uint64_t now);
  void handle_event(Conn& c, uint32_t events, uint64_t now);
  void finish_connect(Conn& c, uint64_t now);
  void continue_handshake(Conn& c, uint64_t now);
  void read_some(Conn& c, uint64_t now);
  void process_bytes(Conn& c, std::string_view data, uint64_t now);
  void flush(Conn& c, uint64_t now);
  void peer_closed(Conn& c, uint64_t now);
  void fail(Conn& c, ErrorKind kind, std::string_view why, uint64_t now);
  void end_session(Conn& c, bool ok, uint64_t now);
  void close_connection(Conn& c) noexcept;
  void sweep(uint64_t now);
  void ramp(uint64_t now);
  void release_holders(uint64_t now);
  void abandon_all() noexcept;
  [[nodiscard]] bool draining() const noexcept;
  [[nodiscard]] bool restarts() const noexcept;
  [[nodiscard]] uint32_t active() const noexcept;

  // script.cc: what to send next, and the checks
  void send(Conn& c, Cmd cmd, std::string_view line, ReplyReader::Shape shape, uint64_t now);
  void on_reply(Conn& c, uint64_t now);
  void after_stat(Conn& c, uint64_t now);
  void after_list(Conn& c, uint64_t now);
  void next_listing(Conn& c, uint64_t now);
  void after_uidl(Conn& c, uint64_t now);
  void after_list_one(Conn& c, uint64_t now);
  void after_retr(Conn& c, uint64_t now);
  void next_poll_message(Conn& c, uint64_t now);
  void send_retr(Conn& c, uint64_t now);
  void send_quit(Conn& c, uint64_t now);
  void hold(Conn& c) noexcept;
  [[nodiscard]] uint32_t pick_user(Conn& c) const noexcept;
  bool verify(Conn& c, bool condition, std::string_view why, uint64_t now);
  [[nodiscard]] bool ends_after_this_command() const noexcept;

  const Options& options_;
  Control& control_;
  SSL_CTX* tls_;
  const GroupSpec& spec_;
  const uint32_t index_;
  const uint32_t connections_;        // this worker's share
  const uint32_t first_connection_;   // global index of its first
  const uint32_t total_connections_;  // all workers
  const uint32_t users_;              // of the group, in use
  int epoll_fd_ = -1;
  std::vector<Conn> conns_;
  std::vector<uint32_t> ready_;  // slots with unread input (read budget spent)
  std::vector<char> buf_;
  uint32_t opened_ = 0;      // idle/--once: slots started
  uint32_t in_login_ = 0;    // idle/--once: started, not yet holding
  uint32_t source_next_ = 0;
  bool released_ = false;
  bool window_taken_ = false;
  Metrics metrics_;
  Metrics window_;
  std::vector<std::string> samples_;
};

}  // namespace popgate::bench
