// UTF-8 well-formedness (RFC 3629): no overlong forms, no surrogates,
// nothing above U+10FFFF. Used for user names and passwords in UTF8 mode
// (RFC 6856).
#pragma once

#include <string_view>

namespace popgate::pop3 {

[[nodiscard]] bool is_valid_utf8(std::string_view s) noexcept;
[[nodiscard]] bool is_ascii(std::string_view s) noexcept;

}  // namespace popgate::pop3
