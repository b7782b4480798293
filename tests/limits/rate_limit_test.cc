// RateLimit with a fake clock: burst, refill, policy changes, and eviction
// of idle full buckets only.
#include <gtest/gtest.h>

#include <chrono>

#include "server/limits/rate_limit.h"
#include "tests/limits/limits_test_support.h"

namespace popgate::limits {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::test_hasher;

class RateLimitTest : public ::testing::Test {
 protected:
  RateLimit<TenantKey> rate_{1000, test_hasher()};
  FakeClock clock_;
  const TenantKey tenant_{42};

  int allowed_in_a_row(uint32_t per_minute, uint32_t burst) {
    int n = 0;
    while (rate_.allow(tenant_, clock_.now(), per_minute, burst) == RateDecision::kAllowed) {
      if (++n > 1'000'000) break;
    }
    return n;
  }
};

TEST_F(RateLimitTest, BurstThenLimited) {
  EXPECT_EQ(allowed_in_a_row(60, 10), 10);
  EXPECT_EQ(rate_.allow(tenant_, clock_.now(), 60, 10), RateDecision::kLimited);
  EXPECT_EQ(rate_.counters().refusals, 2u);
}

TEST_F(RateLimitTest, RefillsAtTheRate) {
  EXPECT_EQ(allowed_in_a_row(60, 10), 10);  // 60 a minute: one a second
  clock_.advance(999ms);
  EXPECT_EQ(rate_.allow(tenant_, clock_.now(), 60, 10), RateDecision::kLimited);
  clock_.advance(1ms);
  EXPECT_EQ(rate_.allow(tenant_, clock_.now(), 60, 10), RateDecision::kAllowed);
  EXPECT_EQ(rate_.allow(tenant_, clock_.now(), 60, 10), RateDecision::kLimited);
  clock_.advance(3500ms);
  EXPECT_EQ(rate_.tokens(tenant_, clock_.now(), 60, 10), 3u);
  EXPECT_EQ(allowed_in_a_row(60, 10), 3);
  // The half token left over is kept.
  clock_.advance(500ms);
  EXPECT_EQ(rate_.allow(tenant_, clock_.now(), 60, 10), RateDecision::kAllowed);
}

TEST_F(RateLimitTest, RefillStopsAtBurst) {
  EXPECT_EQ(allowed_in_a_row(60, 5), 5);
  clock_.advance(24h * 365 * 10);  // long enough to overflow a naive product
  EXPECT_EQ(rate_.tokens(tenant_, clock_.now(), 60, 5), 5u);
  EXPECT_EQ(allowed_in_a_row(60, 5), 5);
}

TEST_F(RateLimitTest, SlowRatesAndLargeBursts) {
  EXPECT_EQ(allowed_in_a_row(1, 1), 1);  // one a minute
  clock_.advance(59s);
  EXPECT_EQ(rate_.allow(tenant_, clock_.now(), 1, 1), RateDecision::kLimited);
  clock_.advance(1s);
  EXPECT_EQ(rate_.allow(tenant_, clock_.now(), 1, 1), RateDecision::kAllowed);
  const TenantKey big{7};
  EXPECT_EQ(rate_.allow(big, clock_.now(), 4'000'000'000u, 4'000'000'000u),
            RateDecision::kAllowed);
  EXPECT_EQ(rate_.tokens(big, clock_.now(), 4'000'000'000u, 4'000'000'000u),
            kRateBurstMax - 1);
}

TEST_F(RateLimitTest, ZeroPerMinuteMeansUnlimited) {
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(rate_.allow(tenant_, clock_.now(), 0, 1), RateDecision::kAllowed);
  }
  EXPECT_EQ(rate_.size(), 0u);
}

TEST_F(RateLimitTest, ZeroBurstActsAsOne) {
  EXPECT_EQ(allowed_in_a_row(60, 0), 1);
}

TEST_F(RateLimitTest, PolicyChangesApplyToTheExistingBucket) {
  EXPECT_EQ(allowed_in_a_row(60, 10), 10);
  clock_.advance(5s);  // five tokens back
  // A smaller burst caps what is there; a faster rate refills faster.
  EXPECT_EQ(rate_.tokens(tenant_, clock_.now(), 60, 3), 3u);
  EXPECT_EQ(allowed_in_a_row(600, 3), 3);
  clock_.advance(100ms);
  EXPECT_EQ(rate_.allow(tenant_, clock_.now(), 600, 3), RateDecision::kAllowed);
}

TEST_F(RateLimitTest, TenantsAreIndependent) {
  EXPECT_EQ(allowed_in_a_row(60, 2), 2);
  EXPECT_EQ(rate_.allow(TenantKey{43}, clock_.now(), 60, 2), RateDecision::kAllowed);
  EXPECT_EQ(rate_.allow(TenantKey{43}, clock_.now(), 60, 2), RateDecision::kAllowed);
  EXPECT_EQ(rate_.allow(TenantKey{43}, clock_.now(), 60, 2), RateDecision::kLimited);
}

TEST_F(RateLimitTest, ATimeFromBehindAddsNothing) {
  EXPECT_EQ(allowed_in_a_row(60, 2), 2);
  clock_.advance(1s);
  const TimePoint later = clock_.now();
  EXPECT_EQ(rate_.allow(tenant_, later, 60, 2), RateDecision::kAllowed);
  EXPECT_EQ(rate_.allow(tenant_, later - 500ms, 60, 2), RateDecision::kLimited);
  EXPECT_EQ(rate_.allow(tenant_, later, 60, 2), RateDecision::kLimited);
}

// Full buckets are as good as none: they make room. Buckets that remember
// spending are kept, so a full stripe of them is kTableFull.
TEST(RateLimitEvictionTest, EvictsIdleFullBucketsOnly) {
  RateLimit<TenantKey> rate(64, test_hasher());
  FakeClock clock;
  const size_t limit = rate.stripe_entries_max();
  const std::vector<TenantKey> keys = testing::keys_in_stripe<TenantKey>(
      rate, 9, limit + 2, [](uint32_t i) { return TenantKey{static_cast<int64_t>(i)}; });
  for (size_t i = 0; i < limit; ++i) {
    ASSERT_EQ(rate.allow(keys[i], clock.now(), 60, 5), RateDecision::kAllowed);
  }
  // Every bucket is one token short: nothing may be evicted.
  EXPECT_EQ(rate.allow(keys[limit], clock.now(), 60, 5), RateDecision::kTableFull);
  EXPECT_EQ(rate.counters().table_full, 1u);
  EXPECT_EQ(rate.counters().evictions, 0u);
  // A second later they are full again: the newcomer takes one's place,
  // and the evicted tenant comes back with a full bucket.
  clock.advance(1s);
  EXPECT_EQ(rate.allow(keys[limit], clock.now(), 60, 5), RateDecision::kAllowed);
  EXPECT_EQ(rate.counters().evictions, 1u);
  EXPECT_EQ(rate.size(), limit);
  EXPECT_EQ(rate.allow(keys[limit + 1], clock.now(), 60, 5), RateDecision::kAllowed);
  EXPECT_EQ(rate.counters().evictions, 2u);
  for (size_t i = 0; i <= limit + 1; ++i) EXPECT_GE(rate.tokens(keys[i], clock.now(), 60, 5), 4u);
}

}  // namespace
}  // namespace popgate::limits
