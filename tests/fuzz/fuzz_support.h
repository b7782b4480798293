// Shared by the fuzz targets: reading control bytes off the front of an
// input, cut points derived from the input, and the invariant check that
// turns a broken promise into a crash the fuzzer (or the replay test) sees.
//
// Everything is deterministic in the input: the same bytes always take the
// same path, so a saved crash replays exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

// An invariant of the code under test. On failure: what and where, then
// abort(), which libFuzzer records as a crash and saves the input for.
#define POPGATE_FUZZ_CHECK(cond, what)                                                     \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, what);                                                           \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

namespace popgate::fuzz {

// Takes control bytes from the front of the input; what is left is the data.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) noexcept
      : rest_(reinterpret_cast<const char*>(data), size) {}

  // The next control byte, or 0 once the input is used up.
  uint8_t byte() noexcept {
    if (rest_.empty()) return 0;
    const auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  uint32_t u32() noexcept {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | byte();
    return v;
  }
  [[nodiscard]] std::string_view rest() const noexcept { return rest_; }

 private:
  std::string_view rest_;
};

// A small PRNG (xorshift32) seeded from the input; never 0.
class Xorshift {
 public:
  explicit Xorshift(uint32_t seed) noexcept : state_(seed == 0 ? 0x9e3779b9U : seed) {}
  uint32_t next() noexcept {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }
  // Uniform enough in [0, n) for n > 0.
  uint32_t below(uint32_t n) noexcept { return next() % n; }

 private:
  uint32_t state_;
};

// Offsets (ascending, each in (0, size)) at which to cut `size` octets, from
// a seed: low two bits 0 = whole, 1 = one octet at a time, otherwise pieces
// of 1..(2 + (seed >> 2) % 96) octets chosen by a PRNG.
inline std::vector<size_t> derived_cuts(size_t size, uint32_t seed) {
  std::vector<size_t> cuts;
  switch (seed & 3U) {
    case 0:
      return cuts;
    case 1:
      for (size_t at = 1; at < size; ++at) cuts.push_back(at);
      return cuts;
    default:
      break;
  }
  const uint32_t piece_max = 2 + (seed >> 2) % 96;
  Xorshift rng(seed);
  for (size_t at = 1 + rng.below(piece_max); at < size; at += 1 + rng.below(piece_max)) {
    cuts.push_back(at);
  }
  return cuts;
}

// The pieces `cuts` makes of `data`.
inline std::vector<std::string_view> pieces(std::string_view data, const std::vector<size_t>& cuts) {
  std::vector<std::string_view> out;
  size_t from = 0;
  for (size_t cut : cuts) {
    out.push_back(data.substr(from, cut - from));
    from = cut;
  }
  out.push_back(data.substr(from));
  return out;
}

}  // namespace popgate::fuzz
