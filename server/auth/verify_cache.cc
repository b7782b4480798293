#include "server/auth/verify_cache.h"

#include <cstring>
#include <stdexcept>

#include "server/auth/digest.h"
#include "server/auth/encoding.h"
#include "server/auth/random.h"

namespace popgate::auth {

VerifyCache::VerifyCache(size_t capacity, Clock::duration ttl) : ttl_(ttl) {
  if (capacity > kCapacityMax) {
    throw std::invalid_argument("VerifyCache capacity above " + std::to_string(kCapacityMax));
  }
  if (!random_bytes(hmac_key_)) throw std::runtime_error("VerifyCache: no randomness");
  entries_.resize(capacity);
  size_t slots = 1;
  while (slots < 2 * capacity) slots *= 2;  // load factor <= 1/2
  index_.assign(capacity == 0 ? 0 : slots, kNone);
  mask_ = slots - 1;
  erase_all();
}

VerifyCache::~VerifyCache() { wipe(hmac_key_); }

void VerifyCache::erase_all() noexcept {
  std::fill(index_.begin(), index_.end(), kNone);
  head_ = tail_ = kNone;
  free_ = kNone;
  for (size_t i = entries_.size(); i-- > 0;) {
    entries_[i] = Entry{};
    entries_[i].next = free_;
    free_ = uint32_t(i);
  }
  size_ = 0;
}

bool VerifyCache::make_key(std::string_view stored_hash, std::string_view password,
                           Key& key) const noexcept {
  return hmac(HashAlg::kSha256, as_chars(hmac_key_),
              {stored_hash, std::string_view("\0", 1), password}, key);
}

size_t VerifyCache::home_of(const Key& key) const noexcept {
  uint64_t h = 0;
  std::memcpy(&h, key.data(), sizeof h);  // an HMAC output: already uniform
  return size_t(h) & mask_;
}

size_t VerifyCache::find_slot(const Key& key) const noexcept {
  for (size_t slot = home_of(key);; slot = (slot + 1) & mask_) {
    const uint32_t e = index_[slot];
    if (e == kNone) return index_.size();
    if (ct_equal(entries_[e].key, key)) return slot;
  }
}

// Backward-shift deletion: later entries of the probe run move up so that
// lookups never stop early at the hole.
void VerifyCache::erase_slot(size_t hole) noexcept {
  for (size_t j = (hole + 1) & mask_; index_[j] != kNone; j = (j + 1) & mask_) {
    const size_t home = home_of(entries_[index_[j]].key);
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    index_[hole] = index_[j];
    hole = j;
  }
  index_[hole] = kNone;
}

void VerifyCache::unlink(uint32_t e) noexcept {
  Entry& entry = entries_[e];
  if (entry.prev != kNone)
    entries_[entry.prev].next = entry.next;
  else
    head_ = entry.next;
  if (entry.next != kNone)
    entries_[entry.next].prev = entry.prev;
  else
    tail_ = entry.prev;
  entry.prev = entry.next = kNone;
}

void VerifyCache::push_front(uint32_t e) noexcept {
  Entry& entry = entries_[e];
  entry.prev = kNone;
  entry.next = head_;
  if (head_ != kNone) entries_[head_].prev = e;
  head_ = e;
  if (tail_ == kNone) tail_ = e;
}

void VerifyCache::remove(size_t slot) noexcept {
  const uint32_t e = index_[slot];
  erase_slot(slot);
  unlink(e);
  entries_[e] = Entry{};
  entries_[e].next = free_;
  free_ = e;
  --size_;
}

bool VerifyCache::hit(std::string_view stored_hash, std::string_view password,
                      TimePoint now) noexcept {
  Key key{};
  if (entries_.empty() || !make_key(stored_hash, password, key)) {
    ++misses_;
    return false;
  }
  const size_t slot = find_slot(key);
  if (slot == index_.size()) {
    ++misses_;
    return false;
  }
  const uint32_t e = index_[slot];
  if (now >= entries_[e].expires_at) {
    remove(slot);
    ++expirations_;
    ++misses_;
    return false;
  }
  unlink(e);
  push_front(e);
  ++hits_;
  return true;
}

void VerifyCache::insert(std::string_view stored_hash, std::string_view password,
                         TimePoint now) noexcept {
  Key key{};
  if (entries_.empty() || !make_key(stored_hash, password, key)) return;
  size_t slot = find_slot(key);
  if (slot != index_.size()) {
    const uint32_t e = index_[slot];
    entries_[e].expires_at = now + ttl_;
    unlink(e);
    push_front(e);
    return;
  }
  if (free_ == kNone) {  // full: the least recently used goes
    const uint32_t victim = tail_;
    if (now >= entries_[victim].expires_at) {
      ++expirations_;
    } else {
      ++evictions_;
    }
    remove(find_slot(entries_[victim].key));
  }
  const uint32_t e = free_;
  free_ = entries_[e].next;
  entries_[e].key = key;
  entries_[e].expires_at = now + ttl_;
  push_front(e);
  for (slot = home_of(key); index_[slot] != kNone; slot = (slot + 1) & mask_) {
  }
  index_[slot] = e;
  ++size_;
}

}  // namespace popgate::auth
