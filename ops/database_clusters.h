// Several PostgreSQL clusters: the named clusters beyond database.dsn and
// the tenant → cluster map, as the configuration gives them
// ([database.clusters.NAME] dsn = "...", [database.tenants] "domain" =
// "NAME", their POPGATE_DATABASE_* variables and flags), their validation
// (every error names the key), and the routing table built from them.
// Tenants not in the map live on the default cluster, database.dsn.
//
// Shared by the gateway (ops/config.cc) and popgate-admin, so that both
// route a tenant to the same cluster.
// Must not know: TOML (config.cc reads the file and hands text here).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/cluster_routes.h"

namespace popgate::ops {

// The name of database.dsn's cluster in the map, logs and metric labels.
inline constexpr std::string_view kDefaultCluster = "default";
// Longest cluster name, in octets ([a-z][a-z0-9_]*).
inline constexpr size_t kClusterNameBytesMax = 32;

struct DatabaseCluster {
  std::string name;
  std::string dsn;
  bool operator==(const DatabaseCluster&) const = default;
};

struct TenantCluster {
  std::string domain;   // lowercased by validate_clusters()
  std::string cluster;  // a DatabaseCluster's name, or "default"
  bool operator==(const TenantCluster&) const = default;
};

// Adds a cluster, or replaces the DSN of one of that name (the environment
// and flags override the file). `origin` prefixes errors ("file.toml",
// "environment POPGATE_...", "--cluster").
[[nodiscard]] bool set_cluster(std::vector<DatabaseCluster>& clusters, std::string_view name,
                               std::string_view dsn, const std::string& origin, std::string* error);
// "NAME=DSN" (the --cluster flag).
[[nodiscard]] bool parse_cluster_spec(std::vector<DatabaseCluster>& clusters, std::string_view spec,
                                      std::string* error);
// POPGATE_DATABASE_CLUSTERS_<NAME>_DSN for every such variable (NAME
// lowercased), in the order of the environment.
[[nodiscard]] bool read_cluster_env(std::vector<DatabaseCluster>& clusters, std::string* error);
// "domain=NAME domain=NAME ..." (POPGATE_DATABASE_TENANTS, and one pair per
// --tenant-cluster flag): appends.
[[nodiscard]] bool parse_tenant_pairs(std::vector<TenantCluster>& tenants, std::string_view text,
                                      const std::string& origin, std::string* error);

// Checks names, DSNs and the map; lowercases and sorts the map's domains.
// Errors name the key: database.clusters.NAME.dsn, database.tenants."x".
[[nodiscard]] bool validate_clusters(std::string_view default_dsn, std::vector<DatabaseCluster>& clusters,
                                     std::vector<TenantCluster>& tenants, std::string* error);

// Index 0 is "default" (default_dsn), then `clusters` in order; the
// routes map each listed domain to its index. Call after validation.
struct ClusterSet {
  std::vector<DatabaseCluster> clusters;  // "default" first
  storage::ClusterRoutes routes;
};
[[nodiscard]] ClusterSet cluster_set(std::string_view default_dsn, const std::vector<DatabaseCluster>& clusters,
                                     const std::vector<TenantCluster>& tenants);

}  // namespace popgate::ops
