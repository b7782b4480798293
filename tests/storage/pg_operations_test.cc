// The operations side of the client (schema v4), against the test
// database: deliveries with their O(1) quota check, the lock row's client
// and listener, kicks reported by lease renewal, hide mode, retrieval times
// and the kept-UIDL sample with the next login's view of it (written only
// when it changed).
#include <gtest/gtest.h>

#include "tests/storage/pg_test_support.h"

namespace popgate::storage {
namespace {

using test_support::ClientDriver;

class PgOperationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = test_support::test_dsn(why_);
    if (dsn_.empty()) GTEST_SKIP() << why_;
    db_ = std::make_unique<test_support::TestDb>(dsn_);
    ASSERT_TRUE(db_->ok()) << db_->error();
    tenant_ = test_support::create_tenant(*db_);
    user_ = test_support::create_user(*db_, tenant_.tenant_id, "ops");
    PgClientOptions o;
    o.conninfo = dsn_;
    o.connections = 1;
    client_ = std::make_unique<PgClient>(o);
  }

  Completion run() { return ClientDriver(*client_).wait_one(); }

  Completion deliver(std::string_view body) {
    client_->deliver(1, tenant_.tenant_id, user_, body, Clock::now());
    return run();
  }

  LockHolder holder(int64_t session) { return LockHolder{instance_, session, "192.0.2.1:4444", "pop3s"}; }

  std::string why_;
  std::string dsn_;
  std::unique_ptr<test_support::TestDb> db_;
  test_support::Tenant tenant_;
  int64_t user_ = 0;
  std::unique_ptr<PgClient> client_;
  std::string instance_ = "ops-test/" + test_support::random_hex(8);
};

TEST_F(PgOperationsTest, DeliverAssignsIdUidlAndCountsUsage) {
  const Completion c = deliver("Subject: one\r\n\r\nbody\r\n");
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_GT(c.message_id, 0);
  EXPECT_EQ(c.uidl.size(), 16u);
  EXPECT_EQ(db_->scalar_int("SELECT used_bytes FROM popgate.users WHERE user_id = $1", {std::to_string(user_)}),
            22);
}

TEST_F(PgOperationsTest, DeliverHonoursTheQuota) {
  db_->exec("UPDATE popgate.users SET quota_bytes = 30 WHERE user_id = $1", {std::to_string(user_)});
  ASSERT_EQ(deliver(std::string(20, 'a')).status, Status::kOk);
  EXPECT_EQ(deliver(std::string(11, 'b')).status, Status::kOverQuota);
  EXPECT_EQ(deliver(std::string(10, 'c')).status, Status::kOk);  // exactly full
  EXPECT_EQ(db_->scalar_int("SELECT count(*) FROM popgate.messages WHERE user_id = $1", {std::to_string(user_)}), 2);
  // Deleting gives the space back (the trigger keeps used_bytes right).
  db_->exec("DELETE FROM popgate.messages WHERE user_id = $1 AND size_bytes = 20", {std::to_string(user_)});
  EXPECT_EQ(deliver(std::string(15, 'd')).status, Status::kOk);
}

TEST_F(PgOperationsTest, DeliverToAGoneUserIsNotFound) {
  client_->deliver(1, tenant_.tenant_id, user_ + 1'000'000, "x\r\n", Clock::now());
  EXPECT_EQ(run().status, Status::kNotFound);
}

TEST_F(PgOperationsTest, DeliverKeepsBinaryBodies) {
  std::string body;
  for (int i = 0; i < 70'000; ++i) body += static_cast<char>(i % 256);
  const Completion c = deliver(body);
  ASSERT_EQ(c.status, Status::kOk);
  client_->fetch_body(2, tenant_.tenant_id, user_, c.message_id, 0, 1 << 20, Clock::now());
  const Completion f = run();
  EXPECT_EQ(f.body_bytes, body);
}

TEST_F(PgOperationsTest, LockRowSaysWhoAndKickIsReportedAtRenewal) {
  client_->open_maildrop(1, tenant_.tenant_id, user_, holder(7), Clock::now());
  ASSERT_EQ(run().status, Status::kOk);
  EXPECT_EQ(db_->scalar_text("SELECT client_address || ' ' || listener FROM popgate.maildrop_locks WHERE user_id = $1",
                             {std::to_string(user_)}),
            "192.0.2.1:4444 pop3s");
  const std::vector<int64_t> ids{7};
  client_->renew_leases(2, instance_, ids, Clock::now());
  Completion r = run();
  ASSERT_EQ(r.status, Status::kOk);
  EXPECT_EQ(r.affected, 1u);
  EXPECT_TRUE(r.kicked.empty());
  db_->exec("UPDATE popgate.maildrop_locks SET kick_requested_at = now() WHERE user_id = $1", {std::to_string(user_)});
  client_->renew_leases(3, instance_, ids, Clock::now());
  r = run();
  EXPECT_EQ(r.kicked, ids);
  EXPECT_TRUE(r.lost.empty());
}

TEST_F(PgOperationsTest, RenewalReportsALockRowThatVanished) {
  // A failover to a standby that missed the commit, or a DELETE by hand:
  // the session still thinks it holds the maildrop. Renewal says so.
  client_->open_maildrop(1, tenant_.tenant_id, user_, holder(7), Clock::now());
  ASSERT_EQ(run().status, Status::kOk);
  db_->exec("DELETE FROM popgate.maildrop_locks WHERE user_id = $1", {std::to_string(user_)});
  const std::vector<int64_t> ids{7, 8};  // 8 never held anything either
  client_->renew_leases(2, instance_, ids, Clock::now());
  const Completion r = run();
  ASSERT_EQ(r.status, Status::kOk);
  EXPECT_EQ(r.affected, 0u);
  EXPECT_TRUE(r.kicked.empty());
  EXPECT_EQ(r.lost, ids);
}

TEST_F(PgOperationsTest, CommitRecordsRetrievalAndKeptUidlsForTheNextLogin) {
  const int64_t a = test_support::add_message(*db_, tenant_.tenant_id, user_, "ua", "a\r\n");
  const int64_t b = test_support::add_message(*db_, tenant_.tenant_id, user_, "ub", "b\r\n");
  client_->open_maildrop(1, tenant_.tenant_id, user_, holder(1), Clock::now());
  Completion o = run();
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.previous_uidls, "");
  const std::vector<int64_t> deleted{a};
  const std::vector<int64_t> retrieved{a, b};
  client_->commit_update(2, tenant_.tenant_id, user_, holder(1), deleted, false,
                         SessionEnd{retrieved, "ub"}, Clock::now());
  const Completion c = run();
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_EQ(c.affected, 1u);
  EXPECT_EQ(db_->scalar_int("SELECT count(*) FROM popgate.messages WHERE message_id = $1 AND retrieved_at IS NOT NULL",
                            {std::to_string(b)}),
            1);
  client_->open_maildrop(3, tenant_.tenant_id, user_, holder(2), Clock::now());
  o = run();
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.previous_uidls, "ub");
  ASSERT_EQ(o.listing.message_ids.size(), 1u);
}

// A QUIT that marked nothing takes a statement without the DELETE (whose
// trigger fires even for no row); it still records what was retrieved and
// the kept UIDLs, and releases the lock.
TEST_F(PgOperationsTest, CommitWithNothingMarkedRecordsRetrievalAndKeptUidls) {
  const int64_t a = test_support::add_message(*db_, tenant_.tenant_id, user_, "ua", "a\r\n");
  test_support::add_message(*db_, tenant_.tenant_id, user_, "ub", "b\r\n");
  const std::string user = std::to_string(user_);
  const int64_t used = db_->scalar_int("SELECT used_bytes FROM popgate.users WHERE user_id = $1", {user});
  client_->open_maildrop(1, tenant_.tenant_id, user_, holder(1), Clock::now());
  ASSERT_EQ(run().status, Status::kOk);
  const std::vector<int64_t> retrieved{a};
  client_->commit_update(2, tenant_.tenant_id, user_, holder(1), {}, false, SessionEnd{retrieved, "ua ub"},
                         Clock::now());
  const Completion c = run();
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_EQ(c.affected, 0u);
  EXPECT_EQ(db_->scalar_int("SELECT count(*) FROM popgate.messages WHERE user_id = $1 AND retrieved_at IS NOT NULL",
                            {user}),
            1);
  EXPECT_EQ(db_->scalar_int("SELECT count(*) FROM popgate.messages WHERE user_id = $1", {user}), 2);
  EXPECT_EQ(db_->scalar_int("SELECT used_bytes FROM popgate.users WHERE user_id = $1", {user}), used);
  EXPECT_EQ(db_->scalar_int("SELECT count(*) FROM popgate.maildrop_locks WHERE user_id = $1", {user}), 0);
  client_->open_maildrop(3, tenant_.tenant_id, user_, holder(2), Clock::now());
  const Completion o = run();
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.previous_uidls, "ua ub");
}

// The lock statement also stamps last_login_at (LOGIN-DELAY counts from
// it), but only when it made this session the holder.
TEST_F(PgOperationsTest, TakingTheLockStampsTheLoginTimeAndALiveLockDoesNot) {
  const std::string user = std::to_string(user_);
  const auto stamped_recently = [&] {
    return db_->scalar_int("SELECT count(*) FROM popgate.users WHERE user_id = $1"
                           " AND last_login_at > now() - interval '1 minute'",
                           {user});
  };
  db_->exec("UPDATE popgate.users SET last_login_at = NULL, last_uidls = '{ka}' WHERE user_id = $1", {user});
  client_->open_maildrop(1, tenant_.tenant_id, user_, holder(1), Clock::now());
  Completion o = run();
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(stamped_recently(), 1);
  EXPECT_EQ(o.previous_uidls, "ka");

  db_->exec("UPDATE popgate.users SET last_login_at = '2000-01-01' WHERE user_id = $1", {user});
  client_->open_maildrop(2, tenant_.tenant_id, user_, holder(2), Clock::now());
  o = run();
  EXPECT_EQ(o.status, Status::kInUse);
  EXPECT_EQ(o.previous_uidls, "");
  EXPECT_EQ(stamped_recently(), 0);
}

// A poller that found nothing new leaves the same sample: its session end
// writes no new version of the user's row (the lock and retrievals still go).
TEST_F(PgOperationsTest, AnUnchangedKeptUidlSampleIsNotRewritten) {
  test_support::add_message(*db_, tenant_.tenant_id, user_, "ka", "a\r\n");
  const std::string user = std::to_string(user_);
  const auto row_version = [&] {
    return db_->scalar_text("SELECT xmin::text FROM popgate.users WHERE user_id = $1", {user});
  };
  for (int64_t session = 1; session <= 2; ++session) {
    client_->open_maildrop(1, tenant_.tenant_id, user_, holder(session), Clock::now());
    ASSERT_EQ(run().status, Status::kOk);
    const std::string before = row_version();
    client_->release_maildrop(2, tenant_.tenant_id, user_, holder(session), SessionEnd{{}, "ka"},
                              Clock::now());
    ASSERT_EQ(run().status, Status::kOk);
    if (session == 1) {
      EXPECT_NE(row_version(), before);  // "" -> "ka": written
    } else {
      EXPECT_EQ(row_version(), before);  // "ka" again: left alone
    }
  }
  EXPECT_EQ(db_->scalar_int("SELECT count(*) FROM popgate.maildrop_locks WHERE user_id = $1", {user}), 0);
  // A changed sample is written again and the next login sees it.
  client_->open_maildrop(1, tenant_.tenant_id, user_, holder(3), Clock::now());
  ASSERT_EQ(run().status, Status::kOk);
  client_->release_maildrop(2, tenant_.tenant_id, user_, holder(3), SessionEnd{{}, "ka kb"}, Clock::now());
  ASSERT_EQ(run().status, Status::kOk);
  client_->open_maildrop(3, tenant_.tenant_id, user_, holder(4), Clock::now());
  const Completion o = run();
  ASSERT_EQ(o.status, Status::kOk);
  EXPECT_EQ(o.previous_uidls, "ka kb");
}

TEST_F(PgOperationsTest, HideModeKeepsMessagesButNeverListsThem) {
  const int64_t a = test_support::add_message(*db_, tenant_.tenant_id, user_, "ha", "a\r\n");
  test_support::add_message(*db_, tenant_.tenant_id, user_, "hb", "b\r\n");
  client_->open_maildrop(1, tenant_.tenant_id, user_, holder(1), Clock::now());
  ASSERT_EQ(run().status, Status::kOk);
  const std::vector<int64_t> deleted{a};
  const std::vector<int64_t> retrieved{a};
  client_->commit_update(2, tenant_.tenant_id, user_, holder(1), deleted, true,
                         SessionEnd{retrieved, "hb"}, Clock::now());
  const Completion c = run();
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_EQ(c.affected, 1u);
  EXPECT_EQ(db_->scalar_int("SELECT count(*) FROM popgate.messages WHERE message_id = $1 AND hidden AND retrieved_at IS NOT NULL",
                            {std::to_string(a)}),
            1);
  client_->open_maildrop(3, tenant_.tenant_id, user_, holder(2), Clock::now());
  const Completion o = run();
  ASSERT_EQ(o.listing.message_ids.size(), 1u);  // the hidden one is not listed
}

TEST_F(PgOperationsTest, ReleaseRecordsRetrievalToo) {
  const int64_t a = test_support::add_message(*db_, tenant_.tenant_id, user_, "ra", "a\r\n");
  client_->open_maildrop(1, tenant_.tenant_id, user_, holder(5), Clock::now());
  ASSERT_EQ(run().status, Status::kOk);
  const std::vector<int64_t> retrieved{a};
  client_->release_maildrop(2, tenant_.tenant_id, user_, holder(5), SessionEnd{retrieved, "ra"}, Clock::now());
  const Completion r = run();
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(r.affected, 1u);  // the lock was ours
  EXPECT_EQ(db_->scalar_int("SELECT count(*) FROM popgate.messages WHERE message_id = $1 AND retrieved_at IS NOT NULL",
                            {std::to_string(a)}),
            1);
  EXPECT_EQ(db_->scalar_int("SELECT count(*) FROM popgate.maildrop_locks WHERE user_id = $1", {std::to_string(user_)}),
            0);
}

TEST_F(PgOperationsTest, LookupReportsTheDeleteMode) {
  db_->exec("UPDATE popgate.tenants SET delete_mode = 'hide' WHERE tenant_id = $1",
            {std::to_string(tenant_.tenant_id)});
  client_->lookup_user(1, "ops@" + tenant_.domain, Clock::now());
  const Completion c = run();
  ASSERT_EQ(c.status, Status::kOk);
  EXPECT_TRUE(c.user.policy.hide_deleted);
}

}  // namespace
}  // namespace popgate::storage
