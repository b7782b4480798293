#include "server/pop3/histogram.h"

#include <gtest/gtest.h>

namespace popgate::pop3 {
namespace {

TEST(Histogram, BucketsAreUpperBoundInclusive) {
  MessageCountHistogram h;
  h.observe(0);        // le=0
  h.observe(10);       // le=10
  h.observe(11);       // le=100
  h.observe(5'000'000);  // +Inf
  EXPECT_EQ(h.bucket(0), 1U);
  EXPECT_EQ(h.bucket(1), 1U);
  EXPECT_EQ(h.bucket(2), 1U);
  EXPECT_EQ(h.bucket(MessageCountHistogram::kBuckets - 1), 1U);
  EXPECT_EQ(h.count(), 4U);
  EXPECT_EQ(h.sum(), 5'000'021U);
}

TEST(Histogram, DurationsAreMicrosecondsAndNegativeIsZero) {
  DurationHistogram h;
  h.observe_duration(std::chrono::microseconds(-5));
  h.observe_duration(std::chrono::milliseconds(3));  // (2.5 ms, 5 ms]
  EXPECT_EQ(h.bucket(0), 1U);
  EXPECT_EQ(h.bucket(3), 1U);
  EXPECT_EQ(h.sum(), 3'000U);
}

}  // namespace
}  // namespace popgate::pop3
