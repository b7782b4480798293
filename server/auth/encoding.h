// Text encodings of bytes as password schemes, SASL and JOSE use them:
// base64 (RFC 4648 section 4), base64url without padding (section 5, as in
// JWS) and hex; and a constant-time comparison for secrets.
//
// Decoders are strict: a character outside the alphabet, misplaced padding
// or non-zero leftover bits is an error, never skipped. Everything with a
// span is noexcept and does not allocate; the std::string forms are for
// tests and ops commands.
// Must not know: which scheme or mechanism the bytes belong to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace popgate::auth {

// Bytes as a string_view of chars (same object, no copy).
[[nodiscard]] inline std::string_view as_chars(std::span<const uint8_t> bytes) noexcept {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

[[nodiscard]] constexpr size_t base64_encoded_size(size_t bytes) noexcept {
  return (bytes + 2) / 3 * 4;
}
// An upper bound on what `chars` characters of base64 decode to.
[[nodiscard]] constexpr size_t base64_decoded_size_max(size_t chars) noexcept {
  return chars / 4 * 3 + 3;
}

// Padded base64 of `in` into `out`; returns its length, or 0 when `out` is
// shorter than base64_encoded_size(in.size()) (and `in` is not empty).
[[nodiscard]] size_t base64_encode(std::string_view in, std::span<char> out) noexcept;
[[nodiscard]] std::string base64_encode(std::string_view in);

// Standard alphabet; the '=' padding may be present (then it must be right)
// or left out. Returns the decoded length, or nullopt when `in` is not
// base64 or `out` is too small.
[[nodiscard]] std::optional<size_t> base64_decode(std::string_view in,
                                                  std::span<uint8_t> out) noexcept;
// URL-safe alphabet ('-', '_'), no padding allowed.
[[nodiscard]] std::optional<size_t> base64url_decode(std::string_view in,
                                                     std::span<uint8_t> out) noexcept;
[[nodiscard]] std::string base64url_encode(std::string_view in);
// Convenience for ops and tests: nullopt when not valid.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view in);
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view in);

// Hex digits of either case, an even number of them.
[[nodiscard]] std::optional<size_t> hex_decode(std::string_view in,
                                               std::span<uint8_t> out) noexcept;
// Lowercase; returns 0 when `out` is shorter than 2 * in.size().
[[nodiscard]] size_t hex_encode(std::string_view in, std::span<char> out) noexcept;
[[nodiscard]] std::string hex_encode(std::string_view in);

// True when equal. The time taken depends on the lengths only, never on the
// contents, so use it for every comparison involving a secret. (Lengths are
// compared first and in the open: callers compare fixed-size digests.)
[[nodiscard]] bool ct_equal(std::string_view a, std::string_view b) noexcept;
[[nodiscard]] inline bool ct_equal(std::span<const uint8_t> a,
                                   std::span<const uint8_t> b) noexcept {
  return ct_equal(as_chars(a), as_chars(b));
}

// Overwrites `bytes` so that the compiler cannot drop the stores.
void wipe(std::span<char> bytes) noexcept;
void wipe(std::span<uint8_t> bytes) noexcept;

}  // namespace popgate::auth
