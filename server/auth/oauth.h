// OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's predecessor): parsing the
// client responses, verifying the bearer token as a JWT (RFC 7519) signed
// with a key from a JWKS file (RFC 7517), and the failure replies.
//
// Only self-contained JWT access tokens are accepted; nothing here talks to
// the network (no introspection, no JWKS fetching: ops refreshes the file
// and builds a new verifier). Signature algorithms: RS256 RS384 RS512 PS256
// PS384 PS512 ES256 ES384 EdDSA (Ed25519). "none" and the HMAC algorithms
// are always refused, as is any token whose "alg" does not fit its key.
//
// A JwksVerifier is immutable once built, so one may be shared by every
// shard. verify() and authenticate() are noexcept; they allocate (JSON,
// OpenSSL) but a login happens once per session, not per command.
// Must not know: sessions, storage, the POP3 framing (base64 lines).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/auth/fixed_string.h"

namespace popgate::auth {

inline constexpr size_t kOAuthTokenBytesMax = 12 * 1024;  // a SASL line of 16 KiB, decoded
inline constexpr size_t kOAuthUserBytesMax = 320;         // a long e-mail address
inline constexpr int64_t kJwtLeewaySecondsDefault = 60;   // clock skew tolerated on exp/nbf
inline constexpr int64_t kJwtLeewaySecondsMax = 300;
inline constexpr int kRsaKeyBitsMin = 2048;

enum class OAuthStatus : uint8_t {
  kOk,
  kMalformedResponse,     // not an OAUTHBEARER / XOAUTH2 client response
  kMalformedToken,        // not a compact JWS: parts, base64url, JSON; no "exp"
  kUnsupportedAlgorithm,  // "none", HS*, an algorithm we lack, or a "crit" header
  kUnknownKey,            // no key with the token's "kid" (or, without kid, not exactly one fits)
  kKeyAlgorithmMismatch,  // the "kid" key is of another type, curve or pinned "alg"
  kBadSignature,
  kExpired,        // exp + leeway <= now
  kNotYetValid,    // nbf - leeway > now
  kWrongIssuer,    // "iss" is not the configured issuer
  kWrongAudience,  // "aud" names none of the configured audiences
  kNoUser,         // the user claim is missing, not a string, too long, or email_verified false
  kUserMismatch,   // the token's user is not the SASL authzid / XOAUTH2 user
};
// Short, stable names for logs and counters ("expired", "bad_signature"...).
[[nodiscard]] std::string_view oauth_status_name(OAuthStatus status) noexcept;

enum class BearerMechanism : uint8_t { kOAuthBearer, kXoauth2 };

// A parsed client response. `token` points into the response given.
struct BearerResponse {
  // OAUTHBEARER's lone "\x01" after our failure JSON.
  bool error_ack = false;
  // OAUTHBEARER "a=" (decoded) / XOAUTH2 "user="; may be empty.
  FixedString<kOAuthUserBytesMax> user;
  // The JWT after "Bearer ".
  std::string_view token;
};

// RFC 7628 section 3.1: gs2-header ("n" or "y", optional a=authzid) "\x01",
// key=value pairs each ended by "\x01", then "\x01"; "auth=Bearer <token>"
// required, other keys (host, port) ignored; "p=" channel binding refused.
// A response of just "\x01" sets error_ack.
[[nodiscard]] OAuthStatus parse_oauthbearer(std::string_view response,
                                            BearerResponse* out) noexcept;
// "user=<user>\x01auth=Bearer <token>\x01\x01".
[[nodiscard]] OAuthStatus parse_xoauth2(std::string_view response, BearerResponse* out) noexcept;

struct OAuthConfig {
  std::string issuer;                  // required: "iss" must equal it
  std::vector<std::string> audiences;  // required: "aud" must name one of them
  std::string user_claim = "email";    // where the login name is
  int64_t leeway_s = kJwtLeewaySecondsDefault;
  // Advertised in the failure JSON (RFC 7628 section 3.2.2); "" leaves out.
  std::string scope;
  std::string openid_configuration;  // URL of the issuer's discovery document
};

struct OAuthVerdict {
  OAuthStatus status = OAuthStatus::kMalformedToken;
  FixedString<kOAuthUserBytesMax> user;  // on kOk: from the user claim
};

class JwksVerifier {
 public:
  // Throw std::runtime_error (naming the file and the key) when the JWKS
  // cannot be read or parsed, a key of a supported type is malformed (RSA
  // under kRsaKeyBitsMin bits, a point off its curve), no usable key
  // remains, or the config lacks issuer / audiences / user claim. Keys of
  // other types or uses ("oct", "enc", X25519...) are skipped.
  [[nodiscard]] static JwksVerifier from_file(const std::string& path, OAuthConfig config);
  [[nodiscard]] static JwksVerifier from_json(std::string_view jwks, OAuthConfig config);
  ~JwksVerifier();
  JwksVerifier(JwksVerifier&&) noexcept;
  JwksVerifier& operator=(JwksVerifier&&) noexcept;

  // Verifies a compact JWS and its claims at `now_unix_s` (wall clock), and
  // returns the configured claim as the user. When `sasl_user` is not empty
  // it must equal that user, ignoring ASCII case (logins are lowercase).
  // A claim "email" is refused when "email_verified" is present and not true.
  [[nodiscard]] OAuthVerdict verify(std::string_view jwt, std::string_view sasl_user,
                                    int64_t now_unix_s) const noexcept;
  // parse_*() then verify(). An OAUTHBEARER error_ack is kMalformedResponse.
  [[nodiscard]] OAuthVerdict authenticate(BearerMechanism mechanism,
                                          std::string_view client_response,
                                          int64_t now_unix_s) const noexcept;

  // The challenge to send (base64-encoded by the POP3 core) when a token is
  // refused; the client answers it with "\x01" (OAUTHBEARER) or an empty
  // line (XOAUTH2) and gets -ERR. Computed once at load.
  [[nodiscard]] std::string_view failure_json(BearerMechanism mechanism) const noexcept;

  [[nodiscard]] size_t key_count() const noexcept;
  [[nodiscard]] size_t skipped_key_count() const noexcept { return skipped_keys_; }

 private:
  struct Key;
  friend struct KeySelection;  // jwks.cc
  JwksVerifier() = default;

  std::vector<Key> keys_;
  size_t skipped_keys_ = 0;
  OAuthConfig config_;
  std::string oauthbearer_failure_;
  std::string xoauth2_failure_;
};

// {"status":"invalid_token","scope":"...","openid-configuration":"..."},
// members with empty values left out.
[[nodiscard]] std::string oauthbearer_failure_json(std::string_view scope,
                                                   std::string_view openid_configuration);
// {"status":"401","schemes":"bearer","scope":"..."}.
[[nodiscard]] std::string xoauth2_failure_json(std::string_view scope);

}  // namespace popgate::auth
