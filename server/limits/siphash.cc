#include "server/limits/siphash.h"

#include <bit>

namespace popgate::limits {
namespace {

uint64_t load_le64(const uint8_t* p) noexcept {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = value << 8 | p[i];
  return value;
}

struct State {
  uint64_t v0, v1, v2, v3;

  void round() noexcept {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }

  void absorb(uint64_t m) noexcept {
    v3 ^= m;
    round();  // 2 compression rounds
    round();
    v0 ^= m;
  }
};

}  // namespace

uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t* data, size_t size) noexcept {
  State s{0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1, 0x6c7967656e657261ULL ^ k0,
          0x7465646279746573ULL ^ k1};
  const size_t whole = size - size % 8;
  for (size_t i = 0; i < whole; i += 8) s.absorb(load_le64(data + i));
  // Last block: the remaining bytes, little-endian, with the length on top.
  uint64_t last = static_cast<uint64_t>(size) << 56;
  for (size_t i = size % 8; i > 0; --i) {
    last |= static_cast<uint64_t>(data[whole + i - 1]) << (8 * (i - 1));
  }
  s.absorb(last);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.round();  // 4 finalization rounds
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace popgate::limits
