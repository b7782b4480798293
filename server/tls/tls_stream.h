// TlsStream: one server-side TLS connection as a pure byte transform
// (sans-I/O). Ciphertext from the network goes in through feed(), plaintext
// for the session comes out of read() or peek()/consume(); the session's
// plaintext goes in through write() and ciphertext for the network comes
// out of drain(). It never touches a socket, never blocks and never throws;
// the handshake advances inside feed(). One thread at a time (the shard's).
//
// Must not know: sockets, rings, sessions, logging.
//
// How a shard drives it (recv -> feed -> peek -> session; session -> write
// -> drain -> send):
//
//   on receive, `in` = the received bytes not yet taken:
//     for (;;) {
//       in.remove_prefix(tls.feed(in));
//       size_t n = 0;
//       const auto r = tls.peek(scratch, sizeof scratch, &n);
//       if (r == ReadResult::kData) {
//         const size_t used = session.handle_input({scratch, n}, now);
//         tls.consume(used);
//         if (used == 0) break;        // session busy: keep `in`, stop receiving
//         continue;
//       }
//       if (r != ReadResult::kWantMore) { end it (kClosed or kError); break; }
//       if (in.empty()) break;         // all taken: receive again
//     }
//   after every call above and after write() and close():
//     while (tls.has_ciphertext() && the send block is free)
//       send(block, tls.drain(block, kBlockBytes));
//   when the session has output and the handshake is complete:
//     session.handle_output_sent(tls.write(session.pending_output()), now);
//     (it takes less, down to 0, while ciphertext waits: retry after a send)
//
// `scratch` can be one buffer per shard: peek() leaves the plaintext in the
// stream until consume(), so no connection needs its own plaintext buffer.
// read() is peek() + consume() in one copy, for callers that take it all.
//
// Lifetimes: the stream holds the TlsContext it was made from (reload hands
// new streams a new context; this one keeps working). The bytes passed to
// feed() are used only during the call.
//
// Memory. An idle, handshaken connection holds only OpenSSL's per-connection
// state; the 16 KiB record buffers are released whenever empty
// (SSL_MODE_RELEASE_BUFFERS) and so is the pending-ciphertext buffer.
// Measured (tls_memory_test: mallinfo2 growth over 1,000 streams, each after
// a handshake and one command/reply with an in-memory client, glibc malloc
// overhead and the TlsStream object included; OpenSSL 3.0.x, x86-64):
//   TLS 1.3 (X25519, ECDSA P-256, AES-128-GCM): 14,520 bytes per stream
//   TLS 1.2 (same):                             13,350 bytes per stream
// Of that, OpenSSL's SSL object is 7.6 KB, the two AES-GCM record contexts
// 1.9 KB, the session 0.9 KB; the rest is what OpenSSL keeps from the
// handshake until SSL_free (ephemeral keys, transcript hash, the peer's
// cipher and sigalg lists, locks), out of reach of its public API.
// While busy, add up to ~17 KiB for a partial or undelivered incoming
// record and up to kCiphertextPendingBytesMax for ciphertext not yet
// drained.
//
// Allocation: OpenSSL allocates and frees its record buffers per record
// (the price of releasing them when idle), so the TLS data path is not
// allocation-free the way the plaintext path is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "server/tls/tls_context.h"

struct ssl_st;  // OpenSSL's SSL

namespace popgate::tls {

// write() stops taking plaintext once this much ciphertext waits for
// drain(): it matches the shard's 16 KiB send block, so one drain() empties
// it. (Handshake records and alerts are never refused; they are bounded by
// the protocol and the configured chains.)
inline constexpr size_t kCiphertextPendingBytesMax = 16 * 1024;
// Largest TLS plaintext record (RFC 8446 5.1).
inline constexpr size_t kRecordPlaintextBytesMax = 16 * 1024;
// Upper bound on what one record adds to its plaintext: 5-byte header plus,
// for TLS 1.3, content type and 16-byte tag; for TLS 1.2 AES-GCM an 8-byte
// explicit nonce and 16-byte tag. Rounded up; only sizes write()'s chunks.
inline constexpr size_t kRecordOverheadBytesMax = 64;

namespace detail {
// What the stream's BIO reads from and writes to.
struct StreamIo {
  std::string_view input;  // during feed() only: ciphertext not yet taken
  char* out = nullptr;     // malloc'd while ciphertext is pending, else null
  size_t out_begin = 0;
  size_t out_end = 0;
  size_t out_capacity = 0;

  [[nodiscard]] size_t pending() const noexcept { return out_end - out_begin; }
  void append(const char* bytes, size_t length) noexcept;  // aborts on OOM
  size_t take(char* dest, size_t capacity) noexcept;       // frees when empty

  StreamIo() = default;
  ~StreamIo();
  StreamIo(const StreamIo&) = delete;
  StreamIo& operator=(const StreamIo&) = delete;
};
}  // namespace detail

class TlsStream {
 public:
  enum class ReadResult : uint8_t {
    kData,      // *produced > 0 bytes of plaintext
    kWantMore,  // needs more ciphertext (or the handshake is still running)
    kClosed,    // the peer sent close_notify: no more plaintext will come
    kError,     // handshake or record failure; error() says what. Drain and
                // send what is pending (usually an alert), then close.
  };

  // Starts the server side of a handshake. Never fails outright: if OpenSSL
  // cannot make the connection (out of memory), read() reports kError.
  explicit TlsStream(std::shared_ptr<const TlsContext> context) noexcept;
  ~TlsStream();
  // Not movable: OpenSSL's BIO points at this object. Emplace it in place
  // (std::optional::emplace, a slot, a unique_ptr).
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Ciphertext in. Returns how many bytes it took (0..size); the caller keeps
  // the rest and offers it again. It takes everything offered, except that
  // it stops after a record that carries plaintext, takes nothing while such
  // plaintext waits to be read or consumed, and nothing after the peer's
  // close_notify or an error. The handshake (and any post-handshake
  // message, e.g. a TLS 1.3 KeyUpdate) advances here: check
  // has_ciphertext() afterwards. Outcomes are reported by read()/peek().
  [[nodiscard]] size_t feed(std::string_view ciphertext) noexcept;

  // Plaintext out, copied into out[0..capacity), capacity > 0. kData sets
  // *produced (at most one record's worth); anything else sets it to 0.
  [[nodiscard]] ReadResult read(char* out, size_t capacity, size_t* produced) noexcept;
  // Like read() but the plaintext stays in the stream: the next peek()
  // returns it again, until consume() drops it.
  [[nodiscard]] ReadResult peek(char* out, size_t capacity, size_t* produced) noexcept;
  // Drops `bytes` (at most what the last peek() produced) from the front.
  void consume(size_t bytes) noexcept;

  // Plaintext in, encrypted at once into records of at most
  // kRecordPlaintextBytesMax. Returns how much it took: 0 before the
  // handshake completes, after close(), the peer's close_notify or an error,
  // and whenever kCiphertextPendingBytesMax of ciphertext is already waiting
  // (less than offered when it would pass that).
  [[nodiscard]] size_t write(std::string_view plaintext) noexcept;

  // Ciphertext out: copies up to `capacity` pending bytes (handshake
  // records, application records, alerts, close_notify) to `out` and
  // returns the count.
  [[nodiscard]] size_t drain(char* out, size_t capacity) noexcept;
  [[nodiscard]] bool has_ciphertext() const noexcept { return io_.pending() > 0; }
  [[nodiscard]] size_t ciphertext_bytes() const noexcept { return io_.pending(); }

  // Queues close_notify (once; nothing if the handshake has not completed
  // or failed). write() takes nothing afterwards; read() still works until
  // the peer's close_notify.
  void close() noexcept;

  [[nodiscard]] bool handshake_complete() const noexcept { return handshake_complete_; }
  // "TLSv1.3", "TLSv1.2"; empty before the handshake completes.
  [[nodiscard]] std::string_view version() const noexcept;
  // OpenSSL's name, e.g. "TLS_AES_128_GCM_SHA256"; empty before completion.
  [[nodiscard]] std::string_view cipher() const noexcept;
  // The SNI host name as the client sent it; empty if none.
  [[nodiscard]] std::string_view server_name() const noexcept;
  // The handshake resumed a session from a ticket.
  [[nodiscard]] bool resumed() const noexcept;
  // Why kError: one line, e.g. "handshake: unsupported protocol".
  [[nodiscard]] std::string_view error() const noexcept { return error_; }
  [[nodiscard]] const std::shared_ptr<const TlsContext>& context() const noexcept {
    return context_;
  }

 private:
  enum class State : uint8_t { kHandshaking, kOpen, kPeerClosed, kFailed };

  void advance_handshake() noexcept;
  void pull_record() noexcept;
  ReadResult take_plaintext(char* out, size_t capacity, size_t* produced, bool peek) noexcept;
  void fail(const char* where, int ssl_error) noexcept;

  // Declared before ssl_ so that it is destroyed after it: the SSL's
  // callbacks point into the context.
  std::shared_ptr<const TlsContext> context_;
  ssl_st* ssl_ = nullptr;
  detail::StreamIo io_;
  State state_ = State::kHandshaking;
  bool handshake_complete_ = false;
  bool close_queued_ = false;
  std::string error_;
};

}  // namespace popgate::tls
