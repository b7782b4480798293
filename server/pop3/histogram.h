// Histogram: fixed buckets, written by one thread (a shard), read by the
// metrics scraper with relaxed loads. No locks, no allocation. Buckets follow
// Prometheus' cumulative "le" convention at scrape time.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "server/pop3/counter.h"

namespace popgate::pop3 {

// Upper bounds of duration buckets, in microseconds (a +Inf bucket follows).
inline constexpr std::array<uint64_t, 14> kDurationBoundsUs = {
    500,     1'000,   2'500,   5'000,     10'000,    25'000,     50'000,
    100'000, 250'000, 500'000, 1'000'000, 2'500'000, 10'000'000, 30'000'000};
// Upper bounds of maildrop sizes at login, in messages.
inline constexpr std::array<uint64_t, 7> kMessageCountBounds = {0, 10, 100, 1'000, 10'000, 100'000, 1'000'000};
// Upper bounds of maildrop sizes at login, in KiB (64 KiB .. 16 GiB).
inline constexpr std::array<uint64_t, 6> kMaildropKibBounds = {64, 1'024, 16 * 1'024, 256 * 1'024,
                                                               1'024 * 1'024, 16 * 1'024 * 1'024};
// Upper bounds of per-wakeup batch sizes (event-loop figures).
inline constexpr std::array<uint64_t, 9> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

template <const auto& Bounds>
class FixedHistogram {
 public:
  static constexpr size_t kBuckets = Bounds.size() + 1;  // + the +Inf bucket
  static constexpr const auto& kBounds = Bounds;

  void observe(uint64_t value) noexcept {
    size_t i = 0;
    while (i < Bounds.size() && value > Bounds[i]) ++i;
    buckets_[i].add();
    sum_.add(value);
  }
  // Not cumulative: bucket i counts observations in (bound[i-1], bound[i]].
  [[nodiscard]] uint64_t bucket(size_t i) const noexcept { return buckets_[i].value(); }
  [[nodiscard]] uint64_t sum() const noexcept { return sum_.value(); }
  [[nodiscard]] uint64_t count() const noexcept {
    uint64_t n = 0;
    for (const Counter& b : buckets_) n += b.value();
    return n;
  }

 private:
  std::array<Counter, kBuckets> buckets_{};
  Counter sum_;
};

// Durations, observed in microseconds (exported in seconds).
class DurationHistogram : public FixedHistogram<kDurationBoundsUs> {
 public:
  void observe_duration(std::chrono::microseconds d) noexcept {
    observe(static_cast<uint64_t>(d.count() < 0 ? 0 : d.count()));
  }
};

using MessageCountHistogram = FixedHistogram<kMessageCountBounds>;
using MaildropKibHistogram = FixedHistogram<kMaildropKibBounds>;
using BatchHistogram = FixedHistogram<kBatchBounds>;

}  // namespace popgate::pop3
