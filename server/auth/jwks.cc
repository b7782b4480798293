// JwksVerifier: JWKS keys as OpenSSL EVP_PKEYs, and JWT (compact JWS)
// verification against them.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "server/auth/encoding.h"
#include "server/auth/oauth.h"
#include "server/auth/sasl_text.h"

namespace popgate::auth {
namespace {

using json = nlohmann::json;

enum class KeyType : uint8_t { kRsa, kEcP256, kEcP384, kEd25519 };

enum class Alg : uint8_t { kRs256, kRs384, kRs512, kPs256, kPs384, kPs512, kEs256, kEs384, kEdDsa };

struct AlgInfo {
  std::string_view name;
  Alg alg;
  KeyType key;
  const char* digest;  // nullptr for EdDSA
};

constexpr AlgInfo kAlgs[] = {
    {"RS256", Alg::kRs256, KeyType::kRsa, "SHA256"},
    {"RS384", Alg::kRs384, KeyType::kRsa, "SHA384"},
    {"RS512", Alg::kRs512, KeyType::kRsa, "SHA512"},
    {"PS256", Alg::kPs256, KeyType::kRsa, "SHA256"},
    {"PS384", Alg::kPs384, KeyType::kRsa, "SHA384"},
    {"PS512", Alg::kPs512, KeyType::kRsa, "SHA512"},
    {"ES256", Alg::kEs256, KeyType::kEcP256, "SHA256"},
    {"ES384", Alg::kEs384, KeyType::kEcP384, "SHA384"},
    {"EdDSA", Alg::kEdDsa, KeyType::kEd25519, nullptr},
};

const AlgInfo* find_alg(std::string_view name) noexcept {
  for (const AlgInfo& a : kAlgs) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

bool is_pss(Alg alg) noexcept {
  return alg == Alg::kPs256 || alg == Alg::kPs384 || alg == Alg::kPs512;
}

size_t ec_coordinate_bytes(KeyType type) noexcept { return type == KeyType::kEcP384 ? 48 : 32; }

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

}  // namespace

struct JwksVerifier::Key {
  std::string kid;  // "" when the JWK has none
  KeyType type = KeyType::kRsa;
  std::string alg;  // pinned by the JWK's "alg"; "" = any that fits the type
  PkeyPtr pkey;
};

namespace {

// ---- Loading ---------------------------------------------------------------

[[noreturn]] void bad_key(const std::string& where, const std::string& why) {
  throw std::runtime_error(where + ": " + why);
}

std::string b64url_member(const json& jwk, const char* name, const std::string& where) {
  const auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) bad_key(where, std::string("no \"") + name + "\"");
  auto bytes = base64url_decode(it->get_ref<const std::string&>());
  if (!bytes || bytes->empty()) bad_key(where, std::string("\"") + name + "\" is not base64url");
  return *bytes;
}

struct BnFree {
  void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
struct BldFree {
  void operator()(OSSL_PARAM_BLD* b) const noexcept { OSSL_PARAM_BLD_free(b); }
};
struct ParamsFree {
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

PkeyPtr pkey_from_params(const char* type, const OSSL_PARAM* params, const std::string& where) {
  const PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* made = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &made, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) !=
          1) {
    bad_key(where, std::string("OpenSSL refuses the ") + type + " key");
  }
  PkeyPtr pkey(made);
  const PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    bad_key(where, std::string("the ") + type + " public key fails validation");
  }
  return pkey;
}

PkeyPtr rsa_key(const json& jwk, const std::string& where) {
  const std::string n = b64url_member(jwk, "n", where);
  const std::string e = b64url_member(jwk, "e", where);
  auto bn = [](const std::string& bytes) {
    return std::unique_ptr<BIGNUM, BnFree>(BN_bin2bn(
        reinterpret_cast<const unsigned char*>(bytes.data()), int(bytes.size()), nullptr));
  };
  const auto bn_n = bn(n);
  const auto bn_e = bn(e);
  if (!bn_n || !bn_e) bad_key(where, "out of memory");
  if (BN_num_bits(bn_n.get()) < kRsaKeyBitsMin) {
    bad_key(where, "RSA modulus of " + std::to_string(BN_num_bits(bn_n.get())) + " bits is below " +
                       std::to_string(kRsaKeyBitsMin));
  }
  const std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    bad_key(where, "out of memory");
  }
  const std::unique_ptr<OSSL_PARAM, ParamsFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) bad_key(where, "out of memory");
  return pkey_from_params("RSA", params.get(), where);
}

PkeyPtr ec_key(const json& jwk, KeyType type, const std::string& where) {
  const std::string x = b64url_member(jwk, "x", where);
  const std::string y = b64url_member(jwk, "y", where);
  const size_t n = ec_coordinate_bytes(type);
  if (x.size() != n || y.size() != n) {
    bad_key(where, "EC coordinates must be " + std::to_string(n) + " octets");
  }
  std::string point = "\x04" + x + y;  // SEC 1 uncompressed
  char p256[] = "P-256";
  char p384[] = "P-384";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                       type == KeyType::kEcP384 ? p384 : p256, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  return pkey_from_params("EC", params, where);
}

PkeyPtr ed25519_key(const json& jwk, const std::string& where) {
  const std::string x = b64url_member(jwk, "x", where);
  if (x.size() != 32) bad_key(where, "Ed25519 \"x\" must be 32 octets");
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size()));
  if (!pkey) bad_key(where, "OpenSSL refuses the Ed25519 key");
  return pkey;
}

std::optional<std::string> string_member(const json& j, const char* name) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The key's type, or nullopt for keys we skip (other kty/crv, not for
// signatures).
std::optional<KeyType> usable_type(const json& jwk) {
  if (const auto use = string_member(jwk, "use"); use && *use != "sig") return std::nullopt;
  if (const auto ops = jwk.find("key_ops"); ops != jwk.end()) {
    bool verify = false;
    if (ops->is_array()) {
      for (const auto& op : *ops) verify = verify || (op.is_string() && op == "verify");
    }
    if (!verify) return std::nullopt;
  }
  const auto kty = string_member(jwk, "kty");
  const auto crv = string_member(jwk, "crv");
  if (kty == "RSA") return KeyType::kRsa;
  if (kty == "EC" && crv == "P-256") return KeyType::kEcP256;
  if (kty == "EC" && crv == "P-384") return KeyType::kEcP384;
  if (kty == "OKP" && crv == "Ed25519") return KeyType::kEd25519;
  return std::nullopt;
}

void check_config(const OAuthConfig& config) {
  if (config.issuer.empty()) throw std::runtime_error("oauth: no issuer configured");
  if (config.audiences.empty()) throw std::runtime_error("oauth: no audience configured");
  if (config.user_claim.empty()) throw std::runtime_error("oauth: empty user claim name");
  if (config.leeway_s < 0 || config.leeway_s > kJwtLeewaySecondsMax) {
    throw std::runtime_error("oauth: leeway must be 0.." + std::to_string(kJwtLeewaySecondsMax) +
                             " seconds");
  }
}

// ---- Verification ----------------------------------------------------------

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};

// JWS ES* signatures are r || s, fixed width; OpenSSL wants DER.
bool ecdsa_der(std::string_view raw, size_t coordinate_bytes, std::string& der) noexcept {
  if (raw.size() != 2 * coordinate_bytes) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(p, int(coordinate_bytes), nullptr);
  BIGNUM* s = BN_bin2bn(p + coordinate_bytes, int(coordinate_bytes), nullptr);
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || !sig || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der.resize(size_t(len));
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  return i2d_ECDSA_SIG(sig.get(), &out) == len;
}

bool signature_valid(const AlgInfo& alg, EVP_PKEY* pkey, std::string_view signed_part,
                     std::string_view signature) noexcept {
  std::string der;
  if (alg.key == KeyType::kEcP256 || alg.key == KeyType::kEcP384) {
    if (!ecdsa_der(signature, ec_coordinate_bytes(alg.key), der)) return false;
    signature = der;
  }
  const std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx ||
      EVP_DigestVerifyInit_ex(ctx.get(), &pctx, alg.digest, nullptr, nullptr, pkey, nullptr) != 1) {
    return false;
  }
  if (is_pss(alg.alg) && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
    return false;
  }
  return EVP_DigestVerify(
             ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
}

// A base64url JSON object, or a discarded/non-object value.
json decode_json_part(std::string_view part) noexcept {
  const auto text = base64url_decode(part);
  if (!text) return json(json::value_t::discarded);
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return json(json::value_t::discarded);
  return j;
}

// A NumericDate (integer or not); nullopt when absent or not a number.
std::optional<int64_t> numeric_date(const json& claims, const char* name) noexcept {
  const auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_unsigned()) {
    const uint64_t v = it->get<uint64_t>();
    return v > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                             : int64_t(v);
  }
  if (it->is_number_float()) {
    const double v = it->get<double>();
    if (std::isnan(v)) return std::nullopt;
    if (v >= 9.2e18) return std::numeric_limits<int64_t>::max();
    if (v <= -9.2e18) return std::numeric_limits<int64_t>::min();
    return int64_t(std::floor(v));
  }
  return std::nullopt;
}

bool audience_ok(const json& claims, const std::vector<std::string>& audiences) noexcept {
  const auto it = claims.find("aud");
  if (it == claims.end()) return false;
  auto wanted = [&](const json& a) {
    if (!a.is_string()) return false;
    for (const std::string& ours : audiences) {
      if (a.get_ref<const std::string&>() == ours) return true;
    }
    return false;
  };
  if (it->is_string()) return wanted(*it);
  if (it->is_array()) {
    for (const auto& a : *it) {
      if (wanted(a)) return true;
    }
  }
  return false;
}

}  // namespace

JwksVerifier::~JwksVerifier() = default;
JwksVerifier::JwksVerifier(JwksVerifier&&) noexcept = default;
JwksVerifier& JwksVerifier::operator=(JwksVerifier&&) noexcept = default;

size_t JwksVerifier::key_count() const noexcept { return keys_.size(); }

JwksVerifier JwksVerifier::from_file(const std::string& path, OAuthConfig config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the JWKS file");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return from_json(text.str(), std::move(config));
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

JwksVerifier JwksVerifier::from_json(std::string_view text, OAuthConfig config) {
  check_config(config);
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) throw std::runtime_error("JWKS is not a JSON object");
  const auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array())
    throw std::runtime_error("JWKS has no \"keys\" array");
  JwksVerifier v;
  size_t index = 0;
  for (const json& jwk : *keys) {
    const std::string where = "key " + std::to_string(index++);
    if (!jwk.is_object()) bad_key(where, "not a JSON object");
    const auto type = usable_type(jwk);
    if (!type) {
      ++v.skipped_keys_;
      continue;
    }
    Key key;
    key.type = *type;
    key.kid = string_member(jwk, "kid").value_or("");
    const std::string named = key.kid.empty() ? where : where + " (kid \"" + key.kid + "\")";
    if (const auto alg = string_member(jwk, "alg")) {
      const AlgInfo* info = find_alg(*alg);
      if (info == nullptr || info->key != *type) {
        ++v.skipped_keys_;  // e.g. RSA-OAEP, or an algorithm we do not verify
        continue;
      }
      key.alg = *alg;
    }
    switch (*type) {
      case KeyType::kRsa:
        key.pkey = rsa_key(jwk, named);
        break;
      case KeyType::kEcP256:
      case KeyType::kEcP384:
        key.pkey = ec_key(jwk, *type, named);
        break;
      case KeyType::kEd25519:
        key.pkey = ed25519_key(jwk, named);
        break;
    }
    v.keys_.push_back(std::move(key));
  }
  if (v.keys_.empty()) throw std::runtime_error("JWKS has no usable signing key");
  v.oauthbearer_failure_ = oauthbearer_failure_json(config.scope, config.openid_configuration);
  v.xoauth2_failure_ = xoauth2_failure_json(config.scope);
  v.config_ = std::move(config);
  return v;
}

std::string_view JwksVerifier::failure_json(BearerMechanism mechanism) const noexcept {
  return mechanism == BearerMechanism::kXoauth2 ? xoauth2_failure_ : oauthbearer_failure_;
}

// Picks the key for a token's header: by "kid" when there is one, else the
// only key that fits the algorithm.
struct KeySelection {
  static OAuthStatus select(const JwksVerifier& v, const json& header, const AlgInfo& alg,
                            const JwksVerifier::Key** out) noexcept {
    auto fits = [&alg](const JwksVerifier::Key& k) {
      return k.type == alg.key && (k.alg.empty() || k.alg == alg.name);
    };
    const auto kid = header.find("kid");
    if (kid == header.end()) {
      size_t candidates = 0;
      for (const auto& k : v.keys_) {
        if (!fits(k)) continue;
        *out = &k;
        ++candidates;
      }
      return candidates == 1 ? OAuthStatus::kOk : OAuthStatus::kUnknownKey;
    }
    if (!kid->is_string()) return OAuthStatus::kMalformedToken;
    bool kid_known = false;
    for (const auto& k : v.keys_) {
      if (k.kid != kid->get_ref<const std::string&>()) continue;
      kid_known = true;
      if (fits(k)) {
        *out = &k;
        return OAuthStatus::kOk;
      }
    }
    return kid_known ? OAuthStatus::kKeyAlgorithmMismatch : OAuthStatus::kUnknownKey;
  }
};

namespace {

// The registered claims and the user, once the signature is known good.
OAuthStatus check_claims(const json& claims, const OAuthConfig& config, std::string_view sasl_user,
                         int64_t now, FixedString<kOAuthUserBytesMax>& user) noexcept {
  const auto exp = numeric_date(claims, "exp");
  if (!exp) return OAuthStatus::kMalformedToken;
  const int64_t leeway = config.leeway_s;
  if (*exp <= std::numeric_limits<int64_t>::max() - leeway && *exp + leeway <= now) {
    return OAuthStatus::kExpired;
  }
  if (claims.contains("nbf")) {
    const auto nbf = numeric_date(claims, "nbf");
    if (!nbf) return OAuthStatus::kMalformedToken;
    if (*nbf >= std::numeric_limits<int64_t>::min() + leeway && *nbf - leeway > now) {
      return OAuthStatus::kNotYetValid;
    }
  }
  if (string_member(claims, "iss") != config.issuer) return OAuthStatus::kWrongIssuer;
  if (!audience_ok(claims, config.audiences)) return OAuthStatus::kWrongAudience;
  const auto name = string_member(claims, config.user_claim.c_str());
  if (!name || name->empty() || !user.assign(*name)) return OAuthStatus::kNoUser;
  if (config.user_claim == "email") {
    const auto verified = claims.find("email_verified");
    if (verified != claims.end() && *verified != true) return OAuthStatus::kNoUser;
  }
  if (!sasl_user.empty() && !iequals_ascii(sasl_user, user.view())) {
    return OAuthStatus::kUserMismatch;
  }
  return OAuthStatus::kOk;
}

}  // namespace

OAuthVerdict JwksVerifier::verify(std::string_view jwt, std::string_view sasl_user,
                                  int64_t now) const noexcept {
  OAuthVerdict verdict;
  verdict.status = [&]() noexcept {
    // header "." payload "." signature, each base64url
    if (jwt.size() > kOAuthTokenBytesMax) return OAuthStatus::kMalformedToken;
    const size_t dot1 = jwt.find('.');
    const size_t dot2 = dot1 == std::string_view::npos ? dot1 : jwt.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || jwt.find('.', dot2 + 1) != std::string_view::npos) {
      return OAuthStatus::kMalformedToken;
    }
    const json header = decode_json_part(jwt.substr(0, dot1));
    const auto signature = base64url_decode(jwt.substr(dot2 + 1));
    if (header.is_discarded() || !signature || signature->empty()) {
      return OAuthStatus::kMalformedToken;
    }
    // Only algorithms from our list; no extensions we would have to honour.
    const auto alg_name = string_member(header, "alg");
    if (!alg_name) return OAuthStatus::kMalformedToken;
    const AlgInfo* alg = find_alg(*alg_name);
    if (alg == nullptr || header.contains("crit")) return OAuthStatus::kUnsupportedAlgorithm;
    const Key* key = nullptr;
    if (const auto s = KeySelection::select(*this, header, *alg, &key); s != OAuthStatus::kOk) {
      return s;
    }
    if (!signature_valid(*alg, key->pkey.get(), jwt.substr(0, dot2), *signature)) {
      return OAuthStatus::kBadSignature;
    }
    const json claims = decode_json_part(jwt.substr(dot1 + 1, dot2 - dot1 - 1));
    if (claims.is_discarded()) return OAuthStatus::kMalformedToken;
    return check_claims(claims, config_, sasl_user, now, verdict.user);
  }();
  if (verdict.status != OAuthStatus::kOk) verdict.user.clear();
  return verdict;
}

OAuthVerdict JwksVerifier::authenticate(BearerMechanism mechanism, std::string_view response,
                                        int64_t now) const noexcept {
  BearerResponse parsed;
  const OAuthStatus status = mechanism == BearerMechanism::kXoauth2
                                 ? parse_xoauth2(response, &parsed)
                                 : parse_oauthbearer(response, &parsed);
  if (status != OAuthStatus::kOk || parsed.error_ack) {
    OAuthVerdict verdict;
    verdict.status = OAuthStatus::kMalformedResponse;
    return verdict;
  }
  return verify(parsed.token, parsed.user.view(), now);
}

}  // namespace popgate::auth
