// Connection slots of one shard. Slots are allocated in chunks as the shard
// warms up and reused after that; a slot's generation changes on every reuse
// so a completion that outlives its connection is recognised.
//
// A slot is freed only when nothing is in flight for it: no receive, no
// send, no storage or KDF request. Every such request completes in bounded
// time, so a closing slot always drains.
//
// A connection goes through phases: the PROXY header (listeners configured
// for it), the TLS handshake (implicit-TLS listeners), then the POP3 session.
// STLS adds TLS in the middle of the session phase.
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "server/auth/scram.h"
#include "server/lmtp/session.h"
#include "server/limits/keys.h"
#include "server/pop3/session.h"
#include "server/proxy/proxy_protocol.h"
#include "server/tls/tls_stream.h"
#include "storage/pg_client.h"

namespace popgate::shard {

// kLmtp: an LMTP delivery connection (lmtp listeners); it has no PROXY,
// TLS or POP3 session, only `lmtp`.
enum class Phase : uint8_t { kProxyHeader, kTlsHandshake, kSession, kLmtp };

struct Connection {
  uint32_t slot = 0;
  uint32_t generation = 0;
  int fd = -1;
  uint8_t listener = 0;  // index into the shard's listeners
  Phase phase = Phase::kSession;
  bool in_use = false;
  bool recv_armed = false;
  bool send_inflight = false;
  bool closing = false;    // torn down: waiting for in-flight work, then freed
  bool lingering = false;  // FIN sent; draining what the peer still sends
  bool cancel_sent = false;
  bool secure = false;             // TLS here, or TLS ended at a trusted proxy
  bool tls_close_queued = false;   // close_notify handed to the TLS stream
  bool close_after_send = false;   // a fatal TLS alert is on its way out
  uint8_t store_inflight = 0;      // storage or KDF requests outstanding
  int64_t session_id = 0;          // maildrop lock holder id within this process
  uint8_t cluster = 0;             // PostgreSQL cluster of the user (POP3), set at each lookup

  // Input not taken yet: part of one provided buffer (ciphertext with TLS).
  int32_t in_buffer = -1;
  uint32_t in_offset = 0;
  uint32_t in_length = 0;

  // A body chunk the session has not taken yet, and the result owning it
  // (shared: one read-ahead result holds the bodies of several messages).
  std::shared_ptr<pg_result> body;
  std::string_view body_rest;

  // Read-ahead (shard_prefetch.cc): the next few small messages, fetched in
  // one statement before the session asks for them, in the order it will.
  static constexpr size_t kPrefetchMessagesMax = 8;
  enum class Prefetch : uint8_t { kNone, kInFlight, kReady };
  Prefetch prefetch = Prefetch::kNone;
  bool prefetch_claimed = false;  // in flight, and the session asked for the next one
  bool prefetch_stale = false;    // in flight, but the client went elsewhere
  uint8_t prefetch_count = 0;     // messages in the batch
  uint8_t prefetch_next = 0;      // the one the session should ask for next
  std::array<int64_t, kPrefetchMessagesMax> prefetch_ids{};
  std::array<uint32_t, kPrefetchMessagesMax> prefetch_sizes{};
  std::shared_ptr<pg_result> prefetch_rows;  // kReady: the batch's rows

  // TLS: the stream, and the pooled block its ciphertext is sent from.
  std::optional<tls::TlsStream> tls;
  char* send_block = nullptr;
  uint32_t send_offset = 0;
  uint32_t send_length = 0;

  // PROXY header parser, from the shard's pool, only until the header is in.
  std::unique_ptr<proxy::ProxyParser> proxy;

  // The real client (from PROXY when present) and its limit keys.
  sockaddr_storage client{};
  socklen_t client_len = 0;
  std::optional<limits::AddressKey> address_key;
  bool address_counted = false;
  std::optional<limits::UserKey> user_counted;
  std::optional<limits::TenantKey> tenant_counted;
  uint32_t tenant_slot = UINT32_MAX;      // TenantMetrics slot, once the user is known
  bool tenant_session_counted = false;    // counted in that slot's sessions gauge
  int64_t tenant_sessions_max = -1;       // from the user lookup; -1 = default
  int64_t tenant_logins_per_minute = -1;

  // Authentication state kept outside the session.
  std::unique_ptr<auth::ScramServer> scram;
  pop3::Request verify;  // the password check in flight (for the cache)

  std::chrono::steady_clock::time_point opened_at;
  std::chrono::steady_clock::time_point setup_deadline;  // PROXY header / TLS handshake
  std::chrono::steady_clock::time_point linger_until;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::array<char, 48> peer{};  // "address:port" of the real client, for logs
  // The name the client asked for: TLS SNI here, or the PROXY authority
  // TLV (the SNI it gave the balancer). Cut to fit; for logs.
  std::array<char, 64> server_name{};
  std::array<char, 64> domain{};  // the tenant's, once the user is known
  std::optional<pop3::Session> session;
  std::optional<lmtp::Session> lmtp;  // phase kLmtp only

  [[nodiscard]] std::string_view peer_text() const noexcept { return peer.data(); }
  [[nodiscard]] std::string_view server_name_text() const noexcept { return server_name.data(); }
  [[nodiscard]] std::string_view domain_text() const noexcept { return domain.data(); }
  void set_domain(std::string_view name) noexcept {
    const size_t n = std::min(name.size(), domain.size() - 1);
    std::copy_n(name.data(), n, domain.data());
    domain[n] = '\0';
  }
  void set_server_name(std::string_view name) noexcept {
    const size_t n = std::min(name.size(), server_name.size() - 1);
    std::copy_n(name.data(), n, server_name.data());
    server_name[n] = '\0';
  }
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
