#include "server/auth/encoding.h"

#include <openssl/crypto.h>

#include <array>

namespace popgate::auth {
namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kHex[] = "0123456789abcdef";
constexpr uint8_t kInvalid = 0xff;

using DecodeTable = std::array<uint8_t, 256>;

constexpr DecodeTable make_table(const char* alphabet) {
  DecodeTable table{};
  for (auto& v : table) v = kInvalid;
  for (uint8_t i = 0; i < 64; ++i) table[static_cast<uint8_t>(alphabet[i])] = i;
  return table;
}
constexpr DecodeTable kBase64Table = make_table(kBase64);
constexpr DecodeTable kBase64UrlTable = make_table(kBase64Url);

size_t encode_with(const char* alphabet, bool pad, std::string_view in,
                   std::span<char> out) noexcept {
  const size_t need = pad ? base64_encoded_size(in.size()) : (in.size() * 4 + 2) / 3;
  if (out.size() < need) return 0;
  size_t o = 0;
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = alphabet[(v >> 6) & 63];
    out[o++] = alphabet[v & 63];
  }
  const size_t rest = in.size() - i;
  if (rest > 0) {
    const uint32_t v = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    if (rest == 2) out[o++] = alphabet[(v >> 6) & 63];
    if (pad) {
      if (rest == 1) out[o++] = '=';
      out[o++] = '=';
    }
  }
  return o;
}

// Decodes groups of four characters; `padding_allowed` lets a final
// "xx==" / "xxx=" group through. Leftover bits must be zero (one canonical
// encoding per byte string).
std::optional<size_t> decode_with(const DecodeTable& table, bool padding_allowed,
                                  std::string_view in, std::span<uint8_t> out) noexcept {
  size_t chars = in.size();
  if (padding_allowed && chars % 4 == 0 && chars > 0) {
    if (in[chars - 1] == '=') --chars;
    if (in[chars - 1] == '=') --chars;
  }
  if (chars % 4 == 1) return std::nullopt;
  const size_t bytes = chars / 4 * 3 + (chars % 4 == 0 ? 0 : chars % 4 - 1);
  if (bytes > out.size()) return std::nullopt;
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < chars; ++i) {
    const uint8_t v = table[static_cast<uint8_t>(in[i])];
    if (v == kInvalid) return std::nullopt;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = static_cast<uint8_t>(acc >> bits);
      acc &= (1U << bits) - 1;
    }
  }
  if (acc != 0) return std::nullopt;  // non-zero leftover bits
  return o;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

size_t base64_encode(std::string_view in, std::span<char> out) noexcept {
  return encode_with(kBase64, true, in, out);
}

std::string base64_encode(std::string_view in) {
  std::string out(base64_encoded_size(in.size()), '\0');
  out.resize(base64_encode(in, out));
  return out;
}

std::string base64url_encode(std::string_view in) {
  std::string out(base64_encoded_size(in.size()), '\0');
  out.resize(encode_with(kBase64Url, false, in, out));
  return out;
}

std::optional<size_t> base64_decode(std::string_view in, std::span<uint8_t> out) noexcept {
  return decode_with(kBase64Table, true, in, out);
}

std::optional<size_t> base64url_decode(std::string_view in, std::span<uint8_t> out) noexcept {
  return decode_with(kBase64UrlTable, false, in, out);
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out(base64_decoded_size_max(in.size()), '\0');
  const auto n =
      base64_decode(in, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  if (!n) return std::nullopt;
  out.resize(*n);
  return out;
}

std::optional<std::string> base64url_decode(std::string_view in) {
  std::string out(base64_decoded_size_max(in.size()), '\0');
  const auto n =
      base64url_decode(in, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  if (!n) return std::nullopt;
  out.resize(*n);
  return out;
}

std::optional<size_t> hex_decode(std::string_view in, std::span<uint8_t> out) noexcept {
  if (in.size() % 2 != 0 || in.size() / 2 > out.size()) return std::nullopt;
  for (size_t i = 0; i < in.size(); i += 2) {
    const int hi = hex_value(in[i]);
    const int lo = hex_value(in[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i / 2] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return in.size() / 2;
}

size_t hex_encode(std::string_view in, std::span<char> out) noexcept {
  if (out.size() < in.size() * 2) return 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const auto b = static_cast<uint8_t>(in[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 15];
  }
  return in.size() * 2;
}

std::string hex_encode(std::string_view in) {
  std::string out(in.size() * 2, '\0');
  (void)hex_encode(in, out);
  return out;
}

bool ct_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void wipe(std::span<char> bytes) noexcept { OPENSSL_cleanse(bytes.data(), bytes.size()); }
void wipe(std::span<uint8_t> bytes) noexcept { OPENSSL_cleanse(bytes.data(), bytes.size()); }

}  // namespace popgate::auth
