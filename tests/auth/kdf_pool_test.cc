#include "server/auth/kdf_pool.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

namespace popgate::auth {
namespace {

using namespace std::chrono_literals;

constexpr Argon2Params kFast{.memory_kib = 64, .passes = 1, .lanes = 1};
// ~100 ms or more per verification on a 2-core CI machine: long enough that
// no job finishes while a test fills the queue a few microseconds later.
constexpr Argon2Params kSlow{.memory_kib = 64 * 1024, .passes = 4, .lanes = 1};

bool readable(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

// Drains `outbox` until `want` results arrived or 30 s passed.
std::vector<KdfResult> collect(KdfOutbox& outbox, size_t want) {
  std::vector<KdfResult> all;
  std::vector<KdfResult> batch;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (all.size() < want && std::chrono::steady_clock::now() < deadline) {
    pollfd p{.fd = outbox.event_fd(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 100) != 1) continue;
    outbox.drain(batch);
    all.insert(all.end(), batch.begin(), batch.end());
  }
  return all;
}

TEST(KdfPool, ManyJobsCompleteWithTheirTagsAndResults) {
  const std::string stored = hash_password("right", kFast);
  KdfPool pool(4, 1000);
  KdfOutbox outbox;
  constexpr uint64_t kJobs = 200;
  for (uint64_t tag = 0; tag < kJobs; ++tag) {
    ASSERT_TRUE(pool.submit(outbox, tag, stored, tag % 3 == 0 ? "right" : "wrong"));
  }
  const auto results = collect(outbox, kJobs);
  ASSERT_EQ(results.size(), kJobs);
  std::map<uint64_t, VerifyResult> by_tag;
  for (const auto& r : results) EXPECT_TRUE(by_tag.emplace(r.tag, r.result).second) << r.tag;
  for (uint64_t tag = 0; tag < kJobs; ++tag) {
    EXPECT_EQ(by_tag.at(tag), tag % 3 == 0 ? VerifyResult::kMatch : VerifyResult::kMismatch);
  }
  EXPECT_EQ(pool.rejected_full(), 0u);
  EXPECT_EQ(pool.queued(), 0u);
}

TEST(KdfPool, ResultsGoToTheSubmittingOutbox) {
  const std::string stored = hash_password("pw", kFast);
  KdfPool pool(2, 100);
  KdfOutbox a;
  KdfOutbox b;
  ASSERT_TRUE(pool.submit(a, 1, stored, "pw"));
  ASSERT_TRUE(pool.submit(b, 2, stored, "no"));
  const auto from_a = collect(a, 1);
  const auto from_b = collect(b, 1);
  ASSERT_EQ(from_a.size(), 1u);
  ASSERT_EQ(from_b.size(), 1u);
  EXPECT_EQ(from_a[0].tag, 1u);
  EXPECT_EQ(from_a[0].result, VerifyResult::kMatch);
  EXPECT_EQ(from_b[0].tag, 2u);
  EXPECT_EQ(from_b[0].result, VerifyResult::kMismatch);
}

TEST(KdfPool, FullQueueRejectsAndCounts) {
  const std::string stored = hash_password("pw", kSlow);
  constexpr uint32_t kThreads = 1;
  constexpr uint32_t kQueueMax = 2;
  KdfPool pool(kThreads, kQueueMax);
  KdfOutbox outbox;
  // At most kThreads jobs are running and kQueueMax waiting; none of them can
  // finish within this loop, so the extra submissions must bounce.
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  for (uint64_t tag = 0; tag < kThreads + kQueueMax + 3; ++tag) {
    (pool.submit(outbox, tag, stored, "pw") ? accepted : rejected) += 1;
  }
  EXPECT_GE(accepted, kQueueMax);
  EXPECT_LE(accepted, kQueueMax + kThreads);
  EXPECT_GE(rejected, 3u);
  EXPECT_EQ(pool.rejected_full(), rejected);
  EXPECT_LE(pool.queued(), kQueueMax);
  // Rejected jobs post nothing; the accepted ones all arrive.
  const auto results = collect(outbox, accepted);
  ASSERT_EQ(results.size(), accepted);
  for (const auto& r : results) EXPECT_EQ(r.result, VerifyResult::kMatch);
  EXPECT_TRUE(pool.submit(outbox, 99, stored, "pw"));  // room again
  pool.detach(outbox);  // the outbox dies first: nothing may post to it after
}

TEST(KdfPool, DetachDropsQueuedJobsAndWaitsForRunningOnes) {
  KdfPool pool(1, 100);
  const std::string stored = hash_password("pw");
  auto outbox = std::make_unique<KdfOutbox>();
  for (uint64_t tag = 0; tag < 20; ++tag) ASSERT_TRUE(pool.submit(*outbox, tag, stored, "pw"));
  pool.detach(*outbox);
  EXPECT_EQ(pool.queued(), 0u);
  std::vector<KdfResult> got;
  outbox->drain(got);
  EXPECT_LT(got.size(), 20u);  // queued ones were dropped, not run
  outbox.reset();  // under ASan, a late post here would be a use-after-free
  // The pool still serves others.
  KdfOutbox other;
  ASSERT_TRUE(pool.submit(other, 7, stored, "pw"));
  EXPECT_EQ(collect(other, 1).size(), 1u);
}

TEST(KdfOutbox, EventFdReadableExactlyWhileResultsWait) {
  KdfOutbox outbox;
  std::vector<KdfResult> out{{7, VerifyResult::kMatch}};  // drain clears it
  EXPECT_FALSE(readable(outbox.event_fd()));
  outbox.drain(out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(readable(outbox.event_fd()));

  outbox.post({1, VerifyResult::kMatch});
  outbox.post({2, VerifyResult::kMalformed});
  EXPECT_TRUE(readable(outbox.event_fd()));
  outbox.drain(out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].tag, 1u);
  EXPECT_EQ(out[1].result, VerifyResult::kMalformed);
  EXPECT_FALSE(readable(outbox.event_fd()));
}

TEST(KdfOutbox, WorkerPostWakesThePoller) {
  const std::string stored = hash_password("pw", kFast);
  KdfPool pool(1, 10);
  KdfOutbox outbox;
  ASSERT_TRUE(pool.submit(outbox, 42, stored, "pw"));
  pollfd p{.fd = outbox.event_fd(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&p, 1, 10'000), 1);
  std::vector<KdfResult> out;
  outbox.drain(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tag, 42u);
  EXPECT_FALSE(readable(outbox.event_fd()));
}

TEST(KdfPool, DestructorDropsPendingJobs) {
  const std::string stored = hash_password("pw", kSlow);
  KdfOutbox outbox;
  {
    KdfPool pool(1, 100);
    for (uint64_t tag = 0; tag < 20; ++tag) ASSERT_TRUE(pool.submit(outbox, tag, stored, "pw"));
  }  // joins after at most the running job
  std::vector<KdfResult> out;
  outbox.drain(out);
  EXPECT_LE(out.size(), 1u);
}

}  // namespace
}  // namespace popgate::auth
