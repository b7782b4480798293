// Base64 (RFC 4648, standard alphabet, padded) for SASL exchanges
// (RFC 5034). Strict decoding: no whitespace, no missing or misplaced
// padding, no bits left over; anything else is an error, not a guess.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace popgate::pop3 {

[[nodiscard]] constexpr size_t base64_encoded_size(size_t n) noexcept { return (n + 2) / 3 * 4; }
void base64_encode(std::string_view in, std::string& out);
// Returns false (out unspecified) for malformed input.
[[nodiscard]] bool base64_decode(std::string_view in, std::string& out);

}  // namespace popgate::pop3
