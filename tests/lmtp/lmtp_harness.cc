#include "tests/lmtp/lmtp_harness.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace popgate::testing {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

FakeMailbox& FakeLmtpStore::add(const std::string& address, uint64_t quota_bytes) {
  FakeMailbox& m = mailboxes[lower(address)];
  m.tenant_id = 7;
  m.user_id = static_cast<int64_t>(100 + mailboxes.size());
  m.quota_bytes = quota_bytes;
  return m;
}

FakeMailbox* FakeLmtpStore::find(int64_t tenant_id, int64_t user_id) {
  for (auto& [address, m] : mailboxes) {
    if (m.tenant_id == tenant_id && m.user_id == user_id) return &m;
  }
  return nullptr;
}

FakeMailbox& FakeLmtpStore::at(const std::string& address) { return mailboxes.at(lower(address)); }

lmtp::SessionConfig LmtpHarness::default_config() {
  lmtp::SessionConfig c;
  c.hostname = "mx.example.test";
  c.message_bytes_max = 1000;
  return c;
}

LmtpHarness::LmtpHarness(lmtp::SessionConfig config, size_t output_block_bytes)
    : config_(std::move(config)), pool_(output_block_bytes),
      now_(Clock::time_point{} + std::chrono::hours(1)) {
  session_ = std::make_unique<lmtp::Session>(config_, pool_, counters_);
  session_->start(now_);
  pump();
}

LmtpHarness::~LmtpHarness() = default;

std::string LmtpHarness::take_output() {
  std::string out = output_.substr(output_taken_);
  output_taken_ = output_.size();
  return out;
}

std::string LmtpHarness::send(std::string_view client, size_t piece) {
  std::vector<size_t> cuts;
  if (piece > 0) {
    for (size_t at = piece; at < client.size(); at += piece) cuts.push_back(at);
  }
  return send_split(client, cuts);
}

std::string LmtpHarness::send_split(std::string_view client, const std::vector<size_t>& cuts) {
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

void LmtpHarness::answer(const lmtp::Request& r) {
  store_.seen.push_back(r.kind);
  lmtp::Session& s = *session_;
  switch (r.kind) {
    case lmtp::RequestKind::kNone:
      return;
    case lmtp::RequestKind::kLookupRecipient: {
      store_.looked_up.emplace_back(r.address);
      if (store_.fail_next_lookup) {
        store_.fail_next_lookup = false;
        s.handle_recipient_failed(now_);
        return;
      }
      auto it = store_.mailboxes.find(lower(r.address));
      if (it == store_.mailboxes.end()) {
        s.handle_recipient_not_found(now_);
        return;
      }
      s.handle_recipient_found(it->second.tenant_id, it->second.user_id, now_);
      return;
    }
    case lmtp::RequestKind::kDeliver: {
      const size_t number = store_.deliveries++;
      store_.senders.emplace_back(r.sender);
      if (store_.fail_delivery_number == number) {
        s.handle_delivery_failed(store_.fail_delivery_with, now_);
        return;
      }
      FakeMailbox* m = store_.find(r.tenant_id, r.user_id);
      if (m == nullptr || m->gone) {
        s.handle_delivery_failed(lmtp::DeliveryFailure::kGone, now_);
        return;
      }
      if (m->quota_bytes != 0 && m->used_bytes() + r.body.size() > m->quota_bytes) {
        s.handle_delivery_failed(lmtp::DeliveryFailure::kOverQuota, now_);
        return;
      }
      char uidl[32];
      std::snprintf(uidl, sizeof uidl, "U%015zu", number + 1);
      m->messages.emplace_back(r.body);
      m->uidls.emplace_back(uidl);
      s.handle_delivered(uidl, now_);
      return;
    }
  }
}

bool LmtpHarness::drain_output_once() {
  if (!drain) return false;
  lmtp::Session& s = *session_;
  const std::string_view pending = s.pending_output();
  if (pending.empty()) return false;
  const size_t n = send_limit == 0 ? pending.size() : std::min(send_limit, pending.size());
  s.begin_send();
  output_.append(pending.substr(0, n));
  s.handle_output_sent(n, now_);
  return true;
}

void LmtpHarness::pump() {
  lmtp::Session& s = *session_;
  for (int guard = 0; guard < 10'000'000; ++guard) {
    if (closed_) return;
    bool progress = false;
    if (const lmtp::Request* r = s.take_request()) {
      progress = true;
      if (auto_reply) {
        answer(*r);
      } else {
        held_requests.push_back(HeldRequest{r->kind, std::string(r->address), r->tenant_id,
                                            r->user_id, std::string(r->sender),
                                            std::string(r->body), r->recipient_index});
      }
    }
    if (!input_held_.empty() && s.wants_input()) {
      const size_t used = s.handle_input(input_held_, now_);
      input_held_.erase(0, used);
      progress = progress || used > 0;
    }
    if (drain_output_once()) progress = true;
    if (s.close_mode() == lmtp::CloseMode::kNow ||
        (s.close_mode() == lmtp::CloseMode::kAfterFlush && s.pending_output().empty())) {
      // Like the shard: the slot stays until an outstanding reply is in.
      if (!s.awaiting_reply()) closed_ = true;
      return;
    }
    if (!progress) return;
  }
  throw std::runtime_error("LmtpHarness::pump did not settle");
}

std::string LmtpHarness::advance(std::chrono::milliseconds by) {
  now_ += by;
  if (now_ >= session_->deadline()) session_->handle_timer(now_);
  pump();
  return take_output();
}

void LmtpHarness::peer_closed() {
  session_->handle_peer_closed(now_);
  pump();
}

std::string LmtpHarness::shutdown() {
  session_->handle_shutdown(now_);
  pump();
  return take_output();
}

}  // namespace popgate::testing
