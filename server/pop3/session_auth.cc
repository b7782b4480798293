// AUTHORIZATION: USER, PASS and the login sequence (look the user up, verify
// the password off-thread, take the lock and the snapshot); QUIT and its
// UPDATE; CAPA and NOOP.
#include <algorithm>
#include <cstring>

#include "server/pop3/session.h"

namespace popgate::pop3 {

void Session::wipe_password() noexcept {
  // volatile: the compiler may not drop a store to memory it thinks is dead.
  volatile char* p = pass_.data();
  for (size_t i = 0; i < pass_len_; ++i) p[i] = 0;
  pass_len_ = 0;
  if (!password_hash_.empty()) {
    std::fill(password_hash_.begin(), password_hash_.end(), '\0');
    password_hash_.clear();
  }
}

void Session::cmd_user(std::string_view args, TimePoint) {
  if (!config_.allow_cleartext_login) {
    command_failed(Verb::kUser, RespCode::kAuth, "cleartext login not allowed on this connection");
    return;
  }
  if (args.empty()) {
    bad_command("USER needs a user name");
    return;
  }
  // The line limit bounds args to kLoginBytesMax.
  user_len_ = std::min(args.size(), user_.size());
  std::memcpy(user_.data(), args.data(), user_len_);
  reply_ok("send PASS");
}

void Session::cmd_pass(std::string_view args, TimePoint) {
  if (!config_.allow_cleartext_login) {
    command_failed(Verb::kPass, RespCode::kAuth, "cleartext login not allowed on this connection");
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
  // RFC 1939: the password is the rest of the line, spaces included.
  pass_len_ = std::min(args.size(), pass_.size());
  std::memcpy(pass_.data(), args.data(), pass_len_);
  unknown_user_ = false;
  Request r;
  r.kind = RequestKind::kLookupUser;
  r.login = login();
  issue(r, Pending::kLookupUser);
}

void Session::handle_user_found(int64_t tenant_id, int64_t user_id,
                                std::string_view password_hash, TimePoint now) {
  expect(Pending::kLookupUser);
  if (shutting_down_) {
    handle_shutdown_reply(now);
    return;
  }
  tenant_id_ = tenant_id;
  user_id_ = user_id;
  password_hash_.assign(password_hash);
  Request r;
  r.kind = RequestKind::kVerifyPassword;
  r.password = {pass_.data(), pass_len_};
  r.password_hash = password_hash_;
  issue(r, Pending::kVerifyPassword);
}

void Session::handle_user_lookup_failed(StoreStatus status, TimePoint now) {
  expect(Pending::kLookupUser);
  if (shutting_down_) {
    handle_shutdown_reply(now);
    return;
  }
  if (status == StoreStatus::kNotFound) {
    // Spend the same KDF time as for a real user, then fail: the reply and
    // its timing do not tell which names exist.
    unknown_user_ = true;
    Request r;
    r.kind = RequestKind::kVerifyPassword;
    r.password = {pass_.data(), pass_len_};
    r.password_hash = {};
    issue(r, Pending::kVerifyPassword);
    return;
  }
  wipe_password();
  user_len_ = 0;
  counters_.auth_temporary.add();
  command_failed(Verb::kPass, code_for(status), "authentication temporarily unavailable");
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
    counters_.auth_temporary.add();
    command_failed(Verb::kPass, RespCode::kSysTemp, "authentication temporarily unavailable");
    return;
  }
  if (result == PasswordCheck::kMismatch || unknown_user_) {
    counters_.auth_failure.add();
    ++auth_failures_;
    pending_ = Pending::kAuthDelay;
    delay_until_ = now + config_.auth_failure_delay;
    return;
  }
  Request r;
  r.kind = RequestKind::kOpenMaildrop;
  r.tenant_id = tenant_id_;
  r.user_id = user_id_;
  issue(r, Pending::kOpenMaildrop);
}

void Session::finish_auth_failure(TimePoint now) {
  user_len_ = 0;
  if (auth_failures_ >= kAuthFailuresMax) {
    counters_.auth_failure_limit.add();
    command_failed(Verb::kPass, RespCode::kAuth,
                   "invalid user name or password; too many failures, closing connection");
    close_after_flush(now, EndReason::kAuthFailures);
    return;
  }
  command_failed(Verb::kPass, RespCode::kAuth, "invalid user name or password");
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
      counters_.maildrop_in_use.add();
      command_failed(Verb::kPass, RespCode::kInUse, "maildrop is locked by another session");
    } else {
      counters_.maildrop_open_failure.add();
      command_failed(Verb::kPass, code_for(status), "cannot open maildrop");
    }
    return;
  }
  counters_.auth_success.add();
  snapshot_ = std::move(snapshot);
  deleted_.assign((snapshot_.count() + 63) / 64, 0);
  deleted_count_ = 0;
  deleted_bytes_ = 0;
  total_bytes_ = 0;
  for (uint32_t size : snapshot_.sizes) total_bytes_ += size;
  state_ = State::kTransaction;
  touch(now);
  reply_maildrop_summary();
}

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
  Request r;
  r.kind = RequestKind::kCommitUpdate;
  r.tenant_id = tenant_id_;
  r.user_id = user_id_;
  r.message_ids = commit_ids_;
  issue(r, Pending::kCommit);
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
  } else {
    counters_.update_failures.add();
    // kInUse here means the lock was lost (lease taken over): still nothing
    // was deleted, and the client should simply try again later.
    command_failed(Verb::kQuit, RespCode::kSysTemp,
                   "could not remove deleted messages; none were removed");
  }
  close_after_flush(now, EndReason::kQuit);
}

void Session::cmd_capa(std::string_view, TimePoint) {
  // Short enough to fit the room kept for a status line.
  reply("+OK capability list follows\r\n");
  reply("TOP\r\n");
  reply("UIDL\r\n");
  if (config_.allow_cleartext_login) reply("USER\r\n");
  reply("RESP-CODES\r\n");
  reply("AUTH-RESP-CODE\r\n");
  reply("PIPELINING\r\n");
  if (!config_.implementation.empty()) {
    LineBuilder b;
    // Bounded so the whole reply stays within one status line's room.
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

void Session::handle_shutdown_reply(TimePoint now) {
  pending_ = Pending::kNone;
  wipe_password();
  reply_err(RespCode::kSysTemp, "server shutting down");
  close_after_flush(now, EndReason::kShutdown);
}

}  // namespace popgate::pop3
