// StripedTable: the fixed-capacity, lock-striped hash table under every
// limit table. Shards are threads and share it, so:
//  - 64 stripes, each a mutex over its own open-addressing array (linear
//    probing, backward-shift deletion: no tombstones to pile up). A key's
//    stripe and home slot come from a keyed hash (keys.h), so clients cannot
//    crowd one stripe.
//  - Every operation holds one stripe's lock for one probe sequence, plus at
//    most kEvictScanSlots slots when it must evict: never long.
//  - All memory is allocated by the constructor; the table never grows.
//    Each stripe holds at most stripe_entries_max() entries and keeps its
//    load under 2/3 so probes stay short.
//  - When a stripe is full, an insert may evict the entry its caller scores
//    highest among the kEvictScanSlots slots from the key's home; if the
//    caller scores none, the insert fails and table_full counts it.
// Counters live in the stripes, written under the stripe's lock (no extra
// shared cache line per operation) and read with relaxed loads.
// Must not know: what the values mean (the limit tables decide).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "server/limits/keys.h"

namespace popgate::limits {

// Every limit table takes the time as an argument and never reads a clock,
// so tests drive it with a fake one.
using TimePoint = std::chrono::steady_clock::time_point;

// Summed over stripes at read time. What each means is per table; see its
// header.
struct LimitCounters {
  uint64_t hits = 0;        // operations that found the key's live entry
  uint64_t refusals = 0;    // operations the limit said no to
  uint64_t table_full = 0;  // inserts that found no room and nothing to evict
  uint64_t evictions = 0;   // entries dropped to make room
  uint64_t unbalanced = 0;  // ConcurrencyLimit: release() of a key not held (a bug)
};

// A counter written only under its stripe's lock: load+store is enough.
class StripeCounter {
 public:
  void add() noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct StripeCounters {
  StripeCounter hits;
  StripeCounter refusals;
  StripeCounter table_full;
  StripeCounter evictions;
  StripeCounter unbalanced;
};

template <typename Key, typename Value>
class StripedTable {
 public:
  static constexpr size_t kStripes = 64;
  static constexpr unsigned kStripeShift = 64 - 6;  // top 6 hash bits pick the stripe
  // Slots looked at for a victim when a stripe is full.
  static constexpr size_t kEvictScanSlots = 32;

  // Room for at least `capacity` keys, however they hash except with
  // negligible probability: each stripe takes its share plus six standard
  // deviations plus 16. Throws std::invalid_argument for capacity 0 or one
  // so large that slot indexes would not fit in 32 bits.
  StripedTable(size_t capacity, const KeyHasher& hasher) : hasher_(hasher) {
    if (capacity == 0) throw std::invalid_argument("limit table capacity must be at least 1");
    const size_t share = (capacity + kStripes - 1) / kStripes;
    const auto deviation = static_cast<size_t>(std::ceil(std::sqrt(static_cast<double>(share))));
    entries_max_ = share + 6 * deviation + 16;
    slots_per_stripe_ = entries_max_ + entries_max_ / 2;
    if (slots_per_stripe_ > UINT32_MAX) throw std::invalid_argument("limit table capacity too large");
    slots_ = std::make_unique<Slot[]>(kStripes * slots_per_stripe_);
    stripes_ = std::make_unique<Stripe[]>(kStripes);
  }

  StripedTable(const StripedTable&) = delete;
  StripedTable& operator=(const StripedTable&) = delete;

  // A key's stripe, locked: valid only inside with_key's callback.
  class Locked {
   public:
    // The key's value, or nullptr.
    [[nodiscard]] Value* find() noexcept {
      bool found = false;
      const size_t at = probe(&found);
      return found ? &base_[at].value : nullptr;
    }

    // The key's value; a value-initialized one (and *inserted = true) when
    // the key was absent. When the stripe is full, first evicts the slot
    // among kEvictScanSlots from the key's home with the highest nonzero
    // evict_score(const Value&); nullptr (counted as table_full) when every
    // score there is 0.
    template <typename Score>
    [[nodiscard]] Value* find_or_insert(Score&& evict_score, bool* inserted) noexcept {
      *inserted = false;
      bool found = false;
      size_t at = probe(&found);
      if (found) return &base_[at].value;
      if (stripe_.live.load(std::memory_order_relaxed) >= table_.entries_max_) {
        if (!evict_one(evict_score)) {
          stripe_.counters.table_full.add();
          return nullptr;
        }
        at = probe(&found);  // the shift may have moved the hole
      }
      base_[at] = Slot{key_, Value{}, home_, true};
      bump_live(+1);
      *inserted = true;
      return &base_[at].value;
    }

    // Removes the key if present.
    void erase() noexcept {
      bool found = false;
      const size_t at = probe(&found);
      if (found) erase_at(at);
    }

    [[nodiscard]] StripeCounters& counters() noexcept { return stripe_.counters; }

   private:
    friend class StripedTable;
    Locked(StripedTable& table, size_t stripe, uint64_t hash, const Key& key) noexcept
        : table_(table),
          stripe_(table.stripes_[stripe]),
          base_(&table.slots_[stripe * table.slots_per_stripe_]),
          key_(key),
          home_(static_cast<uint32_t>((hash & 0xFFFFFFFFu) % table.slots_per_stripe_)) {}

    size_t next(size_t at) const noexcept {
      return at + 1 == table_.slots_per_stripe_ ? 0 : at + 1;
    }

    // Written under the stripe's lock, read by size() without it.
    void bump_live(int delta) noexcept {
      const size_t live = stripe_.live.load(std::memory_order_relaxed);
      stripe_.live.store(delta > 0 ? live + 1 : live - 1, std::memory_order_relaxed);
    }

    // The key's slot (*found) or the empty slot that ends its probe
    // sequence. The load limit guarantees an empty slot exists.
    size_t probe(bool* found) const noexcept {
      size_t at = home_;
      for (size_t n = 0; n < table_.slots_per_stripe_; ++n, at = next(at)) {
        if (!base_[at].used) break;
        if (base_[at].key == key_) {
          *found = true;
          return at;
        }
      }
      *found = false;
      return at;
    }

    template <typename Score>
    bool evict_one(Score& evict_score) noexcept {
      const size_t window = std::min(kEvictScanSlots, table_.slots_per_stripe_);
      size_t victim = 0;
      uint64_t best = 0;
      size_t at = home_;
      for (size_t n = 0; n < window; ++n, at = next(at)) {
        if (!base_[at].used) continue;
        const uint64_t score = evict_score(static_cast<const Value&>(base_[at].value));
        if (score > best) {
          best = score;
          victim = at;
        }
      }
      if (best == 0) return false;
      erase_at(victim);
      stripe_.counters.evictions.add();
      return true;
    }

    // Backward-shift deletion: pull later members of the cluster into the
    // hole unless that would put them before their home slot.
    void erase_at(size_t hole) noexcept {
      for (size_t at = next(hole);; at = next(at)) {
        if (!base_[at].used) break;
        const size_t home = base_[at].home;
        const bool stays = hole <= at ? (hole < home && home <= at) : (hole < home || home <= at);
        if (stays) continue;
        base_[hole] = base_[at];
        hole = at;
      }
      base_[hole].used = false;
      bump_live(-1);
    }

    StripedTable& table_;
    typename StripedTable::Stripe& stripe_;
    typename StripedTable::Slot* base_;
    const Key& key_;
    uint32_t home_;
  };

  // Runs fn(Locked&) with the key's stripe locked and returns what it
  // returns. fn must be short and must not call into this table again.
  // A mutex that fails to lock (std::system_error) is fatal here: noexcept.
  template <typename Fn>
  decltype(auto) with_key(const Key& key, Fn&& fn) noexcept {
    const uint64_t hash = hasher_(key);
    const size_t stripe = static_cast<size_t>(hash >> kStripeShift);
    std::lock_guard<std::mutex> lock(stripes_[stripe].mutex);
    Locked locked(*this, stripe, hash, key);
    return fn(locked);
  }

  // Entries held now, summed without locks (a moment's snapshot).
  [[nodiscard]] size_t size() const noexcept {
    size_t total = 0;
    for (size_t i = 0; i < kStripes; ++i) {
      total += stripes_[i].live.load(std::memory_order_relaxed);
    }
    return total;
  }

  [[nodiscard]] LimitCounters counters() const noexcept {
    LimitCounters sum;
    for (size_t i = 0; i < kStripes; ++i) {
      const StripeCounters& c = stripes_[i].counters;
      sum.hits += c.hits.value();
      sum.refusals += c.refusals.value();
      sum.table_full += c.table_full.value();
      sum.evictions += c.evictions.value();
      sum.unbalanced += c.unbalanced.value();
    }
    return sum;
  }

  // Most entries one stripe holds; kStripes times this bounds the table.
  [[nodiscard]] size_t stripe_entries_max() const noexcept { return entries_max_; }
  // Bytes allocated by the constructor.
  [[nodiscard]] size_t memory_bytes() const noexcept {
    return kStripes * (slots_per_stripe_ * sizeof(Slot) + sizeof(Stripe));
  }
  // Which stripe a key lands in, for tests that fill one stripe.
  [[nodiscard]] size_t stripe_of_for_test(const Key& key) const noexcept {
    return static_cast<size_t>(hasher_(key) >> kStripeShift);
  }

 private:
  struct Slot {
    Key key{};
    Value value{};
    uint32_t home = 0;  // slot index the key hashes to, for deletion
    bool used = false;
  };

  // Own cache lines: shards hammering neighbouring stripes do not collide.
  struct alignas(64) Stripe {
    std::mutex mutex;
    std::atomic<size_t> live{0};  // written under mutex, read anywhere
    StripeCounters counters;
  };

  KeyHasher hasher_;
  size_t entries_max_ = 0;
  size_t slots_per_stripe_ = 0;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<Stripe[]> stripes_;
};

}  // namespace popgate::limits
