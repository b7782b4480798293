// ConcurrencyLimit: per-key counts, independence, entries gone at zero,
// and a full table refusing new keys without touching live counts.
#include <gtest/gtest.h>

#include "server/limits/concurrency_limit.h"
#include "tests/limits/limits_test_support.h"

namespace popgate::limits {
namespace {

using testing::address;
using testing::test_hasher;

TEST(ConcurrencyLimitTest, AcquireUpToMaxThenRelease) {
  ConcurrencyLimit<AddressKey> sessions(1000, test_hasher());
  const AddressKey alice = address(1);
  EXPECT_EQ(sessions.try_acquire(alice, 3), Acquire::kAcquired);
  EXPECT_EQ(sessions.try_acquire(alice, 3), Acquire::kAcquired);
  EXPECT_EQ(sessions.try_acquire(alice, 3), Acquire::kAcquired);
  EXPECT_EQ(sessions.try_acquire(alice, 3), Acquire::kAtLimit);
  EXPECT_EQ(sessions.count(alice), 3u);
  EXPECT_TRUE(sessions.release(alice));
  EXPECT_EQ(sessions.try_acquire(alice, 3), Acquire::kAcquired);
  // A lower max applies at once to new sessions, never to held ones.
  EXPECT_EQ(sessions.try_acquire(alice, 2), Acquire::kAtLimit);
  EXPECT_EQ(sessions.count(alice), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(sessions.release(alice));
  EXPECT_EQ(sessions.count(alice), 0u);
  EXPECT_EQ(sessions.size(), 0u);
}

TEST(ConcurrencyLimitTest, KeysAreIndependent) {
  ConcurrencyLimit<UserKey> sessions(1000, test_hasher());
  const UserKey a{1, 10};
  const UserKey b{1, 11};
  const UserKey c{2, 10};
  EXPECT_EQ(sessions.try_acquire(a, 1), Acquire::kAcquired);
  EXPECT_EQ(sessions.try_acquire(a, 1), Acquire::kAtLimit);
  EXPECT_EQ(sessions.try_acquire(b, 1), Acquire::kAcquired);
  EXPECT_EQ(sessions.try_acquire(c, 1), Acquire::kAcquired);
  EXPECT_EQ(sessions.size(), 3u);
  EXPECT_TRUE(sessions.release(b));
  EXPECT_EQ(sessions.count(a), 1u);
  EXPECT_EQ(sessions.count(b), 0u);
  EXPECT_EQ(sessions.count(c), 1u);
  EXPECT_EQ(sessions.size(), 2u);
}

TEST(ConcurrencyLimitTest, MaxZeroRefusesAndStoresNothing) {
  ConcurrencyLimit<TenantKey> sessions(10, test_hasher());
  EXPECT_EQ(sessions.try_acquire(TenantKey{5}, 0), Acquire::kAtLimit);
  EXPECT_EQ(sessions.size(), 0u);
  EXPECT_EQ(sessions.counters().refusals, 1u);
}

TEST(ConcurrencyLimitTest, UnbalancedReleaseIsCountedAndHarmless) {
  ConcurrencyLimit<AddressKey> sessions(10, test_hasher());
  EXPECT_FALSE(sessions.release(address(9)));
  EXPECT_EQ(sessions.counters().unbalanced, 1u);
  EXPECT_EQ(sessions.try_acquire(address(9), 1), Acquire::kAcquired);
  EXPECT_TRUE(sessions.release(address(9)));
  EXPECT_FALSE(sessions.release(address(9)));
  EXPECT_EQ(sessions.counters().unbalanced, 2u);
  EXPECT_EQ(sessions.size(), 0u);
}

TEST(ConcurrencyLimitTest, Counters) {
  ConcurrencyLimit<AddressKey> sessions(10, test_hasher());
  (void)sessions.try_acquire(address(1), 2);
  (void)sessions.try_acquire(address(1), 2);
  (void)sessions.try_acquire(address(1), 2);
  const LimitCounters counters = sessions.counters();
  EXPECT_EQ(counters.hits, 2u);
  EXPECT_EQ(counters.refusals, 1u);
  EXPECT_EQ(counters.table_full, 0u);
  EXPECT_EQ(counters.evictions, 0u);
}

TEST(ConcurrencyLimitTest, HoldsItsCapacityInDistinctKeys) {
  constexpr uint32_t kCapacity = 20'000;
  ConcurrencyLimit<AddressKey> sessions(kCapacity, test_hasher());
  for (uint32_t i = 0; i < kCapacity; ++i) {
    ASSERT_EQ(sessions.try_acquire(address(i), 1), Acquire::kAcquired) << i;
  }
  EXPECT_EQ(sessions.size(), kCapacity);
  for (uint32_t i = 0; i < kCapacity; ++i) ASSERT_TRUE(sessions.release(address(i)));
  EXPECT_EQ(sessions.size(), 0u);
}

// A full stripe refuses a new key as kTableFull, keeps every live count,
// and takes the new key once a slot frees up.
TEST(ConcurrencyLimitTest, FullTableRefusesNewKeysAndKeepsLiveCounts) {
  ConcurrencyLimit<AddressKey> sessions(64, test_hasher());
  const size_t limit = sessions.stripe_entries_max();
  const std::vector<AddressKey> keys =
      testing::keys_in_stripe<AddressKey>(sessions, 7, limit + 1, address);
  for (size_t i = 0; i < limit; ++i) {
    ASSERT_EQ(sessions.try_acquire(keys[i], 5), Acquire::kAcquired);
  }
  const AddressKey newcomer = keys[limit];
  EXPECT_EQ(sessions.try_acquire(newcomer, 5), Acquire::kTableFull);
  EXPECT_EQ(sessions.count(newcomer), 0u);
  EXPECT_EQ(sessions.counters().table_full, 1u);
  // Keys already in still get their further sessions.
  EXPECT_EQ(sessions.try_acquire(keys[0], 5), Acquire::kAcquired);
  for (size_t i = 1; i < limit; ++i) EXPECT_EQ(sessions.count(keys[i]), 1u);
  EXPECT_EQ(sessions.counters().evictions, 0u);
  // Other stripes are unaffected.
  const AddressKey elsewhere = testing::keys_in_stripe<AddressKey>(
      sessions, 8, 1, [](uint32_t i) { return address(100'000 + i); })[0];
  EXPECT_EQ(sessions.try_acquire(elsewhere, 1), Acquire::kAcquired);
  EXPECT_TRUE(sessions.release(keys[3]));
  EXPECT_EQ(sessions.try_acquire(newcomer, 5), Acquire::kAcquired);
}

TEST(ConcurrencyLimitTest, SizingIsStatedUpFront) {
  ConcurrencyLimit<AddressKey> sessions(65'536, test_hasher());
  EXPECT_GE(sessions.stripe_entries_max() * 64, 65'536u);
  // 1.5 slots an entry plus per-stripe headroom: a few MiB, not tens.
  EXPECT_LT(sessions.memory_bytes(), 16u << 20);
}

}  // namespace
}  // namespace popgate::limits
