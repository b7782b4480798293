// Gateway configuration: defaults, then a TOML file, then POPGATE_*
// environment variables (containers), then command-line flags. Every key is
// declared once, in the table in config.cc, with its type and allowed range;
// the TOML reader, the environment reader, `--set section.key=value` and the
// README's reference all follow that table. Unknown keys and out-of-range
// values are errors that name the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ops/database_clusters.h"
#include "ops/listener_config.h"

namespace popgate::ops {

struct Config {
  // [server]
  std::string instance_name;        // "" = hostname
  uint32_t shards = 0;              // 0 = one per online CPU
  uint32_t drain_timeout_ms = 30'000;
  std::string ready_file;           // written with "host:port" once serving
  // [listener]: the one listener when no [[listeners]] are given
  ListenerConfig listener;
  uint32_t listen_backlog = 4096;
  // Every listener to serve, as loaded (never empty after load_config).
  std::vector<ListenerConfig> listeners;
  // [tls]
  std::string tls_certificates;     // "chain.pem:key.pem ..." (space-separated pairs)
  std::string tls_sni_directory;
  std::string tls_ticket_key_file;
  uint32_t tls_database_poll_ms = 30'000;  // tenants' certificates; 0 = no polling
  // [session]
  uint32_t login_idle_timeout_ms = 60'000;
  uint32_t idle_timeout_ms = 600'000;
  uint32_t auth_failure_delay_ms = 1'000;
  uint32_t output_buffer_bytes = 16 * 1024;
  uint32_t body_chunk_bytes = 256 * 1024;
  uint32_t connections_per_shard_max = 65'536;
  std::string implementation = "popgate";
  uint32_t capa_login_delay_s = 0;  // CAPA before login: LOGIN-DELAY n USER
  std::string capa_expire = "never";  // CAPA before login: EXPIRE n|NEVER USER
  // [net]
  uint32_t ring_entries = 4096;
  uint32_t recv_buffers = 1024;
  uint32_t recv_buffer_bytes = 4096;
  // [database]
  std::string dsn;
  uint32_t connections_per_shard = 2;
  uint32_t query_timeout_ms = 10'000;
  uint32_t connect_timeout_ms = 5'000;
  uint32_t lock_lease_ms = 30'000;
  std::string default_domain;
  uint32_t startup_wait_ms = 30'000;
  // [database.clusters.NAME] dsn = "...": PostgreSQL clusters beyond the
  // default (dsn); [database.tenants] "domain" = "NAME": the tenants that
  // live there (the rest live on the default). Validated, domains
  // lowercased and sorted. A change needs a restart.
  std::vector<DatabaseCluster> clusters;
  std::vector<TenantCluster> tenant_clusters;
  // [auth]
  uint32_t kdf_threads = 0;         // 0 = one per online CPU
  uint32_t kdf_queue_max = 4096;
  std::string mechanisms = "USER PLAIN LOGIN SCRAM-SHA-256";
  std::string oauth_jwks_file;
  std::string oauth_issuer;
  std::string oauth_audience;
  std::string oauth_username_claim = "email";
  uint32_t verify_cache_entries = 10'000;   // per shard; 0 disables
  uint32_t verify_cache_ttl_ms = 300'000;
  // [limits]
  uint32_t failure_delay_initial_ms = 2'000;
  uint32_t failure_delay_max_ms = 15'000;
  uint32_t failures_per_address_max = 20;   // then that address is disconnected
  uint32_t connections_per_address_max = 100;
  uint32_t sessions_per_user_max = 10;
  uint32_t sessions_per_tenant_max = 100'000;
  uint32_t logins_per_tenant_per_minute = 60'000;
  uint32_t proxy_header_timeout_ms = 5'000;
  // [lmtp] (listeners with protocol = lmtp)
  std::string lmtp_hostname;              // "" = the instance name
  uint32_t lmtp_message_bytes_max = 64 * 1024 * 1024;
  uint32_t lmtp_idle_timeout_ms = 300'000;
  uint32_t lmtp_data_idle_timeout_ms = 300'000;
  bool lmtp_return_path = true;
  bool lmtp_over_quota_is_temporary = false;
  // [metrics]
  std::string metrics_address;            // "" = no HTTP port (no metrics, no health)
  uint32_t tenant_labels_max = 100;
  std::string tenant_labels;              // space-separated; "" = any tenant
  bool log_level_endpoint = true;
  // [log]
  std::string log_level = "info";
};

struct KeyInfo {
  std::string name;        // "section.key"
  std::string env;         // POPGATE_SECTION_KEY
  std::string type;        // "string", "integer", "boolean"
  std::string default_value;
  std::string help;
};

// Loads and validates. On error returns nullopt and sets *error to a
// message naming the key (or flag) and the problem. *exit_now is set for
// --help / --version, with the text in *error.
[[nodiscard]] std::optional<Config> load_config(int argc, const char* const* argv,
                                                std::string* error, bool* exit_now);

// Every key, for `popgate --print-keys` and the README.
[[nodiscard]] std::vector<KeyInfo> config_keys();

// Keys SIGHUP applies to a running process: log.level, every limits.* key,
// the TLS files and the database poll interval (tls.*) and
// metrics.log_level_endpoint. Others need a restart.
[[nodiscard]] bool reloadable(std::string_view key) noexcept;
// Keys whose values differ between `a` and `b` ("section.key"; the
// cluster map counts as "database.clusters" and "database.tenants").
[[nodiscard]] std::vector<std::string> changed_keys(const Config& a, const Config& b);

}  // namespace popgate::ops
