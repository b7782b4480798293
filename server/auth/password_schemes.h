// Internal to popgate_auth: the scheme families password.cc dispatches to
// when they live in files of their own. Not for other modules.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "server/auth/digest.h"
#include "server/auth/password.h"

namespace popgate::auth::detail {

enum class SchemeStatus : uint8_t { kOk, kUnsupported, kMalformed };

// crypt(3) strings, as libxcrypt computes them (password_crypt.cc).
enum class CryptFamily : uint8_t {
  kAny,     // {CRYPT}: every method below plus $y$, $gy$ and $7$
  kDes,     // 13 characters, no prefix
  kMd5,     // $1$
  kSha256,  // $5$
  kSha512,  // $6$
  kBcrypt,  // $2a$ $2b$ $2y$ (and $2x$)
};
// Format and cost only, no hashing.
[[nodiscard]] SchemeStatus check_crypt(std::string_view hash, CryptFamily family) noexcept;
// check_crypt() first; then crypt_rn() and a constant-time comparison.
[[nodiscard]] VerifyResult verify_crypt(std::string_view hash, CryptFamily family,
                                        std::string_view password) noexcept;

// Dovecot's "{SCRAM-SHA-*}iterations,salt,StoredKey,ServerKey" without the
// scheme prefix (scram.cc).
inline constexpr size_t kScramSaltBytesMax = 64;
struct ScramKeys {
  HashAlg alg = HashAlg::kSha256;
  uint32_t iterations = 0;
  std::array<uint8_t, kScramSaltBytesMax> salt{};
  size_t salt_bytes = 0;
  std::array<uint8_t, kDigestBytesMax> stored_key{};
  std::array<uint8_t, kDigestBytesMax> server_key{};
};
[[nodiscard]] SchemeStatus parse_scram_keys(HashAlg alg, std::string_view encoded,
                                            ScramKeys* out) noexcept;
// Derives StoredKey from `password` and compares it in constant time.
[[nodiscard]] VerifyResult verify_scram_keys(const ScramKeys& keys,
                                             std::string_view password) noexcept;

}  // namespace popgate::auth::detail
