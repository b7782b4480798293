#include "server/auth/scram.h"
#include "server/auth/sasl_text.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "server/auth/digest.h"
#include "server/auth/encoding.h"
#include "server/auth/password.h"
#include "server/auth/password_schemes.h"
#include "server/auth/random.h"

namespace popgate::auth {
namespace {

constexpr std::string_view kScramSha256Prefix = "{SCRAM-SHA-256}";
constexpr size_t kFakeSaltBytes = kScramSaltBytesDefault;

// RFC 5802 "printable": 0x21..0x7E except ','.
bool printable(std::string_view text) noexcept {
  for (const char c : text) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

// The next ','-separated field of `rest` (consumed, with its comma).
std::string_view next_field(std::string_view& rest) noexcept {
  const size_t comma = rest.find(',');
  const std::string_view field = rest.substr(0, comma);
  rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
  return field;
}

// Splits off the field before the next ','; false when there is none.
bool take_until_comma(std::string_view& rest, std::string_view& field) noexcept {
  const size_t comma = rest.find(',');
  if (comma == std::string_view::npos) return false;
  field = rest.substr(0, comma);
  rest.remove_prefix(comma + 1);
  return true;
}

// SCRAM's names are never empty (RFC 5802 section 7: saslname is 1*(...)).
template <size_t N>
bool decode_scram_name(std::string_view in, FixedString<N>& out) noexcept {
  out.clear();
  return !in.empty() && decode_saslname(in, out);
}

// Optional trailing extensions: each "X=value", X a letter, value not empty.
bool valid_extensions(std::string_view rest) noexcept {
  while (!rest.empty()) {
    const std::string_view ext = next_field(rest);
    const bool alpha =
        !ext.empty() && ((ext[0] >= 'a' && ext[0] <= 'z') || (ext[0] >= 'A' && ext[0] <= 'Z'));
    if (!alpha || ext.size() < 3 || ext[1] != '=') return false;
  }
  return true;
}

class SystemNonceSource final : public ScramNonceSource {
 public:
  size_t fill_nonce(std::span<char> out) noexcept override {
    std::array<uint8_t, kScramServerNonceRandomBytes> random{};
    if (!random_bytes(random)) return 0;
    return base64_encode(as_chars(random), out);
  }
};

}  // namespace

namespace detail {

SchemeStatus parse_scram_keys(HashAlg alg, std::string_view encoded, ScramKeys* out) noexcept {
  ScramKeys keys;
  keys.alg = alg;
  const std::string_view iterations = next_field(encoded);
  const std::string_view salt = next_field(encoded);
  const std::string_view stored = next_field(encoded);
  const std::string_view server = encoded;
  if (server.find(',') != std::string_view::npos) return SchemeStatus::kMalformed;
  const auto [end, ec] =
      std::from_chars(iterations.data(), iterations.data() + iterations.size(), keys.iterations);
  if (ec != std::errc{} || end != iterations.data() + iterations.size() || keys.iterations == 0 ||
      keys.iterations > kPbkdf2IterationsMax) {
    return SchemeStatus::kMalformed;
  }
  const auto salt_bytes = base64_decode(salt, keys.salt);
  const size_t key_bytes = digest_bytes(alg);
  const auto stored_bytes = base64_decode(stored, keys.stored_key);
  const auto server_bytes = base64_decode(server, keys.server_key);
  if (!salt_bytes || *salt_bytes == 0 || stored_bytes != key_bytes || server_bytes != key_bytes) {
    return SchemeStatus::kMalformed;
  }
  keys.salt_bytes = *salt_bytes;
  *out = keys;
  return SchemeStatus::kOk;
}

VerifyResult verify_scram_keys(const ScramKeys& keys, std::string_view password) noexcept {
  const size_t n = digest_bytes(keys.alg);
  std::array<uint8_t, kDigestBytesMax> salted{};
  std::array<uint8_t, kDigestBytesMax> client_key{};
  std::array<uint8_t, kDigestBytesMax> stored{};
  const bool ok = pbkdf2_hmac(keys.alg, password, as_chars({keys.salt.data(), keys.salt_bytes}),
                              keys.iterations, std::span<uint8_t>(salted.data(), n)) &&
                  hmac(keys.alg, as_chars({salted.data(), n}), {"Client Key"}, client_key) &&
                  digest(keys.alg, {as_chars({client_key.data(), n})}, stored);
  const bool match =
      ok && ct_equal(std::span<const uint8_t>(stored.data(), n), {keys.stored_key.data(), n});
  wipe(salted);
  wipe(client_key);
  return match ? VerifyResult::kMatch : VerifyResult::kMismatch;
}

}  // namespace detail

std::optional<ScramCredential> parse_scram_credential(std::string_view text) noexcept {
  if (text.size() < kScramSha256Prefix.size() ||
      !iequals_ascii(text.substr(0, kScramSha256Prefix.size()), kScramSha256Prefix)) {
    return std::nullopt;
  }
  detail::ScramKeys keys;
  if (detail::parse_scram_keys(HashAlg::kSha256, text.substr(kScramSha256Prefix.size()), &keys) !=
      detail::SchemeStatus::kOk) {
    return std::nullopt;
  }
  ScramCredential c;
  c.iterations = keys.iterations;
  c.salt = keys.salt;
  c.salt_bytes = keys.salt_bytes;
  std::copy_n(keys.stored_key.begin(), kScramKeyBytes, c.stored_key.begin());
  std::copy_n(keys.server_key.begin(), kScramKeyBytes, c.server_key.begin());
  return c;
}

std::string format_scram_credential(const ScramCredential& c) {
  return std::string(kScramSha256Prefix) + std::to_string(c.iterations) + "," +
         base64_encode(as_chars(c.salt_view())) + "," + base64_encode(as_chars(c.stored_key)) +
         "," + base64_encode(as_chars(c.server_key));
}

ScramCredential derive_scram_credential(std::string_view password, uint32_t iterations,
                                        std::span<const uint8_t> salt) {
  if (iterations == 0 || iterations > kPbkdf2IterationsMax) {
    throw std::invalid_argument("SCRAM iterations must be 1.." +
                                std::to_string(kPbkdf2IterationsMax));
  }
  if (salt.size() > kScramSaltBytesMaxStored) {
    throw std::invalid_argument("SCRAM salt longer than 64 octets");
  }
  ScramCredential c;
  c.iterations = iterations;
  if (salt.empty()) {
    c.salt_bytes = kScramSaltBytesDefault;
    if (!random_bytes({c.salt.data(), c.salt_bytes})) {
      throw std::runtime_error("derive_scram_credential: no randomness");
    }
  } else {
    std::copy(salt.begin(), salt.end(), c.salt.begin());
    c.salt_bytes = salt.size();
  }
  std::array<uint8_t, kScramKeyBytes> salted{};
  std::array<uint8_t, kScramKeyBytes> client_key{};
  const bool ok =
      pbkdf2_hmac(HashAlg::kSha256, password, as_chars(c.salt_view()), iterations, salted) &&
      hmac(HashAlg::kSha256, as_chars(salted), {"Client Key"}, client_key) &&
      digest(HashAlg::kSha256, {as_chars(client_key)}, c.stored_key) &&
      hmac(HashAlg::kSha256, as_chars(salted), {"Server Key"}, c.server_key);
  wipe(salted);
  wipe(client_key);
  if (!ok) throw std::runtime_error("derive_scram_credential: OpenSSL failed");
  return c;
}

std::string make_scram_credential(std::string_view password, uint32_t iterations,
                                  std::span<const uint8_t> salt) {
  return format_scram_credential(derive_scram_credential(password, iterations, salt));
}

std::string_view scram_error_name(ScramError error) noexcept {
  switch (error) {
    case ScramError::kNone:
      return "";
    case ScramError::kInvalidEncoding:
      return "invalid-encoding";
    case ScramError::kExtensionsNotSupported:
      return "extensions-not-supported";
    case ScramError::kChannelBindingNotSupported:
      return "channel-binding-not-supported";
    case ScramError::kChannelBindingsDontMatch:
      return "channel-bindings-dont-match";
    case ScramError::kInvalidUsernameEncoding:
      return "invalid-username-encoding";
    case ScramError::kInvalidProof:
      return "invalid-proof";
    case ScramError::kOtherError:
      return "other-error";
  }
  return "other-error";
}

ScramNonceSource& system_scram_nonce_source() noexcept {
  static SystemNonceSource source;
  return source;
}

ScramServer::ScramServer(const ScramServerOptions& options) noexcept
    : nonces_(options.nonces != nullptr ? options.nonces : &system_scram_nonce_source()),
      fake_salt_key_(options.fake_salt_key.empty() ? std::span<const uint8_t>(process_secret())
                                                   : options.fake_salt_key),
      fake_iterations_(options.fake_iterations) {}

ScramServer::~ScramServer() {
  wipe(credential_.stored_key);
  wipe(credential_.server_key);
  client_first_bare_.wipe();
  gs2_header_.wipe();
  server_first_.wipe();
  server_final_.wipe();
}

ScramError ScramServer::fail(ScramError error) noexcept {
  state_ = State::kFailed;
  wipe(credential_.stored_key);
  wipe(credential_.server_key);
  server_final_.clear();
  (void)server_final_.append("e=");
  (void)server_final_.append(scram_error_name(error));
  return error;
}

ScramError ScramServer::handle_client_first(std::string_view message) noexcept {
  if (state_ != State::kWaitClientFirst) return fail(ScramError::kOtherError);
  if (message.size() > kScramMessageBytesMax) return fail(ScramError::kInvalidEncoding);
  // gs2-header = ("n" / "y" / "p=" cb-name) "," [ "a=" saslname ] ","
  std::string_view rest = message;
  std::string_view flag;
  std::string_view authzid;
  if (message.starts_with("p=")) return fail(ScramError::kChannelBindingNotSupported);
  if (!take_until_comma(rest, flag) || (flag != "n" && flag != "y") ||
      !take_until_comma(rest, authzid)) {
    return fail(ScramError::kInvalidEncoding);
  }
  authzid_.clear();
  if (!authzid.empty()) {
    if (!authzid.starts_with("a=")) return fail(ScramError::kInvalidEncoding);
    if (!decode_scram_name(authzid.substr(2), authzid_)) {
      return fail(ScramError::kInvalidUsernameEncoding);
    }
  }
  const std::string_view bare = rest;
  (void)gs2_header_.assign(message.substr(0, message.size() - bare.size()));
  (void)client_first_bare_.assign(bare);
  // client-first-message-bare = [ "m=" ... "," ] "n=" saslname "," "r=" nonce ["," ext]
  if (rest.starts_with("m=")) return fail(ScramError::kExtensionsNotSupported);
  std::string_view user;
  if (!take_until_comma(rest, user) || !user.starts_with("n=")) {
    return fail(ScramError::kInvalidEncoding);
  }
  if (!decode_scram_name(user.substr(2), username_)) {
    return fail(ScramError::kInvalidUsernameEncoding);
  }
  const std::string_view nonce = next_field(rest);
  if (!nonce.starts_with("r=")) return fail(ScramError::kInvalidEncoding);
  const std::string_view client_nonce = nonce.substr(2);
  if (client_nonce.empty() || client_nonce.size() > kScramClientNonceBytesMax ||
      !printable(client_nonce) || !valid_extensions(rest) ||
      (rest.empty() && !bare.empty() && bare.back() == ',')) {
    return fail(ScramError::kInvalidEncoding);
  }
  (void)nonce_.assign(client_nonce);
  state_ = State::kWaitCredential;
  return ScramError::kNone;
}

std::string_view ScramServer::start(bool known_user) noexcept {
  if (state_ != State::kWaitCredential) {
    (void)fail(ScramError::kOtherError);
    return {};
  }
  known_user_ = known_user;
  std::array<char, kScramServerNonceBytesMax> server_nonce{};
  const size_t n = nonces_->fill_nonce(server_nonce);
  const std::string_view snonce(server_nonce.data(), std::min(n, server_nonce.size()));
  if (snonce.empty() || !printable(snonce) || !nonce_.append(snonce)) {
    (void)fail(ScramError::kOtherError);
    return {};
  }
  std::array<char, base64_encoded_size(kScramSaltBytesMaxStored)> salt{};
  const size_t salt_chars = base64_encode(as_chars(credential_.salt_view()), salt);
  std::array<char, 10> iterations{};
  const auto [end, ec] = std::to_chars(iterations.data(), iterations.data() + iterations.size(),
                                       credential_.iterations);
  server_first_.clear();
  const bool fits = ec == std::errc{} && server_first_.append("r=") &&
                    server_first_.append(nonce_.view()) && server_first_.append(",s=") &&
                    server_first_.append({salt.data(), salt_chars}) &&
                    server_first_.append(",i=") &&
                    server_first_.append({iterations.data(), size_t(end - iterations.data())});
  if (!fits) {
    (void)fail(ScramError::kOtherError);
    return {};
  }
  state_ = State::kWaitClientFinal;
  return server_first_.view();
}

void ScramServer::set_fake_credential() noexcept {
  // Stable per (process secret, user name): asking twice gives the same
  // salt, as it would for a real user. The keys are never matched.
  const std::string_view key = as_chars(fake_salt_key_);
  std::array<uint8_t, kDigestBytesMax> salt{};
  credential_ = ScramCredential{};
  credential_.iterations = fake_iterations_ == 0 ? kScramIterationsDefault : fake_iterations_;
  credential_.salt_bytes = kFakeSaltBytes;
  const std::string_view user = username_.view();
  const std::string_view nul("\0", 1);
  if (hmac(HashAlg::kSha256, key, {"popgate scram fake salt", nul, user}, salt)) {
    std::copy_n(salt.begin(), kFakeSaltBytes, credential_.salt.begin());
  }
  (void)hmac(HashAlg::kSha256, key, {"popgate scram fake stored key", nul, user},
             credential_.stored_key);
  (void)hmac(HashAlg::kSha256, key, {"popgate scram fake server key", nul, user},
             credential_.server_key);
}

std::string_view ScramServer::server_first(const ScramCredential& credential) noexcept {
  credential_ = credential;
  return start(true);
}

std::string_view ScramServer::server_first_unknown_user() noexcept {
  set_fake_credential();
  return start(false);
}

std::string_view ScramServer::server_first_from_stored(std::string_view stored) noexcept {
  if (const auto credential = parse_scram_credential(stored)) return server_first(*credential);
  return server_first_unknown_user();
}

ScramError ScramServer::handle_client_final(std::string_view message,
                                            std::string* server_final) noexcept {
  const ScramError e =
      state_ == State::kWaitClientFinal ? check_client_final(message) : ScramError::kOtherError;
  if (e != ScramError::kNone) (void)fail(e);
  if (server_final != nullptr) server_final->assign(server_final_.view());
  return e;
}

ScramError ScramServer::check_client_final(std::string_view message) noexcept {
  if (message.size() > kScramMessageBytesMax) return ScramError::kInvalidEncoding;
  // client-final-message = "c=" base64 "," "r=" nonce ["," ext] "," "p=" base64
  const size_t proof_at = message.rfind(",p=");
  if (proof_at == std::string_view::npos) return ScramError::kInvalidEncoding;
  const std::string_view without_proof = message.substr(0, proof_at);
  std::string_view rest = without_proof;
  std::string_view binding;
  const bool have_binding = take_until_comma(rest, binding);
  const std::string_view nonce = next_field(rest);
  if (!have_binding || !binding.starts_with("c=") || !nonce.starts_with("r=") ||
      !valid_extensions(rest) || without_proof.back() == ',') {
    return ScramError::kInvalidEncoding;
  }
  std::array<uint8_t, kScramMessageBytesMax> cbind{};
  const auto cbind_bytes = base64_decode(binding.substr(2), cbind);
  std::array<uint8_t, kScramKeyBytes + 3> proof{};
  const auto proof_bytes = base64_decode(message.substr(proof_at + 3), proof);
  if (!cbind_bytes || !proof_bytes) return ScramError::kInvalidEncoding;
  // Without channel binding, c= carries the gs2 header of the first message.
  if (as_chars({cbind.data(), *cbind_bytes}) != gs2_header_.view()) {
    return ScramError::kChannelBindingsDontMatch;
  }
  if (!ct_equal(nonce.substr(2), nonce_.view())) return ScramError::kOtherError;
  if (*proof_bytes != kScramKeyBytes) return ScramError::kInvalidProof;
  return check_proof(without_proof, {proof.data(), kScramKeyBytes});
}

ScramError ScramServer::check_proof(std::string_view without_proof,
                                    std::span<const uint8_t> proof) noexcept {
  // AuthMessage = client-first-bare "," server-first "," client-final-without-proof
  // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey.
  const auto auth_message = {client_first_bare_.view(), std::string_view(","), server_first_.view(),
                             std::string_view(","), without_proof};
  std::array<uint8_t, kDigestBytesMax> signature{};
  std::array<uint8_t, kDigestBytesMax> check{};
  std::array<uint8_t, kScramKeyBytes> client_key{};
  if (!hmac(HashAlg::kSha256, as_chars(credential_.stored_key), auth_message, signature)) {
    return ScramError::kOtherError;
  }
  for (size_t i = 0; i < kScramKeyBytes; ++i) client_key[i] = proof[i] ^ signature[i];
  const bool hashed = digest(HashAlg::kSha256, {as_chars(client_key)}, check);
  wipe(client_key);
  const bool proof_ok = hashed && ct_equal(std::span<const uint8_t>(check.data(), kScramKeyBytes),
                                           credential_.stored_key);
  if (!proof_ok || !known_user_) return ScramError::kInvalidProof;

  // ServerSignature = HMAC(ServerKey, AuthMessage), sent as "v=".
  if (!hmac(HashAlg::kSha256, as_chars(credential_.server_key), auth_message, signature)) {
    return ScramError::kOtherError;
  }
  std::array<char, base64_encoded_size(kScramKeyBytes)> v{};
  const size_t v_chars = base64_encode(as_chars({signature.data(), kScramKeyBytes}), v);
  server_final_.clear();
  (void)server_final_.append("v=");
  (void)server_final_.append({v.data(), v_chars});
  state_ = State::kDone;
  wipe(credential_.stored_key);
  wipe(credential_.server_key);
  return ScramError::kNone;
}

}  // namespace popgate::auth
