// Dovecot-style "{SCHEME}encoded" password hashes on top of libargon2.
// The password never leaves the argon2 call: nothing here copies, logs or
// keeps it.
#include "server/auth/password.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <optional>
#include <stdexcept>

namespace popgate::auth {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
constexpr std::string_view kArgon2idPrefix = "$argon2id$";

bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

struct Parsed {
  argon2_type type;
  std::string_view encoded;  // "$argon2...$v=..$m=..,t=..,p=..$salt$hash"
};

enum class SchemeStatus : uint8_t { kOk, kUnsupported, kMalformed };

// Splits "{SCHEME}encoded" (or a bare "$argon2id$...") into type + encoding.
SchemeStatus parse_scheme(std::string_view stored, Parsed& out) noexcept {
  if (stored.starts_with(kArgon2idPrefix)) {
    out = {Argon2_id, stored};
    return SchemeStatus::kOk;
  }
  if (!stored.starts_with('{')) return SchemeStatus::kUnsupported;
  const size_t close = stored.find('}');
  if (close == std::string_view::npos) return SchemeStatus::kMalformed;
  const std::string_view scheme = stored.substr(1, close - 1);
  const std::string_view encoded = stored.substr(close + 1);
  if (iequals_ascii(scheme, "ARGON2ID")) {
    out = {Argon2_id, encoded};
  } else if (iequals_ascii(scheme, "ARGON2I")) {
    out = {Argon2_i, encoded};
  } else {
    return SchemeStatus::kUnsupported;
  }
  return SchemeStatus::kOk;
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
  Parsed parsed{};
  switch (parse_scheme(stored, parsed)) {
    case SchemeStatus::kOk:
      break;
    case SchemeStatus::kUnsupported:
      return VerifyResult::kUnsupportedScheme;
    case SchemeStatus::kMalformed:
      return VerifyResult::kMalformed;
  }
  if (!cost_acceptable(parsed.encoded)) return VerifyResult::kMalformed;
  // argon2_verify wants a NUL-terminated encoding; an embedded NUL would
  // silently shorten it, so refuse that outright.
  if (parsed.encoded.find('\0') != std::string_view::npos) return VerifyResult::kMalformed;
  const std::string encoded(parsed.encoded);
  return translate_verify(
      argon2_verify(encoded.c_str(), password.data(), password.size(), parsed.type));
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
