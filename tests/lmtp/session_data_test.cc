// DATA and the replies after the final dot: one per accepted recipient, in
// RCPT order (RFC 2033 4.2), for every delivery outcome; the stored bytes
// (Return-Path, dot-unstuffing, CRLF normalisation, 8-bit), size limits,
// pipelining, several messages per session, slow readers, shutdown and a
// peer that leaves during delivery.
#include <gtest/gtest.h>

#include "tests/lmtp/lmtp_fixture.h"

namespace popgate::testing {
namespace {

using lmtp::DeliveryFailure;
using lmtp::EndReason;
using lmtp::RequestKind;
using std::chrono::milliseconds;

constexpr std::string_view kTooBig = "552 5.3.4 message size exceeds fixed maximum message size\r\n";

class DataTest : public LmtpTest {
 protected:
  void SetUp() override { ASSERT_EQ(lhlo(), kLhloReply); }
  std::vector<std::string>& stored(const std::string& who) { return h.store().at(who).messages; }
};

TEST_F(DataTest, OneRecipient) {
  EXPECT_EQ(h.send("MAIL FROM:<sender@remote.test>\r\n"), kMailOk);
  EXPECT_EQ(h.send("RCPT TO:<alice@example.test>\r\n"), kRcptOk);
  EXPECT_EQ(h.send("DATA\r\n"), kDataGo);
  EXPECT_TRUE(h.session().in_data());
  EXPECT_EQ(h.send("Subject: hi\r\n\r\nHello\r\n.\r\n"), delivered(1));
  EXPECT_FALSE(h.session().in_data());
  EXPECT_EQ(stored("alice@example.test"),
            std::vector<std::string>{"Return-Path: <sender@remote.test>\r\nSubject: hi\r\n\r\nHello\r\n"});
  EXPECT_EQ(h.store().at("alice@example.test").uidls, std::vector<std::string>{"U000000000000001"});
  EXPECT_EQ(h.store().senders, std::vector<std::string>{"sender@remote.test"});
  EXPECT_EQ(h.counters().messages_received.value(), 1u);
  EXPECT_EQ(h.counters().message_bytes.value(), 22u);
  EXPECT_EQ(h.counters().delivered.value(), 1u);
  EXPECT_EQ(h.counters().delivered_bytes.value(), stored("alice@example.test")[0].size());
  EXPECT_EQ(h.session().stats().delivered, 1u);
  EXPECT_EQ(h.store().seen, (std::vector<RequestKind>{RequestKind::kLookupRecipient, RequestKind::kDeliver}));
}

TEST_F(DataTest, EmptyMessageAndNullSender) {
  EXPECT_EQ(h.send("MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n.\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kDataGo) + delivered(1));
  EXPECT_EQ(stored("alice@example.test"), std::vector<std::string>{"Return-Path: <>\r\n"});
}

TEST(DataConfig, ReturnPathCanBeTurnedOff) {
  lmtp::SessionConfig config = LmtpHarness::default_config();
  config.return_path = false;
  LmtpHarness h(config);
  h.store().add("alice@example.test");
  h.send("LHLO c\r\nMAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nbody\r\n.\r\n");
  EXPECT_EQ(h.store().at("alice@example.test").messages, std::vector<std::string>{"body\r\n"});
}

TEST_F(DataTest, DotUnstuffingAndLineEndsByteExact) {
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  EXPECT_EQ(h.send("..leading dot\r\n...\r\n.x\r\nbare lf\nbare cr\rmixed\r\r\n\n.. \r\n.\r\n"),
            delivered(1));
  EXPECT_EQ(stored("alice@example.test")[0],
            "Return-Path: <s@r.test>\r\n.leading dot\r\n..\r\nx\r\nbare lf\r\nbare cr\r\nmixed\r\n\r\n\r\n. \r\n");
}

TEST_F(DataTest, TerminatorWithBareLf) {
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  EXPECT_EQ(h.send("one\n.\nNOOP\n"), delivered(1) + std::string(kOk));
  EXPECT_EQ(stored("alice@example.test")[0], "Return-Path: <s@r.test>\r\none\r\n");
}

TEST_F(DataTest, BinaryEightBitBody) {
  std::string body;
  for (int c = 0; c < 256; ++c) {
    if (c != '\r' && c != '\n') body.push_back(static_cast<char>(c));
  }
  const std::string tail("\xff\x00.\x80\r\n", 6);
  h.send("MAIL FROM:<s@r.test> BODY=8BITMIME\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  EXPECT_EQ(h.send(body + "\r\n" + tail + ".\r\n"), delivered(1));
  EXPECT_EQ(stored("alice@example.test"),
            std::vector<std::string>{"Return-Path: <s@r.test>\r\n" + body + "\r\n" + tail});
}

TEST_F(DataTest, RfcExampleOneRecipientRefusedAtRcptOneOverQuota) {
  // RFC 2033 4.2: replies after the dot only for the successful RCPTs.
  const std::string big(80, 'q');
  EXPECT_EQ(h.send("MAIL FROM:<chris@bar.test>\r\nRCPT TO:<alice@example.test>\r\n"
                   "RCPT TO:<jones@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n" +
                   big + "\r\n.\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) +
                "550 5.1.1 <jones@example.test>: no such user\r\n" + std::string(kRcptOk) +
                std::string(kDataGo) + delivered(1) + "552 5.2.2 mailbox full\r\n");
  EXPECT_EQ(stored("alice@example.test").size(), 1u);
  EXPECT_TRUE(stored("carol@example.test").empty());
  EXPECT_EQ(h.counters().over_quota.value(), 1u);
  EXPECT_EQ(h.counters().recipients_unknown.value(), 1u);
  EXPECT_EQ(h.session().stats().failed, 1u);
}

TEST(DataConfig, OverQuotaCanBeTemporary) {
  lmtp::SessionConfig config = LmtpHarness::default_config();
  config.over_quota_is_temporary = true;
  LmtpHarness h(config);
  h.store().add("carol@example.test", 10);
  h.take_output();
  EXPECT_EQ(h.send("LHLO c\r\nMAIL FROM:<s@r.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n"
                   "too big for ten\r\n.\r\n")
                .substr(std::string(kLhloReply).size()),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kDataGo) +
                "452 4.2.2 mailbox full\r\n");
}

TEST_F(DataTest, RecipientGoneBetweenRcptAndDelivery) {
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  h.store().at("alice@example.test").gone = true;
  EXPECT_EQ(h.send("x\r\n.\r\n"), "550 5.1.1 recipient gone\r\n" + delivered(2));
  EXPECT_EQ(h.counters().recipient_gone.value(), 1u);
  EXPECT_EQ(stored("bob@example.test").size(), 1u);
}

TEST_F(DataTest, TemporaryDeliveryFailureForOneRecipientOnly) {
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
         "RCPT TO:<alice@example.test>\r\nDATA\r\n");
  h.store().fail_delivery_number = 1;  // bob's
  EXPECT_EQ(h.send("x\r\n.\r\n"), delivered(1) + "451 4.3.0 temporary failure\r\n" + delivered(3));
  EXPECT_EQ(h.counters().delivery_temporary.value(), 1u);
  // The same mailbox named twice: one reply (and one delivery) per RCPT.
  EXPECT_EQ(stored("alice@example.test").size(), 2u);
  EXPECT_TRUE(stored("bob@example.test").empty());
}

TEST_F(DataTest, DeliveriesAreRequestedOneAtATimeInRcptOrder) {
  h.auto_reply = false;
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\n");
  ASSERT_EQ(h.held_requests.size(), 1u);
  EXPECT_EQ(h.held_requests[0].kind, RequestKind::kLookupRecipient);
  EXPECT_EQ(h.held_requests[0].address, "alice@example.test");
  EXPECT_EQ(h.session().deadline(), lmtp::TimePoint::max());  // the store's timeout applies
  EXPECT_FALSE(h.session().wants_input());
  h.held_requests.clear();
  h.session().handle_recipient_found(7, 1001, h.now());
  h.pump();
  h.send("RCPT TO:<bob@example.test>\r\n");
  h.held_requests.clear();
  h.session().handle_recipient_found(7, 1002, h.now());
  h.pump();
  EXPECT_EQ(h.send("DATA\r\nbody\r\n.\r\nNOOP\r\n"), std::string(kRcptOk) + std::string(kDataGo));
  ASSERT_EQ(h.held_requests.size(), 1u);
  const auto first = h.held_requests.front();
  EXPECT_EQ(first.kind, RequestKind::kDeliver);
  EXPECT_EQ(first.tenant_id, 7);
  EXPECT_EQ(first.user_id, 1001);
  EXPECT_EQ(first.sender, "s@r.test");
  EXPECT_EQ(first.body, "Return-Path: <s@r.test>\r\nbody\r\n");
  EXPECT_EQ(first.recipient_index, 0u);
  EXPECT_EQ(h.input_held(), "NOOP\r\n");  // not read while recipients are answered
  h.held_requests.clear();
  h.session().handle_delivered("uid-a", h.now());
  h.pump();
  EXPECT_EQ(h.take_output(), "250 2.0.0 uid-a delivered\r\n");
  ASSERT_EQ(h.held_requests.size(), 1u);
  EXPECT_EQ(h.held_requests.front().user_id, 1002);
  EXPECT_EQ(h.held_requests.front().recipient_index, 1u);
  h.held_requests.clear();
  h.session().handle_delivery_failed(DeliveryFailure::kTemporary, h.now());
  h.pump();
  EXPECT_EQ(h.take_output(), "451 4.3.0 temporary failure\r\n" + std::string(kOk));
  EXPECT_TRUE(h.held_requests.empty());
}

TEST_F(DataTest, UidlInTheReplyIsSanitised) {
  h.auto_reply = false;
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\n");
  h.held_requests.clear();
  h.session().handle_recipient_found(7, 1, h.now());
  h.pump();
  EXPECT_EQ(h.send("DATA\r\nx\r\n.\r\n"), std::string(kRcptOk) + std::string(kDataGo));
  h.session().handle_delivered("abc\r\n250 forged", h.now());
  h.pump();
  EXPECT_EQ(h.take_output(), "250 2.0.0 abc delivered\r\n");
}

TEST_F(DataTest, OverSizeDeclaredWithSize) {
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test> SIZE=1001\r\nRCPT TO:<alice@example.test>\r\n"),
            std::string(kTooBig) + "503 5.5.1 need MAIL before RCPT\r\n");
  EXPECT_EQ(h.counters().size_declared_too_big.value(), 1u);
}

TEST_F(DataTest, OverSizeFoundWhileReading) {
  const std::string line(98, 'z');  // 100 octets with CRLF
  std::string body;
  for (int i = 0; i < 10; ++i) body += line + "\r\n";  // exactly the 1000-octet limit
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" + body + ".\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kDataGo) + delivered(1));
  EXPECT_EQ(stored("alice@example.test")[0].size(), 1000u + 25u);  // + Return-Path
  // One octet more: every recipient hears 552, nothing is stored.
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   "DATA\r\n" + body + "!\r\n.\r\nNOOP\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kRcptOk) + std::string(kDataGo) +
                std::string(kTooBig) + std::string(kTooBig) + std::string(kOk));
  EXPECT_EQ(stored("alice@example.test").size(), 1u);
  EXPECT_TRUE(stored("bob@example.test").empty());
  EXPECT_EQ(h.counters().size_exceeded.value(), 1u);
  EXPECT_EQ(h.store().deliveries, 1u);
  // The session goes on: the next transaction works.
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nok\r\n.\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kDataGo) + delivered(2));
}

TEST_F(DataTest, SizeHintIsNotALimit) {
  // SIZE= only sizes the buffer; a message longer than declared (but within
  // the limit) is fine.
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test> SIZE=3\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
                   "longer than three\r\n.\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kDataGo) + delivered(1));
}

TEST_F(DataTest, BodyMemoryFollowsTheHintAndIsReleased) {
  h.auto_reply = false;
  h.send("MAIL FROM:<s@r.test> SIZE=500\r\nRCPT TO:<alice@example.test>\r\n");
  h.held_requests.clear();
  h.session().handle_recipient_found(7, 1, h.now());
  h.pump();
  h.send("DATA\r\nabc\r\n");
  EXPECT_EQ(h.session().body_capacity_for_test(), 500u + 25u);  // hint + Return-Path
  h.send(".\r\n");
  ASSERT_EQ(h.held_requests.size(), 1u);
  h.session().handle_delivered("u", h.now());
  h.pump();
  EXPECT_EQ(h.session().body_capacity_for_test(), std::string().capacity());
}

TEST_F(DataTest, OverlongDataLineRefusesTheMessage) {
  lmtp::SessionConfig config = LmtpHarness::default_config();
  config.message_bytes_max = 1 << 20;
  LmtpHarness big(config);
  big.store().add("alice@example.test");
  big.send("LHLO c\r\nMAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  big.take_output();
  const std::string rfc_long(5000, 'l');  // over RFC 5321's 1000, accepted
  EXPECT_EQ(big.send(rfc_long + "\r\n.\r\n"), "250 2.0.0 U000000000000001 delivered\r\n");
  EXPECT_EQ(big.counters().data_line_over_rfc.value(), 1u);
  big.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  big.take_output();
  EXPECT_EQ(big.send(std::string(lmtp::kDataLineBytesMax, 'L') + "\r\nok\r\n.\r\n"),
            "554 5.6.0 message has a line over 65536 octets\r\n");
  EXPECT_EQ(big.counters().data_line_too_long.value(), 1u);
  EXPECT_EQ(big.store().at("alice@example.test").messages.size(), 1u);
}

TEST_F(DataTest, OverrunAnswersEveryRecipientThenCloses) {
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  const std::string chunk(1 << 20, 'o');
  std::string out;
  for (uint64_t sent = 0; sent <= 1000 + lmtp::kDataOverrunBytesMax && !h.closed(); sent += chunk.size()) {
    out += h.send(chunk);
  }
  EXPECT_EQ(out, std::string(kTooBig) + std::string(kTooBig));
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().end_reason(), EndReason::kDataOverrun);
  EXPECT_EQ(h.counters().data_overrun.value(), 1u);
  EXPECT_EQ(h.store().deliveries, 0u);
}

TEST_F(DataTest, PipelinedTransactionInOnePacket) {
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   "DATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kRcptOk) + std::string(kDataGo) +
                delivered(1) + delivered(2) + "221 2.0.0 mx.example.test closing connection\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(stored("alice@example.test"), stored("bob@example.test"));
}

TEST_F(DataTest, TwoMessagesInOneSession) {
  EXPECT_EQ(h.send("MAIL FROM:<a@r.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nfirst\r\n.\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kDataGo) + delivered(1));
  EXPECT_EQ(h.send("MAIL FROM:<b@r.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   "DATA\r\nsecond\r\n.\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kRcptOk) + std::string(kDataGo) +
                delivered(2) + delivered(3));
  EXPECT_EQ(stored("alice@example.test"),
            (std::vector<std::string>{"Return-Path: <a@r.test>\r\nfirst\r\n",
                                      "Return-Path: <b@r.test>\r\nsecond\r\n"}));
  EXPECT_EQ(h.session().stats().messages, 2u);
  EXPECT_EQ(h.counters().transactions.value(), 2u);
}

TEST_F(DataTest, DataIdleTimeoutIsItsOwn) {
  lmtp::SessionConfig config = LmtpHarness::default_config();
  config.idle_timeout = milliseconds(1000);
  config.data_idle_timeout = milliseconds(5000);
  LmtpHarness t(config);
  t.store().add("alice@example.test");
  t.send("LHLO c\r\nMAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\npart");
  t.take_output();
  EXPECT_EQ(t.advance(milliseconds(4000)), "");
  t.send("ial line\r\n");
  EXPECT_EQ(t.advance(milliseconds(4999)), "");
  EXPECT_EQ(t.advance(milliseconds(1)), "421 4.4.2 mx.example.test idle for too long; closing connection\r\n");
  EXPECT_TRUE(t.closed());
  EXPECT_EQ(t.counters().data_idle_timeout.value(), 1u);
  EXPECT_EQ(t.counters().idle_timeout.value(), 0u);
  EXPECT_TRUE(t.store().at("alice@example.test").messages.empty());
}

TEST_F(DataTest, ManyRepliesThroughASmallOutputBlock) {
  // 100 recipients' replies (3.8 KB) through a 1 KiB block read 3 octets at
  // a time: all arrive, in order, and input waits meanwhile.
  LmtpHarness s(LmtpHarness::default_config(), lmtp::kCommandReplyBytesMax);
  s.store().add("alice@example.test");
  s.send_limit = 3;
  std::string in = "LHLO c\r\nMAIL FROM:<s@r.test>\r\n";
  std::string want = std::string(kGreeting) + std::string(kLhloReply) + std::string(kMailOk);
  for (uint32_t i = 0; i < lmtp::kRecipientsMax; ++i) {
    in += "RCPT TO:<alice@example.test>\r\n";
    want += kRcptOk;
  }
  in += "DATA\r\nx\r\n.\r\nQUIT\r\n";
  want += kDataGo;
  for (uint32_t i = 0; i < lmtp::kRecipientsMax; ++i) want += delivered(i + 1);
  want += "221 2.0.0 mx.example.test closing connection\r\n";
  EXPECT_EQ(s.take_output() + s.send(in), want);
  EXPECT_EQ(s.pool().blocks_total(), 1u);
  EXPECT_TRUE(s.closed());
}

TEST_F(DataTest, ShutdownDuringData) {
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nhalf a mess");
  h.take_output();
  EXPECT_EQ(h.shutdown(), "421 4.3.2 mx.example.test server shutting down\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().body_capacity_for_test(), std::string().capacity());
  EXPECT_EQ(h.store().deliveries, 0u);
}

TEST_F(DataTest, ShutdownDuringDeliveryFinishesThatOneAndDefersTheRest) {
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
         "RCPT TO:<carol@example.test>\r\nDATA\r\n");
  h.take_output();
  h.auto_reply = false;
  EXPECT_EQ(h.send("m\r\n.\r\n"), "");
  ASSERT_EQ(h.held_requests.size(), 1u);
  EXPECT_EQ(h.shutdown(), "");
  h.session().handle_delivered("u1", h.now());
  h.pump();
  EXPECT_EQ(h.take_output(), "250 2.0.0 u1 delivered\r\n451 4.3.2 server shutting down\r\n"
                             "451 4.3.2 server shutting down\r\n"
                             "421 4.3.2 mx.example.test server shutting down\r\n");
  EXPECT_EQ(h.held_requests.size(), 1u);  // no second delivery was asked for
  EXPECT_TRUE(h.closed());
}

TEST_F(DataTest, PeerGoneDuringDeliveryStillTakesTheReply) {
  h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  h.auto_reply = false;
  h.send("m\r\n.\r\n");
  ASSERT_EQ(h.held_requests.size(), 1u);
  h.peer_closed();
  EXPECT_FALSE(h.closed());  // the slot waits for the store's answer
  EXPECT_TRUE(h.session().awaiting_reply());
  EXPECT_NE(h.session().body_capacity_for_test(), std::string().capacity());  // still referenced
  h.session().handle_delivered("u1", h.now());
  h.pump();
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.held_requests.size(), 1u);  // bob's delivery never started
  EXPECT_EQ(h.counters().delivered.value(), 1u);
  EXPECT_EQ(h.session().body_capacity_for_test(), std::string().capacity());
  EXPECT_EQ(h.session().end_reason(), EndReason::kPeerClosed);
}

TEST_F(DataTest, RepliesMatchingNoRequestAreIgnored) {
  h.session().handle_delivered("x", h.now());
  h.session().handle_recipient_found(1, 1, h.now());
  h.session().handle_delivery_failed(DeliveryFailure::kGone, h.now());
  h.pump();
  EXPECT_EQ(h.take_output(), "");
  EXPECT_EQ(h.send("NOOP\r\n"), kOk);
}

}  // namespace
}  // namespace popgate::testing
