#include "server/auth/apop.h"

#include <array>
#include <charconv>

#include "server/auth/digest.h"
#include "server/auth/encoding.h"

namespace popgate::auth {
namespace {

constexpr size_t kHostnameBytesMax = 253;
constexpr size_t kMd5Bytes = 16;

// Letters, digits, '-' and '.': what may follow '@' in an RFC 822 msg-id
// without quoting.
bool dns_name(std::string_view host) noexcept {
  if (host.empty() || host.size() > kHostnameBytesMax || host.front() == '.' ||
      host.back() == '.') {
    return false;
  }
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string_view make_apop_banner(const ApopBannerInputs& in, std::span<char> out) noexcept {
  if (out.size() < kApopBannerBytesMax) return {};
  char* p = out.data();
  char* const end = out.data() + out.size();
  *p++ = '<';
  const uint64_t numbers[] = {in.pid, in.connection_serial, in.random, in.clock};
  for (size_t i = 0; i < 4; ++i) {
    if (i > 0) *p++ = '.';
    p = std::to_chars(p, end, numbers[i]).ptr;  // room is guaranteed above
  }
  *p++ = '@';
  const std::string_view host = dns_name(in.hostname) ? in.hostname : "localhost";
  for (const char c : host) *p++ = c;
  *p++ = '>';
  return {out.data(), size_t(p - out.data())};
}

bool apop_matches(std::string_view banner, std::string_view secret,
                  std::string_view hex_digest) noexcept {
  std::array<uint8_t, kMd5Bytes> expected{};
  if (secret.empty() || hex_digest.size() != 2 * kMd5Bytes ||
      hex_decode(hex_digest, expected) != kMd5Bytes) {
    return false;
  }
  std::array<uint8_t, kMd5Bytes> computed{};
  if (!digest(HashAlg::kMd5, {banner, secret}, computed)) return false;
  return ct_equal(computed, expected);
}

}  // namespace popgate::auth
