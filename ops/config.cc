#include "ops/config.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "server/base/log.h"
#include "server/net/listener.h"
#include "server/pop3/session.h"

namespace popgate::ops {
namespace {

using Field = std::variant<std::string*, uint32_t*, bool*>;

struct Key {
  const char* section;
  const char* name;
  Field (*field)(Config&);
  uint32_t min;  // integers only
  uint32_t max;
  const char* help;
};

#define POPGATE_FIELD(expr) [](Config& c) -> Field { return &c.expr; }
constexpr uint32_t kU32Max = UINT32_MAX;

// The one list of configuration keys.
const Key kKeys[] = {
    {"server", "instance_name", POPGATE_FIELD(instance_name), 0, 0,
     "Name of this instance in logs and lock holders; empty = host name."},
    {"server", "shards", POPGATE_FIELD(shards), 0, 1024, "Shard threads; 0 = one per online CPU."},
    {"server", "drain_timeout_ms", POPGATE_FIELD(drain_timeout_ms), 0, 3'600'000,
     "On SIGTERM, how long running sessions may continue before they are ended."},
    {"server", "ready_file", POPGATE_FIELD(ready_file), 0, 0,
     "File written with the bound host:port once popgate serves (for tests and scripts)."},
    {"listener", "name", POPGATE_FIELD(listener.name), 0, 0, "Listener name in logs and metrics."},
    {"listener", "address", POPGATE_FIELD(listener.address), 0, 0,
     "host:port to serve plain POP3 on; numeric address; port 0 picks a free port."},
    {"listener", "allow_cleartext_login", POPGATE_FIELD(listener.allow_cleartext_login), 0, 0,
     "Offer and accept USER/PASS on this (unencrypted) listener."},
    {"listener", "backlog", POPGATE_FIELD(listen_backlog), 16, 65'535, "listen() backlog per shard."},
    {"tls", "certificates", POPGATE_FIELD(tls_certificates), 0, 0,
     "Default certificates: space-separated chain.pem:key.pem pairs (e.g. one ECDSA, one RSA)."},
    {"tls", "sni_directory", POPGATE_FIELD(tls_sni_directory), 0, 0,
     "Directory of per-tenant certificates, selected by SNI from their DNS names."},
    {"tls", "ticket_key_file", POPGATE_FIELD(tls_ticket_key_file), 0, 0,
     "Session ticket keys shared by all instances (80 bytes); empty = random per process."},
    {"tls", "database_poll_ms", POPGATE_FIELD(tls_database_poll_ms), 0, 3'600'000,
     "How often to look for changed tenant certificates in the database; 0 = only at start "
     "and SIGHUP."},
    {"session", "login_idle_timeout_ms", POPGATE_FIELD(login_idle_timeout_ms), 1'000, 3'600'000,
     "Autologout before login."},
    {"session", "idle_timeout_ms", POPGATE_FIELD(idle_timeout_ms), 600'000, 86'400'000,
     "Autologout after login; RFC 1939 requires at least 10 minutes."},
    {"session", "auth_failure_delay_ms", POPGATE_FIELD(auth_failure_delay_ms), 0, 60'000,
     "Delay before a failed login is answered."},
    {"session", "output_buffer_bytes", POPGATE_FIELD(output_buffer_bytes), 4'096, 1'048'576,
     "Output block per busy session; bounds memory per session."},
    {"session", "body_chunk_bytes", POPGATE_FIELD(body_chunk_bytes), 4'096, 16'777'216,
     "Octets of a message fetched from PostgreSQL at a time during RETR/TOP."},
    {"session", "connections_per_shard_max", POPGATE_FIELD(connections_per_shard_max), 1, 16'000'000,
     "Connections a shard holds at once; more are refused at accept."},
    {"session", "implementation", POPGATE_FIELD(implementation), 0, 0,
     "Text of the CAPA IMPLEMENTATION line; empty hides it."},
    {"session", "capa_login_delay_s", POPGATE_FIELD(capa_login_delay_s), 0, 86'400,
     "LOGIN-DELAY announced before login (with USER: tenants may differ)."},
    {"session", "capa_expire", POPGATE_FIELD(capa_expire), 0, 0,
     "EXPIRE announced before login: days, or never (with USER: tenants may differ)."},
    {"net", "ring_entries", POPGATE_FIELD(ring_entries), 64, 32'768,
     "io_uring submission queue entries per shard (power of two)."},
    {"net", "recv_buffers", POPGATE_FIELD(recv_buffers), 16, 32'768,
     "Provided receive buffers per shard (power of two)."},
    {"net", "recv_buffer_bytes", POPGATE_FIELD(recv_buffer_bytes), 512, 65'536,
     "Size of each provided receive buffer."},
    {"database", "dsn", POPGATE_FIELD(dsn), 0, 0, "libpq connection string or URI (required)."},
    {"database", "connections_per_shard", POPGATE_FIELD(connections_per_shard), 1, 64,
     "PostgreSQL connections each shard keeps open."},
    {"database", "query_timeout_ms", POPGATE_FIELD(query_timeout_ms), 100, 600'000,
     "A query not answered in this time fails with [SYS/TEMP] and its connection is replaced."},
    {"database", "connect_timeout_ms", POPGATE_FIELD(connect_timeout_ms), 100, 600'000,
     "Timeout for establishing a PostgreSQL connection."},
    {"database", "lock_lease_ms", POPGATE_FIELD(lock_lease_ms), 3'000, 3'600'000,
     "Maildrop lock lease; a crashed instance's locks free up within this time."},
    {"database", "default_domain", POPGATE_FIELD(default_domain), 0, 0,
     "Domain appended to logins without '@'; empty = full addresses only."},
    {"database", "startup_wait_ms", POPGATE_FIELD(startup_wait_ms), 0, 3'600'000,
     "How long to wait at startup for PostgreSQL to be reachable."},
    {"auth", "kdf_threads", POPGATE_FIELD(kdf_threads), 0, 1024,
     "Password-hashing worker threads; 0 = one per online CPU."},
    {"auth", "kdf_queue_max", POPGATE_FIELD(kdf_queue_max), 1, 1'000'000,
     "Password checks that may wait; beyond, logins get [SYS/TEMP]."},
    {"auth", "mechanisms", POPGATE_FIELD(mechanisms), 0, 0,
     "Enabled login methods: USER APOP PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2."},
    {"auth", "oauth_jwks_file", POPGATE_FIELD(oauth_jwks_file), 0, 0,
     "JWKS file with the keys bearer tokens are verified against (OAUTHBEARER, XOAUTH2)."},
    {"auth", "oauth_issuer", POPGATE_FIELD(oauth_issuer), 0, 0, "Required 'iss' of bearer tokens."},
    {"auth", "oauth_audience", POPGATE_FIELD(oauth_audience), 0, 0, "Required 'aud' of bearer tokens."},
    {"auth", "oauth_username_claim", POPGATE_FIELD(oauth_username_claim), 0, 0,
     "Token claim that holds the login name."},
    {"auth", "verify_cache_entries", POPGATE_FIELD(verify_cache_entries), 0, 1'000'000,
     "Successful password checks remembered per shard; 0 disables the cache."},
    {"auth", "verify_cache_ttl_ms", POPGATE_FIELD(verify_cache_ttl_ms), 1'000, 3'600'000,
     "How long a remembered check stays valid (a password change takes effect at once)."},
    {"limits", "failure_delay_initial_ms", POPGATE_FIELD(failure_delay_initial_ms), 0, 60'000,
     "Delay before answering the first failed login from an address; doubles per failure."},
    {"limits", "failure_delay_max_ms", POPGATE_FIELD(failure_delay_max_ms), 0, 300'000,
     "Cap of that delay."},
    {"limits", "failures_per_address_max", POPGATE_FIELD(failures_per_address_max), 1, 1'000'000,
     "Failed logins from one address (in 10 minutes) after which its connections are cut."},
    {"limits", "connections_per_address_max", POPGATE_FIELD(connections_per_address_max), 1, 1'000'000,
     "Concurrent connections from one client address."},
    {"limits", "sessions_per_user_max", POPGATE_FIELD(sessions_per_user_max), 1, 1'000'000,
     "Concurrent logged-in sessions of one user (the maildrop lock allows one to hold it)."},
    {"limits", "sessions_per_tenant_max", POPGATE_FIELD(sessions_per_tenant_max), 1, 100'000'000,
     "Concurrent sessions of one tenant per instance, unless the tenant's policy says otherwise."},
    {"limits", "logins_per_tenant_per_minute", POPGATE_FIELD(logins_per_tenant_per_minute), 1, 100'000'000,
     "Logins of one tenant per minute per instance, unless the tenant's policy says otherwise."},
    {"limits", "proxy_header_timeout_ms", POPGATE_FIELD(proxy_header_timeout_ms), 3'000, 60'000,
     "How long a PROXY-protocol connection may take to send its header."},
    {"lmtp", "hostname", POPGATE_FIELD(lmtp_hostname), 0, 0,
     "Name in the LMTP greeting and replies; empty = server.instance_name or the host name."},
    {"lmtp", "message_bytes_max", POPGATE_FIELD(lmtp_message_bytes_max), 1'024, 1'073'741'824,
     "Largest message LMTP accepts (SIZE), in octets as stored; PostgreSQL caps a body at 1 GiB."},
    {"lmtp", "idle_timeout_ms", POPGATE_FIELD(lmtp_idle_timeout_ms), 60'000, 3'600'000,
     "LMTP idle time between commands (RFC 5321 asks for at least 5 minutes)."},
    {"lmtp", "data_idle_timeout_ms", POPGATE_FIELD(lmtp_data_idle_timeout_ms), 60'000, 3'600'000,
     "LMTP idle time while a message is being sent."},
    {"lmtp", "return_path", POPGATE_FIELD(lmtp_return_path), 0, 0,
     "Prepend Return-Path: <sender> to delivered messages (the final delivery's job)."},
    {"lmtp", "over_quota_is_temporary", POPGATE_FIELD(lmtp_over_quota_is_temporary), 0, 0,
     "A full maildrop answers 452 4.2.2 (the MTA retries) instead of 552 5.2.2 (it bounces)."},
    {"metrics", "address", POPGATE_FIELD(metrics_address), 0, 0,
     "host:port of the HTTP port for /metrics, /healthz/live, /healthz/ready and /log/level; "
     "empty = none. Bind it to an internal address."},
    {"metrics", "tenant_labels_max", POPGATE_FIELD(tenant_labels_max), 0, 10'000,
     "Tenants with metric series of their own; the rest are counted as tenant=\"other\"."},
    {"metrics", "tenant_labels", POPGATE_FIELD(tenant_labels), 0, 0,
     "Space-separated tenant domains that may have series of their own; empty = the first seen."},
    {"metrics", "log_level_endpoint", POPGATE_FIELD(log_level_endpoint), 0, 0,
     "Allow PUT /log/level on the metrics port to change the log level at runtime."},
    {"log", "level", POPGATE_FIELD(log_level), 0, 0, "debug, info, warn or error (SIGHUP re-reads it)."},
};
#undef POPGATE_FIELD

std::string dotted(const Key& k) { return std::string(k.section) + "." + k.name; }

std::string env_name(const Key& k) {
  std::string out = "POPGATE_" + std::string(k.section) + "_" + k.name;
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

const Key* find_key(std::string_view section, std::string_view name) {
  for (const Key& k : kKeys) {
    if (section == k.section && name == k.name) return &k;
  }
  return nullptr;
}

// Sets a key from text (environment, --set, flags).
bool set_from_text(Config& c, const Key& k, std::string_view text, const std::string& origin,
                   std::string* error) {
  const Field f = k.field(c);
  if (auto* s = std::get_if<std::string*>(&f)) {
    **s = std::string(text);
    return true;
  }
  if (auto* b = std::get_if<bool*>(&f)) {
    if (text == "true" || text == "1" || text == "yes") {
      **b = true;
    } else if (text == "false" || text == "0" || text == "no") {
      **b = false;
    } else {
      *error = origin + ": " + dotted(k) + " must be true or false, got '" + std::string(text) + "'";
      return false;
    }
    return true;
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > kU32Max) {
    *error = origin + ": " + dotted(k) + " must be a non-negative integer, got '" + std::string(text) + "'";
    return false;
  }
  *std::get<uint32_t*>(f) = static_cast<uint32_t>(value);
  return true;
}

// [[listeners]]: an array of tables, each with listener_keys().
bool load_toml_listeners(Config& c, const std::string& path, const toml::node& node, std::string* error) {
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    *error = path + ": listeners must be an array of tables, written [[listeners]]";
    return false;
  }
  for (const toml::node& item : *array) {
    const toml::table* table = item.as_table();
    if (table == nullptr) {
      *error = path + ": each [[listeners]] entry must be a table";
      return false;
    }
    ListenerConfig l;
    for (const auto& [key, value] : *table) {
      std::string text;
      if (const auto b = value.value<bool>(); value.is_boolean() && b) {
        text = *b ? "true" : "false";
      } else if (const auto str = value.value<std::string>(); value.is_string() && str) {
        text = *str;
      } else {
        *error = path + ": listeners." + std::string(key.str()) + " must be a string or a boolean";
        return false;
      }
      if (!set_listener_key(l, key.str(), text, error)) {
        *error = path + ": " + *error;
        return false;
      }
    }
    c.listeners.push_back(std::move(l));
  }
  return true;
}

// [database.clusters.NAME] tables with a dsn each, and the [database.tenants]
// table of "domain" = "NAME" (ops/database_clusters.h checks both later).
bool load_toml_clusters(Config& c, const std::string& path, const toml::node& node, std::string* error) {
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    *error = path + ": database.clusters must be tables, written [database.clusters.NAME]";
    return false;
  }
  for (const auto& [name, value] : *table) {
    const std::string key = "database.clusters." + std::string(name.str());
    const toml::table* cluster = value.as_table();
    if (cluster == nullptr) {
      *error = path + ": " + key + " must be a table with a dsn, written [" + key + "]";
      return false;
    }
    std::string dsn;
    for (const auto& [field, v] : *cluster) {
      if (field.str() != "dsn") {
        *error = path + ": unknown key '" + key + "." + std::string(field.str()) + "' (a cluster has a dsn)";
        return false;
      }
      if (!v.is_string()) {
        *error = path + ": " + key + ".dsn must be a string";
        return false;
      }
      dsn = *v.value<std::string>();
    }
    if (!set_cluster(c.clusters, name.str(), dsn, path, error)) return false;
  }
  return true;
}

bool load_toml_tenants(Config& c, const std::string& path, const toml::node& node, std::string* error) {
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    *error = path + ": database.tenants must be a table of \"domain\" = \"cluster\", written [database.tenants]";
    return false;
  }
  for (const auto& [domain, value] : *table) {
    if (!value.is_string()) {
      *error = path + ": database.tenants.\"" + std::string(domain.str()) + "\" must be a cluster name (a string)";
      return false;
    }
    c.tenant_clusters.push_back({std::string(domain.str()), *value.value<std::string>()});
  }
  return true;
}

bool load_toml(Config& c, const std::string& path, std::string* error) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    *error = path + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " +
             std::string(e.description());
    return false;
  }
  for (const auto& [section, node] : root) {
    if (section.str() == "listeners") {
      if (!load_toml_listeners(c, path, node, error)) return false;
      continue;
    }
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      *error = path + ": '" + std::string(section.str()) + "' must be a table like [" +
               std::string(section.str()) + "]";
      return false;
    }
    for (const auto& [name, value] : *table) {
      if (section.str() == "database" && name.str() == "clusters") {
        if (!load_toml_clusters(c, path, value, error)) return false;
        continue;
      }
      if (section.str() == "database" && name.str() == "tenants") {
        if (!load_toml_tenants(c, path, value, error)) return false;
        continue;
      }
      const Key* k = find_key(section.str(), name.str());
      const std::string key_name = std::string(section.str()) + "." + std::string(name.str());
      if (k == nullptr) {
        *error = path + ": unknown key '" + key_name + "'";
        return false;
      }
      const Field f = k->field(c);
      if (auto* s = std::get_if<std::string*>(&f)) {
        if (!value.is_string()) {
          *error = path + ": " + key_name + " must be a string";
          return false;
        }
        **s = *value.value<std::string>();
      } else if (auto* b = std::get_if<bool*>(&f)) {
        if (!value.is_boolean()) {
          *error = path + ": " + key_name + " must be true or false";
          return false;
        }
        **b = *value.value<bool>();
      } else {
        const auto n = value.value<int64_t>();
        if (!value.is_integer() || !n || *n < 0 || *n > kU32Max) {
          *error = path + ": " + key_name + " must be a non-negative integer";
          return false;
        }
        *std::get<uint32_t*>(f) = static_cast<uint32_t>(*n);
      }
    }
  }
  return true;
}

bool load_env(Config& c, std::string* error) {
  if (const char* specs = std::getenv("POPGATE_LISTENERS")) {
    c.listeners.clear();
    std::string_view rest(specs);
    while (!rest.empty()) {
      const size_t semi = rest.find(';');
      const std::string_view spec = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      if (spec.find_first_not_of(" \t") == std::string_view::npos) continue;
      ListenerConfig l;
      if (!parse_listener_spec(spec, &l, error)) {
        *error = "environment POPGATE_LISTENERS: " + *error;
        return false;
      }
      c.listeners.push_back(std::move(l));
    }
  }
  for (const Key& k : kKeys) {
    const std::string name = env_name(k);
    if (const char* v = std::getenv(name.c_str())) {
      if (!set_from_text(c, k, v, "environment " + name, error)) return false;
    }
  }
  // Clusters one variable each (a Secret may hold a DSN with a password);
  // the tenant map as a whole replaces the file's.
  if (!read_cluster_env(c.clusters, error)) return false;
  if (const char* pairs = std::getenv("POPGATE_DATABASE_TENANTS")) {
    c.tenant_clusters.clear();
    if (!parse_tenant_pairs(c.tenant_clusters, pairs, "environment POPGATE_DATABASE_TENANTS", error)) return false;
  }
  return true;
}

bool power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

bool validate_tls_and_auth(const Config& c, std::string* error) {
  std::string_view pairs(c.tls_certificates);
  while (!pairs.empty()) {
    const size_t space = pairs.find(' ');
    const std::string_view pair = pairs.substr(0, space);
    pairs = space == std::string_view::npos ? std::string_view{} : pairs.substr(space + 1);
    if (pair.empty()) continue;
    const size_t colon = pair.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == pair.size()) {
      *error = "tls.certificates: '" + std::string(pair) + "' is not chain.pem:key.pem";
      return false;
    }
  }
  std::string_view names(c.mechanisms);
  uint32_t bits = 0;
  while (!names.empty()) {
    const size_t space = names.find(' ');
    const std::string_view name = names.substr(0, space);
    names = space == std::string_view::npos ? std::string_view{} : names.substr(space + 1);
    if (name.empty()) continue;
    const pop3::Mechanism m = pop3::mechanism_from_name(name);
    if (m == 0) {
      *error = "auth.mechanisms: unknown method '" + std::string(name) +
               "' (USER APOP PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2)";
      return false;
    }
    bits |= m;
  }
  if (bits == 0) {
    *error = "auth.mechanisms must enable at least one login method";
    return false;
  }
  if ((bits & (pop3::kMechOauthBearer | pop3::kMechXoauth2)) != 0 && c.oauth_jwks_file.empty()) {
    *error = "auth.mechanisms has OAUTHBEARER or XOAUTH2 but auth.oauth_jwks_file is empty";
    return false;
  }
  return true;
}

bool validate_listeners(const Config& c, std::string* error) {
  const bool tls_configured = !c.tls_certificates.empty();
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    if (!validate_listener(c.listeners[i], tls_configured, error)) return false;
    for (size_t j = 0; j < i; ++j) {
      if (c.listeners[j].name == c.listeners[i].name) {
        *error = "listener " + c.listeners[i].name + ": the name is used twice";
        return false;
      }
      // Port 0 means "any free port": each gets its own.
      const bool any_port = c.listeners[i].address.ends_with(":0");
      if (!any_port && c.listeners[j].address == c.listeners[i].address) {
        *error = "listener " + c.listeners[i].name + ": address " + c.listeners[i].address +
                 " is also listener " + c.listeners[j].name + "'s";
        return false;
      }
    }
  }
  return true;
}

bool validate(const Config& c, std::string* error) {
  Config copy = c;
  for (const Key& k : kKeys) {
    const Field f = k.field(copy);
    if (auto* n = std::get_if<uint32_t*>(&f)) {
      if (**n < k.min || **n > k.max) {
        *error = dotted(k) + " = " + std::to_string(**n) + " is out of range [" + std::to_string(k.min) +
                 ", " + std::to_string(k.max) + "]: " + k.help;
        return false;
      }
    }
  }
  if (c.dsn.empty()) {
    *error = "database.dsn is required (flag --dsn, environment POPGATE_DATABASE_DSN)";
    return false;
  }
  if (!power_of_two(c.ring_entries)) {
    *error = "net.ring_entries must be a power of two";
    return false;
  }
  if (!power_of_two(c.recv_buffers)) {
    *error = "net.recv_buffers must be a power of two";
    return false;
  }
  log::Level level{};
  if (!log::parse_level(c.log_level, &level)) {
    *error = "log.level must be debug, info, warn or error, got '" + c.log_level + "'";
    return false;
  }
  net::Endpoint endpoint;
  std::string why;
  if (!net::parse_endpoint(c.listener.address, &endpoint, &why)) {
    *error = "listener.address: " + why;
    return false;
  }
  if (c.implementation.size() > 64) {
    *error = "session.implementation is longer than 64 characters";
    return false;
  }
  if (c.capa_expire != "never" && c.capa_expire.find_first_not_of("0123456789") != std::string::npos) {
    *error = "session.capa_expire must be a number of days or never, got '" + c.capa_expire + "'";
    return false;
  }
  if (!c.metrics_address.empty() && !net::parse_endpoint(c.metrics_address, &endpoint, &why)) {
    *error = "metrics.address: " + why;
    return false;
  }
  if (c.failure_delay_max_ms < c.failure_delay_initial_ms) {
    *error = "limits.failure_delay_max_ms must not be below limits.failure_delay_initial_ms";
    return false;
  }
  return validate_tls_and_auth(c, error) && validate_listeners(c, error);
}

}  // namespace

bool reloadable(std::string_view key) noexcept {
  return key == "log.level" || key.starts_with("limits.") || key.starts_with("tls.") ||
         key == "metrics.log_level_endpoint";
}

std::vector<std::string> changed_keys(const Config& a, const Config& b) {
  Config x = a;
  Config y = b;
  std::vector<std::string> out;
  for (const Key& k : kKeys) {
    const Field fx = k.field(x);
    const Field fy = k.field(y);
    bool same = true;
    if (auto* s = std::get_if<std::string*>(&fx)) {
      same = **s == *std::get<std::string*>(fy);
    } else if (auto* v = std::get_if<bool*>(&fx)) {
      same = **v == *std::get<bool*>(fy);
    } else {
      same = *std::get<uint32_t*>(fx) == *std::get<uint32_t*>(fy);
    }
    if (!same) out.push_back(dotted(k));
  }
  bool listeners_same = a.listeners.size() == b.listeners.size();
  for (size_t i = 0; listeners_same && i < a.listeners.size(); ++i) {
    listeners_same = a.listeners[i] == b.listeners[i];
  }
  if (!listeners_same) out.emplace_back("listeners");
  if (a.clusters != b.clusters) out.emplace_back("database.clusters");
  if (a.tenant_clusters != b.tenant_clusters) out.emplace_back("database.tenants");
  return out;
}

std::vector<KeyInfo> config_keys() {
  std::vector<KeyInfo> out;
  Config defaults;
  for (const Key& k : kKeys) {
    KeyInfo info{dotted(k), env_name(k), "", "", k.help};
    const Field f = k.field(defaults);
    if (auto* s = std::get_if<std::string*>(&f)) {
      info.type = "string";
      info.default_value = "\"" + **s + "\"";
    } else if (auto* b = std::get_if<bool*>(&f)) {
      info.type = "boolean";
      info.default_value = **b ? "true" : "false";
    } else {
      info.type = "integer";
      info.default_value = std::to_string(*std::get<uint32_t*>(f));
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::optional<Config> load_config(int argc, const char* const* argv, std::string* error,
                                  bool* exit_now) {
  *exit_now = false;
  CLI::App app{"popgate: multi-tenant POP3 gateway on PostgreSQL"};
  std::string config_file;
  std::optional<std::string> listen, dsn, log_level, ready_file;
  std::optional<uint32_t> shards;
  std::vector<std::string> sets;
  std::vector<std::string> listener_specs;
  std::vector<std::string> cluster_specs;
  std::vector<std::string> tenant_specs;
  bool print_keys = false;
  bool check_only = false;
  app.add_option("-c,--config", config_file, "TOML configuration file")->envname("POPGATE_CONFIG");
  app.add_option("--listen", listen, "listener.address (host:port)");
  app.add_option("--dsn", dsn, "database.dsn (libpq connection string)");
  app.add_option("--shards", shards, "server.shards (0 = one per CPU)");
  app.add_option("--log-level", log_level, "log.level");
  app.add_option("--ready-file", ready_file, "server.ready_file");
  app.add_option("--set", sets, "section.key=value, for any key (repeatable)");
  app.add_option("--listener", listener_specs,
                 "a listener spec: name=...,address=...,tls=none|implicit,... (repeatable; replaces the others)");
  app.add_option("--cluster", cluster_specs,
                 "NAME=DSN: a PostgreSQL cluster beyond database.dsn (repeatable; adds or replaces by name)");
  app.add_option("--tenant-cluster", tenant_specs,
                 "DOMAIN=NAME: the tenant's cluster (repeatable; replaces the database.tenants map)");
  app.add_flag("--print-keys", print_keys, "print every configuration key and exit");
  app.add_flag("--check-config", check_only, "load and validate the configuration, then exit");
  app.set_version_flag("--version", "popgate 0.1.0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      *error = e.what();
      return std::nullopt;
    }
    // --help or --version
    *exit_now = true;
    *error = dynamic_cast<const CLI::CallForVersion*>(&e) != nullptr ? "popgate 0.1.0" : app.help();
    return std::nullopt;
  }
  if (print_keys) {
    *exit_now = true;
    for (const KeyInfo& k : config_keys()) {
      *error += k.name + " (" + k.type + ", default " + k.default_value + ", env " + k.env + "): " +
                k.help + "\n";
    }
    return std::nullopt;
  }

  Config c;
  if (!config_file.empty() && !load_toml(c, config_file, error)) return std::nullopt;
  if (!load_env(c, error)) return std::nullopt;
  for (const std::string& kv : sets) {
    const size_t eq = kv.find('=');
    const size_t dot = kv.find('.');
    const Key* k = (eq == std::string::npos || dot == std::string::npos || dot > eq)
                       ? nullptr
                       : find_key(std::string_view(kv).substr(0, dot),
                                  std::string_view(kv).substr(dot + 1, eq - dot - 1));
    if (k == nullptr) {
      *error = "--set " + kv + ": expected section.key=value with a known key";
      return std::nullopt;
    }
    if (!set_from_text(c, *k, std::string_view(kv).substr(eq + 1), "--set", error)) return std::nullopt;
  }
  if (listen) c.listener.address = *listen;
  if (!listener_specs.empty()) {
    c.listeners.clear();
    for (const std::string& spec : listener_specs) {
      ListenerConfig l;
      if (!parse_listener_spec(spec, &l, error)) {
        *error = "--listener: " + *error;
        return std::nullopt;
      }
      c.listeners.push_back(std::move(l));
    }
  }
  if (c.listeners.empty()) c.listeners.push_back(c.listener);
  if (dsn) c.dsn = *dsn;
  for (const std::string& spec : cluster_specs) {
    if (!parse_cluster_spec(c.clusters, spec, error)) return std::nullopt;
  }
  if (!tenant_specs.empty()) c.tenant_clusters.clear();
  for (const std::string& spec : tenant_specs) {
    if (!parse_tenant_pairs(c.tenant_clusters, spec, "--tenant-cluster", error)) return std::nullopt;
  }
  if (shards) c.shards = *shards;
  if (log_level) c.log_level = *log_level;
  if (ready_file) c.ready_file = *ready_file;
  if (!validate(c, error)) return std::nullopt;
  if (!validate_clusters(c.dsn, c.clusters, c.tenant_clusters, error)) return std::nullopt;
  if (check_only) {
    *exit_now = true;
    *error = "configuration OK";
    return std::nullopt;
  }
  return c;
}

}  // namespace popgate::ops
