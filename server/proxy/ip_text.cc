#include "server/proxy/ip_text.h"

#include <cstddef>

namespace popgate::proxy {
namespace {

// More digits than any value we accept could need; bounds the arithmetic.
constexpr size_t kDecimalDigitsMax = 10;
constexpr size_t kHexGroupDigitsMax = 4;
constexpr size_t kIpv6Groups = 8;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads one group of 1..4 hex digits at the front of `text`; returns the
// digits used, or 0 when there is no valid group there.
size_t read_hex_group(std::string_view text, uint16_t* group) noexcept {
  size_t digits = 0;
  uint32_t value = 0;
  while (digits < text.size() && hex_value(text[digits]) >= 0) {
    if (digits == kHexGroupDigitsMax) return 0;  // a fifth digit: not a group
    value = value * 16 + static_cast<uint32_t>(hex_value(text[digits]));
    ++digits;
  }
  *group = static_cast<uint16_t>(value);
  return digits;
}

}  // namespace

std::optional<uint32_t> parse_decimal(std::string_view text, uint32_t max) noexcept {
  if (text.empty() || text.size() > kDecimalDigitsMax) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  uint64_t value = 0;
  for (const char c : text) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > max) return std::nullopt;
  return static_cast<uint32_t>(value);
}

std::optional<Ipv4Bytes> parse_ipv4(std::string_view text) noexcept {
  Ipv4Bytes out{};
  for (size_t i = 0; i < out.size(); ++i) {
    const size_t dot = text.find('.');
    const bool last = i + 1 == out.size();
    if (last != (dot == std::string_view::npos)) return std::nullopt;
    const std::optional<uint32_t> octet = parse_decimal(text.substr(0, dot), 255);
    if (!octet) return std::nullopt;
    out[i] = static_cast<uint8_t>(*octet);
    if (!last) text.remove_prefix(dot + 1);
  }
  return out;
}

std::optional<Ipv6Bytes> parse_ipv6(std::string_view text) noexcept {
  std::array<uint16_t, kIpv6Groups> groups{};
  size_t count = 0;           // groups written so far
  bool has_gap = false;      // seen "::"
  size_t gap = 0;             // groups written before the "::"
  size_t pos = 0;
  if (text.substr(0, 2) == "::") {
    has_gap = true;
    pos = 2;
  } else if (text.empty() || text[0] == ':') {
    return std::nullopt;
  }
  while (pos < text.size()) {
    const std::string_view rest = text.substr(pos);
    uint16_t group = 0;
    const size_t digits = read_hex_group(rest, &group);
    if (digits < rest.size() && rest[digits] == '.') {
      // Dotted IPv4 tail: the last two groups, and nothing after it.
      const std::optional<Ipv4Bytes> v4 = parse_ipv4(rest);
      if (!v4 || count + 2 > kIpv6Groups) return std::nullopt;
      groups[count++] = static_cast<uint16_t>((*v4)[0] << 8 | (*v4)[1]);
      groups[count++] = static_cast<uint16_t>((*v4)[2] << 8 | (*v4)[3]);
      pos = text.size();
      break;
    }
    if (digits == 0 || count == kIpv6Groups) return std::nullopt;
    groups[count++] = group;
    pos += digits;
    if (pos == text.size()) break;
    if (text[pos] != ':') return std::nullopt;
    ++pos;
    if (pos < text.size() && text[pos] == ':') {
      if (has_gap) return std::nullopt;  // a second "::"
      has_gap = true;
      gap = count;
      ++pos;
    } else if (pos == text.size()) {
      return std::nullopt;  // a single trailing ':'
    }
  }
  // Without "::" all eight groups are spelled out; with it, at least one is not.
  if (has_gap ? count == kIpv6Groups : count != kIpv6Groups) return std::nullopt;
  // Slide the groups after "::" to the end; the hole is zeroes.
  std::array<uint16_t, kIpv6Groups> full{};
  const size_t tail = has_gap ? count - gap : 0;
  for (size_t i = 0; i < count - tail; ++i) full[i] = groups[i];
  for (size_t i = 0; i < tail; ++i) full[kIpv6Groups - tail + i] = groups[count - tail + i];
  Ipv6Bytes out{};
  for (size_t i = 0; i < kIpv6Groups; ++i) {
    out[2 * i] = static_cast<uint8_t>(full[i] >> 8);
    out[2 * i + 1] = static_cast<uint8_t>(full[i] & 0xff);
  }
  return out;
}

}  // namespace popgate::proxy
