// Decoding of one complete PROXY v2 header (spec 2.2): addresses, TLVs, the
// nested SSL TLV and the CRC32C check. The leaf under ProxyParser: pure, no
// state. Re-checks the fixed part itself, so it stands alone in tests.
// Must not know: how the bytes were gathered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/proxy/proxy_protocol.h"

namespace popgate::proxy {

// Spec 2.2: the first 12 bytes of every v2 header; it holds a NUL, hence
// the explicit length.
inline constexpr std::string_view kProxyV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};

// Spec 2.2 address block sizes: two addresses, then two ports for IP.
inline constexpr size_t kProxyV2Inet4AddressBytes = 2 * 4 + 2 * 2;
inline constexpr size_t kProxyV2Inet6AddressBytes = 2 * 16 + 2 * 2;
inline constexpr size_t kProxyV2UnixAddressBytes = 2 * 108;

// Checks the fixed part's version/command byte (13th) and family/protocol
// byte (14th), and the total length; kNone when they are acceptable. The
// parser calls these as soon as each byte arrives, to refuse early.
[[nodiscard]] ProxyError check_v2_version_command(uint8_t version_command) noexcept;
[[nodiscard]] ProxyError check_v2_family(uint8_t family_protocol) noexcept;
[[nodiscard]] ProxyError check_v2_length(size_t header_bytes) noexcept;

// `header` is the whole header: the 16 fixed bytes and the length they
// announce. Fills *out (views into `header`) and returns kNone, or leaves
// *out empty and returns why the header is invalid.
[[nodiscard]] ProxyError decode_v2(std::string_view header, ProxyHeader* out) noexcept;

}  // namespace popgate::proxy
