// ClusterRoutes: which PostgreSQL cluster holds a tenant, chosen by the
// tenant's domain. Cluster 0 is the default (database.dsn); tenants that are
// not listed live there. Built once from the configuration and then only
// read, so shards share one without locks.
//
// Tenant and user ids are numbered by each cluster's own sequences, so the
// same tenant_id can exist in two clusters. Whatever the gateway keys by
// tenant outside storage (limits, metrics, LMTP recipients) uses a scoped
// id that carries the cluster in its top bits: scoped_id() and back.
//
// Must not know: configuration files, sessions, libpq.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace popgate::storage {

// Clusters a process may route to, the default one included. Bounds the
// PostgreSQL connections per shard and the `cluster` metric label.
inline constexpr size_t kClustersMax = 16;
// Tenants that may be routed explicitly (the rest use the default cluster).
inline constexpr size_t kRoutedTenantsMax = 1'000'000;

// Ids below 2^48 scope losslessly; the cluster sits above them.
inline constexpr int kClusterIdShift = 48;
inline constexpr int64_t kScopableIdMax = (int64_t{1} << kClusterIdShift) - 1;
[[nodiscard]] constexpr int64_t scoped_id(uint8_t cluster, int64_t id) noexcept {
  return (int64_t{cluster} << kClusterIdShift) | (id & kScopableIdMax);
}
[[nodiscard]] constexpr uint8_t cluster_of_scoped(int64_t scoped) noexcept {
  return static_cast<uint8_t>(scoped >> kClusterIdShift);
}
[[nodiscard]] constexpr int64_t unscoped_id(int64_t scoped) noexcept { return scoped & kScopableIdMax; }

class ClusterRoutes {
 public:
  // `domain` lowercase ASCII, as the schema stores it; cluster < kClustersMax.
  void add(std::string domain, uint8_t cluster);
  // The cluster of a lowercase domain (0 when not listed). No allocation.
  [[nodiscard]] uint8_t cluster_of_domain(std::string_view domain) const noexcept;
  // The cluster of a login name ("local@domain", or "local" completed with
  // default_domain; parsed as PgClient::lookup_user does). Names that are
  // not a possible user go to cluster 0, which answers "no such user".
  [[nodiscard]] uint8_t cluster_of_login(std::string_view login,
                                         std::string_view default_domain) const noexcept;
  [[nodiscard]] size_t size() const noexcept { return by_domain_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, uint8_t, Hash, std::equal_to<>> by_domain_;
};

}  // namespace popgate::storage
