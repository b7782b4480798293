// Command transcripts: the greeting, LHLO, every command and every error
// path outside DATA, limits, timers, shutdown and a peer that goes away.
// Server lines are compared whole.
#include <gtest/gtest.h>

#include "tests/lmtp/lmtp_fixture.h"

namespace popgate::testing {
namespace {

using lmtp::EndReason;
using lmtp::RequestKind;
using std::chrono::milliseconds;

TEST_F(LmtpTest, Greets) {
  EXPECT_EQ(greeting, kGreeting);
  EXPECT_EQ(h.counters().sessions_opened.value(), 1u);
}

TEST_F(LmtpTest, LhloAdvertisesTheExtensions) {
  EXPECT_EQ(lhlo(), kLhloReply);
  EXPECT_EQ(h.send("lhlo other.example\r\n"), kLhloReply);
  EXPECT_EQ(h.counters().commands[static_cast<size_t>(lmtp::Verb::kLhlo)].value(), 2u);
}

TEST_F(LmtpTest, LhloNeedsAHostName) {
  EXPECT_EQ(h.send("LHLO\r\n"), "501 5.5.4 syntax: LHLO hostname\r\n");
  EXPECT_EQ(h.send("LHLO \r\n"), "501 5.5.4 syntax: LHLO hostname\r\n");
  EXPECT_EQ(h.session().bad_commands(), 2u);
}

TEST_F(LmtpTest, HeloAndEhloAreNotLmtp) {
  EXPECT_EQ(h.send("HELO client.example\r\n"), "500 5.5.1 use LHLO\r\n");
  EXPECT_EQ(h.send("ehlo client.example\r\n"), "500 5.5.1 use LHLO\r\n");
  EXPECT_EQ(h.session().bad_commands(), 2u);
  // Still before LHLO: a transaction cannot start.
  EXPECT_EQ(h.send("MAIL FROM:<a@b.test>\r\n"), "503 5.5.1 send LHLO first\r\n");
}

TEST_F(LmtpTest, TransactionCommandsNeedLhloFirst) {
  EXPECT_EQ(h.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"),
            "503 5.5.1 send LHLO first\r\n503 5.5.1 send LHLO first\r\n"
            "503 5.5.1 send LHLO first\r\n");
  EXPECT_EQ(h.counters().bad_commands.value(), 3u);
  EXPECT_TRUE(h.store().seen.empty());
}

TEST_F(LmtpTest, SessionCommandsWorkBeforeLhlo) {
  EXPECT_EQ(h.send("NOOP\r\nRSET\r\nVRFY alice\r\nHELP\r\n"),
            std::string(kOk) + std::string(kOk) + "252 2.5.0 cannot VRFY user; try RCPT\r\n" +
                "214 2.0.0 commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
  // RSET before LHLO does not stand in for it.
  EXPECT_EQ(h.send("MAIL FROM:<>\r\n"), "503 5.5.1 send LHLO first\r\n");
}

TEST_F(LmtpTest, CommandsAreCaseInsensitive) {
  lhlo();
  EXPECT_EQ(h.send("mail from:<Sender@Remote.test> size=10 body=7bit\r\n"
                   "rcpt to:<ALICE@example.test>\r\nnoop\r\nrset\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kOk) + std::string(kOk));
  EXPECT_EQ(h.store().looked_up, std::vector<std::string>{"ALICE@example.test"});
}

TEST_F(LmtpTest, Noop) {
  EXPECT_EQ(h.send("NOOP\r\nNOOP anything at all\r\n"), std::string(kOk) + std::string(kOk));
}

TEST_F(LmtpTest, Vrfy) {
  EXPECT_EQ(h.send("VRFY alice@example.test\r\n"), "252 2.5.0 cannot VRFY user; try RCPT\r\n");
  EXPECT_EQ(h.send("VRFY\r\n"), "501 5.5.4 syntax: VRFY address\r\n");
  EXPECT_TRUE(h.store().seen.empty());  // VRFY tells nothing
}

TEST_F(LmtpTest, Help) {
  EXPECT_EQ(h.send("HELP\r\nHELP MAIL\r\n"),
            "214 2.0.0 commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n"
            "214 2.0.0 commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
}

TEST_F(LmtpTest, Quit) {
  lhlo();
  EXPECT_EQ(h.send("QUIT now\r\n"), "501 5.5.4 syntax: QUIT\r\n");
  EXPECT_FALSE(h.closed());
  EXPECT_EQ(h.send("QUIT\r\nNOOP\r\n"), "221 2.0.0 mx.example.test closing connection\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().end_reason(), EndReason::kQuit);
}

TEST_F(LmtpTest, QuitMidTransactionDeliversNothing) {
  lhlo();
  EXPECT_EQ(h.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nQUIT\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) +
                "221 2.0.0 mx.example.test closing connection\r\n");
  EXPECT_TRUE(h.store().at("alice@example.test").messages.empty());
}

TEST_F(LmtpTest, UnknownCommands) {
  for (std::string_view line : {"BOGUS", "", "BDAT 10 LAST", "STARTTLS", "EXPN list", "DATAX"}) {
    EXPECT_EQ(h.send(std::string(line) + "\r\n"), "500 5.5.1 command unrecognized\r\n") << line;
  }
  EXPECT_EQ(h.counters().commands[0].value(), 6u);
  EXPECT_EQ(h.counters().command_errors[0].value(), 6u);
}

TEST_F(LmtpTest, WrongOrder) {
  lhlo();
  EXPECT_EQ(h.send("RCPT TO:<alice@example.test>\r\n"), "503 5.5.1 need MAIL before RCPT\r\n");
  EXPECT_EQ(h.send("DATA\r\n"), "503 5.5.1 need MAIL command\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.test>\r\n"), kMailOk);
  EXPECT_EQ(h.send("MAIL FROM:<a@b.test>\r\n"), "503 5.5.1 nested MAIL command\r\n");
  EXPECT_EQ(h.send("DATA\r\n"), "503 5.5.1 no valid recipients\r\n");
  EXPECT_EQ(h.send("RCPT TO:<nobody@example.test>\r\nDATA\r\n"),
            "550 5.1.1 <nobody@example.test>: no such user\r\n503 5.5.1 no valid recipients\r\n");
  EXPECT_EQ(h.send("DATA now\r\n"), "501 5.5.4 syntax: DATA\r\n");
  EXPECT_EQ(h.session().bad_commands(), 6u);
  EXPECT_FALSE(h.session().in_data());
}

TEST_F(LmtpTest, LhloEndsATransaction) {
  lhlo();
  EXPECT_EQ(h.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\n"),
            std::string(kMailOk) + std::string(kRcptOk));
  EXPECT_EQ(lhlo(), kLhloReply);
  EXPECT_EQ(h.send("DATA\r\n"), "503 5.5.1 need MAIL command\r\n");
}

TEST_F(LmtpTest, RsetMidTransaction) {
  lhlo();
  EXPECT_EQ(h.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nRSET\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kOk));
  EXPECT_EQ(h.send("RCPT TO:<bob@example.test>\r\n"), "503 5.5.1 need MAIL before RCPT\r\n");
  EXPECT_EQ(h.send("RSET x\r\n"), "501 5.5.4 syntax: RSET\r\n");
  // A new transaction starts clean: bob only.
  EXPECT_EQ(h.send("MAIL FROM:<c@d.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nhi\r\n.\r\n"),
            std::string(kMailOk) + std::string(kRcptOk) + std::string(kDataGo) + delivered(1));
  EXPECT_TRUE(h.store().at("alice@example.test").messages.empty());
  EXPECT_EQ(h.store().at("bob@example.test").messages,
            std::vector<std::string>{"Return-Path: <c@d.test>\r\nhi\r\n"});
}

// ---- MAIL ------------------------------------------------------------------

class MailTest : public LmtpTest,
                 public ::testing::WithParamInterface<std::pair<const char*, const char*>> {};

TEST_P(MailTest, Answers) {
  lhlo();
  EXPECT_EQ(h.send(std::string(GetParam().first) + "\r\n"), std::string(GetParam().second) + "\r\n");
  EXPECT_FALSE(h.closed());
}

INSTANTIATE_TEST_SUITE_P(
    EveryForm, MailTest,
    ::testing::Values(
        std::pair{"MAIL FROM:<sender@remote.test>", "250 2.1.0 OK"},
        std::pair{"MAIL FROM:<>", "250 2.1.0 OK"},
        std::pair{"MAIL FROM: <sender@remote.test>", "250 2.1.0 OK"},
        std::pair{"MAIL FROM:<@relay.test:sender@remote.test>", "250 2.1.0 OK"},
        std::pair{"MAIL FROM:<\"odd sender\"@remote.test>", "250 2.1.0 OK"},
        std::pair{"MAIL FROM:<s@r.test> SIZE=1000", "250 2.1.0 OK"},
        std::pair{"MAIL FROM:<s@r.test> BODY=8BITMIME SIZE=10", "250 2.1.0 OK"},
        std::pair{"MAIL FROM:<s@r.test> BODY=7BIT", "250 2.1.0 OK"},
        std::pair{"MAIL FROM:<s@r.test> SMTPUTF8", "250 2.1.0 OK"},
        std::pair{"MAIL FROM:<j\xC3\xB6rg@r.test> SMTPUTF8", "250 2.1.0 OK"},
        std::pair{"MAIL FROM:<s@r.test> SIZE=1001",
                  "552 5.3.4 message size exceeds fixed maximum message size"},
        std::pair{"MAIL FROM:<s@r.test> SIZE=99999999999999999999999",
                  "552 5.3.4 message size exceeds fixed maximum message size"},
        std::pair{"MAIL FROM:<j\xC3\xB6rg@r.test>", "553 5.6.7 non-ASCII address requires SMTPUTF8"},
        std::pair{"MAIL FROM:<s@r.test> AUTH=<>", "555 5.5.4 unsupported parameter"},
        std::pair{"MAIL FROM:<s@r.test> RET=HDRS ENVID=x", "555 5.5.4 unsupported parameter"},
        std::pair{"MAIL FROM:<s@r.test> SIZE=ten", "501 5.5.4 bad parameter value"},
        std::pair{"MAIL FROM:<s@r.test> BODY=BINARYMIME", "501 5.5.4 bad parameter value"},
        std::pair{"MAIL FROM:<s@r.test> SIZE=1 SIZE=1", "501 5.5.4 bad parameter value"},
        std::pair{"MAIL FROM:<s@r.test>SIZE=1", "501 5.5.4 syntax error in parameters"},
        std::pair{"MAIL FROM:<s@r.test> =1", "501 5.5.4 syntax error in parameters"},
        std::pair{"MAIL", "501 5.5.4 syntax: MAIL FROM:<address>"},
        std::pair{"MAIL TO:<s@r.test>", "501 5.5.4 syntax: MAIL FROM:<address>"},
        std::pair{"MAIL FROM:s@r.test", "501 5.1.7 bad sender address syntax"},
        std::pair{"MAIL FROM:<s@r.test", "501 5.1.7 bad sender address syntax"},
        std::pair{"MAIL FROM:<s r@r.test>", "501 5.1.7 bad sender address syntax"},
        std::pair{"MAIL FROM:<sender>", "501 5.1.7 bad sender address syntax"},
        std::pair{"MAIL FROM:<\xC3@r.test> SMTPUTF8", "501 5.1.7 bad sender address syntax"}));

TEST_F(LmtpTest, MailAddressTooLong) {
  lhlo();
  const std::string address = std::string(64, 'l') + "@" + std::string(200, 'd') + ".test";
  EXPECT_EQ(h.send("MAIL FROM:<" + address + ">\r\n"), "501 5.1.7 sender address too long\r\n");
}

TEST_F(LmtpTest, BadMailDoesNotStartATransaction) {
  lhlo();
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test> X-FOO\r\nRCPT TO:<alice@example.test>\r\n"),
            "555 5.5.4 unsupported parameter\r\n503 5.5.1 need MAIL before RCPT\r\n");
  // 555 is not a bad command (the syntax was right); the 503 is.
  EXPECT_EQ(h.session().bad_commands(), 1u);
  EXPECT_EQ(h.counters().transactions.value(), 0u);
}

// ---- RCPT ------------------------------------------------------------------

class RcptTest : public LmtpTest,
                 public ::testing::WithParamInterface<std::pair<const char*, const char*>> {};

TEST_P(RcptTest, Answers) {
  lhlo();
  h.send("MAIL FROM:<s@r.test>\r\n");
  EXPECT_EQ(h.send(std::string(GetParam().first) + "\r\n"), std::string(GetParam().second) + "\r\n");
}

INSTANTIATE_TEST_SUITE_P(
    EveryForm, RcptTest,
    ::testing::Values(
        std::pair{"RCPT TO:<alice@example.test>", "250 2.1.5 OK"},
        std::pair{"RCPT TO: <alice@example.test>", "250 2.1.5 OK"},
        std::pair{"RCPT TO:<Alice@Example.Test>", "250 2.1.5 OK"},
        std::pair{"RCPT TO:<@relay.test:alice@example.test>", "250 2.1.5 OK"},
        std::pair{"RCPT TO:<alice@example.test> ", "250 2.1.5 OK"},
        std::pair{"RCPT TO:<nobody@example.test>", "550 5.1.1 <nobody@example.test>: no such user"},
        std::pair{"RCPT TO:<postmaster>", "550 5.1.1 <postmaster>: no such user"},
        std::pair{"RCPT TO:<alice@example.test> NOTIFY=NEVER", "555 5.5.4 unsupported parameter"},
        std::pair{"RCPT TO:<alice@example.test>x", "501 5.5.4 syntax error in parameters"},
        std::pair{"RCPT TO:<>", "501 5.1.3 bad recipient address syntax"},
        std::pair{"RCPT TO:<alice>", "501 5.1.3 bad recipient address syntax"},
        std::pair{"RCPT TO:alice@example.test", "501 5.1.3 bad recipient address syntax"},
        std::pair{"RCPT TO:<alice@@example.test>", "501 5.1.3 bad recipient address syntax"},
        std::pair{"RCPT", "501 5.5.4 syntax: RCPT TO:<address>"},
        std::pair{"RCPT FROM:<alice@example.test>", "501 5.5.4 syntax: RCPT TO:<address>"},
        std::pair{"RCPT TO:<\xC3\xA9l\xC3\xA8ve@example.test>",
                  "553 5.6.7 non-ASCII address requires SMTPUTF8"}));

TEST_F(LmtpTest, RcptLooksUpTheAddressAsSent) {
  lhlo();
  h.send("MAIL FROM:<s@r.test>\r\n");
  h.send("RCPT TO:<@relay.test:Alice@Example.Test>\r\nRCPT TO:<postmaster>\r\n");
  EXPECT_EQ(h.store().looked_up, (std::vector<std::string>{"Alice@Example.Test", "postmaster"}));
}

TEST_F(LmtpTest, Utf8RecipientWithSmtputf8) {
  h.store().add("\xC3\xA9l\xC3\xA8ve@example.test");
  lhlo();
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test> SMTPUTF8\r\nRCPT TO:<\xC3\xA9l\xC3\xA8ve@example.test>\r\n"),
            std::string(kMailOk) + std::string(kRcptOk));
  EXPECT_EQ(h.counters().smtputf8_required.value(), 0u);
}

TEST_F(LmtpTest, TemporaryLookupFailure) {
  lhlo();
  h.send("MAIL FROM:<s@r.test>\r\n");
  h.store().fail_next_lookup = true;
  EXPECT_EQ(h.send("RCPT TO:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\n"),
            "451 4.3.0 temporary failure\r\n250 2.1.5 OK\r\n");
  EXPECT_EQ(h.counters().recipients_temporary.value(), 1u);
  EXPECT_EQ(h.counters().recipients_accepted.value(), 1u);
  EXPECT_EQ(h.session().bad_commands(), 0u);
}

TEST_F(LmtpTest, RecipientLimit) {
  lhlo();
  std::string in = "MAIL FROM:<s@r.test>\r\n";
  std::string want(kMailOk);
  for (uint32_t i = 0; i < lmtp::kRecipientsMax; ++i) {
    in += "RCPT TO:<alice@example.test>\r\n";
    want += kRcptOk;
  }
  in += "RCPT TO:<bob@example.test>\r\nRCPT TO:<nobody@example.test>\r\n";
  want += "452 4.5.3 too many recipients\r\n452 4.5.3 too many recipients\r\n";
  EXPECT_EQ(h.send(in), want);
  EXPECT_EQ(h.store().looked_up.size(), lmtp::kRecipientsMax);
  EXPECT_EQ(h.counters().recipient_limit.value(), 2u);
  EXPECT_EQ(h.session().bad_commands(), 0u);
  // The accepted ones each get their reply after the dot.
  std::string replies;
  for (uint32_t i = 0; i < lmtp::kRecipientsMax; ++i) replies += delivered(i + 1);
  EXPECT_EQ(h.send("DATA\r\nx\r\n.\r\n"), std::string(kDataGo) + replies);
  EXPECT_EQ(h.store().at("alice@example.test").messages.size(), lmtp::kRecipientsMax);
}

// ---- Limits ----------------------------------------------------------------

TEST_F(LmtpTest, CommandLineLimit) {
  lhlo();
  const std::string head = "MAIL FROM:<";
  const std::string tail = "@r.test>";
  // 510 octets without CRLF pass the reader (then the address is too long).
  const std::string at_limit = head + std::string(lmtp::kCommandLineBytesMax - head.size() - tail.size(), 'x') + tail;
  ASSERT_EQ(at_limit.size(), lmtp::kCommandLineBytesMax);
  EXPECT_EQ(h.send(at_limit + "\r\n"), "501 5.1.7 sender address too long\r\n");
  EXPECT_EQ(h.send("x" + at_limit + "\r\nNOOP\r\n"), "500 5.5.2 line too long\r\n" + std::string(kOk));
  EXPECT_EQ(h.counters().line_too_long.value(), 1u);
  EXPECT_EQ(h.session().bad_commands(), 2u);
}

TEST_F(LmtpTest, NulInACommand) {
  EXPECT_EQ(h.send(std::string("NO\0OP\r\n", 7)), "500 5.5.2 NUL octet in command\r\n");
  EXPECT_EQ(h.counters().nul_in_line.value(), 1u);
  EXPECT_EQ(h.session().bad_commands(), 1u);
}

TEST_F(LmtpTest, FloodCloses) {
  EXPECT_EQ(h.send(std::string(lmtp::kInputDiscardBytesMax + 10, 'A')),
            "421 4.5.2 mx.example.test line too long; closing connection\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().end_reason(), EndReason::kFlood);
  EXPECT_EQ(h.counters().input_flood.value(), 1u);
}

TEST_F(LmtpTest, BadCommandLimitCloses) {
  std::string want;
  for (uint32_t i = 1; i < lmtp::kBadCommandsMax; ++i) {
    EXPECT_EQ(h.send("BOGUS\r\n"), "500 5.5.1 command unrecognized\r\n");
  }
  EXPECT_FALSE(h.closed());
  // Good commands and 5xx that are not syntax errors do not count.
  lhlo();
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test> XFOO\r\n"), "555 5.5.4 unsupported parameter\r\n");
  EXPECT_FALSE(h.closed());
  EXPECT_EQ(h.send("HELO x\r\nNOOP\r\n"),
            "421 4.7.0 mx.example.test too many bad commands; closing connection\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().end_reason(), EndReason::kBadCommands);
  EXPECT_EQ(h.counters().bad_commands.value(), lmtp::kBadCommandsMax);
  EXPECT_EQ(h.counters().bad_command_limit.value(), 1u);
}

TEST_F(LmtpTest, IdleTimeout) {
  lhlo();
  EXPECT_EQ(h.advance(milliseconds(299'999)), "");
  EXPECT_EQ(h.advance(milliseconds(1)),
            "421 4.4.2 mx.example.test idle for too long; closing connection\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().end_reason(), EndReason::kIdleTimeout);
  EXPECT_EQ(h.counters().idle_timeout.value(), 1u);
}

TEST_F(LmtpTest, InputResetsTheIdleTimer) {
  EXPECT_EQ(h.advance(milliseconds(200'000)), "");
  EXPECT_EQ(h.send("NOOP\r\n"), kOk);
  EXPECT_EQ(h.advance(milliseconds(200'000)), "");
  EXPECT_FALSE(h.closed());
  // A partial command line is not activity.
  EXPECT_EQ(h.send("NO"), "");
  EXPECT_NE(h.advance(milliseconds(100'000)), "");
  EXPECT_TRUE(h.closed());
}

TEST_F(LmtpTest, StalledReaderIsCut) {
  lhlo();
  h.drain = false;
  std::string noops;
  for (int i = 0; i < 2000; ++i) noops += "NOOP\r\n";
  h.send(noops);
  EXPECT_FALSE(h.input_held().empty());  // output full: reading stopped
  EXPECT_FALSE(h.session().wants_input());
  h.advance(milliseconds(300'000));
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.close_mode(), lmtp::CloseMode::kNow);
  EXPECT_EQ(h.session().end_reason(), EndReason::kStalled);
  EXPECT_EQ(h.counters().stalled.value(), 1u);
}

TEST_F(LmtpTest, LingerAfterCloseIsBounded) {
  h.drain = false;
  h.send("QUIT\r\n");
  EXPECT_EQ(h.close_mode(), lmtp::CloseMode::kAfterFlush);
  h.advance(milliseconds(5'000));
  EXPECT_EQ(h.close_mode(), lmtp::CloseMode::kNow);
  EXPECT_EQ(h.session().end_reason(), EndReason::kQuit);
}

TEST_F(LmtpTest, ShutdownWhileIdle) {
  lhlo();
  EXPECT_EQ(h.shutdown(), "421 4.3.2 mx.example.test server shutting down\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().end_reason(), EndReason::kShutdown);
  EXPECT_EQ(h.counters().shutdown_closes.value(), 1u);
}

TEST_F(LmtpTest, ShutdownDuringALookupAnswersItFirst) {
  lhlo();
  h.auto_reply = false;
  EXPECT_EQ(h.send("MAIL FROM:<s@r.test>\r\nRCPT TO:<alice@example.test>\r\nNOOP\r\n"), kMailOk);
  ASSERT_EQ(h.held_requests.size(), 1u);
  EXPECT_EQ(h.shutdown(), "");
  EXPECT_FALSE(h.closed());
  h.session().handle_recipient_found(7, 101, h.now());
  h.pump();
  EXPECT_EQ(h.take_output(),
            std::string(kRcptOk) + "421 4.3.2 mx.example.test server shutting down\r\n");
  EXPECT_TRUE(h.closed());
}

TEST_F(LmtpTest, RefuseBeforeGreeting) {
  pop3::BufferPool pool(4096);
  lmtp::Counters counters;
  const lmtp::SessionConfig config = LmtpHarness::default_config();
  lmtp::Session s(config, pool, counters);
  s.refuse("too many connections", h.now());
  EXPECT_EQ(s.pending_output(), "421 4.3.2 mx.example.test too many connections\r\n");
  EXPECT_EQ(s.close_mode(), lmtp::CloseMode::kAfterFlush);
  EXPECT_EQ(s.end_reason(), EndReason::kRefused);
  EXPECT_FALSE(s.wants_input());
}

TEST(LmtpHostname, IsCutAtTheFirstUnprintableOctet) {
  lmtp::SessionConfig config = LmtpHarness::default_config();
  config.hostname = "mx.example.test\r\nEVIL";
  LmtpHarness h(config);
  EXPECT_EQ(h.take_output(), "220 mx.example.test LMTP popgate ready\r\n");
  config.hostname = std::string(300, 'h');
  LmtpHarness g(config);
  EXPECT_EQ(g.take_output(), "220 " + std::string(lmtp::kHostnameBytesMax, 'h') + " LMTP popgate ready\r\n");
}

TEST_F(LmtpTest, PeerClosed) {
  lhlo();
  h.peer_closed();
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().end_reason(), EndReason::kPeerClosed);
  EXPECT_EQ(h.session().handle_input("NOOP\r\n", h.now()), 6u);  // dropped unread
  EXPECT_EQ(h.session().pending_output(), "");
}

TEST_F(LmtpTest, PeerClosedWithALookupNotYetTakenWithdrawsIt) {
  lhlo();
  lmtp::Session& s = h.session();
  EXPECT_EQ(s.handle_input("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\n", h.now()), 52u);
  s.handle_peer_closed(h.now());
  EXPECT_EQ(s.take_request(), nullptr);
  EXPECT_FALSE(s.awaiting_reply());
}

}  // namespace
}  // namespace popgate::testing
