// popgate: startup, signals and shutdown around the shards.
//
// Startup blocks (it runs before any shard): configuration, the schema
// check, binding the listeners. Then one thread per shard runs its loop and
// this thread only waits for signals:
//   SIGINT          stop now: sessions are told -ERR [SYS/TEMP], no UPDATE
//   SIGTERM         drain: readiness goes false, stop accepting, let
//                   sessions finish for server.drain_timeout_ms, then stop
//                   as for SIGINT
//   a second signal stop now
//   SIGHUP          re-read the configuration (file, environment, flags):
//                   apply log.level, the limits thresholds and the TLS
//                   certificates, files and database (new connections use
//                   them); warn about changed keys that need a restart
// A watcher thread (ops/tenant_certificates.h) polls the tenants'
// certificates in the database and reloads TLS when they change.
// The optional HTTP status port (metrics.address) runs on CivetWeb's own
// threads: /metrics, /healthz/live, /healthz/ready, /log/level.
#include <malloc.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <mutex>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ops/config.h"
#include "ops/metrics.h"
#include "ops/schema_check.h"
#include "ops/status_server.h"
#include "ops/tls_reloads.h"
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

// Every cluster must be reachable at this build's schema version; they
// share the one startup_wait_ms.
bool wait_for_schema(const ops::Config& config, const std::vector<ops::DatabaseCluster>& clusters) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.startup_wait_ms);
  for (const ops::DatabaseCluster& cluster : clusters) {
    for (;;) {
      const auto problem = ops::check_schema(cluster.dsn);
      if (!problem) break;
      const bool unreachable = problem->rfind("database unreachable", 0) == 0;
      const std::string reason = clusters.size() > 1 ? "cluster " + cluster.name + ": " + *problem : *problem;
      if (!unreachable || std::chrono::steady_clock::now() >= deadline) {
        POPGATE_LOG(kError, "startup_failed").str("reason", reason);
        return false;
      }
      POPGATE_LOG(kWarn, "waiting_for_database").str("reason", reason);
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  return true;
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

lmtp::SessionConfig lmtp_config(const ops::Config& config) {
  lmtp::SessionConfig lc;
  lc.hostname = config.lmtp_hostname;
  if (lc.hostname.empty()) lc.hostname = config.instance_name;
  if (lc.hostname.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    lc.hostname = host;
  }
  lc.idle_timeout = std::chrono::milliseconds(config.lmtp_idle_timeout_ms);
  lc.data_idle_timeout = std::chrono::milliseconds(config.lmtp_data_idle_timeout_ms);
  lc.message_bytes_max = config.lmtp_message_bytes_max;
  lc.return_path = config.lmtp_return_path;
  lc.over_quota_is_temporary = config.lmtp_over_quota_is_temporary;
  return lc;
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
  shard::LimitThresholds thresholds;
};

void apply_thresholds(const ops::Config& config, shard::LimitThresholds& t) {
  t.connections_per_address_max.store(config.connections_per_address_max, std::memory_order_relaxed);
  t.sessions_per_user_max.store(config.sessions_per_user_max, std::memory_order_relaxed);
  t.sessions_per_tenant_max.store(config.sessions_per_tenant_max, std::memory_order_relaxed);
  t.logins_per_tenant_per_minute.store(config.logins_per_tenant_per_minute, std::memory_order_relaxed);
  t.failures_per_address_max.store(config.failures_per_address_max, std::memory_order_relaxed);
  t.proxy_header_timeout_ms.store(config.proxy_header_timeout_ms, std::memory_order_relaxed);
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const size_t space = text.find(' ');
    if (space != 0) out.emplace_back(text.substr(0, space));
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
  }
  return out;
}

shard::ShardOptions shard_options(const ops::Config& config, uint32_t index,
                                  const std::vector<std::vector<int>>& fds,
                                  const std::shared_ptr<const tls::TlsContext>& tls,
                                  const auth::JwksVerifier* oauth, LimitTables& tables,
                                  const std::string& instance_id,
                                  const std::shared_ptr<const storage::ClusterRoutes>& routes) {
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
    lo.lmtp = l.protocol == ops::ListenerProtocol::kLmtp;
    lo.lmtp_session = lmtp_config(config);
    o.listeners.push_back(std::move(lo));
  }
  o.tls = tls;
  o.oauth = oauth;
  o.limits.connections_per_address = &tables.per_address;
  o.limits.sessions_per_user = &tables.per_user;
  o.limits.sessions_per_tenant = &tables.per_tenant;
  o.limits.login_failures = config.failure_delay_initial_ms > 0 ? &tables.failures : nullptr;
  o.limits.tenant_logins = &tables.tenant_logins;
  o.limits.thresholds = &tables.thresholds;
  o.tenant_labels_max = config.tenant_labels_max;
  o.tenant_labels_only = split_words(config.tenant_labels);
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
  for (const ops::DatabaseCluster& c : config.clusters) o.cluster_conninfo.push_back(c.dsn);
  o.routes = routes;
  o.instance_id = instance_id;
  return o;
}

// What /healthz/ready and popgate_ready report. Written by the signal loop
// and the shards, read by the HTTP threads.
class Readiness {
 public:
  Readiness(std::vector<ops::DatabaseCluster> clusters, const std::vector<std::unique_ptr<shard::Shard>>& shards)
      : clusters_(std::move(clusters)), shards_(shards) {}
  void set_serving() noexcept { serving_.store(true); }
  void set_draining() noexcept { draining_.store(true); }
  [[nodiscard]] bool draining() const noexcept { return draining_.load(); }

  // Empty when ready. The schema check runs at most every kSchemaCheckEvery
  // (it blocks this HTTP thread on PostgreSQL, never a shard).
  std::string not_ready_reason() {
    if (draining_.load()) return "draining";
    if (!serving_.load()) return "starting";
    // Every cluster: a tenant on an unreachable one would get [SYS/TEMP].
    const bool several = clusters_.size() > 1;
    for (const auto& sh : shards_) {
      const auto& pg = sh->counters().pg_clusters;
      for (size_t i = 0; i < pg.size() && i < clusters_.size(); ++i) {
        if (pg[i].connections_up.value() == 0) {
          return "shard " + std::to_string(sh->index()) + " has no PostgreSQL connection" +
                 (several ? " to cluster " + clusters_[i].name : "");
        }
      }
    }
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_schema_check_) {
      schema_problem_.clear();
      for (const ops::DatabaseCluster& c : clusters_) {
        if (auto problem = ops::check_schema(c.dsn)) {
          schema_problem_ = several ? "cluster " + c.name + ": " + *problem : *problem;
          break;
        }
      }
      next_schema_check_ = now + kSchemaCheckEvery;
    }
    return schema_problem_;
  }

 private:
  static constexpr std::chrono::seconds kSchemaCheckEvery{10};
  const std::vector<ops::DatabaseCluster> clusters_;  // "default" first
  const std::vector<std::unique_ptr<shard::Shard>>& shards_;
  std::atomic<bool> serving_{false};
  std::atomic<bool> draining_{false};
  std::mutex mu_;  // guards the two below
  std::chrono::steady_clock::time_point next_schema_check_{};
  std::string schema_problem_;
};

void set_log_level(const std::string& name) {
  log::Level level{};
  if (log::parse_level(name, &level)) log::set_level(level);
}

// SIGHUP: re-read everything, apply what can change while running.
void reload(int argc, const char* const* argv, ops::Config& current, LimitTables& tables,
            ops::TlsReloads& tls) {
  std::string error;
  bool exit_now = false;
  const auto fresh = ops::load_config(argc, argv, &error, &exit_now);
  if (!fresh) {
    POPGATE_LOG(kError, "reload_failed").str("reason", error);
    return;
  }
  std::vector<std::string> applied;
  std::vector<std::string> restart;
  for (const std::string& key : ops::changed_keys(current, *fresh)) {
    (ops::reloadable(key) ? applied : restart).push_back(key);
  }
  if (fresh->tls_certificates.empty() != current.tls_certificates.empty()) {
    // Turning TLS on or off changes what listeners offer: restart.
    POPGATE_LOG(kError, "reload_failed").str("reason", "tls.certificates cannot be set or cleared without a restart");
    return;
  }
  // Certificates reload even when their paths did not change: the files
  // (and the database rows) may have. Files that fail keep the context in
  // use and stop the reload; a database that cannot be read keeps it too,
  // but the rest still applies (a log level may be wanted most then).
  const ops::TlsReloads::Outcome outcome = tls.reload(*fresh);
  if (outcome == ops::TlsReloads::Outcome::kFilesFailed) return;
  const bool tls_applied = outcome == ops::TlsReloads::Outcome::kApplied;
  if (!tls_applied) {
    std::erase_if(applied, [](const std::string& k) {
      return k.starts_with("tls.") && k != "tls.database_poll_ms";
    });
  }
  const auto context = tls.current();
  set_log_level(fresh->log_level);
  apply_thresholds(*fresh, tables.thresholds);
  std::string applied_text;
  for (const std::string& k : applied) applied_text += (applied_text.empty() ? "" : " ") + k;
  std::string restart_text;
  for (const std::string& k : restart) restart_text += (restart_text.empty() ? "" : " ") + k;
  POPGATE_LOG(kInfo, "reloaded")
      .str("applied", applied_text)
      .unum("certificates", context ? context->certificates().size() : 0);
  if (!restart.empty()) {
    POPGATE_LOG(kWarn, "restart_required").str("keys", restart_text);
  }
  // Keep the keys that need a restart as they are running.
  ops::Config next = current;
  next.log_level = fresh->log_level;
  if (tls_applied) {
    next.tls_certificates = fresh->tls_certificates;
    next.tls_sni_directory = fresh->tls_sni_directory;
    next.tls_ticket_key_file = fresh->tls_ticket_key_file;
  }
  next.tls_database_poll_ms = fresh->tls_database_poll_ms;
  next.connections_per_address_max = fresh->connections_per_address_max;
  next.sessions_per_user_max = fresh->sessions_per_user_max;
  next.sessions_per_tenant_max = fresh->sessions_per_tenant_max;
  next.logins_per_tenant_per_minute = fresh->logins_per_tenant_per_minute;
  next.failures_per_address_max = fresh->failures_per_address_max;
  next.proxy_header_timeout_ms = fresh->proxy_header_timeout_ms;
  current = std::move(next);
}

int serve(int argc, const char* const* argv, ops::Config config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  // Blocked before any thread starts, so only sigwait() below sees them.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  const int64_t start_time_s = static_cast<int64_t>(std::time(nullptr));

  const ops::ClusterSet cluster_set = ops::cluster_set(config.dsn, config.clusters, config.tenant_clusters);
  const auto routes = std::make_shared<const storage::ClusterRoutes>(cluster_set.routes);
  if (!wait_for_schema(config, cluster_set.clusters)) return 1;

  const unsigned cpus = std::max(1U, std::thread::hardware_concurrency());
  const unsigned shards = config.shards == 0 ? cpus : config.shards;
  std::string error;
  ops::TlsReloads tls_reloads(config);
  if (!tls_reloads.load_initial(&error)) {
    POPGATE_LOG(kError, "startup_failed").str("reason", "tls: " + error);
    return 1;
  }
  const bool tls_on = tls_reloads.current() != nullptr;
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
  apply_thresholds(config, tables.thresholds);
  std::vector<std::unique_ptr<shard::Shard>> shard_list;
  std::vector<std::thread> threads;
  // Written by the shard threads, read here: setup result and "loop ended".
  auto results = std::make_unique<std::atomic<int>[]>(shards);
  auto finished = std::make_unique<std::atomic<bool>[]>(shards);
  for (unsigned i = 0; i < shards; ++i) {
    shard_list.push_back(std::make_unique<shard::Shard>(
        shard_options(config, i, fds, tls_reloads.current(), oauth ? &*oauth : nullptr, tables, instance_id, routes),
        kdf));
  }

  // The status port comes up before the shards so a failure to bind it
  // fails startup; it says "starting" until every shard accepts.
  Readiness readiness(cluster_set.clusters, shard_list);
  std::unique_ptr<ops::MetricsExporter> exporter;
  std::unique_ptr<ops::StatusServer> status;
  if (!config.metrics_address.empty()) {
    ops::MetricsSources src;
    for (const auto& sh : shard_list) src.shards.push_back(sh.get());
    for (const ops::ListenerConfig& l : config.listeners) src.listeners.push_back(l.name);
    src.tenant_labels_max = config.tenant_labels_max;
    src.start_time_s = start_time_s;
    src.clusters.clear();
    for (const ops::DatabaseCluster& c : cluster_set.clusters) src.clusters.push_back(c.name);
    src.kdf_queued = [&kdf] { return kdf.queued(); };
    src.draining = [&readiness] { return readiness.draining(); };
    src.ready = [&readiness] { return readiness.not_ready_reason().empty(); };
    src.certificates = [&tls_reloads] {
      std::vector<std::pair<std::string, int64_t>> out;
      if (const auto context = tls_reloads.current()) {
        for (const tls::CertificateInfo& c : context->certificates()) out.emplace_back(c.source_file, c.not_after_s);
      }
      return out;
    };
    exporter = std::make_unique<ops::MetricsExporter>(std::move(src));
    ops::StatusHooks hooks;
    hooks.metrics = [&exporter] { return exporter->render(); };
    hooks.not_ready_reason = [&readiness] { return readiness.not_ready_reason(); };
    hooks.log_level_endpoint = config.log_level_endpoint;
    status = ops::StatusServer::start(config.metrics_address, std::move(hooks), &error);
    if (!status) {
      POPGATE_LOG(kError, "startup_failed").str("reason", "metrics.address: " + error);
      return 1;
    }
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
  readiness.set_serving();
  {
    std::vector<shard::Shard*> shard_pointers;
    for (const auto& sh : shard_list) shard_pointers.push_back(sh.get());
    tls_reloads.start_watching(std::move(shard_pointers));
  }
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const ops::ListenerConfig& l = config.listeners[i];
    POPGATE_LOG(kInfo, "listening")
        .str("listener", l.name)
        .str("address", bound_addresses[i])
        .str("protocol", l.protocol == ops::ListenerProtocol::kLmtp ? "lmtp" : "pop3")
        .str("tls", l.tls == ops::ListenerTls::kImplicit ? "implicit"
                    : (tls_on && l.starttls && l.protocol == ops::ListenerProtocol::kPop3 ? "starttls" : "none"))
        .boolean("proxy_protocol", l.proxy_protocol)
        .unum("shards", shards)
        .str("instance", instance_id)
        .num("schema_version", storage::schema_version());
  }
  if (cluster_set.clusters.size() > 1) {
    for (size_t i = 0; i < cluster_set.clusters.size(); ++i) {
      size_t tenants = 0;
      for (const ops::TenantCluster& t : config.tenant_clusters) tenants += t.cluster == cluster_set.clusters[i].name;
      POPGATE_LOG(kInfo, "database_cluster")
          .str("cluster", cluster_set.clusters[i].name)
          .unum("routed_tenants", tenants)
          .boolean("default", i == 0);
    }
  }
  if (status) {
    POPGATE_LOG(kInfo, "status_listening").str("address", status->bound_address());
  }
  if (!config.ready_file.empty()) {
    // The first listener's address on the first line; then "name address"
    // for every listener, and "metrics address" for the status port.
    std::ofstream out(config.ready_file + ".tmp");
    out << bound_addresses[0] << "\n";
    for (size_t i = 0; i < config.listeners.size(); ++i) {
      out << config.listeners[i].name << " " << bound_addresses[i] << "\n";
    }
    if (status) out << "metrics " << status->bound_address() << "\n";
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
      reload(argc, argv, config, tables, tls_reloads);
      continue;
    }
    const bool now = info.si_signo == SIGINT || stop_sent;
    const auto drain = now ? std::chrono::milliseconds(0) : std::chrono::milliseconds(config.drain_timeout_ms);
    readiness.set_draining();
    POPGATE_LOG(kInfo, "stopping")
        .str("signal", info.si_signo == SIGINT ? "SIGINT" : "SIGTERM")
        .num("drain_ms", drain.count());
    stop_all(drain);
    stop_sent = true;
  }
  tls_reloads.stop_watching();  // before the shards it hands contexts to go away
  for (auto& t : threads) t.join();
  status.reset();  // before the shards it reads go away
  POPGATE_LOG(kInfo, "stopped").str("instance", instance_id);
  return 0;
}

}  // namespace
}  // namespace popgate

int main(int argc, char** argv) {
  // Blocks of this size and larger are mapped from the kernel and given
  // back when freed. glibc's default starts at 128 KiB but raises the
  // threshold to the largest block ever freed (up to 32 MiB): after one
  // 100,000-message listing (arrays of 1-2 MiB), such buffers come from the
  // heap and their pages stay with the process, so its memory follows the
  // largest maildrop ever listed rather than the sessions open. Fixed here,
  // above a body chunk (256 KiB): those are reused from the heap, since a
  // fresh mapping per chunk costs a page fault per 4 KiB (bench/: retr_big
  // 13% slower with a 128 KiB threshold).
  constexpr int kMmapThresholdBytes = 512 * 1024;
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
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
  const int rc = popgate::serve(argc, argv, *config);
  popgate::log::stop();
  return rc;
}
