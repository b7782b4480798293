// Strict parsers for textual IP addresses, prefix lengths and ports, over
// string_views (no NUL terminator, no copies, no locale). Shared by the PROXY
// v1 line and by CIDR lists, which both want the same rules: no leading
// zeroes in decimal fields (they read as octal elsewhere), no sign, no
// surrounding blanks, nothing left over.
// Must not know: where the text comes from or what the address is for.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace popgate::proxy {

using Ipv4Bytes = std::array<uint8_t, 4>;    // network order
using Ipv6Bytes = std::array<uint8_t, 16>;   // network order

// "a.b.c.d": exactly four decimal fields 0..255, no leading zeroes ("0" is
// fine, "01" is not).
[[nodiscard]] std::optional<Ipv4Bytes> parse_ipv4(std::string_view text) noexcept;

// RFC 4291 section 2.2 text: eight groups of 1 to 4 hex digits (either
// case), at most one "::" standing for one or more zero groups, and an
// optional dotted IPv4 tail in the last 32 bits ("::ffff:192.0.2.1"), which
// is what inet_ntop prints for mapped addresses. No zone ("%eth0"), no
// brackets.
[[nodiscard]] std::optional<Ipv6Bytes> parse_ipv6(std::string_view text) noexcept;

// Decimal 0..max without leading zeroes or sign; at most 10 digits are read,
// so no overflow whatever the input.
[[nodiscard]] std::optional<uint32_t> parse_decimal(std::string_view text, uint32_t max) noexcept;

// A TCP or UDP port: decimal 0..65535.
[[nodiscard]] inline std::optional<uint16_t> parse_port(std::string_view text) noexcept {
  const std::optional<uint32_t> value = parse_decimal(text, 65535);
  if (!value) return std::nullopt;
  return static_cast<uint16_t>(*value);
}

}  // namespace popgate::proxy
