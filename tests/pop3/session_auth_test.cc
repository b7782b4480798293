// AUTHORIZATION state transcripts: greeting, CAPA, USER/PASS and every way a
// login can fail, QUIT, limits and timers. Server lines are compared whole.
#include <gtest/gtest.h>

#include "tests/pop3/session_fixture.h"

namespace popgate::testing {
namespace {

using pop3::RequestKind;
using pop3::StoreStatus;
using std::chrono::milliseconds;

TEST_F(SessionTest, GreetsOnConnect) { EXPECT_EQ(greeting, kGreeting); }

TEST_F(SessionTest, CapaBeforeLogin) {
  EXPECT_EQ(h.send("CAPA\r\n"),
            "+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n"
            "SASL PLAIN LOGIN SCRAM-SHA-256\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
            "LOGIN-DELAY 0 USER\r\nEXPIRE NEVER USER\r\nUTF8 USER\r\nIMPLEMENTATION popgate\r\n.\r\n");
}

TEST_F(SessionTest, CapaAfterLoginGivesTheTenantsValues) {
  FakeUser& u = h.store().users["alice@example.test"];
  u.login_delay_s = 300;
  u.expire_days = 30;
  login();
  EXPECT_EQ(h.send("capa\r\n"),
            "+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n"
            "SASL PLAIN LOGIN SCRAM-SHA-256\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
            "LOGIN-DELAY 300\r\nEXPIRE 30\r\nUTF8 USER\r\nIMPLEMENTATION popgate\r\n.\r\n");
}

TEST_F(SessionTest, LoginSucceeds) {
  EXPECT_EQ(login(), "+OK send PASS\r\n+OK maildrop has 3 messages (" +
                         std::to_string(kMsg1.size() + kMsg2.size() + kMsg3.size()) +
                         " octets)\r\n");
  EXPECT_TRUE(h.session().in_transaction());
  EXPECT_TRUE(h.session().holds_maildrop());
  EXPECT_EQ(h.counters().auth_total(pop3::AuthOutcome::kSuccess), 1u);
  EXPECT_EQ(h.store().seen, (std::vector<RequestKind>{RequestKind::kLookupUser,
                                                      RequestKind::kVerifyPassword,
                                                      RequestKind::kOpenMaildrop}));
}

TEST_F(SessionTest, WrongPasswordIsRefusedAfterTheDelay) {
  h.auto_advance_delays = false;
  EXPECT_EQ(h.send("USER alice@example.test\r\nPASS wrong\r\n"), "+OK send PASS\r\n");
  // Nothing yet: the answer waits for auth_failure_delay.
  EXPECT_EQ(h.advance(milliseconds(999)), "");
  EXPECT_EQ(h.advance(milliseconds(1)), "-ERR [AUTH] invalid user name or password\r\n");
  EXPECT_FALSE(h.session().in_transaction());
  EXPECT_EQ(h.counters().auth_total(pop3::AuthOutcome::kBadCredentials), 1u);
}

TEST_F(SessionTest, UnknownUserLooksLikeWrongPasswordAndStillSpendsKdfTime) {
  EXPECT_EQ(h.send("USER nobody@example.test\r\nPASS x\r\n"),
            "+OK send PASS\r\n-ERR [AUTH] invalid user name or password\r\n");
  EXPECT_EQ(h.store().seen, (std::vector<RequestKind>{RequestKind::kLookupUser,
                                                      RequestKind::kVerifyPassword}));
  EXPECT_FALSE(h.store().last_verify_had_hash);
}

TEST_F(SessionTest, ThreeFailedLoginsClose) {
  std::string out;
  for (int i = 0; i < 3; ++i) out += h.send("USER alice@example.test\r\nPASS no\r\n");
  EXPECT_EQ(out,
            "+OK send PASS\r\n-ERR [AUTH] invalid user name or password\r\n"
            "+OK send PASS\r\n-ERR [AUTH] invalid user name or password\r\n"
            "+OK send PASS\r\n-ERR [AUTH] invalid user name or password; too many failures, "
            "closing connection\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.counters().auth_failure_limit.value(), 1u);
}

TEST_F(SessionTest, LoginWorksAfterAFailure) {
  h.send("USER alice@example.test\r\nPASS no\r\n");
  EXPECT_EQ(login().substr(0, 31), "+OK send PASS\r\n+OK maildrop has");
}

TEST_F(SessionTest, PassWithoutUser) {
  EXPECT_EQ(h.send("PASS s3cret\r\n"), "-ERR USER first\r\n");
  EXPECT_EQ(h.session().bad_commands(), 1u);
}

TEST_F(SessionTest, UserAndPassNeedArguments) {
  EXPECT_EQ(h.send("USER\r\n"), "-ERR user name required\r\n");
  EXPECT_EQ(h.send("USER a\r\nPASS\r\n"), "+OK send PASS\r\n-ERR PASS needs a password\r\n");
}

TEST_F(SessionTest, PasswordKeepsItsSpaces) {
  FakeUser& bob = h.store().users["bob@example.test"];
  bob.user_id = 77;
  bob.password = " lead and trail ";
  EXPECT_EQ(h.send("USER bob@example.test\r\nPASS  lead and trail \r\n"),
            "+OK send PASS\r\n+OK maildrop has 0 messages (0 octets)\r\n");
}

TEST_F(SessionTest, LookupTemporaryFailure) {
  h.store().fail_lookup = StoreStatus::kTemporary;
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [SYS/TEMP] authentication temporarily unavailable\r\n");
  EXPECT_EQ(h.counters().auth_total(pop3::AuthOutcome::kTemporary), 1u);
}

TEST_F(SessionTest, LookupPermanentFailure) {
  h.store().fail_lookup = StoreStatus::kPermanent;
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [SYS/PERM] authentication temporarily unavailable\r\n");
}

TEST_F(SessionTest, KdfPoolUnavailable) {
  h.store().password_override = pop3::PasswordCheck::kUnavailable;
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [SYS/TEMP] authentication temporarily unavailable\r\n");
}

TEST_F(SessionTest, MaildropInUse) {
  h.store().users["alice@example.test"].locked = true;
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [IN-USE] maildrop is locked by another session\r\n");
  EXPECT_FALSE(h.session().holds_maildrop());
  EXPECT_EQ(h.counters().auth_total(pop3::AuthOutcome::kInUse), 1u);
}

TEST_F(SessionTest, MaildropOpenTemporaryFailure) {
  h.store().fail_open = StoreStatus::kTemporary;
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [SYS/TEMP] cannot open maildrop\r\n");
  EXPECT_FALSE(h.session().in_transaction());
}

TEST_F(SessionTest, MaildropOpenPermanentFailure) {
  h.store().fail_open = StoreStatus::kPermanent;
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [SYS/PERM] cannot open maildrop\r\n");
}

TEST_F(SessionTest, TransactionCommandsBeforeLogin) {
  for (std::string_view cmd : {"STAT", "LIST", "UIDL", "RETR 1", "TOP 1 1", "DELE 1", "RSET", "NOOP"}) {
    EXPECT_EQ(h.send(std::string(cmd) + "\r\n"), "-ERR command not valid in this state\r\n") << cmd;
  }
}

TEST_F(SessionTest, UserAndPassAfterLogin) {
  login();
  EXPECT_EQ(h.send("USER x\r\n"), "-ERR command not valid in this state\r\n");
  EXPECT_EQ(h.send("PASS x\r\n"), "-ERR command not valid in this state\r\n");
}

TEST_F(SessionTest, UnknownCommand) {
  EXPECT_EQ(h.send("HELO there\r\n"), "-ERR unknown command\r\n");
  EXPECT_EQ(h.send("\r\n"), "-ERR unknown command\r\n");
  EXPECT_EQ(h.counters().bad_commands.value(), 2u);
}

TEST_F(SessionTest, QuitBeforeLogin) {
  EXPECT_EQ(h.send("QUIT\r\n"), "+OK popgate signing off\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_FALSE(h.session().holds_maildrop());
}

TEST_F(SessionTest, InputAfterQuitIsIgnored) {
  EXPECT_EQ(h.send("QUIT\r\nNOOP\r\nSTAT\r\n"), "+OK popgate signing off\r\n");
}

TEST_F(SessionTest, TenBadCommandsClose) {
  std::string out;
  for (int i = 0; i < 9; ++i) out += h.send("BOGUS\r\n");
  EXPECT_FALSE(h.closed());
  EXPECT_EQ(h.send("BOGUS\r\n"), "-ERR too many bad commands; closing connection\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.counters().bad_command_limit.value(), 1u);
}

TEST_F(SessionTest, LineOfMaximumLengthIsACommand) {
  // USER plus a name filling the line to exactly kCommandLineBytesMax.
  const std::string name(pop3::kCommandLineBytesMax - 5, 'n');
  EXPECT_EQ(h.send("USER " + name + "\r\n"), "+OK send PASS\r\n");
  EXPECT_EQ(h.session().login(), name);
}

TEST_F(SessionTest, OverlongLine) {
  const std::string name(pop3::kCommandLineBytesMax - 4, 'n');
  EXPECT_EQ(h.send("USER " + name + "\r\nNOOP\r\n"),
            "-ERR line too long\r\n-ERR command not valid in this state\r\n");
  EXPECT_EQ(h.counters().line_too_long.value(), 1u);
}

TEST_F(SessionTest, NulInLine) {
  EXPECT_EQ(h.send(std::string("USER a\0b\r\n", 10)), "-ERR NUL octet in command\r\n");
  EXPECT_EQ(h.counters().nul_in_line.value(), 1u);
}

TEST_F(SessionTest, FloodWithoutNewlineCloses) {
  const std::string junk(1024 * 1024, 'j');
  EXPECT_EQ(h.send(junk, 4096), "-ERR line too long\r\n-ERR line too long; closing connection\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.counters().input_flood.value(), 1u);
}

TEST_F(SessionTest, BinaryJunkNeverCrashes) {
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 7919) & 0xff);
  const std::string out = h.send(junk, 97);
  EXPECT_FALSE(out.empty());
  EXPECT_TRUE(h.closed());  // bad commands or NULs run out the limit
}

TEST_F(SessionTest, PreLoginIdleTimeout) {
  EXPECT_EQ(h.advance(milliseconds(59'999)), "");
  EXPECT_EQ(h.advance(milliseconds(1)), "-ERR autologout; idle for too long\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.counters().autologout_login.value(), 1u);
}

TEST_F(SessionTest, ActivityPostponesTheIdleTimeout) {
  h.advance(milliseconds(50'000));
  h.send("CAPA\r\n");
  EXPECT_EQ(h.advance(milliseconds(50'000)), "");
  EXPECT_FALSE(h.closed());
}

TEST_F(SessionTest, ShutdownBeforeLogin) {
  h.shutdown();
  EXPECT_EQ(h.take_output(), "-ERR [SYS/TEMP] server shutting down\r\n");
  EXPECT_TRUE(h.closed());
}

TEST_F(SessionTest, ShutdownWhileLoginIsInFlightKeepsTheLockForRelease) {
  h.auto_reply = false;
  h.send("USER alice@example.test\r\nPASS s3cret pw\r\n");
  ASSERT_EQ(h.held_requests.size(), 1u);
  pop3::UserInfo info;
  info.tenant_id = 1;
  info.user_id = 1;
  info.password_hash = "{PLAIN}s3cret pw";
  h.session().handle_user_found(info, h.now());
  h.pump();
  h.session().handle_password_checked(pop3::PasswordCheck::kMatch, h.now());
  h.pump();
  ASSERT_EQ(h.held_requests.back().kind, RequestKind::kOpenMaildrop);
  h.shutdown();
  EXPECT_FALSE(h.closed());  // waits for the open to answer
  h.session().handle_maildrop_opened(StoreStatus::kOk, pop3::Snapshot{}, h.now());
  h.pump();
  EXPECT_EQ(h.take_output(), "-ERR [SYS/TEMP] server shutting down\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_TRUE(h.session().holds_maildrop());  // the shard must release it
}

TEST(SessionConfigTest, CleartextLoginRefusedWhereNotAllowed) {
  pop3::SessionConfig config;
  config.allow_cleartext_login = false;
  config.implementation = "";
  SessionHarness h(config);
  h.take_output();
  EXPECT_EQ(h.send("CAPA\r\n"),
            "+OK capability list follows\r\nTOP\r\nUIDL\r\nSASL SCRAM-SHA-256\r\nRESP-CODES\r\n"
            "AUTH-RESP-CODE\r\nPIPELINING\r\nLOGIN-DELAY 0 USER\r\nEXPIRE NEVER USER\r\nUTF8 USER\r\n.\r\n");
  EXPECT_EQ(h.send("USER a\r\n"),
            "-ERR [AUTH] cleartext login not allowed on this connection; use STLS\r\n");
  EXPECT_EQ(h.send("PASS a\r\n"),
            "-ERR [AUTH] cleartext login not allowed on this connection; use STLS\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN\r\n"),
            "-ERR [AUTH] cleartext login not allowed on this connection; use STLS\r\n");
}

}  // namespace
}  // namespace popgate::testing
