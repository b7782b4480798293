// Transcripts for the extensions: STLS (and plaintext injection), UTF8,
// SASL AUTH with PLAIN, LOGIN, SCRAM-SHA-256, OAUTHBEARER and XOAUTH2, APOP,
// the tenant's policy (require TLS, allowed methods, LOGIN-DELAY) and the
// shard's limits. The fake store's rules for the cryptographic steps are in
// tests/support/session_harness.h.
#include <gtest/gtest.h>

#include "server/pop3/base64.h"
#include "tests/pop3/session_fixture.h"

namespace popgate::testing {
namespace {

using pop3::RequestKind;
using std::chrono::milliseconds;

std::string b64(std::string_view s) {
  std::string out;
  pop3::base64_encode(s, out);
  return out;
}

std::string maildrop_ok() {
  return "+OK maildrop has 3 messages (" +
         std::to_string(kMsg1.size() + kMsg2.size() + kMsg3.size()) + " octets)\r\n";
}

pop3::SessionConfig with_tls() {
  pop3::SessionConfig c;
  c.tls_available = true;
  c.mechanisms = pop3::kMechAll & ~pop3::kMechApop;
  return c;
}

class ExtTest : public SessionTest {
 protected:
  explicit ExtTest(pop3::SessionConfig config = with_tls()) : SessionTest(std::move(config)) {}
};

// ---- STLS ------------------------------------------------------------------------

TEST_F(ExtTest, StlsIsOfferedOnAPlainConnection) {
  const std::string capa = h.send("CAPA\r\n");
  EXPECT_NE(capa.find("\r\nSTLS\r\n"), std::string::npos);
  // Bearer tokens are not offered in clear.
  EXPECT_NE(capa.find("SASL PLAIN LOGIN SCRAM-SHA-256\r\n"), std::string::npos);
}

TEST_F(ExtTest, StlsThenTheConversationStartsOver) {
  h.send("USER alice@example.test\r\n");
  EXPECT_EQ(h.send("STLS\r\n"), "+OK begin TLS negotiation\r\n");
  EXPECT_TRUE(h.session().wants_tls());
  ASSERT_TRUE(h.start_tls());
  EXPECT_TRUE(h.session().secure());
  const std::string capa = h.send("CAPA\r\n");
  EXPECT_EQ(capa.find("STLS"), std::string::npos);
  EXPECT_NE(capa.find("SASL PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2\r\n"), std::string::npos);
  // The USER given in clear is forgotten (RFC 2595 section 4).
  EXPECT_EQ(h.send("PASS s3cret pw\r\n"), "-ERR USER first\r\n");
  EXPECT_EQ(login(), "+OK send PASS\r\n" + maildrop_ok());
}

TEST_F(ExtTest, CommandsInjectedAfterStlsAreNeverRun) {
  // An attacker appends plaintext after STLS in the same packet.
  EXPECT_EQ(h.send("STLS\r\nUSER alice@example.test\r\nPASS s3cret pw\r\nSTAT\r\n"),
            "+OK begin TLS negotiation\r\n");
  ASSERT_TRUE(h.start_tls());
  EXPECT_TRUE(h.store().seen.empty());  // no lookup, no login
  EXPECT_FALSE(h.session().in_transaction());
  EXPECT_EQ(h.send("STAT\r\n"), "-ERR command not valid in this state\r\n");
}

TEST_F(ExtTest, InjectionIsDroppedWhateverTheSplit) {
  const std::string attack = "CAPA\r\nSTLS\r\nUSER alice@example.test\r\nPASS s3cret pw\r\n";
  for (size_t cut = 1; cut < attack.size(); ++cut) {
    SessionHarness t(with_tls());
    t.store().add_user("alice@example.test", "s3cret pw");
    t.take_output();
    const std::string out = t.send_split(attack, {cut});
    ASSERT_TRUE(out.ends_with("+OK begin TLS negotiation\r\n")) << cut << ": " << out;
    ASSERT_TRUE(t.start_tls());
    ASSERT_TRUE(t.store().seen.empty()) << "split at " << cut;
  }
}

TEST_F(ExtTest, StlsRefusedWhenActiveOrUnavailable) {
  SessionHarness secure(with_tls(), 16 * 1024, true);
  secure.take_output();
  EXPECT_EQ(secure.send("STLS\r\n"), "-ERR TLS is already active\r\n");
  SessionHarness plain;  // no TLS configured
  plain.take_output();
  EXPECT_EQ(plain.send("STLS\r\n"), "-ERR STLS is not available\r\n");
  EXPECT_EQ(plain.send("STLS x\r\n"), "-ERR STLS takes no arguments\r\n");
}

// ---- UTF8 ------------------------------------------------------------------------

TEST_F(ExtTest, Utf8UserNamesNeedUtf8Mode) {
  h.store().add_user("jürgen@example.test", "päss wört");
  EXPECT_EQ(h.send("USER jürgen@example.test\r\n"),
            "-ERR [UTF8] UTF-8 user names need the UTF8 command first\r\n");
  EXPECT_EQ(h.send("UTF8\r\n"), "+OK UTF8 enabled\r\n");
  EXPECT_EQ(h.send("USER jürgen@example.test\r\nPASS päss wört\r\n"),
            "+OK send PASS\r\n+OK maildrop has 0 messages (0 octets)\r\n");
}

TEST_F(ExtTest, Utf8PasswordsNeedUtf8Mode) {
  EXPECT_EQ(h.send("USER alice@example.test\r\nPASS pässword\r\n"),
            "+OK send PASS\r\n-ERR [UTF8] UTF-8 passwords need the UTF8 command first\r\n");
}

TEST_F(ExtTest, InvalidUtf8IsRefused) {
  h.send("UTF8\r\n");
  EXPECT_EQ(h.send("USER bad\xC3\x28name\r\n"), "-ERR [UTF8] user name is not valid UTF-8\r\n");
  EXPECT_EQ(h.send("USER a\xED\xA0\x80x\r\n"), "-ERR [UTF8] user name is not valid UTF-8\r\n");  // surrogate
  EXPECT_EQ(h.send("UTF8 x\r\n"), "-ERR UTF8 takes no arguments\r\n");
}

// ---- AUTH PLAIN / LOGIN ----------------------------------------------------------------

TEST_F(ExtTest, AuthWithoutArgumentsListsMechanisms) {
  EXPECT_EQ(h.send("AUTH\r\n"), "+OK\r\nPLAIN\r\nLOGIN\r\nSCRAM-SHA-256\r\n.\r\n");
}

TEST_F(ExtTest, PlainWithInitialResponse) {
  EXPECT_EQ(h.send("AUTH PLAIN " + b64(std::string("\0alice@example.test\0s3cret pw", 29)) + "\r\n"),
            maildrop_ok());
  EXPECT_EQ(h.session().mechanism(), pop3::kMechPlain);
  EXPECT_EQ(h.counters().auth[pop3::mechanism_index(pop3::kMechPlain)][static_cast<size_t>(pop3::AuthOutcome::kSuccess)].value(), 1u);
}

TEST_F(ExtTest, PlainWithContinuationAndAuthzidEqualToUser) {
  EXPECT_EQ(h.send("AUTH PLAIN\r\n"), "+ \r\n");
  EXPECT_EQ(h.send(b64(std::string("alice@example.test\0alice@example.test\0s3cret pw", 47)) + "\r\n"),
            maildrop_ok());
}

TEST_F(ExtTest, PlainRefusals) {
  EXPECT_EQ(h.send("AUTH PLAIN " + b64(std::string("bob\0alice@example.test\0s3cret pw", 32)) + "\r\n"),
            "-ERR [AUTH] authorization identity must be empty or the user itself\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN " + b64("no nuls at all") + "\r\n"), "-ERR malformed PLAIN message\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN =\r\n"), "-ERR malformed PLAIN message\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN not*base64\r\n"), "-ERR initial response is not valid base64\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN\r\n"), "+ \r\n");
  EXPECT_EQ(h.send("!!!!\r\n"), "-ERR response is not valid base64\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN " + b64(std::string("\0alice@example.test\0wrong", 25)) + "\r\n"),
            "-ERR [AUTH] invalid user name or password\r\n");
  EXPECT_EQ(h.counters().auth_total(pop3::AuthOutcome::kMalformed), 5u);
}

TEST_F(ExtTest, CancelWithStar) {
  EXPECT_EQ(h.send("AUTH LOGIN\r\n"), "+ VXNlcm5hbWU6\r\n");
  EXPECT_EQ(h.send("*\r\n"), "-ERR authentication cancelled\r\n");
  // Back to commands.
  EXPECT_EQ(h.send("NOOP\r\n"), "-ERR command not valid in this state\r\n");
}

TEST_F(ExtTest, Login) {
  EXPECT_EQ(h.send("AUTH LOGIN\r\n"), "+ VXNlcm5hbWU6\r\n");
  EXPECT_EQ(h.send(b64("alice@example.test") + "\r\n"), "+ UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(h.send(b64("s3cret pw") + "\r\n"), maildrop_ok());
  EXPECT_EQ(h.session().mechanism(), pop3::kMechLogin);
}

TEST_F(ExtTest, UnsupportedAndMalformedAuth) {
  EXPECT_EQ(h.send("AUTH CRAM-MD5\r\n"), "-ERR unsupported authentication mechanism\r\n");
  EXPECT_EQ(h.send("AUTH USER\r\n"), "-ERR unsupported authentication mechanism\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN a b\r\n"),
            "-ERR AUTH takes a mechanism and at most an initial response\r\n");
  EXPECT_EQ(h.send("AUTH OAUTHBEARER\r\n"), "-ERR [AUTH] bearer tokens are accepted over TLS only\r\n");
}

// ---- SCRAM-SHA-256 --------------------------------------------------------------------------

TEST_F(ExtTest, ScramExchange) {
  const std::string first = "n,,n=alice@example.test,r=clientnonce";
  EXPECT_EQ(h.send("AUTH SCRAM-SHA-256 " + b64(first) + "\r\n"),
            "+ " + b64("r=clientnoncesrv,s=c2FsdA==,i=4096") + "\r\n");
  EXPECT_EQ(h.send(b64("c=biws,r=clientnoncesrv,p=good") + "\r\n"), "+ " + b64("v=signature") + "\r\n");
  EXPECT_EQ(h.send("\r\n"), maildrop_ok());
  EXPECT_EQ(h.session().mechanism(), pop3::kMechScramSha256);
}

TEST_F(ExtTest, ScramWithoutInitialResponse) {
  EXPECT_EQ(h.send("AUTH SCRAM-SHA-256\r\n"), "+ \r\n");
  EXPECT_EQ(h.send(b64("n,,n=alice@example.test,r=x") + "\r\n"),
            "+ " + b64("r=xsrv,s=c2FsdA==,i=4096") + "\r\n");
  EXPECT_EQ(h.send(b64("c=biws,r=xsrv,p=good") + "\r\n"), "+ " + b64("v=signature") + "\r\n");
  EXPECT_EQ(h.send("\r\n"), maildrop_ok());
}

TEST_F(ExtTest, ScramBadProofFails) {
  h.send("AUTH SCRAM-SHA-256 " + b64("n,,n=alice@example.test,r=x") + "\r\n");
  EXPECT_EQ(h.send(b64("c=biws,r=xsrv,p=bad") + "\r\n"), "-ERR [AUTH] invalid user name or password\r\n");
  EXPECT_FALSE(h.session().in_transaction());
}

TEST_F(ExtTest, ScramUnknownUserGetsAChallengeThenFails) {
  EXPECT_EQ(h.send("AUTH SCRAM-SHA-256 " + b64("n,,n=nobody@example.test,r=x") + "\r\n"),
            "+ " + b64("r=xsrv,s=c2FsdA==,i=4096") + "\r\n");
  EXPECT_EQ(h.send(b64("c=biws,r=xsrv,p=good") + "\r\n"), "-ERR [AUTH] invalid user name or password\r\n");
}

TEST_F(ExtTest, ScramMalformedFirstMessage) {
  EXPECT_EQ(h.send("AUTH SCRAM-SHA-256 " + b64("garbage") + "\r\n"),
            "-ERR invalid SCRAM client-first message\r\n");
}

TEST_F(ExtTest, ScramAckMustBeEmpty) {
  h.send("AUTH SCRAM-SHA-256 " + b64("n,,n=alice@example.test,r=x") + "\r\n");
  h.send(b64("c=biws,r=xsrv,p=good") + "\r\n");
  EXPECT_EQ(h.send("AAAA\r\n"), "-ERR expected an empty response\r\n");
  EXPECT_FALSE(h.session().in_transaction());
}

// ---- OAUTHBEARER / XOAUTH2 ----------------------------------------------------------------------

TEST(BearerTest, OauthBearerOverTls) {
  SessionHarness h(with_tls(), 16 * 1024, true);
  h.store().add_user("alice@example.test", "x");
  h.take_output();
  const std::string msg = "n,a=alice@example.test,\x01" "auth=Bearer ok:alice@example.test\x01\x01";
  EXPECT_EQ(h.send("AUTH OAUTHBEARER " + b64(msg) + "\r\n"), "+OK maildrop has 0 messages (0 octets)\r\n");
  EXPECT_EQ(h.session().mechanism(), pop3::kMechOauthBearer);
}

TEST(BearerTest, RejectedTokenGetsAnErrorChallengeThenErr) {
  SessionHarness h(with_tls(), 16 * 1024, true);
  h.store().add_user("alice@example.test", "x");
  h.take_output();
  EXPECT_EQ(h.send("AUTH OAUTHBEARER " + b64("n,,\x01" "auth=Bearer expired\x01\x01") + "\r\n"),
            "+ " + b64("{\"status\":\"invalid_token\"}") + "\r\n");
  EXPECT_EQ(h.send("AQ==\r\n"), "-ERR [AUTH] invalid user name or password\r\n");
}

TEST(BearerTest, Xoauth2WithALongInitialResponse) {
  SessionHarness h(with_tls(), 16 * 1024, true);
  h.store().add_user("alice@example.test", "x");
  h.take_output();
  // Real tokens run to kilobytes: longer than a command line may be.
  const std::string token = "ok:alice@example.test\x01" + std::string(3000, 'j');
  const std::string line = "AUTH XOAUTH2 " + b64("user=alice@example.test\x01" "auth=Bearer " + token + "\x01\x01");
  ASSERT_GT(line.size(), pop3::kCommandLineBytesMax);
  EXPECT_EQ(h.send(line + "\r\n", 100), "+OK maildrop has 0 messages (0 octets)\r\n");
}

TEST(BearerTest, TokenForAnUnknownUserFails) {
  SessionHarness h(with_tls(), 16 * 1024, true);
  h.take_output();
  EXPECT_EQ(h.send("AUTH XOAUTH2 " + b64("user=x\x01" "auth=Bearer ok:ghost@example.test\x01\x01") + "\r\n"),
            "-ERR [AUTH] invalid user name or password\r\n");
}

// ---- APOP ---------------------------------------------------------------------------------

pop3::SessionConfig with_apop() {
  pop3::SessionConfig c;
  c.apop = true;
  c.mechanisms |= pop3::kMechApop;
  return c;
}

TEST(ApopTest, GreetingCarriesTheBannerAndApopLogsIn) {
  SessionHarness h(with_apop(), 16 * 1024, false, "<1896.697170952@dbc.mtview.ca.us>");
  h.store().add_user("alice@example.test", "x").apop_secret = "c4c9334b";  // the fake's digest rule
  EXPECT_EQ(h.take_output(), "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n");
  EXPECT_EQ(h.send("APOP alice@example.test c4c9334b000000000000000000000000\r\n"),
            "+OK maildrop has 0 messages (0 octets)\r\n");
  EXPECT_EQ(h.session().mechanism(), pop3::kMechApop);
}

TEST(ApopTest, WrongDigestNoSecretAndMalformed) {
  SessionHarness h(with_apop(), 16 * 1024, false, "<1.2@x>");
  h.store().add_user("alice@example.test", "x").apop_secret = "tanstaaf";
  h.store().add_user("bob@example.test", "x");  // no APOP secret
  h.take_output();
  const std::string zeros(32, '0');
  EXPECT_EQ(h.send("APOP alice@example.test " + zeros + "\r\n"),
            "-ERR [AUTH] invalid user name or password\r\n");
  EXPECT_EQ(h.send("APOP bob@example.test " + zeros + "\r\n"),
            "-ERR [AUTH] invalid user name or password\r\n");
  EXPECT_EQ(h.send("APOP alice@example.test xyz\r\n"), "-ERR APOP digest must be 32 hex digits\r\n");
  EXPECT_EQ(h.send("APOP alice@example.test\r\n"), "-ERR APOP needs a name and a digest\r\n");
}

TEST_F(ExtTest, ApopNotOfferedWhenDisabled) {
  EXPECT_EQ(h.send("APOP alice@example.test " + std::string(32, 'a') + "\r\n"),
            "-ERR APOP is not available\r\n");
}

// ---- Tenant policy --------------------------------------------------------------------------

TEST_F(ExtTest, TenantRequiringTlsRefusesCleartextLogins) {
  h.store().users["alice@example.test"].require_tls = true;
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [AUTH] this domain requires TLS; use STLS or the TLS port\r\n");
  EXPECT_EQ(h.counters().auth_total(pop3::AuthOutcome::kPolicy), 1u);
  h.send("STLS\r\n");
  ASSERT_TRUE(h.start_tls());
  EXPECT_EQ(login(), "+OK send PASS\r\n" + maildrop_ok());
}

TEST_F(ExtTest, TenantMechanismList) {
  h.store().users["alice@example.test"].mechanisms = pop3::parse_mechanism_list("SCRAM-SHA-256");
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [AUTH] this login method is not allowed for this domain\r\n");
  h.send("AUTH SCRAM-SHA-256 " + b64("n,,n=alice@example.test,r=x") + "\r\n");
  h.send(b64("c=biws,r=xsrv,p=good") + "\r\n");
  EXPECT_EQ(h.send("\r\n"), maildrop_ok());
}

TEST_F(ExtTest, LoginDelay) {
  FakeUser& u = h.store().users["alice@example.test"];
  u.login_delay_s = 300;
  u.since_last_login_s = 299;
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [LOGIN-DELAY] minimum time between logins is 300 seconds\r\n");
  EXPECT_EQ(h.counters().auth_total(pop3::AuthOutcome::kLoginDelay), 1u);
  u.since_last_login_s = 300;
  EXPECT_EQ(login(), "+OK send PASS\r\n" + maildrop_ok());
}

TEST_F(ExtTest, FirstLoginIsNeverDelayed) {
  FakeUser& u = h.store().users["alice@example.test"];
  u.login_delay_s = 300;
  u.since_last_login_s = -1;
  EXPECT_EQ(login(), "+OK send PASS\r\n" + maildrop_ok());
}

TEST(MechanismList, ParsesNamesCaseInsensitively) {
  EXPECT_EQ(pop3::parse_mechanism_list("plain  SCRAM-SHA-256 bogus"),
            pop3::kMechPlain | pop3::kMechScramSha256);
  EXPECT_EQ(pop3::parse_mechanism_list(""), 0u);
  EXPECT_EQ(pop3::mechanism_name(pop3::kMechXoauth2), "XOAUTH2");
}

// ---- Shard limits ---------------------------------------------------------------------------

TEST_F(ExtTest, RefusedBeforeTheGreeting) {
  SessionHarness t(with_tls(), 16 * 1024);
  // A fresh session refused instead of started (a connection limit).
  pop3::BufferPool pool(4096);
  pop3::Counters counters;
  pop3::SessionConfig config;
  pop3::Session s(config, pool, counters);
  s.refuse(pop3::RespCode::kSysTemp, "too many connections from your address", t.now());
  EXPECT_EQ(s.pending_output(), "-ERR [SYS/TEMP] too many connections from your address\r\n");
  EXPECT_EQ(s.close_mode(), pop3::CloseMode::kAfterFlush);
  EXPECT_EQ(s.end_reason(), pop3::EndReason::kRefused);
}

TEST_F(ExtTest, OpenRefusedByALimit) {
  h.refuse_open = std::make_pair(pop3::RespCode::kSysTemp, std::string("too many logins for this domain"));
  EXPECT_EQ(login(), "+OK send PASS\r\n-ERR [SYS/TEMP] too many logins for this domain\r\n");
  EXPECT_FALSE(h.session().holds_maildrop());
  EXPECT_EQ(login(), "+OK send PASS\r\n" + maildrop_ok());
}

TEST_F(ExtTest, AbusiveAddressIsCutOffAfterTheFailure) {
  h.close_after_failure = true;
  EXPECT_EQ(h.send("USER alice@example.test\r\nPASS wrong\r\n"),
            "+OK send PASS\r\n-ERR [AUTH] invalid user name or password; closing connection\r\n");
  EXPECT_TRUE(h.closed());
}

TEST_F(ExtTest, FailureDelayAppliesToEveryMechanism) {
  h.auto_advance_delays = false;
  h.failure_delay = milliseconds(4000);
  h.send("AUTH SCRAM-SHA-256 " + b64("n,,n=alice@example.test,r=x") + "\r\n");
  EXPECT_EQ(h.send(b64("c=biws,r=xsrv,p=bad") + "\r\n"), "");
  EXPECT_EQ(h.advance(milliseconds(3999)), "");
  EXPECT_EQ(h.advance(milliseconds(1)), "-ERR [AUTH] invalid user name or password\r\n");
}

TEST_F(ExtTest, LoginRefusedAtLookup) {
  h.auto_reply = false;
  h.send("USER alice@example.test\r\nPASS s3cret pw\r\n");
  ASSERT_EQ(h.held_requests.back().kind, RequestKind::kLookupUser);
  h.session().handle_login_refused(pop3::RespCode::kInUse, "too many sessions for this user", h.now());
  h.pump();
  EXPECT_EQ(h.take_output(), "-ERR [IN-USE] too many sessions for this user\r\n");
  EXPECT_FALSE(h.session().in_transaction());
}

TEST_F(ExtTest, FailureDelayFromTheShard) {
  h.auto_advance_delays = false;
  h.failure_delay = milliseconds(8000);
  EXPECT_EQ(h.send("USER alice@example.test\r\nPASS wrong\r\n"), "+OK send PASS\r\n");
  EXPECT_EQ(h.advance(milliseconds(7999)), "");
  EXPECT_EQ(h.advance(milliseconds(1)), "-ERR [AUTH] invalid user name or password\r\n");
}

// ---- Splits ---------------------------------------------------------------------------------

TEST(SaslSplit, ConversationIsTheSameAtEverySplit) {
  const std::string conversation =
      "CAPA\r\nAUTH LOGIN\r\n" + b64("alice@example.test") + "\r\n" + b64("wrong") +
      "\r\nAUTH PLAIN\r\n*\r\nAUTH SCRAM-SHA-256\r\n" + b64("n,,n=alice@example.test,r=q") + "\r\n" +
      b64("c=biws,r=qsrv,p=good") + "\r\n\r\nSTAT\r\nQUIT\r\n";
  auto run = [&](const std::vector<size_t>& cuts) {
    SessionHarness h(with_tls());
    h.store().add_user("alice@example.test", "s3cret pw").messages = {FakeStore::message(1, "u", kMsg1)};
    std::string out = h.take_output();
    out += h.send_split(conversation, cuts);
    return out;
  };
  const std::string whole = run({});
  EXPECT_NE(whole.find("+OK 1 " + std::to_string(kMsg1.size())), std::string::npos) << whole;
  for (size_t cut = 1; cut < conversation.size(); ++cut) ASSERT_EQ(run({cut}), whole) << cut;
  std::vector<size_t> bytes;
  for (size_t i = 1; i < conversation.size(); ++i) bytes.push_back(i);
  EXPECT_EQ(run(bytes), whole);
}

}  // namespace
}  // namespace popgate::testing
