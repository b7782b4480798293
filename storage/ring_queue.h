// RingQueue: a FIFO of trivially copyable values in one growable array.
//
// Used for the request queue, each connection's in-flight FIFO and the
// completion queue. Unlike std::deque it allocates only when it grows past
// its high-water mark (doubling), so a warmed-up client pushes and pops
// without touching the allocator.
// Must not know: libpq, requests.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <type_traits>
#include <utility>
#include <vector>

namespace popgate::storage {

template <typename T>
class RingQueue {
  static_assert(std::is_trivially_copyable_v<T>, "RingQueue moves by copy");

 public:
  explicit RingQueue(std::size_t capacity = 16) { reserve(capacity); }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }

  // The i-th element from the front (0 = front). i < size().
  [[nodiscard]] T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & mask_]; }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept {
    return slots_[(head_ + i) & mask_];
  }
  [[nodiscard]] T& front() noexcept { return (*this)[0]; }
  [[nodiscard]] const T& front() const noexcept { return (*this)[0]; }

  // Grows (allocates) only when full; out of memory is fatal, as everywhere.
  void push_back(const T& value) noexcept {
    if (size_ == slots_.size()) grow(slots_.size() * 2);
    slots_[(head_ + size_) & mask_] = value;
    ++size_;
  }
  void pop_front() noexcept {
    if (size_ == 0) std::abort();  // a bug: popping an empty queue
    head_ = (head_ + 1) & mask_;
    --size_;
  }
  void clear() noexcept { head_ = size_ = 0; }

  // Makes room for at least `capacity` elements (rounded up to a power of 2).
  void reserve(std::size_t capacity) noexcept {
    std::size_t rounded = 1;
    while (rounded < capacity) rounded *= 2;
    if (rounded > slots_.size()) grow(rounded);
  }

 private:
  void grow(std::size_t new_capacity) noexcept {
    std::vector<T> bigger(new_capacity);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = (*this)[i];
    slots_ = std::move(bigger);
    head_ = 0;
    mask_ = new_capacity - 1;
  }

  std::vector<T> slots_;  // size is a power of two
  std::size_t mask_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace popgate::storage
