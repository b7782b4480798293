// Session::predict_fetch, the read-ahead hint the shard acts on: it must
// name exactly the fetch the session asks for next (the next small message
// in the order the client RETRs in), skip deleted messages, and name
// nothing when there is no likely next fetch (no RETR yet, a body still
// being fetched, TOP, the last message, outside TRANSACTION, a message too
// large to fetch whole).
#include <gtest/gtest.h>

#include <array>
#include <span>

#include "tests/pop3/session_fixture.h"

namespace popgate::testing {
namespace {

using pop3::Request;
using pop3::RequestKind;

constexpr uint32_t kWholeMax = 64 * 1024;

class PrefetchTest : public SessionTest {
 protected:
  void SetUp() override { login(); }
  bool predict(Request* r) { return h.session().predict_fetch(kWholeMax, r); }
};

TEST_F(PrefetchTest, NothingBeforeTheFirstRetr) {
  Request r;
  EXPECT_FALSE(predict(&r));
  h.send("LIST\r\nUIDL\r\n");
  EXPECT_FALSE(predict(&r));
}

TEST_F(PrefetchTest, AfterRetrTheNextMessageWhole) {
  h.send("RETR 1\r\n");
  Request r;
  ASSERT_TRUE(predict(&r));
  EXPECT_EQ(r.kind, RequestKind::kFetchBody);
  EXPECT_EQ(r.message_id, 12);
  EXPECT_EQ(r.offset, 0u);
  EXPECT_EQ(r.length, kMsg2.size());
  EXPECT_EQ(r.tenant_id, 1);
  EXPECT_EQ(r.user_id, 1);
  h.send("RETR 2\r\n");
  ASSERT_TRUE(predict(&r));
  EXPECT_EQ(r.message_id, 13);
  h.send("RETR 3\r\n");
  EXPECT_FALSE(predict(&r));  // the last one
}

TEST_F(PrefetchTest, DeletedMessagesAreSkipped) {
  h.send("DELE 2\r\nRETR 1\r\n");
  Request r;
  ASSERT_TRUE(predict(&r));
  EXPECT_EQ(r.message_id, 13);
}

TEST_F(PrefetchTest, NewestFirstPredictsTheEarlierMessage) {
  h.send("RETR 3\r\nRETR 2\r\n");
  Request r;
  ASSERT_TRUE(predict(&r));
  EXPECT_EQ(r.message_id, 11);
  h.send("RETR 1\r\n");
  EXPECT_FALSE(predict(&r));  // nothing before the first
}

TEST_F(PrefetchTest, TopPredictsNothing) {
  h.send("RETR 1\r\nTOP 2 0\r\n");
  Request r;
  EXPECT_FALSE(predict(&r));
}

TEST_F(PrefetchTest, NothingAfterQuit) {
  h.send("RETR 1\r\nQUIT\r\n");
  Request r;
  EXPECT_FALSE(predict(&r));
}

TEST_F(PrefetchTest, MessagesOverTheBoundAreNotFetchedWhole) {
  h.send("RETR 1\r\n");
  Request r;
  EXPECT_FALSE(h.session().predict_fetch(static_cast<uint32_t>(kMsg2.size() - 1), &r));
  EXPECT_TRUE(h.session().predict_fetch(static_cast<uint32_t>(kMsg2.size()), &r));
}

// Several at once: the next messages in RETR order, within the bounds.
TEST_F(PrefetchTest, BatchIsTheNextMessagesWithinTheBounds) {
  h.send("RETR 1\r\n");
  std::array<int64_t, 8> ids{};
  std::array<uint32_t, 8> sizes{};
  ASSERT_EQ(h.session().predict_fetches(kWholeMax, kWholeMax, ids, sizes), 2u);
  EXPECT_EQ(ids[0], 12);
  EXPECT_EQ(sizes[0], kMsg2.size());
  EXPECT_EQ(ids[1], 13);
  EXPECT_EQ(sizes[1], kMsg3.size());
  // Whose they are: the session's (the shard fetches them for it).
  EXPECT_EQ(h.session().tenant_id(), 1);
  EXPECT_EQ(h.session().user_id(), 1);
  // At most ids.size() of them.
  EXPECT_EQ(h.session().predict_fetches(kWholeMax, kWholeMax, std::span<int64_t>(ids.data(), 1), sizes), 1u);
  // The batch bound stops before the message that would cross it.
  EXPECT_EQ(h.session().predict_fetches(kWholeMax, kMsg2.size() + kMsg3.size() - 1, ids, sizes), 1u);
  // A message over the per-message bound ends the batch: nothing beyond it.
  EXPECT_EQ(h.session().predict_fetches(static_cast<uint32_t>(kMsg2.size() - 1), kWholeMax, ids, sizes), 0u);
}

TEST_F(PrefetchTest, BatchSkipsDeletedMessagesAndRunsNewestFirst) {
  h.send("DELE 2\r\nRETR 1\r\n");
  std::array<int64_t, 8> ids{};
  std::array<uint32_t, 8> sizes{};
  ASSERT_EQ(h.session().predict_fetches(kWholeMax, kWholeMax, ids, sizes), 1u);
  EXPECT_EQ(ids[0], 13);
  h.send("RSET\r\nRETR 3\r\nRETR 2\r\n");  // newest first
  ASSERT_EQ(h.session().predict_fetches(kWholeMax, kWholeMax, ids, sizes), 1u);
  EXPECT_EQ(ids[0], 11);
}

// An empty message is answered without a fetch: the batch passes over it.
TEST(PrefetchBatch, EmptyMessagesAreSkipped) {
  SessionHarness h;
  h.store().add_user("a@x", "p").messages = {FakeStore::message(1, "u1", "a\r\n"),
                                             FakeStore::message(2, "u2", ""),
                                             FakeStore::message(3, "u3", "c\r\n")};
  h.send("USER a@x\r\nPASS p\r\nRETR 1\r\n");
  std::array<int64_t, 8> ids{};
  std::array<uint32_t, 8> sizes{};
  ASSERT_EQ(h.session().predict_fetches(kWholeMax, kWholeMax, ids, sizes), 1u);
  EXPECT_EQ(ids[0], 3);
  EXPECT_EQ(sizes[0], 3u);
  Request one;
  EXPECT_FALSE(h.session().predict_fetch(kWholeMax, &one));  // the very next one needs no fetch
}

// Mid-body nothing is predicted: a large message is not read ahead chunk
// by chunk (memory), and once its last chunk is asked for, the next small
// message is.
TEST(PrefetchChunks, NoReadAheadWhileABodyIsStillBeingFetched) {
  pop3::SessionConfig config;
  config.body_chunk_bytes = 8;
  SessionHarness h(config);
  h.store().add_user("a@x", "p").messages = {FakeStore::message(7, "u7", kMsg2),
                                             FakeStore::message(8, "u8", "x\r\n")};
  h.send("USER a@x\r\nPASS p\r\n");
  h.auto_reply = false;
  h.send("RETR 1\r\n");
  ASSERT_EQ(h.held_requests.size(), 1u);
  Request predicted;
  EXPECT_FALSE(h.session().predict_fetch(kWholeMax, &predicted));
  // The same RETR answered in full: then the next message is predicted.
  SessionHarness answered(config);
  answered.store().add_user("a@x", "p").messages = {FakeStore::message(7, "u7", kMsg2),
                                                    FakeStore::message(8, "u8", "x\r\n")};
  answered.send("USER a@x\r\nPASS p\r\nRETR 1\r\n");
  ASSERT_TRUE(answered.session().predict_fetch(kWholeMax, &predicted));
  EXPECT_EQ(predicted.message_id, 8);
  EXPECT_EQ(predicted.length, 3u);
}

}  // namespace
}  // namespace popgate::testing
