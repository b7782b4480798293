// What one worker thread counted; merged for the report. Plain counters:
// each Metrics is written by one thread and read by the main thread only
// after that thread has published a snapshot (see Worker).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/common/histogram.h"

namespace popgate::bench {

// Commands the generator sends, plus the greeting; one latency histogram each.
enum class Cmd : uint8_t { kGreeting, kUser, kPass, kStat, kList, kListOne, kUidl, kRetr, kNoop, kQuit };
inline constexpr size_t kCmdCount = 10;
[[nodiscard]] std::string_view cmd_name(Cmd c) noexcept;

enum class ErrorKind : uint8_t {
  kConnect,     // connect() failed or timed out
  kTls,         // handshake failed
  kErrReply,    // -ERR where +OK was expected
  kVerify,      // a reply broke the protocol or did not match the data
  kTimeout,     // no complete reply in time
  kClosed,      // the server closed or reset the connection mid-session
  kUnsolicited, // bytes nobody asked for
  kAbandoned,   // still running when the drain timeout ran out
};
inline constexpr size_t kErrorKindCount = 8;
[[nodiscard]] std::string_view error_kind_name(ErrorKind k) noexcept;

struct Metrics {
  uint64_t sessions = 0;         // ended with QUIT answered +OK
  uint64_t commands = 0;         // replies received and verified (greeting included)
  uint64_t message_octets = 0;   // unstuffed RETR text, as it streamed
  uint64_t retr_verified = 0;    // RETRs whose size and CRC trailer matched
  uint64_t listings_verified = 0;// LIST/UIDL listings checked against STAT
  uint64_t tls_handshakes = 0;
  uint64_t tls_resumed = 0;
  std::array<uint64_t, kErrorKindCount> errors{};
  std::array<Histogram, kCmdCount> latency{};  // per command, reply complete
  Histogram session;                           // connect to QUIT answered

  [[nodiscard]] uint64_t errors_total() const noexcept {
    uint64_t n = 0;
    for (const uint64_t e : errors) n += e;
    return n;
  }
  void merge(const Metrics& other) noexcept;
};

}  // namespace popgate::bench
