#include "storage/pg_connector.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <system_error>

#include "storage/pg_errors.h"
#include "storage/pg_statements.h"

namespace popgate::storage {
namespace {

using SteadyClock = std::chrono::steady_clock;

// How often the server checks, while running a statement, whether we are
// still connected. When we abandon a stuck connection this lets the server
// notice and stop (releasing its locks) well before statement_timeout.
constexpr int kClientCheckIntervalMs = 1'000;

// Room for "SET statement_timeout = <int64 ms>".
constexpr std::size_t kSetCommandBytesMax = 64;

enum class Wait : uint8_t { kReady, kStop, kTimeout, kError };

// Waits until `sock` has `events` or `stop_fd` is readable or `deadline`.
Wait wait_socket(int sock, short events, int stop_fd, SteadyClock::time_point deadline) noexcept {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return Wait::kTimeout;
    pollfd fds[2] = {{sock, events, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::kError;
    }
    if (n == 0) continue;  // re-check the deadline
    if ((fds[1].revents & POLLIN) != 0) return Wait::kStop;
    return Wait::kReady;  // including POLLERR/POLLHUP: libpq reports those
  }
}

void ignore_notice(void* /*arg*/, const PGresult* /*res*/) noexcept {
  // Notices (e.g. from the server's own housekeeping) are not errors; libpq
  // would print them to stderr from the shard's thread otherwise.
}

struct Attempt {
  PGconn* conn;
  int stop_fd;
  SteadyClock::time_point deadline;
  std::string& error;

  bool fail(std::string_view what) noexcept {
    assign_error(error, what, conn != nullptr ? PQerrorMessage(conn) : "");
    return false;
  }
  // libpq's message would be stale here: the failure is ours, not its.
  bool fail_wait(Wait w) noexcept {
    const char* why = w == Wait::kStop      ? "shutting down"
                      : w == Wait::kTimeout ? "connect timeout"
                                            : "poll failed";
    assign_error(error, why, "");
    return false;
  }

  bool establish() noexcept {
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
      if (st == PGRES_POLLING_OK) return true;
      if (st == PGRES_POLLING_FAILED) return fail("");
      // The socket may change between calls (multiple hosts, SSL retry).
      const short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
      const Wait w = wait_socket(PQsocket(conn), events, stop_fd, deadline);
      if (w != Wait::kReady) return fail_wait(w);
      st = PQconnectPoll(conn);
    }
  }

  // Collects the results of the command just sent; true if all succeeded.
  bool finish_command() noexcept {
    for (;;) {
      const int f = PQflush(conn);
      if (f == 0) break;
      if (f < 0) return fail("");
      const Wait w = wait_socket(PQsocket(conn), POLLIN | POLLOUT, stop_fd, deadline);
      if (w != Wait::kReady) return fail_wait(w);
      if (PQconsumeInput(conn) == 0) return fail("");
    }
    bool ok = true;
    for (;;) {
      while (PQisBusy(conn) == 0) {
        PGresult* r = PQgetResult(conn);
        if (r == nullptr) return ok;
        const ExecStatusType st = PQresultStatus(r);
        if (ok && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
          assign_error(error, "setup failed: ", PQresultErrorMessage(r));
          ok = false;
        }
        PQclear(r);
      }
      const Wait w = wait_socket(PQsocket(conn), POLLIN, stop_fd, deadline);
      if (w != Wait::kReady) return fail_wait(w);
      if (PQconsumeInput(conn) == 0) return fail("");
    }
  }

  bool run_command(const char* sql) noexcept {
    if (PQsendQuery(conn, sql) == 0) return fail("");
    return finish_command();
  }

  bool prepare_all() noexcept {
    for (std::size_t i = 0; i < kStatementCount; ++i) {
      const StatementDef& s = statement_def(static_cast<StatementId>(i));
      if (PQsendPrepare(conn, s.name, s.sql, s.param_count, s.param_types.data()) == 0) {
        return fail("");
      }
      if (!finish_command()) return false;
    }
    return true;
  }
};

// Opens one connection ready for the data path, or returns nullptr with
// `error` set. Blocks this (connector) thread for at most connect_timeout.
PGconn* open_connection(const ConnectorSettings& s, int stop_fd, std::string& error) noexcept {
  const auto deadline = SteadyClock::now() + s.connect_timeout;
  // expand_dbname = 1: "dbname" carries the whole conninfo (keywords or URI);
  // the keywords after it override what the conninfo says.
  const char* const keys[] = {"dbname", "application_name", nullptr};
  const char* const values[] = {s.conninfo.c_str(), s.application_name.c_str(), nullptr};
  Attempt a{PQconnectStartParams(keys, values, 1), stop_fd, deadline, error};
  if (a.conn == nullptr) {
    assign_error(error, "out of memory", "");
    return nullptr;
  }
  bool ok = PQstatus(a.conn) != CONNECTION_BAD || a.fail("");
  ok = ok && a.establish();
  if (ok) {
    PQsetNoticeReceiver(a.conn, ignore_notice, nullptr);
    ok = PQsetnonblocking(a.conn, 1) == 0 || a.fail("");
  }
  if (ok) {
    char set_timeout[kSetCommandBytesMax];
    std::snprintf(set_timeout, sizeof set_timeout, "SET statement_timeout = %lld",
                  static_cast<long long>(s.statement_timeout.count()));
    ok = a.run_command(set_timeout);
  }
  if (ok) {
    // PostgreSQL 14+; an older server simply goes without it.
    char set_check[kSetCommandBytesMax];
    std::snprintf(set_check, sizeof set_check, "SET client_connection_check_interval = %d",
                  kClientCheckIntervalMs);
    if (!a.run_command(set_check)) {
      ok = PQstatus(a.conn) == CONNECTION_OK;
      if (ok) error.clear();
    }
  }
  // Row-level security (schema v6): this connection is never cross-tenant,
  // whatever the role's defaults or PGOPTIONS say; each request declares
  // its tenant itself (storage/pg_statements.cc).
  ok = ok && a.run_command("SET popgate.all_tenants = off");
  // Each prepared statement is planned once per connection. In the default
  // mode PostgreSQL re-plans a statement on every execution when it judges
  // a custom plan cheaper than the generic one, and planning costs more
  // than running these single-user lookups: one statement re-planned that
  // way cost 0.3 ms of PostgreSQL's CPU per login (bench/RESULTS.md). Every
  // statement here reads through an index by key whatever its parameters
  // (tests/storage/pg_generic_plans_test.cc shows their generic plans).
  ok = ok && a.run_command("SET plan_cache_mode = force_generic_plan");
  ok = ok && a.prepare_all();
  ok = ok && (PQenterPipelineMode(a.conn) == 1 || a.fail("pipeline mode: "));
  if (!ok) {
    PQfinish(a.conn);
    return nullptr;
  }
  return a.conn;
}

int make_eventfd() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  return fd;
}

void signal_eventfd(int fd) noexcept {
  const uint64_t one = 1;
  // EAGAIN only when the counter would overflow: it is signalled already.
  while (::write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

}  // namespace

PgConnector::PgConnector(ConnectorSettings settings, std::size_t slots)
    : settings_(std::move(settings)) {
  pending_.reserve(slots);
  finished_.reserve(slots);
  ready_fd_ = make_eventfd();
  try {
    stop_fd_ = make_eventfd();
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    ::close(ready_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    throw;
  }
}

PgConnector::~PgConnector() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  signal_eventfd(stop_fd_);
  thread_.join();
  for (ConnectOutcome& o : finished_) {
    if (o.conn != nullptr) PQfinish(o.conn);
  }
  ::close(stop_fd_);
  ::close(ready_fd_);
}

void PgConnector::request(uint32_t slot) noexcept {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(slot);  // within the reserve: one per slot
  }
  wake_.notify_one();
}

void PgConnector::take(std::vector<ConnectOutcome>& out) noexcept {
  uint64_t count = 0;
  while (::read(ready_fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  std::lock_guard lock(mu_);
  for (ConnectOutcome& o : finished_) out.push_back(std::move(o));
  finished_.clear();
}

void PgConnector::run() noexcept {
  std::string error;
  for (;;) {
    uint32_t slot = 0;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;
      slot = pending_.front();
      pending_.erase(pending_.begin());
    }
    error.clear();
    PGconn* conn = open_connection(settings_, stop_fd_, error);
    {
      std::lock_guard lock(mu_);
      // Kept even while stopping: the destructor closes it.
      finished_.push_back(ConnectOutcome{slot, conn, conn != nullptr ? std::string() : error});
    }
    signal_eventfd(ready_fd_);
  }
}

}  // namespace popgate::storage
