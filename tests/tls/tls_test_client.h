// In-memory TLS peers for the TlsStream tests: a real OpenSSL client on a
// pair of memory BIOs, and Pair, which moves bytes between it and a
// TlsStream in chunks of a chosen size. No sockets.
//
// Certificates come from tests/support/make_test_certs.sh, run by the
// `tls_certs` ctest fixture into $POPGATE_TEST_CERT_DIR.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "server/tls/tls_context.h"
#include "server/tls/tls_stream.h"

namespace popgate::tls::tlstest {

// The directory with the test certificates, or "" if it is not there (the
// caller skips, saying so).
[[nodiscard]] std::string cert_dir();
[[nodiscard]] std::string cert_path(std::string_view name);
#define POPGATE_REQUIRE_TEST_CERTS()                                                     \
  do {                                                                                   \
    if (::popgate::tls::tlstest::cert_dir().empty())                                     \
      GTEST_SKIP() << "no test certificates: run `ctest -R tls_certs` (or "              \
                      "tests/support/make_test_certs.sh DIR with POPGATE_TEST_CERT_DIR=DIR)"; \
  } while (0)

// The usual config: ECDSA and RSA defaults, the SNI directory.
[[nodiscard]] TlsConfig default_config();
// Loads or fails the test with the error.
[[nodiscard]] std::shared_ptr<const TlsContext> load_or_die(const TlsConfig& config);

struct ClientOptions {
  int min_version = TLS1_2_VERSION;
  int max_version = 0;  // 0: the newest
  std::string sni;      // empty: no SNI
  std::string verify_host = "pop.example.test";  // empty: no verification
  std::string ciphers_tls12;                     // empty: OpenSSL's default
  std::string sigalgs;                           // empty: OpenSSL's default
  SSL_SESSION* session = nullptr;                // offered for resumption
  bool legacy = false;  // security level 0, so TLS 1.0/1.1 can be offered
};

class TestClient {
 public:
  explicit TestClient(const ClientOptions& options);
  ~TestClient();
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  // Runs the handshake or, once done, reads what plaintext there is into
  // received(). Returns false once the client has failed.
  bool step();
  [[nodiscard]] std::string take_output();  // ciphertext for the server
  void give_input(std::string_view ciphertext);
  void write(std::string_view plaintext);
  void shutdown();  // sends close_notify

  [[nodiscard]] SSL* ssl() const { return ssl_; }
  [[nodiscard]] bool done() const { return SSL_is_init_finished(ssl_) == 1; }
  [[nodiscard]] bool failed() const { return failed_; }
  [[nodiscard]] bool peer_closed() const { return peer_closed_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] std::string& received() { return received_; }
  [[nodiscard]] bool reused() const { return SSL_session_reused(ssl_) == 1; }
  // "ECDSA" or "RSA" for the server's leaf; the leaf's subject CN.
  [[nodiscard]] std::string peer_key_type() const;
  [[nodiscard]] std::string peer_common_name() const;
  [[nodiscard]] int peer_chain_length() const;
  // The session to resume with (caller frees with SSL_SESSION_free).
  [[nodiscard]] SSL_SESSION* session() const { return SSL_get1_session(ssl_); }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // server -> client (owned by ssl_)
  BIO* out_ = nullptr;  // client -> server (owned by ssl_)
  bool failed_ = false;
  bool peer_closed_ = false;
  std::string error_;
  std::string received_;
};

// A TlsStream and a TestClient joined by two byte queues.
class Pair {
 public:
  Pair(std::shared_ptr<const TlsContext> context, const ClientOptions& options);

  // Moves bytes until neither side makes progress: client output is fed to
  // the server at most feed_chunk octets per feed(), server plaintext is
  // read into server_received, ciphertext is drained at most drain_chunk
  // octets per drain() and given to the client.
  void pump();
  // pump(), then: did both ends finish the handshake?
  bool handshake();

  TlsStream server;
  TestClient client;
  std::string to_server;  // client ciphertext the server has not taken
  std::string server_received;
  TlsStream::ReadResult last_read = TlsStream::ReadResult::kWantMore;
  size_t feed_chunk = static_cast<size_t>(-1);
  size_t drain_chunk = static_cast<size_t>(-1);
  size_t feed_calls = 0;
};

}  // namespace popgate::tls::tlstest
