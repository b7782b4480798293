// Helpers for the limit-table tests: a fake clock, distinct keys, and keys
// that land in one chosen stripe (to fill it on purpose).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "server/limits/keys.h"
#include "server/limits/striped_table.h"

namespace popgate::limits::testing {

// A fixed, reproducible secret: tests must not depend on the process seed.
inline KeyHasher test_hasher() { return KeyHasher(0x0123456789abcdefULL, 0xfedcba9876543210ULL); }

// A steady_clock time far from the epoch, advanced by hand.
class FakeClock {
 public:
  [[nodiscard]] TimePoint now() const { return now_; }
  void advance(std::chrono::nanoseconds step) { now_ += step; }

 private:
  TimePoint now_ = TimePoint{} + std::chrono::hours(1000);
};

// ::ffff:10.x.y.z for i < 2^24, else distinct IPv6 /64s.
inline AddressKey address(uint32_t i) {
  AddressKey key;
  key.bytes[10] = 0xff;
  key.bytes[11] = 0xff;
  key.bytes[12] = 10;
  key.bytes[13] = static_cast<uint8_t>(i >> 16);
  key.bytes[14] = static_cast<uint8_t>(i >> 8);
  key.bytes[15] = static_cast<uint8_t>(i);
  return key;
}

// `count` distinct keys from make(0), make(1), ... whose stripe is `stripe`.
template <typename Key, typename Table, typename Make>
std::vector<Key> keys_in_stripe(const Table& table, size_t stripe, size_t count, Make make) {
  std::vector<Key> keys;
  for (uint32_t i = 0; keys.size() < count; ++i) {
    const Key key = make(i);
    if (table.stripe_of_for_test(key) == stripe) keys.push_back(key);
  }
  return keys;
}

}  // namespace popgate::limits::testing
