// popgate: startup, signals and shutdown around the shards.
//
// Startup blocks (it runs before any shard): configuration, the schema
// check, binding the listeners. Then one thread per shard runs its loop and
// this thread only waits for signals:
//   SIGINT          stop now: sessions are told -ERR [SYS/TEMP], no UPDATE
//   SIGTERM         drain: stop accepting, let sessions finish for
//                   server.drain_timeout_ms, then stop as for SIGINT
//   a second signal stop now
//   SIGHUP          reload the TLS certificates (new connections use them)
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <cstdio>
#include <fstream>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ops/config.h"
#include "ops/schema_check.h"
#include "server/auth/kdf_pool.h"
#include "server/auth/oauth.h"
#include "server/limits/concurrency_limit.h"
#include "server/limits/login_failure_delay.h"
#include "server/limits/rate_limit.h"
#include "server/tls/tls_context.h"
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

pop3::SessionConfig session_config(const ops::Config& config, const ops::ListenerConfig& l, bool tls) {
  pop3::SessionConfig sc;
  sc.login_idle_timeout = std::chrono::milliseconds(config.login_idle_timeout_ms);
  sc.idle_timeout = std::chrono::milliseconds(config.idle_timeout_ms);
  sc.auth_failure_delay = std::chrono::milliseconds(config.auth_failure_delay_ms);
  sc.body_chunk_bytes = config.body_chunk_bytes;
  sc.mechanisms = pop3::parse_mechanism_list(config.mechanisms);
  if (!l.apop) sc.mechanisms &= ~static_cast<uint32_t>(pop3::kMechApop);
  sc.allow_cleartext_login = l.allow_cleartext_login;
  sc.tls_available = tls && l.tls == ops::ListenerTls::kNone && l.starttls;
  sc.apop = l.apop && (sc.mechanisms & pop3::kMechApop) != 0;
  sc.capa_login_delay_s = config.capa_login_delay_s;
  sc.capa_expire_days = config.capa_expire == "never" ? -1 : std::stoll(config.capa_expire);
  sc.implementation = config.implementation;
  return sc;
}

std::shared_ptr<const tls::TlsContext> load_tls(const ops::Config& config, std::string* error) {
  if (config.tls_certificates.empty()) return nullptr;
  tls::TlsConfig t;
  std::string_view pairs(config.tls_certificates);
  while (!pairs.empty()) {
    const size_t space = pairs.find(' ');
    const std::string_view pair = pairs.substr(0, space);
    pairs = space == std::string_view::npos ? std::string_view{} : pairs.substr(space + 1);
    if (pair.empty()) continue;
    const size_t colon = pair.find(':');
    t.default_certificates.push_back({std::string(pair.substr(0, colon)), std::string(pair.substr(colon + 1))});
  }
  t.sni_directory = config.tls_sni_directory;
  t.ticket_key_file = config.tls_ticket_key_file;
  auto context = tls::TlsContext::load(t, error);
  if (context) {
    for (const std::string& w : context->warnings()) POPGATE_LOG(kWarn, "tls_warning").str("warning", w);
    for (const tls::CertificateInfo& c : context->certificates()) {
      POPGATE_LOG(kInfo, "tls_certificate")
          .str("file", c.source_file)
          .str("key", c.key_type)
          .str("subject", c.subject)
          .num("not_after", c.not_after_s)
          .boolean("default", c.is_default);
    }
  }
  return context;
}

// The process-wide abuse tables, sized for every connection the process admits.
struct LimitTables {
  explicit LimitTables(const ops::Config& config, size_t connections)
      : per_address(connections),
        per_user(connections),
        per_tenant(std::min<size_t>(connections, 1 << 20)),
        failures(limits::LoginFailureDelayOptions{
            std::max<size_t>(connections, 1024),
            std::chrono::milliseconds(std::max<uint32_t>(config.failure_delay_initial_ms, 1)),
            std::chrono::milliseconds(std::max(config.failure_delay_max_ms, std::max<uint32_t>(config.failure_delay_initial_ms, 1))),
            std::chrono::minutes(10)}),
        tenant_logins(1 << 16) {}
  limits::ConcurrencyLimit<limits::AddressKey> per_address;
  limits::ConcurrencyLimit<limits::UserKey> per_user;
  limits::ConcurrencyLimit<limits::TenantKey> per_tenant;
  limits::LoginFailureDelay<limits::AddressKey> failures;
  limits::RateLimit<limits::TenantKey> tenant_logins;
};

shard::ShardOptions shard_options(const ops::Config& config, uint32_t index,
                                  const std::vector<std::vector<int>>& fds,
                                  const std::shared_ptr<const tls::TlsContext>& tls,
                                  const auth::JwksVerifier* oauth, LimitTables& tables,
                                  const std::string& instance_id) {
  shard::ShardOptions o;
  o.index = index;
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const ops::ListenerConfig& l = config.listeners[i];
    shard::ListenerOptions lo;
    lo.name = l.name;
    lo.fd = fds[i][index];
    lo.session = session_config(config, l, tls != nullptr);
    lo.implicit_tls = l.tls == ops::ListenerTls::kImplicit;
    lo.proxy_protocol = l.proxy_protocol;
    std::string ignored;  // validated when the config was loaded
    if (l.proxy_protocol) lo.trusted_proxies = *proxy::CidrSet::parse(l.trusted_proxies, &ignored);
    lo.proxy_tls_is_secure = l.proxy_tls_is_secure;
    o.listeners.push_back(std::move(lo));
  }
  o.tls = tls;
  o.oauth = oauth;
  o.limits.connections_per_address = &tables.per_address;
  o.limits.sessions_per_user = &tables.per_user;
  o.limits.sessions_per_tenant = &tables.per_tenant;
  o.limits.login_failures = config.failure_delay_initial_ms > 0 ? &tables.failures : nullptr;
  o.limits.tenant_logins = &tables.tenant_logins;
  o.limits.connections_per_address_max = config.connections_per_address_max;
  o.limits.sessions_per_user_max = config.sessions_per_user_max;
  o.limits.sessions_per_tenant_max = config.sessions_per_tenant_max;
  o.limits.logins_per_tenant_per_minute = config.logins_per_tenant_per_minute;
  o.limits.failures_per_address_max = config.failures_per_address_max;
  o.limits.proxy_header_timeout = std::chrono::milliseconds(config.proxy_header_timeout_ms);
  o.verify_cache_entries = config.verify_cache_entries;
  o.verify_cache_ttl = std::chrono::milliseconds(config.verify_cache_ttl_ms);
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
  std::string error;
  const std::shared_ptr<const tls::TlsContext> tls = load_tls(config, &error);
  if (!config.tls_certificates.empty() && !tls) {
    POPGATE_LOG(kError, "startup_failed").str("reason", "tls: " + error);
    return 1;
  }
  std::optional<auth::JwksVerifier> oauth;
  if (!config.oauth_jwks_file.empty()) {
    try {
      auth::OAuthConfig oc;
      oc.issuer = config.oauth_issuer;
      if (!config.oauth_audience.empty()) oc.audiences.push_back(config.oauth_audience);
      oc.user_claim = config.oauth_username_claim;
      oauth.emplace(auth::JwksVerifier::from_file(config.oauth_jwks_file, oc));
    } catch (const std::exception& e) {
      POPGATE_LOG(kError, "startup_failed").str("reason", std::string("auth.oauth_jwks_file: ") + e.what());
      return 1;
    }
  }
  // One socket per listener per shard (SO_REUSEPORT), bound before the
  // shards start so a bad address fails startup with its name.
  std::vector<std::vector<int>> fds;
  std::vector<std::string> bound_addresses;
  for (const ops::ListenerConfig& l : config.listeners) {
    net::Endpoint endpoint;
    net::Endpoint bound;
    if (!net::parse_endpoint(l.address, &endpoint, &error)) {
      POPGATE_LOG(kError, "startup_failed").str("reason", "listener " + l.name + ": " + error);
      return 1;
    }
    fds.push_back(net::open_listeners(endpoint, shards, static_cast<int>(config.listen_backlog), &bound, &error));
    if (fds.back().empty()) {
      POPGATE_LOG(kError, "startup_failed").str("reason", "listener " + l.name + ": " + error);
      return 1;
    }
    bound_addresses.push_back(net::format_endpoint(reinterpret_cast<const sockaddr*>(&bound.addr), bound.len));
  }

  const std::string instance_id = make_instance_id(config);
  auth::KdfPool kdf(config.kdf_threads, config.kdf_queue_max);
  (void)auth::dummy_hash();  // computed once now, not under the first login
  LimitTables tables(config, size_t{shards} * config.connections_per_shard_max);
  std::vector<std::unique_ptr<shard::Shard>> shard_list;
  std::vector<std::thread> threads;
  // Written by the shard threads, read here: setup result and "loop ended".
  auto results = std::make_unique<std::atomic<int>[]>(shards);
  auto finished = std::make_unique<std::atomic<bool>[]>(shards);
  for (unsigned i = 0; i < shards; ++i) {
    shard_list.push_back(std::make_unique<shard::Shard>(
        shard_options(config, i, fds, tls, oauth ? &*oauth : nullptr, tables, instance_id), kdf));
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
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const ops::ListenerConfig& l = config.listeners[i];
    POPGATE_LOG(kInfo, "listening")
        .str("listener", l.name)
        .str("address", bound_addresses[i])
        .str("tls", l.tls == ops::ListenerTls::kImplicit ? "implicit" : (tls && l.starttls ? "starttls" : "none"))
        .boolean("proxy_protocol", l.proxy_protocol)
        .unum("shards", shards)
        .str("instance", instance_id)
        .num("schema_version", storage::schema_version());
  }
  if (!config.ready_file.empty()) {
    // The first listener's address on the first line; then "name address"
    // for every listener, for scripts and tests.
    std::ofstream out(config.ready_file + ".tmp");
    out << bound_addresses[0] << "\n";
    for (size_t i = 0; i < config.listeners.size(); ++i) {
      out << config.listeners[i].name << " " << bound_addresses[i] << "\n";
    }
    out.close();
    std::rename((config.ready_file + ".tmp").c_str(), config.ready_file.c_str());
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
      // Certificates reload; a failed load keeps the ones in use.
      std::string why;
      auto fresh = load_tls(config, &why);
      if (!config.tls_certificates.empty() && !fresh) {
        POPGATE_LOG(kError, "tls_reload_failed").str("reason", why);
        continue;
      }
      for (auto& sh : shard_list) sh->set_tls_context(fresh);
      POPGATE_LOG(kInfo, "tls_reloaded").unum("certificates", fresh ? fresh->certificates().size() : 0);
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
