// KdfPool and KdfOutbox: a mutex-and-condition-variable job queue in front
// of verify_password, and a mutex-guarded result vector behind an eventfd.
#include "server/auth/kdf_pool.h"

#include <openssl/crypto.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace popgate::auth {
namespace {

// One more than libstdc++'s short-string capacity: a password copy made with
// at least this capacity lives on the heap, so moving the Job out of the
// queue hands the buffer over instead of leaving a second copy behind.
constexpr size_t kPasswordHeapCapacity = 16;

void wipe(std::string& secret) noexcept {
  OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace

KdfOutbox::KdfOutbox() : event_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (event_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "KdfOutbox: eventfd");
  }
}

KdfOutbox::~KdfOutbox() { ::close(event_fd_); }

// The eventfd is written and read under mu_, so it is readable exactly when
// ready_ is non-empty: no lost wake-ups and no spurious ones.
void KdfOutbox::post(KdfResult result) noexcept {
  std::lock_guard lock(mu_);
  ready_.push_back(result);
  const uint64_t one = 1;
  // Fails only when the counter would overflow, which cannot happen here.
  [[maybe_unused]] const ssize_t n = ::write(event_fd_, &one, sizeof one);
}

void KdfOutbox::drain(std::vector<KdfResult>& out) noexcept {
  out.clear();
  std::lock_guard lock(mu_);
  out.swap(ready_);  // ready_ keeps out's old capacity: no allocation churn
  uint64_t count = 0;
  // EAGAIN when nothing was posted; either way the counter is now zero.
  [[maybe_unused]] const ssize_t n = ::read(event_fd_, &count, sizeof count);
}

KdfPool::KdfPool(uint32_t threads, uint32_t queue_max) : queue_max_(queue_max) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads_.reserve(threads);
  working_for_.reserve(threads);
  for (uint32_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

KdfPool::~KdfPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  for (auto& job : jobs_) wipe(job.password);
}

bool KdfPool::submit(KdfOutbox& outbox, uint64_t tag, std::string_view stored_hash,
                     std::string_view password) noexcept {
  std::string secret;
  secret.reserve(std::max(password.size(), kPasswordHeapCapacity));
  secret.assign(password);
  {
    std::lock_guard lock(mu_);
    if (jobs_.size() < queue_max_) {
      jobs_.push_back(Job{&outbox, tag, std::string(stored_hash), std::move(secret)});
      cv_.notify_one();
      return true;
    }
  }
  wipe(secret);
  rejected_full_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

uint32_t KdfPool::queued() const noexcept {
  std::lock_guard lock(mu_);
  return uint32_t(jobs_.size());
}

void KdfPool::detach(KdfOutbox& outbox) noexcept {
  std::unique_lock lock(mu_);
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (it->outbox == &outbox) {
      wipe(it->password);
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  idle_cv_.wait(lock, [&] {
    return std::find(working_for_.begin(), working_for_.end(), &outbox) == working_for_.end();
  });
}

void KdfPool::run() noexcept {
  for (;;) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    working_for_.push_back(job.outbox);
    lock.unlock();
    const VerifyResult result = verify_password(job.hash, job.password);
    wipe(job.password);
    // Posted before the worker stops counting as busy for this outbox, so
    // detach() returning means no post can still come.
    job.outbox->post(KdfResult{job.tag, result});
    lock.lock();
    working_for_.erase(std::find(working_for_.begin(), working_for_.end(), job.outbox));
    lock.unlock();
    idle_cv_.notify_all();
  }
}

}  // namespace popgate::auth
