// SASL AUTH (RFC 5034): the command, its continuation lines ("+ base64"
// challenges, base64 responses, "*" to cancel) and the mechanisms' framing.
// PLAIN and LOGIN are parsed here (no cryptography); SCRAM-SHA-256 and the
// bearer mechanisms hand their messages out as requests, and the answers
// come back through handle_auth_step().
#include <algorithm>

#include "server/pop3/base64.h"
#include "server/pop3/session.h"
#include "server/pop3/utf8.h"

namespace popgate::pop3 {

void Session::cmd_auth(std::string_view args, TimePoint now) {
  std::string_view parts[2];
  bool extra = false;
  const size_t n = split_args(args, parts, 2, &extra);
  if (n == 0) {
    // Not in RFC 5034, but Outlook and others list mechanisms this way.
    reply("+OK\r\n");
    for (Mechanism m : {kMechPlain, kMechLogin, kMechScramSha256, kMechOauthBearer, kMechXoauth2}) {
      if (!mechanism_offered(m)) continue;
      LineBuilder b;
      reply(b.add(mechanism_name(m)).finish());
    }
    reply(".\r\n");
    return;
  }
  if (extra) {
    bad_command("AUTH takes a mechanism and at most an initial response");
    return;
  }
  const Mechanism m = mechanism_from_name(parts[0]);
  if (m == 0 || m == kMechUser || m == kMechApop || (config_.mechanisms & m) == 0) {
    command_failed(Verb::kAuth, RespCode::kNone, "unsupported authentication mechanism");
    return;
  }
  if (!mechanism_offered(m)) {
    command_failed(Verb::kAuth, RespCode::kAuth,
                   m == kMechOauthBearer || m == kMechXoauth2
                       ? "bearer tokens are accepted over TLS only"
                       : "cleartext login not allowed on this connection; use STLS");
    return;
  }
  mechanism_ = m;
  login_started_ = now;
  user_len_ = 0;
  unknown_user_ = false;
  switch (m) {
    case kMechPlain: sasl_ = Sasl::kPlainResponse; break;
    case kMechLogin: sasl_ = Sasl::kLoginUser; break;
    case kMechScramSha256: sasl_ = Sasl::kScramFirst; break;
    default: sasl_ = Sasl::kBearerResponse; break;
  }
  reader_.set_sasl_mode(true);
  if (n == 2) {
    // Initial response (RFC 5034 section 4); "=" is an empty one.
    if (parts[1] == "=") {
      sasl_text_.clear();
    } else if (!base64_decode(parts[1], sasl_text_)) {
      sasl_abort("initial response is not valid base64");
      return;
    }
    sasl_response(sasl_text_, now);
    return;
  }
  sasl_challenge(m == kMechLogin ? "Username:" : "");
}

void Session::handle_sasl_line(std::string_view line, TimePoint now) {
  current_verb_ = Verb::kAuth;
  if (line == "*") {
    count_auth(AuthOutcome::kCancelled);
    end_sasl();
    user_len_ = 0;
    command_failed(Verb::kAuth, RespCode::kNone, "authentication cancelled");
    return;
  }
  if (sasl_ == Sasl::kScramAck) {
    // The client's (empty) answer to the server-final message.
    if (!line.empty()) {
      sasl_abort("expected an empty response");
      return;
    }
    open_after_authentication(now);
    return;
  }
  if (sasl_ == Sasl::kBearerErrorAck) {
    fail_login(now);  // RFC 7628 3.2.3
    return;
  }
  // `line` lives in the line reader, never in sasl_text_.
  if (!base64_decode(line, sasl_text_)) {
    sasl_abort("response is not valid base64");
    return;
  }
  sasl_response(sasl_text_, now);
}

// `decoded` is the client's message for the current step (it may alias
// sasl_text_, which requests below also point into).
void Session::sasl_response(std::string_view decoded, TimePoint now) {
  Request r;
  switch (sasl_) {
    case Sasl::kPlainResponse:
      sasl_plain(decoded, now);
      return;
    case Sasl::kLoginUser:
      if (!is_valid_utf8(decoded) || decoded.empty() || decoded.size() > user_.size()) {
        sasl_abort("invalid user name");
        return;
      }
      user_len_ = decoded.size();
      std::copy(decoded.begin(), decoded.end(), user_.begin());
      sasl_ = Sasl::kLoginPassword;
      sasl_challenge("Password:");
      return;
    case Sasl::kLoginPassword: {
      if (!is_valid_utf8(decoded) || decoded.empty() || decoded.size() > pass_.size()) {
        sasl_abort("invalid password");
        return;
      }
      if (!set_credentials(login(), decoded, Verb::kAuth)) {
        end_sasl();
        return;
      }
      end_sasl();  // wipes the decoded copy
      begin_password_login(kMechLogin);
      return;
    }
    case Sasl::kScramFirst:
      r.kind = RequestKind::kScramStart;
      r.data = decoded;
      sasl_ = Sasl::kScramFinal;  // the next line is the client-final message
      issue(r, Pending::kAuthStep);
      step_ = RequestKind::kScramStart;
      return;
    case Sasl::kScramFinal:
      r.kind = RequestKind::kScramFinish;
      r.data = decoded;
      r.login = login();
      issue(r, Pending::kAuthStep);
      step_ = RequestKind::kScramFinish;
      return;
    case Sasl::kBearerResponse:
      r.kind = RequestKind::kVerifyBearer;
      r.mechanism = mechanism_;
      r.data = decoded;
      issue(r, Pending::kAuthStep);
      step_ = RequestKind::kVerifyBearer;
      return;
    case Sasl::kScramAck:
    case Sasl::kBearerErrorAck:
    case Sasl::kNone:
      return;
  }
}

// message = authzid NUL authcid NUL passwd (RFC 4616).
void Session::sasl_plain(std::string_view message, TimePoint) {
  const size_t first = message.find('\0');
  const size_t second = first == std::string_view::npos ? first : message.find('\0', first + 1);
  if (second == std::string_view::npos || message.find('\0', second + 1) != std::string_view::npos) {
    sasl_abort("malformed PLAIN message");
    return;
  }
  const std::string_view authzid = message.substr(0, first);
  const std::string_view authcid = message.substr(first + 1, second - first - 1);
  const std::string_view password = message.substr(second + 1);
  if (authcid.empty() || password.empty() || !is_valid_utf8(message)) {
    sasl_abort("malformed PLAIN message");
    return;
  }
  // No proxy authorization: acting as another user is not a thing here.
  if (!authzid.empty() && authzid != authcid) {
    end_sasl();
    count_auth(AuthOutcome::kMalformed);
    command_failed(Verb::kAuth, RespCode::kAuth, "authorization identity must be empty or the user itself");
    return;
  }
  const bool ok = set_credentials(authcid, password, Verb::kAuth);
  end_sasl();  // wipes the decoded message, password included
  if (ok) begin_password_login(kMechPlain);
}

void Session::handle_auth_step(AuthStep result, std::string_view data, TimePoint now) {
  expect(Pending::kAuthStep);
  if (shutting_down_) {
    handle_shutdown_reply(now);
    return;
  }
  if (result == AuthStep::kUnavailable) {
    end_sasl();
    wipe_password();
    user_len_ = 0;
    count_auth(AuthOutcome::kTemporary);
    command_failed(current_verb_, RespCode::kSysTemp, "authentication temporarily unavailable");
    return;
  }
  const bool ok = result == AuthStep::kOk;
  switch (step_) {
    case RequestKind::kScramStart:
      // data: the user name from the client-first message.
      if (!ok || !accept_login_name(data, Verb::kAuth)) {
        if (!ok) sasl_abort("invalid SCRAM client-first message");
        end_sasl();
        return;
      }
      user_len_ = data.size();
      std::copy(data.begin(), data.end(), user_.begin());
      begin_password_login(kMechScramSha256);
      return;
    case RequestKind::kScramChallenge:
      if (!ok) {
        sasl_abort("SCRAM exchange failed");
        return;
      }
      sasl_ = Sasl::kScramFinal;
      sasl_challenge(data);  // server-first-message
      return;
    case RequestKind::kScramFinish:
      if (!ok || unknown_user_) {
        fail_login(now);
        return;
      }
      sasl_ = Sasl::kScramAck;
      sasl_challenge(data);  // server-final-message: v=...
      return;
    case RequestKind::kVerifyBearer:
      if (ok) {
        const std::string name(data);
        const Mechanism m = mechanism_;
        end_sasl();
        if (!set_credentials(name, {}, Verb::kAuth)) return;
        mechanism_ = m;
        Request r;
        r.kind = RequestKind::kLookupUser;
        r.login = login();
        issue(r, Pending::kLookupUser);
        return;
      }
      if (!data.empty()) {
        // RFC 7628 3.2.2: the error goes out as a challenge; the client
        // answers with a dummy response, then we fail.
        sasl_ = Sasl::kBearerErrorAck;
        sasl_challenge(data);
        return;
      }
      fail_login(now);
      return;
    case RequestKind::kVerifyApop:
      if (!ok) {
        fail_login(now);
        return;
      }
      open_after_authentication(now);
      return;
    default:
      return;
  }
}

void Session::sasl_challenge(std::string_view raw) {
  std::string encoded;
  base64_encode(raw, encoded);
  LineBuilder b;
  reply(b.add("+ ").add(encoded).finish());
}

void Session::sasl_abort(std::string_view text) {
  end_sasl();
  wipe_password();
  user_len_ = 0;
  count_auth(AuthOutcome::kMalformed);
  bad_command(text);
}

void Session::end_sasl() noexcept {
  if (sasl_ == Sasl::kNone && sasl_text_.empty()) return;
  sasl_ = Sasl::kNone;
  reader_.set_sasl_mode(false);
  volatile char* q = sasl_text_.data();
  for (size_t i = 0; i < sasl_text_.size(); ++i) q[i] = 0;
  sasl_text_.clear();
}

}  // namespace popgate::pop3
