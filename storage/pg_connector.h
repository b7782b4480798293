// PgConnector: the one thread per PgClient that opens PostgreSQL
// connections, so that DNS lookups, TCP connects, TLS and SCRAM never block
// a shard. The owner asks for a connection for a slot; the thread connects,
// prepares the session (statement_timeout, prepared statements, non-blocking,
// pipeline mode) and hands the PGconn back through a mutex-protected list,
// signalling ready_fd(), an eventfd the owner keeps in its epoll set.
//
// Every attempt is bounded by connect_timeout (connect, authentication and
// setup together) and is cut short when the connector is destroyed.
// Must not know: requests, queues, epoll.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct pg_conn;  // libpq's PGconn

namespace popgate::storage {

struct ConnectorSettings {
  std::string conninfo;
  std::string application_name;
  std::chrono::milliseconds connect_timeout{5'000};
  // Server-side statement_timeout (see PgClient's choice of value).
  std::chrono::milliseconds statement_timeout{9'000};
};

struct ConnectOutcome {
  uint32_t slot = 0;
  // Set on success: ready for PQsendQueryPrepared in pipeline mode. The
  // receiver owns it and must PQfinish it.
  pg_conn* conn = nullptr;
  std::string error;  // on failure: first line of libpq's message
};

class PgConnector {
 public:
  // Starts the thread. Throws std::system_error if the eventfds or the
  // thread cannot be created (startup only). `slots` bounds the requests
  // outstanding at once (one per slot), so request() never allocates.
  PgConnector(ConnectorSettings settings, std::size_t slots);
  // Stops the thread (interrupting an attempt in progress, except a DNS
  // lookup), joins it and closes connections never taken.
  ~PgConnector();
  PgConnector(const PgConnector&) = delete;
  PgConnector& operator=(const PgConnector&) = delete;

  // Readable (eventfd) when outcomes are waiting in take().
  [[nodiscard]] int ready_fd() const noexcept { return ready_fd_; }
  // Asks for one connection for `slot`. At most one outstanding per slot.
  void request(uint32_t slot) noexcept;
  // Appends every finished outcome to `out` and clears ready_fd().
  void take(std::vector<ConnectOutcome>& out) noexcept;

 private:
  void run() noexcept;

  const ConnectorSettings settings_;
  int ready_fd_ = -1;  // written by the thread, read by the owner
  int stop_fd_ = -1;   // written by the destructor, wakes poll() in attempts

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                // guarded by mu_
  std::vector<uint32_t> pending_;        // guarded by mu_; slots to connect
  std::vector<ConnectOutcome> finished_;  // guarded by mu_

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace popgate::storage
