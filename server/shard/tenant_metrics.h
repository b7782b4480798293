// TenantMetrics: the few per-tenant series a shard keeps, for a bounded set
// of tenants. Prometheus must never see a label per user and should not see
// one per tenant on a host with 100,000 tenants: a shard gives a series of
// its own to at most `capacity` tenants (the first it sees, or only those an
// operator listed) and counts every other tenant in one "other" series.
//
// Single writer (the shard thread); the metrics scraper reads the counters
// with relaxed loads and a slot's name with an acquire load. A slot, once
// named, keeps its name and its string for the life of the object.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "server/pop3/counter.h"

namespace popgate::shard {

struct TenantSeries {
  std::atomic<const std::string*> name{nullptr};  // null: unused (or "other")
  pop3::Counter logins_ok;
  pop3::Counter logins_failed;  // wrong password for a known user
  pop3::Counter retr_bytes;     // message octets sent by RETR
  pop3::Counter bytes_sent;     // everything sent on the tenant's sessions
  pop3::Gauge sessions;         // logged-in sessions now
};

class TenantMetrics {
 public:
  // The largest `capacity` accepted; more would defeat the point.
  static constexpr uint32_t kCapacityMax = 10'000;

  // `only`: tenant names that may get a series of their own; empty = any.
  TenantMetrics(uint32_t capacity, std::vector<std::string> only);

  // Shard thread. The slot for this tenant: its own, a new one, or other().
  // Allocates only when a tenant gets a slot of its own (at most capacity
  // times in the life of the shard).
  [[nodiscard]] uint32_t slot_for(int64_t tenant_id, std::string_view name);
  [[nodiscard]] uint32_t other() const noexcept { return capacity_; }
  [[nodiscard]] uint32_t slots() const noexcept { return capacity_ + 1; }  // incl. other
  [[nodiscard]] TenantSeries& at(uint32_t slot) noexcept { return series_[slot]; }
  [[nodiscard]] const TenantSeries& at(uint32_t slot) const noexcept { return series_[slot]; }

 private:
  const uint32_t capacity_;
  uint32_t used_ = 0;
  std::unique_ptr<TenantSeries[]> series_;
  std::deque<std::string> names_;  // stable addresses for TenantSeries::name
  std::unordered_map<int64_t, uint32_t> by_tenant_;
  std::unordered_set<std::string> only_;
};

}  // namespace popgate::shard
