// Counter: a monotonic count written by exactly one thread (the shard that
// owns it) and read by the metrics scraper: relaxed load and store, no
// read-modify-write, no lock.
#pragma once

#include <atomic>
#include <cstdint>

namespace popgate::pop3 {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Gauge: a current value written by exactly one thread, read by the scraper.
class Gauge {
 public:
  void add(int64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(int64_t n = 1) noexcept { add(-n); }
  void set(int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  [[nodiscard]] int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

}  // namespace popgate::pop3
