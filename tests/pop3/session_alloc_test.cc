// Once a session is logged in and the shard's pools are warm, serving
// commands must not allocate: STAT, LIST, UIDL, NOOP, RETR and TOP (body
// streamed in chunks), DELE and RSET, pipelined, round after round.
//
// This binary replaces the global operator new with a counting one, so it
// is its own executable.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "server/pop3/session.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// GCC flags free() inside a replacement operator delete as mismatched; here
// new and delete are replaced together, both on malloc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace popgate::pop3 {
namespace {

class Driver {
 public:
  Driver() : pool_(4096), session_(config_, pool_, counters_) {
    config_.body_chunk_bytes = 1024;  // several chunks per RETR
    session_.start(now_, false);
    for (int i = 0; i < 200; ++i) body_ += (i % 5 == 0 ? ".line " : "line ") + std::to_string(i) + "\r\n";
    drain();
  }

  void login() {
    run("USER a@x\r\nPASS secret\r\n");
  }

  // Feeds `input`, answers every request, drains every reply.
  void run(std::string_view input) {
    size_t used = 0;
    for (int guard = 0; guard < 100000; ++guard) {
      bool progress = false;
      if (used < input.size() && session_.wants_input()) {
        const size_t n = session_.handle_input(input.substr(used), now_);
        used += n;
        progress = progress || n > 0;
      }
      if (const Request* r = session_.take_request()) {
        answer(*r);
        progress = true;
      }
      if (!held_.empty() && session_.wants_body_bytes()) {
        const size_t n = session_.handle_body_chunk(StoreStatus::kOk, held_, now_);
        held_.remove_prefix(n);
        progress = progress || n > 0;
      }
      progress = drain() || progress;
      if (!progress) break;
    }
    ASSERT_EQ(used, input.size());
  }

  uint64_t output_bytes() const { return output_bytes_; }

 private:
  void answer(const Request& r) {
    switch (r.kind) {
      case RequestKind::kLookupUser: {
        UserInfo info;
        info.tenant_id = 1;
        info.user_id = 1;
        info.password_hash = "{PLAIN}secret";
        session_.handle_user_found(info, now_);
        break;
      }
      case RequestKind::kVerifyPassword:
        session_.handle_password_checked(PasswordCheck::kMatch, now_);
        break;
      case RequestKind::kOpenMaildrop: {
        Snapshot snap;
        for (int i = 0; i < 50; ++i) {
          snap.message_ids.push_back(100 + i);
          snap.sizes.push_back(static_cast<uint32_t>(body_.size()));
          snap.uidl_arena += "uidl-" + std::to_string(i);
          snap.uidl_ends.push_back(static_cast<uint32_t>(snap.uidl_arena.size()));
        }
        session_.handle_maildrop_opened(StoreStatus::kOk, std::move(snap), now_);
        break;
      }
      case RequestKind::kFetchBody: {
        const std::string_view chunk = std::string_view(body_).substr(r.offset, r.length);
        const size_t n = session_.handle_body_chunk(StoreStatus::kOk, chunk, now_);
        held_ = chunk.substr(n);
        break;
      }
      case RequestKind::kCommitUpdate:
        session_.handle_update_committed(StoreStatus::kOk, 0, now_);
        break;
      case RequestKind::kNone:
      case RequestKind::kScramStart:
      case RequestKind::kScramChallenge:
      case RequestKind::kScramFinish:
      case RequestKind::kVerifyBearer:
      case RequestKind::kVerifyApop:
        break;  // this driver logs in with USER/PASS
    }
  }

  bool drain() {
    const std::string_view out = session_.pending_output();
    if (out.empty()) return false;
    session_.begin_send();
    output_bytes_ += out.size();
    session_.handle_output_sent(out.size(), now_);
    return true;
  }

  SessionConfig config_;
  BufferPool pool_;
  Counters counters_;
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
  Session session_;
  std::string body_;
  std::string_view held_;
  uint64_t output_bytes_ = 0;
};

TEST(SessionAllocations, SteadyStateServesWithoutAllocating) {
  Driver d;
  d.login();
  const std::string_view round =
      "STAT\r\nLIST\r\nUIDL\r\nNOOP\r\nLIST 7\r\nUIDL 9\r\nRETR 3\r\nTOP 4 2\r\nDELE 5\r\n"
      "RETR 6\r\nRSET\r\nBOGUS\r\n";
  d.run(round);  // warm-up: pool blocks, first-use paths
  const uint64_t before_bytes = d.output_bytes();
  g_allocations.store(0);
  g_counting.store(true);
  for (int i = 0; i < 5; ++i) {
    // Below the bad-command limit: one BOGUS a round.
    d.run(round);
  }
  g_counting.store(false);
  // It really served: two ~1.7 KB bodies, listings and replies a round.
  EXPECT_GT(d.output_bytes() - before_bytes, 5u * 4000u);
  EXPECT_EQ(g_allocations.load(), 0u);
}

}  // namespace
}  // namespace popgate::pop3

namespace popgate::pop3 {
namespace {

// The counter itself works: without this, a zero above would prove nothing.
TEST(SessionAllocations, CounterSeesAnAllocation) {
  g_allocations.store(0);
  g_counting.store(true);
  auto* p = new std::string(1000, 'x');
  g_counting.store(false);
  delete p;
  EXPECT_GE(g_allocations.load(), 1u);
}

}  // namespace
}  // namespace popgate::pop3
