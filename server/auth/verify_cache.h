// VerifyCache: recent successful password verifications, so that a client
// logging in every minute with the same password does not cost a KDF run
// (argon2id: tens of milliseconds of a worker) each time.
//
// One per shard, single-threaded, fixed size: all memory is allocated in
// the constructor; hit() and insert() never allocate (OpenSSL may, for the
// HMAC context). An entry is the key
//   HMAC-SHA256(random per-cache key, stored_hash || 0x00 || password)
// so no password and no hash is kept, and a changed password (a new stored
// hash) misses at once. Entries live for `ttl` after insert() (a hit does
// not extend them); when full, the least recently used entry goes.
//
// The shard asks hit() before submitting to the KdfPool, and calls insert()
// after a kMatch. Only successes are cached: a wrong password always costs
// a full verification.
// Must not know: sessions, users, storage.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace popgate::auth {

class VerifyCache {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  static constexpr size_t kCapacityMax = 1U << 24;

  // capacity 0 disables the cache (every hit() misses). Throws
  // std::invalid_argument above kCapacityMax, std::runtime_error when no
  // randomness is available for the key.
  VerifyCache(size_t capacity, Clock::duration ttl);
  ~VerifyCache();  // wipes the key
  VerifyCache(const VerifyCache&) = delete;
  VerifyCache& operator=(const VerifyCache&) = delete;

  // True when this (stored hash, password) verified successfully less than
  // ttl ago. An expired entry is dropped.
  [[nodiscard]] bool hit(std::string_view stored_hash, std::string_view password,
                         TimePoint now) noexcept;
  // Records a successful verification (again: restarts its ttl).
  void insert(std::string_view stored_hash, std::string_view password, TimePoint now) noexcept;
  // Forgets everything (e.g. on a config reload or a bulk password reset).
  void erase_all() noexcept;

  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] size_t capacity() const noexcept { return entries_.size(); }
  [[nodiscard]] uint64_t hits() const noexcept { return hits_; }
  [[nodiscard]] uint64_t misses() const noexcept { return misses_; }
  // Live entries pushed out to make room (expired ones are not counted).
  [[nodiscard]] uint64_t evictions() const noexcept { return evictions_; }
  [[nodiscard]] uint64_t expirations() const noexcept { return expirations_; }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kKeyBytes = 32;
  using Key = std::array<uint8_t, kKeyBytes>;

  struct Entry {
    Key key{};
    TimePoint expires_at{};
    uint32_t prev = kNone;  // toward the most recently used
    uint32_t next = kNone;  // toward the least recently used; free list link
  };

  [[nodiscard]] bool make_key(std::string_view stored_hash, std::string_view password,
                              Key& key) const noexcept;
  [[nodiscard]] size_t home_of(const Key& key) const noexcept;
  [[nodiscard]] size_t find_slot(const Key& key) const noexcept;  // index_.size() when absent
  void erase_slot(size_t slot) noexcept;
  void remove(size_t slot) noexcept;  // entry and slot
  void unlink(uint32_t entry) noexcept;
  void push_front(uint32_t entry) noexcept;

  const Clock::duration ttl_;
  std::array<uint8_t, kKeyBytes> hmac_key_{};
  std::vector<Entry> entries_;   // capacity entries
  std::vector<uint32_t> index_;  // open addressing, linear probing: entry or kNone
  size_t mask_ = 0;
  uint32_t head_ = kNone;  // most recently used
  uint32_t tail_ = kNone;  // least recently used
  uint32_t free_ = kNone;  // free entries, linked through `next`
  size_t size_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t evictions_ = 0;
  uint64_t expirations_ = 0;
};

}  // namespace popgate::auth
