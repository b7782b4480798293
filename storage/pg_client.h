// PgClient: one shard's asynchronous door to PostgreSQL.
//
// Owns a small fixed set of libpq connections (non-blocking, pipeline mode,
// prepared statements) and a FIFO of in-flight requests per connection. Many
// sessions share these few connections; a request is a handful of statements
// ended by one Sync, so it runs as one implicit transaction.
//
// It never blocks. The owner polls event_fd() for readability (it is an epoll
// descriptor covering every connection socket) and then calls
// handle_events(); it calls handle_tick() every few hundred milliseconds so
// timeouts and reconnects happen. Results come out of poll_completion().
//
// Contract: every submitted request completes exactly once, in bounded time
// (query_timeout), with a Status. When no connection is up, requests wait up
// to query_timeout for one and then complete with kTemporary. A timed-out
// connection is closed and every request on it completes with kTemporary.
//
// Must not know: sessions, rings, anything under server/.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct pg_result;  // libpq's PGresult; kept out of this header.

namespace popgate::storage {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// Translated once from SQLSTATE and connection state.
enum class Status : uint8_t {
  kOk,
  kNotFound,   // no such user / message
  kInUse,      // maildrop lock held by a live session elsewhere, or lost
  kTemporary,  // connection down, timeout, serialization failure, overload
  kPermanent,  // constraint violation, schema mismatch, bad data
  kOverQuota,  // deliver: the message would exceed the user's quota
};
[[nodiscard]] std::string_view to_string(Status s) noexcept;

struct PgResultDeleter {
  void operator()(pg_result* r) const noexcept;
};
using ResultHandle = std::unique_ptr<pg_result, PgResultDeleter>;

// Who holds a maildrop lock: the process (random id fixed at start) and the
// session inside it. Both are compared at UPDATE and release, so a session
// whose lease was taken over can never delete anything.
struct LockHolder {
  std::string_view instance_id;  // <= 64 bytes
  int64_t session_id = 0;
  std::string_view client;       // the real client "address:port" (who is online)
  std::string_view listener;     // listener name
};

// What a session leaves behind, recorded with its UPDATE or release: which
// messages it retrieved (EXPIRE counts from the first retrieval) and the
// newest UIDLs still in the maildrop (the UIDL-change detector).
struct SessionEnd {
  std::span<const int64_t> retrieved_ids;
  std::string_view kept_uidls;  // space-separated, at most kKeptUidlsMax
};
inline constexpr size_t kKeptUidlsMax = 8;

// A tenant's policy (popgate.tenants), read with every login.
struct TenantPolicy {
  int64_t login_delay_s = 0;       // RFC 2449 LOGIN-DELAY; 0 = none
  int64_t expire_days = -1;        // RFC 2449 EXPIRE; -1 = NEVER
  bool require_tls = false;
  int64_t sessions_max = -1;       // -1 = the instance default
  int64_t logins_per_minute = -1;  // -1 = the instance default
  std::string mechanisms;          // space-separated; empty = all enabled
  bool hide_deleted = false;       // delete_mode 'hide': DELE hides, never removes
};

struct UserRecord {
  int64_t tenant_id = 0;
  int64_t user_id = 0;
  std::string domain;         // the tenant's
  std::string password_hash;  // Dovecot-style "{SCHEME}..." string
  std::string scram_sha256;   // "{SCRAM-SHA-256}..." or empty
  std::string apop_secret;    // empty: no APOP for this user
  int64_t since_last_login_s = -1;  // -1: never logged in
  TenantPolicy policy;
};

// The snapshot fixed at login, in message_id order. Structure of arrays so a
// 100,000-message maildrop costs ~16 bytes a message plus its UIDL text.
struct MaildropListing {
  std::vector<int64_t> message_ids;
  std::vector<uint32_t> sizes;      // octets, CRLF form, before byte-stuffing
  std::vector<uint32_t> uidl_ends;  // UIDL i is arena[ends[i-1] (or 0), ends[i])
  std::string uidl_arena;
};

enum class RequestKind : uint8_t {
  kLookupUser,
  kOpenMaildrop,
  kFetchBody,
  kCommitUpdate,
  kReleaseMaildrop,
  kRenewLeases,
  kDeliver,
  kFetchBodies,
};
inline constexpr size_t kRequestKinds = static_cast<size_t>(RequestKind::kFetchBodies) + 1;
// "lookup_user", "open_maildrop", ... (metric label values).
[[nodiscard]] std::string_view to_string(RequestKind k) noexcept;

// In the rows of a kFetchBodies completion, the body of `message_id`;
// false when that message is not among them.
[[nodiscard]] bool fetched_body(const pg_result* rows, int64_t message_id,
                                std::string_view* body) noexcept;

struct Completion {
  uint64_t tag = 0;  // the caller's, returned untouched
  RequestKind kind = RequestKind::kLookupUser;
  Status status = Status::kTemporary;
  std::string error;  // short reason for logs; never holds secrets

  UserRecord user;          // kLookupUser
  MaildropListing listing;  // kOpenMaildrop
  uint64_t listing_hint = 0;  // kOpenMaildrop: messages the lock statement counted
  ResultHandle body;        // kFetchBody: owns the bytes body_bytes views;
                            // kFetchBodies: the rows (message_id, body),
                            // read with fetched_body()
  std::string_view body_bytes;
  uint64_t affected = 0;  // kCommitUpdate: messages deleted (or hidden);
                          // kRenewLeases: leases renewed
  std::string previous_uidls;   // kOpenMaildrop: kept UIDLs of the last session
  std::vector<int64_t> kicked;  // kRenewLeases: sessions an admin asked to end
  std::vector<int64_t> lost;    // kRenewLeases: sessions whose lock row is gone
  int64_t message_id = 0;       // kDeliver
  std::string uidl;             // kDeliver
  // Timings, for latency metrics: when the request was submitted, and when
  // the result of its first data statement arrived, after the row-level
  // security scope (for kOpenMaildrop: the lock was taken; the listing
  // followed). first_result is zero when none came.
  TimePoint submitted{};
  TimePoint first_result{};
};

// Checked by the constructor, which throws std::invalid_argument for
// nonsense (no connections, non-positive timeouts, backoff min > max).
struct PgClientOptions {
  std::string conninfo;          // libpq connection string or URI
  uint32_t connections = 2;      // per client (that is, per shard), 1..64
  std::string default_domain;    // appended to logins without '@'; "" = none
  // Bounds every request, from submission to completion. The server's
  // statement_timeout is set to 90% of it, so a statement blocked in
  // PostgreSQL is cancelled (and rolled back) before the client gives up.
  std::chrono::milliseconds query_timeout{10'000};
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds reconnect_backoff_min{100};
  std::chrono::milliseconds reconnect_backoff_max{5'000};
  std::chrono::milliseconds lock_lease{30'000};
  uint32_t queued_requests_max = 4096;  // beyond this, kTemporary at once
  std::string application_name = "popgate";
};

// Counters are totals since construction; gauges are current values.
struct PgClientStats {
  uint32_t connections_up = 0;     // gauge
  uint64_t requests = 0;           // submissions, whatever their outcome
  uint64_t errors_temporary = 0;   // completions with kTemporary
  uint64_t errors_permanent = 0;   // completions with kPermanent
  uint64_t timeouts = 0;           // connections closed as stuck (no progress
                                   // for query_timeout plus a grace period)
  uint64_t reconnects = 0;         // connection attempts after a slot's first
  uint32_t in_flight = 0;          // gauge: sent, results not yet all read
  // Added after the first cut of this header:
  uint32_t queued = 0;             // gauge: waiting for a connection
  uint64_t overloaded = 0;         // rejected at once: queue at its bound
  uint64_t deadline_expired = 0;   // completed kTemporary because
                                   // query_timeout passed (queued or sent)
  uint64_t connect_failures = 0;   // connection attempts that failed
  uint64_t rows_streamed = 0;      // rows libpq handed over one at a time
                                   // (listings: is_row_by_row_statement)
};

class PgClient {
 public:
  // Starts connecting at once (on the client's connector thread). Throws
  // at startup only: std::invalid_argument, std::system_error.
  explicit PgClient(PgClientOptions options);
  // Joins the connector thread (an attempt in progress is cut short, except
  // a DNS lookup) and closes the connections. Pending completions are lost.
  ~PgClient();
  PgClient(const PgClient&) = delete;
  PgClient& operator=(const PgClient&) = delete;

  // Readable when handle_events() has work. Stable for the client's life.
  [[nodiscard]] int event_fd() const noexcept;
  void handle_events(TimePoint now) noexcept;
  void handle_tick(TimePoint now) noexcept;

  // Submissions. Strings are copied before return.
  // login: "local@domain" or "local" (then default_domain). Matching is
  // case-insensitive for ASCII; names longer than 255 octets are kNotFound.
  void lookup_user(uint64_t tag, std::string_view login, TimePoint now) noexcept;
  // Takes the maildrop lock (kInUse if a live lease is held by someone else),
  // reads the listing and records the login time, in one transaction.
  void open_maildrop(uint64_t tag, int64_t tenant_id, int64_t user_id,
                     LockHolder holder, TimePoint now) noexcept;
  // Up to `length` octets of the body from `offset` (0-based). An empty
  // body_bytes with kOk means offset is at or past the end. Bodies are at
  // most 2 GiB - 1 octets (SQL positions are int4), so any offset from
  // 2^31 - 1 on reads nothing; kNotFound still reports a missing message.
  void fetch_body(uint64_t tag, int64_t tenant_id, int64_t user_id,
                  int64_t message_id, uint64_t offset, uint32_t length,
                  TimePoint now) noexcept;
  // The whole bodies of several messages in one statement (read-ahead of
  // small messages); kOk with the rows of those still there, in any order:
  // fetched_body() finds one.
  void fetch_bodies(uint64_t tag, int64_t tenant_id, int64_t user_id,
                    std::span<const int64_t> message_ids, TimePoint now) noexcept;
  // UPDATE state: deletes (or, with `hide`, hides) the marked messages,
  // records `end` and releases the lock, all or nothing. kInUse if the
  // holder no longer owns the lock (nothing changed).
  void commit_update(uint64_t tag, int64_t tenant_id, int64_t user_id,
                     LockHolder holder, std::span<const int64_t> message_ids, bool hide,
                     const SessionEnd& end, TimePoint now) noexcept;
  // A session that ends without UPDATE: records `end`, releases the lock.
  void release_maildrop(uint64_t tag, int64_t tenant_id, int64_t user_id,
                        LockHolder holder, const SessionEnd& end, TimePoint now) noexcept;
  // Extends the lease of every listed session of this instance; the
  // completion lists those an administrator asked to end (kicked) and those
  // whose lock row is gone (lost; not renewed, not counted in affected).
  void renew_leases(uint64_t tag, std::string_view instance_id,
                    std::span<const int64_t> session_ids, TimePoint now) noexcept;
  // Stores one message (CRLF-normalised by the caller) with a new UIDL, if
  // the user's quota allows: kOverQuota otherwise, kNotFound if the user is
  // gone. `body` is not copied: it must stay valid until the completion.
  void deliver(uint64_t tag, int64_t tenant_id, int64_t user_id, std::string_view body,
               TimePoint now) noexcept;

  [[nodiscard]] bool poll_completion(Completion& out) noexcept;
  // Safe to call from any thread: the client publishes relaxed atomics.
  [[nodiscard]] PgClientStats stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace popgate::storage
