#include "server/limits/concurrency_limit.h"

namespace popgate::limits {

template <typename Key>
ConcurrencyLimit<Key>::ConcurrencyLimit(size_t capacity, const KeyHasher& hasher)
    : table_(capacity, hasher) {}

template <typename Key>
Acquire ConcurrencyLimit<Key>::try_acquire(const Key& key, uint32_t max) noexcept {
  // Live counts are never a victim.
  const auto never_evict = [](const Entry&) noexcept -> uint64_t { return 0; };
  return table_.with_key(key, [&](auto& locked) noexcept {
    if (max == 0) {
      locked.counters().refusals.add();
      return Acquire::kAtLimit;
    }
    bool inserted = false;
    Entry* entry = locked.find_or_insert(never_evict, &inserted);
    if (entry == nullptr) return Acquire::kTableFull;
    if (!inserted) {
      locked.counters().hits.add();
      if (entry->sessions >= max) {
        locked.counters().refusals.add();
        return Acquire::kAtLimit;
      }
    }
    ++entry->sessions;
    return Acquire::kAcquired;
  });
}

template <typename Key>
bool ConcurrencyLimit<Key>::release(const Key& key) noexcept {
  return table_.with_key(key, [](auto& locked) noexcept {
    Entry* entry = locked.find();
    if (entry == nullptr) {
      locked.counters().unbalanced.add();
      return false;
    }
    if (--entry->sessions == 0) locked.erase();
    return true;
  });
}

template <typename Key>
uint32_t ConcurrencyLimit<Key>::count(const Key& key) const noexcept {
  return table_.with_key(key, [](auto& locked) noexcept {
    const Entry* entry = locked.find();
    return entry != nullptr ? entry->sessions : 0u;
  });
}

template class ConcurrencyLimit<AddressKey>;
template class ConcurrencyLimit<UserKey>;
template class ConcurrencyLimit<TenantKey>;

}  // namespace popgate::limits
