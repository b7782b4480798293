// Hashes, HMAC and PBKDF2 over OpenSSL's EVP interface, for the password
// schemes, SCRAM, APOP and the verification cache. Inputs are byte strings
// given in pieces (no concatenation copies); outputs go to caller buffers.
//
// Every function returns false only when OpenSSL itself fails (out of
// memory, a broken provider): callers deny the login then, never admit.
// OpenSSL may allocate small contexts inside; nothing here keeps state.
// Must not know: encodings, schemes, mechanisms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

namespace popgate::auth {

enum class HashAlg : uint8_t { kMd5, kSha1, kSha256, kSha384, kSha512 };

inline constexpr size_t kDigestBytesMax = 64;  // SHA-512

[[nodiscard]] constexpr size_t digest_bytes(HashAlg alg) noexcept {
  switch (alg) {
    case HashAlg::kMd5:
      return 16;
    case HashAlg::kSha1:
      return 20;
    case HashAlg::kSha256:
      return 32;
    case HashAlg::kSha384:
      return 48;
    case HashAlg::kSha512:
      return 64;
  }
  return 0;
}

// H(parts[0] || parts[1] || ...) into out[0, digest_bytes(alg)).
[[nodiscard]] bool digest(HashAlg alg, std::initializer_list<std::string_view> parts,
                          std::span<uint8_t> out) noexcept;

// HMAC-H(key, parts[0] || parts[1] || ...) into out[0, digest_bytes(alg)).
[[nodiscard]] bool hmac(HashAlg alg, std::string_view key,
                        std::initializer_list<std::string_view> parts,
                        std::span<uint8_t> out) noexcept;

// PBKDF2-HMAC-H (RFC 8018) filling all of `out`. iterations >= 1; the
// caller enforces its own maximum before calling (this is the slow part).
[[nodiscard]] bool pbkdf2_hmac(HashAlg alg, std::string_view password, std::string_view salt,
                               uint32_t iterations, std::span<uint8_t> out) noexcept;

}  // namespace popgate::auth
