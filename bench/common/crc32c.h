// CRC-32C over message bodies, fast enough that verifying every retrieved
// octet never makes the load generator the bottleneck: the SSE4.2 crc32
// instruction when the CPU has it (about 8 octets a cycle), a table
// otherwise. Streaming: pieces may be split anywhere.
// Must not know: POP3, sockets.
#pragma once

#include <cstdint>
#include <string_view>

namespace popgate::bench {

inline constexpr uint32_t kCrc32cInit = 0xFFFFFFFFu;
[[nodiscard]] uint32_t crc32c_update(uint32_t crc, std::string_view bytes) noexcept;
[[nodiscard]] inline uint32_t crc32c_final(uint32_t crc) noexcept { return crc ^ 0xFFFFFFFFu; }
[[nodiscard]] inline uint32_t crc32c(std::string_view bytes) noexcept {
  return crc32c_final(crc32c_update(kCrc32cInit, bytes));
}

}  // namespace popgate::bench
