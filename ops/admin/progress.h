// Progress lines for long admin runs (import, expire): every so many items
// or seconds, whichever comes first, with the rate since the start. The
// clock is passed in, so tests can drive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace popgate::admin {

class Progress {
 public:
  using Clock = std::chrono::steady_clock;

  // `what` starts every line ("import"); every_items 0 turns the item
  // trigger off, every 0 s the time trigger.
  Progress(std::ostream& out, std::string what, uint64_t every_items,
           std::chrono::milliseconds every, Clock::time_point start);

  // Counts `items` more items and `bytes` more octets; prints a line when
  // one is due. `detail` follows the counts ("(12 imported, 3 skipped)").
  void add(uint64_t items, uint64_t bytes, Clock::time_point now, const std::string& detail);
  // The line as it would be printed now (tests, and the final summary).
  [[nodiscard]] std::string line(Clock::time_point now, const std::string& detail) const;
  [[nodiscard]] uint64_t items() const noexcept { return items_; }
  [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }

 private:
  std::ostream& out_;
  std::string what_;
  uint64_t every_items_;
  std::chrono::milliseconds every_;
  Clock::time_point start_;
  Clock::time_point last_print_;
  uint64_t items_ = 0;
  uint64_t bytes_ = 0;
  uint64_t items_at_last_print_ = 0;
};

}  // namespace popgate::admin
