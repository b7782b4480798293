// LoginFailureDelay with a fake clock: growth, ceiling, reset on success and
// after the forget time, independence of clients, eviction when full.
#include <gtest/gtest.h>

#include <chrono>

#include "server/limits/login_failure_delay.h"
#include "tests/limits/limits_test_support.h"

namespace popgate::limits {
namespace {

using namespace std::chrono_literals;
using testing::address;
using testing::FakeClock;
using testing::test_hasher;

class LoginFailureDelayTest : public ::testing::Test {
 protected:
  LoginFailureDelay<AddressKey> delays_{LoginFailureDelayOptions{}, test_hasher()};
  FakeClock clock_;
  const AddressKey alice_ = address(1);
  const AddressKey bob_ = address(2);
};

TEST_F(LoginFailureDelayTest, DelaysGrowAndStopAtTheCeiling) {
  const std::chrono::milliseconds expected[] = {2s, 4s, 8s, 15s, 15s, 15s};
  uint32_t failures = 0;
  for (const auto delay : expected) {
    const LoginFailureState state = delays_.record_failure(alice_, clock_.now());
    EXPECT_EQ(state.delay, delay);
    EXPECT_EQ(state.failures, ++failures);
    EXPECT_EQ(delays_.peek(alice_, clock_.now()).delay, delay);
    clock_.advance(state.delay);
  }
}

TEST_F(LoginFailureDelayTest, SuccessResets) {
  (void)delays_.record_failure(alice_, clock_.now());
  (void)delays_.record_failure(alice_, clock_.now());
  delays_.record_success(alice_);
  EXPECT_EQ(delays_.peek(alice_, clock_.now()).failures, 0u);
  EXPECT_EQ(delays_.peek(alice_, clock_.now()).delay, 0ms);
  EXPECT_EQ(delays_.record_failure(alice_, clock_.now()).delay, 2s);
  EXPECT_EQ(delays_.size(), 1u);
  delays_.record_success(alice_);
  EXPECT_EQ(delays_.size(), 0u);
}

TEST_F(LoginFailureDelayTest, ForgetsAfterTheForgetTime) {
  for (int i = 0; i < 4; ++i) (void)delays_.record_failure(alice_, clock_.now());
  clock_.advance(10min - 1ns);
  EXPECT_EQ(delays_.peek(alice_, clock_.now()).failures, 4u);
  clock_.advance(1ns);
  EXPECT_EQ(delays_.peek(alice_, clock_.now()).failures, 0u);
  const LoginFailureState again = delays_.record_failure(alice_, clock_.now());
  EXPECT_EQ(again.delay, 2s);
  EXPECT_EQ(again.failures, 1u);
}

TEST_F(LoginFailureDelayTest, EachFailureRestartsTheForgetTime) {
  (void)delays_.record_failure(alice_, clock_.now());
  clock_.advance(9min);
  (void)delays_.record_failure(alice_, clock_.now());
  clock_.advance(9min);
  EXPECT_EQ(delays_.record_failure(alice_, clock_.now()).failures, 3u);
}

TEST_F(LoginFailureDelayTest, ClientsAreIndependent) {
  (void)delays_.record_failure(alice_, clock_.now());
  (void)delays_.record_failure(alice_, clock_.now());
  EXPECT_EQ(delays_.peek(bob_, clock_.now()).failures, 0u);
  EXPECT_EQ(delays_.record_failure(bob_, clock_.now()).delay, 2s);
  delays_.record_success(bob_);
  EXPECT_EQ(delays_.peek(alice_, clock_.now()).failures, 2u);
}

TEST_F(LoginFailureDelayTest, ATimeFromBehindCountsAsNow) {
  (void)delays_.record_failure(alice_, clock_.now());
  // Another shard read the clock a moment earlier but took the lock later.
  const LoginFailureState state = delays_.record_failure(alice_, clock_.now() - 1ms);
  EXPECT_EQ(state.failures, 2u);
  clock_.advance(10min);
  EXPECT_EQ(delays_.peek(alice_, clock_.now()).failures, 0u);
}

TEST_F(LoginFailureDelayTest, CountsHitsAndFailures) {
  (void)delays_.record_failure(alice_, clock_.now());
  (void)delays_.record_failure(alice_, clock_.now());
  (void)delays_.peek(alice_, clock_.now());
  const LimitCounters counters = delays_.counters();
  EXPECT_EQ(counters.refusals, 2u);
  EXPECT_EQ(counters.hits, 2u);
  EXPECT_EQ(counters.table_full, 0u);
}

TEST(LoginFailureDelayOptionsTest, CustomScheduleAndBadOptions) {
  LoginFailureDelayOptions options;
  options.delay_initial = 500ms;
  options.delay_max = 3s;
  options.forget_after = 1min;
  LoginFailureDelay<UserKey> delays(options, test_hasher());
  FakeClock clock;
  const UserKey user{1, 2};
  for (const auto delay : {500ms, 1000ms, 2000ms, 3000ms, 3000ms}) {
    EXPECT_EQ(delays.record_failure(user, clock.now()).delay, delay);
  }
  options.delay_max = 100ms;
  EXPECT_THROW(LoginFailureDelay<UserKey>(options, test_hasher()), std::invalid_argument);
  options = {};
  options.delay_initial = 0ms;
  EXPECT_THROW(LoginFailureDelay<UserKey>(options, test_hasher()), std::invalid_argument);
  options = {};
  options.capacity = 0;
  EXPECT_THROW(LoginFailureDelay<UserKey>(options, test_hasher()), std::invalid_argument);
}

// A full stripe forgets expired clients first, then the one idle longest;
// it never refuses to remember a new failure.
TEST(LoginFailureDelayEvictionTest, FullStripeEvictsExpiredThenStalest) {
  LoginFailureDelayOptions options;
  options.capacity = 64;
  LoginFailureDelay<AddressKey> delays(options, test_hasher());
  FakeClock clock;
  const size_t limit = delays.stripe_entries_max();
  const std::vector<AddressKey> keys =
      testing::keys_in_stripe<AddressKey>(delays, 3, limit + 40, address);
  for (size_t i = 0; i < limit; ++i) {
    (void)delays.record_failure(keys[i], clock.now());
    clock.advance(1s);
  }
  EXPECT_EQ(delays.size(), limit);
  // Everything has been quiet for the forget time: the new client takes an
  // expired one's slot.
  clock.advance(10min);
  EXPECT_EQ(delays.record_failure(keys[limit], clock.now()).failures, 1u);
  EXPECT_EQ(delays.size(), limit);
  EXPECT_EQ(delays.counters().evictions, 1u);
  // All live now: each newcomer still gets remembered, at a stale one's cost.
  for (size_t i = 0; i < limit; ++i) (void)delays.record_failure(keys[i], clock.now());
  clock.advance(1s);
  for (size_t i = limit + 1; i < keys.size(); ++i) {
    EXPECT_EQ(delays.record_failure(keys[i], clock.now()).failures, 1u);
    EXPECT_EQ(delays.peek(keys[i], clock.now()).failures, 1u);
  }
  EXPECT_EQ(delays.size(), limit);
  EXPECT_EQ(delays.counters().table_full, 0u);
  EXPECT_GE(delays.counters().evictions, 1u + (keys.size() - limit - 1));
}

}  // namespace
}  // namespace popgate::limits
