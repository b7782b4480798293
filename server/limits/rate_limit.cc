#include "server/limits/rate_limit.h"

#include <algorithm>

namespace popgate::limits {
namespace {

// Units per token: nanoseconds per minute, so a refill at `per_minute`
// tokens a minute adds exactly elapsed_ns x per_minute units.
constexpr int64_t kUnitsPerToken = 60'000'000'000;

int64_t capacity_units(uint32_t burst) noexcept { return int64_t{burst} * kUnitsPerToken; }

}  // namespace

template <typename Key>
RateLimit<Key>::RateLimit(size_t capacity, const KeyHasher& hasher) : table_(capacity, hasher) {}

template <typename Key>
void RateLimit<Key>::refill(Bucket* bucket, TimePoint now) noexcept {
  // A `now` from behind (another shard read the clock later and got the
  // lock first) adds nothing and does not move `last` back.
  if (now <= bucket->last) return;
  const int64_t elapsed_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - bucket->last).count();
  bucket->last = now;
  const int64_t cap = capacity_units(bucket->burst);
  const int64_t missing = cap - bucket->units;
  if (missing <= 0 || bucket->per_minute == 0) {
    bucket->units = std::min(bucket->units, cap);
    return;
  }
  // Compare with the time to fill before multiplying: elapsed_ns may be
  // years, and years x per_minute would overflow.
  const int64_t fill_ns = (missing + bucket->per_minute - 1) / bucket->per_minute;
  bucket->units = elapsed_ns >= fill_ns ? cap : bucket->units + elapsed_ns * bucket->per_minute;
}

template <typename Key>
bool RateLimit<Key>::full_at(const Bucket& bucket, TimePoint now) noexcept {
  Bucket later = bucket;
  refill(&later, now);
  return later.units >= capacity_units(later.burst);
}

template <typename Key>
RateDecision RateLimit<Key>::allow(const Key& key, TimePoint now, uint32_t per_minute,
                                   uint32_t burst) noexcept {
  if (per_minute == 0) return RateDecision::kAllowed;
  burst = std::clamp<uint32_t>(burst, 1, kRateBurstMax);
  const auto evict_score = [now](const Bucket& other) noexcept -> uint64_t {
    if (!full_at(other, now)) return 0;
    const auto idle = std::chrono::duration_cast<std::chrono::nanoseconds>(now - other.last);
    return static_cast<uint64_t>(std::max<int64_t>(idle.count(), 0)) + 1;
  };
  return table_.with_key(key, [&](auto& locked) noexcept {
    bool inserted = false;
    Bucket* bucket = locked.find_or_insert(evict_score, &inserted);
    if (bucket == nullptr) return RateDecision::kTableFull;
    if (inserted) {
      bucket->units = capacity_units(burst);
      bucket->last = now;
    } else {
      locked.counters().hits.add();
      refill(bucket, now);
    }
    bucket->per_minute = per_minute;
    bucket->burst = burst;
    bucket->units = std::min(bucket->units, capacity_units(burst));
    if (bucket->units >= kUnitsPerToken) {
      bucket->units -= kUnitsPerToken;
      return RateDecision::kAllowed;
    }
    locked.counters().refusals.add();
    return RateDecision::kLimited;
  });
}

template <typename Key>
uint32_t RateLimit<Key>::tokens(const Key& key, TimePoint now, uint32_t per_minute,
                                uint32_t burst) const noexcept {
  burst = std::clamp<uint32_t>(burst, 1, kRateBurstMax);
  if (per_minute == 0) return burst;
  return table_.with_key(key, [&](auto& locked) noexcept {
    const Bucket* found = locked.find();
    if (found == nullptr) return burst;
    Bucket bucket = *found;
    refill(&bucket, now);
    return static_cast<uint32_t>(std::min(bucket.units, capacity_units(burst)) / kUnitsPerToken);
  });
}

template class RateLimit<AddressKey>;
template class RateLimit<UserKey>;
template class RateLimit<TenantKey>;

}  // namespace popgate::limits
