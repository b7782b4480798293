// SessionHarness: drives a pop3::Session the way a shard does (offer input,
// take requests, drain output, re-offer held bytes), against an in-memory
// fake store and a fake clock. No sockets, no threads.
//
// The fake store answers requests synchronously by default; a test can
// instead make the next answer of a kind fail, or hold it for manual reply.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/pop3/session.h"

namespace popgate::testing {

struct FakeMessage {
  int64_t id = 0;
  std::string uidl;
  std::string body;  // CRLF text, as stored at delivery
};

struct FakeUser {
  int64_t tenant_id = 1;
  int64_t user_id = 1;
  std::string password;
  std::vector<FakeMessage> messages;
  bool locked = false;
  std::string apop_secret;        // APOP digest the fake accepts: "apop:" + secret
  bool scram = true;              // has a SCRAM credential
  int64_t since_last_login_s = -1;
  int64_t login_delay_s = 0;
  int64_t expire_days = -1;
  bool require_tls = false;
  uint32_t mechanisms = 0;        // 0 = all
};

// The fake's rules for the exchanges that need cryptography (the real ones
// are tested in tests/auth):
//  - SCRAM client-first "n,,n=NAME,r=NONCE" -> user NAME; challenge
//    "r=NONCE+srv,s=c2FsdA==,i=4096"; a client-final containing "p=good"
//    succeeds with "v=signature", anything else fails.
//  - A bearer response containing "auth=Bearer ok:NAME" verifies as NAME;
//    anything else fails with the error text "{\"status\":\"invalid_token\"}".
//  - An APOP digest equal to the user's apop_secret, hex-padded to 32
//    characters with '0', matches.

class FakeStore {
 public:
  // login -> user
  std::map<std::string, FakeUser> users;

  // Make the next reply of a kind fail with this status (one shot).
  std::optional<pop3::StoreStatus> fail_lookup;
  std::optional<pop3::StoreStatus> fail_open;
  std::optional<pop3::StoreStatus> fail_commit;
  std::optional<pop3::PasswordCheck> password_override;
  // Fail the body fetch whose 0-based sequence number (across the whole
  // harness life) equals this.
  std::optional<size_t> fail_fetch_number;
  size_t fetches = 0;

  // Requests seen, for assertions.
  std::vector<pop3::RequestKind> seen;
  std::vector<int64_t> committed_ids;
  bool last_verify_had_hash = false;

  FakeUser& add_user(const std::string& login, const std::string& password);
  static FakeMessage message(int64_t id, std::string uidl, std::string body) {
    return FakeMessage{id, std::move(uidl), std::move(body)};
  }
  FakeUser* find_by_ids(int64_t tenant_id, int64_t user_id);
};

class SessionHarness {
 public:
  using Clock = pop3::Clock;

  explicit SessionHarness(pop3::SessionConfig config = {}, size_t output_block_bytes = 16 * 1024,
                          bool secure = false, std::string apop_banner = {});
  ~SessionHarness();

  pop3::Session& session() { return *session_; }
  FakeStore& store() { return store_; }
  pop3::Counters& counters() { return counters_; }
  pop3::BufferPool& pool() { return pool_; }
  Clock::time_point now() const { return now_; }

  // Feed client bytes split into pieces of `piece` octets (0 = whole), then
  // run until nothing more happens. Returns the server bytes produced since
  // the last call.
  std::string send(std::string_view client, size_t piece = 0);
  // Like send() but splits at the given offsets (sorted, unique).
  std::string send_split(std::string_view client, const std::vector<size_t>& cuts);
  // Server bytes produced since the last call.
  std::string take_output();

  // Move the fake clock and fire the timer if due; returns new output.
  std::string advance(std::chrono::milliseconds by);
  // The peer goes away.
  void peer_closed();
  void shutdown();
  // Completes a STLS the session accepted (what the shard does after the
  // handshake); returns false if the session did not ask for TLS.
  bool start_tls();
  // The shard's limits: refuse the next open with this code and text.
  std::optional<std::pair<pop3::RespCode, std::string>> refuse_open;
  // What the shard sets after a failed login (-1: leave the config's delay).
  std::chrono::milliseconds failure_delay{-1};
  bool close_after_failure = false;

  // Output draining: at most this many bytes per simulated send (0 = all).
  size_t send_limit = 0;
  // Auth delays and other deadlines are skipped over automatically.
  bool auto_advance_delays = true;
  // When false, requests are queued and the test answers them itself.
  bool auto_reply = true;

  std::deque<pop3::Request> held_requests;  // when !auto_reply (copies)
  bool closed() const { return closed_; }
  pop3::CloseMode close_mode() const { return session_->close_mode(); }

  // Run the pump loop until quiescent (also used after manual replies).
  void pump();

 private:
  void answer(const pop3::Request& r);
  bool drain_output_once();

  pop3::SessionConfig config_;
  pop3::BufferPool pool_;
  pop3::Counters counters_;
  Clock::time_point now_;
  FakeStore store_;
  std::unique_ptr<pop3::Session> session_;
  std::string input_held_;     // bytes the session has not taken yet
  std::string body_held_;      // a body chunk not fully taken yet
  bool body_held_valid_ = false;
  std::string output_;         // everything sent so far
  size_t output_taken_ = 0;
  bool closed_ = false;
  std::string verify_password_;  // copy of the last verify request
  std::string scram_nonce_;
};

}  // namespace popgate::testing
