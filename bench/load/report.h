// The report of one popgate-bench run: human text and one JSON line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/common/proc_stats.h"
#include "bench/load/metrics.h"
#include "bench/load/options.h"

namespace popgate::bench {

struct WatchedCpu {
  std::string label;
  double seconds = 0;  // during the window
  bool ok = false;
};
struct MemoryPoint {
  std::string label;     // "baseline", "max", "step", "held"
  uint64_t sessions = 0;
  std::string watched;   // which process tree
  TreeMemory memory;
};

struct Report {
  const Options* options = nullptr;
  double window_s = 0;
  double run_s = 0;
  Metrics window;  // counted inside the window
  Metrics total;   // the whole run, drain included (errors, verification)
  double generator_cpu_s = 0;
  std::vector<WatchedCpu> cpu;
  std::vector<MemoryPoint> memory;
  std::vector<std::string> error_samples;
  uint64_t sessions_held = 0;  // idle / --once: reached at the last step

  [[nodiscard]] bool ok() const noexcept { return total.errors_total() == 0; }
  [[nodiscard]] std::string text() const;
  [[nodiscard]] std::string json() const;
};

}  // namespace popgate::bench
