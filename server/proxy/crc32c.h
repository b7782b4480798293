// CRC-32C (Castagnoli, RFC 4960 appendix B), the checksum of the PROXY v2
// PP2_TYPE_CRC32C TLV. Byte-at-a-time with a table built at compile time:
// a header is at most a few KiB and is checked once per connection, so
// hardware CRC instructions would buy nothing worth a CPU dispatch.
// Must not know: where the bytes come from.
#pragma once

#include <cstdint>
#include <string_view>

namespace popgate::proxy {

// Running CRC: start from kCrc32cInit, feed pieces in order with
// crc32c_update, finish with crc32c_final. Pieces may be empty.
inline constexpr uint32_t kCrc32cInit = 0xFFFFFFFFu;
[[nodiscard]] uint32_t crc32c_update(uint32_t crc, std::string_view bytes) noexcept;
[[nodiscard]] inline uint32_t crc32c_final(uint32_t crc) noexcept { return crc ^ 0xFFFFFFFFu; }

// The CRC of one buffer.
[[nodiscard]] inline uint32_t crc32c(std::string_view bytes) noexcept {
  return crc32c_final(crc32c_update(kCrc32cInit, bytes));
}

}  // namespace popgate::proxy
