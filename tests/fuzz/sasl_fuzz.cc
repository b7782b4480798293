// Fuzz target: the SASL decoders. The first octet picks one (mod 8), the
// rest is the data:
//   0  base64, both decoders (server/pop3 strict, server/auth with optional
//      padding): round trips, agreement, exact-size output buffers
//   1  base64url and hex (server/auth): round trips, exact-size buffers
//   2  AUTH PLAIN and AUTH LOGIN through a pop3::Session (the PLAIN message
//      parser lives in the session): the data, base64-encoded, as an
//      initial response, as a continuation line, or split at the first LF
//      into LOGIN's user and password; only the one right message logs in
//   3  SCRAM-SHA-256 (server/auth/scram.*): the data split at the first LF
//      into client-first and client-final messages, against RFC 7677's
//      example user (so seeds may carry a real proof); only a right proof
//      for the known user authenticates, and never twice
//   4  OAUTHBEARER and XOAUTH2 client responses (server/auth/oauth.*), then
//      the whole authentication against a fixed JWKS
//   5  a raw JWT against that JWKS
//   6  a JWT made here from the data (header JSON, LF, claims JSON) and
//      signed with the JWKS's own key, so the claims checks are reached;
//      an accepted token must really carry the issuer, audience, expiry
//      and user it is accepted for
//   7  stored SCRAM credentials ("{SCRAM-SHA-256}i,salt,key,key")
#include <openssl/evp.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/auth/encoding.h"
#include "server/auth/oauth.h"
#include "server/auth/scram.h"
#include "server/pop3/base64.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/session_harness.h"

namespace {

namespace auth = popgate::auth;
namespace pop3 = popgate::pop3;

constexpr int64_t kNow = 1'700'000'000;
constexpr const char* kIssuer = "https://idp.example.test/";
constexpr const char* kAudience = "popgate";

// Decodes into a heap block of exactly `size` octets (ASan sees overruns).
std::optional<std::string> decode_exact(std::string_view in, size_t size,
                                        std::optional<size_t> (*decode)(std::string_view,
                                                                        std::span<uint8_t>)) {
  std::unique_ptr<uint8_t[]> block(new uint8_t[size == 0 ? 1 : size]);
  const auto n = decode(in, std::span<uint8_t>(block.get(), size));
  if (!n) return std::nullopt;
  POPGATE_FUZZ_CHECK(*n <= size, "decoder reported more than the buffer");
  return std::string(reinterpret_cast<const char*>(block.get()), *n);
}

std::optional<size_t> base64_span(std::string_view in, std::span<uint8_t> out) {
  return auth::base64_decode(in, out);
}
std::optional<size_t> base64url_span(std::string_view in, std::span<uint8_t> out) {
  return auth::base64url_decode(in, out);
}
std::optional<size_t> hex_span(std::string_view in, std::span<uint8_t> out) {
  return auth::hex_decode(in, out);
}

// ---- 0, 1: encodings -------------------------------------------------------

void fuzz_base64(std::string_view data) {
  std::string strict;
  const bool strict_ok = pop3::base64_decode(data, strict);
  const auto lenient = auth::base64_decode(data);
  if (strict_ok) {
    std::string again;
    pop3::base64_encode(strict, again);
    POPGATE_FUZZ_CHECK(again == data, "strict base64 accepted a non-canonical text");
    POPGATE_FUZZ_CHECK(lenient && *lenient == strict, "the two base64 decoders disagree");
  }
  if (lenient && data.size() % 4 == 0) {
    POPGATE_FUZZ_CHECK(strict_ok, "padded base64 accepted by one decoder only");
  }
  if (lenient) {
    const size_t n = lenient->size();
    POPGATE_FUZZ_CHECK(n <= auth::base64_decoded_size_max(data.size()), "decoded size over bound");
    const auto exact = decode_exact(data, n, base64_span);
    POPGATE_FUZZ_CHECK(exact && *exact == *lenient, "exact-size buffer refused or differed");
    if (n > 0) {
      POPGATE_FUZZ_CHECK(!decode_exact(data, n - 1, base64_span), "a short buffer was accepted");
    }
  }
  // Arbitrary octets encode and decode back, with both.
  std::string encoded;
  pop3::base64_encode(data, encoded);
  POPGATE_FUZZ_CHECK(encoded == auth::base64_encode(data), "the two base64 encoders disagree");
  POPGATE_FUZZ_CHECK(encoded.size() == pop3::base64_encoded_size(data.size()), "encoded size");
  std::string back;
  POPGATE_FUZZ_CHECK(pop3::base64_decode(encoded, back) && back == data, "base64 round trip");
  const auto back2 = auth::base64_decode(encoded);
  POPGATE_FUZZ_CHECK(back2 && *back2 == data, "auth base64 round trip");
}

void fuzz_base64url_hex(std::string_view data) {
  if (const auto decoded = auth::base64url_decode(data)) {
    POPGATE_FUZZ_CHECK(auth::base64url_encode(*decoded) == data,
                       "base64url accepted a non-canonical text");
    const auto exact = decode_exact(data, decoded->size(), base64url_span);
    POPGATE_FUZZ_CHECK(exact && *exact == *decoded, "base64url exact-size buffer");
  }
  const std::string url = auth::base64url_encode(data);
  POPGATE_FUZZ_CHECK(url.find_first_of("+/=") == std::string::npos, "base64url alphabet");
  const auto url_back = auth::base64url_decode(url);
  POPGATE_FUZZ_CHECK(url_back && *url_back == data, "base64url round trip");

  if (const auto decoded = decode_exact(data, data.size() / 2, hex_span)) {
    std::string lower(data);
    for (char& c : lower) c = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    POPGATE_FUZZ_CHECK(auth::hex_encode(*decoded) == lower, "hex accepted a non-hex text");
  }
  const auto hex_back = decode_exact(auth::hex_encode(data), data.size(), hex_span);
  POPGATE_FUZZ_CHECK(hex_back && *hex_back == data, "hex round trip");
}

// ---- 2: PLAIN and LOGIN through a session ----------------------------------

std::string b64(std::string_view raw) {
  std::string out;
  pop3::base64_encode(raw, out);
  return out.empty() ? std::string("=") : out;
}

void fuzz_session_plain(uint8_t variant, std::string_view data) {
  using popgate::testing::SessionHarness;
  SessionHarness h;
  h.store().add_user("alice@example.test", "s3cret pw");
  h.store().users["alice@example.test"].messages = {
      popgate::testing::FakeStore::message(1, "u1", "Subject: x\r\n\r\nhi\r\n")};
  (void)h.take_output();
  std::string out;
  bool right = false;
  switch (variant % 3) {
    case 0:
      out = h.send("AUTH PLAIN " + b64(data) + "\r\n");
      right = data == std::string_view("\0alice@example.test\0s3cret pw", 29) ||
              data == std::string_view("alice@example.test\0alice@example.test\0s3cret pw", 47);
      break;
    case 1: {
      out = h.send("AUTH PLAIN\r\n" + b64(data) + "\r\n");
      right = data == std::string_view("\0alice@example.test\0s3cret pw", 29) ||
              data == std::string_view("alice@example.test\0alice@example.test\0s3cret pw", 47);
      break;
    }
    default: {
      const size_t lf = data.find('\n');
      const std::string_view user = data.substr(0, lf);
      const std::string_view pass = lf == std::string_view::npos ? "" : data.substr(lf + 1);
      out = h.send("AUTH LOGIN\r\n" + b64(user) + "\r\n" + b64(pass) + "\r\n");
      right = user == "alice@example.test" && pass == "s3cret pw";
      break;
    }
  }
  POPGATE_FUZZ_CHECK(h.session().in_transaction() == right,
                     right ? "the right PLAIN/LOGIN message did not log in"
                           : "a wrong PLAIN/LOGIN message logged in");
  POPGATE_FUZZ_CHECK(out.size() >= 2 && out.ends_with("\r\n"), "reply is not a whole line");
  if (right) {
    POPGATE_FUZZ_CHECK(h.send("STAT\r\n") == "+OK 1 18\r\n", "STAT after login");
  }
}

// ---- 3: SCRAM-SHA-256 ------------------------------------------------------

class FixedNonce final : public auth::ScramNonceSource {
 public:
  size_t fill_nonce(std::span<char> out) noexcept override {
    constexpr std::string_view kNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";  // RFC 7677
    if (kNonce.size() > out.size()) return 0;
    std::memcpy(out.data(), kNonce.data(), kNonce.size());
    return kNonce.size();
  }
};

struct ScramFixture {
  FixedNonce nonce;
  std::array<uint8_t, 32> fake_key{};
  std::string stored;  // RFC 7677's user "user", password "pencil"
  ScramFixture() {
    const auto salt = *auth::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    stored = auth::make_scram_credential(
        "pencil", 4096,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(salt.data()), salt.size()));
    fake_key.fill(7);
  }
};

void fuzz_scram(std::string_view data) {
  static ScramFixture fixture;
  const size_t lf = data.find('\n');
  const std::string_view first = data.substr(0, lf);
  const std::string_view final = lf == std::string_view::npos ? "" : data.substr(lf + 1);
  auth::ScramServerOptions options;
  options.nonces = &fixture.nonce;
  options.fake_salt_key = fixture.fake_key;

  {
    auth::ScramServer early(options);
    POPGATE_FUZZ_CHECK(early.handle_client_final(final, nullptr) != auth::ScramError::kNone,
                       "client-final accepted before client-first");
  }
  auth::ScramServer scram(options);
  if (scram.handle_client_first(first) != auth::ScramError::kNone) {
    POPGATE_FUZZ_CHECK(scram.server_first_from_stored(fixture.stored).empty(),
                       "server-first after a refused client-first");
    return;
  }
  POPGATE_FUZZ_CHECK(!scram.username().empty() && scram.username().size() <= auth::kScramNameBytesMax,
                     "username out of range");
  const bool known = scram.username() == "user";
  const std::string_view server_first =
      scram.server_first_from_stored(known ? std::string_view(fixture.stored) : "");
  POPGATE_FUZZ_CHECK(server_first.starts_with("r="), "server-first without a nonce");
  POPGATE_FUZZ_CHECK(server_first.size() <= 512, "server-first too long for a reply line");
  std::string copy;
  const auth::ScramError e = scram.handle_client_final(final, &copy);
  if (e == auth::ScramError::kNone) {
    POPGATE_FUZZ_CHECK(known, "an unknown user authenticated");
    POPGATE_FUZZ_CHECK(scram.server_final_message().starts_with("v="), "server-final is not v=");
  } else {
    POPGATE_FUZZ_CHECK(scram.server_final_message().empty() ||
                           scram.server_final_message().starts_with("e="),
                       "a failure's server-final is not e=");
  }
  POPGATE_FUZZ_CHECK(copy == scram.server_final_message(), "server_final copy differs");
  POPGATE_FUZZ_CHECK(scram.handle_client_final(final, nullptr) != auth::ScramError::kNone,
                     "a client-final accepted twice");
}

// ---- 4, 5, 6: bearer tokens ------------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};

struct JwtFixture {
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
  std::optional<auth::JwksVerifier> verifier;

  JwtFixture() {
    std::array<uint8_t, 32> seed{};
    for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<uint8_t>(i * 7 + 1);
    key.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
    POPGATE_FUZZ_CHECK(key != nullptr, "Ed25519 key");
    std::array<uint8_t, 32> pub{};
    size_t pub_len = pub.size();
    POPGATE_FUZZ_CHECK(EVP_PKEY_get_raw_public_key(key.get(), pub.data(), &pub_len) == 1,
                       "Ed25519 public key");
    const std::string jwks =
        R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig","x":")" +
        auth::base64url_encode(auth::as_chars(std::span<const uint8_t>(pub.data(), pub_len))) +
        R"("}]})";
    auth::OAuthConfig config;
    config.issuer = kIssuer;
    config.audiences = {kAudience};
    verifier.emplace(auth::JwksVerifier::from_json(jwks, std::move(config)));
  }

  std::string sign(std::string_view header, std::string_view claims) const {
    std::string jwt = auth::base64url_encode(header) + "." + auth::base64url_encode(claims);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::array<unsigned char, 64> sig{};
    size_t sig_len = sig.size();
    const bool ok =
        ctx && EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
        EVP_DigestSign(ctx.get(), sig.data(), &sig_len,
                       reinterpret_cast<const unsigned char*>(jwt.data()), jwt.size()) == 1;
    POPGATE_FUZZ_CHECK(ok, "Ed25519 signing");
    jwt += "." + auth::base64url_encode(std::string_view(reinterpret_cast<char*>(sig.data()), sig_len));
    return jwt;
  }
};

JwtFixture& jwt_fixture() {
  static JwtFixture fixture;
  return fixture;
}

void check_response(auth::OAuthStatus status, const auth::BearerResponse& r, std::string_view data) {
  if (status != auth::OAuthStatus::kOk) {
    POPGATE_FUZZ_CHECK(r.token.empty() && r.user.empty(), "a refused response left data behind");
    return;
  }
  if (r.error_ack) return;
  POPGATE_FUZZ_CHECK(!r.token.empty() && r.token.size() <= auth::kOAuthTokenBytesMax, "token size");
  POPGATE_FUZZ_CHECK(r.token.data() >= data.data() &&
                         r.token.data() + r.token.size() <= data.data() + data.size(),
                     "token does not point into the response");
  POPGATE_FUZZ_CHECK(r.token.find_first_of(" \x01\r\n") == std::string_view::npos,
                     "token holds a separator");
}

void fuzz_bearer_responses(std::string_view data) {
  auth::BearerResponse r;
  check_response(auth::parse_oauthbearer(data, &r), r, data);
  check_response(auth::parse_xoauth2(data, &r), r, data);
  const auth::JwksVerifier& v = *jwt_fixture().verifier;
  for (auto m : {auth::BearerMechanism::kOAuthBearer, auth::BearerMechanism::kXoauth2}) {
    const auth::OAuthVerdict verdict = v.authenticate(m, data, kNow);
    if (verdict.status == auth::OAuthStatus::kOk) {
      POPGATE_FUZZ_CHECK(!verdict.user.empty(), "accepted without a user");
    }
  }
}

void fuzz_raw_jwt(std::string_view data) {
  const auth::OAuthVerdict verdict = jwt_fixture().verifier->verify(data, "", kNow);
  if (verdict.status == auth::OAuthStatus::kOk) {
    POPGATE_FUZZ_CHECK(!verdict.user.empty(), "accepted without a user");
  }
}

// What an accepted token must hold, checked with an independent reading of
// its claims.
void fuzz_signed_jwt(std::string_view data) {
  using json = nlohmann::json;
  const size_t lf = data.find('\n');
  const std::string_view header = data.substr(0, lf);
  const std::string_view claims = lf == std::string_view::npos ? "{}" : data.substr(lf + 1);
  const JwtFixture& f = jwt_fixture();
  const std::string jwt = f.sign(header, claims);
  const auth::OAuthVerdict verdict = f.verifier->verify(jwt, "", kNow);
  if (verdict.status != auth::OAuthStatus::kOk) return;

  const json h = json::parse(header, nullptr, false);
  POPGATE_FUZZ_CHECK(h.is_object(), "accepted a token whose header is not a JSON object");
  const auto alg = h.find("alg");
  POPGATE_FUZZ_CHECK(alg != h.end() && *alg == "EdDSA", "accepted a token with another alg");
  const json c = json::parse(claims, nullptr, false);
  POPGATE_FUZZ_CHECK(c.is_object(), "accepted claims that are not a JSON object");
  const auto iss = c.find("iss");
  POPGATE_FUZZ_CHECK(iss != c.end() && *iss == kIssuer, "accepted a token from another issuer");
  const auto exp = c.find("exp");
  POPGATE_FUZZ_CHECK(exp != c.end() && exp->is_number(), "accepted a token without exp");
  POPGATE_FUZZ_CHECK(exp->get<double>() > static_cast<double>(kNow - auth::kJwtLeewaySecondsMax),
                     "accepted an expired token");
  const auto aud = c.find("aud");
  bool aud_ok = false;
  if (aud != c.end() && aud->is_string()) aud_ok = *aud == kAudience;
  if (aud != c.end() && aud->is_array()) {
    for (const auto& a : *aud) aud_ok = aud_ok || a == kAudience;
  }
  POPGATE_FUZZ_CHECK(aud_ok, "accepted a token for another audience");
  const auto email = c.find("email");
  POPGATE_FUZZ_CHECK(email != c.end() && email->is_string() &&
                         email->get<std::string>() == verdict.user.view(),
                     "accepted user is not the token's email claim");
  const auto verified = c.find("email_verified");
  POPGATE_FUZZ_CHECK(verified == c.end() || *verified == true, "accepted an unverified email");
}

// ---- 7: stored SCRAM credentials -------------------------------------------

void fuzz_scram_credential(std::string_view data) {
  const auto parsed = auth::parse_scram_credential(data);
  if (!parsed) return;
  POPGATE_FUZZ_CHECK(parsed->iterations > 0, "zero iterations accepted");
  POPGATE_FUZZ_CHECK(parsed->salt_bytes > 0 && parsed->salt_bytes <= auth::kScramSaltBytesMaxStored,
                     "salt size out of range");
  const auto again = auth::parse_scram_credential(auth::format_scram_credential(*parsed));
  POPGATE_FUZZ_CHECK(again && again->iterations == parsed->iterations &&
                         again->salt_bytes == parsed->salt_bytes &&
                         again->salt_view().size() == parsed->salt_view().size() &&
                         std::equal(again->salt_view().begin(), again->salt_view().end(),
                                    parsed->salt_view().begin()) &&
                         again->stored_key == parsed->stored_key &&
                         again->server_key == parsed->server_key,
                     "credential does not survive format and parse");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  popgate::fuzz::FuzzInput in(data, size);
  const uint8_t selector = in.byte();
  const std::string_view rest = in.rest();
  switch (selector % 8) {
    case 0: fuzz_base64(rest); break;
    case 1: fuzz_base64url_hex(rest); break;
    case 2: fuzz_session_plain(selector / 8, rest); break;
    case 3: fuzz_scram(rest); break;
    case 4: fuzz_bearer_responses(rest); break;
    case 5: fuzz_raw_jwt(rest); break;
    case 6: fuzz_signed_jwt(rest); break;
    default: fuzz_scram_credential(rest); break;
  }
  return 0;
}
