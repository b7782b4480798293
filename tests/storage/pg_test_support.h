// Support for storage tests against a real PostgreSQL: where the DSN comes
// from, a plain synchronous libpq connection for arranging data, fresh
// tenants with unique random domains (so tests are independent and can run
// in parallel against one database), and a loop that drives a PgClient the
// way a shard does until the expected completions arrive.
//
// The schema must already exist (the testpg fixture applies it); nothing
// here creates or drops schema objects.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/pg_client.h"

namespace popgate::storage::test_support {

// Every wait in these tests is bounded by this, so a bug fails the test
// instead of hanging it.
inline constexpr std::chrono::milliseconds kWaitBound{30'000};

// The DSN read from the file named by POPGATE_TEST_DSN_FILE. Empty, with
// `why` set, when the variable or the file is missing.
[[nodiscard]] std::string test_dsn(std::string& why);

// Random lowercase hex, for unique names.
[[nodiscard]] std::string random_hex(std::size_t chars);

class TestDb {
 public:
  explicit TestDb(const std::string& dsn);
  ~TestDb();
  TestDb(const TestDb&) = delete;
  TestDb& operator=(const TestDb&) = delete;

  [[nodiscard]] bool ok() const;
  [[nodiscard]] std::string error() const;
  [[nodiscard]] PGconn* raw() const { return conn_; }

  // Runs `sql` with text parameters, except those whose index is listed in
  // `binary` (sent as raw bytes, e.g. a bytea body). Records a test failure
  // and returns nullptr when the statement fails.
  ResultHandle exec(std::string_view sql, const std::vector<std::string>& params = {},
                    const std::vector<int>& binary = {});
  // The first column of the first row as an integer / text.
  int64_t scalar_int(std::string_view sql, const std::vector<std::string>& params = {});
  std::string scalar_text(std::string_view sql, const std::vector<std::string>& params = {});

 private:
  PGconn* conn_ = nullptr;
};

struct Tenant {
  int64_t tenant_id = 0;
  std::string domain;  // "t<random>.test", lowercase
};

Tenant create_tenant(TestDb& db);
int64_t create_user(TestDb& db, int64_t tenant_id, std::string_view local_part,
                    std::string_view password_hash = "{PLAIN}secret", bool enabled = true);
int64_t add_message(TestDb& db, int64_t tenant_id, int64_t user_id, std::string_view uidl,
                    std::string_view body);
// Inserts a lock row as if held by (instance, session) until now + lease_ms
// (negative: already expired).
void add_lock(TestDb& db, int64_t tenant_id, int64_t user_id, std::string_view instance,
              int64_t session, int64_t lease_ms);

// Drives a PgClient like a shard: poll event_fd(), handle_events(),
// handle_tick(), drain poll_completion().
class ClientDriver {
 public:
  explicit ClientDriver(PgClient& client) : client_(client) {}

  // Collects completions until `count` have arrived or `bound` passes (then
  // records a test failure). Returns them in completion order.
  std::vector<Completion> wait(std::size_t count, std::chrono::milliseconds bound = kWaitBound);
  // One completion; status kPermanent with error "no completion" if none.
  Completion wait_one(std::chrono::milliseconds bound = kWaitBound);
  // Keeps the client running for `period`; returns what completed meanwhile.
  std::vector<Completion> run_for(std::chrono::milliseconds period);
  // Runs until stats().connections_up reaches `up`; false after `bound`.
  bool wait_connections(uint32_t up, std::chrono::milliseconds bound = kWaitBound);

 private:
  void step(std::chrono::milliseconds poll_wait);
  PgClient& client_;
};

}  // namespace popgate::storage::test_support
