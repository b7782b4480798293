// The statement table and result decoding, without a server: results are
// built with libpq's PQmakeEmptyPGresult / PQsetvalue.
#include "storage/pg_statements.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/pg_codec.h"

namespace popgate::storage {
namespace {

constexpr unsigned kInt8Oid = 20;
constexpr unsigned kTextOid = 25;
constexpr unsigned kByteaOid = 17;

// A binary-format result with the given column types and rows of raw values.
class FakeResult {
 public:
  FakeResult(ExecStatusType status, std::vector<unsigned> types)
      : res_(PQmakeEmptyPGresult(nullptr, status)) {
    std::vector<PGresAttDesc> attrs(types.size());
    names_.resize(types.size(), std::string("c"));
    for (std::size_t i = 0; i < types.size(); ++i) {
      attrs[i].name = names_[i].data();
      attrs[i].format = 1;
      attrs[i].typid = types[i];
      attrs[i].typlen = -1;
      attrs[i].atttypmod = -1;
    }
    if (!types.empty()) PQsetResultAttrs(res_, static_cast<int>(types.size()), attrs.data());
  }
  ~FakeResult() {
    if (res_ != nullptr) PQclear(res_);
  }
  FakeResult& row(const std::vector<std::string>& values) {
    for (std::size_t c = 0; c < values.size(); ++c) {
      std::string v = values[c];
      PQsetvalue(res_, rows_, static_cast<int>(c), v.data(), static_cast<int>(v.size()));
    }
    ++rows_;
    return *this;
  }
  // Hands the result to apply_statement_result; keeps freeing it unless
  // ownership was taken.
  bool apply(StatementId id, Completion& c) {
    const bool taken = apply_statement_result(id, res_, c);
    if (taken) res_ = nullptr;
    return taken;
  }

 private:
  PGresult* res_;
  std::vector<std::string> names_;
  int rows_ = 0;
};

std::string i8(int64_t v) {
  std::string s(kInt8Bytes, '\0');
  encode_int8(v, s.data());
  return s;
}

Completion fresh() {
  Completion c;
  c.status = Status::kOk;
  return c;
}

// One row of a row-by-row listing (PGRES_SINGLE_TUPLE), applied to `c`.
void apply_listing_row(Completion& c, const std::vector<std::string>& row) {
  FakeResult one(PGRES_SINGLE_TUPLE, {kInt8Oid, kInt8Oid, kTextOid});
  one.row(row);
  EXPECT_FALSE(one.apply(StatementId::kListMaildrop, c));
}

// The zero-row PGRES_TUPLES_OK that ends a row-by-row listing.
void end_listing(Completion& c) {
  FakeResult end(PGRES_TUPLES_OK, {kInt8Oid, kInt8Oid, kTextOid});
  EXPECT_FALSE(end.apply(StatementId::kListMaildrop, c));
}

// The listing of rows (5, 100, "aa"), (9, 0, "bbb"), (12, 2^32 - 1, "c").
void expect_three_row_listing(const MaildropListing& l) {
  EXPECT_EQ(l.message_ids, (std::vector<int64_t>{5, 9, 12}));
  EXPECT_EQ(l.sizes, (std::vector<uint32_t>{100, 0, 4294967295U}));
  EXPECT_EQ(l.uidl_ends, (std::vector<uint32_t>{2, 5, 6}));
  EXPECT_EQ(l.uidl_arena, "aabbbc");
}

TEST(StatementTable, PlaceholdersMatchParameterCounts) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kStatementCount; ++i) {
    const StatementDef& s = statement_def(static_cast<StatementId>(i));
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_EQ(std::string(s.name).rfind("popgate_", 0), 0U) << s.name;
    ASSERT_LE(static_cast<std::size_t>(s.param_count), kParamsMax);
    int highest = 0;
    for (const char* p = s.sql; *p != '\0'; ++p) {
      if (*p == '$' && std::isdigit(static_cast<unsigned char>(p[1])) != 0) {
        highest = std::max(highest, p[1] - '0');
      }
    }
    EXPECT_EQ(highest, s.param_count) << s.name;
    for (int p = 0; p < s.param_count; ++p) EXPECT_NE(s.param_types[p], 0U) << s.name;
  }
}

TEST(StatementTable, PlansShareOneParameterBlock) {
  for (const RequestKind kind :
       {RequestKind::kLookupUser, RequestKind::kOpenMaildrop, RequestKind::kFetchBody,
        RequestKind::kCommitUpdate, RequestKind::kReleaseMaildrop, RequestKind::kRenewLeases,
        RequestKind::kDeliver}) {
    const StatementPlan plan = statement_plan(kind);
    ASSERT_GE(plan.count, 2);
    // Every statement of a plan reads a prefix of one parameter block: where
    // two use the same position, they agree on its type.
    for (uint8_t i = 0; i < plan.count; ++i) {
      for (uint8_t j = i + 1; j < plan.count; ++j) {
        const StatementDef& a = statement_def(plan.ids[i]);
        const StatementDef& b = statement_def(plan.ids[j]);
        for (int p = 0; p < std::min(a.param_count, b.param_count); ++p) {
          EXPECT_EQ(a.param_types[p], b.param_types[p]) << a.name << " " << b.name;
        }
      }
    }
  }
  // A commit without deletions reads the commit's parameter block.
  const StatementDef& commit = statement_def(StatementId::kCommitUpdate);
  const StatementPlan bare = commit_without_deletions_plan();
  ASSERT_EQ(bare.count, 2);
  EXPECT_EQ(bare.ids[0], StatementId::kScopeTenant);
  const StatementDef& without = statement_def(bare.ids[1]);
  ASSERT_LE(without.param_count, commit.param_count);
  for (int p = 0; p < without.param_count; ++p) EXPECT_EQ(without.param_types[p], commit.param_types[p]);
  // Scope, lock (with the login time), listing, in one transaction.
  const StatementPlan open = statement_plan(RequestKind::kOpenMaildrop);
  ASSERT_EQ(open.count, 3);
  EXPECT_EQ(open.ids[1], StatementId::kLockMaildrop);
  EXPECT_EQ(open.ids[2], StatementId::kListMaildrop);
}

TEST(StatementTable, EveryPlanOpensWithItsRowLevelSecurityScope) {
  // Migration 0006: rows are visible only to a transaction that declared
  // its tenant; the scope must come first and nowhere else.
  const std::pair<RequestKind, StatementId> expected[] = {
      {RequestKind::kLookupUser, StatementId::kScopeDomain},
      {RequestKind::kOpenMaildrop, StatementId::kScopeTenant},
      {RequestKind::kFetchBody, StatementId::kScopeTenant},
      {RequestKind::kCommitUpdate, StatementId::kScopeTenant},
      {RequestKind::kReleaseMaildrop, StatementId::kScopeTenant},
      {RequestKind::kRenewLeases, StatementId::kScopeAllTenants},
      {RequestKind::kDeliver, StatementId::kScopeTenant},
  };
  for (const auto& [kind, scope] : expected) {
    const StatementPlan plan = statement_plan(kind);
    EXPECT_EQ(plan.ids[0], scope) << to_string(kind);
    for (uint8_t i = 1; i < plan.count; ++i) EXPECT_FALSE(is_scope_statement(plan.ids[i]));
  }
  // The tenant scope reads $1 as the tenant id, which every tenant
  // statement takes first.
  for (const StatementId id : {StatementId::kListMaildrop,
                               StatementId::kFetchBody, StatementId::kCommitUpdate,
                               StatementId::kReleaseMaildrop, StatementId::kLockMaildrop,
                               StatementId::kCommitWithoutDeletions,
                               StatementId::kDeliver}) {
    EXPECT_NE(std::string_view(statement_def(id).sql).find("tenant_id = $1"),
              std::string_view::npos)
        << statement_def(id).name;
  }
}

TEST(ParamBlock, EncodesBinaryScalarsAndTextArray) {
  ParamBlock p;
  p.add_int8(-2);
  p.add_int4(7);
  ASSERT_TRUE(p.add_text("instance-a"));
  const std::vector<int64_t> ids{3, 1};
  p.add_int8_array(ids);
  ASSERT_EQ(p.count(), 4U);
  ParamBlock::View v;
  p.view(v);
  EXPECT_EQ(std::string(v.values[0], 8), i8(-2));
  EXPECT_EQ(v.lengths[0], 8);
  EXPECT_EQ(v.formats[0], 1);
  EXPECT_EQ(std::string(v.values[1], 4), std::string("\0\0\0\x07", 4));
  EXPECT_EQ(std::string(v.values[2], static_cast<std::size_t>(v.lengths[2])), "instance-a");
  EXPECT_EQ(v.formats[2], 1);
  EXPECT_STREQ(v.values[3], "{3,1}");  // text format, NUL-terminated
  EXPECT_EQ(v.formats[3], 0);

  p.clear();
  EXPECT_EQ(p.count(), 0U);
  EXPECT_FALSE(p.add_text(std::string(kParamInlineBytesMax + 1, 'x')));
  EXPECT_EQ(p.count(), 0U);
}

// The lookup's 13 columns: ids, credentials, last login, tenant policy.
const std::vector<unsigned> kLookupColumns = {kInt8Oid, kInt8Oid, kTextOid, kTextOid, kTextOid,
                                              kInt8Oid, kTextOid, kInt8Oid, kInt8Oid, kInt8Oid,
                                              kInt8Oid, kInt8Oid, kTextOid, kInt8Oid};

TEST(Decode, LookupUserFoundAndNotFound) {
  Completion c = fresh();
  FakeResult r(PGRES_TUPLES_OK, kLookupColumns);
  r.row({i8(11), i8(22), "{ARGON2ID}$argon2id$v=19$...", "{SCRAM-SHA-256}4096,c2FsdA==,a,b",
         "apop-secret", i8(95), "example.test", i8(300), i8(-1), i8(1), i8(50), i8(-1),
         "PLAIN SCRAM-SHA-256", i8(1)});
  EXPECT_FALSE(r.apply(StatementId::kLookupUser, c));
  EXPECT_EQ(c.status, Status::kOk);
  EXPECT_EQ(c.user.tenant_id, 11);
  EXPECT_EQ(c.user.user_id, 22);
  EXPECT_EQ(c.user.password_hash, "{ARGON2ID}$argon2id$v=19$...");
  EXPECT_EQ(c.user.scram_sha256, "{SCRAM-SHA-256}4096,c2FsdA==,a,b");
  EXPECT_EQ(c.user.apop_secret, "apop-secret");
  EXPECT_EQ(c.user.since_last_login_s, 95);
  EXPECT_EQ(c.user.domain, "example.test");
  EXPECT_EQ(c.user.policy.login_delay_s, 300);
  EXPECT_EQ(c.user.policy.expire_days, -1);
  EXPECT_TRUE(c.user.policy.require_tls);
  EXPECT_EQ(c.user.policy.sessions_max, 50);
  EXPECT_EQ(c.user.policy.logins_per_minute, -1);
  EXPECT_EQ(c.user.policy.mechanisms, "PLAIN SCRAM-SHA-256");
  EXPECT_TRUE(c.user.policy.hide_deleted);

  Completion none = fresh();
  FakeResult empty(PGRES_TUPLES_OK, kLookupColumns);
  EXPECT_FALSE(empty.apply(StatementId::kLookupUser, none));
  EXPECT_EQ(none.status, Status::kNotFound);
}

TEST(Decode, WrongWidthOrShapeIsPermanent) {
  Completion c = fresh();
  FakeResult r(PGRES_TUPLES_OK, kLookupColumns);
  r.row({std::string(4, '\0'), i8(22), "{PLAIN}x", "", "", i8(-1), "x.test", i8(0), i8(-1),
         i8(0), i8(-1), i8(-1), "", i8(0)});  // int4 where int8 belongs
  EXPECT_FALSE(r.apply(StatementId::kLookupUser, c));
  EXPECT_EQ(c.status, Status::kPermanent);
  EXPECT_FALSE(c.error.empty());

  Completion d = fresh();
  FakeResult two(PGRES_TUPLES_OK, {kInt8Oid, kInt8Oid});
  EXPECT_FALSE(two.apply(StatementId::kLookupUser, d));
  EXPECT_EQ(d.status, Status::kPermanent);
}

TEST(Decode, LockTakenOrInUse) {
  Completion c = fresh();
  FakeResult taken(PGRES_TUPLES_OK, {kInt8Oid, kTextOid});
  taken.row({i8(3), "ka kb"});
  EXPECT_FALSE(taken.apply(StatementId::kLockMaildrop, c));
  EXPECT_EQ(c.status, Status::kOk);
  EXPECT_EQ(c.listing_hint, 3u);  // the messages the listing will have
  EXPECT_EQ(c.previous_uidls, "ka kb");  // what the last session kept

  Completion busy = fresh();
  FakeResult none(PGRES_TUPLES_OK, {kInt8Oid, kTextOid});
  EXPECT_FALSE(none.apply(StatementId::kLockMaildrop, busy));
  EXPECT_EQ(busy.status, Status::kInUse);
  // The listing that follows in the same request is ignored.
  FakeResult listing(PGRES_TUPLES_OK, {kInt8Oid, kInt8Oid, kTextOid});
  listing.row({i8(1), i8(10), "u1"});
  EXPECT_FALSE(listing.apply(StatementId::kListMaildrop, busy));
  EXPECT_EQ(busy.status, Status::kInUse);
  EXPECT_TRUE(busy.listing.message_ids.empty());
}

TEST(Decode, ListingIsStructureOfArrays) {
  Completion c = fresh();
  FakeResult r(PGRES_TUPLES_OK, {kInt8Oid, kInt8Oid, kTextOid});
  r.row({i8(5), i8(100), "aa"}).row({i8(9), i8(0), "bbb"}).row({i8(12), i8(4294967295LL), "c"});
  EXPECT_FALSE(r.apply(StatementId::kListMaildrop, c));
  ASSERT_EQ(c.status, Status::kOk);
  expect_three_row_listing(c.listing);
}

// Row by row (single-row mode): one PGRES_SINGLE_TUPLE per row, then a
// zero-row PGRES_TUPLES_OK; the same listing as the whole result gives.
TEST(Decode, ListingRowByRowEqualsTheWholeResult) {
  Completion c = fresh();
  const std::vector<std::vector<std::string>> rows{{i8(5), i8(100), "aa"}, {i8(9), i8(0), "bbb"},
                                                   {i8(12), i8(4294967295LL), "c"}};
  for (const auto& row : rows) {
    apply_listing_row(c, row);
    ASSERT_EQ(c.status, Status::kOk);
  }
  end_listing(c);
  ASSERT_EQ(c.status, Status::kOk);
  expect_three_row_listing(c.listing);
}

// The lock statement's count sizes a row-by-row listing once, UIDL room
// included (from the first UIDL's length); the end trims what was not used.
TEST(Decode, ListingRowByRowIsSizedByTheLockCount) {
  Completion c = fresh();
  FakeResult lock(PGRES_TUPLES_OK, {kInt8Oid, kTextOid});
  lock.row({i8(4), ""});
  EXPECT_FALSE(lock.apply(StatementId::kLockMaildrop, c));
  for (int64_t id = 1; id <= 3; ++id) {  // one fewer than counted (a message went)
    apply_listing_row(c, {i8(id), i8(10), "uidl-0" + std::to_string(id)});
    EXPECT_GE(c.listing.message_ids.capacity(), 4u);
    EXPECT_GE(c.listing.uidl_arena.capacity(), 4u * 7u);
  }
  end_listing(c);
  ASSERT_EQ(c.status, Status::kOk);
  EXPECT_EQ(c.listing.message_ids, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(c.listing.uidl_arena, "uidl-01uidl-02uidl-03");
}

// A bad row in the middle of a row-by-row listing fails the whole request
// and leaves no half listing; rows after it are ignored.
TEST(Decode, ListingRowByRowBadRowLeavesNoHalfListing) {
  Completion c = fresh();
  apply_listing_row(c, {i8(1), i8(10), "ok"});
  apply_listing_row(c, {i8(2), i8(-1), "neg"});
  EXPECT_EQ(c.status, Status::kPermanent);
  apply_listing_row(c, {i8(3), i8(10), "late"});
  EXPECT_EQ(c.status, Status::kPermanent);
  EXPECT_TRUE(c.listing.message_ids.empty());
  EXPECT_TRUE(c.listing.uidl_arena.empty());
}

// Only the listing is read row by row: a single-row result for any other
// statement means the client and the server disagree, a permanent error.
TEST(Decode, SingleRowResultOfAnotherStatementIsPermanent) {
  Completion c = fresh();
  FakeResult r(PGRES_SINGLE_TUPLE, {kInt8Oid});
  r.row({i8(1)});
  EXPECT_FALSE(r.apply(StatementId::kCommitUpdate, c));
  EXPECT_EQ(c.status, Status::kPermanent);
}

TEST(Decode, OversizedOrNegativeSizeIsPermanent) {
  for (const int64_t bad : {int64_t{4294967296LL}, int64_t{-1}}) {
    Completion c = fresh();
    FakeResult r(PGRES_TUPLES_OK, {kInt8Oid, kInt8Oid, kTextOid});
    r.row({i8(1), i8(10), "ok"}).row({i8(2), i8(bad), "big"});
    EXPECT_FALSE(r.apply(StatementId::kListMaildrop, c));
    EXPECT_EQ(c.status, Status::kPermanent) << bad;
    EXPECT_TRUE(c.listing.message_ids.empty());  // no half listing
  }
}

TEST(Decode, FetchBodyKeepsTheResultAndPointsIntoIt) {
  Completion c = fresh();
  FakeResult r(PGRES_TUPLES_OK, {kByteaOid});
  const std::string bytes("\x00\xff\r\n.\x00", 6);
  r.row({bytes});
  EXPECT_TRUE(r.apply(StatementId::kFetchBody, c));
  ASSERT_EQ(c.status, Status::kOk);
  ASSERT_NE(c.body, nullptr);
  EXPECT_EQ(c.body_bytes, bytes);
  EXPECT_EQ(c.body_bytes.data(), PQgetvalue(c.body.get(), 0, 0));  // zero copy

  Completion missing = fresh();
  FakeResult none(PGRES_TUPLES_OK, {kByteaOid});
  EXPECT_FALSE(none.apply(StatementId::kFetchBody, missing));
  EXPECT_EQ(missing.status, Status::kNotFound);
  EXPECT_EQ(missing.body, nullptr);
}

TEST(Decode, CommitUpdateCountsOrReportsLostLock) {
  Completion c = fresh();
  FakeResult r(PGRES_TUPLES_OK, {kInt8Oid, kInt8Oid});
  r.row({i8(1), i8(3)});
  EXPECT_FALSE(r.apply(StatementId::kCommitUpdate, c));
  EXPECT_EQ(c.status, Status::kOk);
  EXPECT_EQ(c.affected, 3U);

  Completion lost = fresh();
  FakeResult l(PGRES_TUPLES_OK, {kInt8Oid, kInt8Oid});
  l.row({i8(0), i8(0)});
  EXPECT_FALSE(l.apply(StatementId::kCommitUpdate, lost));
  EXPECT_EQ(lost.status, Status::kInUse);
  EXPECT_EQ(lost.affected, 0U);
}

TEST(Decode, FirstErrorWinsAndLaterResultsAreIgnored) {
  Completion c = fresh();
  FakeResult err(PGRES_FATAL_ERROR, {});
  EXPECT_FALSE(err.apply(StatementId::kLockMaildrop, c));
  // No SQLSTATE: libpq's own failure, i.e. the connection.
  EXPECT_EQ(c.status, Status::kTemporary);
  FakeResult aborted(PGRES_PIPELINE_ABORTED, {});
  EXPECT_FALSE(aborted.apply(StatementId::kListMaildrop, c));
  EXPECT_EQ(c.status, Status::kTemporary);

  Completion d = fresh();
  FakeResult copy(PGRES_COPY_OUT, {});
  EXPECT_FALSE(copy.apply(StatementId::kReleaseMaildrop, d));
  EXPECT_EQ(d.status, Status::kPermanent);
}

TEST(FailCompletion, ClearsThePayload) {
  Completion c = fresh();
  c.user.password_hash = "{PLAIN}secret";
  c.listing.message_ids = {1, 2};
  c.listing.uidl_arena = "ab";
  c.affected = 9;
  fail_completion(c, Status::kTemporary, "connection lost", "server closed\nmore");
  EXPECT_EQ(c.status, Status::kTemporary);
  EXPECT_EQ(c.error, "connection lost: server closed");
  EXPECT_TRUE(c.user.password_hash.empty());
  EXPECT_TRUE(c.listing.message_ids.empty());
  EXPECT_TRUE(c.listing.uidl_arena.empty());
  EXPECT_EQ(c.affected, 0U);
}

}  // namespace
}  // namespace popgate::storage
