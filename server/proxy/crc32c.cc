#include "server/proxy/crc32c.h"

#include <array>
#include <cstddef>

namespace popgate::proxy {
namespace {

// The Castagnoli polynomial 0x1EDC6F41, bit-reversed (CRC-32C is reflected).
constexpr uint32_t kPolynomialReflected = 0x82F63B78u;

constexpr std::array<uint32_t, 256> make_table() noexcept {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < table.size(); ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kPolynomialReflected : 0u);
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = make_table();

}  // namespace

uint32_t crc32c_update(uint32_t crc, std::string_view bytes) noexcept {
  for (const char c : bytes) {
    crc = (crc >> 8) ^ kTable[(crc ^ static_cast<uint8_t>(c)) & 0xFFu];
  }
  return crc;
}

}  // namespace popgate::proxy
