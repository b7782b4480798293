#include "ops/database_clusters.h"

#include <algorithm>
#include <cctype>

extern char** environ;

namespace popgate::ops {
namespace {

constexpr std::string_view kClusterEnvPrefix = "POPGATE_DATABASE_CLUSTERS_";
constexpr std::string_view kClusterEnvSuffix = "_DSN";
// RFC 1035: a name of at most 253 octets, labels of at most 63.
constexpr size_t kDomainBytesMax = 253;
constexpr size_t kDomainLabelBytesMax = 63;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool valid_cluster_name(std::string_view name) {
  if (name.empty() || name.size() > kClusterNameBytesMax) return false;
  if (name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

// Lowercase host-name syntax: dot-separated labels of letters, digits, '-'
// and '_' (no leading or trailing dot, no empty label).
bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > kDomainBytesMax) return false;
  size_t label = 0;
  for (const char c : d) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > kDomainLabelBytesMax) return false;
  }
  return label != 0;
}

}  // namespace

bool set_cluster(std::vector<DatabaseCluster>& clusters, std::string_view name, std::string_view dsn,
                 const std::string& origin, std::string* error) {
  if (!valid_cluster_name(name) || name == kDefaultCluster) {
    *error = origin + ": database.clusters." + std::string(name) +
             ": a cluster name is 1 to 32 of a-z, 0-9 and _, starting with a letter, and not "
             "'default' (that is database.dsn)";
    return false;
  }
  for (DatabaseCluster& c : clusters) {
    if (c.name == name) {
      c.dsn = std::string(dsn);
      return true;
    }
  }
  clusters.push_back({std::string(name), std::string(dsn)});
  return true;
}

bool parse_cluster_spec(std::vector<DatabaseCluster>& clusters, std::string_view spec, std::string* error) {
  const size_t eq = spec.find('=');
  if (eq == std::string_view::npos) {
    *error = "--cluster " + std::string(spec) + ": expected NAME=DSN";
    return false;
  }
  return set_cluster(clusters, spec.substr(0, eq), spec.substr(eq + 1), "--cluster", error);
}

bool read_cluster_env(std::vector<DatabaseCluster>& clusters, std::string* error) {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = entry.substr(0, eq);
    if (!name.starts_with(kClusterEnvPrefix) || !name.ends_with(kClusterEnvSuffix) ||
        name.size() <= kClusterEnvPrefix.size() + kClusterEnvSuffix.size()) {
      continue;
    }
    const std::string cluster = lower(name.substr(
        kClusterEnvPrefix.size(), name.size() - kClusterEnvPrefix.size() - kClusterEnvSuffix.size()));
    if (!set_cluster(clusters, cluster, entry.substr(eq + 1), "environment " + std::string(name), error)) {
      return false;
    }
  }
  return true;
}

bool parse_tenant_pairs(std::vector<TenantCluster>& tenants, std::string_view text, const std::string& origin,
                        std::string* error) {
  while (!text.empty()) {
    const size_t space = text.find_first_of(" \t\n,");
    const std::string_view pair = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == pair.size()) {
      *error = origin + ": database.tenants: '" + std::string(pair) + "' is not domain=cluster";
      return false;
    }
    tenants.push_back({std::string(pair.substr(0, eq)), std::string(pair.substr(eq + 1))});
  }
  return true;
}

bool validate_clusters(std::string_view default_dsn, std::vector<DatabaseCluster>& clusters,
                       std::vector<TenantCluster>& tenants, std::string* error) {
  if (clusters.size() + 1 > storage::kClustersMax) {
    *error = "database.clusters: " + std::to_string(clusters.size()) + " clusters besides the default; at most " +
             std::to_string(storage::kClustersMax - 1);
    return false;
  }
  for (size_t i = 0; i < clusters.size(); ++i) {
    const DatabaseCluster& c = clusters[i];
    const std::string key = "database.clusters." + c.name + ".dsn";
    if (c.dsn.empty()) {
      *error = key + " is required (a libpq connection string or URI)";
      return false;
    }
    if (c.dsn == default_dsn) {
      *error = key + " is database.dsn's: a cluster is listed once (map its tenants to \"default\")";
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (clusters[j].dsn == c.dsn) {
        *error = key + " is also database.clusters." + clusters[j].name + ".dsn: a cluster is listed once";
        return false;
      }
    }
  }
  if (tenants.size() > storage::kRoutedTenantsMax) {
    *error = "database.tenants: " + std::to_string(tenants.size()) + " tenants; at most " +
             std::to_string(storage::kRoutedTenantsMax) + " (the rest go to the default cluster)";
    return false;
  }
  for (TenantCluster& t : tenants) {
    const std::string key = "database.tenants." + quoted(t.domain);
    const std::string domain = lower(t.domain);
    if (!valid_domain(domain)) {
      *error = key + ": not a domain name (letters, digits, '-' and '_' in dot-separated labels)";
      return false;
    }
    const bool known = t.cluster == kDefaultCluster ||
                       std::any_of(clusters.begin(), clusters.end(),
                                   [&t](const DatabaseCluster& c) { return c.name == t.cluster; });
    if (!known) {
      std::string names(kDefaultCluster);
      for (const DatabaseCluster& c : clusters) names += " " + c.name;
      *error = key + " = " + quoted(t.cluster) + ": no cluster of that name (known: " + names + ")";
      return false;
    }
    t.domain = domain;
  }
  std::stable_sort(tenants.begin(), tenants.end(),
                   [](const TenantCluster& a, const TenantCluster& b) { return a.domain < b.domain; });
  for (size_t i = 1; i < tenants.size(); ++i) {
    if (tenants[i].domain == tenants[i - 1].domain) {
      *error = "database.tenants." + quoted(tenants[i].domain) + " is listed twice (domains ignore case)";
      return false;
    }
  }
  return true;
}

ClusterSet cluster_set(std::string_view default_dsn, const std::vector<DatabaseCluster>& clusters,
                       const std::vector<TenantCluster>& tenants) {
  ClusterSet out;
  out.clusters.push_back({std::string(kDefaultCluster), std::string(default_dsn)});
  for (const DatabaseCluster& c : clusters) out.clusters.push_back(c);
  for (const TenantCluster& t : tenants) {
    for (size_t i = 0; i < out.clusters.size(); ++i) {
      if (out.clusters[i].name == t.cluster) {
        if (i != 0) out.routes.add(t.domain, static_cast<uint8_t>(i));
        break;
      }
    }
  }
  return out;
}

}  // namespace popgate::ops
