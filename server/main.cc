// popgate: startup, signals and shutdown around the shards.
//
// Startup blocks (it runs before any shard): configuration, the schema
// check, binding the listeners. Then one thread per shard runs its loop and
// this thread only waits for signals:
//   SIGINT          stop now: sessions are told -ERR [SYS/TEMP], no UPDATE
//   SIGTERM         drain: stop accepting, let sessions finish for
//                   server.drain_timeout_ms, then stop as for SIGINT
//   a second signal stop now
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ops/config.h"
#include "ops/schema_check.h"
#include "server/auth/kdf_pool.h"
#include "server/base/log.h"
#include "server/net/listener.h"
#include "server/shard/shard.h"
#include "storage/migrations.h"

namespace popgate {
namespace {

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (getrandom(raw.data(), raw.size(), 0) != static_cast<ssize_t>(raw.size())) {
    // getrandom only fails this early on a broken system; fall back to time.
    const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    for (size_t i = 0; i < bytes; ++i) raw[i] = static_cast<unsigned char>(t >> (i % 8 * 8));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : raw) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// "name/pid/random": unique per process start, readable in `who is online`.
std::string make_instance_id(const ops::Config& config) {
  std::string name = config.instance_name;
  if (name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    name = host;
  }
  return name.substr(0, 40) + "/" + std::to_string(getpid()) + "/" + random_hex(6);
}

bool wait_for_schema(const ops::Config& config) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.startup_wait_ms);
  for (;;) {
    const auto problem = ops::check_schema(config.dsn);
    if (!problem) return true;
    const bool unreachable = problem->rfind("database unreachable", 0) == 0;
    if (!unreachable || std::chrono::steady_clock::now() >= deadline) {
      POPGATE_LOG(kError, "startup_failed").str("reason", *problem);
      return false;
    }
    POPGATE_LOG(kWarn, "waiting_for_database").str("reason", *problem);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

shard::ShardOptions shard_options(const ops::Config& config, uint32_t index, int fd,
                                  const std::string& instance_id) {
  shard::ShardOptions o;
  o.index = index;
  o.listener_fd = fd;
  o.listener_name = config.listener.name;
  o.session.login_idle_timeout = std::chrono::milliseconds(config.login_idle_timeout_ms);
  o.session.idle_timeout = std::chrono::milliseconds(config.idle_timeout_ms);
  o.session.auth_failure_delay = std::chrono::milliseconds(config.auth_failure_delay_ms);
  o.session.body_chunk_bytes = config.body_chunk_bytes;
  o.session.allow_cleartext_login = config.listener.allow_cleartext_login;
  o.session.implementation = config.implementation;
  o.output_buffer_bytes = config.output_buffer_bytes;
  o.connections_max = config.connections_per_shard_max;
  o.ring_entries = config.ring_entries;
  o.recv_buffers = config.recv_buffers;
  o.recv_buffer_bytes = config.recv_buffer_bytes;
  o.storage.conninfo = config.dsn;
  o.storage.connections = config.connections_per_shard;
  o.storage.default_domain = config.default_domain;
  o.storage.query_timeout = std::chrono::milliseconds(config.query_timeout_ms);
  o.storage.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
  o.storage.lock_lease = std::chrono::milliseconds(config.lock_lease_ms);
  o.storage.application_name = "popgate/shard" + std::to_string(index);
  o.instance_id = instance_id;
  return o;
}

int serve(const ops::Config& config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  // Blocked before any thread starts, so only sigwait() below sees them.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (!wait_for_schema(config)) return 1;

  const unsigned cpus = std::max(1U, std::thread::hardware_concurrency());
  const unsigned shards = config.shards == 0 ? cpus : config.shards;
  net::Endpoint endpoint;
  std::string error;
  if (!net::parse_endpoint(config.listener.address, &endpoint, &error)) {
    POPGATE_LOG(kError, "startup_failed").str("reason", "listener.address: " + error);
    return 1;
  }
  net::Endpoint bound;
  const std::vector<int> fds =
      net::open_listeners(endpoint, shards, static_cast<int>(config.listen_backlog), &bound, &error);
  if (fds.empty()) {
    POPGATE_LOG(kError, "startup_failed").str("reason", "listener " + config.listener.name + ": " + error);
    return 1;
  }

  const std::string instance_id = make_instance_id(config);
  auth::KdfPool kdf(config.kdf_threads, config.kdf_queue_max);
  (void)auth::dummy_hash();  // computed once now, not under the first login
  std::vector<std::unique_ptr<shard::Shard>> shard_list;
  std::vector<std::thread> threads;
  // Written by the shard threads, read here: setup result and "loop ended".
  auto results = std::make_unique<std::atomic<int>[]>(shards);
  auto finished = std::make_unique<std::atomic<bool>[]>(shards);
  for (unsigned i = 0; i < shards; ++i) {
    shard_list.push_back(std::make_unique<shard::Shard>(shard_options(config, i, fds[i], instance_id), kdf));
  }
  for (unsigned i = 0; i < shards; ++i) {
    threads.emplace_back([&, i] {
      results[i].store(shard_list[i]->run());
      finished[i].store(true);
    });
  }
  auto stop_all = [&](std::chrono::milliseconds drain) {
    for (auto& s : shard_list) s->request_stop(drain);
  };
  // Wait until every shard is accepting, or one failed to set up.
  for (bool ready = false; !ready;) {
    ready = true;
    for (unsigned i = 0; i < shards; ++i) {
      if (results[i].load() < 0) {
        POPGATE_LOG(kError, "startup_failed").unum("shard", i).str("reason", std::strerror(-results[i].load()));
        stop_all(std::chrono::milliseconds(0));
        for (auto& t : threads) t.join();
        return 1;
      }
      ready = ready && shard_list[i]->started();
    }
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const std::string where = net::format_endpoint(reinterpret_cast<const sockaddr*>(&bound.addr), bound.len);
  POPGATE_LOG(kInfo, "listening")
      .str("listener", config.listener.name)
      .str("address", where)
      .unum("shards", shards)
      .str("instance", instance_id)
      .num("schema_version", storage::schema_version());
  if (!config.ready_file.empty()) {
    std::ofstream(config.ready_file) << where << "\n";
  }

  auto all_finished = [&] {
    for (unsigned i = 0; i < shards; ++i) {
      if (!finished[i].load()) return false;
    }
    return true;
  };
  bool stop_sent = false;
  while (!all_finished()) {
    timespec wait{0, 200'000'000};
    siginfo_t info;
    if (sigtimedwait(&signals, &info, &wait) < 0) continue;  // timeout or EINTR
    if (info.si_signo == SIGHUP) {
      POPGATE_LOG(kInfo, "sighup_ignored").str("reason", "configuration reload is not implemented yet");
      continue;
    }
    const bool now = info.si_signo == SIGINT || stop_sent;
    const auto drain = now ? std::chrono::milliseconds(0) : std::chrono::milliseconds(config.drain_timeout_ms);
    POPGATE_LOG(kInfo, "stopping")
        .str("signal", info.si_signo == SIGINT ? "SIGINT" : "SIGTERM")
        .num("drain_ms", drain.count());
    stop_all(drain);
    stop_sent = true;
  }
  for (auto& t : threads) t.join();
  POPGATE_LOG(kInfo, "stopped").str("instance", instance_id);
  return 0;
}

}  // namespace
}  // namespace popgate

int main(int argc, char** argv) {
  std::string error;
  bool exit_now = false;
  const auto config = popgate::ops::load_config(argc, argv, &error, &exit_now);
  if (!config) {
    if (exit_now) {
      std::fputs(error.c_str(), stdout);
      std::fputs("\n", stdout);
      return 0;
    }
    std::fprintf(stderr, "popgate: %s\n", error.c_str());
    return 2;
  }
  popgate::log::Level level{};
  (void)popgate::log::parse_level(config->log_level, &level);
  popgate::log::set_level(level);
  popgate::log::start(1);
  const int rc = popgate::serve(*config);
  popgate::log::stop();
  return rc;
}
