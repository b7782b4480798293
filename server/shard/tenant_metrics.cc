#include "server/shard/tenant_metrics.h"

#include <algorithm>

namespace popgate::shard {

TenantMetrics::TenantMetrics(uint32_t capacity, std::vector<std::string> only)
    : capacity_(std::min(capacity, kCapacityMax)),
      series_(std::make_unique<TenantSeries[]>(capacity_ + 1)),
      only_(std::make_move_iterator(only.begin()), std::make_move_iterator(only.end())) {
  by_tenant_.reserve(capacity_);
}

uint32_t TenantMetrics::slot_for(int64_t tenant_id, std::string_view name) {
  if (const auto it = by_tenant_.find(tenant_id); it != by_tenant_.end()) return it->second;
  if (used_ == capacity_) return other();
  if (!only_.empty() && only_.count(std::string(name)) == 0) {
    // Remembered, so an unlisted tenant costs one lookup per login, not a
    // string per login. Bounded by the number of tenants.
    by_tenant_.emplace(tenant_id, other());
    return other();
  }
  const uint32_t slot = used_++;
  names_.emplace_back(name);
  series_[slot].name.store(&names_.back(), std::memory_order_release);
  by_tenant_.emplace(tenant_id, slot);
  return slot;
}

}  // namespace popgate::shard
