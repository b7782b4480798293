// Dovecot-style "{SCHEME}encoded" password hashes: the scheme table, the
// digest, PBKDF2 and PLAIN families, and argon2 (libargon2). crypt(3)
// strings are in password_crypt.cc, SCRAM keys in scram.cc. The password
// is never copied beyond the stack of one call, logged or kept.
#include "server/auth/password.h"
#include "server/auth/sasl_text.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <stdexcept>

#include "server/auth/digest.h"
#include "server/auth/encoding.h"
#include "server/auth/password_schemes.h"

namespace popgate::auth {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
constexpr std::string_view kArgon2idPrefix = "$argon2id$";

using detail::CryptFamily;
using detail::SchemeStatus;

enum class Kind : uint8_t {
  kArgon2id,
  kArgon2i,
  kCrypt,
  kDigest,        // H(password)
  kSaltedDigest,  // H(password || salt) || salt
  kMd5,           // {MD5}: MD5-CRYPT or PLAIN-MD5
  kPbkdf2,
  kScram,
  kPlain,
};
enum class Encoding : uint8_t { kNone, kBase64, kHex };

struct Scheme {
  std::string_view name;
  Kind kind;
  Encoding encoding = Encoding::kNone;  // default, when the name has no suffix
  HashAlg alg = HashAlg::kSha256;
  CryptFamily crypt = CryptFamily::kAny;
};

constexpr Scheme kSchemes[] = {
    {"ARGON2ID", Kind::kArgon2id},
    {"ARGON2I", Kind::kArgon2i},
    {"SHA512-CRYPT", Kind::kCrypt, Encoding::kNone, HashAlg::kSha512, CryptFamily::kSha512},
    {"SHA256-CRYPT", Kind::kCrypt, Encoding::kNone, HashAlg::kSha256, CryptFamily::kSha256},
    {"BLF-CRYPT", Kind::kCrypt, Encoding::kNone, HashAlg::kSha256, CryptFamily::kBcrypt},
    {"MD5-CRYPT", Kind::kCrypt, Encoding::kNone, HashAlg::kMd5, CryptFamily::kMd5},
    {"DES-CRYPT", Kind::kCrypt, Encoding::kNone, HashAlg::kMd5, CryptFamily::kDes},
    {"CRYPT", Kind::kCrypt, Encoding::kNone, HashAlg::kSha256, CryptFamily::kAny},
    {"SHA", Kind::kDigest, Encoding::kBase64, HashAlg::kSha1},
    {"SHA1", Kind::kDigest, Encoding::kBase64, HashAlg::kSha1},
    {"SHA256", Kind::kDigest, Encoding::kBase64, HashAlg::kSha256},
    {"SHA512", Kind::kDigest, Encoding::kBase64, HashAlg::kSha512},
    {"PLAIN-MD5", Kind::kDigest, Encoding::kHex, HashAlg::kMd5},
    {"LDAP-MD5", Kind::kDigest, Encoding::kBase64, HashAlg::kMd5},
    {"SSHA", Kind::kSaltedDigest, Encoding::kBase64, HashAlg::kSha1},
    {"SSHA256", Kind::kSaltedDigest, Encoding::kBase64, HashAlg::kSha256},
    {"SSHA512", Kind::kSaltedDigest, Encoding::kBase64, HashAlg::kSha512},
    {"SMD5", Kind::kSaltedDigest, Encoding::kBase64, HashAlg::kMd5},
    {"MD5", Kind::kMd5},
    {"PBKDF2", Kind::kPbkdf2, Encoding::kNone, HashAlg::kSha1},
    {"SCRAM-SHA-1", Kind::kScram, Encoding::kNone, HashAlg::kSha1},
    {"SCRAM-SHA-256", Kind::kScram, Encoding::kNone, HashAlg::kSha256},
    {"PLAIN", Kind::kPlain},
    {"CLEARTEXT", Kind::kPlain},
    {"CLEAR", Kind::kPlain},
};

constexpr const Scheme* kBareArgon2id = &kSchemes[0];

struct Parsed {
  const Scheme* scheme = nullptr;
  Encoding encoding = Encoding::kNone;
  bool encoding_given = false;  // ".HEX" / ".B64" / ".BASE64" suffix
  std::string_view encoded;     // after the "}"
};

SchemeStatus parse_scheme(std::string_view stored, Parsed& out) noexcept {
  if (stored.size() > kStoredHashBytesMax) return SchemeStatus::kMalformed;
  if (stored.starts_with(kArgon2idPrefix)) {
    out = {kBareArgon2id, Encoding::kNone, false, stored};
    return SchemeStatus::kOk;
  }
  if (!stored.starts_with('{')) return SchemeStatus::kUnsupported;
  const size_t close = stored.find('}');
  if (close == std::string_view::npos) return SchemeStatus::kMalformed;
  std::string_view name = stored.substr(1, close - 1);
  out.encoded = stored.substr(close + 1);
  out.encoding_given = false;
  const size_t dot = name.find('.');
  if (dot != std::string_view::npos) {
    const std::string_view suffix = name.substr(dot + 1);
    name = name.substr(0, dot);
    if (iequals_ascii(suffix, "HEX")) {
      out.encoding = Encoding::kHex;
    } else if (iequals_ascii(suffix, "B64") || iequals_ascii(suffix, "BASE64")) {
      out.encoding = Encoding::kBase64;
    } else {
      return SchemeStatus::kUnsupported;
    }
    out.encoding_given = true;
  }
  for (const Scheme& scheme : kSchemes) {
    if (!iequals_ascii(name, scheme.name)) continue;
    out.scheme = &scheme;
    if (!out.encoding_given) out.encoding = scheme.encoding;
    return SchemeStatus::kOk;
  }
  return SchemeStatus::kUnsupported;
}

// Room for the longest binary value (kStoredHashBytesMax of text).
using RawBuffer = std::array<uint8_t, kStoredHashBytesMax>;

// Dovecot's password_decode(): without a suffix, a fixed-size value whose
// text is twice its size is hex (base64 if that fails), otherwise base64.
std::optional<size_t> decode_value(const Parsed& p, size_t fixed_bytes, RawBuffer& raw) noexcept {
  Encoding encoding = p.encoding;
  bool guessed = false;
  if (!p.encoding_given && fixed_bytes != 0 && encoding != Encoding::kNone) {
    encoding = p.encoded.size() == fixed_bytes * 2 ? Encoding::kHex : Encoding::kBase64;
    guessed = true;
  }
  std::optional<size_t> n;
  switch (encoding) {
    case Encoding::kNone:
      std::copy(p.encoded.begin(), p.encoded.end(), raw.begin());
      n = p.encoded.size();
      break;
    case Encoding::kHex:
      n = hex_decode(p.encoded, raw);
      if (n || !guessed) break;
      [[fallthrough]];
    case Encoding::kBase64:
      n = base64_decode(p.encoded, raw);
      break;
  }
  if (n && fixed_bytes != 0 && *n != fixed_bytes) return std::nullopt;
  return n;
}

VerifyResult verify_digest(const Parsed& p, std::string_view password, bool check_only) noexcept {
  const HashAlg alg = p.scheme->alg;
  const size_t n = digest_bytes(alg);
  const bool salted = p.scheme->kind == Kind::kSaltedDigest;
  RawBuffer raw{};
  const auto raw_bytes = decode_value(p, salted ? 0 : n, raw);
  if (!raw_bytes || (salted && *raw_bytes <= n)) return VerifyResult::kMalformed;
  if (check_only) return VerifyResult::kMatch;
  const std::string_view salt = salted ? as_chars({raw.data() + n, *raw_bytes - n}) : "";
  std::array<uint8_t, kDigestBytesMax> computed{};
  if (!digest(alg, {password, salt}, computed)) return VerifyResult::kMismatch;
  return ct_equal(std::span<const uint8_t>(computed.data(), n), {raw.data(), n})
             ? VerifyResult::kMatch
             : VerifyResult::kMismatch;
}

VerifyResult verify_plain(const Parsed& p, std::string_view password, bool check_only) noexcept {
  RawBuffer raw{};
  const auto raw_bytes = decode_value(p, 0, raw);
  if (!raw_bytes) return VerifyResult::kMalformed;
  if (check_only) return VerifyResult::kMatch;
  // Compare digests so that neither the contents nor the lengths show in
  // the time taken.
  std::array<uint8_t, kDigestBytesMax> a{};
  std::array<uint8_t, kDigestBytesMax> b{};
  const bool ok = digest(HashAlg::kSha256, {as_chars({raw.data(), *raw_bytes})}, a) &&
                  digest(HashAlg::kSha256, {password}, b);
  wipe(raw);
  return ok && ct_equal(a, b) ? VerifyResult::kMatch : VerifyResult::kMismatch;
}

// Dovecot's PBKDF2: "$1$salt$rounds$hex(20 octets)", PBKDF2-HMAC-SHA1 over
// the salt text as it is.
VerifyResult verify_pbkdf2(std::string_view encoded, std::string_view password,
                           bool check_only) noexcept {
  constexpr size_t kKeyBytes = 20;
  if (!encoded.starts_with("$1$")) return VerifyResult::kMalformed;
  encoded.remove_prefix(3);
  const size_t d1 = encoded.find('$');
  const size_t d2 = d1 == std::string_view::npos ? d1 : encoded.find('$', d1 + 1);
  if (d2 == std::string_view::npos) return VerifyResult::kMalformed;
  const std::string_view salt = encoded.substr(0, d1);
  const std::string_view rounds_text = encoded.substr(d1 + 1, d2 - d1 - 1);
  const std::string_view hex = encoded.substr(d2 + 1);
  uint32_t rounds = 0;
  const auto [end, ec] =
      std::from_chars(rounds_text.data(), rounds_text.data() + rounds_text.size(), rounds);
  std::array<uint8_t, kKeyBytes> expected{};
  if (ec != std::errc{} || end != rounds_text.data() + rounds_text.size() || rounds == 0 ||
      rounds > kPbkdf2IterationsMax || hex.size() != 2 * kKeyBytes || !hex_decode(hex, expected)) {
    return VerifyResult::kMalformed;
  }
  if (check_only) return VerifyResult::kMatch;
  std::array<uint8_t, kKeyBytes> computed{};
  if (!pbkdf2_hmac(HashAlg::kSha1, password, salt, rounds, computed)) {
    return VerifyResult::kMismatch;
  }
  return ct_equal(computed, expected) ? VerifyResult::kMatch : VerifyResult::kMismatch;
}

VerifyResult verify_scram(const Parsed& p, std::string_view password, bool check_only) noexcept {
  detail::ScramKeys keys;
  if (detail::parse_scram_keys(p.scheme->alg, p.encoded, &keys) != SchemeStatus::kOk) {
    return VerifyResult::kMalformed;
  }
  if (check_only) return VerifyResult::kMatch;
  return detail::verify_scram_keys(keys, password);
}

VerifyResult verify_crypt(std::string_view hash, CryptFamily family, std::string_view password,
                          bool check_only) noexcept {
  if (!check_only) return detail::verify_crypt(hash, family, password);
  switch (detail::check_crypt(hash, family)) {
    case SchemeStatus::kOk:
      return VerifyResult::kMatch;
    case SchemeStatus::kUnsupported:
      return VerifyResult::kUnsupportedScheme;
    case SchemeStatus::kMalformed:
      break;
  }
  return VerifyResult::kMalformed;
}

// The number after `key` ("m=", "t=", "p=") in the parameter field.
std::optional<uint64_t> cost_field(std::string_view encoded, std::string_view key) noexcept {
  size_t at = encoded.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  at += key.size();
  uint64_t value = 0;
  const char* first = encoded.data() + at;
  const char* last = encoded.data() + encoded.size();
  const auto [end, ec] = std::from_chars(first, last, value);
  if (ec != std::errc{} || end == first) return std::nullopt;
  return value;
}

// True when the hash asks for no more than we are willing to spend.
bool cost_acceptable(std::string_view encoded) noexcept {
  const auto memory_kib = cost_field(encoded, "$m=");
  const auto passes = cost_field(encoded, ",t=");
  const auto lanes = cost_field(encoded, ",p=");
  return memory_kib && passes && lanes && *memory_kib <= kVerifyMemoryKibMax &&
         *passes <= kVerifyPassesMax && *lanes <= kVerifyLanesMax;
}

VerifyResult translate_verify(int rc) noexcept {
  switch (rc) {
    case ARGON2_OK:
      return VerifyResult::kMatch;
    case ARGON2_VERIFY_MISMATCH:
      return VerifyResult::kMismatch;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
    case ARGON2_THREAD_FAIL:
      // The hash may be fine; we could not compute it. Deny, never admit.
      return VerifyResult::kMismatch;
    default:
      return VerifyResult::kMalformed;  // decoding, lengths, parameters
  }
}

// "$argon2id$v=19$m=..,t=..,p=..$salt$hash" of the variant the scheme names.
bool argon2_well_formed(std::string_view encoded, argon2_type type) noexcept {
  const std::string_view prefix = type == Argon2_id ? "$argon2id$" : "$argon2i$";
  if (!encoded.starts_with(prefix)) return false;
  size_t dollars = 0;
  for (const char c : encoded) dollars += c == '$' ? 1 : 0;
  const size_t last = encoded.rfind('$');
  const size_t salt_at = encoded.rfind('$', last - 1);
  RawBuffer raw{};
  return dollars == 5 && base64_decode(encoded.substr(last + 1), raw).value_or(0) > 0 &&
         base64_decode(encoded.substr(salt_at + 1, last - salt_at - 1), raw).value_or(0) > 0;
}

VerifyResult verify_argon2(std::string_view encoded, argon2_type type, std::string_view password,
                           bool check_only) noexcept {
  // argon2_verify wants a NUL-terminated encoding; an embedded NUL would
  // silently shorten it, so refuse that outright.
  if (!cost_acceptable(encoded) || encoded.find('\0') != std::string_view::npos) {
    return VerifyResult::kMalformed;
  }
  if (check_only) {
    return argon2_well_formed(encoded, type) ? VerifyResult::kMatch : VerifyResult::kMalformed;
  }
  std::array<char, kStoredHashBytesMax + 1> text{};  // parse_scheme bounds the size
  std::copy(encoded.begin(), encoded.end(), text.begin());
  return translate_verify(argon2_verify(text.data(), password.data(), password.size(), type));
}

VerifyResult dispatch(const Parsed& p, std::string_view password, bool check_only) noexcept {
  switch (p.scheme->kind) {
    case Kind::kArgon2id:
      return verify_argon2(p.encoded, Argon2_id, password, check_only);
    case Kind::kArgon2i:
      return verify_argon2(p.encoded, Argon2_i, password, check_only);
    case Kind::kCrypt:
      return verify_crypt(p.encoded, p.scheme->crypt, password, check_only);
    case Kind::kDigest:
    case Kind::kSaltedDigest:
      return verify_digest(p, password, check_only);
    case Kind::kMd5: {
      if (p.encoded.starts_with("$1$")) {
        return verify_crypt(p.encoded, CryptFamily::kMd5, password, check_only);
      }
      static constexpr Scheme kPlainMd5{"PLAIN-MD5", Kind::kDigest, Encoding::kHex, HashAlg::kMd5};
      Parsed plain_md5 = p;
      plain_md5.scheme = &kPlainMd5;
      plain_md5.encoding = Encoding::kHex;
      return verify_digest(plain_md5, password, check_only);
    }
    case Kind::kPbkdf2:
      return verify_pbkdf2(p.encoded, password, check_only);
    case Kind::kScram:
      return verify_scram(p, password, check_only);
    case Kind::kPlain:
      return verify_plain(p, password, check_only);
  }
  return VerifyResult::kUnsupportedScheme;
}

// verify_password() and, with check_only, is_supported_scheme(): every
// check that needs no KDF, then (unless check_only) the KDF. check_only
// answers kMatch for "would verify".
VerifyResult verify_or_check(std::string_view stored, std::string_view password,
                             bool check_only) noexcept {
  Parsed p{};
  switch (parse_scheme(stored, p)) {
    case SchemeStatus::kOk:
      break;
    case SchemeStatus::kUnsupported:
      return VerifyResult::kUnsupportedScheme;
    case SchemeStatus::kMalformed:
      return VerifyResult::kMalformed;
  }
  // A suffix on a text scheme ("{BLF-CRYPT.HEX}", "{PLAIN.B64}"): decode
  // first, then go on as if it had been written plainly.
  RawBuffer text{};
  if (p.encoding_given && p.scheme->encoding == Encoding::kNone) {
    const auto n = decode_value(p, 0, text);
    if (!n) return VerifyResult::kMalformed;
    p.encoded = as_chars({text.data(), *n});
    p.encoding = Encoding::kNone;
    p.encoding_given = false;
  }
  const VerifyResult result = dispatch(p, password, check_only);
  wipe(text);  // may have held a plaintext password
  return result;
}

}  // namespace

std::string hash_password(std::string_view password, const Argon2Params& params) {
  std::array<unsigned char, kSaltBytes> salt{};
  if (RAND_bytes(salt.data(), int(salt.size())) != 1) {
    throw std::runtime_error("hash_password: RAND_bytes failed");
  }
  const size_t encoded_len = argon2_encodedlen(params.passes, params.memory_kib, params.lanes,
                                               kSaltBytes, kHashBytes, Argon2_id);
  std::string encoded(encoded_len, '\0');
  const int rc = argon2id_hash_encoded(params.passes, params.memory_kib, params.lanes,
                                       password.data(), password.size(), salt.data(), salt.size(),
                                       kHashBytes, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    throw std::runtime_error(std::string("hash_password: ") + argon2_error_message(rc));
  }
  encoded.resize(encoded.find('\0'));  // encoded_len counts the terminator
  return "{ARGON2ID}" + encoded;
}

VerifyResult verify_password(std::string_view stored, std::string_view password) noexcept {
  return verify_or_check(stored, password, false);
}

HashCheck check_password_hash(std::string_view stored) noexcept {
  switch (verify_or_check(stored, {}, true)) {
    case VerifyResult::kMatch:
      return HashCheck::kOk;
    case VerifyResult::kUnsupportedScheme:
      return HashCheck::kUnsupportedScheme;
    case VerifyResult::kMismatch:  // not produced when only checking
    case VerifyResult::kMalformed:
      break;
  }
  return HashCheck::kMalformed;
}

bool is_supported_scheme(std::string_view stored) noexcept {
  return check_password_hash(stored) == HashCheck::kOk;
}

const std::string& dummy_hash() {
  static const std::string hash = [] {
    std::array<unsigned char, 16> random{};
    if (RAND_bytes(random.data(), int(random.size())) != 1) {
      throw std::runtime_error("dummy_hash: RAND_bytes failed");
    }
    std::string made = hash_password(
        std::string_view(reinterpret_cast<const char*>(random.data()), random.size()));
    OPENSSL_cleanse(random.data(), random.size());
    return made;
  }();
  return hash;
}

}  // namespace popgate::auth
