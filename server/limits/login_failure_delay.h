// LoginFailureDelay: per-client (by default per-address) back-off after
// failed logins, shared by all shards. Each failure makes the answer to the
// next failure wait longer (2 s, 4 s, 8 s, then 15 s by default); a success
// forgets the client; so does a quiet spell of forget_after. The caller
// sleeps (a timer, never a blocking sleep) and may disconnect after N
// failures, using the count returned.
// Time comes in as `now`; nothing here reads a clock.
// Must not know: sockets, sessions, timers, what a login is.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "server/limits/keys.h"
#include "server/limits/striped_table.h"

namespace popgate::limits {

struct LoginFailureDelayOptions {
  // Clients remembered at once. Past it, the stalest are forgotten first.
  size_t capacity = 65'536;
  // Delay after the first failure; each further failure doubles it.
  std::chrono::milliseconds delay_initial{2'000};
  // Ceiling of the delay: well under the 30-60 s after which mail clients
  // commonly give up, so a slow answer is not taken for a dead server.
  std::chrono::milliseconds delay_max{15'000};
  // A client with no failure for this long starts again from nothing.
  std::chrono::milliseconds forget_after{10 * 60 * 1'000};
};

struct LoginFailureState {
  std::chrono::milliseconds delay{0};  // wait this long before answering
  uint32_t failures = 0;               // failures since the client was last forgotten
};

// Counters: hits = a call found the client remembered; refusals = failures
// recorded (each one delays an answer); table_full = failures that could not
// be remembered; evictions = clients forgotten early to make room.
template <typename Key>
class LoginFailureDelay {
 public:
  // Throws std::invalid_argument for a zero capacity, non-positive delays or
  // forget time, or delay_max < delay_initial (config errors, at startup).
  explicit LoginFailureDelay(const LoginFailureDelayOptions& options = {},
                             const KeyHasher& hasher = KeyHasher::random());

  // Records a failed login; returns the delay before answering it and the
  // failure count (1 for a client not remembered).
  [[nodiscard]] LoginFailureState record_failure(const Key& key, TimePoint now) noexcept;
  // A successful login: forget the client.
  void record_success(const Key& key) noexcept;
  // The delay given to the client's latest failure and the failure count;
  // zeroes when the client is not remembered (or forgotten by now).
  [[nodiscard]] LoginFailureState peek(const Key& key, TimePoint now) const noexcept;

  [[nodiscard]] size_t size() const noexcept { return table_.size(); }
  [[nodiscard]] LimitCounters counters() const noexcept { return table_.counters(); }
  [[nodiscard]] size_t memory_bytes() const noexcept { return table_.memory_bytes(); }
  [[nodiscard]] const LoginFailureDelayOptions& options() const noexcept { return options_; }
  [[nodiscard]] size_t stripe_entries_max() const noexcept { return table_.stripe_entries_max(); }
  [[nodiscard]] size_t stripe_of_for_test(const Key& key) const noexcept {
    return table_.stripe_of_for_test(key);
  }

 private:
  struct Entry {
    TimePoint last_failure{};
    uint32_t failures = 0;
  };

  [[nodiscard]] bool remembered(const Entry& entry, TimePoint now) const noexcept;
  [[nodiscard]] std::chrono::milliseconds delay_for(uint32_t failures) const noexcept;

  LoginFailureDelayOptions options_;
  // mutable: peek() locks a stripe, which is not a logical change.
  mutable StripedTable<Key, Entry> table_;
};

extern template class LoginFailureDelay<AddressKey>;
extern template class LoginFailureDelay<UserKey>;

}  // namespace popgate::limits
