// PgClient's internal state, shared by pg_client.cc (the engine: routing,
// pipelines, results, connection lifecycle, deadlines) and pg_client_api.cc
// (the public submissions, completions and stats). Not for other modules.
//
// Life of a request: a pooled Request slot is filled (parameters encoded
// once) and either sent at once on the least busy live connection or queued
// in submit order. Sending pipelines its statements plus one Sync; the
// connection's in-flight FIFO then maps the results that come back, in
// order, to requests. The slot returns to the pool in poll_completion().
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/pg_client.h"
#include "storage/pg_connector.h"
#include "storage/pg_statements.h"
#include "storage/ring_queue.h"

namespace popgate::storage {
namespace client_detail {

using milliseconds = std::chrono::milliseconds;

// Requests sent on one connection and not yet answered. Beyond this the
// request waits in the queue: a deeper pipeline only adds latency behind a
// slow statement and grows libpq's buffers.
inline constexpr std::size_t kPipelineDepthMax = 128;
// Connections per client; more would only add backends, not throughput.
inline constexpr uint32_t kConnectionsMax = 64;
// Request slots created up front; the pool grows past this on demand.
inline constexpr std::size_t kRequestsPrealloc = 64;
// Capacity reserved in each request slot's strings: a DNS name, a typical
// "{SCHEME}..." credential (argon2id is ~100 bytes), short texts.
inline constexpr std::size_t kDomainBytesReserved = 253;
inline constexpr std::size_t kCredentialBytesReserved = 192;
inline constexpr std::size_t kSmallTextBytesReserved = 64;
// epoll events taken per handle_events(); the rest stay level-triggered.
inline constexpr int kEpollEventsMax = 16;
// LockHolder::client and ::listener are cut to this for the lock row.
inline constexpr std::size_t kLockInfoBytesMax = 64;
// LockHolder::instance_id limit, in bytes.
inline constexpr std::size_t kInstanceIdBytesMax = 64;
// Positions in a body are int4 in SQL. Bodies are capped at 2 GiB - 1
// octets (PostgreSQL itself caps a bytea at 1 GiB), so a 0-based offset at
// or past this is past the end of any body.
inline constexpr uint64_t kBodyOffsetMax = INT32_MAX;
// The server's statement_timeout is query_timeout less this share (1/10),
// so a statement stuck on a lock is cancelled and rolled back by the server
// just before the client would give up on the request. Otherwise the client
// could report kTemporary for an open_maildrop whose lock INSERT commits a
// moment later, leaving a stray lock for a whole lease.
inline constexpr int64_t kServerTimeoutShareDivisor = 10;
// After query_timeout of server silence on a busy connection, the server
// should long since have cancelled the statement; we wait a quarter of
// query_timeout more (at least this) before declaring the connection stuck.
inline constexpr milliseconds kStuckGraceMin{250};

inline constexpr uint64_t kConnectorToken = UINT64_MAX;  // epoll data for the eventfd
inline constexpr uint32_t kNoRequest = UINT32_MAX;       // in-flight entry abandoned

struct Request {
  Completion done;
  TimePoint deadline;  // submit time + query_timeout
  StatementPlan plan;  // statement_plan(done.kind), or a variant the builder chose
  ParamBlock params;
};

struct InFlight {
  uint32_t request;          // kNoRequest once completed at its deadline
  uint8_t statements_done;   // results received before the Sync
  TimePoint deadline;
};

enum class ConnState : uint8_t { kDown, kConnecting, kUp };

struct Connection {
  PGconn* conn = nullptr;
  int sock = -1;  // as registered in epoll
  ConnState state = ConnState::kDown;
  bool want_write = false;  // EPOLLOUT armed: libpq has unsent output
  bool attempted = false;   // a first attempt was made (for stats)
  milliseconds backoff{0};
  TimePoint retry_at{};
  TimePoint progress_at{};  // last bytes received, or first send onto an idle pipe
  RingQueue<InFlight> in_flight{kPipelineDepthMax};
};

// Single-writer counter readable from any thread.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

inline bool valid_instance_id(std::string_view id) noexcept {
  return !id.empty() && id.size() <= kInstanceIdBytesMax &&
         id.find('\0') == std::string_view::npos;
}

}  // namespace client_detail

struct PgClient::Impl {
  using Request = client_detail::Request;
  using InFlight = client_detail::InFlight;
  using Connection = client_detail::Connection;
  using milliseconds = client_detail::milliseconds;

  explicit Impl(PgClientOptions options);
  ~Impl();

  static std::unique_ptr<Request> new_request();
  uint32_t begin(uint64_t tag, RequestKind kind, TimePoint now) noexcept;
  void finish(uint32_t id) noexcept;
  void finish_status(uint32_t id, Status s) noexcept;
  void fail_now(uint32_t id, Status s, std::string_view why) noexcept;
  void route(uint32_t id, TimePoint now) noexcept;
  void drain_waiting(TimePoint now) noexcept;
  int pick_connection() const noexcept;
  bool send(int c, uint32_t id, TimePoint now) noexcept;
  void flush(int c, TimePoint now) noexcept;
  void read(int c, TimePoint now) noexcept;
  void arm_row_by_row(Connection& k) noexcept;
  bool on_result(int c, PGresult* res, TimePoint now) noexcept;
  void close_connection(int c, TimePoint now, std::string_view why, bool libpq_detail) noexcept;
  void request_connect(int c) noexcept;
  void adopt_connections(TimePoint now) noexcept;
  void schedule_retry(Connection& k, TimePoint now) noexcept;
  void expire(TimePoint now) noexcept;
  void publish_gauges() noexcept;
  Request& req(uint32_t id) noexcept { return *requests_[id]; }

  const PgClientOptions options_;
  const milliseconds stuck_after_;
  int epoll_fd_ = -1;
  std::vector<Connection> conns_;
  std::vector<ConnectOutcome> outcomes_;  // scratch for adopt_connections
  std::vector<std::unique_ptr<Request>> requests_;  // stable addresses
  std::vector<uint32_t> free_requests_;
  RingQueue<uint32_t> waiting_;    // not yet sent, submit order
  RingQueue<uint32_t> completed_;  // ready for poll_completion
  std::string last_connect_error_;
  uint64_t rng_ = 0;  // splitmix64 state for backoff jitter

  std::atomic<uint64_t> requests_total_{0};
  std::atomic<uint64_t> errors_temporary_{0};
  std::atomic<uint64_t> errors_permanent_{0};
  std::atomic<uint64_t> timeouts_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<uint64_t> overloaded_{0};
  std::atomic<uint64_t> rows_streamed_{0};
  std::atomic<uint64_t> deadline_expired_{0};
  std::atomic<uint64_t> connect_failures_{0};
  std::atomic<uint32_t> connections_up_{0};
  std::atomic<uint32_t> in_flight_{0};
  std::atomic<uint32_t> queued_{0};

  // Last: its thread must stop before anything above goes away.
  std::unique_ptr<PgConnector> connector_;
};

}  // namespace popgate::storage
