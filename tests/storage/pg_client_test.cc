// PgClient against a real PostgreSQL. Each test makes its own tenant with a
// random domain, so tests neither see nor disturb each other's rows and may
// run in parallel. Without POPGATE_TEST_DSN_FILE every test skips.
#include "storage/pg_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "pg_test_support.h"

namespace popgate::storage {
namespace {

using namespace std::chrono_literals;
using test_support::ClientDriver;
using test_support::TestDb;

class PgClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dsn_ = test_support::test_dsn(why);
    if (dsn_.empty()) GTEST_SKIP() << why;
    db_ = std::make_unique<TestDb>(dsn_);
    ASSERT_TRUE(db_->ok()) << db_->error();
    tenant_ = test_support::create_tenant(*db_);
    app_name_ = "popgate-test-" + test_support::random_hex(12);
    // Unique per test: renew_leases matches an instance across all tenants,
    // just as a real process's random instance id does.
    inst_a_ = "a-" + test_support::random_hex(16);
    inst_b_ = "b-" + test_support::random_hex(16);
  }

  [[nodiscard]] PgClientOptions options() const {
    PgClientOptions o;
    o.conninfo = dsn_;
    o.connections = 2;
    o.application_name = app_name_;
    o.query_timeout = 10s;
    o.connect_timeout = 5s;
    o.reconnect_backoff_min = 20ms;
    o.reconnect_backoff_max = 200ms;
    return o;
  }

  [[nodiscard]] std::string login(std::string_view local) const {
    return std::string(local) + "@" + tenant_.domain;
  }

  int64_t user(std::string_view local) {
    return test_support::create_user(*db_, tenant_.tenant_id, local);
  }

  // The backend PIDs serving a client, found by its unique application_name.
  std::vector<int> backend_pids() {
    std::vector<int> pids;
    const ResultHandle r =
        db_->exec("SELECT pid FROM pg_stat_activity WHERE application_name = $1", {app_name_});
    for (int i = 0; r != nullptr && i < PQntuples(r.get()); ++i) {
      pids.push_back(std::atoi(PQgetvalue(r.get(), i, 0)));
    }
    return pids;
  }

  int64_t count(std::string_view sql, const std::vector<std::string>& params) {
    return db_->scalar_int(sql, params);
  }

  int64_t lock_rows(int64_t user_id) {
    return count("SELECT count(*) FROM popgate.maildrop_locks WHERE tenant_id = $1 AND user_id = $2",
                 {std::to_string(tenant_.tenant_id), std::to_string(user_id)});
  }

  std::string dsn_;
  std::unique_ptr<TestDb> db_;
  test_support::Tenant tenant_;
  std::string app_name_;
  std::string inst_a_;
  std::string inst_b_;
};

// Shorthands that submit one request and wait for it.
Completion lookup(PgClient& c, std::string_view login) {
  c.lookup_user(1, login, Clock::now());
  return ClientDriver(c).wait_one();
}

Completion open_drop(PgClient& c, int64_t tenant, int64_t user, std::string_view instance,
                int64_t session) {
  c.open_maildrop(2, tenant, user, LockHolder{instance, session, "127.0.0.1:1", "test"}, Clock::now());
  return ClientDriver(c).wait_one();
}

Completion commit(PgClient& c, int64_t tenant, int64_t user, std::string_view instance,
                  int64_t session, const std::vector<int64_t>& ids) {
  c.commit_update(3, tenant, user, LockHolder{instance, session, "127.0.0.1:1", "test"}, ids, false,
                  SessionEnd{}, Clock::now());
  return ClientDriver(c).wait_one();
}

Completion release(PgClient& c, int64_t tenant, int64_t user, std::string_view instance,
                   int64_t session) {
  c.release_maildrop(4, tenant, user, LockHolder{instance, session, "127.0.0.1:1", "test"}, SessionEnd{},
                     Clock::now());
  return ClientDriver(c).wait_one();
}

Completion fetch(PgClient& c, int64_t tenant, int64_t user, int64_t message, uint64_t offset,
                 uint32_t length) {
  c.fetch_body(5, tenant, user, message, offset, length, Clock::now());
  return ClientDriver(c).wait_one();
}

Completion renew(PgClient& c, std::string_view instance, const std::vector<int64_t>& sessions) {
  c.renew_leases(6, instance, sessions, Clock::now());
  return ClientDriver(c).wait_one();
}

std::string uidl_at(const MaildropListing& l, std::size_t i) {
  const uint32_t begin = i == 0 ? 0 : l.uidl_ends[i - 1];
  return l.uidl_arena.substr(begin, l.uidl_ends[i] - begin);
}

// A loopback port with nothing listening on it.
int closed_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// A loopback listener that never accepts: connects complete in the kernel,
// then the server never speaks, like a stopped PostgreSQL.
class SilentListener {
 public:
  SilentListener() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  [[nodiscard]] int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// ---------------------------------------------------------------- lookup_user

TEST_F(PgClientTest, LookupFindsUser) {
  const int64_t uid = user("alice");
  PgClient client(options());
  const Completion c = lookup(client, login("alice"));
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_EQ(c.tag, 1U);
  EXPECT_EQ(c.kind, RequestKind::kLookupUser);
  EXPECT_EQ(c.user.tenant_id, tenant_.tenant_id);
  EXPECT_EQ(c.user.user_id, uid);
  EXPECT_EQ(c.user.password_hash, "{PLAIN}secret");
}

TEST_F(PgClientTest, LookupNotFound) {
  user("alice");
  test_support::create_user(*db_, tenant_.tenant_id, "off", "{PLAIN}x", /*enabled=*/false);
  PgClient client(options());
  EXPECT_EQ(lookup(client, login("bob")).status, Status::kNotFound);
  EXPECT_EQ(lookup(client, "alice@no-such-" + tenant_.domain).status, Status::kNotFound);
  EXPECT_EQ(lookup(client, login("off")).status, Status::kNotFound);  // disabled
  EXPECT_EQ(client.stats().errors_permanent + client.stats().errors_temporary, 0U);
}

TEST_F(PgClientTest, LookupIsCaseInsensitive) {
  const int64_t uid = user("carol");
  PgClient client(options());
  std::string upper = "CaRoL@" + tenant_.domain;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const Completion c = lookup(client, upper);
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_EQ(c.user.user_id, uid);
}

TEST_F(PgClientTest, LookupUsesDefaultDomainOnlyWhenSet) {
  const int64_t uid = user("dave");
  {
    PgClientOptions o = options();
    o.default_domain = tenant_.domain;
    PgClient client(o);
    const Completion c = lookup(client, "Dave");
    ASSERT_EQ(c.status, Status::kOk) << c.error;
    EXPECT_EQ(c.user.user_id, uid);
  }
  PgClient plain(options());
  EXPECT_EQ(lookup(plain, "dave").status, Status::kNotFound);
}

TEST_F(PgClientTest, LookupSplitsAtLastAt) {
  const int64_t uid = user("\"x@y\"");
  PgClient client(options());
  const Completion c = lookup(client, login("\"X@Y\""));
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_EQ(c.user.user_id, uid);
}

TEST_F(PgClientTest, LookupRejectsOverlongAndMalformedWithoutError) {
  user("erin");
  PgClient client(options());
  const std::string overlong = std::string(256 - 1 - tenant_.domain.size(), 'e') + "@" + tenant_.domain;
  ASSERT_EQ(overlong.size(), 256U);
  for (const std::string& bad : {overlong, std::string("@") + tenant_.domain, std::string("erin@"),
                                 std::string("er\xff" "in@") + tenant_.domain,
                                 std::string("er\0in@", 6) + tenant_.domain}) {
    const Completion c = lookup(client, bad);
    EXPECT_EQ(c.status, Status::kNotFound) << c.error;
  }
  const PgClientStats s = client.stats();
  EXPECT_EQ(s.errors_permanent + s.errors_temporary, 0U);
  EXPECT_EQ(s.requests, 5U);
}

// ------------------------------------------------------ open / release / lease

TEST_F(PgClientTest, OpenListsMessagesInIdOrderWithExactSizesAndUidls) {
  const int64_t uid = user("frank");
  const int64_t other = user("grace");
  const int64_t m1 = test_support::add_message(*db_, tenant_.tenant_id, uid, "uidl-1", "Subject: a\r\n\r\nx\r\n");
  const int64_t m2 = test_support::add_message(*db_, tenant_.tenant_id, uid, "z", "");
  test_support::add_message(*db_, tenant_.tenant_id, other, "not-franks", "nope");
  const int64_t m3 = test_support::add_message(*db_, tenant_.tenant_id, uid,
                                               std::string(70, '~'), std::string(1000, '.'));
  PgClient client(options());
  const Completion c = open_drop(client, tenant_.tenant_id, uid, inst_a_, 1);
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  const MaildropListing& l = c.listing;
  EXPECT_EQ(l.message_ids, (std::vector<int64_t>{m1, m2, m3}));
  EXPECT_EQ(l.sizes, (std::vector<uint32_t>{17, 0, 1000}));
  ASSERT_EQ(l.uidl_ends.size(), 3U);
  EXPECT_EQ(uidl_at(l, 0), "uidl-1");
  EXPECT_EQ(uidl_at(l, 1), "z");
  EXPECT_EQ(uidl_at(l, 2), std::string(70, '~'));
  EXPECT_EQ(lock_rows(uid), 1);
  // The timings the shard turns into lock-wait and snapshot histograms.
  EXPECT_NE(c.submitted, TimePoint{});
  EXPECT_GE(c.first_result, c.submitted);
}

// A big maildrop's listing arrives row by row (single-row mode), over many
// socket reads, and still lists every message exactly, in id order; the
// snapshot's arrays are trimmed to what they hold.
TEST_F(PgClientTest, OpenListsABigMaildropRowByRow) {
  constexpr int kMessages = 20'000;
  const int64_t uid = user("walter");
  ASSERT_NE(db_->exec("INSERT INTO popgate.messages (tenant_id, user_id, uidl, size_bytes, body)"
                      " SELECT $1, $2, 'big-' || g, g % 977, decode(repeat('78', g % 977), 'hex')"
                      " FROM generate_series(1, $3) AS g",
                      {std::to_string(tenant_.tenant_id), std::to_string(uid), std::to_string(kMessages)}),
            nullptr);
  PgClient client(options());
  const Completion c = open_drop(client, tenant_.tenant_id, uid, inst_a_, 1);
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  const MaildropListing& l = c.listing;
  ASSERT_EQ(l.message_ids.size(), static_cast<size_t>(kMessages));
  ASSERT_EQ(l.sizes.size(), static_cast<size_t>(kMessages));
  ASSERT_EQ(l.uidl_ends.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    const auto g = static_cast<uint32_t>(i + 1);
    if (i > 0) {
      ASSERT_GT(l.message_ids[i], l.message_ids[i - 1]) << i;
    }
    ASSERT_EQ(l.sizes[i], g % 977) << i;
    ASSERT_EQ(uidl_at(l, i), "big-" + std::to_string(g)) << i;
  }
  EXPECT_EQ(client.stats().rows_streamed, static_cast<uint64_t>(kMessages));
  // Sized once from the lock statement's count: no spare room.
  EXPECT_EQ(l.message_ids.capacity(), l.message_ids.size());
  EXPECT_EQ(l.sizes.capacity(), l.sizes.size());
  EXPECT_LE(l.uidl_arena.capacity(), l.uidl_arena.size() + l.uidl_arena.size() / 8);
  EXPECT_EQ(lock_rows(uid), 1);
}

// Several whole bodies in one statement: the rows of the asked messages of
// this user that still exist, each found by fetched_body().
TEST_F(PgClientTest, FetchBodiesReturnsTheAskedMessagesOfThisUser) {
  const int64_t uid = user("xena");
  const int64_t other = user("yann");
  const int64_t a = test_support::add_message(*db_, tenant_.tenant_id, uid, "a", "first\r\n");
  const int64_t b = test_support::add_message(*db_, tenant_.tenant_id, uid, "b", std::string("\0.\r\n", 4));
  const int64_t theirs = test_support::add_message(*db_, tenant_.tenant_id, other, "c", "not xena's\r\n");
  PgClient client(options());
  ClientDriver driver(client);
  const std::vector<int64_t> ids{b, theirs, a, 999'999'999};
  client.fetch_bodies(1, tenant_.tenant_id, uid, ids, Clock::now());
  const Completion c = driver.wait_one();
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  ASSERT_NE(c.body, nullptr);
  EXPECT_EQ(PQntuples(c.body.get()), 2);
  std::string_view body;
  ASSERT_TRUE(fetched_body(c.body.get(), a, &body));
  EXPECT_EQ(body, "first\r\n");
  ASSERT_TRUE(fetched_body(c.body.get(), b, &body));
  EXPECT_EQ(body, std::string_view("\0.\r\n", 4));
  EXPECT_FALSE(fetched_body(c.body.get(), theirs, &body));
  EXPECT_FALSE(fetched_body(c.body.get(), 999'999'999, &body));
  EXPECT_FALSE(fetched_body(nullptr, a, &body));
}

TEST_F(PgClientTest, OpenEmptyMaildrop) {
  const int64_t uid = user("heidi");
  PgClient client(options());
  const Completion c = open_drop(client, tenant_.tenant_id, uid, inst_a_, 1);
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_TRUE(c.listing.message_ids.empty());
  EXPECT_TRUE(c.listing.uidl_arena.empty());
}

TEST(RequestKindNames, AreDistinctMetricLabels) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kRequestKinds; ++i) names.insert(to_string(static_cast<RequestKind>(i)));
  EXPECT_EQ(names.size(), kRequestKinds);
  EXPECT_EQ(names.count("unknown"), 0U);
  EXPECT_EQ(to_string(RequestKind::kOpenMaildrop), "open_maildrop");
}

TEST_F(PgClientTest, SecondHolderIsInUseUntilRelease) {
  const int64_t uid = user("ivan");
  test_support::add_message(*db_, tenant_.tenant_id, uid, "u1", "body");
  PgClient client(options());
  ASSERT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_a_, 1).status, Status::kOk);
  const Completion busy = open_drop(client, tenant_.tenant_id, uid, inst_b_, 7);
  EXPECT_EQ(busy.status, Status::kInUse);
  EXPECT_TRUE(busy.listing.message_ids.empty());
  // Same instance, other session: still someone else.
  EXPECT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_a_, 2).status, Status::kInUse);
  // Releasing as a non-holder changes nothing.
  const Completion wrong = release(client, tenant_.tenant_id, uid, inst_b_, 7);
  EXPECT_EQ(wrong.status, Status::kOk);
  EXPECT_EQ(wrong.affected, 0U);
  EXPECT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_b_, 7).status, Status::kInUse);

  const Completion rel = release(client, tenant_.tenant_id, uid, inst_a_, 1);
  ASSERT_EQ(rel.status, Status::kOk) << rel.error;
  EXPECT_EQ(rel.affected, 1U);
  const Completion now_b = open_drop(client, tenant_.tenant_id, uid, inst_b_, 7);
  ASSERT_EQ(now_b.status, Status::kOk) << now_b.error;
  EXPECT_EQ(now_b.listing.message_ids.size(), 1U);
}

TEST_F(PgClientTest, ExpiredLeaseIsTakenOver) {
  const int64_t uid = user("judy");
  PgClientOptions o = options();
  o.lock_lease = 1s;
  PgClient client(o);
  ASSERT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_a_, 1).status, Status::kOk);
  EXPECT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_b_, 2).status, Status::kInUse);
  ClientDriver(client).run_for(1500ms);  // no renewal
  const Completion c = open_drop(client, tenant_.tenant_id, uid, inst_b_, 2);
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_EQ(count("SELECT count(*) FROM popgate.maildrop_locks WHERE tenant_id = $1 AND"
                  " user_id = $2 AND holder_instance = $3 AND holder_session = 2",
                  {std::to_string(tenant_.tenant_id), std::to_string(uid), std::string(inst_b_)}),
            1);
}

TEST_F(PgClientTest, RenewKeepsLeaseAlivePastItsOriginalExpiry) {
  const int64_t uid = user("mallory");
  const int64_t uid2 = user("niaj");
  PgClientOptions o = options();
  o.lock_lease = 1s;
  PgClient client(o);
  ASSERT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_a_, 10).status, Status::kOk);
  ASSERT_EQ(open_drop(client, tenant_.tenant_id, uid2, inst_a_, 11).status, Status::kOk);
  for (int i = 0; i < 3; ++i) {
    ClientDriver(client).run_for(500ms);
    // Session 99 holds nothing; sessions of instance B are not ours.
    const Completion r = renew(client, inst_a_, {10, 11, 99});
    ASSERT_EQ(r.status, Status::kOk) << r.error;
    EXPECT_EQ(r.affected, 2U);
  }
  // 1.5 s after opening with a 1 s lease, both are still held.
  EXPECT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_b_, 1).status, Status::kInUse);
  EXPECT_EQ(open_drop(client, tenant_.tenant_id, uid2, inst_b_, 1).status, Status::kInUse);
  EXPECT_EQ(renew(client, inst_b_, {10, 11}).affected, 0U);
}

TEST_F(PgClientTest, RenewWithNoSessionsCompletesAtOnce) {
  PgClient client(options());
  client.renew_leases(42, inst_a_, {}, Clock::now());
  Completion c;
  ASSERT_TRUE(client.poll_completion(c));  // no event loop needed
  EXPECT_EQ(c.tag, 42U);
  EXPECT_EQ(c.status, Status::kOk);
  EXPECT_EQ(c.affected, 0U);
}

TEST_F(PgClientTest, InvalidInstanceIdIsPermanentAtOnce) {
  PgClient client(options());
  client.open_maildrop(9, tenant_.tenant_id, 1, LockHolder{"", 1, "127.0.0.1:1", "test"}, Clock::now());
  client.release_maildrop(10, tenant_.tenant_id, 1, LockHolder{std::string(65, 'i'), 1, "127.0.0.1:1", "test"},
                          SessionEnd{}, Clock::now());
  Completion c;
  ASSERT_TRUE(client.poll_completion(c));
  EXPECT_EQ(c.tag, 9U);
  EXPECT_EQ(c.status, Status::kPermanent);
  ASSERT_TRUE(client.poll_completion(c));
  EXPECT_EQ(c.tag, 10U);
  EXPECT_EQ(c.status, Status::kPermanent);
}

// ------------------------------------------------------------- commit_update

TEST_F(PgClientTest, CommitDeletesExactlyTheListedIdsAndReleases) {
  const int64_t uid = user("oscar");
  const int64_t other = user("peggy");
  std::vector<int64_t> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(test_support::add_message(*db_, tenant_.tenant_id, uid, "u" + std::to_string(i),
                                            "m" + std::to_string(i)));
  }
  const int64_t others = test_support::add_message(*db_, tenant_.tenant_id, other, "o", "x");
  PgClient client(options());
  ASSERT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_a_, 5).status, Status::kOk);
  // A missing id and another user's id are simply not deleted.
  const Completion c =
      commit(client, tenant_.tenant_id, uid, inst_a_, 5, {ids[0], ids[2], 987654321, others});
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_EQ(c.affected, 2U);
  EXPECT_EQ(lock_rows(uid), 0);
  const Completion after = open_drop(client, tenant_.tenant_id, uid, inst_b_, 6);
  ASSERT_EQ(after.status, Status::kOk) << after.error;
  EXPECT_EQ(after.listing.message_ids, (std::vector<int64_t>{ids[1], ids[3]}));
  EXPECT_EQ(count("SELECT count(*) FROM popgate.messages WHERE message_id = $1",
                  {std::to_string(others)}),
            1);
}

TEST_F(PgClientTest, CommitWithNothingMarkedJustReleases) {
  const int64_t uid = user("quentin");
  test_support::add_message(*db_, tenant_.tenant_id, uid, "u", "m");
  PgClient client(options());
  ASSERT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_a_, 5).status, Status::kOk);
  const Completion c = commit(client, tenant_.tenant_id, uid, inst_a_, 5, {});
  ASSERT_EQ(c.status, Status::kOk) << c.error;
  EXPECT_EQ(c.affected, 0U);
  EXPECT_EQ(lock_rows(uid), 0);
}

TEST_F(PgClientTest, CommitByHolderThatLostTheLockDeletesNothing) {
  const int64_t uid = user("rupert");
  const int64_t m1 = test_support::add_message(*db_, tenant_.tenant_id, uid, "u1", "one");
  const int64_t m2 = test_support::add_message(*db_, tenant_.tenant_id, uid, "u2", "two");
  PgClientOptions o = options();
  o.lock_lease = 1s;
  PgClient client(o);
  ASSERT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_a_, 1).status, Status::kOk);
  ClientDriver(client).run_for(1500ms);
  ASSERT_EQ(open_drop(client, tenant_.tenant_id, uid, inst_b_, 2).status, Status::kOk);  // takeover

  // Nothing marked (its own statement): the same answer, B's lock stays.
  const Completion lost_empty = commit(client, tenant_.tenant_id, uid, inst_a_, 1, {});
  EXPECT_EQ(lost_empty.status, Status::kInUse);
  EXPECT_EQ(lock_rows(uid), 1);
  const Completion lost = commit(client, tenant_.tenant_id, uid, inst_a_, 1, {m1, m2});
  EXPECT_EQ(lost.status, Status::kInUse);
  EXPECT_EQ(lost.affected, 0U);
  EXPECT_EQ(count("SELECT count(*) FROM popgate.messages WHERE tenant_id = $1 AND user_id = $2",
                  {std::to_string(tenant_.tenant_id), std::to_string(uid)}),
            2);
  EXPECT_EQ(lock_rows(uid), 1);  // B's lock untouched
  const Completion b = commit(client, tenant_.tenant_id, uid, inst_b_, 2, {m2});
  ASSERT_EQ(b.status, Status::kOk) << b.error;
  EXPECT_EQ(b.affected, 1U);
}

// ---------------------------------------------------------------- fetch_body

TEST_F(PgClientTest, FetchBodyInChunksReassemblesBinaryBody) {
  const int64_t uid = user("sybil");
  constexpr std::size_t kBodyBytes = 3 * 1024 * 1024;
  std::string body(kBodyBytes, '\0');
  for (std::size_t i = 0; i < kBodyBytes; ++i) {
    body[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  }
  ASSERT_NE(body.find('\0'), std::string::npos);
  ASSERT_NE(body.find('\xff'), std::string::npos);
  const int64_t mid = test_support::add_message(*db_, tenant_.tenant_id, uid, "big", body);

  PgClient client(options());
  constexpr uint32_t kChunk = 100'000;  // not a divisor of the size
  std::size_t chunks = 0;
  for (uint64_t off = 0; off < kBodyBytes; off += kChunk) {
    client.fetch_body(off, tenant_.tenant_id, uid, mid, off, kChunk, Clock::now());
    ++chunks;
  }
  std::vector<Completion> got = ClientDriver(client).wait(chunks);
  ASSERT_EQ(got.size(), chunks);
  std::map<uint64_t, std::string_view> by_offset;
  for (const Completion& c : got) {
    ASSERT_EQ(c.status, Status::kOk) << c.error;
    ASSERT_NE(c.body, nullptr);
    by_offset[c.tag] = c.body_bytes;
  }
  std::string joined;
  for (const auto& [off, bytes] : by_offset) {
    EXPECT_EQ(joined.size(), off);
    joined.append(bytes);
  }
  EXPECT_EQ(joined.size(), body.size());
  EXPECT_TRUE(joined == body) << "reassembled body differs";
}

TEST_F(PgClientTest, FetchBodyEdges) {
  const int64_t uid = user("trent");
  const int64_t mid = test_support::add_message(*db_, tenant_.tenant_id, uid, "u", "0123456789");
  PgClient client(options());

  Completion whole = fetch(client, tenant_.tenant_id, uid, mid, 0, 1'000'000);
  ASSERT_EQ(whole.status, Status::kOk) << whole.error;
  EXPECT_EQ(whole.body_bytes, "0123456789");
  Completion tail = fetch(client, tenant_.tenant_id, uid, mid, 7, 100);
  EXPECT_EQ(tail.body_bytes, "789");
  Completion middle = fetch(client, tenant_.tenant_id, uid, mid, 2, 3);
  EXPECT_EQ(middle.body_bytes, "234");
  for (const uint64_t past : {uint64_t{10}, uint64_t{11}, uint64_t{1} << 31, uint64_t{1} << 40,
                              UINT64_MAX}) {
    const Completion c = fetch(client, tenant_.tenant_id, uid, mid, past, 4096);
    EXPECT_EQ(c.status, Status::kOk) << past << " " << c.error;
    EXPECT_TRUE(c.body_bytes.empty()) << past;
  }
  const Completion zero = fetch(client, tenant_.tenant_id, uid, mid, 0, 0);
  EXPECT_EQ(zero.status, Status::kOk);
  EXPECT_TRUE(zero.body_bytes.empty());

  EXPECT_EQ(fetch(client, tenant_.tenant_id, uid, mid + 1'000'000, 0, 10).status,
            Status::kNotFound);
  EXPECT_EQ(fetch(client, tenant_.tenant_id, uid, mid + 1'000'000, uint64_t{1} << 40, 10).status,
            Status::kNotFound);
  EXPECT_EQ(fetch(client, tenant_.tenant_id, uid + 1, mid, 0, 10).status, Status::kNotFound);
}

// ------------------------------------------------------------ many in flight

TEST_F(PgClientTest, OneConnectionCompletesInSubmitOrder) {
  constexpr int kUsers = 10;
  constexpr uint64_t kRequests = 600;  // several times the pipeline depth
  std::vector<int64_t> uids;
  for (int i = 0; i < kUsers; ++i) uids.push_back(user("u" + std::to_string(i)));
  PgClientOptions o = options();
  o.connections = 1;
  PgClient client(o);
  for (uint64_t t = 0; t < kRequests; ++t) {
    const std::string name = t % 3 == 0 ? "nobody" : "u" + std::to_string(t % kUsers);
    client.lookup_user(t, login(name), Clock::now());
  }
  const std::vector<Completion> got = ClientDriver(client).wait(kRequests);
  ASSERT_EQ(got.size(), kRequests);
  for (uint64_t t = 0; t < kRequests; ++t) {
    ASSERT_EQ(got[t].tag, t);
    if (t % 3 == 0) {
      EXPECT_EQ(got[t].status, Status::kNotFound);
    } else {
      ASSERT_EQ(got[t].status, Status::kOk) << got[t].error;
      EXPECT_EQ(got[t].user.user_id, uids[t % kUsers]);
    }
  }
  const PgClientStats s = client.stats();
  EXPECT_EQ(s.requests, kRequests);
  EXPECT_EQ(s.in_flight, 0U);
  EXPECT_EQ(s.queued, 0U);
}

TEST_F(PgClientTest, TwoConnectionsServeManyMixedRequests) {
  constexpr uint64_t kRequests = 1000;
  const int64_t uid = user("victor");
  const int64_t mid = test_support::add_message(*db_, tenant_.tenant_id, uid, "v", "hello world");
  PgClient client(options());
  ClientDriver driver(client);
  ASSERT_TRUE(driver.wait_connections(2));
  for (uint64_t t = 0; t < kRequests; ++t) {
    if (t % 2 == 0) {
      client.lookup_user(t, login("victor"), Clock::now());
    } else {
      client.fetch_body(t, tenant_.tenant_id, uid, mid, t % 11, 3, Clock::now());
    }
  }
  EXPECT_EQ(backend_pids().size(), 2U);
  const std::vector<Completion> got = driver.wait(kRequests);
  ASSERT_EQ(got.size(), kRequests);
  std::vector<int> seen(kRequests, 0);
  const std::string text = "hello world";
  for (const Completion& c : got) {
    ASSERT_LT(c.tag, kRequests);
    ++seen[c.tag];
    ASSERT_EQ(c.status, Status::kOk) << c.error;
    if (c.tag % 2 == 0) {
      EXPECT_EQ(c.kind, RequestKind::kLookupUser);
      EXPECT_EQ(c.user.user_id, uid);
    } else {
      EXPECT_EQ(c.kind, RequestKind::kFetchBody);
      const std::size_t off = c.tag % 11;
      EXPECT_EQ(c.body_bytes, text.substr(off, 3)) << c.tag;
    }
  }
  for (uint64_t t = 0; t < kRequests; ++t) EXPECT_EQ(seen[t], 1) << "tag " << t;
  EXPECT_EQ(client.stats().in_flight, 0U);
}

// ------------------------------------------------------------------ failures

TEST_F(PgClientTest, UnreachableServerCompletesTemporaryWithinTimeout) {
  PgClientOptions o = options();
  o.conninfo = "host=127.0.0.1 port=" + std::to_string(closed_port()) + " dbname=popgate";
  o.query_timeout = 1s;
  PgClient client(o);
  const auto start = Clock::now();
  client.lookup_user(1, "someone@example.com", start);
  const Completion c = ClientDriver(client).wait_one(10s);
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(c.status, Status::kTemporary);
  EXPECT_NE(c.error.find("no database connection"), std::string::npos) << c.error;
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 5s);
  const PgClientStats s = client.stats();
  EXPECT_GE(s.connect_failures, 1U);
  EXPECT_EQ(s.connections_up, 0U);
  EXPECT_EQ(s.deadline_expired, 1U);
  EXPECT_EQ(s.errors_temporary, 1U);
}

TEST_F(PgClientTest, SilentServerConnectTimesOutAndDestructorDoesNotWait) {
  SilentListener silent;
  PgClientOptions o = options();
  o.conninfo = "host=127.0.0.1 port=" + std::to_string(silent.port()) + " dbname=popgate";
  o.query_timeout = 1s;
  o.connect_timeout = 300ms;
  {
    PgClient client(o);
    client.lookup_user(1, "someone@example.com", Clock::now());
    const Completion c = ClientDriver(client).wait_one(10s);
    EXPECT_EQ(c.status, Status::kTemporary);
    EXPECT_EQ(c.error, "no database connection: connect timeout");
    EXPECT_GE(client.stats().connect_failures, 1U);
  }
  o.connect_timeout = 60s;
  auto client = std::make_unique<PgClient>(o);
  ClientDriver(*client).run_for(200ms);  // the connector is now mid-attempt
  const auto start = Clock::now();
  client.reset();
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST_F(PgClientTest, QueueBoundRejectsAtOnce) {
  PgClientOptions o = options();
  o.conninfo = "host=127.0.0.1 port=" + std::to_string(closed_port()) + " dbname=popgate";
  o.query_timeout = 1s;
  o.queued_requests_max = 3;
  PgClient client(o);
  for (uint64_t t = 1; t <= 5; ++t) client.lookup_user(t, "someone@example.com", Clock::now());
  // Over the bound: completed before any event handling.
  Completion c;
  ASSERT_TRUE(client.poll_completion(c));
  EXPECT_EQ(c.tag, 4U);
  EXPECT_EQ(c.status, Status::kTemporary);
  EXPECT_NE(c.error.find("overloaded"), std::string::npos) << c.error;
  ASSERT_TRUE(client.poll_completion(c));
  EXPECT_EQ(c.tag, 5U);
  EXPECT_FALSE(client.poll_completion(c));
  EXPECT_EQ(client.stats().overloaded, 2U);
  EXPECT_EQ(client.stats().queued, 3U);
  const std::vector<Completion> rest = ClientDriver(client).wait(3, 10s);
  ASSERT_EQ(rest.size(), 3U);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rest[i].tag, i + 1);
    EXPECT_EQ(rest[i].status, Status::kTemporary);
  }
}

// Holds the row lock on a maildrop's lock row from another session, so the
// lock statement of open_maildrop blocks inside PostgreSQL.
class RowLockBlocker {
 public:
  RowLockBlocker(const std::string& dsn, int64_t tenant, int64_t user) : db_(dsn) {
    db_.exec("BEGIN");
    db_.exec("SELECT 1 FROM popgate.maildrop_locks WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
             {std::to_string(tenant), std::to_string(user)});
  }
  void commit() { db_.exec("COMMIT"); }

 private:
  TestDb db_;
};

TEST_F(PgClientTest, BlockedQueryTimesOutThenClientServesAgain) {
  const int64_t uid = user("walter");
  test_support::add_lock(*db_, tenant_.tenant_id, uid, "gone-instance", 1, -60'000);  // expired
  PgClientOptions o = options();
  o.query_timeout = 1s;
  PgClient client(o);
  ClientDriver driver(client);
  ASSERT_TRUE(driver.wait_connections(2));
  RowLockBlocker blocker(dsn_, tenant_.tenant_id, uid);

  const auto start = Clock::now();
  client.open_maildrop(1, tenant_.tenant_id, uid, LockHolder{inst_a_, 1, "127.0.0.1:1", "test"}, start);
  const Completion c = driver.wait_one(10s);
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(c.status, Status::kTemporary) << c.error;
  // Normally the server's statement_timeout (90% of query_timeout) cancels
  // it; on a loaded machine the client's own deadline may come first.
  EXPECT_TRUE(c.error.rfind("57014", 0) == 0 || c.error == "query timeout") << c.error;
  EXPECT_GE(elapsed, 800ms);
  EXPECT_LT(elapsed, 4s);

  blocker.commit();
  const Completion again = open_drop(client, tenant_.tenant_id, uid, inst_a_, 1);
  ASSERT_EQ(again.status, Status::kOk) << again.error;
  EXPECT_EQ(lookup(client, login("walter")).status, Status::kOk);
  EXPECT_EQ(client.stats().in_flight, 0U);
}

// Resumes a SIGSTOPped backend however the test ends.
class StoppedProcess {
 public:
  explicit StoppedProcess(int pid) : pid_(pid), ok_(::kill(pid, SIGSTOP) == 0), errno_(errno) {}
  ~StoppedProcess() { resume(); }
  StoppedProcess(const StoppedProcess&) = delete;
  StoppedProcess& operator=(const StoppedProcess&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] int error() const { return errno_; }
  void resume() {
    if (ok_) ::kill(pid_, SIGCONT);
    ok_ = false;
  }

 private:
  int pid_;
  bool ok_;
  int errno_;
};

TEST_F(PgClientTest, StuckServerIsAbandonedAndReconnected) {
  user("xavier");
  PgClientOptions o = options();
  o.connections = 1;
  o.query_timeout = 1s;
  PgClient client(o);
  ClientDriver driver(client);
  ASSERT_TRUE(driver.wait_connections(1));
  ASSERT_EQ(lookup(client, login("xavier")).status, Status::kOk);
  const std::vector<int> pids = backend_pids();
  ASSERT_EQ(pids.size(), 1U);
  StoppedProcess stopped(pids[0]);
  if (!stopped.ok()) {
    GTEST_SKIP() << "cannot SIGSTOP the backend (" << std::strerror(stopped.error())
                 << "); needs the same user as PostgreSQL, or root";
  }

  const auto start = Clock::now();
  client.lookup_user(7, login("xavier"), start);
  const Completion c = driver.wait_one(10s);
  EXPECT_EQ(c.tag, 7U);
  EXPECT_EQ(c.status, Status::kTemporary) << c.error;
  EXPECT_EQ(c.error, "query timeout");  // the client's deadline: the server is mute
  EXPECT_GE(Clock::now() - start, 900ms);
  EXPECT_LT(Clock::now() - start, 3s);
  // The silent connection is given up (no progress past query_timeout plus
  // grace) and replaced, while the old backend is still stopped.
  const auto until = Clock::now() + 10s;
  while (client.stats().timeouts == 0 && Clock::now() < until) driver.run_for(50ms);
  EXPECT_EQ(client.stats().timeouts, 1U);
  ASSERT_TRUE(driver.wait_connections(1));
  const Completion again = lookup(client, login("xavier"));
  EXPECT_EQ(again.status, Status::kOk) << again.error;
  EXPECT_GE(client.stats().reconnects, 1U);
  stopped.resume();
}

TEST_F(PgClientTest, TerminatedBackendFailsInFlightPromptlyAndReconnects) {
  const int64_t uid = user("yvonne");
  test_support::add_lock(*db_, tenant_.tenant_id, uid, "gone-instance", 1, -60'000);
  PgClientOptions o = options();
  o.connections = 1;
  PgClient client(o);  // query_timeout stays 10 s
  ClientDriver driver(client);
  ASSERT_TRUE(driver.wait_connections(1));
  RowLockBlocker blocker(dsn_, tenant_.tenant_id, uid);
  client.open_maildrop(1, tenant_.tenant_id, uid, LockHolder{inst_a_, 1, "127.0.0.1:1", "test"}, Clock::now());
  EXPECT_TRUE(driver.run_for(200ms).empty());  // blocked in PostgreSQL

  const auto start = Clock::now();
  EXPECT_EQ(db_->scalar_int("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE application_name = $1",
                            {app_name_}),
            1);
  const Completion c = driver.wait_one(10s);
  EXPECT_EQ(c.status, Status::kTemporary) << c.error;
  EXPECT_EQ(c.error.rfind("57P01", 0), 0U) << c.error;  // admin shutdown
  EXPECT_LT(Clock::now() - start, 3s);  // well before query_timeout
  blocker.commit();

  ASSERT_TRUE(driver.wait_connections(1));
  const Completion again = open_drop(client, tenant_.tenant_id, uid, inst_a_, 1);
  EXPECT_EQ(again.status, Status::kOk) << again.error;
  EXPECT_GE(client.stats().reconnects, 1U);
}

TEST_F(PgClientTest, StatsCountOutcomes) {
  user("zed");
  PgClient client(options());
  ASSERT_TRUE(ClientDriver(client).wait_connections(2));
  EXPECT_EQ(lookup(client, login("zed")).status, Status::kOk);
  EXPECT_EQ(lookup(client, login("nobody")).status, Status::kNotFound);
  client.open_maildrop(3, tenant_.tenant_id, 1, LockHolder{"", 1, "127.0.0.1:1", "test"}, Clock::now());
  Completion c;
  ASSERT_TRUE(client.poll_completion(c));
  const PgClientStats s = client.stats();
  EXPECT_EQ(s.requests, 3U);
  EXPECT_EQ(s.errors_permanent, 1U);
  EXPECT_EQ(s.errors_temporary, 0U);
  EXPECT_EQ(s.connections_up, 2U);
  EXPECT_EQ(s.in_flight, 0U);
  EXPECT_EQ(s.timeouts, 0U);
}

}  // namespace
}  // namespace popgate::storage
