// TRANSACTION and UPDATE transcripts: every command, every argument error,
// byte-stuffing, sizes, the snapshot, QUIT's all-or-nothing UPDATE, and
// what a dropped connection leaves behind.
#include <gtest/gtest.h>

#include "server/pop3/dot_stuffer.h"
#include "tests/pop3/session_fixture.h"

namespace popgate::testing {
namespace {

using pop3::RequestKind;
using pop3::StoreStatus;
using std::chrono::milliseconds;

class TransactionTest : public SessionTest {
 protected:
  void SetUp() override { login(); }
  std::string total() const { return std::to_string(kMsg1.size() + kMsg2.size() + kMsg3.size()); }
};

TEST_F(TransactionTest, Stat) {
  EXPECT_EQ(h.send("STAT\r\n"), "+OK 3 " + total() + "\r\n");
  EXPECT_EQ(h.send("STAT 1\r\n"), "-ERR STAT takes no arguments\r\n");
}

TEST_F(TransactionTest, ListAll) {
  EXPECT_EQ(h.send("LIST\r\n"), "+OK 3 messages (" + total() + " octets)\r\n1 " + size_of(kMsg1) +
                                    "\r\n2 " + size_of(kMsg2) + "\r\n3 " + size_of(kMsg3) +
                                    "\r\n.\r\n");
}

TEST_F(TransactionTest, ListOne) {
  EXPECT_EQ(h.send("LIST 2\r\n"), "+OK 2 " + size_of(kMsg2) + "\r\n");
  EXPECT_EQ(h.send("list 002\r\n"), "+OK 2 " + size_of(kMsg2) + "\r\n");
}

class ArgumentErrorTest : public TransactionTest,
                          public ::testing::WithParamInterface<std::pair<const char*, const char*>> {};

TEST_P(ArgumentErrorTest, AnswersTheRightError) {
  EXPECT_EQ(h.send(std::string(GetParam().first) + "\r\n"), std::string(GetParam().second) + "\r\n");
  EXPECT_FALSE(h.closed());
}

INSTANTIATE_TEST_SUITE_P(
    EveryCommand, ArgumentErrorTest,
    ::testing::Values(
        std::pair{"LIST 0", "-ERR no such message"}, std::pair{"LIST 4", "-ERR no such message"},
        std::pair{"LIST -1", "-ERR message number must be positive"},
        std::pair{"LIST x", "-ERR message number must be a decimal number"},
        std::pair{"LIST 4294967296", "-ERR message number too large"},
        std::pair{"LIST 1 2", "-ERR too many arguments"},
        std::pair{"UIDL 0", "-ERR no such message"}, std::pair{"UIDL 4", "-ERR no such message"},
        std::pair{"UIDL -3", "-ERR message number must be positive"},
        std::pair{"UIDL 1.0", "-ERR message number must be a decimal number"},
        std::pair{"UIDL 1 2", "-ERR too many arguments"},
        std::pair{"RETR", "-ERR message number required"}, std::pair{"RETR 0", "-ERR no such message"},
        std::pair{"RETR 4", "-ERR no such message"},
        std::pair{"RETR -1", "-ERR message number must be positive"},
        std::pair{"RETR +1", "-ERR message number must be a decimal number"},
        std::pair{"RETR 18446744073709551616", "-ERR message number too large"},
        std::pair{"RETR 1 2", "-ERR too many arguments"},
        std::pair{"DELE", "-ERR message number required"}, std::pair{"DELE 0", "-ERR no such message"},
        std::pair{"DELE 9", "-ERR no such message"},
        std::pair{"DELE -2", "-ERR message number must be positive"},
        std::pair{"DELE z", "-ERR message number must be a decimal number"},
        std::pair{"DELE 1 1", "-ERR too many arguments"},
        std::pair{"TOP", "-ERR message number required"},
        std::pair{"TOP 1", "-ERR TOP needs a message number and a line count"},
        std::pair{"TOP 0 1", "-ERR no such message"}, std::pair{"TOP 4 1", "-ERR no such message"},
        std::pair{"TOP 1 -1", "-ERR line count must be a non-negative decimal number"},
        std::pair{"TOP 1 x", "-ERR line count must be a non-negative decimal number"},
        std::pair{"TOP 1 4294967296", "-ERR line count too large"},
        std::pair{"TOP 1 1 1", "-ERR too many arguments"},
        std::pair{"NOOP x", "-ERR NOOP takes no arguments"},
        std::pair{"RSET x", "-ERR RSET takes no arguments"},
        std::pair{"STAT x", "-ERR STAT takes no arguments"}));

TEST_F(TransactionTest, Uidl) {
  EXPECT_EQ(h.send("UIDL\r\n"),
            "+OK unique-id listing follows\r\n1 uid-one\r\n2 uid-two\r\n3 uid-three\r\n.\r\n");
  EXPECT_EQ(h.send("UIDL 3\r\n"), "+OK 3 uid-three\r\n");
}

TEST_F(TransactionTest, RetrByteStuffsAndSizesAgree) {
  const std::string out = h.send("RETR 2\r\n");
  const std::string status = "+OK " + size_of(kMsg2) + " octets\r\n";
  ASSERT_EQ(out.substr(0, status.size()), status);
  EXPECT_EQ(out.substr(status.size()),
            "Subject: two\r\nFrom: b@example.test\r\n\r\n..hidden\r\n..\r\nline3\r\nline4\r\n.\r\n");
  std::string body;
  ASSERT_TRUE(pop3::dot_unstuff(out.substr(status.size()), body));
  EXPECT_EQ(body, kMsg2);  // what LIST announced is exactly what RETR sent
  EXPECT_EQ(h.counters().retr_bytes.value(), kMsg2.size());
}

TEST_F(TransactionTest, Top) {
  EXPECT_EQ(h.send("TOP 2 0\r\n"),
            "+OK top of message follows\r\nSubject: two\r\nFrom: b@example.test\r\n\r\n.\r\n");
  EXPECT_EQ(h.send("TOP 2 2\r\n"),
            "+OK top of message follows\r\nSubject: two\r\nFrom: b@example.test\r\n\r\n"
            "..hidden\r\n..\r\n.\r\n");
  EXPECT_EQ(h.send("TOP 1 50\r\n"), "+OK top of message follows\r\n" + kMsg1 + ".\r\n");
}

TEST_F(TransactionTest, DeleHidesTheMessageFromEveryCommand) {
  EXPECT_EQ(h.send("DELE 2\r\n"), "+OK message 2 deleted\r\n");
  EXPECT_EQ(h.send("DELE 2\r\n"), "-ERR message already deleted\r\n");
  EXPECT_EQ(h.send("RETR 2\r\n"), "-ERR message already deleted\r\n");
  EXPECT_EQ(h.send("TOP 2 1\r\n"), "-ERR message already deleted\r\n");
  EXPECT_EQ(h.send("LIST 2\r\n"), "-ERR message already deleted\r\n");
  EXPECT_EQ(h.send("UIDL 2\r\n"), "-ERR message already deleted\r\n");
  const std::string remaining = std::to_string(kMsg1.size() + kMsg3.size());
  EXPECT_EQ(h.send("STAT\r\n"), "+OK 2 " + remaining + "\r\n");
  // Numbers do not shift: message 3 is still 3.
  EXPECT_EQ(h.send("LIST\r\n"), "+OK 2 messages (" + remaining + " octets)\r\n1 " + size_of(kMsg1) +
                                    "\r\n3 " + size_of(kMsg3) + "\r\n.\r\n");
  EXPECT_EQ(h.send("UIDL\r\n"), "+OK unique-id listing follows\r\n1 uid-one\r\n3 uid-three\r\n.\r\n");
}

TEST_F(TransactionTest, RsetUnmarks) {
  h.send("DELE 1\r\nDELE 3\r\n");
  EXPECT_EQ(h.send("RSET\r\n"), "+OK maildrop has 3 messages (" + total() + " octets)\r\n");
  EXPECT_EQ(h.send("RETR 1\r\n").substr(0, 3), "+OK");
  EXPECT_EQ(h.send("QUIT\r\n"), "+OK popgate signing off (0 messages deleted)\r\n");
  EXPECT_TRUE(h.store().committed_ids.empty());
}

TEST_F(TransactionTest, Noop) { EXPECT_EQ(h.send("NOOP\r\n"), "+OK\r\n"); }

TEST_F(TransactionTest, QuitCommitsTheMarkedMessages) {
  h.send("DELE 1\r\nDELE 3\r\n");
  EXPECT_EQ(h.send("QUIT\r\n"), "+OK popgate signing off (2 messages deleted)\r\n");
  EXPECT_EQ(h.store().committed_ids, (std::vector<int64_t>{11, 13}));
  EXPECT_TRUE(h.closed());
  EXPECT_FALSE(h.session().holds_maildrop());
  EXPECT_EQ(h.store().users["alice@example.test"].messages.size(), 1u);
}

TEST_F(TransactionTest, QuitWithFailedUpdateRemovesNothing) {
  h.send("DELE 1\r\n");
  h.store().fail_commit = StoreStatus::kTemporary;
  EXPECT_EQ(h.send("QUIT\r\n"),
            "-ERR [SYS/TEMP] could not remove deleted messages; none were removed\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_TRUE(h.session().holds_maildrop());  // the shard still releases it
  EXPECT_EQ(h.store().users["alice@example.test"].messages.size(), 3u);
  EXPECT_EQ(h.counters().update_failures.value(), 1u);
}

// With nothing marked, UPDATE has nothing to remove: a failed commit (the
// database away or overloaded) still ends with +OK, counted as a failure;
// the lock is left for the shard to release (or its lease to lapse).
TEST_F(TransactionTest, QuitWithNothingMarkedSucceedsWhenTheUpdateFails) {
  h.send("RETR 1\r\n");
  h.store().fail_commit = StoreStatus::kTemporary;
  EXPECT_EQ(h.send("QUIT\r\n"), "+OK popgate signing off (0 messages deleted)\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_TRUE(h.session().holds_maildrop());  // the shard still releases it
  EXPECT_EQ(h.store().users["alice@example.test"].messages.size(), 3u);
  EXPECT_EQ(h.counters().update_failures.value(), 1u);
}

TEST_F(TransactionTest, QuitWithNothingMarkedAfterLostLockSucceeds) {
  h.store().fail_commit = StoreStatus::kInUse;
  EXPECT_EQ(h.send("QUIT\r\n"), "+OK popgate signing off (0 messages deleted)\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.store().users["alice@example.test"].messages.size(), 3u);
}

TEST_F(TransactionTest, QuitAfterLostLockRemovesNothing) {
  h.send("DELE 1\r\n");
  h.store().fail_commit = StoreStatus::kInUse;
  EXPECT_EQ(h.send("QUIT\r\n"),
            "-ERR [SYS/TEMP] could not remove deleted messages; none were removed\r\n");
}

TEST_F(TransactionTest, DroppedConnectionDeletesNothing) {
  h.send("DELE 1\r\nDELE 2\r\n");
  h.peer_closed();
  EXPECT_TRUE(h.closed());
  EXPECT_TRUE(h.session().holds_maildrop());
  for (auto kind : h.store().seen) EXPECT_NE(kind, RequestKind::kCommitUpdate);
  EXPECT_EQ(h.store().users["alice@example.test"].messages.size(), 3u);
}

TEST_F(TransactionTest, RetrFailureBeforeTheFirstByte) {
  h.store().fail_fetch_number = 0;
  EXPECT_EQ(h.send("RETR 1\r\n"), "-ERR [SYS/TEMP] cannot read message; try again later\r\n");
  EXPECT_FALSE(h.closed());
  EXPECT_EQ(h.send("RETR 1\r\n").substr(0, 3), "+OK");
}

TEST_F(TransactionTest, RetrFailureMidMessageCutsTheConnection) {
  // Tiny chunks so the second fetch happens after the +OK went out.
  pop3::SessionConfig config;
  config.body_chunk_bytes = 8;
  SessionHarness small(config);
  small.store().add_user("a@x", "p").messages = {FakeStore::message(1, "u1", kMsg2)};
  small.send("USER a@x\r\nPASS p\r\n");
  small.store().fail_fetch_number = 1;
  const std::string out = small.send("RETR 1\r\n");
  EXPECT_EQ(out.substr(0, 4), "+OK ");
  EXPECT_EQ(out.find("\r\n.\r\n"), std::string::npos);  // no terminator: the client sees a cut
  EXPECT_EQ(small.close_mode(), pop3::CloseMode::kNow);
  EXPECT_EQ(small.counters().stream_aborts.value(), 1u);
}

TEST_F(TransactionTest, PostLoginIdleTimeoutIsAtLeastTenMinutes) {
  EXPECT_EQ(h.advance(milliseconds(599'999)), "");
  EXPECT_EQ(h.advance(milliseconds(1)), "-ERR autologout; idle for too long\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_TRUE(h.session().holds_maildrop());  // no UPDATE on autologout
  EXPECT_EQ(h.counters().autologout.value(), 1u);
}

TEST(SessionIdle, ConfiguredIdleBelowTenMinutesIsRaised) {
  pop3::SessionConfig config;
  config.idle_timeout = milliseconds(1000);
  SessionHarness h(config);
  h.store().add_user("a@x", "p");
  h.send("USER a@x\r\nPASS p\r\n");
  EXPECT_EQ(h.advance(milliseconds(60'000)), "");
  EXPECT_EQ(h.advance(pop3::kIdleTimeoutMin), "-ERR autologout; idle for too long\r\n");
}

TEST_F(TransactionTest, ShutdownInTransactionEndsWithoutUpdate) {
  h.send("DELE 1\r\n");
  h.shutdown();
  EXPECT_EQ(h.take_output(), "-ERR [SYS/TEMP] server shutting down\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_TRUE(h.session().holds_maildrop());
  EXPECT_TRUE(h.store().committed_ids.empty());
}

TEST_F(TransactionTest, ShutdownDuringUpdateLetsItFinish) {
  h.auto_reply = false;
  h.send("DELE 1\r\nQUIT\r\n");
  ASSERT_EQ(h.held_requests.back().kind, RequestKind::kCommitUpdate);
  h.shutdown();
  h.session().handle_update_committed(StoreStatus::kOk, 1, h.now());
  h.pump();
  EXPECT_EQ(h.take_output(), "+OK popgate signing off (1 messages deleted)\r\n");
}

TEST_F(TransactionTest, LockLostEndsWithoutUpdate) {
  ASSERT_EQ(h.send("DELE 1\r\n"), "+OK message 1 deleted\r\n");
  h.session().handle_lock_lost(h.now());
  h.pump();
  EXPECT_EQ(h.take_output(),
            "-ERR [SYS/TEMP] maildrop lock lost; nothing was deleted, log in again\r\n");
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().end_reason(), pop3::EndReason::kLockLost);
  EXPECT_EQ(pop3::end_reason_name(pop3::EndReason::kLockLost), "lock_lost");
  EXPECT_TRUE(h.store().committed_ids.empty());
  // A second notice changes nothing.
  h.session().handle_lock_lost(h.now());
  EXPECT_EQ(h.take_output(), "");
}

TEST_F(TransactionTest, LockLostDuringUpdateLetsItAnswer) {
  // The UPDATE checks the lock itself: it either committed (so it held the
  // lock) or says nothing was removed.
  h.auto_reply = false;
  h.send("DELE 1\r\nQUIT\r\n");
  ASSERT_EQ(h.held_requests.back().kind, RequestKind::kCommitUpdate);
  h.session().handle_lock_lost(h.now());
  h.session().handle_update_committed(StoreStatus::kInUse, 0, h.now());
  h.pump();
  EXPECT_EQ(h.take_output(),
            "-ERR [SYS/TEMP] could not remove deleted messages; none were removed\r\n");
  EXPECT_TRUE(h.closed());
}

TEST_F(TransactionTest, ShutdownMidRetrFinishesTheMessageThenEnds) {
  h.auto_reply = false;
  // RETR, then a pipelined DELE that must not run after the shutdown.
  h.send("RETR 2\r\nDELE 1\r\n");
  ASSERT_EQ(h.held_requests.back().kind, RequestKind::kFetchBody);
  h.shutdown();
  EXPECT_FALSE(h.closed());  // the message goes out first
  EXPECT_EQ(h.session().handle_body_chunk(StoreStatus::kOk, kMsg2, h.now()), kMsg2.size());
  h.pump();
  const std::string out = h.take_output();
  const std::string status = "+OK " + size_of(kMsg2) + " octets\r\n";
  ASSERT_EQ(out.substr(0, status.size()), status);
  std::string body;
  const std::string tail = "-ERR [SYS/TEMP] server shutting down\r\n";
  ASSERT_GT(out.size(), status.size() + tail.size());
  ASSERT_TRUE(pop3::dot_unstuff(out.substr(status.size(), out.size() - status.size() - tail.size()), body));
  EXPECT_EQ(body, kMsg2);
  EXPECT_EQ(out.substr(out.size() - tail.size()), tail);
  EXPECT_TRUE(h.closed());
  EXPECT_EQ(h.session().end_reason(), pop3::EndReason::kShutdown);
  EXPECT_EQ(h.counters().dele_marked.value(), 0U);
  EXPECT_TRUE(h.store().committed_ids.empty());
}

// Drives a RETR of `body` as the shard does (short sends of `send_bytes`,
// body bytes whenever there is room) with a shutdown arriving first;
// returns everything sent.
std::string retr_through_shutdown(const std::string& body, size_t block_bytes, size_t send_bytes) {
  SessionHarness h(pop3::SessionConfig{}, block_bytes);
  h.take_output();
  h.store().add_user("a@x", "p").messages.push_back(FakeStore::message(1, "u1", body));
  h.send("USER a@x\r\nPASS p\r\n");
  h.auto_reply = false;
  h.send("RETR 1\r\n");
  h.shutdown();
  pop3::Session& s = h.session();
  // The whole body is the answer to the one fetch (body_chunk_bytes is
  // larger); the session takes what fits now and the rest as room frees.
  std::string_view rest(body);
  rest.remove_prefix(s.handle_body_chunk(StoreStatus::kOk, rest, h.now()));
  std::string out;
  for (int guard = 0; guard < 100'000; ++guard) {
    if (!rest.empty() && s.wants_body_bytes()) {
      rest.remove_prefix(s.handle_body_chunk(StoreStatus::kOk, rest, h.now()));
    }
    const std::string_view pending = s.pending_output().substr(0, send_bytes);
    if (pending.empty()) {
      if (s.close_mode() != pop3::CloseMode::kOpen) break;
      continue;
    }
    out.append(pending);
    s.begin_send();
    s.handle_output_sent(pending.size(), h.now());
  }
  return out;
}

TEST(SessionShutdown, MidRetrTheMessageEndsWholeAndThenTheSessionSaysWhy) {
  // Every alignment of the message's end within the output block: the
  // -ERR waits for room, it is never dropped.
  const std::string tail = ".\r\n-ERR [SYS/TEMP] server shutting down\r\n";
  for (size_t extra = 0; extra < 160; ++extra) {
    std::string body(2'000 + extra, 'x');
    for (size_t i = 70; i < body.size(); i += 72) {
      body[i] = '\r';
      body[i + 1] = '\n';
    }
    body.resize(body.size() - 2);
    body += "\r\n";
    for (const size_t send_bytes : {size_t{100}, size_t{700}, size_t{4096}}) {
      const std::string out = retr_through_shutdown(body, 1024, send_bytes);
      ASSERT_GE(out.size(), tail.size());
      ASSERT_EQ(out.substr(out.size() - tail.size()), tail) << "body " << body.size() << ", sends of " << send_bytes;
    }
  }
}

TEST(SessionShutdown, MidListingFinishesTheListingThenEnds) {
  // A 1 KiB output block: the listing of 2,000 messages takes many sends.
  SessionHarness h(pop3::SessionConfig{}, 1024);
  h.take_output();
  FakeUser& u = h.store().add_user("a@x", "p");
  for (int i = 0; i < 2000; ++i) u.messages.push_back(FakeStore::message(i + 1, "u" + std::to_string(i), "x\r\n"));
  ASSERT_EQ(h.send("USER a@x\r\nPASS p\r\n"), "+OK send PASS\r\n+OK maildrop has 2000 messages (6000 octets)\r\n");
  pop3::Session& s = h.session();
  ASSERT_TRUE(s.wants_input());
  ASSERT_EQ(s.handle_input("UIDL\r\n", h.now()), 6U);
  // Send a first slice of the listing by hand, then stop the server.
  const std::string first(s.pending_output().substr(0, 16));
  s.begin_send();
  s.handle_output_sent(first.size(), h.now());
  h.shutdown();  // pumps: the rest of the listing, then the end
  const std::string out = first + h.take_output();
  EXPECT_EQ(out.substr(0, 32), "+OK unique-id listing follows\r\n1");
  EXPECT_NE(out.find("2000 u1999\r\n.\r\n-ERR [SYS/TEMP] server shutting down\r\n"), std::string::npos) << out;
  EXPECT_TRUE(h.closed());
}

TEST(SessionSnapshot, EmptyMaildrop) {
  SessionHarness h;
  h.take_output();
  h.store().add_user("a@x", "p");
  EXPECT_EQ(h.send("USER a@x\r\nPASS p\r\n"),
            "+OK send PASS\r\n+OK maildrop has 0 messages (0 octets)\r\n");
  EXPECT_EQ(h.send("STAT\r\nLIST\r\nUIDL\r\n"),
            "+OK 0 0\r\n+OK 0 messages (0 octets)\r\n.\r\n+OK unique-id listing follows\r\n.\r\n");
  EXPECT_EQ(h.send("RETR 1\r\n"), "-ERR no such message\r\n");
}

TEST(SessionSnapshot, LargeListingStreamsThroughASmallBuffer) {
  // 10,000 messages through a 1 KiB output block drained 100 bytes at a time.
  SessionHarness h({}, 1024);
  FakeUser& u = h.store().add_user("a@x", "p");
  std::string expected_list = "+OK 10000 messages (";
  std::string expected_uidl = "+OK unique-id listing follows\r\n";
  std::string lines;
  uint64_t total = 0;
  for (int i = 1; i <= 10000; ++i) {
    std::string body = "Subject: " + std::to_string(i) + "\r\n\r\n" + std::string(i % 50, 'b') + "\r\n";
    total += body.size();
    lines += std::to_string(i) + " " + std::to_string(body.size()) + "\r\n";
    expected_uidl += std::to_string(i) + " U" + std::to_string(i * 7) + "\r\n";
    u.messages.push_back(FakeStore::message(i, "U" + std::to_string(i * 7), body));
  }
  expected_list += std::to_string(total) + " octets)\r\n" + lines + ".\r\n";
  expected_uidl += ".\r\n";
  h.take_output();
  h.send("USER a@x\r\nPASS p\r\n");
  h.send_limit = 100;
  EXPECT_EQ(h.send("LIST\r\n"), expected_list);
  EXPECT_EQ(h.send("UIDL\r\n"), expected_uidl);
  EXPECT_LE(h.pool().blocks_total(), 1u);  // never more than one block
}

TEST(SessionSnapshot, BigMessageStreamsInChunksThroughASmallBuffer) {
  pop3::SessionConfig config;
  config.body_chunk_bytes = 4096;
  SessionHarness h(config, 1024);
  std::string body;
  for (int i = 0; body.size() < 300'000; ++i) {
    body += (i % 3 == 0 ? "." : "") + std::to_string(i) + " line of text\r\n";
  }
  h.store().add_user("a@x", "p").messages = {FakeStore::message(1, "u", body)};
  h.take_output();
  h.send("USER a@x\r\nPASS p\r\n");
  h.send_limit = 333;
  const std::string out = h.send("RETR 1\r\n");
  const std::string status = "+OK " + std::to_string(body.size()) + " octets\r\n";
  ASSERT_EQ(out.substr(0, status.size()), status);
  std::string back;
  ASSERT_TRUE(pop3::dot_unstuff(out.substr(status.size()), back));
  EXPECT_EQ(back, body);
  EXPECT_GT(h.store().fetches, 70u);  // it streamed: ~300 KB in 4 KiB pieces
  EXPECT_LE(h.pool().blocks_total(), 1u);
}

TEST_F(TransactionTest, EachFinishedCommandIsTimedOnce) {
  const pop3::Counters& c = h.counters();
  EXPECT_EQ(c.login_seconds.count(), 1U);
  EXPECT_EQ(c.maildrop_messages.count(), 1U);
  EXPECT_EQ(c.maildrop_messages.sum(), 3U);
  EXPECT_EQ(c.maildrop_kib.count(), 1U);
  h.send("LIST\r\nUIDL\r\nUIDL\r\nRETR 1\r\nTOP 2 0\r\nLIST 1\r\n");
  EXPECT_EQ(c.list_seconds.count(), 1U);  // LIST 1 is a one-line answer, not a listing
  EXPECT_EQ(c.uidl_seconds.count(), 2U);
  EXPECT_EQ(c.retr_seconds.count(), 1U);
  EXPECT_EQ(c.top_seconds.count(), 1U);
  h.send("RETR 9\r\n");  // an -ERR is not a retrieval
  EXPECT_EQ(c.retr_seconds.count(), 1U);
}

}  // namespace
}  // namespace popgate::testing
