// Password hashes in Dovecot's "{SCHEME}encoded" form, so hashes imported from
// Dovecot verify as they are and ours can be exported back.
//
// Every function here is CPU-heavy on purpose (a KDF) and blocking: call it
// only from a KdfPool worker or an ops command, never from a shard thread.
// Must not know: sessions, storage, rings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace popgate::auth {

enum class VerifyResult : uint8_t {
  kMatch,
  kMismatch,
  kUnsupportedScheme,  // "{FOO}" we do not implement
  kMalformed,          // a scheme we know, but the encoded part is broken
};

// Cost parameters for new hashes. Defaults follow OWASP's argon2id minimum
// (19 MiB, 2 passes, 1 lane); operators can raise them in config.
struct Argon2Params {
  uint32_t memory_kib = 19 * 1024;
  uint32_t passes = 2;
  uint32_t lanes = 1;
};

// Most a stored hash may ask of a verification. A hash over these limits is
// kMalformed: one bad import must not be able to pin a worker for minutes or
// allocate gigabytes. Dovecot's defaults (64 MiB, 3 passes, 1 lane) are far
// below them.
inline constexpr uint32_t kVerifyMemoryKibMax = 1024 * 1024;  // 1 GiB
inline constexpr uint32_t kVerifyPassesMax = 64;
inline constexpr uint32_t kVerifyLanesMax = 64;

// "{ARGON2ID}$argon2id$v=19$m=...,t=...,p=...$salt$hash" with a random
// 16-byte salt and a 32-byte hash. Throws std::runtime_error when the
// parameters are out of argon2's range or the system has no randomness.
[[nodiscard]] std::string hash_password(std::string_view password, const Argon2Params& params = {});

// Constant-time comparison of the derived key. Accepts "{ARGON2ID}",
// "{ARGON2I}" (scheme names case-insensitive) and a bare "$argon2id$..."
// string. Any other "{SCHEME}" or bare string is kUnsupportedScheme.
[[nodiscard]] VerifyResult verify_password(std::string_view stored,
                                           std::string_view password) noexcept;

// A well-formed hash of a random password, for spending the same KDF time on
// unknown users as on known ones (no user enumeration by timing). Made with
// the default Argon2Params on first use (thread-safe), then fixed.
[[nodiscard]] const std::string& dummy_hash();

}  // namespace popgate::auth
