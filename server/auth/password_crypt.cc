// crypt(3) strings through libxcrypt's crypt_rn() (thread-safe: the state
// lives in a caller buffer). The format and the cost are checked here first,
// so a hash asking for hours of work or gigabytes is refused unhashed.
#include <crypt.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

#include "server/auth/encoding.h"
#include "server/auth/password_schemes.h"

namespace popgate::auth::detail {
namespace {

constexpr size_t kDesHashChars = 13;
constexpr size_t kMd5SaltCharsMax = 8;
constexpr size_t kMd5HashChars = 22;
constexpr size_t kShaSaltCharsMax = 16;
constexpr size_t kSha256HashChars = 43;
constexpr size_t kSha512HashChars = 86;
constexpr size_t kBcryptChars = 60;  // "$2b$NN$" + 22 salt + 31 hash
constexpr uint32_t kBcryptCostMin = 4;
constexpr size_t kYescryptHashChars = 43;
constexpr uint32_t kYescryptNLog2Max = 40;  // far above any sane cost; keeps math in range

// The crypt alphabet "./0-9A-Za-z": value 0..63, or 64 when not in it.
uint32_t atoi64(char c) noexcept {
  if (c == '.') return 0;
  if (c == '/') return 1;
  if (c >= '0' && c <= '9') return uint32_t(c - '0') + 2;
  if (c >= 'A' && c <= 'Z') return uint32_t(c - 'A') + 12;
  if (c >= 'a' && c <= 'z') return uint32_t(c - 'a') + 38;
  return 64;
}

bool all_crypt64(std::string_view text) noexcept {
  for (const char c : text) {
    if (atoi64(c) > 63) return false;
  }
  return true;
}

// No '$', ':' or control characters: what a salt field may hold.
bool plain_salt(std::string_view salt) noexcept {
  for (const char c : salt) {
    if (c == '$' || c == ':' || static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return false;
  }
  return true;
}

// "salt$hash" with the hash `hash_chars` long and the salt at most
// `salt_max` characters.
bool salt_and_hash(std::string_view rest, size_t salt_max, size_t hash_chars) noexcept {
  const size_t dollar = rest.find('$');
  if (dollar == std::string_view::npos) return false;
  const std::string_view salt = rest.substr(0, dollar);
  const std::string_view hash = rest.substr(dollar + 1);
  return salt.size() <= salt_max && plain_salt(salt) && hash.size() == hash_chars &&
         all_crypt64(hash);
}

bool mul_capped(uint64_t& acc, uint64_t factor, uint64_t cap) noexcept {
  if (factor == 0 || acc > cap / factor) return false;
  acc *= factor;
  return acc <= cap;
}

// yescrypt's variable-length little number encoding (libxcrypt
// decode64_uint32): consumes from `text`.
std::optional<uint32_t> yescrypt_number(std::string_view& text, uint32_t min) noexcept {
  if (text.empty()) return std::nullopt;
  uint32_t c = atoi64(text.front());
  text.remove_prefix(1);
  if (c > 63) return std::nullopt;
  uint32_t start = 0;
  uint32_t end = 47;
  uint32_t chars = 1;
  uint32_t bits = 0;
  uint64_t value = min;
  while (c > end) {
    value += uint64_t(end + 1 - start) << bits;
    start = end + 1;
    end = start + (62 - end) / 2;
    ++chars;
    bits += 6;
  }
  value += uint64_t(c - start) << bits;
  while (--chars > 0) {
    if (text.empty()) return std::nullopt;
    c = atoi64(text.front());
    text.remove_prefix(1);
    if (c > 63) return std::nullopt;
    bits -= 6;
    value += uint64_t(c) << bits;
  }
  if (value > UINT32_MAX) return std::nullopt;
  return uint32_t(value);
}

// Fixed-width little-endian 6-bit groups (scrypt's $7$ r and p).
std::optional<uint32_t> fixed_number(std::string_view& text, size_t chars) noexcept {
  if (text.size() < chars) return std::nullopt;
  uint64_t value = 0;
  for (size_t i = 0; i < chars; ++i) {
    const uint32_t c = atoi64(text[i]);
    if (c > 63) return std::nullopt;
    value |= uint64_t(c) << (6 * i);
  }
  text.remove_prefix(chars);
  if (value > UINT32_MAX) return std::nullopt;
  return uint32_t(value);
}

bool memory_acceptable(uint32_t n_log2, uint32_t r, uint32_t p) noexcept {
  if (n_log2 < 1 || n_log2 > kYescryptNLog2Max || r == 0 || p == 0) return false;
  uint64_t bytes = 128;
  return mul_capped(bytes, uint64_t(1) << n_log2, kCryptMemoryBytesMax) &&
         mul_capped(bytes, r, kCryptMemoryBytesMax) && mul_capped(bytes, p, kCryptMemoryBytesMax);
}

// "$y$" / "$gy$" after the prefix: params '$' salt '$' hash.
SchemeStatus check_yescrypt(std::string_view rest) noexcept {
  const auto flavor = yescrypt_number(rest, 0);
  const auto n_log2 = yescrypt_number(rest, 1);
  const auto r = yescrypt_number(rest, 1);
  if (!flavor || !n_log2 || !r) return SchemeStatus::kMalformed;
  uint32_t p = 1;
  uint32_t t = 0;
  if (!rest.empty() && rest.front() != '$') {
    const auto have = yescrypt_number(rest, 1);
    // g (upgrades) and NROM need support we do not offer.
    if (!have || (*have & ~3U) != 0) return SchemeStatus::kMalformed;
    if (*have & 1) {
      const auto pp = yescrypt_number(rest, 2);
      if (!pp) return SchemeStatus::kMalformed;
      p = *pp;
    }
    if (*have & 2) {
      const auto tt = yescrypt_number(rest, 1);
      if (!tt) return SchemeStatus::kMalformed;
      t = *tt;
    }
  }
  if (!memory_acceptable(*n_log2, *r, p) || t > kYescryptTimeMax) return SchemeStatus::kMalformed;
  if (rest.empty() || rest.front() != '$') return SchemeStatus::kMalformed;
  rest.remove_prefix(1);
  const size_t dollar = rest.find('$');
  if (dollar == 0 || dollar == std::string_view::npos) return SchemeStatus::kMalformed;
  const std::string_view salt = rest.substr(0, dollar);
  const std::string_view hash = rest.substr(dollar + 1);
  return all_crypt64(salt) && hash.size() == kYescryptHashChars && all_crypt64(hash)
             ? SchemeStatus::kOk
             : SchemeStatus::kMalformed;
}

// "$7$" after the prefix: N_log2 (1 char), r (5), p (5), salt '$' hash.
SchemeStatus check_scrypt(std::string_view rest) noexcept {
  if (rest.empty()) return SchemeStatus::kMalformed;
  const uint32_t n_log2 = atoi64(rest.front());
  rest.remove_prefix(1);
  const auto r = fixed_number(rest, 5);
  const auto p = fixed_number(rest, 5);
  if (!r || !p || !memory_acceptable(n_log2, *r, *p)) return SchemeStatus::kMalformed;
  const size_t dollar = rest.rfind('$');
  if (dollar == std::string_view::npos) return SchemeStatus::kMalformed;
  const std::string_view salt = rest.substr(0, dollar);
  const std::string_view hash = rest.substr(dollar + 1);
  return plain_salt(salt) && hash.size() == kYescryptHashChars && all_crypt64(hash)
             ? SchemeStatus::kOk
             : SchemeStatus::kMalformed;
}

// "[rounds=N$]salt$hash" after "$5$" / "$6$".
SchemeStatus check_sha_crypt(std::string_view rest, size_t hash_chars) noexcept {
  constexpr std::string_view kRounds = "rounds=";
  if (rest.starts_with(kRounds)) {
    rest.remove_prefix(kRounds.size());
    const size_t dollar = rest.find('$');
    if (dollar == std::string_view::npos || dollar == 0 || dollar > 10) {
      return SchemeStatus::kMalformed;
    }
    uint64_t rounds = 0;
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + dollar, rounds);
    if (ec != std::errc{} || end != rest.data() + dollar || rounds > kShaCryptRoundsMax) {
      return SchemeStatus::kMalformed;
    }
    rest.remove_prefix(dollar + 1);
  }
  return salt_and_hash(rest, kShaSaltCharsMax, hash_chars) ? SchemeStatus::kOk
                                                           : SchemeStatus::kMalformed;
}

// "$2b$NN$" + 53 characters.
SchemeStatus check_bcrypt(std::string_view hash) noexcept {
  if (hash.size() != kBcryptChars || hash[6] != '$') return SchemeStatus::kMalformed;
  const char d1 = hash[4];
  const char d2 = hash[5];
  if (d1 < '0' || d1 > '9' || d2 < '0' || d2 > '9') return SchemeStatus::kMalformed;
  const uint32_t cost = uint32_t(d1 - '0') * 10 + uint32_t(d2 - '0');
  if (cost < kBcryptCostMin || cost > kBcryptCostMax) return SchemeStatus::kMalformed;
  return all_crypt64(hash.substr(7)) ? SchemeStatus::kOk : SchemeStatus::kMalformed;
}

CryptFamily family_of(std::string_view hash) noexcept {
  if (hash.starts_with("$1$")) return CryptFamily::kMd5;
  if (hash.starts_with("$5$")) return CryptFamily::kSha256;
  if (hash.starts_with("$6$")) return CryptFamily::kSha512;
  if (hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$") ||
      hash.starts_with("$2x$")) {
    return CryptFamily::kBcrypt;
  }
  if (!hash.starts_with('$') && !hash.starts_with('_')) return CryptFamily::kDes;
  return CryptFamily::kAny;  // "$y$", "$7$", or a method we refuse
}

}  // namespace

SchemeStatus check_crypt(std::string_view hash, CryptFamily family) noexcept {
  if (hash.size() >= CRYPT_OUTPUT_SIZE) return SchemeStatus::kMalformed;
  const CryptFamily found = family_of(hash);
  if (family != CryptFamily::kAny && found != family) return SchemeStatus::kMalformed;
  switch (found) {
    case CryptFamily::kDes:
      return hash.size() == kDesHashChars && all_crypt64(hash) ? SchemeStatus::kOk
                                                               : SchemeStatus::kMalformed;
    case CryptFamily::kMd5:
      return salt_and_hash(hash.substr(3), kMd5SaltCharsMax, kMd5HashChars)
                 ? SchemeStatus::kOk
                 : SchemeStatus::kMalformed;
    case CryptFamily::kSha256:
      return check_sha_crypt(hash.substr(3), kSha256HashChars);
    case CryptFamily::kSha512:
      return check_sha_crypt(hash.substr(3), kSha512HashChars);
    case CryptFamily::kBcrypt:
      return check_bcrypt(hash);
    case CryptFamily::kAny:
      break;
  }
  if (hash.starts_with("$y$")) return check_yescrypt(hash.substr(3));
  if (hash.starts_with("$gy$")) return check_yescrypt(hash.substr(4));
  if (hash.starts_with("$7$")) return check_scrypt(hash.substr(3));
  return SchemeStatus::kUnsupported;  // $md5$, $sha1$, $3$, _ (BSDi), ...
}

VerifyResult verify_crypt(std::string_view hash, CryptFamily family,
                          std::string_view password) noexcept {
  switch (check_crypt(hash, family)) {
    case SchemeStatus::kOk:
      break;
    case SchemeStatus::kUnsupported:
      return VerifyResult::kUnsupportedScheme;
    case SchemeStatus::kMalformed:
      return VerifyResult::kMalformed;
  }
  // crypt() sees C strings: a password with a NUL (or past libxcrypt's
  // limit) cannot be the one hashed.
  if (password.find('\0') != std::string_view::npos ||
      password.size() >= CRYPT_MAX_PASSPHRASE_SIZE) {
    return VerifyResult::kMismatch;
  }
  char phrase[CRYPT_MAX_PASSPHRASE_SIZE];
  std::memcpy(phrase, password.data(), password.size());
  phrase[password.size()] = '\0';
  char setting[CRYPT_OUTPUT_SIZE];
  std::memcpy(setting, hash.data(), hash.size());  // checked: no NUL, short enough
  setting[hash.size()] = '\0';

  crypt_data data;  // 32 KiB on the worker's stack; zeroed as crypt_rn wants
  std::memset(&data, 0, sizeof data);
  errno = 0;
  const char* out = crypt_rn(phrase, setting, &data, int(sizeof data));
  VerifyResult result = VerifyResult::kMismatch;
  if (out != nullptr) {
    result = ct_equal(std::string_view(out), hash) ? VerifyResult::kMatch : VerifyResult::kMismatch;
  } else if (errno == EINVAL) {
    result = VerifyResult::kMalformed;  // out of memory etc.: deny, kMismatch
  }
  wipe(std::span<char>(phrase, sizeof phrase));
  wipe(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&data), sizeof data));
  return result;
}

}  // namespace popgate::auth::detail
