// popgate-bench: a POP3 load generator that verifies every reply. See
// options.h for the knobs, script.cc for what each scenario does, and
// bench/README.md for how bench/compare.py drives it.
//
// Exit status: 0 when the run had no error of any kind (every reply
// verified), 1 when something failed (the report says what), 2 on bad usage.
#include <openssl/ssl.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "bench/common/proc_stats.h"
#include "bench/load/options.h"
#include "bench/load/report.h"
#include "bench/load/worker.h"

namespace popgate::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;
// Descriptors beyond the connections: epoll, stdio, files.
constexpr uint64_t kFdSlack = 256;
constexpr std::chrono::milliseconds kMainPollPeriod{10};

double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

SSL_CTX* make_tls_context(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // a benchmark, on loopback
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (o.tls_resume) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, &Worker::new_session_callback);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  return ctx;
}

std::vector<MemoryPoint> sample_memory(const Options& o, std::string_view label, uint64_t sessions) {
  std::vector<MemoryPoint> out;
  for (const auto& [name, pid] : o.watch) {
    out.push_back(MemoryPoint{std::string(label), sessions, name, tree_memory(pid)});
  }
  return out;
}

std::vector<WatchedCpu> sample_cpu(const Options& o) {
  std::vector<WatchedCpu> out;
  for (const auto& [name, pid] : o.watch) {
    const TreeCpu c = tree_cpu(pid);
    out.push_back(WatchedCpu{name, c.seconds, c.ok});
  }
  return out;
}

// Sessions a scenario needs users for, checked before anything connects.
bool check_users(const Options& o) {
  const GroupSpec& spec = group_spec(o.group, o.dataset);
  const uint32_t users = usable_users(o);
  if (o.connections == 0) {
    std::cerr << "popgate-bench: no connections\n";
    return false;
  }
  if (o.connections > users) {
    std::cerr << "popgate-bench: " << o.connections << " sessions at once need as many users, group "
              << spec.name << " has " << users << " (maildrops are locked per session)\n";
    return false;
  }
  return true;
}

class Run {
 public:
  explicit Run(const Options& o) : o_(o) {}

  int main() {
    if (!check_users(o_)) return 2;
    const uint64_t fds = raise_fd_limit(o_.connections + kFdSlack);
    if (fds < o_.connections + kFdSlack) {
      std::cerr << "popgate-bench: RLIMIT_NOFILE is " << fds << ", need "
                << o_.connections + kFdSlack << " (run as root or raise ulimit -n)\n";
      return 2;
    }
    tls_ = make_tls_context(o_);
    if (tls_ == nullptr) {
      std::cerr << "popgate-bench: cannot create an SSL_CTX\n";
      return 2;
    }
    uint32_t first = 0;
    for (uint32_t t = 0; t < o_.threads; ++t) {
      const uint32_t share = o_.connections / o_.threads + (t < o_.connections % o_.threads ? 1 : 0);
      workers_.push_back(std::make_unique<Worker>(o_, control_, tls_, t, share, first));
      first += share;
    }
    report_.options = &o_;
    for (MemoryPoint& m : sample_memory(o_, "baseline", 0)) report_.memory.push_back(m);
    const std::vector<WatchedCpu> cpu0 = sample_cpu(o_);
    const double gen0 = self_cpu_seconds();
    start_ = SteadyClock::now();
    for (auto& w : workers_) threads_.emplace_back([&w] { w->run(); });

    const bool stepped = o_.scenario == Scenario::kIdle || o_.once;
    if (stepped) {
      run_steps();
    } else {
      run_window();
    }
    report_.window_s = seconds_since(start_);
    const std::vector<WatchedCpu> cpu1 = sample_cpu(o_);
    report_.generator_cpu_s = self_cpu_seconds() - gen0;
    control_.window_closed.store(true, std::memory_order_release);
    if (stepped) control_.release.store(true, std::memory_order_release);
    for (size_t i = 0; i < cpu1.size(); ++i) {
      report_.cpu.push_back(WatchedCpu{cpu1[i].label, cpu1[i].seconds - cpu0[i].seconds,
                                       cpu0[i].ok && cpu1[i].ok});
    }
    if (o_.sample_memory) {
      for (const auto& [name, peak] : peaks_) report_.memory.push_back(peak);
    }

    drain();
    report_.run_s = seconds_since(start_);
    for (auto& w : workers_) {
      report_.window.merge(w->window());
      report_.total.merge(w->total());
      for (const std::string& s : w->error_samples()) {
        if (report_.error_samples.size() < kErrorSamplesMax) report_.error_samples.push_back(s);
      }
    }
    if (!o_.quiet) std::cout << report_.text();
    const std::string json = report_.json();
    std::cout << json << std::endl;
    if (!o_.json_path.empty()) std::ofstream(o_.json_path) << json << "\n";
    SSL_CTX_free(tls_);
    return report_.ok() ? 0 : 1;
  }

 private:
  void track_peaks() {
    for (MemoryPoint& m : sample_memory(o_, "peak", 0)) {
      auto it = std::find_if(peaks_.begin(), peaks_.end(),
                             [&](const auto& p) { return p.first == m.watched; });
      if (it == peaks_.end()) {
        peaks_.emplace_back(m.watched, m);
      } else if (m.memory.pss_kib > it->second.memory.pss_kib) {
        it->second = m;
      }
    }
  }

  void run_window() {
    auto next_sample = SteadyClock::now();
    for (;;) {
      std::this_thread::sleep_for(kMainPollPeriod);
      if (o_.sample_memory && SteadyClock::now() >= next_sample) {
        track_peaks();
        next_sample = SteadyClock::now() + kMemorySamplePeriod;
      }
      if (seconds_since(start_) >= o_.duration_s) return;
      if (o_.max_sessions > 0 && control_.sessions_done.load() >= o_.max_sessions) return;
      if (all_finished()) return;
    }
  }

  // Idle and --once: open sessions step by step, read memory at each.
  void run_steps() {
    const std::vector<uint32_t> steps =
        o_.scenario == Scenario::kIdle ? o_.idle_steps : std::vector<uint32_t>{o_.connections};
    for (const uint32_t step : steps) {
      for (uint32_t t = 0; t < o_.threads; ++t) {
        const uint32_t share = step / o_.threads + (t < step % o_.threads ? 1 : 0);
        workers_[t]->target_open.store(share, std::memory_order_release);
      }
      const auto deadline = SteadyClock::now() + kRampTimeout;
      uint32_t held = 0;
      for (;;) {
        held = 0;
        uint32_t failed = 0;
        for (auto& w : workers_) {
          held += w->holding.load(std::memory_order_acquire);
          failed += w->failed.load(std::memory_order_acquire);
        }
        if (held + failed >= step || SteadyClock::now() >= deadline) break;
        std::this_thread::sleep_for(kMainPollPeriod);
      }
      std::this_thread::sleep_for(kIdleSettle);
      held = 0;
      for (auto& w : workers_) held += w->holding.load(std::memory_order_acquire);
      report_.sessions_held = held;
      for (MemoryPoint& m : sample_memory(o_, o_.once ? "held" : "step", held)) {
        report_.memory.push_back(m);
      }
      if (!o_.quiet) {
        std::cerr << "popgate-bench: " << held << " of " << step << " sessions held\n";
      }
      if (held < step) break;  // errors: the report says which
    }
    if (o_.idle_hold_s > 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(o_.idle_hold_s));
    }
  }

  bool all_finished() const {
    for (const auto& w : workers_) {
      if (!w->finished.load(std::memory_order_acquire)) return false;
    }
    return true;
  }

  void drain() {
    const auto deadline = SteadyClock::now() + kDrainTimeout;
    while (!all_finished() && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(kMainPollPeriod);
    }
    control_.stop.store(true, std::memory_order_release);
    for (std::thread& t : threads_) t.join();
  }

  const Options& o_;
  Control control_;
  SSL_CTX* tls_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  SteadyClock::time_point start_;
  std::vector<std::pair<std::string, MemoryPoint>> peaks_;
  Report report_;
};

}  // namespace
}  // namespace popgate::bench

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  const popgate::bench::Options options = popgate::bench::parse_options(argc, argv);
  popgate::bench::Run run(options);
  return run.main();
}
