// The same conversation, however the network splits it: whole (pipelined),
// at every single split point, one byte at a time, with the output drained a
// few bytes at a time, and randomized (seed printed). The server's bytes and
// what the store keeps must not change.
#include <gtest/gtest.h>

#include <random>

#include "tests/lmtp/lmtp_fixture.h"

namespace popgate::testing {
namespace {

const std::string kConversation =
    "LHLO client.example\r\n"
    "MAIL FROM:<sender@remote.test> SIZE=200 BODY=8BITMIME\r\n"
    "RCPT TO:<alice@example.test>\r\n"
    "RCPT TO:<nobody@example.test>\r\n"
    "RCPT TO:<carol@example.test>\r\n"
    "rcpt to:<bob@example.test>\r\n"
    "DATA\r\n"
    "Subject: split\r\n"
    "\r\n"
    "..stuffed\r\n"
    "bare lf\n"
    "bare cr\rline\r\n"
    "\xc3\xa9t\xc3\xa9 \x80\xff\r\n"
    ".\r\n"
    "MAIL FROM:<> \r\n"
    "RCPT TO:<bob@example.test>\r\n"
    "DATA\r\n"
    "second\n"
    ".\n"
    "BOGUS\r\n"
    "MAIL FROM:<x@y.test>\r\n"
    "RCPT TO:<alice@example.test>\r\n"
    "RSET\r\n"
    "NOOP\r\n"
    "VRFY bob\r\n"
    "MAIL FROM:<x@y.test>\r\n"
    "RCPT TO:<alice@example.test>\r\n"
    "DATA\r\n" +
    std::string(1100, 'B') + "\r\n"
    ".\r\n"
    "QUIT\r\n";

struct Outcome {
  std::string output;
  std::vector<std::string> alice;
  std::vector<std::string> bob;
  std::vector<std::string> carol;
};

// carol's quota (50 octets) is too small for the first message: the third
// reply after the first dot is 552 while alice and bob get theirs.
Outcome run(const std::vector<size_t>& cuts, size_t send_limit = 0) {
  LmtpHarness h;
  h.store().add("alice@example.test");
  h.store().add("bob@example.test");
  h.store().add("carol@example.test", 50);
  h.send_limit = send_limit;
  Outcome r;
  r.output = h.take_output() + h.send_split(kConversation, cuts);
  r.alice = h.store().at("alice@example.test").messages;
  r.bob = h.store().at("bob@example.test").messages;
  r.carol = h.store().at("carol@example.test").messages;
  EXPECT_TRUE(h.closed());
  return r;
}

bool operator==(const Outcome& a, const Outcome& b) {
  return a.output == b.output && a.alice == b.alice && a.bob == b.bob && a.carol == b.carol;
}

// Sends each line only after the previous one was answered: the reference.
std::string lockstep() {
  LmtpHarness h;
  h.store().add("alice@example.test");
  h.store().add("bob@example.test");
  h.store().add("carol@example.test", 50);
  std::string out = h.take_output();
  size_t pos = 0;
  while (pos < kConversation.size()) {
    const size_t lf = kConversation.find('\n', pos);
    out += h.send(kConversation.substr(pos, lf + 1 - pos));
    pos = lf + 1;
  }
  return out;
}

TEST(LmtpSplit, TheConversation) {
  const Outcome whole = run({});
  const std::string first_body =
      "Return-Path: <sender@remote.test>\r\nSubject: split\r\n\r\n.stuffed\r\nbare lf\r\n"
      "bare cr\r\nline\r\n\xc3\xa9t\xc3\xa9 \x80\xff\r\n";
  EXPECT_EQ(whole.output,
            std::string(kGreeting) + std::string(kLhloReply) + std::string(kMailOk) +
                std::string(kRcptOk) + "550 5.1.1 <nobody@example.test>: no such user\r\n" +
                std::string(kRcptOk) + std::string(kRcptOk) + std::string(kDataGo) +
                "250 2.0.0 U000000000000001 delivered\r\n"
                "552 5.2.2 mailbox full\r\n"
                "250 2.0.0 U000000000000003 delivered\r\n" +
                std::string(kMailOk) + std::string(kRcptOk) + std::string(kDataGo) +
                "250 2.0.0 U000000000000004 delivered\r\n"
                "500 5.5.1 command unrecognized\r\n" +
                std::string(kMailOk) + std::string(kRcptOk) + std::string(kOk) + std::string(kOk) +
                "252 2.5.0 cannot VRFY user; try RCPT\r\n" + std::string(kMailOk) +
                std::string(kRcptOk) + std::string(kDataGo) +
                "552 5.3.4 message size exceeds fixed maximum message size\r\n"
                "221 2.0.0 mx.example.test closing connection\r\n");
  EXPECT_EQ(whole.alice, std::vector<std::string>{first_body});
  EXPECT_EQ(whole.bob, (std::vector<std::string>{first_body, "Return-Path: <>\r\nsecond\r\n"}));
  EXPECT_TRUE(whole.carol.empty());
}

TEST(LmtpSplit, PipelinedEqualsLockstep) { EXPECT_EQ(run({}).output, lockstep()); }

TEST(LmtpSplit, EverySinglePointSplit) {
  const Outcome whole = run({});
  for (size_t cut = 1; cut < kConversation.size(); ++cut) {
    ASSERT_TRUE(run({cut}) == whole) << "split at " << cut;
  }
}

TEST(LmtpSplit, OneByteAtATime) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < kConversation.size(); ++i) cuts.push_back(i);
  EXPECT_TRUE(run(cuts) == run({}));
}

TEST(LmtpSplit, SlowReaderGetsTheSameBytes) {
  const Outcome whole = run({});
  for (size_t limit : {1, 2, 3, 7, 64}) {
    EXPECT_TRUE(run({}, limit) == whole) << "send limit " << limit;
  }
}

TEST(LmtpSplit, OneByteAtATimeToASlowReader) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < kConversation.size(); ++i) cuts.push_back(i);
  EXPECT_TRUE(run(cuts, 1) == run({}));
}

TEST(LmtpSplit, RandomSplitsAndSlowReader) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const Outcome whole = run({});
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> cuts;
    for (size_t at = 1 + rng() % 9; at < kConversation.size(); at += 1 + rng() % 9) cuts.push_back(at);
    ASSERT_TRUE(run(cuts, 1 + rng() % 50) == whole) << "round " << round;
  }
}

}  // namespace
}  // namespace popgate::testing
