#include "tests/tls/tls_test_client.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace popgate::tls::tlstest {

std::string cert_dir() {
  const char* env = std::getenv("POPGATE_TEST_CERT_DIR");
  std::string dir = env != nullptr && *env != '\0' ? env : POPGATE_TEST_CERT_DIR;
  std::error_code ec;
  return std::filesystem::exists(dir + "/.complete-v1", ec) ? dir : std::string();
}

std::string cert_path(std::string_view name) { return cert_dir() + "/" + std::string(name); }

TlsConfig default_config() {
  TlsConfig config;
  config.default_certificates = {{cert_path("pop-ecdsa.crt"), cert_path("pop-ecdsa.key")},
                                 {cert_path("pop-rsa.crt"), cert_path("pop-rsa.key")}};
  config.sni_directory = cert_path("sni");
  return config;
}

std::shared_ptr<const TlsContext> load_or_die(const TlsConfig& config) {
  std::string error;
  auto context = TlsContext::load(config, &error);
  EXPECT_TRUE(context) << error;
  return context;
}

TestClient::TestClient(const ClientOptions& options) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (options.legacy) {
    SSL_CTX_set_security_level(ctx_, 0);
    SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0");
  }
  SSL_CTX_set_min_proto_version(ctx_, options.min_version);
  SSL_CTX_set_max_proto_version(ctx_, options.max_version);
  if (!options.ciphers_tls12.empty()) SSL_CTX_set_cipher_list(ctx_, options.ciphers_tls12.c_str());
  if (!options.sigalgs.empty()) SSL_CTX_set1_sigalgs_list(ctx_, options.sigalgs.c_str());
  if (!options.verify_host.empty()) {
    SSL_CTX_load_verify_file(ctx_, cert_path("ca.crt").c_str());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  ssl_ = SSL_new(ctx_);
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_connect_state(ssl_);
  if (!options.sni.empty()) {
    // SSL_set_tlsext_host_name() without its C-style cast.
    SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(options.sni.c_str()));
  }
  if (!options.verify_host.empty()) SSL_set1_host(ssl_, options.verify_host.c_str());
  if (options.session != nullptr) SSL_set_session(ssl_, options.session);
  EXPECT_EQ(ERR_peek_error(), 0u) << "client setup";
  ERR_clear_error();
}

TestClient::~TestClient() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
}

bool TestClient::step() {
  if (failed_) return false;
  ERR_clear_error();
  if (!done()) {
    const int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      const int e = SSL_get_error(ssl_, rc);
      if (e != SSL_ERROR_WANT_READ) {
        failed_ = true;
        char text[256];
        ERR_error_string_n(ERR_get_error(), text, sizeof text);
        error_ = text;
        ERR_clear_error();
        return false;
      }
      return true;
    }
  }
  char buf[4096];
  for (;;) {
    size_t n = 0;
    const int rc = SSL_read_ex(ssl_, buf, sizeof buf, &n);
    if (rc == 1) {
      received_.append(buf, n);
      continue;
    }
    const int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_ZERO_RETURN) peer_closed_ = true;
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_ZERO_RETURN) {
      failed_ = true;
      char text[256];
      ERR_error_string_n(ERR_get_error(), text, sizeof text);
      error_ = text;
    }
    break;
  }
  ERR_clear_error();
  return !failed_;
}

std::string TestClient::take_output() {
  std::string bytes;
  char buf[4096];
  int n = 0;
  while ((n = BIO_read(out_, buf, sizeof buf)) > 0) bytes.append(buf, static_cast<size_t>(n));
  return bytes;
}

void TestClient::give_input(std::string_view ciphertext) {
  if (ciphertext.empty()) return;
  BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
}

void TestClient::write(std::string_view plaintext) {
  size_t n = 0;
  ASSERT_EQ(SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &n), 1);
  ASSERT_EQ(n, plaintext.size());
}

void TestClient::shutdown() { SSL_shutdown(ssl_); }

std::string TestClient::peer_key_type() const {
  X509* leaf = SSL_get0_peer_certificate(ssl_);
  if (leaf == nullptr) return "none";
  switch (EVP_PKEY_get_base_id(X509_get0_pubkey(leaf))) {
    case EVP_PKEY_EC:
      return "ECDSA";
    case EVP_PKEY_RSA:
      return "RSA";
    default:
      return "other";
  }
}

std::string TestClient::peer_common_name() const {
  X509* leaf = SSL_get0_peer_certificate(ssl_);
  if (leaf == nullptr) return "none";
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
  return cn;
}

int TestClient::peer_chain_length() const {
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl_);
  return chain != nullptr ? sk_X509_num(chain) : 0;
}

Pair::Pair(std::shared_ptr<const TlsContext> context, const ClientOptions& options)
    : server(std::move(context)), client(options) {}

void Pair::pump() {
  char buf[16 * 1024];
  for (int round = 0; round < 1000000; ++round) {
    bool progress = false;
    client.step();
    std::string out = client.take_output();
    progress = progress || !out.empty();
    to_server += out;
    while (!to_server.empty()) {
      const size_t offer = std::min(to_server.size(), feed_chunk);
      const size_t n = server.feed(std::string_view(to_server).substr(0, offer));
      ++feed_calls;
      EXPECT_LE(n, offer);
      to_server.erase(0, n);
      size_t got = 0;
      while ((last_read = server.read(buf, sizeof buf, &got)) == TlsStream::ReadResult::kData) {
        server_received.append(buf, got);
      }
      progress = progress || n > 0;
      if (n == 0) break;
    }
    while (server.has_ciphertext()) {
      const size_t n = server.drain(buf, std::min(sizeof buf, drain_chunk));
      client.give_input(std::string_view(buf, n));
      progress = true;
    }
    if (!progress) return;
  }
  ADD_FAILURE() << "pump did not settle";
}

bool Pair::handshake() {
  pump();
  return server.handshake_complete() && client.done() && !client.failed();
}

}  // namespace popgate::tls::tlstest
