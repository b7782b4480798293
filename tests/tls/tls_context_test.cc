// TlsContext::load: what it accepts, what it refuses (naming the file), what
// it warns about, and how it indexes SNI names.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "server/tls/tls_context.h"
#include "tests/tls/tls_test_client.h"

namespace popgate::tls {
namespace {

namespace fs = std::filesystem;
using tlstest::cert_path;
using tlstest::default_config;

// A scratch directory, removed afterwards.
class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    POPGATE_REQUIRE_TEST_CERTS();
    std::string pattern = (fs::temp_directory_path() / "popgate-tls-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    scratch_ = pattern;
  }
  void TearDown() override {
    if (!scratch_.empty()) fs::remove_all(scratch_);
    EXPECT_EQ(ERR_peek_error(), 0u);
  }

  std::string write_file(const std::string& name, const std::string& content) {
    const std::string path = scratch_ + "/" + name;
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
    chmod(path.c_str(), 0600);
    return path;
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // load() must fail; returns the error.
  static std::string load_error(const TlsConfig& config) {
    std::string error;
    EXPECT_EQ(TlsContext::load(config, &error), nullptr);
    EXPECT_FALSE(error.empty());
    return error;
  }
  static TlsConfig ecdsa_only() {
    TlsConfig config;
    config.default_certificates = {{cert_path("pop-ecdsa.crt"), cert_path("pop-ecdsa.key")}};
    return config;
  }

  std::string scratch_;
};

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

TEST_F(TlsContextTest, ListsEveryCertificateWithNamesKeyTypeAndExpiry) {
  auto context = tlstest::load_or_die(default_config());
  ASSERT_TRUE(context);
  EXPECT_TRUE(context->warnings().empty());
  const auto& certs = context->certificates();
  ASSERT_EQ(certs.size(), 4u);
  const int64_t now = std::time(nullptr);

  EXPECT_EQ(certs[0].key_type, "ECDSA P-256");
  EXPECT_EQ(certs[0].names, (std::vector<std::string>{"pop.example.test", "localhost"}));
  EXPECT_EQ(certs[0].source_file, cert_path("pop-ecdsa.crt"));
  EXPECT_TRUE(certs[0].is_default);
  EXPECT_EQ(certs[0].subject, "CN=pop.example.test");
  EXPECT_EQ(certs[1].key_type, "RSA 2048");
  EXPECT_TRUE(certs[1].is_default);
  for (const CertificateInfo& c : certs) {
    EXPECT_GT(c.not_after_s, now + 3000LL * 86400) << c.source_file;  // ten years
    EXPECT_LE(c.not_before_s, now) << c.source_file;
  }
  EXPECT_EQ(certs[2].names, std::vector<std::string>{"tenant-a.test"});
  EXPECT_EQ(certs[2].source_file, cert_path("sni/tenant-a.test.pem"));
  EXPECT_FALSE(certs[2].is_default);
  EXPECT_EQ(certs[3].names, std::vector<std::string>{"*.tenant-b.test"});
  EXPECT_EQ(certs[3].key_type, "RSA 2048");
  EXPECT_EQ(context->sni_names(), 2u);
}

TEST_F(TlsContextTest, IndexesExactNamesThenOneLabelWildcards) {
  auto context = tlstest::load_or_die(default_config());
  ASSERT_TRUE(context);
  ssl_ctx_st* a = context->ssl_ctx_for_name("tenant-a.test");
  ssl_ctx_st* b = context->ssl_ctx_for_name("x.tenant-b.test");
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_NE(a, context->default_ssl_ctx());
  EXPECT_EQ(context->ssl_ctx_for_name("y.tenant-b.test"), b);
  EXPECT_EQ(context->ssl_ctx_for_name("tenant-b.test"), nullptr);
  EXPECT_EQ(context->ssl_ctx_for_name("a.x.tenant-b.test"), nullptr);
  EXPECT_EQ(context->ssl_ctx_for_name(".tenant-b.test"), nullptr);
  EXPECT_EQ(context->ssl_ctx_for_name("x.tenant-a.test"), nullptr);
  EXPECT_EQ(context->ssl_ctx_for_name("pop.example.test"), nullptr);  // the default anyway
  EXPECT_EQ(context->ssl_ctx_for_name(""), nullptr);
}

TEST_F(TlsContextTest, MissingFilesAreNamed) {
  TlsConfig config = ecdsa_only();
  config.default_certificates[0].chain_file = scratch_ + "/nope.crt";
  std::string error = load_error(config);
  EXPECT_TRUE(contains(error, scratch_ + "/nope.crt: cannot open: No such file")) << error;

  config = ecdsa_only();
  config.default_certificates[0].key_file = scratch_ + "/nope.key";
  error = load_error(config);
  EXPECT_TRUE(contains(error, scratch_ + "/nope.key: cannot open")) << error;

  config = ecdsa_only();
  config.sni_directory = scratch_ + "/no-such-dir";
  error = load_error(config);
  EXPECT_TRUE(contains(error, "no-such-dir: cannot list")) << error;

  config = ecdsa_only();
  config.ticket_key_file = scratch_ + "/nope.ticket";
  error = load_error(config);
  EXPECT_TRUE(contains(error, "nope.ticket: cannot open")) << error;
}

TEST_F(TlsContextTest, KeyThatDoesNotMatchIsNamed) {
  TlsConfig config;
  config.default_certificates = {{cert_path("mismatch.crt"), cert_path("mismatch.key")}};
  const std::string error = load_error(config);
  EXPECT_EQ(error, cert_path("mismatch.key") + ": private key does not match the certificate in " +
                       cert_path("mismatch.crt"));
}

TEST_F(TlsContextTest, FilesWithoutPemAreNamed) {
  TlsConfig config = ecdsa_only();
  config.default_certificates[0].chain_file = write_file("empty.crt", "hello\n");
  std::string error = load_error(config);
  EXPECT_TRUE(contains(error, "empty.crt: no certificate found")) << error;

  config = ecdsa_only();
  config.default_certificates[0].key_file = cert_path("pop-ecdsa.crt");
  error = load_error(config);
  EXPECT_TRUE(contains(error, "pop-ecdsa.crt: no usable private key")) << error;
}

TEST_F(TlsContextTest, EncryptedKeyIsRefusedNotPrompted) {
  FILE* in = std::fopen(cert_path("pop-ecdsa.key").c_str(), "r");
  ASSERT_NE(in, nullptr);
  EVP_PKEY* key = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
  std::fclose(in);
  ASSERT_NE(key, nullptr);
  const std::string path = scratch_ + "/encrypted.key";
  FILE* out = std::fopen(path.c_str(), "w");
  static char password[] = "secret";
  ASSERT_EQ(PEM_write_PKCS8PrivateKey(out, key, EVP_aes_256_cbc(), password, 6, nullptr, nullptr),
            1);
  std::fclose(out);
  EVP_PKEY_free(key);

  TlsConfig config = ecdsa_only();
  config.default_certificates[0].key_file = path;
  const std::string error = load_error(config);
  EXPECT_TRUE(contains(error, path + ": no usable private key")) << error;
}

TEST_F(TlsContextTest, CombinedPemWorksAsDefault) {
  TlsConfig config;
  config.default_certificates = {{cert_path("sni/tenant-a.test.pem"), ""}};
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  EXPECT_EQ(context->certificates()[0].names, std::vector<std::string>{"tenant-a.test"});
}

TEST_F(TlsContextTest, ExpiredCertificateIsAWarning) {
  TlsConfig config;
  config.default_certificates = {{cert_path("expired.crt"), cert_path("expired.key")}};
  std::string error;
  auto context = TlsContext::load(config, &error);
  ASSERT_TRUE(context) << error;
  ASSERT_EQ(context->warnings().size(), 1u);
  EXPECT_EQ(context->warnings()[0], cert_path("expired.crt") +
                                        ": certificate for pop.example.test expired at "
                                        "2001-01-01T00:00:00Z");
  EXPECT_EQ(context->certificates()[0].not_after_s, 978307200);  // 2001-01-01
}

TEST_F(TlsContextTest, TwoDefaultsOfOneKeyTypeAreRefused) {
  TlsConfig config = ecdsa_only();
  config.default_certificates.push_back({cert_path("sni/tenant-a.test.pem"), ""});
  const std::string error = load_error(config);
  EXPECT_TRUE(contains(error, "a second default certificate with key type ECDSA P-256")) << error;
}

TEST_F(TlsContextTest, ConfigurationMistakes) {
  TlsConfig config;
  EXPECT_TRUE(contains(load_error(config), "no default certificate"));

  config = ecdsa_only();
  config.ciphers_tls12 = "NO-SUCH-CIPHER";
  EXPECT_TRUE(contains(load_error(config), "ciphers_tls12 \"NO-SUCH-CIPHER\""));

  config = ecdsa_only();
  config.ciphersuites_tls13 = "TLS_NOPE";
  EXPECT_TRUE(contains(load_error(config), "ciphersuites_tls13"));

  config = ecdsa_only();
  config.ticket_lifetime_s = kTicketLifetimeSecondsMax + 1;
  EXPECT_TRUE(contains(load_error(config), "ticket_lifetime_s"));
}

TEST_F(TlsContextTest, TicketKeyFiles) {
  TlsConfig config = ecdsa_only();
  const std::string raw = read(cert_path("ticket.key"));
  ASSERT_EQ(raw.size(), 80u);

  config.ticket_key_file = cert_path("ticket.b64");
  EXPECT_TRUE(tlstest::load_or_die(config));
  config.ticket_key_file = write_file("two.key", raw + std::string(raw).replace(0, 1, "\x7f"));
  EXPECT_TRUE(tlstest::load_or_die(config));

  config.ticket_key_file = write_file("short.key", raw.substr(0, 79));
  std::string error = load_error(config);
  EXPECT_TRUE(contains(error, "short.key: expected 80 bytes per ticket key")) << error;

  config.ticket_key_file = write_file("same-name.key", raw + raw);
  error = load_error(config);
  EXPECT_TRUE(contains(error, "same-name.key: ticket keys 1 and 2 have the same name")) << error;

  std::string many;
  for (size_t i = 0; i <= kTicketKeysMax; ++i) many += std::string(raw).replace(0, 1, 1, char(i));
  config.ticket_key_file = write_file("many.key", many);
  error = load_error(config);
  EXPECT_TRUE(contains(error, "many.key: more than")) << error;
}

TEST_F(TlsContextTest, SniDirectoryProblemsAreNamed) {
  TlsConfig config = ecdsa_only();
  config.sni_directory = scratch_ + "/sni";
  write_file("sni/lonely.crt", read(cert_path("pop-rsa.crt")));
  std::string error = load_error(config);
  EXPECT_TRUE(contains(error, "lonely.crt: no matching lonely.key")) << error;

  fs::remove(scratch_ + "/sni/lonely.crt");
  write_file("sni/bad.crt", read(cert_path("mismatch.crt")));
  write_file("sni/bad.key", read(cert_path("mismatch.key")));
  error = load_error(config);
  EXPECT_TRUE(contains(error, "bad.key: private key does not match")) << error;
}

TEST_F(TlsContextTest, SniNameOnTwoCertificatesOfOneTypeKeepsTheLaterExpiry) {
  TlsConfig config = ecdsa_only();
  config.sni_directory = scratch_ + "/sni";
  // Same names (pop.example.test), same key type; expired.* expires first.
  write_file("sni/a-current.crt", read(cert_path("pop-ecdsa.crt")));
  write_file("sni/a-current.key", read(cert_path("pop-ecdsa.key")));
  write_file("sni/b-expired.pem", read(cert_path("expired.key")) + read(cert_path("expired.crt")));
  write_file("sni/README", "ignored\n");
  write_file("sni/.hidden.pem", "ignored\n");
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  const auto& warnings = context->warnings();
  EXPECT_TRUE(std::any_of(warnings.begin(), warnings.end(), [&](const std::string& w) {
    return contains(w, "b-expired.pem: pop.example.test (ECDSA P-256) is served from") &&
           contains(w, "a-current.crt");
  })) << ::testing::PrintToString(warnings);
  EXPECT_EQ(context->certificates().size(), 3u);
}

TEST_F(TlsContextTest, WorldReadableKeyIsAWarning) {
  TlsConfig config = ecdsa_only();
  config.default_certificates[0].key_file = write_file("open.key", read(cert_path("pop-ecdsa.key")));
  chmod(config.default_certificates[0].key_file.c_str(), 0644);
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  ASSERT_EQ(context->warnings().size(), 1u);
  EXPECT_TRUE(contains(context->warnings()[0], "open.key: private key is readable by others"));
}

}  // namespace
}  // namespace popgate::tls
