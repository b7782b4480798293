// LmtpHarness: drives an lmtp::Session the way a shard does (offer input,
// take requests, drain output, re-offer held bytes), against an in-memory
// directory of recipients, a fake store with quotas and a fake clock. No
// sockets, no threads.
//
// The fakes answer requests synchronously by default; a test can make the
// next answer of a kind fail, or hold requests and answer them itself.
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

#include "server/lmtp/session.h"

namespace popgate::testing {

struct FakeMailbox {
  int64_t tenant_id = 1;
  int64_t user_id = 1;
  uint64_t quota_bytes = 0;  // 0: unlimited
  bool gone = false;         // removed after RCPT: delivery says kGone
  std::vector<std::string> messages;  // as stored
  std::vector<std::string> uidls;

  [[nodiscard]] uint64_t used_bytes() const {
    uint64_t n = 0;
    for (const auto& m : messages) n += m.size();
    return n;
  }
};

// Directory (address -> mailbox, case-insensitive) and store in one.
class FakeLmtpStore {
 public:
  std::map<std::string, FakeMailbox> mailboxes;  // lower-case address

  // One-shot failures: the next lookup answers "temporary failure"; the
  // delivery with this 0-based sequence number (harness lifetime) fails
  // with this outcome.
  bool fail_next_lookup = false;
  std::optional<size_t> fail_delivery_number;
  lmtp::DeliveryFailure fail_delivery_with = lmtp::DeliveryFailure::kTemporary;
  size_t deliveries = 0;

  // What was asked, for assertions.
  std::vector<lmtp::RequestKind> seen;
  std::vector<std::string> looked_up;
  std::vector<std::string> senders;

  FakeMailbox& add(const std::string& address, uint64_t quota_bytes = 0);
  FakeMailbox* find(int64_t tenant_id, int64_t user_id);
  FakeMailbox& at(const std::string& address);
};

class LmtpHarness {
 public:
  using Clock = lmtp::Clock;

  // Starts the session (greeting); take_output() returns it.
  explicit LmtpHarness(lmtp::SessionConfig config = default_config(),
                       size_t output_block_bytes = 16 * 1024);
  ~LmtpHarness();

  static lmtp::SessionConfig default_config();

  lmtp::Session& session() { return *session_; }
  FakeLmtpStore& store() { return store_; }
  lmtp::Counters& counters() { return counters_; }
  pop3::BufferPool& pool() { return pool_; }
  Clock::time_point now() const { return now_; }
  const lmtp::SessionConfig& config() const { return config_; }

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
  void peer_closed();
  // Returns new output.
  std::string shutdown();

  // Output draining: at most this many bytes per simulated send (0 = all).
  size_t send_limit = 0;
  // When false, requests are queued (copied, with the body) and the test
  // answers them itself, then calls pump().
  bool auto_reply = true;
  // When false, output is not drained (a client that stops reading).
  bool drain = true;

  struct HeldRequest {
    lmtp::RequestKind kind;
    std::string address;
    int64_t tenant_id;
    int64_t user_id;
    std::string sender;
    std::string body;
    uint32_t recipient_index;
  };
  std::deque<HeldRequest> held_requests;
  // Bytes the session has not taken yet.
  const std::string& input_held() const { return input_held_; }
  bool closed() const { return closed_; }
  lmtp::CloseMode close_mode() const { return session_->close_mode(); }

  // Run the pump loop until quiescent (also used after manual replies).
  void pump();

 private:
  void answer(const lmtp::Request& r);
  bool drain_output_once();

  lmtp::SessionConfig config_;
  pop3::BufferPool pool_;
  lmtp::Counters counters_;
  Clock::time_point now_;
  FakeLmtpStore store_;
  std::unique_ptr<lmtp::Session> session_;
  std::string input_held_;
  std::string output_;
  size_t output_taken_ = 0;
  bool closed_ = false;
};

}  // namespace popgate::testing
