#include "storage/ring_queue.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <random>

namespace popgate::storage {
namespace {

TEST(RingQueue, FifoAcrossWrapAndGrowth) {
  RingQueue<uint32_t> q(4);
  EXPECT_TRUE(q.empty());
  uint32_t next_in = 0;
  uint32_t next_out = 0;
  // Interleave so the head wraps before each growth.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 3 + round; ++i) q.push_back(next_in++);
    for (int i = 0; i < 2 + round; ++i) {
      ASSERT_EQ(q.front(), next_out++);
      q.pop_front();
    }
  }
  ASSERT_EQ(q.size(), next_in - next_out);
  for (std::size_t i = 0; i < q.size(); ++i) EXPECT_EQ(q[i], next_out + i);
}

TEST(RingQueue, MatchesDequeUnderRandomOps) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  RingQueue<uint64_t> q(1);
  std::deque<uint64_t> ref;
  for (int op = 0; op < 100000; ++op) {
    if (ref.empty() || rng() % 3 != 0) {
      const uint64_t v = rng();
      q.push_back(v);
      ref.push_back(v);
    } else {
      ASSERT_EQ(q.front(), ref.front());
      q.pop_front();
      ref.pop_front();
    }
    ASSERT_EQ(q.size(), ref.size());
  }
}

TEST(RingQueue, ReserveRoundsUpAndClearKeepsCapacity) {
  RingQueue<int> q(5);
  EXPECT_EQ(q.capacity(), 8U);
  for (int i = 0; i < 8; ++i) q.push_back(i);
  EXPECT_EQ(q.capacity(), 8U);
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity(), 8U);
}

}  // namespace
}  // namespace popgate::storage
