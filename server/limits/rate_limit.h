// RateLimit: a token bucket per key (tenant logins per minute), shared by
// all shards. A bucket holds up to `burst` tokens, refills at `per_minute`
// tokens a minute, and each allowed event takes one. The rate and burst are
// passed on every call (tenant policy may change at any time); the bucket
// keeps what it has, capped at the new burst.
// A full bucket says no more than an absent one, so idle full buckets are
// evicted whenever room is needed; buckets that still remember spending are
// never evicted. Time comes in as `now`; nothing here reads a clock.
// Must not know: tenants, logins, configuration.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "server/limits/keys.h"
#include "server/limits/striped_table.h"

namespace popgate::limits {

enum class RateDecision : uint8_t {
  kAllowed,    // a token was taken
  kLimited,    // the bucket is empty: refuse (or delay) the event
  kTableFull,  // no room for this key's bucket; the caller picks (and counts)
};

// Largest burst honoured; larger ones are cut to it. Keeps the fixed-point
// arithmetic within 63 bits (burst x 6e10 units per token).
inline constexpr uint32_t kRateBurstMax = 100'000'000;

// Counters: hits = calls that found the key's bucket; refusals = kLimited;
// table_full = kTableFull; evictions = idle full buckets dropped for room.
template <typename Key>
class RateLimit {
 public:
  // `capacity`: keys with a bucket at once (for tenants: the tenant count
  // with room to spare).
  explicit RateLimit(size_t capacity, const KeyHasher& hasher = KeyHasher::random());

  // One event for `key` at `now`. per_minute 0 means no limit (kAllowed,
  // nothing stored). burst is at least 1 and at most kRateBurstMax.
  [[nodiscard]] RateDecision allow(const Key& key, TimePoint now, uint32_t per_minute,
                                   uint32_t burst) noexcept;
  // Whole tokens in the key's bucket at `now` (burst when it has none).
  [[nodiscard]] uint32_t tokens(const Key& key, TimePoint now, uint32_t per_minute,
                                uint32_t burst) const noexcept;

  // Buckets held now (a snapshot).
  [[nodiscard]] size_t size() const noexcept { return table_.size(); }
  [[nodiscard]] LimitCounters counters() const noexcept { return table_.counters(); }
  [[nodiscard]] size_t memory_bytes() const noexcept { return table_.memory_bytes(); }
  [[nodiscard]] size_t stripe_entries_max() const noexcept { return table_.stripe_entries_max(); }
  [[nodiscard]] size_t stripe_of_for_test(const Key& key) const noexcept {
    return table_.stripe_of_for_test(key);
  }

 private:
  // Tokens are fixed point: one token is kUnitsPerToken units and refill
  // adds (elapsed ns x per_minute) units, so no division and no drift.
  struct Bucket {
    int64_t units = 0;
    TimePoint last{};
    uint32_t per_minute = 0;
    uint32_t burst = 0;
  };

  static void refill(Bucket* bucket, TimePoint now) noexcept;
  [[nodiscard]] static bool full_at(const Bucket& bucket, TimePoint now) noexcept;

  // mutable: tokens() locks a stripe, which is not a logical change.
  mutable StripedTable<Key, Bucket> table_;
};

extern template class RateLimit<AddressKey>;
extern template class RateLimit<UserKey>;
extern template class RateLimit<TenantKey>;

}  // namespace popgate::limits
