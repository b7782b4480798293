#include "server/auth/verify_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace popgate::auth {
namespace {

using namespace std::chrono_literals;
using TimePoint = VerifyCache::TimePoint;

const TimePoint kT0 = TimePoint{} + 1000h;  // a fake clock

TEST(VerifyCache, HitAfterInsert) {
  VerifyCache cache(8, 60s);
  EXPECT_FALSE(cache.hit("{H}1", "pw", kT0));
  cache.insert("{H}1", "pw", kT0);
  EXPECT_TRUE(cache.hit("{H}1", "pw", kT0));
  EXPECT_TRUE(cache.hit("{H}1", "pw", kT0 + 59s));
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(VerifyCache, TtlExpiryIsFromInsertNotFromHits) {
  VerifyCache cache(8, 60s);
  cache.insert("{H}1", "pw", kT0);
  EXPECT_TRUE(cache.hit("{H}1", "pw", kT0 + 30s));
  EXPECT_FALSE(cache.hit("{H}1", "pw", kT0 + 60s));
  EXPECT_EQ(cache.expirations(), 1u);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.hit("{H}1", "pw", kT0 + 1s));  // gone for good
  cache.insert("{H}1", "pw", kT0 + 100s);           // re-insert restarts the ttl
  cache.insert("{H}1", "pw", kT0 + 150s);
  EXPECT_TRUE(cache.hit("{H}1", "pw", kT0 + 200s));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(VerifyCache, ChangedHashAndWrongPasswordMiss) {
  VerifyCache cache(8, 60s);
  cache.insert("{H}old", "pw", kT0);
  EXPECT_FALSE(cache.hit("{H}new", "pw", kT0));
  EXPECT_FALSE(cache.hit("{H}old", "pw ", kT0));
  EXPECT_FALSE(cache.hit("{H}old", "", kT0));
  EXPECT_FALSE(cache.hit("{H}old", "PW", kT0));
  // The separator keeps (hash, password) pairs apart that concatenate alike.
  cache.insert("ab", "c", kT0);
  EXPECT_FALSE(cache.hit("a", "bc", kT0));
  EXPECT_TRUE(cache.hit("{H}old", "pw", kT0));
  EXPECT_TRUE(cache.hit("ab", "c", kT0));
}

TEST(VerifyCache, CapacityEvictsLeastRecentlyUsed) {
  VerifyCache cache(3, 60s);
  cache.insert("h", "a", kT0);
  cache.insert("h", "b", kT0);
  cache.insert("h", "c", kT0);
  EXPECT_TRUE(cache.hit("h", "a", kT0));  // a is now the most recent; b the least
  cache.insert("h", "d", kT0);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(cache.hit("h", "b", kT0));
  EXPECT_TRUE(cache.hit("h", "a", kT0));
  EXPECT_TRUE(cache.hit("h", "c", kT0));
  EXPECT_TRUE(cache.hit("h", "d", kT0));
  // An expired victim is an expiration, not an eviction.
  cache.insert("h", "e", kT0 + 61s);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_EQ(cache.expirations(), 1u);
}

TEST(VerifyCache, EraseAllAndDisabled) {
  VerifyCache cache(4, 60s);
  cache.insert("h", "a", kT0);
  cache.erase_all();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.hit("h", "a", kT0));
  cache.insert("h", "a", kT0);
  EXPECT_TRUE(cache.hit("h", "a", kT0));

  VerifyCache off(0, 60s);
  off.insert("h", "a", kT0);
  EXPECT_FALSE(off.hit("h", "a", kT0));
  EXPECT_EQ(off.size(), 0u);
  EXPECT_THROW(VerifyCache(VerifyCache::kCapacityMax + 1, 1s), std::invalid_argument);
}

TEST(VerifyCache, TwoCachesHaveDifferentKeys) {
  // Nothing observable leaks the key, but a second cache must not hit
  // entries of the first: they are separate tables anyway. This checks
  // that a fresh cache starts empty.
  VerifyCache a(4, 60s);
  VerifyCache b(4, 60s);
  a.insert("h", "pw", kT0);
  EXPECT_FALSE(b.hit("h", "pw", kT0));
}

// Random operations against a simple model (a list in LRU order). Prints
// its seed; POPGATE_TEST_SEED replays it.
TEST(VerifyCache, MatchesAModel) {
  const char* env = std::getenv("POPGATE_TEST_SEED");
  const uint32_t seed = env != nullptr ? uint32_t(std::stoul(env)) : std::random_device{}();
  std::printf("verify cache seed: %u (replay with POPGATE_TEST_SEED=%u)\n", seed, seed);
  std::mt19937 rng(seed);
  constexpr size_t kCapacity = 16;
  VerifyCache cache(kCapacity, 10s);
  struct ModelEntry {
    std::string password;
    TimePoint expires;
  };
  std::vector<ModelEntry> model;  // front = most recent
  TimePoint now = kT0;
  for (int step = 0; step < 20000; ++step) {
    now += std::chrono::milliseconds(rng() % 50);
    const std::string password = "p" + std::to_string(rng() % 40);
    auto it = std::find_if(model.begin(), model.end(),
                           [&](const ModelEntry& e) { return e.password == password; });
    if (rng() % 2 == 0) {
      bool expect = false;
      if (it != model.end()) {
        if (now >= it->expires) {
          model.erase(it);
        } else {
          ModelEntry e = *it;
          model.erase(it);
          model.insert(model.begin(), e);
          expect = true;
        }
      }
      ASSERT_EQ(cache.hit("{H}x", password, now), expect) << "seed " << seed << " step " << step;
    } else {
      if (it != model.end()) model.erase(it);
      if (model.size() == kCapacity) model.pop_back();
      model.insert(model.begin(), {password, now + 10s});
      cache.insert("{H}x", password, now);
    }
    ASSERT_EQ(cache.size(), model.size()) << "seed " << seed << " step " << step;
  }
}

}  // namespace
}  // namespace popgate::auth
