#include "server/auth/oauth.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "server/auth/digest.h"
#include "server/auth/encoding.h"

namespace popgate::auth {
namespace {

using json = nlohmann::json;

constexpr int64_t kNow = 1'700'000'000;
constexpr const char* kIssuer = "https://idp.example.com/";
constexpr const char* kAudience = "popgate";

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey generate(const char* type, const char* group = nullptr) {
  EVP_PKEY* key = nullptr;
  if (group != nullptr) {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type, group);
  } else if (std::string(type) == "RSA") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  } else {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  }
  EXPECT_NE(key, nullptr) << type;
  return Pkey(key);
}

std::string b64url(std::string_view bytes) { return base64url_encode(bytes); }

std::string bn_param(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1);
  std::string out(size_t(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

// One signing key of the test IdP and its public JWK.
struct TestKey {
  std::string alg;  // the JWS alg it signs with
  Pkey key;
  json jwk;
};

TestKey rsa_key(const std::string& kid, const std::string& alg) {
  TestKey k{alg, generate("RSA"), {}};
  k.jwk = {{"kty", "RSA"},
           {"kid", kid},
           {"use", "sig"},
           {"n", b64url(bn_param(k.key.get(), OSSL_PKEY_PARAM_RSA_N))},
           {"e", b64url(bn_param(k.key.get(), OSSL_PKEY_PARAM_RSA_E))}};
  return k;
}

TestKey ec_key(const std::string& kid, const char* group, const char* crv, const std::string& alg) {
  TestKey k{alg, generate("EC", group), {}};
  unsigned char point[200];
  size_t len = 0;
  EXPECT_EQ(EVP_PKEY_get_octet_string_param(k.key.get(), OSSL_PKEY_PARAM_PUB_KEY, point,
                                            sizeof point, &len),
            1);
  const size_t n = (len - 1) / 2;
  const std::string_view p(reinterpret_cast<const char*>(point), len);
  k.jwk = {{"kty", "EC"},
           {"kid", kid},
           {"crv", crv},
           {"x", b64url(p.substr(1, n))},
           {"y", b64url(p.substr(1 + n, n))}};
  return k;
}

TestKey ed25519_key(const std::string& kid) {
  TestKey k{"EdDSA", generate("ED25519"), {}};
  unsigned char pub[32];
  size_t len = sizeof pub;
  EXPECT_EQ(EVP_PKEY_get_raw_public_key(k.key.get(), pub, &len), 1);
  k.jwk = {{"kty", "OKP"},
           {"kid", kid},
           {"crv", "Ed25519"},
           {"x", b64url(std::string_view(reinterpret_cast<const char*>(pub), len))}};
  return k;
}

const char* md_for(const std::string& alg) {
  if (alg == "EdDSA") return nullptr;
  if (alg.ends_with("384")) return "SHA384";
  if (alg.ends_with("512")) return "SHA512";
  return "SHA256";
}

std::string sign(const TestKey& k, const std::string& alg, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EXPECT_EQ(EVP_DigestSignInit_ex(ctx, &pctx, md_for(alg), nullptr, nullptr, k.key.get(), nullptr),
            1);
  if (alg.starts_with("PS")) {
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
  }
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  EXPECT_EQ(EVP_DigestSign(ctx, nullptr, &len, data, input.size()), 1);
  std::string sig(len, '\0');
  EXPECT_EQ(
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, data, input.size()),
      1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (alg.starts_with("ES")) {  // DER -> r || s
    const size_t n = alg == "ES384" ? 48 : 32;
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, long(sig.size()));
    std::string raw(2 * n, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), int(n));
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data() + n), int(n));
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}

json good_claims() {
  return {{"iss", kIssuer},    {"aud", kAudience}, {"sub", "1234"},   {"email", "bob@example.com"},
          {"exp", kNow + 300}, {"nbf", kNow - 10}, {"iat", kNow - 10}};
}

std::string jwt(const TestKey& k, const json& claims, json header = json::object()) {
  if (!header.contains("alg")) header["alg"] = k.alg;
  if (!header.contains("kid") && k.jwk.contains("kid")) header["kid"] = k.jwk["kid"];
  const std::string signing_input = b64url(header.dump()) + "." + b64url(claims.dump());
  return signing_input + "." + b64url(sign(k, header["alg"].get<std::string>(), signing_input));
}

OAuthConfig config() {
  OAuthConfig c;
  c.issuer = kIssuer;
  c.audiences = {"other-client", kAudience};
  c.scope = "openid email";
  c.openid_configuration = "https://idp.example.com/.well-known/openid-configuration";
  return c;
}

// Keys are slow to make (RSA): once for the whole suite.
class OAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    keys_ = new std::vector<TestKey>();
    keys_->push_back(rsa_key("rsa1", "RS256"));
    keys_->push_back(ec_key("ec256", "P-256", "P-256", "ES256"));
    keys_->push_back(ec_key("ec384", "P-384", "P-384", "ES384"));
    keys_->push_back(ed25519_key("ed1"));
  }
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
  }
  static const TestKey& key(size_t i) { return (*keys_)[i]; }
  static json jwks() {
    json all = json::array();
    for (const auto& k : *keys_) all.push_back(k.jwk);
    return {{"keys", all}};
  }
  static JwksVerifier verifier(OAuthConfig c = config()) {
    return JwksVerifier::from_json(jwks().dump(), std::move(c));
  }
  static std::vector<TestKey>* keys_;
};
std::vector<TestKey>* OAuthTest::keys_ = nullptr;

TEST_F(OAuthTest, EveryAlgorithmVerifies) {
  const JwksVerifier v = verifier();
  EXPECT_EQ(v.key_count(), 4u);
  struct Case {
    size_t key;
    const char* alg;
  };
  for (const Case c :
       {Case{0, "RS256"}, Case{0, "RS384"}, Case{0, "RS512"}, Case{0, "PS256"}, Case{0, "PS384"},
        Case{0, "PS512"}, Case{1, "ES256"}, Case{2, "ES384"}, Case{3, "EdDSA"}}) {
    SCOPED_TRACE(c.alg);
    const std::string token = jwt(key(c.key), good_claims(), {{"alg", c.alg}});
    const OAuthVerdict verdict = v.verify(token, "", kNow);
    EXPECT_EQ(verdict.status, OAuthStatus::kOk) << oauth_status_name(verdict.status);
    EXPECT_EQ(verdict.user.view(), "bob@example.com");
    EXPECT_EQ(v.verify(token, "BOB@example.com", kNow).status, OAuthStatus::kOk);
  }
}

TEST_F(OAuthTest, ClaimChecks) {
  const JwksVerifier v = verifier();
  const TestKey& k = key(1);
  auto status = [&](json claims, std::string_view user = "", int64_t now = kNow) {
    return v.verify(jwt(k, claims), user, now).status;
  };
  json c = good_claims();
  EXPECT_EQ(status(c), OAuthStatus::kOk);
  // exp, with the leeway
  EXPECT_EQ(status(c, "", kNow + 300 + 59), OAuthStatus::kOk);
  EXPECT_EQ(status(c, "", kNow + 300 + 60), OAuthStatus::kExpired);
  c["exp"] = kNow - 61;
  EXPECT_EQ(status(c), OAuthStatus::kExpired);
  c["exp"] = double(kNow) + 0.5;
  EXPECT_EQ(status(c), OAuthStatus::kOk);
  c["exp"] = "tomorrow";
  EXPECT_EQ(status(c), OAuthStatus::kMalformedToken);
  c.erase("exp");
  EXPECT_EQ(status(c), OAuthStatus::kMalformedToken);
  // nbf
  c = good_claims();
  c["nbf"] = kNow + 61;
  EXPECT_EQ(status(c), OAuthStatus::kNotYetValid);
  c["nbf"] = kNow + 60;
  EXPECT_EQ(status(c), OAuthStatus::kOk);
  c["nbf"] = nullptr;
  EXPECT_EQ(status(c), OAuthStatus::kMalformedToken);
  // iss
  c = good_claims();
  c["iss"] = "https://evil.example.com/";
  EXPECT_EQ(status(c), OAuthStatus::kWrongIssuer);
  c.erase("iss");
  EXPECT_EQ(status(c), OAuthStatus::kWrongIssuer);
  // aud: a string or an array naming one of ours
  c = good_claims();
  c["aud"] = "someone-else";
  EXPECT_EQ(status(c), OAuthStatus::kWrongAudience);
  c["aud"] = json::array({"x", "other-client"});
  EXPECT_EQ(status(c), OAuthStatus::kOk);
  c["aud"] = json::array({"x", 1});
  EXPECT_EQ(status(c), OAuthStatus::kWrongAudience);
  c.erase("aud");
  EXPECT_EQ(status(c), OAuthStatus::kWrongAudience);
  // the user claim
  c = good_claims();
  EXPECT_EQ(status(c, "alice@example.com"), OAuthStatus::kUserMismatch);
  c["email"] = 42;
  EXPECT_EQ(status(c), OAuthStatus::kNoUser);
  c["email"] = "";
  EXPECT_EQ(status(c), OAuthStatus::kNoUser);
  c["email"] = std::string(kOAuthUserBytesMax + 1, 'a');
  EXPECT_EQ(status(c), OAuthStatus::kNoUser);
  c.erase("email");
  EXPECT_EQ(status(c), OAuthStatus::kNoUser);
  c = good_claims();
  c["email_verified"] = false;
  EXPECT_EQ(status(c), OAuthStatus::kNoUser);
  c["email_verified"] = "true";
  EXPECT_EQ(status(c), OAuthStatus::kNoUser);
  c["email_verified"] = true;
  EXPECT_EQ(status(c), OAuthStatus::kOk);
}

TEST_F(OAuthTest, ConfiguredUserClaim) {
  OAuthConfig cfg = config();
  cfg.user_claim = "preferred_username";
  const JwksVerifier v = verifier(cfg);
  json c = good_claims();
  c["preferred_username"] = "carol@example.com";
  c["email_verified"] = false;  // only checked for the "email" claim
  const OAuthVerdict verdict = v.verify(jwt(key(3), c), "carol@example.com", kNow);
  EXPECT_EQ(verdict.status, OAuthStatus::kOk);
  EXPECT_EQ(verdict.user.view(), "carol@example.com");
  EXPECT_EQ(v.verify(jwt(key(3), good_claims()), "", kNow).status, OAuthStatus::kNoUser);
}

TEST_F(OAuthTest, HeaderAndSignatureRefusals) {
  const JwksVerifier v = verifier();
  const TestKey& rsa = key(0);
  auto status = [&](const std::string& token) { return v.verify(token, "", kNow).status; };
  const std::string good = jwt(rsa, good_claims());
  ASSERT_EQ(status(good), OAuthStatus::kOk);
  const std::string header_b64 = good.substr(0, good.find('.'));
  const std::string payload_b64 =
      good.substr(good.find('.') + 1, good.rfind('.') - good.find('.') - 1);

  // alg none, with and without a signature
  const std::string none_header = b64url(R"({"alg":"none","kid":"rsa1"})");
  EXPECT_EQ(status(none_header + "." + payload_b64 + "."), OAuthStatus::kMalformedToken);
  EXPECT_EQ(status(none_header + "." + payload_b64 + ".AAAA"), OAuthStatus::kUnsupportedAlgorithm);
  // HS256 keyed with the RSA public modulus: the classic key confusion.
  const std::string hs_header = b64url(R"({"alg":"HS256","kid":"rsa1"})");
  const std::string hs_input = hs_header + "." + payload_b64;
  std::array<uint8_t, 32> mac{};
  ASSERT_TRUE(
      hmac(HashAlg::kSha256, *base64url_decode(rsa.jwk["n"].get<std::string>()), {hs_input}, mac));
  EXPECT_EQ(status(hs_input + "." + b64url(as_chars(mac))), OAuthStatus::kUnsupportedAlgorithm);
  // unknown algorithm, crit header, alg not a string / missing
  EXPECT_EQ(status(jwt(rsa, good_claims(), {{"alg", "RS1"}})), OAuthStatus::kUnsupportedAlgorithm);
  EXPECT_EQ(status(jwt(rsa, good_claims(), {{"alg", "RS256"}, {"crit", {"exp"}}, {"exp", 1}})),
            OAuthStatus::kUnsupportedAlgorithm);
  EXPECT_EQ(status(b64url(R"({"alg":5})") + "." + payload_b64 + ".AAAA"),
            OAuthStatus::kMalformedToken);
  EXPECT_EQ(status(b64url(R"({"kid":"rsa1"})") + "." + payload_b64 + ".AAAA"),
            OAuthStatus::kMalformedToken);
  // kid: unknown, not a string, of the wrong key type
  EXPECT_EQ(status(jwt(rsa, good_claims(), {{"kid", "nope"}})), OAuthStatus::kUnknownKey);
  EXPECT_EQ(status(jwt(rsa, good_claims(), {{"kid", 7}})), OAuthStatus::kMalformedToken);
  EXPECT_EQ(status(jwt(rsa, good_claims(), {{"kid", "ec256"}})),
            OAuthStatus::kKeyAlgorithmMismatch);
  EXPECT_EQ(status(jwt(key(1), good_claims(), {{"alg", "ES384"}})),
            OAuthStatus::kKeyAlgorithmMismatch);
  // signature: flipped, from another key, truncated, empty
  std::string flipped = good;
  flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(status(flipped), OAuthStatus::kBadSignature);
  const TestKey stranger = rsa_key("rsa1", "RS256");
  EXPECT_EQ(status(jwt(stranger, good_claims())), OAuthStatus::kBadSignature);
  auto shortened = [](const std::string& token) {  // the signature one octet short
    std::string sig = *base64url_decode(token.substr(token.rfind('.') + 1));
    sig.pop_back();
    return token.substr(0, token.rfind('.') + 1) + b64url(sig);
  };
  EXPECT_EQ(status(shortened(good)), OAuthStatus::kBadSignature);
  EXPECT_EQ(status(good.substr(0, good.rfind('.') + 1)), OAuthStatus::kMalformedToken);
  EXPECT_EQ(status(shortened(jwt(key(1), good_claims()))), OAuthStatus::kBadSignature);
  EXPECT_EQ(status(shortened(jwt(key(3), good_claims()))), OAuthStatus::kBadSignature);
  // payload changed after signing
  json evil = good_claims();
  evil["email"] = "mallory@example.com";
  EXPECT_EQ(status(header_b64 + "." + b64url(evil.dump()) + good.substr(good.rfind('.'))),
            OAuthStatus::kBadSignature);
}

TEST_F(OAuthTest, KeySelectionWithoutKid) {
  const JwksVerifier v = verifier();
  TestKey k{"EdDSA", Pkey(EVP_PKEY_dup(key(3).key.get())), json::object()};  // no kid in header
  EXPECT_EQ(v.verify(jwt(k, good_claims()), "", kNow).status, OAuthStatus::kOk);
  // Two keys fit ES256: without kid we do not guess.
  json two = jwks();
  json copy = key(1).jwk;
  copy["kid"] = "ec256-b";
  two["keys"].push_back(copy);
  const JwksVerifier v2 = JwksVerifier::from_json(two.dump(), config());
  TestKey ec{"ES256", Pkey(EVP_PKEY_dup(key(1).key.get())), json::object()};
  EXPECT_EQ(v2.verify(jwt(ec, good_claims()), "", kNow).status, OAuthStatus::kUnknownKey);
}

TEST_F(OAuthTest, PinnedJwkAlg) {
  json pinned = jwks();
  pinned["keys"][0]["alg"] = "PS256";
  const JwksVerifier v = JwksVerifier::from_json(pinned.dump(), config());
  EXPECT_EQ(v.verify(jwt(key(0), good_claims(), {{"alg", "PS256"}}), "", kNow).status,
            OAuthStatus::kOk);
  EXPECT_EQ(v.verify(jwt(key(0), good_claims(), {{"alg", "RS256"}}), "", kNow).status,
            OAuthStatus::kKeyAlgorithmMismatch);
}

TEST_F(OAuthTest, MalformedTokens) {
  const JwksVerifier v = verifier();
  const std::string good = jwt(key(3), good_claims());
  const size_t dot1 = good.find('.');
  const size_t dot2 = good.rfind('.');
  const std::string header = good.substr(0, dot1);
  const std::string sig = good.substr(dot2);
  for (const std::string& token : {
           std::string(""),
           std::string("."),
           std::string(".."),
           std::string("a.b"),
           good + ".x",
           good.substr(0, dot2),
           "!!!" + good.substr(dot1),                         // header not base64url
           header + "=" + good.substr(dot1),                  // padding is not base64url
           b64url("[1,2]") + good.substr(dot1),               // header not an object
           b64url("{\"alg\":") + good.substr(dot1),           // header not JSON
           header + "." + b64url("\"just a string\"") + sig,  // payload not an object (unsigned)
           good.substr(0, dot2) + ".!!!",
           std::string(kOAuthTokenBytesMax + 1, 'a'),
       }) {
    EXPECT_NE(v.verify(token, "", kNow).status, OAuthStatus::kOk) << token;
  }
  EXPECT_EQ(v.verify("a.b", "", kNow).status, OAuthStatus::kMalformedToken);
  // A validly signed payload that is not a JSON object.
  const TestKey& k = key(3);
  const std::string input = header + "." + b64url("[\"x\"]");
  EXPECT_EQ(v.verify(input + "." + b64url(sign(k, "EdDSA", input)), "", kNow).status,
            OAuthStatus::kMalformedToken);
  // Deeply nested JSON in the header is parsed without trouble and refused.
  const std::string deep = b64url(std::string(5000, '[') + std::string(5000, ']'));
  EXPECT_EQ(v.verify(deep + good.substr(dot1), "", kNow).status, OAuthStatus::kMalformedToken);
}

TEST(OAuthParse, OAuthBearerRfc7628Example) {
  // RFC 7628 section 4.1
  const std::string response =
      "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
      "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
  BearerResponse r;
  ASSERT_EQ(parse_oauthbearer(response, &r), OAuthStatus::kOk);
  EXPECT_FALSE(r.error_ack);
  EXPECT_EQ(r.user.view(), "user@example.com");
  EXPECT_EQ(r.token, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
}

TEST(OAuthParse, OAuthBearerVariants) {
  BearerResponse r;
  ASSERT_EQ(parse_oauthbearer("n,,\x01"
                              "auth=bearer  a.b.c\x01\x01",
                              &r),
            OAuthStatus::kOk);
  EXPECT_EQ(r.user.view(), "");
  EXPECT_EQ(r.token, "a.b.c");
  ASSERT_EQ(parse_oauthbearer("y,a=a=2Cb=3Dc,\x01"
                              "auth=Bearer t\x01\x01",
                              &r),
            OAuthStatus::kOk);
  EXPECT_EQ(r.user.view(), "a,b=c");
  ASSERT_EQ(parse_oauthbearer("\x01", &r), OAuthStatus::kOk);
  EXPECT_TRUE(r.error_ack);
}

TEST(OAuthParse, OAuthBearerRefusals) {
  for (const std::string& bad : {
           std::string(""),
           std::string("\x01\x01"),
           std::string("p=tls-unique,,\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("n,,auth=Bearer t\x01\x01"),
           std::string("n,,\x01"
                       "auth=Bearer t\x01"),
           std::string("n,,\x01"
                       "auth=Bearer t\x01\x01x"),
           std::string("n,,\x01"
                       "auth=Bearer t\x01\x01\x01"),
           std::string("n,,\x01"
                       "host=x\x01\x01"),
           std::string("n,,\x01"
                       "auth=Basic dXNlcjpwdw==\x01\x01"),
           std::string("n,,\x01"
                       "auth=Bearer\x01\x01"),
           std::string("n,,\x01"
                       "auth=Bearer \x01\x01"),
           std::string("n,,\x01"
                       "auth=Bearer t t\x01\x01"),
           std::string("n,,\x01"
                       "auth=Bearer t=x\x01\x01"),
           std::string("n,,\x01"
                       "auth=Bearer t\x01"
                       "auth=Bearer u\x01\x01"),
           std::string("n,,\x01"
                       "h0st=x\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("n,,\x01"
                       "=x\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("n,,\x01"
                       "host=\x02\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("n,a=,\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("n,a=x=41,\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("n,b=x,\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("n,a=x\x01"
                       "auth=Bearer t\x01\x01"),
           "n,,\x01"
           "auth=Bearer " +
               std::string(kOAuthTokenBytesMax + 1, 'a') + "\x01\x01",
       }) {
    BearerResponse r;
    EXPECT_EQ(parse_oauthbearer(bad, &r), OAuthStatus::kMalformedResponse) << bad;
    EXPECT_TRUE(r.token.empty());
  }
}

TEST(OAuthParse, Xoauth2) {
  // The example in Google's XOAUTH2 protocol document.
  const std::string response =
      "user=someuser@example.com\x01"
      "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg"
      "\x01\x01";
  BearerResponse r;
  ASSERT_EQ(parse_xoauth2(response, &r), OAuthStatus::kOk);
  EXPECT_EQ(r.user.view(), "someuser@example.com");
  EXPECT_EQ(r.token, "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg");
  for (const std::string& bad : {
           std::string("auth=Bearer t\x01\x01"),
           std::string("user=\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("user=u\x01"
                       "auth=Bearer t\x01"),
           std::string("user=u\x01\x01"),
           std::string("user=u\x01"
                       "user=v\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("n,,\x01user=u\x01"
                       "auth=Bearer t\x01\x01"),
           std::string("user=" + std::string(kOAuthUserBytesMax + 1, 'u') +
                       "\x01"
                       "auth=Bearer t\x01\x01"),
       }) {
    EXPECT_EQ(parse_xoauth2(bad, &r), OAuthStatus::kMalformedResponse) << bad;
  }
}

TEST(OAuthParse, EveryPrefixIsRefusedButTheWhole) {
  const std::string a =
      "n,a=u@x,\x01host=h\x01"
      "auth=Bearer abc.def.ghi\x01\x01";
  const std::string b =
      "user=u@x\x01"
      "auth=Bearer abc.def.ghi\x01\x01";
  BearerResponse r;
  for (size_t len = 0; len < a.size(); ++len) {
    EXPECT_EQ(parse_oauthbearer(a.substr(0, len), &r), OAuthStatus::kMalformedResponse) << len;
  }
  EXPECT_EQ(parse_oauthbearer(a, &r), OAuthStatus::kOk);
  EXPECT_EQ(parse_xoauth2(b, &r), OAuthStatus::kOk);
  for (size_t len = 0; len < b.size(); ++len) {
    EXPECT_EQ(parse_xoauth2(b.substr(0, len), &r), OAuthStatus::kMalformedResponse) << len;
  }
}

TEST_F(OAuthTest, AuthenticateBothMechanisms) {
  const JwksVerifier v = verifier();
  const std::string token = jwt(key(0), good_claims());
  EXPECT_EQ(v.authenticate(BearerMechanism::kOAuthBearer,
                           "n,a=bob@example.com,\x01"
                           "auth=Bearer " +
                               token + "\x01\x01",
                           kNow)
                .status,
            OAuthStatus::kOk);
  const OAuthVerdict plain = v.authenticate(BearerMechanism::kOAuthBearer,
                                            "n,,\x01"
                                            "auth=Bearer " +
                                                token + "\x01\x01",
                                            kNow);
  EXPECT_EQ(plain.status, OAuthStatus::kOk);
  EXPECT_EQ(plain.user.view(), "bob@example.com");
  EXPECT_EQ(v.authenticate(BearerMechanism::kOAuthBearer,
                           "n,a=eve@example.com,\x01"
                           "auth=Bearer " +
                               token + "\x01\x01",
                           kNow)
                .status,
            OAuthStatus::kUserMismatch);
  EXPECT_EQ(v.authenticate(BearerMechanism::kXoauth2,
                           "user=bob@example.com\x01"
                           "auth=Bearer " +
                               token + "\x01\x01",
                           kNow)
                .status,
            OAuthStatus::kOk);
  EXPECT_EQ(v.authenticate(BearerMechanism::kXoauth2,
                           "user=eve@example.com\x01"
                           "auth=Bearer " +
                               token + "\x01\x01",
                           kNow)
                .status,
            OAuthStatus::kUserMismatch);
  EXPECT_EQ(v.authenticate(BearerMechanism::kOAuthBearer, "\x01", kNow).status,
            OAuthStatus::kMalformedResponse);
  EXPECT_EQ(v.authenticate(BearerMechanism::kXoauth2, "garbage", kNow).status,
            OAuthStatus::kMalformedResponse);
}

TEST_F(OAuthTest, FailureJson) {
  const JwksVerifier v = verifier();
  EXPECT_EQ(
      v.failure_json(BearerMechanism::kOAuthBearer),
      R"({"status":"invalid_token","scope":"openid email",)"
      R"("openid-configuration":"https://idp.example.com/.well-known/openid-configuration"})");
  EXPECT_EQ(v.failure_json(BearerMechanism::kXoauth2),
            R"({"status":"401","schemes":"bearer","scope":"openid email"})");
  EXPECT_EQ(oauthbearer_failure_json("", ""), R"({"status":"invalid_token"})");
  EXPECT_EQ(oauthbearer_failure_json("a \"quoted\" scope", ""),
            R"({"status":"invalid_token","scope":"a \"quoted\" scope"})");
}

TEST_F(OAuthTest, LoadingSkipsKeysWeCannotUse) {
  json doc = jwks();
  doc["keys"].push_back({{"kty", "oct"}, {"kid", "hmac"}, {"k", "c2VjcmV0"}});
  json enc = key(0).jwk;
  enc["use"] = "enc";
  enc["kid"] = "enc";
  doc["keys"].push_back(enc);
  json oaep = key(0).jwk;
  oaep["alg"] = "RSA-OAEP";
  doc["keys"].push_back(oaep);
  json ops = key(0).jwk;
  ops["key_ops"] = {"encrypt"};
  doc["keys"].push_back(ops);
  doc["keys"].push_back({{"kty", "OKP"}, {"crv", "X25519"}, {"x", b64url(std::string(32, 'x'))}});
  doc["keys"].push_back({{"kty", "EC"}, {"crv", "P-521"}, {"x", "AA"}, {"y", "AA"}});
  const JwksVerifier v = JwksVerifier::from_json(doc.dump(), config());
  EXPECT_EQ(v.key_count(), 4u);
  EXPECT_EQ(v.skipped_key_count(), 6u);
}

TEST_F(OAuthTest, LoadingRefusesBrokenKeysAndConfig) {
  auto with_key = [](json k) {
    json doc = jwks();
    doc["keys"].push_back(std::move(k));
    return doc.dump();
  };
  json rsa = key(0).jwk;
  json small = rsa_key("small", "RS256").jwk;
  {
    Pkey k1024(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
    small["n"] = b64url(bn_param(k1024.get(), OSSL_PKEY_PARAM_RSA_N));
  }
  json off_curve = key(1).jwk;
  std::string y = *base64url_decode(off_curve["y"].get<std::string>());
  y.back() ^= 1;
  off_curve["y"] = b64url(y);
  json short_x = key(1).jwk;
  short_x["x"] = b64url("short");
  json bad_b64 = rsa;
  bad_b64["n"] = "not base64!";
  json no_e = rsa;
  no_e.erase("e");
  json ed_short = key(3).jwk;
  ed_short["x"] = b64url("x");
  for (const std::string& text :
       {with_key(small), with_key(off_curve), with_key(short_x), with_key(bad_b64), with_key(no_e),
        with_key(ed_short), with_key("a string"), std::string("{\"keys\":[]}"),
        std::string("{\"keys\":{}}"), std::string("[]"), std::string("{"), std::string("")}) {
    EXPECT_THROW((void)JwksVerifier::from_json(text, config()), std::runtime_error) << text;
  }
  OAuthConfig c = config();
  c.issuer.clear();
  EXPECT_THROW((void)JwksVerifier::from_json(jwks().dump(), c), std::runtime_error);
  c = config();
  c.audiences.clear();
  EXPECT_THROW((void)JwksVerifier::from_json(jwks().dump(), c), std::runtime_error);
  c = config();
  c.leeway_s = kJwtLeewaySecondsMax + 1;
  EXPECT_THROW((void)JwksVerifier::from_json(jwks().dump(), c), std::runtime_error);
}

TEST_F(OAuthTest, FromFile) {
  char path[] = "/tmp/popgate-jwks-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << jwks().dump(2);
  const JwksVerifier v = JwksVerifier::from_file(path, config());
  EXPECT_EQ(v.key_count(), 4u);
  EXPECT_EQ(v.verify(jwt(key(2), good_claims()), "", kNow).status, OAuthStatus::kOk);
  std::remove(path);
  try {
    (void)JwksVerifier::from_file(path, config());
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(OAuthStatusNames, AreDistinct) {
  std::set<std::string_view> names;
  for (int s = 0; s <= int(OAuthStatus::kUserMismatch); ++s) {
    EXPECT_TRUE(names.insert(oauth_status_name(OAuthStatus(s))).second);
  }
}

}  // namespace
}  // namespace popgate::auth
