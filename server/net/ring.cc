#include "server/net/ring.h"

#include <cerrno>

namespace popgate::net {

Ring::~Ring() {
  if (ready_) io_uring_queue_exit(&ring_);
}

int Ring::init(unsigned entries) noexcept {
  // Completion queue sized for bursts: every connection may have a receive
  // and a send completing in one loop turn.
  const unsigned candidates[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_COOP_TASKRUN,
      0,
  };
  int rc = -EINVAL;
  for (unsigned extra : candidates) {
    io_uring_params params{};
    params.flags = extra | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &ring_, &params);
    if (rc == 0) {
      flags_ = params.flags;
      ready_ = true;
      return 0;
    }
    if (rc != -EINVAL) break;
  }
  return rc;
}

io_uring_sqe* Ring::sqe() noexcept {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s == nullptr) {
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

int Ring::submit_and_wait(unsigned wait_nr) noexcept {
  const int rc = io_uring_submit_and_wait(&ring_, wait_nr);
  return rc == -EINTR ? 0 : rc;
}

}  // namespace popgate::net
