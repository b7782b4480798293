// Password hashes in Dovecot's "{SCHEME}encoded" form, so hashes imported from
// Dovecot verify as they are and ours can be exported back.
//
// Every function here is CPU-heavy on purpose (a KDF) and blocking: call it
// only from a KdfPool worker or an ops command, never from a shard thread.
// Must not know: sessions, storage, rings.
#pragma once

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

// "{ARGON2ID}$argon2id$v=19$m=...,t=...,p=...$salt$hash" with a random salt.
[[nodiscard]] std::string hash_password(std::string_view password,
                                        const Argon2Params& params = {});

// Constant-time comparison of the derived key. Accepts "{ARGON2ID}",
// "{ARGON2I}" and a bare "$argon2id$..." string.
[[nodiscard]] VerifyResult verify_password(std::string_view stored,
                                           std::string_view password) noexcept;

// A well-formed hash of a random password, for spending the same KDF time on
// unknown users as on known ones (no user enumeration by timing).
[[nodiscard]] const std::string& dummy_hash();

}  // namespace popgate::auth
