// Once warm, serving fetch_body and lookup_user requests must not touch the
// C++ allocator on the caller's thread (STYLE: hot path without allocation).
// libpq's own buffers (malloc) are outside this count; so are strings the
// API hands out, which is why the password hash here fits std::string's
// inline buffer.
#include <gtest/gtest.h>
#include <poll.h>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "pg_test_support.h"
#include "storage/pg_client.h"

namespace {

thread_local bool t_counting = false;
thread_local uint64_t t_allocations = 0;

void* counted_alloc(std::size_t n) {
  if (t_counting) ++t_allocations;
  if (void* p = std::malloc(n != 0 ? n : 1)) return p;
  throw std::bad_alloc();
}

}  // namespace

// GCC flags free() inside a replacement operator delete as mismatched (at
// -O1 with the sanitizers); here new and delete are replaced together, both
// on malloc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace popgate::storage {
namespace {

using namespace std::chrono_literals;

// Requests per round; more than the pre-allocated pool, so warm-up grows it.
constexpr int kBatch = 100;
constexpr int kWarmupRounds = 3;
constexpr int kMeasuredRounds = 5;

struct Round {
  int completed = 0;
  int wrong = 0;
};

// Submits a batch and pumps the client until it completes, allocating
// nothing itself.
Round run_round(PgClient& client, Completion& c, const std::string& login, int64_t tenant, int64_t user,
                int64_t message) {
  const TimePoint start = Clock::now();
  for (int i = 0; i < kBatch; ++i) {
    if (i % 2 == 0) {
      client.lookup_user(static_cast<uint64_t>(i), login, start);
    } else {
      client.fetch_body(static_cast<uint64_t>(i), tenant, user, message, 2, 5, start);
    }
  }
  Round r;
  const TimePoint until = start + test_support::kWaitBound;
  while (r.completed < kBatch && Clock::now() < until) {
    pollfd p{client.event_fd(), POLLIN, 0};
    (void)::poll(&p, 1, 10);
    const TimePoint now = Clock::now();
    client.handle_events(now);
    client.handle_tick(now);
    while (client.poll_completion(c)) {
      ++r.completed;
      const bool ok = c.status == Status::kOk &&
                      (c.kind == RequestKind::kLookupUser ? c.user.user_id == user
                                                          : c.body_bytes == "23456");
      if (!ok) ++r.wrong;
    }
  }
  return r;
}

TEST(PgClientAllocation, SteadyStateServesWithoutAllocating) {
  std::string why;
  const std::string dsn = test_support::test_dsn(why);
  if (dsn.empty()) GTEST_SKIP() << why;
  test_support::TestDb db(dsn);
  ASSERT_TRUE(db.ok()) << db.error();
  const test_support::Tenant t = test_support::create_tenant(db);
  const int64_t user = test_support::create_user(db, t.tenant_id, "alloc", "{PLAIN}x");
  const int64_t message = test_support::add_message(db, t.tenant_id, user, "a", "0123456789");
  const std::string login = "alloc@" + t.domain;

  PgClientOptions o;
  o.conninfo = dsn;
  o.application_name = "popgate-test-alloc";
  PgClient client(o);
  // Like a shard: one Completion reused for the client's whole life, so
  // poll_completion's swap recycles its buffers.
  Completion c;
  ASSERT_TRUE(test_support::ClientDriver(client).wait_connections(o.connections));
  for (int i = 0; i < kWarmupRounds; ++i) {
    const Round r = run_round(client, c, login, t.tenant_id, user, message);
    ASSERT_EQ(r.completed, kBatch);
    ASSERT_EQ(r.wrong, 0);
  }

  t_allocations = 0;
  t_counting = true;
  Round total;
  for (int i = 0; i < kMeasuredRounds; ++i) {
    const Round r = run_round(client, c, login, t.tenant_id, user, message);
    total.completed += r.completed;
    total.wrong += r.wrong;
  }
  t_counting = false;
  EXPECT_EQ(total.completed, kBatch * kMeasuredRounds);
  EXPECT_EQ(total.wrong, 0);
  EXPECT_EQ(t_allocations, 0U);
}

}  // namespace
}  // namespace popgate::storage
