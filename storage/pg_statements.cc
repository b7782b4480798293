#include "storage/pg_statements.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "storage/pg_codec.h"
#include "storage/pg_errors.h"

namespace popgate::storage {
namespace {

// Type OIDs from PostgreSQL's catalog (pg_type.dat); fixed forever.
constexpr unsigned kInt4Oid = 23;
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kTextOid = 25;
constexpr unsigned kInt8ArrayOid = 1016;
constexpr unsigned kByteaOid = 17;

constexpr int kTextFormat = 0;
constexpr int kBinaryFormat = 1;

// Indexed by StatementId.
constexpr std::array<StatementDef, kStatementCount> kStatements{{
    // Every column is NOT NULL (sentinels stand for NULL) so decoding needs
    // no null checks: '' for no credential, -1 for never / NEVER / default.
    {"popgate_lookup_user",
     "SELECT u.tenant_id, u.user_id, u.password_hash,"
     " coalesce(u.scram_sha256, ''), coalesce(u.apop_secret, ''),"
     " coalesce(floor(extract(epoch FROM now() - u.last_login_at))::int8, -1),"
     " t.domain, t.login_delay_s::int8, coalesce(t.expire_days, -1)::int8,"
     " t.require_tls::int::int8, coalesce(t.sessions_max, -1)::int8,"
     " coalesce(t.logins_per_minute, -1)::int8,"
     " coalesce(array_to_string(t.mechanisms, ' '), ''),"
     " (t.delete_mode = 'hide')::int::int8"
     " FROM popgate.users u JOIN popgate.tenants t ON t.tenant_id = u.tenant_id"
     " WHERE t.domain = $1 AND u.local_part = $2 AND u.enabled",
     2,
     {kTextOid, kTextOid}},
    // Takes the lock if it is free or its lease has lapsed; a live lease held
    // by anyone (even this very holder) leaves the row alone: zero rows.
    // Taking it also stamps the user's last_login_at (LOGIN-DELAY counts
    // from here) and returns the UIDLs the last session kept, in the same
    // statement: a statement of its own for that cost PostgreSQL 0.074 ms
    // per login (bench/RESULTS.md). And it returns how many messages the
    // listing will have (an index-only count on messages_listing), so the
    // listing's arrays are sized once instead of growing row by row; a
    // delivery in between only makes it a hint.
    {"popgate_lock_maildrop",
     "WITH lk AS (INSERT INTO popgate.maildrop_locks (tenant_id, user_id, holder_instance,"
     " holder_session, acquired_at, lease_expires_at, client_address, listener)"
     " VALUES ($1, $2, $3, $4, now(), now() + $5 * interval '1 millisecond', $6, $7)"
     " ON CONFLICT (tenant_id, user_id) DO UPDATE SET"
     " holder_instance = EXCLUDED.holder_instance,"
     " holder_session = EXCLUDED.holder_session, acquired_at = now(),"
     " lease_expires_at = EXCLUDED.lease_expires_at,"
     " client_address = EXCLUDED.client_address, listener = EXCLUDED.listener,"
     " kick_requested_at = NULL"
     " WHERE popgate.maildrop_locks.lease_expires_at < now() RETURNING 1),"
     " touched AS (UPDATE popgate.users SET last_login_at = now()"
     " WHERE tenant_id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM lk)"
     " RETURNING coalesce(array_to_string(last_uidls, ' '), '') AS kept)"
     " SELECT (SELECT count(*) FROM popgate.messages"
     " WHERE tenant_id = $1 AND user_id = $2 AND NOT hidden),"
     " coalesce((SELECT kept FROM touched), '') FROM lk",
     7,
     {kInt8Oid, kInt8Oid, kTextOid, kInt8Oid, kInt8Oid, kTextOid, kTextOid}},
    // Runs in the same transaction as the lock statement; the EXISTS makes it
    // return nothing unless that statement just made us the holder.
    {"popgate_list_maildrop",
     "SELECT message_id, size_bytes, uidl FROM popgate.messages"
     " WHERE tenant_id = $1 AND user_id = $2 AND NOT hidden AND EXISTS ("
     "SELECT 1 FROM popgate.maildrop_locks l WHERE l.tenant_id = $1"
     " AND l.user_id = $2 AND l.holder_instance = $3 AND l.holder_session = $4)"
     " ORDER BY message_id",
     4,
     {kInt8Oid, kInt8Oid, kTextOid, kInt8Oid}},
    // $4 is the 1-based start, $5 the length, both int4: bodies are capped at
    // 2 GiB - 1 octets (a bytea cannot exceed 1 GiB anyway), so int4
    // positions reach every byte; PgClient::fetch_body clamps larger ones.
    {"popgate_fetch_body",
     "SELECT substring(body FROM $4 FOR $5) FROM popgate.messages"
     " WHERE tenant_id = $1 AND user_id = $2 AND message_id = $3",
     5,
     {kInt8Oid, kInt8Oid, kInt8Oid, kInt4Oid, kInt4Oid}},
    // The kept-UIDL sample is written only when it changed: a poller that
    // found nothing new (most sessions) costs no row update of users.
    // Deletes (or hides, $8 = 1) only while the caller still holds the lock;
    // releasing the lock, deleting and recording what the session retrieved
    // ($6) and left behind ($7) commit together. A row is touched by one
    // sub-statement only: retrieved ids that are also deleted are skipped by
    // `seen`, and `hid` sets their retrieval time itself.
    {"popgate_commit_update",
     "WITH lk AS (DELETE FROM popgate.maildrop_locks WHERE tenant_id = $1"
     " AND user_id = $2 AND holder_instance = $3 AND holder_session = $4"
     " RETURNING 1),"
     " gone AS (DELETE FROM popgate.messages WHERE tenant_id = $1"
     " AND user_id = $2 AND message_id = ANY($5::bigint[]) AND $8 = 0"
     " AND EXISTS (SELECT 1 FROM lk) RETURNING 1),"
     " hid AS (UPDATE popgate.messages SET hidden = true,"
     " retrieved_at = coalesce(retrieved_at, CASE WHEN message_id = ANY($6::bigint[]) THEN now() END)"
     " WHERE tenant_id = $1 AND user_id = $2 AND message_id = ANY($5::bigint[]) AND $8 = 1"
     " AND EXISTS (SELECT 1 FROM lk) RETURNING 1),"
     " seen AS (UPDATE popgate.messages SET retrieved_at = now() WHERE tenant_id = $1"
     " AND user_id = $2 AND message_id = ANY($6::bigint[]) AND NOT message_id = ANY($5::bigint[])"
     " AND retrieved_at IS NULL AND EXISTS (SELECT 1 FROM lk) RETURNING 1),"
     " mark AS (UPDATE popgate.users SET last_uidls = string_to_array($7, ' ')"
     " WHERE tenant_id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM lk)"
     " AND last_uidls IS DISTINCT FROM string_to_array($7, ' ') RETURNING 1)"
     " SELECT (SELECT count(*) FROM lk), (SELECT count(*) FROM gone) + (SELECT count(*) FROM hid)",
     8,
     {kInt8Oid, kInt8Oid, kTextOid, kInt8Oid, kInt8ArrayOid, kInt8ArrayOid, kTextOid, kInt8Oid}},
    {"popgate_release_maildrop",
     "WITH lk AS (DELETE FROM popgate.maildrop_locks WHERE tenant_id = $1 AND user_id = $2"
     " AND holder_instance = $3 AND holder_session = $4 RETURNING 1),"
     " seen AS (UPDATE popgate.messages SET retrieved_at = now() WHERE tenant_id = $1"
     " AND user_id = $2 AND message_id = ANY($5::bigint[]) AND retrieved_at IS NULL"
     " AND EXISTS (SELECT 1 FROM lk) RETURNING 1),"
     " mark AS (UPDATE popgate.users SET last_uidls = string_to_array($6, ' ')"
     " WHERE tenant_id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM lk)"
     " AND last_uidls IS DISTINCT FROM string_to_array($6, ' ') RETURNING 1)"
     " SELECT (SELECT count(*) FROM lk)",
     6,
     {kInt8Oid, kInt8Oid, kTextOid, kInt8Oid, kInt8ArrayOid, kTextOid}},
    // Renews, and says of each listed session: 0 renewed, 1 an administrator
    // wants it ended, 2 its lock row is gone (lost to a failover that
    // dropped a commit, or deleted by hand): it no longer holds the maildrop.
    {"popgate_renew_leases",
     "WITH renewed AS (UPDATE popgate.maildrop_locks"
     " SET lease_expires_at = now() + $2 * interval '1 millisecond'"
     " WHERE holder_instance = $1 AND holder_session = ANY($3::bigint[])"
     " RETURNING holder_session, (kick_requested_at IS NOT NULL)::int::int8 AS kicked)"
     " SELECT s.id, coalesce(r.kicked, 2)::int8 FROM unnest($3::bigint[]) AS s(id)"
     " LEFT JOIN renewed r ON r.holder_session = s.id",
     3,
     {kTextOid, kInt8Oid, kInt8ArrayOid}},
    // One row always: whether the user exists, and the new message's id and
    // UIDL, NULL when the quota said no. The user row is locked, so
    // concurrent deliveries to one user check the quota one at a time.
    {"popgate_deliver",
     "WITH u AS (SELECT quota_bytes, used_bytes FROM popgate.users"
     " WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE),"
     " ins AS (INSERT INTO popgate.messages (tenant_id, user_id, uidl, size_bytes, body)"
     " SELECT $1, $2, popgate.new_uidl(), octet_length($3), $3 FROM u"
     " WHERE u.quota_bytes IS NULL OR u.used_bytes + octet_length($3) <= u.quota_bytes"
     " RETURNING message_id, uidl)"
     " SELECT (SELECT count(*) FROM u), coalesce((SELECT message_id FROM ins), 0),"
     " coalesce((SELECT uidl FROM ins), '')",
     3,
     {kInt8Oid, kInt8Oid, kByteaOid}},
    // Row-level security scopes (migration 0006). set_config(..., true)
    // lasts until the end of the transaction, i.e. the request's pipeline
    // segment: a pooled connection never carries one tenant's scope into
    // another's request.
    {"popgate_scope_tenant",
     "SELECT set_config('popgate.tenant_id', $1::text, true)",
     1,
     {kInt8Oid}},
    // An unknown domain declares no tenant: the lookup then sees no user.
    {"popgate_scope_domain",
     "SELECT set_config('popgate.tenant_id',"
     " coalesce((SELECT tenant_id::text FROM popgate.tenants WHERE domain = $1), ''), true)",
     1,
     {kTextOid}},
    {"popgate_scope_all_tenants",
     "SELECT set_config('popgate.all_tenants', 'on', true)",
     0,
     {}},
    // Several whole bodies at once (the shard's read-ahead of small
    // messages): one statement instead of one per message, whose fixed
    // cost is most of what PostgreSQL spends on a small body. Rows in any
    // order; a message gone since the listing is simply not among them.
    {"popgate_fetch_bodies",
     "SELECT message_id, body FROM popgate.messages"
     " WHERE tenant_id = $1 AND user_id = $2 AND message_id = ANY($3::bigint[])",
     3,
     {kInt8Oid, kInt8Oid, kInt8ArrayOid}},
    // popgate_commit_update's shape and parameters for a session that marked
    // nothing ($5 empty; with ids it does nothing and says [IN-USE]); the
    // same steps as popgate_release_maildrop, at the commit's positions.
    // PostgreSQL fires the statement-level trigger of a DELETE on messages
    // even when it deletes no row, a PL/pgSQL call and an UPDATE plan on
    // every QUIT of every poller that found nothing new.
    {"popgate_commit_without_deletions",
     "WITH lk AS (DELETE FROM popgate.maildrop_locks WHERE tenant_id = $1 AND user_id = $2"
     " AND holder_instance = $3 AND holder_session = $4 AND cardinality($5::bigint[]) = 0"
     " RETURNING 1),"
     " seen AS (UPDATE popgate.messages SET retrieved_at = now() WHERE tenant_id = $1"
     " AND user_id = $2 AND message_id = ANY($6::bigint[]) AND retrieved_at IS NULL"
     " AND EXISTS (SELECT 1 FROM lk) RETURNING 1),"
     " mark AS (UPDATE popgate.users SET last_uidls = string_to_array($7, ' ')"
     " WHERE tenant_id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM lk)"
     " AND last_uidls IS DISTINCT FROM string_to_array($7, ' ') RETURNING 1)"
     " SELECT (SELECT count(*) FROM lk), 0::int8",
     7,
     {kInt8Oid, kInt8Oid, kTextOid, kInt8Oid, kInt8ArrayOid, kInt8ArrayOid, kTextOid}},
}};

// ---- result decoders: called only while c.status is still kOk ----

// Returns false after recording kPermanent: the result does not have the
// shape this build's SQL promises, i.e. a schema mismatch.
bool expect_shape(const PGresult* res, int columns, Completion& c) noexcept {
  if (PQnfields(res) == columns) return true;
  fail_completion(c, Status::kPermanent, "unexpected result shape", "");
  return false;
}

void bad_column(Completion& c) noexcept {
  fail_completion(c, Status::kPermanent, "unexpected column format", "");
}

bool int8_at(const PGresult* res, int row, int col, int64_t& out) noexcept {
  return decode_int8(PQgetvalue(res, row, col), PQgetlength(res, row, col), out);
}

void text_at(const PGresult* res, int row, int col, std::string& out) {
  out.assign(PQgetvalue(res, row, col), static_cast<std::size_t>(PQgetlength(res, row, col)));
}

void decode_lookup_user(const PGresult* res, Completion& c) noexcept {
  if (!expect_shape(res, 14, c)) return;
  if (PQntuples(res) == 0) {
    c.status = Status::kNotFound;
    return;
  }
  UserRecord& u = c.user;
  TenantPolicy& p = u.policy;
  int64_t require_tls = 0;
  int64_t hide = 0;
  if (!int8_at(res, 0, 13, hide) || !int8_at(res, 0, 0, u.tenant_id) || !int8_at(res, 0, 1, u.user_id) ||
      !int8_at(res, 0, 5, u.since_last_login_s) || !int8_at(res, 0, 7, p.login_delay_s) ||
      !int8_at(res, 0, 8, p.expire_days) || !int8_at(res, 0, 9, require_tls) ||
      !int8_at(res, 0, 10, p.sessions_max) || !int8_at(res, 0, 11, p.logins_per_minute)) {
    bad_column(c);
    return;
  }
  p.require_tls = require_tls != 0;
  p.hide_deleted = hide != 0;
  text_at(res, 0, 2, u.password_hash);
  text_at(res, 0, 3, u.scram_sha256);
  text_at(res, 0, 4, u.apop_secret);
  text_at(res, 0, 6, u.domain);
  text_at(res, 0, 12, p.mechanisms);
}

void decode_lock_maildrop(const PGresult* res, Completion& c) noexcept {
  if (!expect_shape(res, 2, c)) return;
  if (PQntuples(res) == 0) {
    c.status = Status::kInUse;
    return;
  }
  int64_t count = 0;
  if (int8_at(res, 0, 0, count) && count > 0) {
    c.listing_hint = static_cast<uint64_t>(std::min<int64_t>(count, kListingHintMax));
  }
  text_at(res, 0, 1, c.previous_uidls);
}

// Appends the rows of `res` to the listing: all of them at once, or (row by
// row, see is_row_by_row_statement) one per call and then a zero-row result
// that ends the statement.
void decode_listing(const PGresult* res, Completion& c) noexcept {
  if (!expect_shape(res, 3, c)) return;
  const int rows = PQntuples(res);
  MaildropListing& l = c.listing;
  if (rows == 0) {
    // The end of a row-by-row listing: vectors grown one row at a time keep
    // up to half their capacity spare for the whole session; give it back.
    const auto spare = [](const auto& v) { return v.capacity() - v.size() > v.size() / 8; };
    if (spare(l.message_ids)) l.message_ids.shrink_to_fit();
    if (spare(l.sizes)) l.sizes.shrink_to_fit();
    if (spare(l.uidl_ends)) l.uidl_ends.shrink_to_fit();
    if (spare(l.uidl_arena)) l.uidl_arena.shrink_to_fit();
    return;
  }
  std::size_t uidl_bytes = l.uidl_arena.size();
  for (int r = 0; r < rows; ++r) uidl_bytes += static_cast<std::size_t>(PQgetlength(res, r, 2));
  if (uidl_bytes > std::numeric_limits<uint32_t>::max()) {
    bad_column(c);
    return;
  }
  if (l.message_ids.empty() && c.listing_hint > static_cast<uint64_t>(rows)) {
    // Row by row: room for the whole listing the lock statement counted,
    // with UIDLs as long as this first one (the end trims any excess).
    const auto n = static_cast<std::size_t>(c.listing_hint);
    l.message_ids.reserve(n);
    l.sizes.reserve(n);
    l.uidl_ends.reserve(n);
    l.uidl_arena.reserve(n * (uidl_bytes / static_cast<std::size_t>(rows)));
  } else if (rows > 1) {  // (reserving one row more at a time would copy every row each time)
    const auto n = l.message_ids.size() + static_cast<std::size_t>(rows);
    l.message_ids.reserve(n);
    l.sizes.reserve(n);
    l.uidl_ends.reserve(n);
    l.uidl_arena.reserve(uidl_bytes);
  }
  for (int r = 0; r < rows; ++r) {
    int64_t id = 0;
    int64_t size = 0;
    if (!int8_at(res, r, 0, id) || !int8_at(res, r, 1, size)) {
      bad_column(c);
      return;
    }
    // The wire format counts sizes in uint32; a bigger message is bad data.
    if (size < 0 || size > int64_t{std::numeric_limits<uint32_t>::max()}) {
      fail_completion(c, Status::kPermanent, "message size out of range", "");
      return;
    }
    l.message_ids.push_back(id);
    l.sizes.push_back(static_cast<uint32_t>(size));
    l.uidl_arena.append(PQgetvalue(res, r, 2), static_cast<std::size_t>(PQgetlength(res, r, 2)));
    l.uidl_ends.push_back(static_cast<uint32_t>(l.uidl_arena.size()));
  }
}

// Keeps `res` (rows of message_id, body) whatever its row count.
bool decode_fetch_bodies(PGresult* res, Completion& c) noexcept {
  if (!expect_shape(res, 2, c)) return false;
  c.body.reset(res);
  return true;
}

// Returns true when it kept `res`.
bool decode_fetch_body(PGresult* res, Completion& c) noexcept {
  if (!expect_shape(res, 1, c)) return false;
  if (PQntuples(res) == 0) {
    c.status = Status::kNotFound;
    return false;
  }
  c.body_bytes = std::string_view(PQgetvalue(res, 0, 0),
                                  static_cast<std::size_t>(PQgetlength(res, 0, 0)));
  c.body.reset(res);
  return true;
}

void decode_commit_update(const PGresult* res, Completion& c) noexcept {
  if (!expect_shape(res, 2, c)) return;
  int64_t locks = 0;
  int64_t deleted = 0;
  if (PQntuples(res) != 1 || !int8_at(res, 0, 0, locks) || !int8_at(res, 0, 1, deleted) ||
      deleted < 0) {
    bad_column(c);
    return;
  }
  if (locks == 0) {
    c.status = Status::kInUse;  // lease lost: nothing was deleted
    return;
  }
  c.affected = static_cast<uint64_t>(deleted);
}

void decode_release(const PGresult* res, Completion& c) noexcept {
  if (!expect_shape(res, 1, c)) return;
  int64_t locks = 0;
  if (PQntuples(res) != 1 || !int8_at(res, 0, 0, locks)) {
    bad_column(c);
    return;
  }
  c.affected = static_cast<uint64_t>(locks);
}

void decode_renew(const PGresult* res, Completion& c) noexcept {
  if (!expect_shape(res, 2, c)) return;
  const int rows = PQntuples(res);
  for (int r = 0; r < rows; ++r) {
    int64_t session = 0;
    int64_t state = 0;
    if (!int8_at(res, r, 0, session) || !int8_at(res, r, 1, state)) {
      bad_column(c);
      return;
    }
    if (state == 2) {
      c.lost.push_back(session);
      continue;
    }
    ++c.affected;
    if (state != 0) c.kicked.push_back(session);
  }
}

void decode_deliver(const PGresult* res, Completion& c) noexcept {
  if (!expect_shape(res, 3, c)) return;
  int64_t users = 0;
  if (PQntuples(res) != 1 || !int8_at(res, 0, 0, users) || !int8_at(res, 0, 1, c.message_id)) {
    bad_column(c);
    return;
  }
  if (users == 0) {
    c.status = Status::kNotFound;
    return;
  }
  if (c.message_id == 0) {
    c.status = Status::kOverQuota;
    return;
  }
  text_at(res, 0, 2, c.uidl);
}

bool decode_success(StatementId id, PGresult* res, Completion& c) noexcept {
  switch (id) {
    case StatementId::kLookupUser:
      decode_lookup_user(res, c);
      return false;
    case StatementId::kLockMaildrop:
      decode_lock_maildrop(res, c);
      return false;
    case StatementId::kListMaildrop:
      decode_listing(res, c);
      return false;
    case StatementId::kFetchBody:
      return decode_fetch_body(res, c);
    case StatementId::kFetchBodies:
      return decode_fetch_bodies(res, c);
    case StatementId::kCommitUpdate:
    case StatementId::kCommitWithoutDeletions:
      decode_commit_update(res, c);
      return false;
    case StatementId::kReleaseMaildrop:
      decode_release(res, c);
      return false;
    case StatementId::kRenewLeases:
      decode_renew(res, c);
      return false;
    case StatementId::kDeliver:
      decode_deliver(res, c);
      return false;
    case StatementId::kScopeTenant:
    case StatementId::kScopeDomain:
    case StatementId::kScopeAllTenants:
      return false;  // one row: the value just set
  }
  return false;
}

const char* or_empty(const char* s) noexcept { return s != nullptr ? s : ""; }

}  // namespace

const StatementDef& statement_def(StatementId id) noexcept {
  return kStatements[static_cast<std::size_t>(id)];
}

StatementPlan statement_plan(RequestKind kind) noexcept {
  switch (kind) {
    case RequestKind::kLookupUser:
      return {{StatementId::kScopeDomain, StatementId::kLookupUser}, 2};
    case RequestKind::kOpenMaildrop:
      return {{StatementId::kScopeTenant, StatementId::kLockMaildrop, StatementId::kListMaildrop}, 3};
    case RequestKind::kFetchBody:
      return {{StatementId::kScopeTenant, StatementId::kFetchBody}, 2};
    case RequestKind::kFetchBodies:
      return {{StatementId::kScopeTenant, StatementId::kFetchBodies}, 2};
    case RequestKind::kCommitUpdate:
      return {{StatementId::kScopeTenant, StatementId::kCommitUpdate}, 2};
    case RequestKind::kReleaseMaildrop:
      return {{StatementId::kScopeTenant, StatementId::kReleaseMaildrop}, 2};
    case RequestKind::kRenewLeases:
      return {{StatementId::kScopeAllTenants, StatementId::kRenewLeases}, 2};
    case RequestKind::kDeliver:
      return {{StatementId::kScopeTenant, StatementId::kDeliver}, 2};
  }
  std::abort();  // not a RequestKind: memory corruption
}

StatementPlan commit_without_deletions_plan() noexcept {
  return {{StatementId::kScopeTenant, StatementId::kCommitWithoutDeletions}, 2};
}

void ParamBlock::clear() noexcept {
  count_ = 0;
  used_ = 0;
  for (std::string& spill : spills_) spill.clear();
  spills_used_ = 0;
  borrowed_ = {};
}

void ParamBlock::add_int8(int64_t value) noexcept {
  if (count_ == kParamsMax || used_ + kInt8Bytes > inline_.size()) std::abort();  // a bug
  encode_int8(value, inline_.data() + used_);
  offsets_[count_] = static_cast<uint16_t>(used_);
  lengths_[count_] = static_cast<int>(kInt8Bytes);
  formats_[count_] = kBinaryFormat;
  used_ += kInt8Bytes;
  ++count_;
}

void ParamBlock::add_int4(int32_t value) noexcept {
  if (count_ == kParamsMax || used_ + kInt4Bytes > inline_.size()) std::abort();  // a bug
  encode_int4(value, inline_.data() + used_);
  offsets_[count_] = static_cast<uint16_t>(used_);
  lengths_[count_] = static_cast<int>(kInt4Bytes);
  formats_[count_] = kBinaryFormat;
  used_ += kInt4Bytes;
  ++count_;
}

bool ParamBlock::add_text(std::string_view text) noexcept {
  if (count_ == kParamsMax) std::abort();  // a bug
  if (text.size() > inline_.size() - used_) return false;
  // An empty view may have a null data(): no memcpy then (UB even for 0).
  if (!text.empty()) std::memcpy(inline_.data() + used_, text.data(), text.size());
  offsets_[count_] = static_cast<uint16_t>(used_);
  lengths_[count_] = static_cast<int>(text.size());
  formats_[count_] = kBinaryFormat;
  used_ += text.size();
  ++count_;
  return true;
}

void ParamBlock::add_int8_array(std::span<const int64_t> ids) noexcept {
  if (count_ == kParamsMax || spills_used_ == kArraysMax) std::abort();  // a bug
  // Text format: libpq reads it up to the terminator std::string provides.
  format_int8_array(ids, spills_[spills_used_]);
  offsets_[count_] = kSpilled;
  spill_of_[count_] = static_cast<uint8_t>(spills_used_++);
  lengths_[count_] = 0;
  formats_[count_] = kTextFormat;
  ++count_;
}

void ParamBlock::add_borrowed_bytes(std::string_view bytes) noexcept {
  if (count_ == kParamsMax || borrowed_.data() != nullptr) std::abort();  // a bug
  borrowed_ = bytes.data() != nullptr ? bytes : std::string_view("", 0);
  offsets_[count_] = kBorrowed;
  lengths_[count_] = static_cast<int>(bytes.size());
  formats_[count_] = kBinaryFormat;
  ++count_;
}

void ParamBlock::view(View& out) const noexcept {
  for (std::size_t i = 0; i < count_; ++i) {
    out.values[i] = offsets_[i] == kSpilled    ? spills_[spill_of_[i]].c_str()
                    : offsets_[i] == kBorrowed ? borrowed_.data()
                                               : inline_.data() + offsets_[i];
    out.lengths[i] = lengths_[i];
    out.formats[i] = formats_[i];
  }
}

bool apply_statement_result(StatementId id, pg_result* res, Completion& c) noexcept {
  const ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_FATAL_ERROR) {
    if (c.status == Status::kOk) {
      const char* sqlstate = or_empty(PQresultErrorField(res, PG_DIAG_SQLSTATE));
      const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
      fail_completion(c, classify_sqlstate(sqlstate), sqlstate[0] != '\0' ? sqlstate : "libpq",
                      primary != nullptr ? primary : PQresultErrorMessage(res));
    }
    return false;
  }
  if (st == PGRES_PIPELINE_ABORTED) {
    // Follows an error that already decided the status; this fallback only
    // matters if the server aborted without telling us why.
    if (c.status == Status::kOk) {
      fail_completion(c, Status::kTemporary, "pipeline aborted", "");
    }
    return false;
  }
  if (c.status != Status::kOk) return false;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK &&
      !(st == PGRES_SINGLE_TUPLE && is_row_by_row_statement(id))) {
    fail_completion(c, Status::kPermanent, "unexpected result status", PQresStatus(st));
    return false;
  }
  return decode_success(id, res, c);
}

void fail_completion(Completion& c, Status status, std::string_view prefix,
                     std::string_view message) noexcept {
  c.status = status;
  if (!message.empty()) {
    char joined[kErrorBytesMax];
    const std::size_t p = std::min(prefix.size(), sizeof joined - 2);
    std::memcpy(joined, prefix.data(), p);
    joined[p] = ':';
    joined[p + 1] = ' ';
    assign_error(c.error, std::string_view(joined, p + 2), message);
  } else {
    assign_error(c.error, prefix, "");
  }
  // Cleared in place: the slot keeps its reserved capacity.
  c.user.tenant_id = c.user.user_id = 0;
  c.user.since_last_login_s = -1;
  c.user.domain.clear();
  c.user.password_hash.clear();
  c.user.scram_sha256.clear();
  c.user.apop_secret.clear();
  c.user.policy.mechanisms.clear();
  c.listing.message_ids.clear();
  c.listing.sizes.clear();
  c.listing.uidl_ends.clear();
  c.listing.uidl_arena.clear();
  c.body.reset();
  c.body_bytes = {};
  c.affected = 0;
  c.previous_uidls.clear();
  c.kicked.clear();
  c.lost.clear();
  c.message_id = 0;
  c.uidl.clear();
}

}  // namespace popgate::storage
