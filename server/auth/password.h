// Password hashes in Dovecot's "{SCHEME}encoded" form, so hashes imported from
// Dovecot verify as they are and ours can be exported back. New hashes are
// argon2id; the other schemes are verified only (imports).
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
// The same idea for the other schemes. Dovecot's defaults: PBKDF2 5000
// rounds, SCRAM 4096, bcrypt cost 5, sha-crypt 5000 rounds, yescrypt 16 MiB.
// At the caps a verification takes about a second of one core.
inline constexpr uint32_t kPbkdf2IterationsMax = 1'000'000;   // {PBKDF2}, {SCRAM-*}
inline constexpr uint32_t kBcryptCostMax = 15;                // $2b$: 2^15 rounds
inline constexpr uint32_t kShaCryptRoundsMax = 1'000'000;     // $5$ / $6$ rounds=
inline constexpr uint64_t kCryptMemoryBytesMax = 1ULL << 30;  // $y$ $gy$ $7$: 128*N*r*p
inline constexpr uint32_t kYescryptTimeMax = 8;               // $y$ t= (extra passes)
// A stored value longer than this is kMalformed (no scheme needs more).
inline constexpr size_t kStoredHashBytesMax = 1024;

// "{ARGON2ID}$argon2id$v=19$m=...,t=...,p=...$salt$hash" with a random
// 16-byte salt and a 32-byte hash. Throws std::runtime_error when the
// parameters are out of argon2's range or the system has no randomness.
[[nodiscard]] std::string hash_password(std::string_view password, const Argon2Params& params = {});

// Constant-time comparison of the derived key. Scheme names are
// case-insensitive, as in Dovecot:
//   {ARGON2ID} {ARGON2I}, and a bare "$argon2id$..." string
//   {SHA512-CRYPT} {SHA256-CRYPT} {BLF-CRYPT} {MD5-CRYPT} {DES-CRYPT}: crypt(3)
//       strings of that family ($6$ $5$ $2a/b/y$ $1$, 13-char DES)
//   {CRYPT}: any of those, or yescrypt ($y$, $gy$) and scrypt ($7$), as in
//       /etc/shadow. DES uses only the first 8 octets of the password.
//   {SHA} {SHA1} {SHA256} {SHA512} {PLAIN-MD5} {LDAP-MD5}: unsalted digests
//   {SSHA} {SSHA256} {SSHA512} {SMD5}: digest || salt
//       (digests are base64 unless the scheme ends in ".HEX"/".B64"/".BASE64";
//       without a suffix a length of twice the digest size means hex)
//   {MD5}: MD5-CRYPT when it starts with "$1$", else PLAIN-MD5
//   {PBKDF2}: "$1$salt$rounds$hex", PBKDF2-HMAC-SHA1, 20 octets
//   {SCRAM-SHA-1} {SCRAM-SHA-256}: "iterations,salt,StoredKey,ServerKey"
//   {PLAIN} {CLEARTEXT} {CLEAR}: the password itself (also ".B64"/".HEX")
// Costs above the caps above are kMalformed; any other "{SCHEME}" or bare
// string is kUnsupportedScheme.
[[nodiscard]] VerifyResult verify_password(std::string_view stored,
                                           std::string_view password) noexcept;

// Whether verify_password() would run for `stored`: a scheme listed above,
// well-formed, within the cost caps. Cheap (no KDF): for validating imports.
enum class HashCheck : uint8_t { kOk, kUnsupportedScheme, kMalformed };
[[nodiscard]] HashCheck check_password_hash(std::string_view stored) noexcept;
[[nodiscard]] bool is_supported_scheme(std::string_view stored) noexcept;

// A well-formed hash of a random password, for spending the same KDF time on
// unknown users as on known ones (no user enumeration by timing). Made with
// the default Argon2Params on first use (thread-safe), then fixed.
[[nodiscard]] const std::string& dummy_hash();

}  // namespace popgate::auth
