#include "server/pop3/output_buffer.h"

#include <gtest/gtest.h>

namespace popgate::pop3 {
namespace {

TEST(OutputBuffer, HoldsABlockOnlyWhileNotEmpty) {
  BufferPool pool(64);
  OutputBuffer out(pool);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
  ASSERT_TRUE(out.append("hello"));
  EXPECT_EQ(pool.blocks_in_use(), 1u);
  EXPECT_EQ(out.pending(), "hello");
  out.begin_send();
  out.consume(5);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(pool.blocks_in_use(), 0u);
  // The block is reused, not reallocated.
  ASSERT_TRUE(out.append("again"));
  EXPECT_EQ(pool.blocks_total(), 1u);
}

TEST(OutputBuffer, RefusesMoreThanItsBlock) {
  BufferPool pool(8);
  OutputBuffer out(pool);
  EXPECT_TRUE(out.append("12345678"));
  EXPECT_FALSE(out.append("9"));
  EXPECT_EQ(out.space(), 0u);
  EXPECT_EQ(out.reserve(1), nullptr);
}

TEST(OutputBuffer, CompactsOnlyWhenNoSendIsInFlight) {
  BufferPool pool(8);
  OutputBuffer out(pool);
  ASSERT_TRUE(out.append("abcdef"));
  out.begin_send();
  const char* in_flight = out.pending().data();
  out.consume(4);  // "ef" left
  out.begin_send();
  // While "ef" is being sent, only the tail is usable: 2 octets.
  EXPECT_EQ(out.space(), 2u);
  EXPECT_FALSE(out.append("123"));
  EXPECT_EQ(out.pending().data(), in_flight + 4);
  out.consume(0);
  // No send in flight: compaction makes room.
  EXPECT_EQ(out.space(), 6u);
  ASSERT_TRUE(out.append("123456"));
  EXPECT_EQ(out.pending(), "ef123456");
}

TEST(BufferPool, ReusesReleasedBlocks) {
  BufferPool pool(16);
  char* a = pool.acquire();
  char* b = pool.acquire();
  pool.release(a);
  EXPECT_EQ(pool.acquire(), a);
  pool.release(b);
  EXPECT_EQ(pool.blocks_total(), 2u);
  EXPECT_EQ(pool.blocks_in_use(), 1u);
  pool.release(a);
}

}  // namespace
}  // namespace popgate::pop3
