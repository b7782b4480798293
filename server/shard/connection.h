// Connection slots of one shard. Slots are allocated in chunks as the shard
// warms up and reused after that; a slot's generation changes on every reuse
// so a completion that outlives its connection is recognised.
//
// A slot is freed only when nothing is in flight for it: no receive, no
// send, no storage or KDF request. Every such request completes in bounded
// time, so a closing slot always drains.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "server/pop3/session.h"
#include "storage/pg_client.h"

namespace popgate::shard {

struct Connection {
  uint32_t slot = 0;
  uint32_t generation = 0;
  int fd = -1;
  bool in_use = false;
  bool recv_armed = false;
  bool send_inflight = false;
  bool closing = false;    // torn down: waiting for in-flight work, then freed
  bool lingering = false;  // FIN sent; draining what the peer still sends
  bool cancel_sent = false;
  uint8_t store_inflight = 0;  // storage or KDF requests outstanding
  int64_t session_id = 0;      // maildrop lock holder id within this process

  // Input the session has not taken yet: part of one provided buffer.
  int32_t in_buffer = -1;
  uint32_t in_offset = 0;
  uint32_t in_length = 0;

  // A body chunk the session has not taken yet, and the result owning it.
  storage::ResultHandle body;
  std::string_view body_rest;

  std::chrono::steady_clock::time_point opened_at;
  std::chrono::steady_clock::time_point linger_until;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::array<char, 48> peer{};  // "address:port" for logs
  std::optional<pop3::Session> session;

  [[nodiscard]] std::string_view peer_text() const noexcept { return peer.data(); }
};

class ConnectionTable {
 public:
  explicit ConnectionTable(uint32_t capacity) : capacity_(capacity) {}

  // A free slot, or nullptr when `capacity` are in use.
  [[nodiscard]] Connection* allocate();
  void release(Connection& c) noexcept;
  [[nodiscard]] Connection* find(uint32_t slot, uint32_t generation) noexcept;
  [[nodiscard]] uint32_t active() const noexcept { return active_; }
  [[nodiscard]] uint32_t allocated() const noexcept { return allocated_; }

  // Calls fn(Connection&) for every slot in use.
  template <typename Fn>
  void for_each_active(Fn&& fn) {
    for (uint32_t i = 0; i < allocated_; ++i) {
      Connection& c = at(i);
      if (c.in_use) fn(c);
    }
  }

 private:
  static constexpr uint32_t kChunkSlots = 1024;
  Connection& at(uint32_t slot) noexcept { return chunks_[slot / kChunkSlots][slot % kChunkSlots]; }

  const uint32_t capacity_;
  uint32_t allocated_ = 0;
  uint32_t active_ = 0;
  std::vector<std::unique_ptr<Connection[]>> chunks_;
  std::vector<uint32_t> free_;
};

}  // namespace popgate::shard
