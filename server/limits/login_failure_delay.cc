#include "server/limits/login_failure_delay.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace popgate::limits {

template <typename Key>
LoginFailureDelay<Key>::LoginFailureDelay(const LoginFailureDelayOptions& options,
                                          const KeyHasher& hasher)
    : options_(options), table_(options.capacity, hasher) {
  if (options.delay_initial.count() <= 0 || options.forget_after.count() <= 0) {
    throw std::invalid_argument("login failure delay and forget time must be positive");
  }
  if (options.delay_max < options.delay_initial) {
    throw std::invalid_argument("login failure delay_max must be at least delay_initial");
  }
}

template <typename Key>
bool LoginFailureDelay<Key>::remembered(const Entry& entry, TimePoint now) const noexcept {
  // A `now` older than the entry (another shard read the clock later and
  // got the lock first) is "just now", not "long ago".
  return entry.failures > 0 && now - entry.last_failure < options_.forget_after;
}

template <typename Key>
std::chrono::milliseconds LoginFailureDelay<Key>::delay_for(uint32_t failures) const noexcept {
  if (failures == 0) return std::chrono::milliseconds{0};
  std::chrono::milliseconds delay = options_.delay_initial;
  // Doubling stops at the ceiling, so this loops a few times at most.
  for (uint32_t i = 1; i < failures && delay < options_.delay_max; ++i) delay *= 2;
  return std::min(delay, options_.delay_max);
}

template <typename Key>
LoginFailureState LoginFailureDelay<Key>::record_failure(const Key& key, TimePoint now) noexcept {
  // Forgotten clients go first; failing that, the one idle longest.
  const auto evict_score = [this, now](const Entry& other) noexcept -> uint64_t {
    if (!remembered(other, now)) return std::numeric_limits<uint64_t>::max();
    const auto idle =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - other.last_failure);
    return static_cast<uint64_t>(std::max<int64_t>(idle.count(), 0)) + 1;
  };
  return table_.with_key(key, [&](auto& locked) noexcept {
    bool inserted = false;
    Entry* entry = locked.find_or_insert(evict_score, &inserted);
    if (entry == nullptr) return LoginFailureState{delay_for(1), 1};
    if (!inserted && remembered(*entry, now)) {
      locked.counters().hits.add();
      if (entry->failures < std::numeric_limits<uint32_t>::max()) ++entry->failures;
      entry->last_failure = std::max(entry->last_failure, now);
    } else {
      entry->failures = 1;
      entry->last_failure = now;
    }
    locked.counters().refusals.add();
    return LoginFailureState{delay_for(entry->failures), entry->failures};
  });
}

template <typename Key>
void LoginFailureDelay<Key>::record_success(const Key& key) noexcept {
  table_.with_key(key, [](auto& locked) noexcept {
    if (locked.find() != nullptr) locked.counters().hits.add();
    locked.erase();
  });
}

template <typename Key>
LoginFailureState LoginFailureDelay<Key>::peek(const Key& key, TimePoint now) const noexcept {
  return table_.with_key(key, [&](auto& locked) noexcept {
    const Entry* entry = locked.find();
    if (entry == nullptr || !remembered(*entry, now)) return LoginFailureState{};
    locked.counters().hits.add();
    return LoginFailureState{delay_for(entry->failures), entry->failures};
  });
}

template class LoginFailureDelay<AddressKey>;
template class LoginFailureDelay<UserKey>;

}  // namespace popgate::limits
