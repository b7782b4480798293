#include "storage/cluster_routes.h"

#include "storage/login_name.h"

namespace popgate::storage {

void ClusterRoutes::add(std::string domain, uint8_t cluster) { by_domain_[std::move(domain)] = cluster; }

uint8_t ClusterRoutes::cluster_of_domain(std::string_view domain) const noexcept {
  if (by_domain_.empty()) return 0;
  const auto it = by_domain_.find(domain);
  return it == by_domain_.end() ? 0 : it->second;
}

uint8_t ClusterRoutes::cluster_of_login(std::string_view login, std::string_view default_domain) const noexcept {
  if (by_domain_.empty()) return 0;
  LoginName name;
  if (!parse_login(login, default_domain, name)) return 0;
  return cluster_of_domain(name.domain());
}

}  // namespace popgate::storage
