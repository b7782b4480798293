// ConcurrencyLimit: live sessions per key (per client address, per user),
// shared by all shards, since one client's connections land on any shard.
// try_acquire at accept or login, release exactly once when that session
// ends; a key's entry exists only while its count is above zero. Live
// counts are never evicted: when there is no room, try_acquire says
// kTableFull, which the caller counts and treats as a refusal.
// Must not know: sockets, sessions, what the key stands for.
#pragma once

#include <cstddef>
#include <cstdint>

#include "server/limits/keys.h"
#include "server/limits/striped_table.h"

namespace popgate::limits {

enum class Acquire : uint8_t {
  kAcquired,   // counted: call release() once when the session ends
  kAtLimit,    // the key already holds `max` sessions
  kTableFull,  // no room for another key; nothing was counted
};

// Counters: hits = calls for a key that already held sessions;
// refusals = kAtLimit; table_full = kTableFull; evictions stay 0;
// unbalanced = release() of a key holding nothing (a caller bug).
template <typename Key>
class ConcurrencyLimit {
 public:
  // `capacity`: distinct keys held at once; size it to the most sessions
  // the process admits (every session may be a different key).
  explicit ConcurrencyLimit(size_t capacity, const KeyHasher& hasher = KeyHasher::random());

  // Counts one more session for `key` unless it holds `max` already
  // (max 0 refuses everything).
  [[nodiscard]] Acquire try_acquire(const Key& key, uint32_t max) noexcept;
  // Ends one session of `key`. False (and `unbalanced` counted) when the key
  // held none: a caller bug, survived without changing any count.
  bool release(const Key& key) noexcept;
  // Sessions the key holds now.
  [[nodiscard]] uint32_t count(const Key& key) const noexcept;

  // Keys holding sessions now (a snapshot).
  [[nodiscard]] size_t size() const noexcept { return table_.size(); }
  [[nodiscard]] LimitCounters counters() const noexcept { return table_.counters(); }
  [[nodiscard]] size_t memory_bytes() const noexcept { return table_.memory_bytes(); }
  [[nodiscard]] size_t stripe_entries_max() const noexcept { return table_.stripe_entries_max(); }
  [[nodiscard]] size_t stripe_of_for_test(const Key& key) const noexcept {
    return table_.stripe_of_for_test(key);
  }

 private:
  struct Entry {
    uint32_t sessions = 0;
  };
  // mutable: count() locks a stripe, which is not a logical change.
  mutable StripedTable<Key, Entry> table_;
};

extern template class ConcurrencyLimit<AddressKey>;
extern template class ConcurrencyLimit<UserKey>;
extern template class ConcurrencyLimit<TenantKey>;

}  // namespace popgate::limits
