#include "bench/common/histogram.h"

#include <algorithm>
#include <cmath>

namespace popgate::bench {

size_t Histogram::bucket_of(uint64_t v) noexcept {
  if (v < kSub) return size_t(v);
  const unsigned top = 63U - unsigned(__builtin_clzll(v));  // >= kSubBits
  const unsigned shift = top - kSubBits + 1;
  const uint64_t sub = v >> shift;
  // v >> shift is in [kSub/2, kSub): kSub/2 buckets of width 2^shift per
  // power of two, laid out kSub apart.
  return size_t(shift) * kSub + size_t(sub);
}

uint64_t Histogram::bucket_upper(size_t b) noexcept {
  const size_t shift = b / kSub;
  const uint64_t sub = b % kSub;
  if (shift == 0) return sub;
  return ((sub + 1) << shift) - 1;
}

void Histogram::record(uint64_t value_ns) noexcept {
  ++buckets_[bucket_of(value_ns)];
  ++count_;
  sum_ += value_ns;
  max_ = std::max(max_, value_ns);
}

void Histogram::merge(const Histogram& other) noexcept {
  for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

void Histogram::clear() noexcept { *this = Histogram{}; }

uint64_t Histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  const auto rank = uint64_t(std::ceil(std::clamp(q, 0.0, 1.0) * double(count_)));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= std::max<uint64_t>(rank, 1)) return std::min(bucket_upper(i), max_);
  }
  return max_;
}

}  // namespace popgate::bench
