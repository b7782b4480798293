#include "ops/admin/units.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <limits>

namespace popgate::admin {

std::optional<int64_t> parse_byte_size(std::string_view text) {
  static constexpr std::string_view kSuffixes = "KMGT";  // 2^10, 2^20, 2^30, 2^40
  int shift = 0;
  if (!text.empty()) {
    const char suffix =
        text.back() >= 'a' && text.back() <= 'z' ? char(text.back() - 32) : text.back();
    if (const size_t at = kSuffixes.find(suffix); at != std::string_view::npos) {
      shift = 10 * int(at + 1);
      text.remove_suffix(1);
    }
  }
  int64_t value = 0;
  const char* first = text.data();
  const char* last = first + text.size();
  const auto [end, ec] = std::from_chars(first, last, value);
  if (first == last || ec != std::errc{} || end != last || value < 0) return std::nullopt;
  if (value > (std::numeric_limits<int64_t>::max() >> shift)) return std::nullopt;
  return value << shift;
}

std::string format_bytes(uint64_t bytes) {
  static constexpr std::array<const char*, 6> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = double(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.1f %s", value, kUnits[unit]);
  return text.data();
}

}  // namespace popgate::admin
