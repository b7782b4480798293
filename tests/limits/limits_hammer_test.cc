// Eight threads (shards) hammer shared tables with mixed operations on a
// few hot keys. Checked during the run: no count ever exceeds its max.
// Checked at the end: every count returns to zero after all releases, each
// tenant got exactly its burst (time stands still), and every recorded
// failure was counted once. Run under ThreadSanitizer too.
// POPGATE_TEST_ITERATIONS overrides the operations per thread; the seed is
// printed and POPGATE_TEST_SEED replays it.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "server/limits/concurrency_limit.h"
#include "server/limits/login_failure_delay.h"
#include "server/limits/rate_limit.h"
#include "tests/limits/limits_test_support.h"

namespace popgate::limits {
namespace {

using testing::address;

constexpr int kThreads = 8;
constexpr uint32_t kAddresses = 48;      // few keys: heavy contention
constexpr uint32_t kAddressMax = 3;      // sessions per address
constexpr uint32_t kUsers = 16;
constexpr uint32_t kUserMax = 2;
constexpr int64_t kTenants = 4;
constexpr uint32_t kTenantBurst = 1000;
constexpr uint32_t kFailureKeys = 32;
constexpr uint64_t kIterationsDefault = 100'000;

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

struct Shared {
  ConcurrencyLimit<AddressKey> by_address{1024};
  ConcurrencyLimit<UserKey> by_user{1024};
  RateLimit<TenantKey> by_tenant{64};
  LoginFailureDelay<AddressKey> failures{};
  std::atomic<bool> over_max{false};
  std::array<std::atomic<uint64_t>, kTenants> tenant_allowed{};
  std::array<std::atomic<uint64_t>, kFailureKeys> failures_recorded{};
};

struct Held {
  std::vector<AddressKey> addresses;
  std::vector<UserKey> users;
};

AddressKey failure_key(uint32_t i) { return address(1'000'000 + i); }

void one_operation(Shared& shared, Held& held, std::mt19937_64& rng, TimePoint now) {
  switch (rng() % 6) {
    case 0: {
      const AddressKey key = address(static_cast<uint32_t>(rng() % kAddresses));
      if (shared.by_address.try_acquire(key, kAddressMax) == Acquire::kAcquired) {
        held.addresses.push_back(key);
        if (shared.by_address.count(key) > kAddressMax) shared.over_max = true;
      }
      break;
    }
    case 1: {
      const UserKey key{static_cast<int64_t>(rng() % 3), static_cast<int64_t>(rng() % kUsers)};
      if (shared.by_user.try_acquire(key, kUserMax) == Acquire::kAcquired) {
        held.users.push_back(key);
        if (shared.by_user.count(key) > kUserMax) shared.over_max = true;
      }
      break;
    }
    case 2:
      if (!held.addresses.empty()) {
        const size_t at = rng() % held.addresses.size();
        if (!shared.by_address.release(held.addresses[at])) shared.over_max = true;
        held.addresses[at] = held.addresses.back();
        held.addresses.pop_back();
      }
      if (!held.users.empty()) {
        const size_t at = rng() % held.users.size();
        if (!shared.by_user.release(held.users[at])) shared.over_max = true;
        held.users[at] = held.users.back();
        held.users.pop_back();
      }
      break;
    case 3: {
      const auto tenant = static_cast<int64_t>(rng() % kTenants);
      // Time stands still: only the burst is ever available.
      const RateDecision decision =
          shared.by_tenant.allow(TenantKey{tenant}, now, 60, kTenantBurst);
      if (decision == RateDecision::kAllowed) {
        shared.tenant_allowed[static_cast<size_t>(tenant)].fetch_add(1, std::memory_order_relaxed);
      }
      break;
    }
    case 4: {
      const auto i = static_cast<uint32_t>(rng() % kFailureKeys);
      (void)shared.failures.record_failure(failure_key(i), now);
      shared.failures_recorded[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
    default:
      (void)shared.failures.peek(failure_key(static_cast<uint32_t>(rng() % kFailureKeys)), now);
      break;
  }
}

TEST(LimitsHammerTest, EightShardsMixedOperations) {
  const uint64_t seed = env_or("POPGATE_TEST_SEED", std::random_device{}());
  const uint64_t iterations = env_or("POPGATE_TEST_ITERATIONS", kIterationsDefault);
  std::printf("limits hammer seed: %llu, %llu operations per thread\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(iterations));
  Shared shared;
  const TimePoint now = testing::FakeClock{}.now();
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + static_cast<uint64_t>(t));
      Held held;
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();  // start together
      for (uint64_t i = 0; i < iterations; ++i) one_operation(shared, held, rng, now);
      for (const AddressKey& key : held.addresses) {
        if (!shared.by_address.release(key)) shared.over_max = true;
      }
      for (const UserKey& key : held.users) {
        if (!shared.by_user.release(key)) shared.over_max = true;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_FALSE(shared.over_max.load()) << "a count passed its max or a release was unbalanced";
  EXPECT_EQ(shared.by_address.size(), 0u);
  EXPECT_EQ(shared.by_user.size(), 0u);
  for (uint32_t i = 0; i < kAddresses; ++i) EXPECT_EQ(shared.by_address.count(address(i)), 0u);
  EXPECT_EQ(shared.by_address.counters().unbalanced, 0u);
  EXPECT_EQ(shared.by_address.counters().table_full, 0u);
  EXPECT_EQ(shared.by_user.counters().unbalanced, 0u);
  EXPECT_EQ(shared.by_user.counters().table_full, 0u);
  for (int64_t tenant = 0; tenant < kTenants; ++tenant) {
    const uint64_t allowed = shared.tenant_allowed[static_cast<size_t>(tenant)].load();
    if (iterations >= 10'000) {  // enough calls to drain every bucket
      EXPECT_EQ(allowed, kTenantBurst) << "tenant " << tenant;
    }
    EXPECT_LE(allowed, kTenantBurst) << "tenant " << tenant;
  }
  uint64_t total_failures = 0;
  for (uint32_t i = 0; i < kFailureKeys; ++i) {
    const uint64_t recorded = shared.failures_recorded[i].load();
    total_failures += recorded;
    EXPECT_EQ(shared.failures.peek(failure_key(i), now).failures, recorded) << "key " << i;
    shared.failures.record_success(failure_key(i));
  }
  EXPECT_EQ(shared.failures.size(), 0u);
  EXPECT_EQ(shared.failures.counters().refusals, total_failures);
}

}  // namespace
}  // namespace popgate::limits
