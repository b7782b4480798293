// OAUTHBEARER / XOAUTH2 client responses and failure replies. The JWT
// verification is in jwks.cc.
#include "server/auth/oauth.h"
#include "server/auth/sasl_text.h"

#include <nlohmann/json.hpp>

namespace popgate::auth {
namespace {

constexpr char kKvSep = '\x01';

bool alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 7628 value = *(VCHAR / SP / HTAB / CR / LF)
bool valid_value(std::string_view value) noexcept {
  for (const char c : value) {
    const bool ok = (c >= 0x20 && c <= 0x7e) || c == '\t' || c == '\r' || c == '\n';
    if (!ok) return false;
  }
  return true;
}

// RFC 6750 b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool valid_b64token(std::string_view token) noexcept {
  size_t i = 0;
  for (; i < token.size(); ++i) {
    const char c = token[i];
    const bool ok = alpha(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                    c == '~' || c == '+' || c == '/';
    if (!ok) break;
  }
  if (i == 0) return false;
  for (; i < token.size(); ++i) {
    if (token[i] != '=') return false;
  }
  return true;
}

// "Bearer" 1*SP b64token, the scheme name case-insensitive.
bool bearer_token(std::string_view auth, std::string_view* token) noexcept {
  constexpr std::string_view kBearer = "Bearer";
  if (auth.size() <= kBearer.size() || !iequals_ascii(auth.substr(0, kBearer.size()), kBearer) ||
      auth[kBearer.size()] != ' ') {
    return false;
  }
  auth.remove_prefix(kBearer.size());
  while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
  if (auth.size() > kOAuthTokenBytesMax || !valid_b64token(auth)) return false;
  *token = auth;
  return true;
}

// key=value pairs, each ended by \x01, then a final \x01 and nothing after.
// Fills `auth` and `user` (when asked for) and refuses duplicates of them.
bool parse_kvpairs(std::string_view rest, std::string_view* auth, std::string_view* user) noexcept {
  bool seen_auth = false;
  bool seen_user = false;
  while (true) {
    const size_t sep = rest.find(kKvSep);
    if (sep == std::string_view::npos) return false;
    const std::string_view pair = rest.substr(0, sep);
    rest.remove_prefix(sep + 1);
    if (pair.empty()) return rest.empty() && seen_auth;
    const size_t eq = pair.find('=');
    if (eq == 0 || eq == std::string_view::npos) return false;
    const std::string_view key = pair.substr(0, eq);
    const std::string_view value = pair.substr(eq + 1);
    for (const char c : key) {
      if (!alpha(c)) return false;
    }
    if (!valid_value(value)) return false;
    if (key == "auth") {
      if (seen_auth) return false;
      seen_auth = true;
      *auth = value;
    } else if (user != nullptr && key == "user") {
      if (seen_user) return false;
      seen_user = true;
      *user = value;
    }
  }
}

}  // namespace

std::string_view oauth_status_name(OAuthStatus status) noexcept {
  switch (status) {
    case OAuthStatus::kOk:
      return "ok";
    case OAuthStatus::kMalformedResponse:
      return "malformed_response";
    case OAuthStatus::kMalformedToken:
      return "malformed_token";
    case OAuthStatus::kUnsupportedAlgorithm:
      return "unsupported_algorithm";
    case OAuthStatus::kUnknownKey:
      return "unknown_key";
    case OAuthStatus::kKeyAlgorithmMismatch:
      return "key_algorithm_mismatch";
    case OAuthStatus::kBadSignature:
      return "bad_signature";
    case OAuthStatus::kExpired:
      return "expired";
    case OAuthStatus::kNotYetValid:
      return "not_yet_valid";
    case OAuthStatus::kWrongIssuer:
      return "wrong_issuer";
    case OAuthStatus::kWrongAudience:
      return "wrong_audience";
    case OAuthStatus::kNoUser:
      return "no_user";
    case OAuthStatus::kUserMismatch:
      return "user_mismatch";
  }
  return "unknown";
}

OAuthStatus parse_oauthbearer(std::string_view response, BearerResponse* out) noexcept {
  out->error_ack = false;
  out->user.clear();
  out->token = {};
  if (response == std::string_view(&kKvSep, 1)) {
    out->error_ack = true;
    return OAuthStatus::kOk;
  }
  // gs2-header = ("n" / "y") "," [ "a=" saslname ] ","   ("p=": refused)
  if (response.size() < 3 || (response[0] != 'n' && response[0] != 'y') || response[1] != ',') {
    return OAuthStatus::kMalformedResponse;
  }
  std::string_view rest = response.substr(2);
  const size_t comma = rest.find(',');
  if (comma == std::string_view::npos) return OAuthStatus::kMalformedResponse;
  const std::string_view authzid = rest.substr(0, comma);
  rest.remove_prefix(comma + 1);
  // A refusal leaves nothing behind: decode_saslname may have stored part
  // of a name before the octet it refused.
  if (!authzid.empty() && (!authzid.starts_with("a=") || authzid.size() == 2 ||
                           !decode_saslname(authzid.substr(2), out->user))) {
    out->user.clear();
    return OAuthStatus::kMalformedResponse;
  }
  if (rest.empty() || rest.front() != kKvSep) {
    out->user.clear();
    return OAuthStatus::kMalformedResponse;
  }
  rest.remove_prefix(1);
  std::string_view auth;
  if (!parse_kvpairs(rest, &auth, nullptr) || !bearer_token(auth, &out->token)) {
    out->user.clear();
    return OAuthStatus::kMalformedResponse;
  }
  return OAuthStatus::kOk;
}

OAuthStatus parse_xoauth2(std::string_view response, BearerResponse* out) noexcept {
  out->error_ack = false;
  out->user.clear();
  out->token = {};
  std::string_view auth;
  std::string_view user;
  if (!parse_kvpairs(response, &auth, &user) || user.empty() || !out->user.assign(user) ||
      !bearer_token(auth, &out->token)) {
    out->user.clear();
    out->token = {};
    return OAuthStatus::kMalformedResponse;
  }
  return OAuthStatus::kOk;
}

std::string oauthbearer_failure_json(std::string_view scope,
                                     std::string_view openid_configuration) {
  nlohmann::ordered_json j;
  j["status"] = "invalid_token";
  if (!scope.empty()) j["scope"] = std::string(scope);
  if (!openid_configuration.empty()) {
    j["openid-configuration"] = std::string(openid_configuration);
  }
  return j.dump();
}

std::string xoauth2_failure_json(std::string_view scope) {
  nlohmann::ordered_json j;
  j["status"] = "401";
  j["schemes"] = "bearer";
  if (!scope.empty()) j["scope"] = std::string(scope);
  return j.dump();
}

}  // namespace popgate::auth
