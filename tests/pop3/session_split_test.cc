// The same conversation, however the network splits it: whole (pipelined),
// at every single split point, one byte at a time, and with the output
// drained a few bytes at a time. The server's bytes must not change.
#include <gtest/gtest.h>

#include <random>

#include "tests/pop3/session_fixture.h"

namespace popgate::testing {
namespace {

const std::string kConversation =
    "CAPA\r\n"
    "USER alice@example.test\r\n"
    "PASS s3cret pw\r\n"
    "STAT\r\n"
    "LIST\r\n"
    "UIDL\r\n"
    "LIST 2\r\n"
    "TOP 2 1\r\n"
    "RETR 2\r\n"
    "BOGUS\r\n"
    "DELE 1\r\n"
    "RETR 1\r\n"
    "NOOP\n"
    "RSET\r\n"
    "DELE 3\r\n"
    "QUIT\r\n";

struct Outcome {
  std::string output;
  std::vector<int64_t> committed;
};

Outcome run(const std::vector<size_t>& cuts, size_t send_limit = 0) {
  SessionHarness h;
  FakeUser& u = h.store().add_user("alice@example.test", "s3cret pw");
  u.messages = {FakeStore::message(11, "uid-one", kMsg1), FakeStore::message(12, "uid-two", kMsg2),
                FakeStore::message(13, "uid-three", kMsg3)};
  h.send_limit = send_limit;
  Outcome r;
  r.output = h.take_output() + h.send_split(kConversation, cuts);
  r.committed = h.store().committed_ids;
  EXPECT_TRUE(h.closed());
  return r;
}

// Sends each command only after the previous reply: the reference.
std::string lockstep() {
  SessionHarness h;
  FakeUser& u = h.store().add_user("alice@example.test", "s3cret pw");
  u.messages = {FakeStore::message(11, "uid-one", kMsg1), FakeStore::message(12, "uid-two", kMsg2),
                FakeStore::message(13, "uid-three", kMsg3)};
  std::string out = h.take_output();
  size_t pos = 0;
  while (pos < kConversation.size()) {
    const size_t lf = kConversation.find('\n', pos);
    out += h.send(kConversation.substr(pos, lf + 1 - pos));
    pos = lf + 1;
  }
  return out;
}

TEST(SessionSplit, PipelinedEqualsLockstep) {
  const Outcome whole = run({});
  EXPECT_EQ(whole.output, lockstep());
  EXPECT_EQ(whole.committed, std::vector<int64_t>{13});
  EXPECT_NE(whole.output.find("..hidden"), std::string::npos);
}

TEST(SessionSplit, EverySinglePointSplit) {
  const Outcome whole = run({});
  for (size_t cut = 1; cut < kConversation.size(); ++cut) {
    const Outcome split = run({cut});
    ASSERT_EQ(split.output, whole.output) << "split at " << cut;
    ASSERT_EQ(split.committed, whole.committed) << "split at " << cut;
  }
}

TEST(SessionSplit, OneByteAtATime) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < kConversation.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(run(cuts).output, run({}).output);
}

TEST(SessionSplit, SlowReaderGetsTheSameBytes) {
  const Outcome whole = run({});
  for (size_t limit : {1, 2, 3, 7, 64}) {
    EXPECT_EQ(run({}, limit).output, whole.output) << "send limit " << limit;
  }
}

TEST(SessionSplit, RandomSplitsAndSlowReader) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const Outcome whole = run({});
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> cuts;
    for (size_t at = 1 + rng() % 9; at < kConversation.size(); at += 1 + rng() % 9) cuts.push_back(at);
    ASSERT_EQ(run(cuts, 1 + rng() % 50).output, whole.output) << "round " << round;
  }
}

}  // namespace
}  // namespace popgate::testing
