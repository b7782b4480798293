// BufferRing against a real io_uring: the receive buffers are resident as
// soon as the ring is set up (the kernel uses them in ring order, so a lazily
// faulted ring grew the process under steady load until every buffer had
// been used once), and each buffer id maps to its own slice of memory.
#include "server/net/buffer_ring.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

namespace popgate::net {
namespace {

class BufferRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const int rc = io_uring_queue_init(8, &ring_, 0);
    if (rc != 0) GTEST_SKIP() << "io_uring unavailable: " << -rc;
    ready_ = true;
  }
  void TearDown() override {
    if (ready_) io_uring_queue_exit(&ring_);
  }
  io_uring ring_{};
  bool ready_ = false;
};

TEST_F(BufferRingTest, EveryBufferIsResidentFromTheStart) {
  constexpr uint32_t kCount = 256;
  constexpr uint32_t kBytes = 4096;
  BufferRing buffers;
  const int rc = buffers.init(&ring_, 7, kCount, kBytes);
  if (rc == -EINVAL || rc == -ENOSYS) GTEST_SKIP() << "kernel without provided-buffer rings";
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(buffers.group_id(), 7);
  EXPECT_EQ(buffers.buffer_bytes(), kBytes);
  EXPECT_EQ(buffers.data(1) - buffers.data(0), static_cast<std::ptrdiff_t>(kBytes));
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t bytes = size_t{kCount} * kBytes;
  std::vector<unsigned char> resident((bytes + page - 1) / page);
  ASSERT_EQ(mincore(buffers.data(0), bytes, resident.data()), 0);
  size_t in_core = 0;
  for (unsigned char r : resident) in_core += r & 1U;
  EXPECT_EQ(in_core, resident.size());
}

TEST_F(BufferRingTest, RefusesACountThatIsNotAPowerOfTwo) {
  BufferRing buffers;
  EXPECT_EQ(buffers.init(&ring_, 1, 100, 4096), -EINVAL);
  EXPECT_EQ(buffers.init(&ring_, 1, 0, 4096), -EINVAL);
}

}  // namespace
}  // namespace popgate::net
