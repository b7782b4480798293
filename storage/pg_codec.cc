#include "storage/pg_codec.h"

#include <charconv>

namespace popgate::storage {
namespace {

// Longest decimal int64: "-9223372036854775808".
constexpr std::size_t kInt8DecimalBytesMax = 20;

uint64_t load_be(const char* bytes, std::size_t width) noexcept {
  uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) {
    v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return v;
}

void store_be(uint64_t v, char* out, std::size_t width) noexcept {
  for (std::size_t i = width; i-- > 0;) {
    out[i] = static_cast<char>(static_cast<uint8_t>(v & 0xffU));
    v >>= 8;
  }
}

}  // namespace

void encode_int8(int64_t value, char* out) noexcept {
  store_be(static_cast<uint64_t>(value), out, kInt8Bytes);
}

void encode_int4(int32_t value, char* out) noexcept {
  store_be(static_cast<uint32_t>(value), out, kInt4Bytes);
}

bool decode_int8(const char* bytes, int length, int64_t& out) noexcept {
  if (length != static_cast<int>(kInt8Bytes)) return false;
  out = static_cast<int64_t>(load_be(bytes, kInt8Bytes));
  return true;
}

bool decode_int4(const char* bytes, int length, int32_t& out) noexcept {
  if (length != static_cast<int>(kInt4Bytes)) return false;
  out = static_cast<int32_t>(static_cast<uint32_t>(load_be(bytes, kInt4Bytes)));
  return true;
}

void format_int8_array(std::span<const int64_t> ids, std::string& out) noexcept {
  out.clear();
  out.reserve(2 + ids.size() * (kInt8DecimalBytesMax + 1));
  out.push_back('{');
  char digits[kInt8DecimalBytesMax];
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i != 0) out.push_back(',');
    // Cannot fail: the buffer fits every int64.
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, ids[i]);
    (void)ec;
    out.append(digits, end);
  }
  out.push_back('}');
}

bool is_valid_utf8(std::string_view bytes) noexcept {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    const uint8_t b = *p;
    if (b < 0x80) {
      ++p;
      continue;
    }
    std::size_t extra = 0;
    uint32_t min_code = 0;
    uint32_t code = 0;
    if ((b & 0xe0U) == 0xc0U) {
      extra = 1;
      min_code = 0x80;
      code = b & 0x1fU;
    } else if ((b & 0xf0U) == 0xe0U) {
      extra = 2;
      min_code = 0x800;
      code = b & 0x0fU;
    } else if ((b & 0xf8U) == 0xf0U) {
      extra = 3;
      min_code = 0x10000;
      code = b & 0x07U;
    } else {
      return false;  // stray continuation byte or 0xf8..0xff
    }
    if (static_cast<std::size_t>(end - p) <= extra) return false;
    for (std::size_t i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0U) != 0x80U) return false;
      code = (code << 6) | (p[i] & 0x3fU);
    }
    if (code < min_code || code > 0x10ffffU || (code >= 0xd800U && code <= 0xdfffU)) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

}  // namespace popgate::storage
