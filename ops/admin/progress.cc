#include "ops/admin/progress.h"

#include <array>
#include <cstdio>
#include <ostream>

#include "ops/admin/units.h"

namespace popgate::admin {

Progress::Progress(std::ostream& out, std::string what, uint64_t every_items,
                   std::chrono::milliseconds every, Clock::time_point start)
    : out_(out),
      what_(std::move(what)),
      every_items_(every_items),
      every_(every),
      start_(start),
      last_print_(start) {}

void Progress::add(uint64_t items, uint64_t bytes, Clock::time_point now,
                   const std::string& detail) {
  items_ += items;
  bytes_ += bytes;
  const bool by_items = every_items_ != 0 && items_ - items_at_last_print_ >= every_items_;
  const bool by_time = every_.count() != 0 && now - last_print_ >= every_;
  if (!by_items && !by_time) return;
  out_ << line(now, detail) << std::endl;  // flushed: someone may be watching
  last_print_ = now;
  items_at_last_print_ = items_;
}

std::string Progress::line(Clock::time_point now, const std::string& detail) const {
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double items_per_s = seconds > 0 ? double(items_) / seconds : 0;
  const double bytes_per_s = seconds > 0 ? double(bytes_) / seconds : 0;
  std::array<char, 64> rate{};
  std::snprintf(rate.data(), rate.size(), "%.1f s, %.0f messages/s, ", seconds, items_per_s);
  std::string text = what_ + ": " + std::to_string(items_) + " messages";
  if (!detail.empty()) text += " " + detail;
  text += ", " + format_bytes(bytes_) + " in " + rate.data() + format_bytes(uint64_t(bytes_per_s)) +
          "/s";
  return text;
}

}  // namespace popgate::admin
