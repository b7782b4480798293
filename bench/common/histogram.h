// Histogram: latencies in nanoseconds, log-linear buckets (64 per power of
// two, so a reported percentile is within 1.6% of the true value), fixed
// size, no allocation after construction. One per thread and kind; merge()
// adds them up for the report.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace popgate::bench {

class Histogram {
 public:
  void record(uint64_t value_ns) noexcept;
  void merge(const Histogram& other) noexcept;
  void clear() noexcept;

  [[nodiscard]] uint64_t count() const noexcept { return count_; }
  [[nodiscard]] uint64_t max() const noexcept { return max_; }
  [[nodiscard]] double mean() const noexcept {
    return count_ == 0 ? 0.0 : double(sum_) / double(count_);
  }
  // q in [0, 1]; 0 when empty. The upper bound of the bucket holding it.
  [[nodiscard]] uint64_t quantile(double q) const noexcept;

 private:
  static constexpr unsigned kSubBits = 7;  // 128 slots, 64 in use per power of two
  static constexpr unsigned kSub = 1U << kSubBits;
  static constexpr unsigned kMagnitudes = 64 - kSubBits + 1;
  static constexpr size_t kBuckets = size_t(kMagnitudes) * kSub;

  [[nodiscard]] static size_t bucket_of(uint64_t v) noexcept;
  [[nodiscard]] static uint64_t bucket_upper(size_t b) noexcept;

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace popgate::bench
