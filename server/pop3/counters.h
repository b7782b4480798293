// Per-shard protocol counters. Written by exactly one thread (the shard that
// owns the sessions), read by the metrics scraper: relaxed loads and stores,
// no read-modify-write, no locks. Summed across shards at scrape time.
// Must not know: how they are exported.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "server/pop3/command.h"
#include "server/pop3/counter.h"
#include "server/pop3/histogram.h"

namespace popgate::pop3 {

// How a login attempt ended.
enum class AuthOutcome : uint8_t {
  kSuccess,         // maildrop open
  kBadCredentials,  // wrong user or password (or token, or proof)
  kTemporary,       // store or KDF pool unavailable
  kPolicy,          // tenant requires TLS or another method
  kLoginDelay,      // [LOGIN-DELAY]
  kLimit,           // a session or rate limit said no
  kInUse,           // [IN-USE]
  kOpenFailure,     // [SYS/TEMP] / [SYS/PERM] at maildrop open
  kCancelled,       // SASL "*"
  kMalformed,       // SASL message that does not parse
  kCount,
};
inline constexpr size_t kAuthOutcomes = static_cast<size_t>(AuthOutcome::kCount);
// "success", "bad_credentials", ... (metric label values).
[[nodiscard]] std::string_view auth_outcome_name(AuthOutcome o) noexcept;

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

  // Authentication and maildrop: every login attempt that got as far as a
  // mechanism ends in exactly one outcome, counted by mechanism.
  static constexpr size_t kMechanisms = 7;  // indexed by Mechanism bit
  std::array<std::array<Counter, kAuthOutcomes>, kMechanisms> auth{};
  Counter stls_started;
  Counter utf8_enabled;
  [[nodiscard]] uint64_t auth_total(AuthOutcome o) const noexcept {
    uint64_t n = 0;
    for (const auto& by_outcome : auth) n += by_outcome[static_cast<size_t>(o)].value();
    return n;
  }

  // Data path.
  Counter retr_messages;
  Counter retr_bytes;             // message octets before byte-stuffing
  Counter top_messages;
  Counter dele_marked;
  Counter update_commits;         // QUIT in TRANSACTION that committed
  Counter update_messages_deleted;
  Counter update_failures;        // QUIT whose UPDATE failed: nothing deleted
  Counter stream_aborts;          // body fetch failed mid-reply: connection cut

  // Durations, from the command (or the start of a login) to the last byte
  // of its reply handed to the output.
  // For listings and bodies that includes the time the client takes to read.
  DurationHistogram login_seconds;  // first credential to +OK maildrop
  DurationHistogram list_seconds;   // LIST without argument
  DurationHistogram uidl_seconds;   // UIDL without argument
  DurationHistogram retr_seconds;
  DurationHistogram top_seconds;
  // Maildrop size at login.
  MessageCountHistogram maildrop_messages;
  MaildropKibHistogram maildrop_kib;
  Counter shutdown_closes;        // sessions ended by server shutdown
  Counter kicked;                 // sessions ended by an administrator
};

}  // namespace popgate::pop3
