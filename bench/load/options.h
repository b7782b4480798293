// popgate-bench options: which scenario, against what, how hard, how long.
// Every scenario is bounded: by --duration-s, by --max-sessions, by its
// script (list --once, idle steps) and by kDrainTimeout after the window.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/common/dataset.h"

namespace popgate::bench {

enum class Scenario : uint8_t { kLogin, kLoginTls, kPoll, kList, kRetrSmall, kRetrBig, kIdle };
[[nodiscard]] std::string_view scenario_name(Scenario s) noexcept;

// Bounds that are not options.
// After the measuring window, sessions get this long to finish (QUIT).
inline constexpr std::chrono::seconds kDrainTimeout{60};
// Idle and list --once: how long reaching a step may take.
inline constexpr std::chrono::seconds kRampTimeout{600};
// Idle: wait after a step is reached, before memory is read.
inline constexpr std::chrono::milliseconds kIdleSettle{1500};
// Sampling period of the server's memory during a scenario.
inline constexpr std::chrono::milliseconds kMemorySamplePeriod{100};
// Idle: sessions per thread that may be between connect and logged in.
inline constexpr uint32_t kRampInflightPerThread = 64;
// Octets read from one connection before others get a turn.
inline constexpr size_t kReadBudgetBytes = 1 << 20;
// Worker wake-up period (flags from the main thread, timeouts, stalls).
inline constexpr std::chrono::milliseconds kTickPeriod{5};
// How many error messages are kept as examples.
inline constexpr size_t kErrorSamplesMax = 8;

struct Options {
  Scenario scenario = Scenario::kLogin;
  std::string target = "server";  // label only
  std::string host = "127.0.0.1";
  uint16_t port = 110;      // plain POP3
  uint16_t tls_port = 995;  // implicit TLS
  bool tls = false;         // login_tls and poll always use TLS
  bool tls_resume = false;
  std::string tls_server_name = "pop.example.test";
  DatasetSize dataset = DatasetSize::kFull;
  Group group = Group::kPoll;  // chosen from the scenario unless --group
  uint32_t users_max = 0;      // 0: the whole group
  uint32_t first_user = 0;     // skip the group's first users (generators on disjoint maildrops)
  std::string password = std::string(kBenchPassword);

  uint32_t threads = 0;      // 0: one per online CPU
  uint32_t connections = 0;  // 0: the scenario's default
  double duration_s = 10;
  uint64_t max_sessions = 0;  // 0: no limit
  uint32_t command_timeout_ms = 60'000;
  uint32_t connect_timeout_ms = 10'000;

  bool once = false;       // list: LIST + UIDL once, hold, read memory, QUIT
  bool list_only = false;  // list: LIST, LIST, ... (no UIDL between them)
  std::vector<uint32_t> idle_steps;  // idle: session counts to reach
  bool idle_noop = true;             // idle: NOOP every session at the end
  double idle_hold_s = 0;            // idle: keep the last step's sessions this long, then NOOP, QUIT
  uint64_t stall_after_bytes = 0;    // retr: stop reading after this much of each RETR
  uint32_t stall_ms = 0;             // ... for this long
  std::vector<in_addr> source_addrs; // bind() before connect, round robin

  std::vector<std::pair<std::string, pid_t>> watch;  // label, root pid (cpu, memory)
  bool sample_memory = false;  // read the watched trees' memory every kMemorySamplePeriod
  std::string json_path;  // also write the JSON line here
  bool quiet = false;

  [[nodiscard]] bool uses_tls() const noexcept {
    return tls || scenario == Scenario::kLoginTls || scenario == Scenario::kPoll;
  }
};

// Parses argv; on error or --help prints and exits (2 or 0).
[[nodiscard]] Options parse_options(int argc, char** argv);

// How many users of the group this run may use: those from --first-user on,
// at most --users of them.
[[nodiscard]] uint32_t usable_users(const Options& o) noexcept;

}  // namespace popgate::bench
