#include "server/tls/tls_stream.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server/base/check.h"

namespace popgate::tls {
namespace detail {

// Room for a typical reply record or a handshake flight without regrowing.
constexpr size_t kOutInitialBytes = 4 * 1024;

StreamIo::~StreamIo() { std::free(out); }

void StreamIo::append(const char* bytes, size_t length) noexcept {
  if (out_end + length > out_capacity && out_begin > 0) {
    std::memmove(out, out + out_begin, pending());
    out_end -= out_begin;
    out_begin = 0;
  }
  if (out_end + length > out_capacity) {
    const size_t wanted = std::max({out_end + length, out_capacity * 2, kOutInitialBytes});
    out = static_cast<char*>(std::realloc(out, wanted));
    POPGATE_CHECK(out != nullptr, "out of memory for TLS ciphertext");
    out_capacity = wanted;
  }
  std::memcpy(out + out_end, bytes, length);
  out_end += length;
}

size_t StreamIo::take(char* dest, size_t capacity) noexcept {
  const size_t n = std::min(capacity, pending());
  if (n > 0) std::memcpy(dest, out + out_begin, n);
  out_begin += n;
  if (out_begin == out_end) {
    // Idle connections hold no ciphertext buffer.
    std::free(out);
    out = nullptr;
    out_begin = out_end = out_capacity = 0;
  }
  return n;
}

}  // namespace detail

namespace {

// A BIO over TlsStream's StreamIo instead of a pair of memory BIOs: reads
// come straight from the span given to feed(), so an idle stream keeps no
// input buffer, and writes land in the buffer drain() empties.
int bio_read(BIO* bio, char* out, size_t size, size_t* done) noexcept {
  auto* io = static_cast<detail::StreamIo*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (io->input.empty()) {
    BIO_set_retry_read(bio);  // not EOF: more may come with the next feed()
    *done = 0;
    return 0;
  }
  const size_t n = std::min(size, io->input.size());
  std::memcpy(out, io->input.data(), n);
  io->input.remove_prefix(n);
  *done = n;
  return 1;
}

int bio_write(BIO* bio, const char* in, size_t size, size_t* done) noexcept {
  auto* io = static_cast<detail::StreamIo*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  io->append(in, size);  // never refused: write() bounds what goes in
  *done = size;
  return 1;
}

long bio_ctrl(BIO*, int command, long, void*) noexcept {
  return command == BIO_CTRL_FLUSH ? 1 : 0;  // nothing buffered here, never EOF
}

int bio_create(BIO* bio) noexcept {
  BIO_set_init(bio, 1);
  return 1;
}

int bio_destroy(BIO* bio) noexcept {
  BIO_set_data(bio, nullptr);
  return 1;
}

// One method table per process, made on first use and never freed.
const BIO_METHOD* stream_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "popgate_tls_stream");
    POPGATE_CHECK(m != nullptr, "out of memory for the TLS BIO method");
    BIO_meth_set_read_ex(m, bio_read);
    BIO_meth_set_write_ex(m, bio_write);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    BIO_meth_set_destroy(m, bio_destroy);
    return m;
  }();
  return method;
}

}  // namespace

TlsStream::TlsStream(std::shared_ptr<const TlsContext> context) noexcept
    : context_(std::move(context)) {
  ERR_clear_error();
  ssl_ = SSL_new(context_->default_ssl_ctx());
  BIO* bio = ssl_ != nullptr ? BIO_new(stream_bio_method()) : nullptr;
  if (bio == nullptr) {
    fail("setup", SSL_ERROR_SSL);
    return;
  }
  BIO_set_data(bio, &io_);
  SSL_set_bio(ssl_, bio, bio);  // one reference, used for both directions
  SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);  // before io_ and context_ go: it may still call into both
}

size_t TlsStream::feed(std::string_view ciphertext) noexcept {
  if (state_ == State::kFailed || state_ == State::kPeerClosed || ciphertext.empty()) return 0;
  if (state_ == State::kOpen && SSL_pending(ssl_) > 0) return 0;  // deliver first
  ERR_clear_error();
  io_.input = ciphertext;
  if (state_ == State::kHandshaking) advance_handshake();
  if (state_ == State::kOpen) pull_record();
  const size_t taken = ciphertext.size() - io_.input.size();
  io_.input = {};
  ERR_clear_error();
  return taken;
}

void TlsStream::advance_handshake() noexcept {
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    state_ = State::kOpen;
    handshake_complete_ = true;
    return;
  }
  const int error = SSL_get_error(ssl_, rc);
  if (error != SSL_ERROR_WANT_READ) fail("handshake", error);
}

// Reads records until one carries plaintext (left in OpenSSL, decrypted,
// for read()/peek()) or the input runs out. Alerts, tickets and key updates
// are handled on the way.
void TlsStream::pull_record() noexcept {
  char probe = 0;
  size_t n = 0;
  const int rc = SSL_peek_ex(ssl_, &probe, 1, &n);
  if (rc == 1) return;
  const int error = SSL_get_error(ssl_, rc);
  if (error == SSL_ERROR_WANT_READ) return;
  if (error == SSL_ERROR_ZERO_RETURN) {
    state_ = State::kPeerClosed;
    return;
  }
  fail("read", error);
}

TlsStream::ReadResult TlsStream::read(char* out, size_t capacity, size_t* produced) noexcept {
  return take_plaintext(out, capacity, produced, false);
}

TlsStream::ReadResult TlsStream::peek(char* out, size_t capacity, size_t* produced) noexcept {
  return take_plaintext(out, capacity, produced, true);
}

TlsStream::ReadResult TlsStream::take_plaintext(char* out, size_t capacity, size_t* produced,
                                                bool peek) noexcept {
  POPGATE_ASSERT(capacity > 0);
  *produced = 0;
  switch (state_) {
    case State::kHandshaking:
      return ReadResult::kWantMore;
    case State::kPeerClosed:
      return ReadResult::kClosed;
    case State::kFailed:
      return ReadResult::kError;
    case State::kOpen:
      break;
  }
  // Only plaintext already decrypted by feed() can come out: outside
  // feed() the BIO has no input, so OpenSSL stops at WANT_READ.
  if (SSL_pending(ssl_) <= 0) return ReadResult::kWantMore;
  ERR_clear_error();
  const int rc = peek ? SSL_peek_ex(ssl_, out, capacity, produced)
                      : SSL_read_ex(ssl_, out, capacity, produced);
  if (rc == 1) return ReadResult::kData;
  *produced = 0;
  const int error = SSL_get_error(ssl_, rc);
  if (error == SSL_ERROR_WANT_READ) return ReadResult::kWantMore;
  if (error == SSL_ERROR_ZERO_RETURN) {
    state_ = State::kPeerClosed;
    return ReadResult::kClosed;
  }
  fail("read", error);
  return ReadResult::kError;
}

void TlsStream::consume(size_t bytes) noexcept {
  char discard[512];
  while (bytes > 0 && state_ == State::kOpen && SSL_pending(ssl_) > 0) {
    size_t n = 0;
    if (SSL_read_ex(ssl_, discard, std::min(bytes, sizeof discard), &n) != 1) break;
    bytes -= n;
  }
  POPGATE_ASSERT(bytes == 0);
  ERR_clear_error();
}

size_t TlsStream::write(std::string_view plaintext) noexcept {
  if (state_ != State::kOpen || close_queued_) return 0;
  ERR_clear_error();
  size_t consumed = 0;
  while (consumed < plaintext.size()) {
    const size_t pending = io_.pending();
    if (pending + kRecordOverheadBytesMax >= kCiphertextPendingBytesMax) break;
    const size_t chunk = std::min({plaintext.size() - consumed, kRecordPlaintextBytesMax,
                                   kCiphertextPendingBytesMax - pending - kRecordOverheadBytesMax});
    size_t written = 0;
    const int rc = SSL_write_ex(ssl_, plaintext.data() + consumed, chunk, &written);
    if (rc != 1) {
      fail("write", SSL_get_error(ssl_, rc));
      break;
    }
    consumed += written;
  }
  ERR_clear_error();
  return consumed;
}

size_t TlsStream::drain(char* out, size_t capacity) noexcept { return io_.take(out, capacity); }

void TlsStream::close() noexcept {
  if (close_queued_) return;
  close_queued_ = true;
  if (!handshake_complete_ || state_ == State::kFailed) return;
  ERR_clear_error();
  // 0: our close_notify is queued (the peer's not seen yet); 1: both done.
  // A failure leaves nothing worth reporting: the caller is closing anyway.
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string_view TlsStream::version() const noexcept {
  return handshake_complete_ ? SSL_get_version(ssl_) : std::string_view();
}

std::string_view TlsStream::cipher() const noexcept {
  if (!handshake_complete_) return {};
  const char* name = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl_));
  return name != nullptr ? name : std::string_view();
}

std::string_view TlsStream::server_name() const noexcept {
  if (ssl_ == nullptr) return {};
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? name : std::string_view();
}

bool TlsStream::resumed() const noexcept {
  return handshake_complete_ && SSL_session_reused(ssl_) == 1;
}

void TlsStream::fail(const char* where, int ssl_error) noexcept {
  state_ = State::kFailed;
  const unsigned long code = ERR_get_error();  // the first: usually the cause
  char text[256];
  if (code != 0) {
    const char* reason = ERR_reason_error_string(code);
    if (reason != nullptr) {
      std::snprintf(text, sizeof text, "%s: %s", where, reason);
    } else {
      char code_text[128];
      ERR_error_string_n(code, code_text, sizeof code_text);
      std::snprintf(text, sizeof text, "%s: %s", where, code_text);
    }
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    std::snprintf(text, sizeof text, "%s: unexpected end of input", where);
  } else {
    std::snprintf(text, sizeof text, "%s: OpenSSL error %d", where, ssl_error);
  }
  error_ = text;
  ERR_clear_error();  // nothing of this connection reaches the next one
}

}  // namespace popgate::tls
