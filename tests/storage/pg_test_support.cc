#include "pg_test_support.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace popgate::storage::test_support {
namespace {

// How long one driver step sleeps in poll() when nothing is ready.
constexpr std::chrono::milliseconds kPollStep{10};

}  // namespace

std::string test_dsn(std::string& why) {
  const char* file = std::getenv("POPGATE_TEST_DSN_FILE");
  if (file == nullptr || *file == '\0') {
    why = "POPGATE_TEST_DSN_FILE is not set (run through ctest, which starts the testpg "
          "fixture, or point it at a file holding a libpq DSN)";
    return "";
  }
  std::ifstream in(file);
  std::string dsn;
  std::getline(in, dsn);
  if (dsn.empty()) {
    why = std::string("no DSN in ") + file;
    return "";
  }
  return dsn;
}

std::string random_hex(std::size_t chars) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(chars, '0');
  for (char& c : s) c = kDigits[rng() % 16];
  return s;
}

// The tests' own reads and writes are an operator's: cross-tenant under
// row-level security (schema v6). The PgClient under test connects itself
// and turns this off.
TestDb::TestDb(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
  if (PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, "SET popgate.all_tenants = on"));
}

TestDb::~TestDb() {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool TestDb::ok() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

std::string TestDb::error() const { return conn_ != nullptr ? PQerrorMessage(conn_) : "no memory"; }

ResultHandle TestDb::exec(std::string_view sql, const std::vector<std::string>& params,
                          const std::vector<int>& binary) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (std::size_t i = 0; i < params.size(); ++i) {
    values.push_back(params[i].c_str());
    lengths.push_back(static_cast<int>(params[i].size()));
    bool is_binary = false;
    for (const int b : binary) is_binary = is_binary || b == static_cast<int>(i);
    formats.push_back(is_binary ? 1 : 0);
  }
  const std::string query(sql);
  ResultHandle res(PQexecParams(conn_, query.c_str(), static_cast<int>(params.size()), nullptr,
                                values.data(), lengths.data(), formats.data(), 0));
  const ExecStatusType st = PQresultStatus(res.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    ADD_FAILURE() << "SQL failed: " << PQresultErrorMessage(res.get()) << "  in: " << query;
    return nullptr;
  }
  return res;
}

int64_t TestDb::scalar_int(std::string_view sql, const std::vector<std::string>& params) {
  const ResultHandle r = exec(sql, params);
  if (r == nullptr || PQntuples(r.get()) < 1) {
    ADD_FAILURE() << "no row from: " << sql;
    return -1;
  }
  return std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
}

std::string TestDb::scalar_text(std::string_view sql, const std::vector<std::string>& params) {
  const ResultHandle r = exec(sql, params);
  if (r == nullptr || PQntuples(r.get()) < 1) {
    ADD_FAILURE() << "no row from: " << sql;
    return "";
  }
  return PQgetvalue(r.get(), 0, 0);
}

Tenant create_tenant(TestDb& db) {
  Tenant t;
  t.domain = "t" + random_hex(16) + ".test";
  t.tenant_id = db.scalar_int(
      "INSERT INTO popgate.tenants (domain) VALUES ($1) RETURNING tenant_id", {t.domain});
  return t;
}

int64_t create_user(TestDb& db, int64_t tenant_id, std::string_view local_part,
                    std::string_view password_hash, bool enabled) {
  return db.scalar_int(
      "INSERT INTO popgate.users (tenant_id, local_part, password_hash, enabled)"
      " VALUES ($1, $2, $3, $4) RETURNING user_id",
      {std::to_string(tenant_id), std::string(local_part), std::string(password_hash),
       enabled ? "true" : "false"});
}

int64_t add_message(TestDb& db, int64_t tenant_id, int64_t user_id, std::string_view uidl,
                    std::string_view body) {
  const ResultHandle r = db.exec(
      "INSERT INTO popgate.messages (tenant_id, user_id, uidl, size_bytes, body)"
      " VALUES ($1, $2, $3, $4, $5) RETURNING message_id",
      {std::to_string(tenant_id), std::to_string(user_id), std::string(uidl),
       std::to_string(body.size()), std::string(body)},
      {4});
  if (r == nullptr) return -1;
  return std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
}

void add_lock(TestDb& db, int64_t tenant_id, int64_t user_id, std::string_view instance,
              int64_t session, int64_t lease_ms) {
  db.exec(
      "INSERT INTO popgate.maildrop_locks (tenant_id, user_id, holder_instance, holder_session,"
      " lease_expires_at) VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')",
      {std::to_string(tenant_id), std::to_string(user_id), std::string(instance),
       std::to_string(session), std::to_string(lease_ms)});
}

void ClientDriver::step(std::chrono::milliseconds poll_wait) {
  pollfd p{client_.event_fd(), POLLIN, 0};
  (void)::poll(&p, 1, static_cast<int>(poll_wait.count()));
  const TimePoint now = Clock::now();
  client_.handle_events(now);
  client_.handle_tick(now);
}

std::vector<Completion> ClientDriver::wait(std::size_t count, std::chrono::milliseconds bound) {
  std::vector<Completion> got;
  got.reserve(count);
  const TimePoint until = Clock::now() + bound;
  Completion c;
  for (;;) {
    while (got.size() < count && client_.poll_completion(c)) got.push_back(std::move(c));
    if (got.size() >= count) return got;
    if (Clock::now() >= until) {
      ADD_FAILURE() << "timed out waiting for " << count << " completions; got " << got.size();
      return got;
    }
    step(kPollStep);
  }
}

Completion ClientDriver::wait_one(std::chrono::milliseconds bound) {
  std::vector<Completion> got = wait(1, bound);
  if (got.empty()) {
    Completion none;
    none.status = Status::kPermanent;
    none.error = "no completion";
    return none;
  }
  return std::move(got.front());
}

std::vector<Completion> ClientDriver::run_for(std::chrono::milliseconds period) {
  std::vector<Completion> got;
  const TimePoint until = Clock::now() + period;
  Completion c;
  while (Clock::now() < until) {
    step(kPollStep);
    while (client_.poll_completion(c)) got.push_back(std::move(c));
  }
  return got;
}

bool ClientDriver::wait_connections(uint32_t up, std::chrono::milliseconds bound) {
  const TimePoint until = Clock::now() + bound;
  while (client_.stats().connections_up < up) {
    if (Clock::now() >= until) return false;
    step(kPollStep);
  }
  return true;
}

}  // namespace popgate::storage::test_support
