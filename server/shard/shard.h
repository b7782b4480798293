// Shard: one thread, one io_uring, one socket per listener (SO_REUSEPORT),
// its own connection table, database connections, KDF outbox, buffer pools,
// password-check cache and counters. Shares nothing with other shards but
// read-only things (TLS context, JWKS) and the process-wide abuse tables; a
// connection stays on the shard that accepted it.
//
// It drives each connection: PROXY header, TLS, then the pop3::Session —
// socket bytes in, replies out, requests to the PgClient, the KdfPool or the
// auth helpers, their replies back. It never blocks: sockets, the database
// and the KDF workers all report through the ring.
//
// Must not know: configuration files, metrics export, signals (ops/ and
// main own those).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/auth/kdf_pool.h"
#include "server/auth/oauth.h"
#include "server/auth/verify_cache.h"
#include "server/limits/concurrency_limit.h"
#include "server/limits/login_failure_delay.h"
#include "server/limits/rate_limit.h"
#include "server/lmtp/session.h"
#include "server/net/buffer_ring.h"
#include "server/net/ring.h"
#include "server/pop3/counters.h"
#include "server/pop3/session.h"
#include "server/proxy/cidr.h"
#include "server/shard/connection.h"
#include "server/shard/tenant_metrics.h"
#include "server/tls/tls_context.h"
#include "storage/cluster_routes.h"
#include "storage/pg_client.h"

namespace popgate::shard {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct ListenerOptions {
  std::string name = "pop3";
  int fd = -1;                   // this shard's socket; owned by the shard
  pop3::SessionConfig session;   // per listener: cleartext rules, STLS, APOP
  bool implicit_tls = false;     // TLS from the first byte (port 995)
  bool proxy_protocol = false;   // a PROXY header comes first
  proxy::CidrSet trusted_proxies;
  bool proxy_tls_is_secure = true;  // a PROXY SSL TLV counts as TLS
  // An LMTP delivery listener: no PROXY, no TLS, no POP3 session.
  bool lmtp = false;
  lmtp::SessionConfig lmtp_session;
};

// Limit values that SIGHUP may change while shards run: main stores, shards
// load (relaxed; a login sees the old value or the new one).
struct LimitThresholds {
  std::atomic<uint32_t> connections_per_address_max{100};
  std::atomic<uint32_t> sessions_per_user_max{10};
  std::atomic<uint32_t> sessions_per_tenant_max{100'000};
  std::atomic<uint32_t> logins_per_tenant_per_minute{60'000};
  std::atomic<uint32_t> failures_per_address_max{20};
  std::atomic<uint32_t> proxy_header_timeout_ms{5'000};
};

// Process-wide abuse tables and their limits, shared by all shards.
struct SharedLimits {
  limits::ConcurrencyLimit<limits::AddressKey>* connections_per_address = nullptr;
  limits::ConcurrencyLimit<limits::UserKey>* sessions_per_user = nullptr;
  limits::ConcurrencyLimit<limits::TenantKey>* sessions_per_tenant = nullptr;
  limits::LoginFailureDelay<limits::AddressKey>* login_failures = nullptr;
  limits::RateLimit<limits::TenantKey>* tenant_logins = nullptr;
  const LimitThresholds* thresholds = nullptr;  // null: the defaults above
};

struct ShardOptions {
  uint32_t index = 0;
  std::vector<ListenerOptions> listeners;
  std::shared_ptr<const tls::TlsContext> tls;  // null: no TLS configured
  const auth::JwksVerifier* oauth = nullptr;   // null: no bearer tokens
  SharedLimits limits;
  uint32_t verify_cache_entries = 10'000;
  std::chrono::milliseconds verify_cache_ttl{300'000};
  uint32_t output_buffer_bytes = 16 * 1024;  // one block per busy session
  uint32_t connections_max = 65536;          // per shard
  uint32_t ring_entries = 4096;
  uint32_t recv_buffers = 1024;              // power of two
  uint32_t recv_buffer_bytes = 4096;
  storage::PgClientOptions storage;
  // More PostgreSQL clusters: cluster i (1..) connects to
  // cluster_conninfo[i - 1] with `storage`'s other options (and its own
  // connections). `routes` picks a login's cluster by its domain; null or
  // empty: everything on cluster 0 (`storage.conninfo`).
  std::vector<std::string> cluster_conninfo;
  std::shared_ptr<const storage::ClusterRoutes> routes;
  std::string instance_id;                   // lock holder identity of this process
  // Tenants with metric series of their own (TenantMetrics); the rest are
  // counted as "other". `tenant_labels_only` non-empty: just those names.
  uint32_t tenant_labels_max = 100;
  std::vector<std::string> tenant_labels_only;
  std::chrono::milliseconds tick{250};       // timer resolution
  std::chrono::milliseconds stop_grace{15'000};  // after the drain deadline
  // After the last reply of a graceful close, how long the peer may keep
  // sending before the socket is closed anyway.
  std::chrono::milliseconds linger{2'000};
};

using pop3::Counter;
using pop3::Gauge;

// What a connection is doing, for the connections-by-state gauges.
enum class ConnState : uint8_t {
  kProxyHeader, kTlsHandshake, kAuthorization, kTransaction, kUpdate, kClosing, kLmtp, kCount,
};
inline constexpr size_t kConnStates = static_cast<size_t>(ConnState::kCount);
// "proxy_header", "tls_handshake", "authorization", ... (metric label values).
[[nodiscard]] std::string_view conn_state_name(ConnState s) noexcept;

// One PostgreSQL cluster's client figures (PgClientStats), copied every tick.
struct PgClusterCounters {
  Gauge connections_up;
  Gauge in_flight;
  Gauge queued;
  Gauge requests;
  Gauge errors_temporary;
  Gauge errors_permanent;
  Gauge timeouts;
  Gauge overloaded;
  Gauge deadline_expired;
  Gauge connect_failures;
  Gauge reconnects;
};

struct ListenerCounters {
  Counter accepted;
  Counter rejected;  // connections_max reached, or stopping
  Counter closed;
  Gauge active;
};

// Shard-level counters (the protocol's are in pop3). Single writer.
struct ShardCounters {
  explicit ShardCounters(size_t listener_count, size_t cluster_count = 1)
      : listeners(listener_count), pg_clusters(cluster_count) {}
  pop3::Counters pop3;
  lmtp::Counters lmtp;
  std::vector<ListenerCounters> listeners;  // by listener index; never resized
  // Sampled on every tick (250 ms).
  std::array<Gauge, kConnStates> connections_by_state{};
  std::array<Counter, pop3::kEndReasons> session_ends{};  // by how they ended
  Counter connections_accepted;
  Counter connections_rejected;  // connections_max reached, or stopping
  Counter connections_closed;
  Counter accept_errors;
  Counter bytes_received;
  Counter bytes_sent;
  Counter recv_no_buffers;       // provided-buffer ring ran dry
  Counter linger_timeouts;       // peer kept sending after our FIN
  Counter kdf_rejected;          // KDF queue full
  Counter verify_cache_hits;
  Counter body_prefetches;         // read-ahead statements started (one per batch)
  Counter body_prefetch_hits;      // messages of them that a session then asked for
  Counter body_prefetch_wasted;    // ... dropped unused (the client went elsewhere)
  Counter lock_releases;
  Counter lock_release_failures;
  Counter lease_renewals;
  Counter lease_renewal_failures;
  Counter storage_completions;
  Counter loop_wakeups;
  Counter loop_completions;
  pop3::BatchHistogram completions_per_wakeup;
  pop3::BatchHistogram submit_batch;  // SQEs handed to the kernel per submit
  // PostgreSQL: submit to completion, by request kind; and for maildrop
  // opens the two halves: until the lock was taken, then the listing.
  std::array<pop3::DurationHistogram, storage::kRequestKinds> pg_seconds{};
  pop3::DurationHistogram lock_wait_seconds;
  pop3::DurationHistogram snapshot_seconds;
  // The PostgreSQL clients' own figures, by cluster (0 = the default);
  // never resized.
  std::vector<PgClusterCounters> pg_clusters;
  // TLS
  Counter tls_handshakes_tls12;
  Counter tls_handshakes_tls13;
  Counter tls_resumed;
  Counter tls_failures;
  Counter tls_handshake_timeouts;
  // PROXY protocol
  std::array<Counter, static_cast<size_t>(proxy::ProxyError::kCount)> proxy_errors{};
  Counter proxy_untrusted;       // a peer outside trusted_proxies
  Counter proxy_local;           // v2 LOCAL: health checks
  Counter proxy_timeouts;
  // Limits, one counter each
  Counter limit_connections_per_address;
  Counter limit_sessions_per_user;
  Counter limit_sessions_per_tenant;
  Counter limit_tenant_logins;
  Counter limit_table_full;
  Counter limit_address_cut_off;  // failures_per_address_max reached
  Counter bearer_failures;
  Counter uidl_set_changed;       // the UIDL-change detector fired
  std::atomic<uint64_t> connections_active{0};
};

class Shard {
 public:
  Shard(ShardOptions options, auth::KdfPool& kdf);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Runs the loop on the calling thread until stopped. Returns 0 after a
  // clean stop, or -errno when setup failed (then nothing ran).
  int run();

  // Thread-safe. Stop accepting; running sessions may go on for `drain`,
  // then they are told -ERR [SYS/TEMP] and closed without UPDATE.
  void request_stop(std::chrono::milliseconds drain) noexcept;
  // Thread-safe: new TLS connections use `context` (certificate reload);
  // running ones keep theirs.
  void set_tls_context(std::shared_ptr<const tls::TlsContext> context) noexcept;
  // Thread-safe: true once the loop is set up and accepting.
  [[nodiscard]] bool started() const noexcept { return started_.load(std::memory_order_acquire); }
  [[nodiscard]] const ShardCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] const TenantMetrics& tenant_metrics() const noexcept { return tenants_; }
  [[nodiscard]] uint32_t index() const noexcept { return opts_.index; }

 private:
  // Tags for storage requests that belong to the shard, not a connection.
  enum class ShardTag : uint32_t { kRelease = 1, kRenew = 2 };

  // shard.cc: setup, loop, accept, timers, stopping
  void arm_accept(uint8_t listener) noexcept;
  void arm_poll(net::Op op, int fd, uint32_t slot = 0) noexcept;
  void arm_tick() noexcept;
  void handle_cqe(const io_uring_cqe& cqe) noexcept;
  void handle_accept(uint8_t listener, const io_uring_cqe& cqe) noexcept;
  void handle_tick() noexcept;
  void handle_control() noexcept;
  [[nodiscard]] static ConnState conn_state(const Connection& c) noexcept;
  void publish_storage_stats() noexcept;
  void on_accepted(uint8_t listener, int fd) noexcept;
  void begin_stop() noexcept;
  void shutdown_sessions() noexcept;
  void check_stopped() noexcept;

  // shard_io.cc: bytes in and out, PROXY, TLS, closing
  void arm_recv(Connection& c) noexcept;
  void handle_recv(Connection& c, const io_uring_cqe& cqe) noexcept;
  void handle_send(Connection& c, const io_uring_cqe& cqe) noexcept;
  void pump(Connection& c) noexcept;
  bool feed_input(Connection& c) noexcept;
  bool feed_proxy(Connection& c) noexcept;
  bool feed_tls(Connection& c) noexcept;
  bool feed_plain(Connection& c) noexcept;
  bool feed_body(Connection& c) noexcept;

  // shard_prefetch.cc: read-ahead of message bodies
  void start_prefetch(Connection& c) noexcept;
  [[nodiscard]] bool claim_prefetch(Connection& c, const pop3::Request& r) noexcept;
  [[nodiscard]] bool prefetch_done(Connection& c, storage::Completion& done) noexcept;
  void take_prefetched(Connection& c) noexcept;
  void drop_prefetch(Connection& c) noexcept;
  void deliver_body(Connection& c, pop3::StoreStatus status, std::shared_ptr<pg_result> body,
                    std::string_view bytes) noexcept;
  bool tls_take_output(Connection& c) noexcept;
  void flush_output(Connection& c) noexcept;
  void start_connection(Connection& c) noexcept;
  void start_session(Connection& c, bool secure) noexcept;
  void start_tls(Connection& c) noexcept;
  void on_tls_handshake(Connection& c) noexcept;
  void tls_failed(Connection& c) noexcept;
  // The received bytes not consumed yet (c.in_buffer >= 0), and consuming them.
  [[nodiscard]] std::string_view received(const Connection& c) const noexcept;
  void advance_input(Connection& c, size_t used) noexcept;
  void recycle_input(Connection& c) noexcept;
  void release_send_block(Connection& c) noexcept;
  void begin_close(Connection& c) noexcept;
  void begin_linger(Connection& c) noexcept;
  void maybe_finish_close(Connection& c) noexcept;
  void finish_release(Connection& c) noexcept;
  void set_peer_text(Connection& c) noexcept;

  // shard_lmtp.cc: LMTP delivery connections
  void start_lmtp(Connection& c) noexcept;
  void pump_lmtp(Connection& c) noexcept;
  bool feed_lmtp(Connection& c) noexcept;
  void submit_lmtp_request(Connection& c, const lmtp::Request& r) noexcept;
  void dispatch_lmtp_completion(Connection& c, const storage::Completion& done) noexcept;
  void log_lmtp_end(const Connection& c) noexcept;

  // shard_store.cc: storage, KDF, auth steps, limits
  void submit_request(Connection& c, const pop3::Request& r) noexcept;
  void submit_auth_step(Connection& c, const pop3::Request& r) noexcept;
  void fetch_body(Connection& c, uint64_t tag, const pop3::Request& r) noexcept;
  bool drain_storage() noexcept;
  bool drain_kdf() noexcept;
  void dispatch_completion(storage::Completion& done) noexcept;
  void dispatch_shard_completion(const storage::Completion& done) noexcept;
  void observe_latency(const storage::Completion& done) noexcept;
  void deliver_user(Connection& c, const storage::UserRecord& user) noexcept;
  void on_auth_failure(Connection& c) noexcept;
  void release_limits(Connection& c) noexcept;
  void release_lock(Connection& c) noexcept;
  void kick_sessions(const std::vector<int64_t>& ids) noexcept;
  void end_lock_lost(const std::vector<int64_t>& ids) noexcept;
  template <class Act>
  void for_each_listed_session(const std::vector<int64_t>& ids, Act act) noexcept;
  [[nodiscard]] static bool uidls_changed(const storage::MaildropListing& listing,
                                          std::string_view previous) noexcept;
  // The UIDL-change check looks at this many of the newest messages at most.
  static constexpr size_t kUidlCheckMessagesMax = 10'000;
  void renew_leases() noexcept;
  // The client of the cluster a connection's user lives on (chosen at its
  // last lookup) and of a cluster by index.
  [[nodiscard]] storage::PgClient& pg(const Connection& c) noexcept { return *pgs_[c.cluster]; }
  [[nodiscard]] uint8_t cluster_of_login(std::string_view login) const noexcept {
    return opts_.routes ? opts_.routes->cluster_of_login(login, opts_.storage.default_domain) : 0;
  }
  [[nodiscard]] storage::LockHolder holder(const Connection& c) const noexcept;
  [[nodiscard]] static uint64_t tag_of(const Connection& c) noexcept;
  // Marks a read-ahead body fetch's tag (shard_prefetch.cc); bit 63 marks
  // the shard's own requests, bits 32-55 the slot, 0-31 its generation.
  static constexpr uint64_t kPrefetchTagBit = uint64_t{1} << 62;
  [[nodiscard]] static uint64_t shard_tag(ShardTag t) noexcept;
  [[nodiscard]] uint32_t threshold(const std::atomic<uint32_t> LimitThresholds::*field) const noexcept {
    return (thresholds_.*field).load(std::memory_order_relaxed);
  }

  struct ListenerState {
    ListenerOptions options;
    bool accept_armed = false;
    bool accept_paused = false;
    bool closed = false;
  };

  ShardOptions opts_;
  auth::KdfPool& kdf_;
  ShardCounters counters_;
  TenantMetrics tenants_;
  std::vector<ListenerState> listeners_;
  pop3::BufferPool out_pool_;  // session output blocks
  pop3::BufferPool tls_pool_;  // ciphertext send blocks
  std::vector<std::unique_ptr<proxy::ProxyParser>> proxy_pool_;
  std::shared_ptr<const tls::TlsContext> tls_;
  auth::VerifyCache verify_cache_;
  net::Ring ring_;
  net::BufferRing recv_buffers_;
  auth::KdfOutbox outbox_;
  std::vector<std::unique_ptr<storage::PgClient>> pgs_;  // by cluster; [0] the default
  ConnectionTable table_;
  int control_fd_ = -1;

  TimePoint now_;
  __kernel_timespec tick_ts_{};
  bool stopping_ = false;
  bool sessions_shut_ = false;
  bool done_ = false;
  TimePoint drain_deadline_;
  TimePoint hard_deadline_;
  TimePoint next_renewal_;
  uint32_t shard_requests_inflight_ = 0;
  int64_t next_session_id_ = 1;
  uint64_t apop_serial_ = 0;
  const LimitThresholds default_thresholds_;  // when opts_.limits.thresholds is null
  const LimitThresholds& thresholds_;

  // (slot, generation) of connections whose receive found no buffer.
  std::vector<std::pair<uint32_t, uint32_t>> starved_;
  std::vector<int64_t> renew_ids_;
  std::vector<int64_t> end_retrieved_;  // scratch for release_lock()
  std::string end_kept_;
  std::vector<auth::KdfResult> kdf_results_;
  storage::Completion completion_;
  // Plaintext peeked out of a TLS stream for the session (one per shard).
  std::array<char, 16 * 1024> tls_scratch_{};

  std::mutex control_mu_;  // guards the two fields below (other threads write)
  std::shared_ptr<const tls::TlsContext> pending_tls_;
  bool tls_pending_ = false;
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<int64_t> drain_ms_{0};
};

}  // namespace popgate::shard
