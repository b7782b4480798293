// Ring: one io_uring per shard thread, plus the user_data packing every
// completion carries: the operation, the connection slot and the slot's
// generation, so a late completion for a reused slot is recognised and
// dropped.
// Must not know: sessions, storage, TLS.
#pragma once

#include <liburing.h>

#include <cstdint>

namespace popgate::net {

enum class Op : uint8_t {
  kNone = 0,
  kAccept,
  kRecv,
  kSend,
  kCancel,
  kTick,
  kPollStorage,
  kPollKdf,
  kPollControl,
};

struct UserData {
  Op op = Op::kNone;
  uint32_t slot = 0;  // 24 bits
  uint32_t generation = 0;
};

constexpr uint64_t kSlotMask = (uint64_t{1} << 24) - 1;
constexpr uint32_t kSlotsMax = 1U << 24;

[[nodiscard]] constexpr uint64_t pack(Op op, uint32_t slot = 0, uint32_t generation = 0) noexcept {
  return (uint64_t{static_cast<uint8_t>(op)} << 56) | ((uint64_t{slot} & kSlotMask) << 32) |
         uint64_t{generation};
}
[[nodiscard]] constexpr UserData unpack(uint64_t data) noexcept {
  return UserData{static_cast<Op>(data >> 56), static_cast<uint32_t>((data >> 32) & kSlotMask),
                  static_cast<uint32_t>(data & 0xffffffffU)};
}

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Must run on the thread that will use the ring (single issuer). Tries the
  // cheapest task-running modes first and falls back for older kernels.
  // Returns 0 or -errno.
  [[nodiscard]] int init(unsigned entries) noexcept;

  // A free SQE; when the queue is full it submits first, so never null
  // unless the ring is broken.
  [[nodiscard]] io_uring_sqe* sqe() noexcept;
  // Submits and waits for at least one completion or the timeout.
  int submit_and_wait(unsigned wait_nr) noexcept;
  [[nodiscard]] io_uring* raw() noexcept { return &ring_; }
  [[nodiscard]] unsigned setup_flags() const noexcept { return flags_; }

 private:
  io_uring ring_{};
  bool ready_ = false;
  unsigned flags_ = 0;
};

}  // namespace popgate::net
