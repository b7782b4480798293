#include "server/net/buffer_ring.h"

#include <sys/mman.h>

#include <cerrno>

namespace popgate::net {

BufferRing::~BufferRing() {
  if (br_ != nullptr) {
    io_uring_unregister_buf_ring(ring_, group_id_);
    munmap(br_, ring_bytes_);
  }
  if (memory_ != nullptr) munmap(memory_, memory_bytes_);
}

int BufferRing::init(io_uring* ring, uint16_t group_id, uint32_t count,
                     uint32_t buffer_bytes) noexcept {
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768) return -EINVAL;
  ring_ = ring;
  group_id_ = group_id;
  count_ = count;
  buffer_bytes_ = buffer_bytes;
  ring_bytes_ = count * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return -errno;
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  int rc = io_uring_register_buf_ring(ring_, &reg, 0);
  if (rc != 0) {
    munmap(br_, ring_bytes_);
    br_ = nullptr;
    return rc;
  }
  memory_bytes_ = static_cast<size_t>(count) * buffer_bytes;
  // Resident from the start: the kernel hands the buffers out in ring
  // order, so any steady traffic touches every one of them within seconds
  // to minutes. Faulted in lazily, that showed as the process growing by
  // this ring's size (4 MiB per shard by default) under a steady load, then
  // stopping: a climb that looks like a leak (bench/RESULTS.md, "Memory of
  // a 25 MiB RETR"). Now it is part of the memory at start.
  mem = mmap(nullptr, memory_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1,
             0);
  if (mem == MAP_FAILED) return -errno;
  memory_ = static_cast<char*>(mem);
  const int mask = io_uring_buf_ring_mask(count);
  for (uint32_t i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br_, data(static_cast<uint16_t>(i)), buffer_bytes, static_cast<uint16_t>(i),
                          mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
  return 0;
}

void BufferRing::recycle(uint16_t buffer_id) noexcept {
  io_uring_buf_ring_add(br_, data(buffer_id), buffer_bytes_, buffer_id,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
  --in_use_;
}

}  // namespace popgate::net
