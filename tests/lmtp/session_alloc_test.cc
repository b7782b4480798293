// Once a session is warm, commands are served without allocating (MAIL,
// RCPT with lookups, RSET, NOOP, VRFY, HELP, bad commands, pipelined), and a
// message costs exactly one allocation: its body, reserved to the SIZE the
// client declared (or the default), released after delivery.
//
// This binary replaces the global operator new with a counting one, so it
// is its own executable.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "server/lmtp/session.h"

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

namespace popgate::lmtp {
namespace {

class Driver {
 public:
  Driver() : pool_(4096), session_(config_, pool_, counters_) {
    config_.hostname = "mx.example.test";
    session_.start(now_);
    drain();
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
      progress = drain() || progress;
      if (!progress) break;
    }
    ASSERT_EQ(used, input.size());
  }

  uint64_t output_bytes() const { return output_bytes_; }
  uint64_t delivered_bytes() const { return delivered_bytes_; }

 private:
  void answer(const Request& r) {
    switch (r.kind) {
      case RequestKind::kLookupRecipient:
        if (r.address.starts_with("nobody")) {
          session_.handle_recipient_not_found(now_);
        } else {
          session_.handle_recipient_found(1, 2, now_);
        }
        break;
      case RequestKind::kDeliver:
        delivered_bytes_ += r.body.size();
        session_.handle_delivered("0123456789abcdef", now_);
        break;
      case RequestKind::kNone:
        break;
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
  pop3::BufferPool pool_;
  Counters counters_;
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
  Session session_;
  uint64_t output_bytes_ = 0;
  uint64_t delivered_bytes_ = 0;
};

constexpr std::string_view kCommands =
    "LHLO client.example\r\nMAIL FROM:<sender@remote.test> BODY=8BITMIME\r\n"
    "RCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
    "NOOP\r\nVRFY alice\r\nHELP\r\nBOGUS\r\nRSET\r\n";

TEST(LmtpAllocations, CommandsInAWarmSessionDoNotAllocate) {
  Driver d;
  d.run(kCommands);  // warm-up: pool block, recipient capacity
  const uint64_t before = d.output_bytes();
  g_allocations.store(0);
  g_counting.store(true);
  for (int i = 0; i < 5; ++i) d.run(kCommands);  // one BOGUS a round: below the limit
  g_counting.store(false);
  EXPECT_GT(d.output_bytes() - before, 5u * 300u);
  EXPECT_EQ(g_allocations.load(), 0u);
}

TEST(LmtpAllocations, AMessageCostsOneAllocation) {
  Driver d;
  std::string body;
  for (int i = 0; i < 200; ++i) body += (i % 5 == 0 ? "..line " : "line ") + std::to_string(i) + "\r\n";
  const std::string with_size = "MAIL FROM:<s@r.test> SIZE=" + std::to_string(body.size()) +
                                "\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n" + body +
                                ".\r\n";
  const std::string without_size =
      "MAIL FROM:<s@r.test>\r\nRCPT TO:<a@x.test>\r\nDATA\r\n" + body + ".\r\n";
  d.run("LHLO c\r\n");
  d.run(with_size);  // warm-up
  d.run(without_size);
  for (const std::string* message : {&with_size, &without_size}) {
    const uint64_t delivered_before = d.delivered_bytes();
    g_allocations.store(0);
    g_counting.store(true);
    for (int i = 0; i < 3; ++i) d.run(*message);
    g_counting.store(false);
    EXPECT_GT(d.delivered_bytes() - delivered_before, 3 * body.size() * 9 / 10);  // it really delivered
    EXPECT_EQ(g_allocations.load(), 3u);
  }
}

}  // namespace
}  // namespace popgate::lmtp

namespace popgate::lmtp {
namespace {

// The counter itself works: without this, a zero above would prove nothing.
TEST(LmtpAllocations, CounterSeesAnAllocation) {
  g_allocations.store(0);
  g_counting.store(true);
  auto* p = new std::string(1000, 'x');
  g_counting.store(false);
  delete p;
  EXPECT_GE(g_allocations.load(), 1u);
}

}  // namespace
}  // namespace popgate::lmtp
