// What a process tree costs: CPU time and memory, read from /proc. A server
// is named by its root pid; the tree (Dovecot's master and every login,
// auth and pop3 process; PostgreSQL's postmaster and its backends) is
// followed through /proc/PID/task/TID/children.
//
// CPU: utime + stime + cutime + cstime of every process in the tree, so a
// child that exits between two readings is still counted (its parent
// collects its time when it reaps it). Memory: the sum of Pss (shared pages
// split between the processes sharing them) and of Rss.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace popgate::bench {

struct TreeCpu {
  double seconds = 0;  // user + system, all processes, reaped children included
  uint32_t processes = 0;
  bool ok = false;     // the root exists
};
struct TreeMemory {
  uint64_t pss_kib = 0;
  uint64_t rss_kib = 0;
  uint32_t processes = 0;
  bool ok = false;
};

[[nodiscard]] std::vector<pid_t> process_tree(pid_t root);
[[nodiscard]] TreeCpu tree_cpu(pid_t root);
[[nodiscard]] TreeMemory tree_memory(pid_t root);

// This process (all threads): user + system seconds (getrusage).
[[nodiscard]] double self_cpu_seconds() noexcept;

// Raises RLIMIT_NOFILE to at least `want` (the hard limit too, when
// privileged). Returns the soft limit in force afterwards.
uint64_t raise_fd_limit(uint64_t want) noexcept;

}  // namespace popgate::bench
