// BufferRing: a registered provided-buffer ring. Receives pick a buffer at
// completion time, so an idle connection holds no receive memory; a buffer
// goes back to the kernel once the session has parsed it.
//
// liburing 2.3 lacks io_uring_setup_buf_ring, so the ring memory is mapped
// and registered here directly.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace popgate::net {

class BufferRing {
 public:
  BufferRing() = default;
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // count must be a power of two. Returns 0 or -errno.
  [[nodiscard]] int init(io_uring* ring, uint16_t group_id, uint32_t count,
                         uint32_t buffer_bytes) noexcept;

  [[nodiscard]] uint16_t group_id() const noexcept { return group_id_; }
  [[nodiscard]] char* data(uint16_t buffer_id) const noexcept {
    return memory_ + static_cast<size_t>(buffer_id) * buffer_bytes_;
  }
  [[nodiscard]] uint32_t buffer_bytes() const noexcept { return buffer_bytes_; }
  // Hands a buffer back to the kernel.
  void recycle(uint16_t buffer_id) noexcept;
  [[nodiscard]] uint32_t in_use() const noexcept { return in_use_; }
  void note_taken() noexcept { ++in_use_; }

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  size_t ring_bytes_ = 0;
  char* memory_ = nullptr;
  size_t memory_bytes_ = 0;
  uint32_t count_ = 0;
  uint32_t buffer_bytes_ = 0;
  uint32_t in_use_ = 0;
  uint16_t group_id_ = 0;
};

}  // namespace popgate::net
