// KdfPool: worker threads that verify passwords off the shard threads.
//
// A shard submits (tag, stored hash, password) and goes on; a worker runs the
// KDF and posts the result back to the submitting shard's Outbox, which wakes
// the shard through an eventfd that its ring polls. The queue is bounded:
// when it is full, submit() fails at once and the caller answers
// -ERR [SYS/TEMP] instead of queueing unbounded work.
//
// Must not know: sessions, storage, rings.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "server/auth/password.h"

namespace popgate::auth {

struct KdfResult {
  uint64_t tag = 0;
  VerifyResult result = VerifyResult::kMismatch;
};

// Where finished jobs go: one per shard, single consumer (the shard).
// event_fd() becomes readable when results are waiting.
class KdfOutbox {
 public:
  KdfOutbox();
  ~KdfOutbox();
  KdfOutbox(const KdfOutbox&) = delete;
  KdfOutbox& operator=(const KdfOutbox&) = delete;

  [[nodiscard]] int event_fd() const noexcept { return event_fd_; }
  // Consumer side: moves every waiting result into `out` (cleared first) and
  // resets the eventfd. Never blocks for longer than a short critical section.
  void drain(std::vector<KdfResult>& out) noexcept;
  // Producer side (workers).
  void post(KdfResult result) noexcept;

 private:
  int event_fd_ = -1;
  std::mutex mu_;
  std::vector<KdfResult> ready_;
};

class KdfPool {
 public:
  // threads == 0 means one per online CPU.
  KdfPool(uint32_t threads, uint32_t queue_max);
  ~KdfPool();  // joins workers; pending jobs are dropped
  KdfPool(const KdfPool&) = delete;
  KdfPool& operator=(const KdfPool&) = delete;

  // Copies hash and password (the password copy is wiped after use). Returns
  // false when the queue is full; nothing is posted then.
  [[nodiscard]] bool submit(KdfOutbox& outbox, uint64_t tag,
                            std::string_view stored_hash,
                            std::string_view password) noexcept;

  // Forgets `outbox`: drops its queued jobs and waits until no worker is
  // still verifying for it. Call before an outbox is destroyed (a shard
  // going away with a login in flight); afterwards nothing posts to it.
  void detach(KdfOutbox& outbox) noexcept;

  [[nodiscard]] uint64_t rejected_full() const noexcept {
    return rejected_full_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] uint32_t queued() const noexcept;

 private:
  struct Job {
    KdfOutbox* outbox;
    uint64_t tag;
    std::string hash;
    std::string password;
  };
  void run() noexcept;

  const uint32_t queue_max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;  // a worker finished a job
  std::deque<Job> jobs_;
  std::vector<KdfOutbox*> working_for_;  // outbox of each running job
  bool stopping_ = false;
  std::atomic<uint64_t> rejected_full_{0};
  std::vector<std::thread> threads_;
};

}  // namespace popgate::auth
