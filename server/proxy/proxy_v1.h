// Decoding of one complete PROXY v1 line (spec 2.1), the leaf under
// ProxyParser: pure, no state. The parser has already found the CRLF within
// kProxyV1LineBytesMax and checked that every byte is printable ASCII.
// Must not know: how the line was gathered.
#pragma once

#include <string_view>

#include "server/proxy/proxy_protocol.h"

namespace popgate::proxy {

// Spec 2.1 says "PROXY" then exactly one space; the space is taken as part
// of the signature so that "PROXY\r\n" fails on its sixth byte.
inline constexpr std::string_view kProxyV1Signature = "PROXY ";

// `line` is the whole line, "PROXY " through CRLF. Fills *out (views into
// `line`) and returns kNone, or leaves *out empty and returns why the line
// is invalid.
[[nodiscard]] ProxyError decode_v1(std::string_view line, ProxyHeader* out) noexcept;

}  // namespace popgate::proxy
