// Small text rules the SASL mechanisms and password schemes share: ASCII
// case-insensitive comparison, and the saslname encoding of RFC 5801
// section 4 (used by SCRAM, RFC 5802, and OAUTHBEARER's GS2 header, RFC
// 7628), decoded into a FixedString without allocating.
// Must not know: which mechanism or scheme asks.
#pragma once

#include <cstddef>
#include <string_view>

#include "server/auth/fixed_string.h"

namespace popgate::auth {

[[nodiscard]] constexpr bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// saslname: "=2C" -> ',', "=3D" -> '=' (hex digits in either case), no
// other '=' and no control characters. False when `in` breaks those rules or
// does not fit `out`; `out` may then hold a prefix. An empty `in` is an
// empty name: callers for which that is an error check it themselves.
template <size_t N>
[[nodiscard]] bool decode_saslname(std::string_view in, FixedString<N>& out) noexcept {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '=') {
      if (i + 2 >= in.size()) return false;
      const std::string_view code = in.substr(i + 1, 2);
      if (iequals_ascii(code, "2C")) {
        c = ',';
      } else if (iequals_ascii(code, "3D")) {
        c = '=';
      } else {
        return false;
      }
      i += 2;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return false;
    }
    if (!out.push_back(c)) return false;
  }
  return true;
}

}  // namespace popgate::auth
