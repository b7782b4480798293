// PostgreSQL wire codecs for the few types popgate exchanges in binary form:
// int4 and int8 (big-endian two's complement), text and bytea (raw bytes),
// plus the text form of a bigint[] parameter ("{1,2,3}").
//
// Pure functions over bytes, unit-tested without a server.
// Must not know: libpq, connections, requests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace popgate::storage {

inline constexpr std::size_t kInt4Bytes = 4;
inline constexpr std::size_t kInt8Bytes = 8;

// Writes `value` in network byte order into out[0..8) / out[0..4).
void encode_int8(int64_t value, char* out) noexcept;
void encode_int4(int32_t value, char* out) noexcept;

// Reads a binary-format column value. False when the length is not the
// type's width (a schema or format mismatch), leaving `out` untouched.
[[nodiscard]] bool decode_int8(const char* bytes, int length, int64_t& out) noexcept;
[[nodiscard]] bool decode_int4(const char* bytes, int length, int32_t& out) noexcept;

// Replaces `out` with the array literal for `ids`, e.g. "{1,-2,3}" or "{}".
// Keeps out's capacity, so a reused string stops allocating once warm.
void format_int8_array(std::span<const int64_t> ids, std::string& out) noexcept;

// True when `bytes` is well-formed UTF-8 (no overlongs, no surrogates, at most
// U+10FFFF). PostgreSQL rejects anything else in a text parameter with an
// error, so text that a peer controls is checked before it is sent.
[[nodiscard]] bool is_valid_utf8(std::string_view bytes) noexcept;

}  // namespace popgate::storage
