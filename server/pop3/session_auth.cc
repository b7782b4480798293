// AUTHORIZATION: USER/PASS, APOP, STLS, UTF8, CAPA, and the login sequence
// every mechanism shares: look the user up, check the credentials (outside),
// apply the tenant's policy, then take the lock and the snapshot. QUIT and
// its UPDATE are here too. SASL framing is in session_sasl.cc.
#include <algorithm>
#include <cstring>

#include "server/pop3/session.h"
#include "server/pop3/utf8.h"

namespace popgate::pop3 {
namespace {

struct MechanismName {
  Mechanism mechanism;
  std::string_view name;
};
constexpr std::array<MechanismName, 7> kMechanismNames{{
    {kMechUser, "USER"},
    {kMechApop, "APOP"},
    {kMechPlain, "PLAIN"},
    {kMechLogin, "LOGIN"},
    {kMechScramSha256, "SCRAM-SHA-256"},
    {kMechOauthBearer, "OAUTHBEARER"},
    {kMechXoauth2, "XOAUTH2"},
}};

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (x != b[i]) return false;
  }
  return true;
}

constexpr std::array<std::string_view, kAuthOutcomes> kAuthOutcomeNames = {
    "success", "bad_credentials", "temporary", "policy", "login_delay",
    "limit",   "in_use",          "open_failure", "cancelled", "malformed"};

}  // namespace

size_t mechanism_index(Mechanism m) noexcept {
  for (size_t i = 0; i < kMechanismNames.size(); ++i) {
    if (kMechanismNames[i].mechanism == m) return i;
  }
  return 0;
}

Mechanism mechanism_at(size_t index) noexcept {
  return index < kMechanismNames.size() ? kMechanismNames[index].mechanism : kMechUser;
}

std::string_view auth_outcome_name(AuthOutcome o) noexcept {
  const auto i = static_cast<size_t>(o);
  return i < kAuthOutcomeNames.size() ? kAuthOutcomeNames[i] : "unknown";
}

void Session::count_auth(AuthOutcome o) noexcept {
  counters_.auth[mechanism_index(mechanism_)][static_cast<size_t>(o)].add();
}

std::string_view mechanism_name(Mechanism m) noexcept {
  return kMechanismNames[mechanism_index(m)].name;
}

Mechanism mechanism_from_name(std::string_view name) noexcept {
  for (const auto& entry : kMechanismNames) {
    if (iequals(name, entry.name)) return entry.mechanism;
  }
  return static_cast<Mechanism>(0);
}

uint32_t parse_mechanism_list(std::string_view list) noexcept {
  uint32_t bits = 0;
  std::string_view parts[8];
  bool extra = false;
  const size_t n = split_args(list, parts, 8, &extra);
  for (size_t i = 0; i < n; ++i) bits |= mechanism_from_name(parts[i]);
  return bits;
}

// ---- Secrets ---------------------------------------------------------------

void Session::wipe_password() noexcept {
  // volatile: the compiler may not drop a store to memory it thinks is dead.
  volatile char* p = pass_.data();
  for (size_t i = 0; i < pass_len_; ++i) p[i] = 0;
  pass_len_ = 0;
  for (std::string* secret : {&password_hash_, &sasl_text_}) {
    if (secret->empty()) continue;
    volatile char* q = secret->data();
    for (size_t i = 0; i < secret->size(); ++i) q[i] = 0;
    secret->clear();
  }
}

bool Session::mechanism_offered(Mechanism m) const noexcept {
  if ((config_.mechanisms & m) == 0) return false;
  switch (m) {
    case kMechUser:
    case kMechPlain:
    case kMechLogin:
      return cleartext_ok();
    case kMechOauthBearer:
    case kMechXoauth2:
      return secure_;  // a bearer token is a password; never in clear
    case kMechApop:
      return config_.apop && !apop_banner_.empty();
    case kMechScramSha256:
      return true;  // nothing replayable crosses the wire
  }
  return false;
}

// A login name as typed: UTF-8 only after the UTF8 command (RFC 6856).
bool Session::accept_login_name(std::string_view name, Verb verb) {
  if (name.empty()) {
    bad_command("user name required");
    return false;
  }
  if (name.size() > user_.size()) {
    command_failed(verb, RespCode::kNone, "user name too long");
    return false;
  }
  if (!is_ascii(name) && !utf8_) {
    command_failed(verb, RespCode::kUtf8, "UTF-8 user names need the UTF8 command first");
    return false;
  }
  if (!is_valid_utf8(name)) {
    command_failed(verb, RespCode::kUtf8, "user name is not valid UTF-8");
    return false;
  }
  return true;
}

// Copies a login name and password (views that may point into sasl_text_,
// which is left alone: the caller wipes it).
bool Session::set_credentials(std::string_view login, std::string_view password, Verb verb) {
  if (!accept_login_name(login, verb)) return false;
  if (password.size() > pass_.size()) {
    command_failed(verb, RespCode::kNone, "password too long");
    return false;
  }
  user_len_ = login.size();
  std::memmove(user_.data(), login.data(), user_len_);
  volatile char* p = pass_.data();
  for (size_t i = pass_len_; i > 0; --i) p[i - 1] = 0;
  pass_len_ = password.size();
  // A bearer login has no password: an empty view may have a null data().
  if (pass_len_ > 0) std::memcpy(pass_.data(), password.data(), pass_len_);
  return true;
}

// ---- USER / PASS / APOP ------------------------------------------------------

void Session::cmd_user(std::string_view args, TimePoint) {
  if (!mechanism_offered(kMechUser)) {
    command_failed(Verb::kUser, RespCode::kAuth,
                   cleartext_ok() ? "USER is not enabled" : "cleartext login not allowed on this connection; use STLS");
    return;
  }
  if (!accept_login_name(args, Verb::kUser)) return;
  user_len_ = args.size();
  std::memcpy(user_.data(), args.data(), user_len_);
  reply_ok("send PASS");
}

void Session::cmd_pass(std::string_view args, TimePoint) {
  if (!mechanism_offered(kMechUser)) {
    command_failed(Verb::kPass, RespCode::kAuth,
                   cleartext_ok() ? "USER is not enabled" : "cleartext login not allowed on this connection; use STLS");
    return;
  }
  if (user_len_ == 0) {
    bad_command("USER first");
    return;
  }
  if (args.empty()) {
    bad_command("PASS needs a password");
    return;
  }
  if (!is_ascii(args) && (!utf8_ || !is_valid_utf8(args))) {
    user_len_ = 0;
    command_failed(Verb::kPass, RespCode::kUtf8,
                   utf8_ ? "password is not valid UTF-8" : "UTF-8 passwords need the UTF8 command first");
    return;
  }
  // RFC 1939: the password is the rest of the line, spaces included.
  wipe_password();
  pass_len_ = std::min(args.size(), pass_.size());
  std::memcpy(pass_.data(), args.data(), pass_len_);
  begin_password_login(kMechUser);
}

void Session::cmd_apop(std::string_view args, TimePoint) {
  if (!mechanism_offered(kMechApop)) {
    command_failed(Verb::kApop, RespCode::kNone, "APOP is not available");
    return;
  }
  std::string_view parts[2];
  bool extra = false;
  const size_t n = split_args(args, parts, 2, &extra);
  if (n != 2 || extra) {
    bad_command("APOP needs a name and a digest");
    return;
  }
  const std::string_view digest = parts[1];
  const bool hex = digest.size() == 32 && std::all_of(digest.begin(), digest.end(), [](char c) {
                     return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
                   });
  if (!hex) {
    bad_command("APOP digest must be 32 hex digits");
    return;
  }
  if (!set_credentials(parts[0], digest, Verb::kApop)) return;
  mechanism_ = kMechApop;
  login_started_ = last_now_;
  unknown_user_ = false;
  Request r;
  r.kind = RequestKind::kLookupUser;
  r.login = login();
  issue(r, Pending::kLookupUser);
}

void Session::begin_password_login(Mechanism m) {
  login_started_ = last_now_;  // the line that carried the credentials
  mechanism_ = m;
  unknown_user_ = false;
  Request r;
  r.kind = RequestKind::kLookupUser;
  r.login = login();
  issue(r, Pending::kLookupUser);
}

// ---- The login sequence -------------------------------------------------------

void Session::handle_user_found(const UserInfo& user, TimePoint now) {
  expect(Pending::kLookupUser);
  if (shutting_down_) {
    handle_shutdown_reply(now);
    return;
  }
  tenant_id_ = user.tenant_id;
  user_id_ = user.user_id;
  login_delay_s_ = user.login_delay_s;
  expire_days_ = user.expire_days;
  policy_require_tls_ = user.require_tls;
  policy_hide_deleted_ = user.hide_deleted;
  policy_mechanisms_ = user.mechanisms;
  since_last_login_s_ = user.since_last_login_s;
  Request r;
  switch (mechanism_) {
    case kMechUser:
    case kMechPlain:
    case kMechLogin:
      password_hash_.assign(user.password_hash);
      r.kind = RequestKind::kVerifyPassword;
      r.password = {pass_.data(), pass_len_};
      r.password_hash = password_hash_;
      issue(r, Pending::kVerifyPassword);
      return;
    case kMechScramSha256:
      // An imported {SCRAM-SHA-256} password hash is a SCRAM credential too.
      password_hash_.assign(!user.scram_credential.empty() ? user.scram_credential
                            : user.password_hash.rfind("{SCRAM-SHA-256}", 0) == 0 ? user.password_hash
                                                                                 : std::string_view{});
      r.kind = RequestKind::kScramChallenge;
      r.data = password_hash_;
      r.login = login();
      issue(r, Pending::kAuthStep);
      step_ = RequestKind::kScramChallenge;
      return;
    case kMechApop:
      if (user.apop_secret.empty()) {
        fail_login(now);  // no secret: like a wrong digest
        return;
      }
      password_hash_.assign(user.apop_secret);
      r.kind = RequestKind::kVerifyApop;
      r.banner = apop_banner_;
      r.data = {pass_.data(), pass_len_};
      r.secret = password_hash_;
      issue(r, Pending::kAuthStep);
      step_ = RequestKind::kVerifyApop;
      return;
    case kMechOauthBearer:
    case kMechXoauth2:
      open_after_authentication(now);  // the token was verified before the lookup
      return;
  }
}

void Session::handle_user_lookup_failed(StoreStatus status, TimePoint now) {
  expect(Pending::kLookupUser);
  if (shutting_down_) {
    handle_shutdown_reply(now);
    return;
  }
  if (status == StoreStatus::kNotFound) {
    unknown_user_ = true;
    Request r;
    switch (mechanism_) {
      case kMechUser:
      case kMechPlain:
      case kMechLogin:
        // Spend the same KDF time as for a real user, then fail: neither
        // the reply nor its timing tells which names exist.
        r.kind = RequestKind::kVerifyPassword;
        r.password = {pass_.data(), pass_len_};
        r.password_hash = {};
        issue(r, Pending::kVerifyPassword);
        return;
      case kMechScramSha256:
        // A made-up challenge, so the exchange looks the same; it fails at
        // the proof.
        r.kind = RequestKind::kScramChallenge;
        r.data = {};
        r.login = login();
        issue(r, Pending::kAuthStep);
        step_ = RequestKind::kScramChallenge;
        return;
      case kMechApop:
      case kMechOauthBearer:
      case kMechXoauth2:
        fail_login(now);
        return;
    }
  }
  wipe_password();
  end_sasl();
  user_len_ = 0;
  count_auth(AuthOutcome::kTemporary);
  command_failed(current_verb_, code_for(status), "authentication temporarily unavailable");
}

void Session::handle_password_checked(PasswordCheck result, TimePoint now) {
  expect(Pending::kVerifyPassword);
  wipe_password();
  if (shutting_down_) {
    handle_shutdown_reply(now);
    return;
  }
  if (result == PasswordCheck::kUnavailable) {
    user_len_ = 0;
    count_auth(AuthOutcome::kTemporary);
    command_failed(current_verb_, RespCode::kSysTemp, "authentication temporarily unavailable");
    return;
  }
  if (result == PasswordCheck::kMismatch || unknown_user_) {
    fail_login(now);
    return;
  }
  open_after_authentication(now);
}

void Session::fail_login(TimePoint now) {
  wipe_password();
  end_sasl();
  count_auth(AuthOutcome::kBadCredentials);
  ++auth_failures_;
  auth_failed_ = true;
  pending_ = Pending::kAuthDelay;
  failed_at_ = now;
  delay_until_ = now + config_.auth_failure_delay;
}

bool Session::take_auth_failure() noexcept {
  const bool failed = auth_failed_;
  auth_failed_ = false;
  return failed;
}

void Session::set_auth_failure_delay(std::chrono::milliseconds delay, bool close_after) noexcept {
  if (pending_ != Pending::kAuthDelay) return;
  delay_until_ = failed_at_ + delay;
  close_after_failure_ = close_after_failure_ || close_after;
}

void Session::finish_auth_failure(TimePoint now) {
  user_len_ = 0;
  if (close_after_failure_) {
    // The address has failed too often (the shard's call): cut it off.
    counters_.auth_failure_limit.add();
    command_failed(current_verb_, RespCode::kAuth, "invalid user name or password; closing connection");
    close_after_flush(now, EndReason::kAuthFailures);
    return;
  }
  if (auth_failures_ >= kAuthFailuresMax) {
    counters_.auth_failure_limit.add();
    command_failed(current_verb_, RespCode::kAuth,
                   "invalid user name or password; too many failures, closing connection");
    close_after_flush(now, EndReason::kAuthFailures);
    return;
  }
  command_failed(current_verb_, RespCode::kAuth, "invalid user name or password");
}

// The credentials are good. The tenant's policy may still say no; checked
// only now, so a refusal tells nothing to someone without the password.
void Session::open_after_authentication(TimePoint) {
  wipe_password();
  end_sasl();
  if (policy_require_tls_ && !secure_) {
    count_auth(AuthOutcome::kPolicy);
    login_refused(RespCode::kAuth, "this domain requires TLS; use STLS or the TLS port");
    return;
  }
  if (policy_mechanisms_ != 0 && (policy_mechanisms_ & mechanism_) == 0) {
    count_auth(AuthOutcome::kPolicy);
    login_refused(RespCode::kAuth, "this login method is not allowed for this domain");
    return;
  }
  if (login_delay_s_ > 0 && since_last_login_s_ >= 0 && since_last_login_s_ < login_delay_s_) {
    count_auth(AuthOutcome::kLoginDelay);
    LineBuilder b;
    b.add("minimum time between logins is ").add(static_cast<uint64_t>(login_delay_s_)).add(" seconds");
    login_refused(RespCode::kLoginDelay, b.text());
    return;
  }
  Request r;
  r.kind = RequestKind::kOpenMaildrop;
  r.tenant_id = tenant_id_;
  r.user_id = user_id_;
  r.mechanism = mechanism_;
  issue(r, Pending::kOpenMaildrop);
}

void Session::login_refused(RespCode code, std::string_view text) {
  user_len_ = 0;
  command_failed(current_verb_, code, text);
}

void Session::handle_login_refused(RespCode code, std::string_view text, TimePoint now) {
  if (pending_ != Pending::kLookupUser && pending_ != Pending::kVerifyPassword &&
      pending_ != Pending::kAuthStep && pending_ != Pending::kOpenMaildrop) {
    return;  // no login under way: nothing to refuse
  }
  pending_ = Pending::kNone;
  if (shutting_down_) {
    handle_shutdown_reply(now);
    return;
  }
  wipe_password();
  end_sasl();
  count_auth(AuthOutcome::kLimit);
  login_refused(code, text);
}

void Session::handle_maildrop_opened(StoreStatus status, Snapshot&& snapshot, TimePoint now) {
  expect(Pending::kOpenMaildrop);
  if (status == StoreStatus::kOk) holds_maildrop_ = true;
  if (shutting_down_) {
    handle_shutdown_reply(now);
    return;
  }
  if (status != StoreStatus::kOk) {
    user_len_ = 0;
    if (status == StoreStatus::kInUse) {
      count_auth(AuthOutcome::kInUse);
      command_failed(current_verb_, RespCode::kInUse, "maildrop is locked by another session");
    } else {
      count_auth(AuthOutcome::kOpenFailure);
      command_failed(current_verb_, code_for(status), "cannot open maildrop");
    }
    return;
  }
  count_auth(AuthOutcome::kSuccess);
  counters_.login_seconds.observe_duration(std::chrono::duration_cast<std::chrono::microseconds>(now - login_started_));
  snapshot_ = std::move(snapshot);
  deleted_.assign((snapshot_.count() + 63) / 64, 0);
  retrieved_.assign((snapshot_.count() + 63) / 64, 0);
  deleted_count_ = 0;
  deleted_bytes_ = 0;
  total_bytes_ = 0;
  for (uint32_t size : snapshot_.sizes) total_bytes_ += size;
  counters_.maildrop_messages.observe(snapshot_.count());
  counters_.maildrop_kib.observe(total_bytes_ / 1024);
  state_ = State::kTransaction;
  touch(now);
  reply_maildrop_summary();
}

// ---- QUIT and UPDATE -----------------------------------------------------------

void Session::cmd_quit(std::string_view, TimePoint now) {
  if (state_ == State::kAuthorization) {
    reply_ok("popgate signing off");
    close_after_flush(now, EndReason::kQuit);
    return;
  }
  // UPDATE: delete the marked messages and release the lock, all or nothing.
  state_ = State::kUpdate;
  commit_ids_.clear();
  commit_ids_.reserve(deleted_count_);
  for (size_t i = 0; i < snapshot_.count(); ++i) {
    if (is_deleted(i)) commit_ids_.push_back(snapshot_.message_ids[i]);
  }
  collect_end(retrieved_ids_, kept_uidls_);
  Request r;
  r.kind = RequestKind::kCommitUpdate;
  r.tenant_id = tenant_id_;
  r.user_id = user_id_;
  r.message_ids = commit_ids_;
  r.retrieved_ids = retrieved_ids_;
  r.kept_uidls = kept_uidls_;
  r.hide = policy_hide_deleted_;
  issue(r, Pending::kCommit);
}

void Session::collect_end(std::vector<int64_t>& retrieved, std::string& kept_uidls) const {
  retrieved.clear();
  kept_uidls.clear();
  if (state_ == State::kAuthorization) return;
  for (size_t i = 0; i < snapshot_.count(); ++i) {
    if ((retrieved_[i / 64] >> (i % 64)) & 1U) retrieved.push_back(snapshot_.message_ids[i]);
  }
  // The newest messages left in the maildrop (not marked for deletion).
  size_t kept = 0;
  for (size_t i = snapshot_.count(); i > 0 && kept < kKeptUidlsMax; --i) {
    if (is_deleted(i - 1)) continue;
    if (!kept_uidls.empty()) kept_uidls += ' ';
    kept_uidls += snapshot_.uidl(i - 1);
    ++kept;
  }
}

void Session::handle_update_committed(StoreStatus status, uint64_t deleted, TimePoint now) {
  expect(Pending::kCommit);
  state_ = State::kDone;
  if (status == StoreStatus::kOk) {
    holds_maildrop_ = false;  // the commit released it
    counters_.update_commits.add();
    counters_.update_messages_deleted.add(deleted);
    LineBuilder b;
    reply(b.add("+OK popgate signing off (").add(deleted).add(" messages deleted)").finish());
  } else if (commit_ids_.empty()) {
    // Nothing was marked, so UPDATE had nothing to remove: that part cannot
    // have failed, and RFC 1939 says +OK. What did fail is bookkeeping that
    // loses no mail: the lock lapses with its lease (the shard also tries
    // to release it), and the retrieval times and kept UIDLs of this
    // session are not recorded. A storm of such QUITs (every session of a
    // drained instance at once) must not show clients an error.
    counters_.update_failures.add();
    reply("+OK popgate signing off (0 messages deleted)\r\n");
  } else {
    counters_.update_failures.add();
    // kInUse here means the lock was lost (lease taken over): still nothing
    // was deleted, and the client should simply try again later.
    command_failed(Verb::kQuit, RespCode::kSysTemp,
                   "could not remove deleted messages; none were removed");
  }
  close_after_flush(now, EndReason::kQuit);
}

// ---- CAPA, NOOP, STLS, UTF8 ---------------------------------------------------------

void Session::cmd_capa(std::string_view, TimePoint) {
  // Fits the room kept for a status line: at most ~300 octets.
  reply("+OK capability list follows\r\n");
  reply("TOP\r\n");
  reply("UIDL\r\n");
  if (mechanism_offered(kMechUser)) reply("USER\r\n");
  {
    LineBuilder b;
    b.add("SASL");
    for (Mechanism m : {kMechPlain, kMechLogin, kMechScramSha256, kMechOauthBearer, kMechXoauth2}) {
      if (mechanism_offered(m)) b.add(" ").add(mechanism_name(m));
    }
    if (b.size() > 4) reply(b.finish());
  }
  if (config_.tls_available && !secure_) reply("STLS\r\n");
  reply("RESP-CODES\r\n");
  reply("AUTH-RESP-CODE\r\n");
  reply("PIPELINING\r\n");
  // RFC 2449 sections 6.5 and 6.7: before login the value may differ per
  // user (USER); after login it is this user's tenant's.
  const bool before_login = state_ == State::kAuthorization;
  const int64_t delay = before_login ? config_.capa_login_delay_s : login_delay_s_;
  const int64_t expire = before_login ? config_.capa_expire_days : expire_days_;
  {
    LineBuilder b;
    b.add("LOGIN-DELAY ").add(static_cast<uint64_t>(std::max<int64_t>(0, delay)));
    if (before_login) b.add(" USER");
    reply(b.finish());
  }
  {
    LineBuilder b;
    b.add("EXPIRE ");
    if (expire < 0) {
      b.add("NEVER");
    } else {
      b.add(static_cast<uint64_t>(expire));
    }
    if (before_login) b.add(" USER");
    reply(b.finish());
  }
  reply("UTF8 USER\r\n");
  if (!config_.implementation.empty()) {
    LineBuilder b;
    reply(b.add("IMPLEMENTATION ").add(std::string_view(config_.implementation).substr(0, 64)).finish());
  }
  reply(".\r\n");
}

void Session::cmd_noop(std::string_view args, TimePoint) {
  if (!args.empty()) {
    bad_command("NOOP takes no arguments");
    return;
  }
  reply_ok("");
}

void Session::cmd_stls(std::string_view args, TimePoint) {
  if (!args.empty()) {
    bad_command("STLS takes no arguments");
    return;
  }
  if (!config_.tls_available) {
    command_failed(Verb::kStls, RespCode::kNone, "STLS is not available");
    return;
  }
  if (secure_) {
    command_failed(Verb::kStls, RespCode::kNone, "TLS is already active");
    return;
  }
  reply_ok("begin TLS negotiation");
  stls_ = Stls::kAccepted;
  user_len_ = 0;
  wipe_password();
  counters_.stls_started.add();
}

void Session::handle_tls_started(TimePoint now) {
  // RFC 2595 section 4: everything learned before TLS is forgotten; the
  // client asks CAPA again.
  stls_ = Stls::kNone;
  secure_ = true;
  utf8_ = false;
  user_len_ = 0;
  reader_.reset();
  touch(now);
}

void Session::cmd_utf8(std::string_view args, TimePoint) {
  if (!args.empty()) {
    bad_command("UTF8 takes no arguments");
    return;
  }
  utf8_ = true;
  counters_.utf8_enabled.add();
  reply_ok("UTF8 enabled");
}

void Session::handle_shutdown_reply(TimePoint now) {
  pending_ = Pending::kNone;
  wipe_password();
  end_sasl();
  reply_err(RespCode::kSysTemp, end_text_);
  close_after_flush(now, end_reason_pending_);
}

}  // namespace popgate::pop3
