#include "tests/support/session_harness.h"

#include <algorithm>
#include <stdexcept>

namespace popgate::testing {

FakeUser& FakeStore::add_user(const std::string& login, const std::string& password) {
  FakeUser& u = users[login];
  u.password = password;
  u.tenant_id = 1;
  u.user_id = static_cast<int64_t>(users.size());
  return u;
}

FakeUser* FakeStore::find_by_ids(int64_t tenant_id, int64_t user_id) {
  for (auto& [login, u] : users) {
    if (u.tenant_id == tenant_id && u.user_id == user_id) return &u;
  }
  return nullptr;
}

SessionHarness::SessionHarness(pop3::SessionConfig config, size_t output_block_bytes, bool secure,
                               std::string apop_banner)
    : config_(std::move(config)), pool_(output_block_bytes), now_(Clock::time_point{} + std::chrono::hours(1)) {
  session_ = std::make_unique<pop3::Session>(config_, pool_, counters_);
  session_->start(now_, secure, apop_banner);
  pump();
}

bool SessionHarness::start_tls() {
  if (!session_->wants_tls() || !session_->pending_output().empty()) return false;
  input_held_.clear();  // the shard drops what arrived with STLS
  session_->handle_tls_started(now_);
  pump();
  return true;
}

SessionHarness::~SessionHarness() = default;

std::string SessionHarness::take_output() {
  std::string out = output_.substr(output_taken_);
  output_taken_ = output_.size();
  return out;
}

std::string SessionHarness::send(std::string_view client, size_t piece) {
  std::vector<size_t> cuts;
  if (piece > 0) {
    for (size_t at = piece; at < client.size(); at += piece) cuts.push_back(at);
  }
  return send_split(client, cuts);
}

std::string SessionHarness::send_split(std::string_view client, const std::vector<size_t>& cuts) {
  size_t from = 0;
  auto feed = [&](size_t to) {
    if (closed_) return;
    input_held_.append(client.substr(from, to - from));
    from = to;
    pump();
  };
  for (size_t cut : cuts) feed(cut);
  feed(client.size());
  return take_output();
}

void SessionHarness::answer(const pop3::Request& r) {
  store_.seen.push_back(r.kind);
  pop3::Session& s = *session_;
  switch (r.kind) {
    case pop3::RequestKind::kNone:
      break;
    case pop3::RequestKind::kLookupUser: {
      if (store_.fail_lookup) {
        auto status = *store_.fail_lookup;
        store_.fail_lookup.reset();
        s.handle_user_lookup_failed(status, now_);
        return;
      }
      auto it = store_.users.find(std::string(r.login));
      if (it == store_.users.end()) {
        s.handle_user_lookup_failed(pop3::StoreStatus::kNotFound, now_);
        return;
      }
      // The fake "hash" is the password itself, tagged.
      const FakeUser& u = it->second;
      const std::string hash = "{PLAIN}" + u.password;
      pop3::UserInfo info;
      info.tenant_id = u.tenant_id;
      info.user_id = u.user_id;
      info.password_hash = hash;
      info.scram_credential = u.scram ? "{SCRAM-SHA-256}fake" : "";
      info.apop_secret = u.apop_secret;
      info.since_last_login_s = u.since_last_login_s;
      info.login_delay_s = u.login_delay_s;
      info.expire_days = u.expire_days;
      info.require_tls = u.require_tls;
      info.mechanisms = u.mechanisms;
      s.handle_user_found(info, now_);
      return;
    }
    case pop3::RequestKind::kVerifyPassword: {
      store_.last_verify_had_hash = !r.password_hash.empty();
      if (store_.password_override) {
        auto result = *store_.password_override;
        store_.password_override.reset();
        s.handle_password_checked(result, now_);
        return;
      }
      const bool match = !r.password_hash.empty() &&
                         r.password_hash == "{PLAIN}" + std::string(r.password);
      s.handle_password_checked(match ? pop3::PasswordCheck::kMatch : pop3::PasswordCheck::kMismatch,
                                now_);
      return;
    }
    case pop3::RequestKind::kScramStart: {
      const std::string data(r.data);
      const size_t n = data.find("n=");
      const size_t comma = data.find(",r=");
      if (data.rfind("n,,", 0) != 0 || n == std::string::npos || comma == std::string::npos) {
        s.handle_auth_step(pop3::AuthStep::kFailed, {}, now_);
        return;
      }
      scram_nonce_ = data.substr(comma + 3);
      s.handle_auth_step(pop3::AuthStep::kOk, data.substr(n + 2, comma - n - 2), now_);
      return;
    }
    case pop3::RequestKind::kScramChallenge: {
      const std::string challenge = "r=" + scram_nonce_ + "srv,s=c2FsdA==,i=4096";
      s.handle_auth_step(pop3::AuthStep::kOk, challenge, now_);
      return;
    }
    case pop3::RequestKind::kScramFinish: {
      const bool good = std::string(r.data).find("p=good") != std::string::npos;
      s.handle_auth_step(good ? pop3::AuthStep::kOk : pop3::AuthStep::kFailed,
                         good ? "v=signature" : "", now_);
      return;
    }
    case pop3::RequestKind::kVerifyBearer: {
      const std::string data(r.data);
      const size_t at = data.find("auth=Bearer ok:");
      if (at == std::string::npos) {
        s.handle_auth_step(pop3::AuthStep::kFailed, "{\"status\":\"invalid_token\"}", now_);
        return;
      }
      const size_t end = data.find('\x01', at);
      s.handle_auth_step(pop3::AuthStep::kOk, data.substr(at + 15, end - at - 15), now_);
      return;
    }
    case pop3::RequestKind::kVerifyApop: {
      std::string want(r.secret);
      want.resize(32, '0');
      s.handle_auth_step(r.data == want ? pop3::AuthStep::kOk : pop3::AuthStep::kFailed, {}, now_);
      return;
    }
    case pop3::RequestKind::kOpenMaildrop: {
      if (refuse_open) {
        auto [code, text] = *refuse_open;
        refuse_open.reset();
        s.handle_login_refused(code, text, now_);
        return;
      }
      FakeUser* u = store_.find_by_ids(r.tenant_id, r.user_id);
      if (store_.fail_open || u == nullptr || u->locked) {
        auto status = store_.fail_open.value_or(u == nullptr ? pop3::StoreStatus::kNotFound
                                                             : pop3::StoreStatus::kInUse);
        store_.fail_open.reset();
        s.handle_maildrop_opened(status, pop3::Snapshot{}, now_);
        return;
      }
      u->locked = true;
      pop3::Snapshot snap;
      for (const auto& m : u->messages) {
        snap.message_ids.push_back(m.id);
        snap.sizes.push_back(static_cast<uint32_t>(m.body.size()));
        snap.uidl_arena += m.uidl;
        snap.uidl_ends.push_back(static_cast<uint32_t>(snap.uidl_arena.size()));
      }
      s.handle_maildrop_opened(pop3::StoreStatus::kOk, std::move(snap), now_);
      return;
    }
    case pop3::RequestKind::kFetchBody: {
      const size_t number = store_.fetches++;
      FakeUser* u = store_.find_by_ids(r.tenant_id, r.user_id);
      const FakeMessage* msg = nullptr;
      if (u != nullptr) {
        for (const auto& m : u->messages) {
          if (m.id == r.message_id) msg = &m;
        }
      }
      if (store_.fail_fetch_number == number || msg == nullptr) {
        (void)s.handle_body_chunk(msg == nullptr ? pop3::StoreStatus::kNotFound
                                                 : pop3::StoreStatus::kTemporary,
                                  {}, now_);
        return;
      }
      std::string chunk = msg->body.substr(std::min<size_t>(r.offset, msg->body.size()), r.length);
      const size_t used = s.handle_body_chunk(pop3::StoreStatus::kOk, chunk, now_);
      if (used < chunk.size()) {
        body_held_ = chunk.substr(used);
        body_held_valid_ = true;
      }
      return;
    }
    case pop3::RequestKind::kCommitUpdate: {
      FakeUser* u = store_.find_by_ids(r.tenant_id, r.user_id);
      if (store_.fail_commit || u == nullptr) {
        auto status = store_.fail_commit.value_or(pop3::StoreStatus::kInUse);
        store_.fail_commit.reset();
        s.handle_update_committed(status, 0, now_);
        return;
      }
      store_.committed_ids.assign(r.message_ids.begin(), r.message_ids.end());
      uint64_t deleted = 0;
      for (int64_t id : r.message_ids) {
        auto it = std::find_if(u->messages.begin(), u->messages.end(),
                               [&](const FakeMessage& m) { return m.id == id; });
        if (it != u->messages.end()) {
          u->messages.erase(it);
          ++deleted;
        }
      }
      u->locked = false;
      s.handle_update_committed(pop3::StoreStatus::kOk, deleted, now_);
      return;
    }
  }
}

bool SessionHarness::drain_output_once() {
  pop3::Session& s = *session_;
  const std::string_view pending = s.pending_output();
  if (pending.empty()) return false;
  const size_t n = send_limit == 0 ? pending.size() : std::min(send_limit, pending.size());
  s.begin_send();
  output_.append(pending.substr(0, n));
  s.handle_output_sent(n, now_);
  return true;
}

void SessionHarness::pump() {
  pop3::Session& s = *session_;
  for (int guard = 0; guard < 10'000'000; ++guard) {
    bool progress = false;
    if (closed_) return;
    if (s.take_auth_failure() && (failure_delay.count() >= 0 || close_after_failure)) {
      s.set_auth_failure_delay(failure_delay.count() >= 0 ? failure_delay : std::chrono::milliseconds(0),
                               close_after_failure);
    }
    if (const pop3::Request* r = s.take_request()) {
      progress = true;
      if (auto_reply) {
        const pop3::Request copy = *r;
        if (copy.kind == pop3::RequestKind::kVerifyPassword) verify_password_.assign(copy.password);
        answer(copy);
      } else {
        held_requests.push_back(*r);
      }
    }
    if (body_held_valid_ && s.wants_body_bytes()) {
      const size_t used = s.handle_body_chunk(pop3::StoreStatus::kOk, body_held_, now_);
      body_held_.erase(0, used);
      if (body_held_.empty()) body_held_valid_ = false;
      progress = progress || used > 0;
    }
    if (!input_held_.empty() && s.wants_input()) {
      const size_t used = s.handle_input(input_held_, now_);
      input_held_.erase(0, used);
      progress = progress || used > 0;
    }
    if (drain_output_once()) progress = true;
    if (s.close_mode() == pop3::CloseMode::kNow ||
        (s.close_mode() == pop3::CloseMode::kAfterFlush && s.pending_output().empty())) {
      closed_ = true;
      return;
    }
    if (!progress && auto_advance_delays && s.delaying()) {
      // Only the failed-login delay can move things on: skip over it. Idle
      // timeouts are left to tests.
      const auto deadline = s.deadline();
      {
        now_ = deadline;
        s.handle_timer(now_);
        progress = true;
      }
    }
    if (!progress) return;
  }
  throw std::runtime_error("SessionHarness::pump did not settle");
}

std::string SessionHarness::advance(std::chrono::milliseconds by) {
  now_ += by;
  if (now_ >= session_->deadline()) session_->handle_timer(now_);
  pump();
  return take_output();
}

void SessionHarness::peer_closed() {
  session_->handle_peer_closed(now_);
  pump();
}

void SessionHarness::shutdown() {
  session_->handle_shutdown(now_);
  pump();
}

}  // namespace popgate::testing
