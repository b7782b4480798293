// Per-shard protocol counters. Written by exactly one thread (the shard that
// owns the sessions), read by the metrics scraper: relaxed loads and stores,
// no read-modify-write, no locks. Summed across shards at scrape time.
// Must not know: how they are exported.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "server/pop3/command.h"

namespace popgate::pop3 {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct Counters {
  // Commands by verb, and how many of them were answered -ERR.
  std::array<Counter, kVerbCount> commands{};
  std::array<Counter, kVerbCount> command_errors{};

  Counter sessions_opened;
  Counter sessions_closed;

  // Limits (limits.h); each bump is one hit.
  Counter line_too_long;          // kCommandLineBytesMax
  Counter nul_in_line;            // NUL octet in a command line
  Counter input_flood;            // kInputDiscardBytesMax: session closed
  Counter bad_commands;           // every bad command
  Counter bad_command_limit;      // kBadCommandsMax reached: session closed
  Counter auth_failure_limit;     // kAuthFailuresMax reached: session closed
  Counter autologout_login;       // pre-login idle timeout
  Counter autologout;             // post-login idle timeout (>= 10 min)

  // Authentication and maildrop.
  static constexpr size_t kMechanisms = 7;  // indexed like Mechanism bits
  std::array<Counter, kMechanisms> auth_success_by_mechanism{};
  std::array<Counter, kMechanisms> auth_failure_by_mechanism{};
  Counter policy_refused;         // tenant requires TLS or another method
  Counter login_delay_refused;    // [LOGIN-DELAY]
  Counter login_limit_refused;    // a session or rate limit said no
  Counter sasl_cancelled;
  Counter sasl_malformed;
  Counter stls_started;
  Counter utf8_enabled;
  Counter auth_success;
  Counter auth_failure;           // wrong user or password
  Counter auth_temporary;         // store or KDF pool unavailable
  Counter maildrop_in_use;        // [IN-USE]
  Counter maildrop_open_failure;  // [SYS/TEMP] / [SYS/PERM] at open

  // Data path.
  Counter retr_messages;
  Counter retr_bytes;             // message octets before byte-stuffing
  Counter top_messages;
  Counter dele_marked;
  Counter update_commits;         // QUIT in TRANSACTION that committed
  Counter update_messages_deleted;
  Counter update_failures;        // QUIT whose UPDATE failed: nothing deleted
  Counter stream_aborts;          // body fetch failed mid-reply: connection cut
  Counter shutdown_closes;        // sessions ended by server shutdown
  Counter kicked;                 // sessions ended by an administrator
};

}  // namespace popgate::pop3
