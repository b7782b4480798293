// Shard: one thread, one io_uring, one listener (SO_REUSEPORT), its own
// connection table, database connections, KDF outbox, buffer pools and
// counters. Shares nothing with other shards; a connection stays on the
// shard that accepted it.
//
// It drives each connection's pop3::Session: socket bytes in, replies out,
// store requests to the PgClient or the KdfPool, their replies back. It
// never blocks: sockets, the database and the KDF workers all report
// through the ring.
//
// Must not know: configuration files, metrics export, signals (ops/ and
// main own those).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/auth/kdf_pool.h"
#include "server/net/buffer_ring.h"
#include "server/net/ring.h"
#include "server/pop3/counters.h"
#include "server/pop3/session.h"
#include "server/shard/connection.h"
#include "storage/pg_client.h"

namespace popgate::shard {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct ShardOptions {
  uint32_t index = 0;
  int listener_fd = -1;          // owned by the shard from construction
  std::string listener_name = "pop3";
  pop3::SessionConfig session;
  uint32_t output_buffer_bytes = 16 * 1024;  // one block per busy session
  uint32_t connections_max = 65536;          // per shard
  uint32_t ring_entries = 4096;
  uint32_t recv_buffers = 1024;              // power of two
  uint32_t recv_buffer_bytes = 4096;
  storage::PgClientOptions storage;
  std::string instance_id;                   // lock holder identity of this process
  std::chrono::milliseconds tick{250};       // timer resolution
  std::chrono::milliseconds stop_grace{15'000};  // after the drain deadline
  // After the last reply of a graceful close, how long the peer may keep
  // sending before the socket is closed anyway.
  std::chrono::milliseconds linger{2'000};
};

using pop3::Counter;

// Shard-level counters (the protocol's are in pop3). Single writer.
struct ShardCounters {
  pop3::Counters pop3;
  Counter connections_accepted;
  Counter connections_rejected;  // connections_max reached, or stopping
  Counter connections_closed;
  Counter accept_errors;
  Counter bytes_received;
  Counter bytes_sent;
  Counter recv_no_buffers;       // provided-buffer ring ran dry
  Counter linger_timeouts;       // peer kept sending after our FIN
  Counter kdf_rejected;          // KDF queue full
  Counter lock_releases;
  Counter lock_release_failures;
  Counter lease_renewals;
  Counter lease_renewal_failures;
  Counter storage_completions;
  Counter loop_wakeups;
  Counter loop_completions;
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
  // Thread-safe: true once the loop is set up and accepting.
  [[nodiscard]] bool started() const noexcept { return started_.load(std::memory_order_acquire); }
  [[nodiscard]] const ShardCounters& counters() const noexcept { return counters_; }

 private:
  // Tags for storage requests that belong to the shard, not a connection.
  enum class ShardTag : uint32_t { kRelease = 1, kRenew = 2 };

  // shard.cc: loop, accept, socket I/O, timers, stop
  void arm_accept() noexcept;
  void arm_poll(net::Op op, int fd) noexcept;
  void arm_tick() noexcept;
  void arm_recv(Connection& c) noexcept;
  void submit_send(Connection& c) noexcept;
  void handle_cqe(const io_uring_cqe& cqe) noexcept;
  void handle_accept(const io_uring_cqe& cqe) noexcept;
  void handle_recv(Connection& c, const io_uring_cqe& cqe) noexcept;
  void handle_send(Connection& c, const io_uring_cqe& cqe) noexcept;
  void handle_tick() noexcept;
  void handle_control() noexcept;
  void on_accepted(int fd) noexcept;
  void pump(Connection& c) noexcept;
  void feed_input(Connection& c) noexcept;
  void feed_body(Connection& c) noexcept;
  void begin_close(Connection& c) noexcept;
  void begin_linger(Connection& c) noexcept;
  void maybe_finish_close(Connection& c) noexcept;
  void recycle_input(Connection& c) noexcept;
  void begin_stop() noexcept;
  void shutdown_sessions() noexcept;
  void check_stopped() noexcept;

  // shard_store.cc: storage and KDF requests and replies
  void submit_request(Connection& c, const pop3::Request& r) noexcept;
  bool drain_storage() noexcept;
  bool drain_kdf() noexcept;
  void dispatch_completion(storage::Completion& done) noexcept;
  void dispatch_shard_completion(const storage::Completion& done) noexcept;
  void release_lock(Connection& c) noexcept;
  void renew_leases() noexcept;
  [[nodiscard]] storage::LockHolder holder(const Connection& c) const noexcept;
  [[nodiscard]] static uint64_t tag_of(const Connection& c) noexcept;
  [[nodiscard]] static uint64_t shard_tag(ShardTag t) noexcept;

  ShardOptions opts_;
  auth::KdfPool& kdf_;
  ShardCounters counters_;
  pop3::BufferPool out_pool_;
  net::Ring ring_;
  net::BufferRing recv_buffers_;
  auth::KdfOutbox outbox_;
  std::unique_ptr<storage::PgClient> pg_;
  ConnectionTable table_;
  int control_fd_ = -1;

  TimePoint now_;
  __kernel_timespec tick_ts_{};
  bool accept_armed_ = false;
  bool accept_paused_ = false;
  bool listener_closed_ = false;
  bool stopping_ = false;
  bool sessions_shut_ = false;
  bool done_ = false;
  TimePoint drain_deadline_;
  TimePoint hard_deadline_;
  TimePoint next_renewal_;
  uint32_t shard_requests_inflight_ = 0;
  int64_t next_session_id_ = 1;

  // (slot, generation) of connections whose receive found no buffer.
  std::vector<std::pair<uint32_t, uint32_t>> starved_;
  std::vector<int64_t> renew_ids_;
  std::vector<auth::KdfResult> kdf_results_;
  storage::Completion completion_;

  std::atomic<bool> started_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<int64_t> drain_ms_{0};
};

}  // namespace popgate::shard
