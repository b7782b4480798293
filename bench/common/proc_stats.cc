#include "bench/common/proc_stats.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace popgate::bench {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// utime stime cutime cstime from /proc/PID/stat, in clock ticks.
bool stat_times(pid_t pid, uint64_t* ticks) {
  const std::string s = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = s.rfind(')');
  if (paren == std::string::npos) return false;
  // Fields after "(comm)": 3 state, 4 ppid, ..., 14 utime, 15 stime, 16 cutime, 17 cstime.
  std::istringstream in(s.substr(paren + 2));
  std::string field;
  uint64_t sum = 0;
  for (int i = 3; i <= 17 && in >> field; ++i) {
    if (i >= 14) sum += std::strtoull(field.c_str(), nullptr, 10);
  }
  *ticks = sum;
  return true;
}

uint64_t rollup_field(const std::string& text, const char* name) {
  const size_t at = text.find(name);
  if (at == std::string::npos) return 0;
  return std::strtoull(text.c_str() + at + std::strlen(name), nullptr, 10);
}

}  // namespace

std::vector<pid_t> process_tree(pid_t root) {
  std::vector<pid_t> out;
  if (::kill(root, 0) != 0 && errno != EPERM) return out;
  out.push_back(root);
  for (size_t i = 0; i < out.size(); ++i) {
    // Children hang off the thread that forked them: look at every thread.
    const std::string task_dir = "/proc/" + std::to_string(out[i]) + "/task/";
    DIR* dir = ::opendir(task_dir.c_str());
    if (dir == nullptr) continue;
    std::vector<std::string> threads;
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') threads.emplace_back(e->d_name);
    }
    ::closedir(dir);
    for (const std::string& t : threads) {
      std::istringstream children(read_file(task_dir + t + "/children"));
      pid_t child = 0;
      while (children >> child) out.push_back(child);
    }
  }
  return out;
}

TreeCpu tree_cpu(pid_t root) {
  TreeCpu cpu;
  const long hz = ::sysconf(_SC_CLK_TCK);
  uint64_t total = 0;
  for (const pid_t pid : process_tree(root)) {
    uint64_t ticks = 0;
    if (!stat_times(pid, &ticks)) continue;
    if (pid == root) cpu.ok = true;
    total += ticks;
    ++cpu.processes;
  }
  cpu.seconds = double(total) / double(hz);
  return cpu;
}

TreeMemory tree_memory(pid_t root) {
  TreeMemory mem;
  for (const pid_t pid : process_tree(root)) {
    const std::string text = read_file("/proc/" + std::to_string(pid) + "/smaps_rollup");
    if (text.empty()) continue;
    if (pid == root) mem.ok = true;
    mem.rss_kib += rollup_field(text, "\nRss:");
    mem.pss_kib += rollup_field(text, "\nPss:");
    ++mem.processes;
  }
  return mem;
}

double self_cpu_seconds() noexcept {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const auto secs = [](const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

uint64_t raise_fd_limit(uint64_t want) noexcept {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur >= want) return lim.rlim_cur;
  if (lim.rlim_max < want) {
    rlimit hard = lim;
    hard.rlim_max = want;
    hard.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &hard) == 0) return want;
  }
  lim.rlim_cur = std::min<rlim_t>(want, lim.rlim_max);
  ::setrlimit(RLIMIT_NOFILE, &lim);
  ::getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

}  // namespace popgate::bench
