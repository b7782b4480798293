// Database certificates (TlsConfig::database_certificates): indexed by SNI
// like the files, in one index with them; the tenant-domain rule; a bad row
// is a warning, not a failed load; and the checks popgate-admin runs before
// storing one (check_certificate_pem, describe_certificate_chain).
//
// Certificates with other names or lifetimes than the test PKI's are made
// here, signed by its CA (ca.crt, ca.key).
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "server/tls/certificate_pem.h"
#include "server/tls/tls_context.h"
#include "tests/tls/tls_test_client.h"

namespace popgate::tls {
namespace {

using tlstest::cert_path;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

size_t occurrences(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

bool any_warning(const TlsContext& context, std::string_view a, std::string_view b = "") {
  const auto& w = context.warnings();
  return std::any_of(w.begin(), w.end(),
                     [&](const std::string& s) { return contains(s, a) && contains(s, b); });
}

template <typename T, void (*Free)(T*)>
struct Owned {
  T* p = nullptr;
  ~Owned() { Free(p); }
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// A leaf for `names` (SAN DNS), valid from now for `days`, with a fresh
// ECDSA P-256 or RSA 2048 key, signed by the test CA. PEM; cert then key.
struct MadeCertificate {
  std::string chain_pem;  // the leaf, then ca.crt
  std::string key_pem;
};

MadeCertificate make_certificate(const std::vector<std::string>& names, bool rsa, long days) {
  Owned<EVP_PKEY, EVP_PKEY_free> key{
      rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
          : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
  EXPECT_NE(key.p, nullptr);
  FILE* f = std::fopen(cert_path("ca.key").c_str(), "r");
  Owned<EVP_PKEY, EVP_PKEY_free> ca_key{PEM_read_PrivateKey(f, nullptr, nullptr, nullptr)};
  std::fclose(f);
  f = std::fopen(cert_path("ca.crt").c_str(), "r");
  Owned<X509, X509_free> ca{PEM_read_X509(f, nullptr, nullptr, nullptr)};
  std::fclose(f);
  EXPECT_TRUE(ca_key.p != nullptr && ca.p != nullptr);

  Owned<X509, X509_free> cert{X509_new()};
  X509_set_version(cert.p, 2);
  static long serial = 5000;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.p), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.p), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.p), days * 86400);
  X509_NAME* subject = X509_get_subject_name(cert.p);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(names[0].c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.p, X509_get_subject_name(ca.p));
  X509_set_pubkey(cert.p, key.p);
  std::string san;
  for (const std::string& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, ca.p, cert.p, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  EXPECT_NE(ext, nullptr);
  X509_add_ext(cert.p, ext, -1);
  X509_EXTENSION_free(ext);
  EXPECT_GT(X509_sign(cert.p, ca_key.p, EVP_sha256()), 0);

  Owned<BIO, BIO_free_all> c{BIO_new(BIO_s_mem())};
  PEM_write_bio_X509(c.p, cert.p);
  PEM_write_bio_X509(c.p, ca.p);
  Owned<BIO, BIO_free_all> k{BIO_new(BIO_s_mem())};
  PEM_write_bio_PrivateKey(k.p, key.p, nullptr, nullptr, 0, nullptr, nullptr);
  return {bio_text(c.p), bio_text(k.p)};
}

CertificatePem from_files(const std::string& source, const std::string& domain,
                          const std::string& chain, const std::string& key = "") {
  return CertificatePem{source, read(cert_path(chain)), key.empty() ? "" : read(cert_path(key)),
                        domain};
}

CertificatePem made(const std::string& source, const std::string& domain,
                    const MadeCertificate& m) {
  return CertificatePem{source, m.chain_pem, m.key_pem, domain};
}

// The defaults alone, no SNI directory.
TlsConfig defaults_only() {
  TlsConfig config = tlstest::default_config();
  config.sni_directory.clear();
  return config;
}

class DatabaseCertificates : public ::testing::Test {
 protected:
  void SetUp() override { POPGATE_REQUIRE_TEST_CERTS(); }
  void TearDown() override { EXPECT_EQ(ERR_peek_error(), 0u); }
};

TEST_F(DatabaseCertificates, IndexedBySniLikeTheFiles) {
  TlsConfig config = defaults_only();
  config.database_certificates = {
      from_files("db:tenant-a.test/main", "tenant-a.test", "sni/tenant-a.test.pem"),
      from_files("db:tenant-b.test/star", "tenant-b.test", "sni/wildcard.tenant-b.test.crt",
                 "sni/wildcard.tenant-b.test.key")};
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  EXPECT_TRUE(context->warnings().empty()) << ::testing::PrintToString(context->warnings());
  const auto& certs = context->certificates();
  ASSERT_EQ(certs.size(), 4u);
  EXPECT_EQ(certs[2].source_file, "db:tenant-a.test/main");
  EXPECT_EQ(certs[2].names, std::vector<std::string>{"tenant-a.test"});
  EXPECT_FALSE(certs[2].is_default);
  EXPECT_EQ(certs[3].source_file, "db:tenant-b.test/star");
  EXPECT_EQ(certs[3].key_type, "RSA 2048");
  EXPECT_EQ(context->sni_names(), 2u);

  ssl_ctx_st* a = context->ssl_ctx_for_name("tenant-a.test");
  ssl_ctx_st* b = context->ssl_ctx_for_name("mail.tenant-b.test");
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(context->ssl_ctx_for_name("tenant-b.test"), nullptr);
  EXPECT_EQ(context->ssl_ctx_for_name("x.y.tenant-b.test"), nullptr);
}

TEST_F(DatabaseCertificates, HandshakeServesTheTenantsCertificate) {
  TlsConfig config = defaults_only();
  const MadeCertificate m = make_certificate({"pop.tenant-c.test"}, false, 30);
  config.database_certificates = {made("db:tenant-c.test/pop", "tenant-c.test", m)};
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  struct Case {
    const char* sni;
    const char* common_name;
    int chain_length;
  };
  for (const Case& c : {Case{"pop.tenant-c.test", "pop.tenant-c.test", 2},
                        Case{"other.test", "pop.example.test", 1}}) {
    tlstest::ClientOptions options;
    options.sni = c.sni;
    options.verify_host = c.common_name;
    tlstest::Pair p(context, options);
    ASSERT_TRUE(p.handshake()) << c.sni << ": " << p.server.error() << p.client.error();
    EXPECT_EQ(p.client.peer_common_name(), c.common_name) << c.sni;
    EXPECT_EQ(p.client.peer_chain_length(), c.chain_length) << c.sni;  // the chain as stored
  }
}

TEST_F(DatabaseCertificates, OnlyNamesWithinTheTenantsDomainAreServed) {
  TlsConfig config = defaults_only();
  const MadeCertificate m =
      make_certificate({"pop.tenant-c.test", "tenant-c.test", "*.tenant-c.test",
                        "tenant-a.test", "badtenant-c.test", "*.test"},
                       false, 30);
  config.database_certificates = {made("db:tenant-c.test/mixed", "tenant-c.test", m)};
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  EXPECT_NE(context->ssl_ctx_for_name("pop.tenant-c.test"), nullptr);
  EXPECT_NE(context->ssl_ctx_for_name("tenant-c.test"), nullptr);
  EXPECT_NE(context->ssl_ctx_for_name("imap.tenant-c.test"), nullptr);
  EXPECT_EQ(context->ssl_ctx_for_name("tenant-a.test"), nullptr);
  EXPECT_EQ(context->ssl_ctx_for_name("badtenant-c.test"), nullptr);
  EXPECT_EQ(context->ssl_ctx_for_name("x.test"), nullptr);
  for (const char* name : {"tenant-a.test", "badtenant-c.test", "*.test"}) {
    EXPECT_TRUE(any_warning(*context, std::string("db:tenant-c.test/mixed: name \"") + name +
                                          "\" is not under the tenant's domain tenant-c.test"))
        << name << ::testing::PrintToString(context->warnings());
  }
  EXPECT_EQ(context->sni_names(), 3u);
}

TEST_F(DatabaseCertificates, AnUnusableRowIsAWarningAndTheOthersLoad) {
  TlsConfig config = defaults_only();
  config.database_certificates = {
      from_files("db:x.test/mismatch", "x.test", "mismatch.crt", "mismatch.key"),
      CertificatePem{"db:x.test/empty", "", "", "x.test"},
      CertificatePem{"db:x.test/garbage", "-----BEGIN CERTIFICATE-----\nnot base64!\n"
                                          "-----END CERTIFICATE-----\n", "", "x.test"},
      from_files("db:x.test/nokey", "x.test", "pop-ecdsa.crt"),
      from_files("db:tenant-a.test/main", "tenant-a.test", "sni/tenant-a.test.pem")};
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  EXPECT_TRUE(any_warning(*context, "db:x.test/mismatch: private key does not match the "
                                    "certificate; not used"));
  EXPECT_TRUE(any_warning(*context, "db:x.test/empty: no certificate found", "not used"));
  EXPECT_TRUE(any_warning(*context, "db:x.test/garbage: bad certificate PEM", "not used"));
  EXPECT_TRUE(any_warning(*context, "db:x.test/nokey: no usable private key", "not used"));
  EXPECT_EQ(context->certificates().size(), 3u);
  EXPECT_NE(context->ssl_ctx_for_name("tenant-a.test"), nullptr);
}

TEST_F(DatabaseCertificates, FileAndDatabaseForOneNameKeepTheLaterExpiry) {
  // sni/tenant-a.test.pem (ECDSA) runs ten years.
  const MadeCertificate shorter = make_certificate({"tenant-a.test"}, false, 30);
  const MadeCertificate longer = make_certificate({"tenant-a.test"}, false, 5000);
  for (const bool database_wins : {false, true}) {
    TlsConfig config = tlstest::default_config();
    config.database_certificates = {
        made("db:tenant-a.test/main", "tenant-a.test", database_wins ? longer : shorter)};
    auto context = tlstest::load_or_die(config);
    ASSERT_TRUE(context);
    const std::string file = cert_path("sni/tenant-a.test.pem");
    if (database_wins) {
      EXPECT_TRUE(any_warning(*context, file + ": tenant-a.test (ECDSA P-256) is served from "
                                               "db:tenant-a.test/main instead"));
    } else {
      EXPECT_TRUE(any_warning(*context, "db:tenant-a.test/main: tenant-a.test (ECDSA P-256) is "
                                        "served from " + file + " instead"));
    }
    tlstest::ClientOptions options;
    options.sni = options.verify_host = "tenant-a.test";
    tlstest::Pair p(context, options);
    ASSERT_TRUE(p.handshake()) << p.server.error() << p.client.error();
    // The one served is the one that expires later.
    const int64_t served_not_after = [&] {
      X509* peer = SSL_get0_peer_certificate(p.client.ssl());
      struct tm tm = {};
      ASN1_TIME_to_tm(X509_get0_notAfter(peer), &tm);
      return static_cast<int64_t>(timegm(&tm));
    }();
    int64_t latest = 0;
    for (const CertificateInfo& c : context->certificates()) {
      if (c.names == std::vector<std::string>{"tenant-a.test"}) latest = std::max(latest, c.not_after_s);
    }
    EXPECT_EQ(served_not_after, latest) << database_wins;
  }
}

TEST_F(DatabaseCertificates, EcdsaAndRsaForOneNameAreBothServed) {
  TlsConfig config = defaults_only();
  config.database_certificates = {
      made("db:tenant-c.test/ecdsa", "tenant-c.test", make_certificate({"pop.tenant-c.test"}, false, 30)),
      made("db:tenant-c.test/rsa", "tenant-c.test", make_certificate({"pop.tenant-c.test"}, true, 30))};
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  EXPECT_TRUE(context->warnings().empty()) << ::testing::PrintToString(context->warnings());
  for (const char* cipher : {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"}) {
    tlstest::ClientOptions options;
    options.sni = options.verify_host = "pop.tenant-c.test";
    options.max_version = TLS1_2_VERSION;
    options.ciphers_tls12 = cipher;
    tlstest::Pair p(context, options);
    ASSERT_TRUE(p.handshake()) << cipher << ": " << p.server.error() << p.client.error();
    EXPECT_EQ(p.client.peer_key_type(), std::string(cipher).find("ECDSA") != std::string::npos
                                            ? "ECDSA" : "RSA");
  }
}

TEST_F(DatabaseCertificates, TheMoreSpecificTenantKeepsAContestedName) {
  TlsConfig config = defaults_only();
  // example.test's RSA certificate claims a name under b.example.test,
  // whose own (ECDSA) certificate claims it too: only b's serves it.
  config.database_certificates = {
      made("db:b.example.test/pop", "b.example.test",
           make_certificate({"pop.b.example.test"}, false, 30)),
      made("db:example.test/all", "example.test",
           make_certificate({"pop.b.example.test", "pop.example.test"}, true, 3000))};
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  EXPECT_TRUE(any_warning(*context, "db:example.test/all: pop.b.example.test is left to the "
                                    "certificates of tenant b.example.test"));
  tlstest::ClientOptions options;
  options.sni = options.verify_host = "pop.b.example.test";
  tlstest::Pair p(context, options);  // an RSA-only client would get the default
  ASSERT_TRUE(p.handshake()) << p.server.error() << p.client.error();
  EXPECT_EQ(p.client.peer_key_type(), "ECDSA");
  EXPECT_EQ(p.client.peer_common_name(), "pop.b.example.test");
  EXPECT_NE(context->ssl_ctx_for_name("pop.example.test"), nullptr);
}

TEST_F(DatabaseCertificates, ExpiredIsAWarningWithTheSource) {
  TlsConfig config = defaults_only();
  config.database_certificates = {
      from_files("db:example.test/old", "example.test", "expired.crt", "expired.key")};
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  EXPECT_TRUE(any_warning(*context, "db:example.test/old: certificate for pop.example.test "
                                    "expired at 2001-01-01T00:00:00Z"));
}

TEST(NameRules, NameInDomain) {
  EXPECT_TRUE(name_in_domain("example.org", "example.org"));
  EXPECT_TRUE(name_in_domain("pop.example.org", "example.org"));
  EXPECT_TRUE(name_in_domain("a.b.example.org", "example.org"));
  EXPECT_TRUE(name_in_domain("*.example.org", "example.org"));
  EXPECT_FALSE(name_in_domain("badexample.org", "example.org"));
  EXPECT_FALSE(name_in_domain("example.org.evil", "example.org"));
  EXPECT_FALSE(name_in_domain("*.org", "example.org"));
  EXPECT_FALSE(name_in_domain("org", "example.org"));
  EXPECT_FALSE(name_in_domain(".example.org", "example.org"));
  EXPECT_FALSE(name_in_domain("example.org", ""));
  EXPECT_FALSE(name_in_domain("", "example.org"));
}

TEST(NameRules, Wildcards) {
  EXPECT_EQ(wildcard_problem("pop.example.org"), "");
  EXPECT_EQ(wildcard_problem("*.example.org"), "");
  for (const char* bad : {"*", "*.", "a*.example.org", "*a.example.org", "pop.*.example.org",
                          "*.*.example.org", "**.example.org"}) {
    EXPECT_NE(wildcard_problem(bad), "") << bad;
  }
}

class CheckCertificate : public DatabaseCertificates {};

TEST_F(CheckCertificate, KeyInTheChainOrApartComeOutCanonical) {
  std::vector<std::string> warnings;
  std::string error;
  const std::string now_pem = read(cert_path("sni/tenant-a.test.pem"));  // key, leaf, CA
  CheckedCertificate together;
  ASSERT_TRUE(check_certificate_pem(CertificatePem{"a.pem", now_pem, "", ""}, "",
                                    std::time(nullptr), &together, &warnings, &error))
      << error;
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(together.info.names, std::vector<std::string>{"tenant-a.test"});
  EXPECT_EQ(together.info.key_type, "ECDSA P-256");
  EXPECT_EQ(together.info.source_file, "a.pem");
  // Leaf then CA, no key; the key alone, PKCS#8.
  EXPECT_TRUE(together.chain_pem.starts_with("-----BEGIN CERTIFICATE-----"));
  EXPECT_EQ(occurrences(together.chain_pem, "-----BEGIN CERTIFICATE-----"), 2u);
  EXPECT_FALSE(contains(together.chain_pem, "PRIVATE KEY"));
  EXPECT_TRUE(together.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));

  CheckedCertificate apart;
  ASSERT_TRUE(check_certificate_pem(
      CertificatePem{"b.crt", read(cert_path("sni/wildcard.tenant-b.test.crt")),
                     read(cert_path("sni/wildcard.tenant-b.test.key")), ""},
      "b.key", std::time(nullptr), &apart, &warnings, &error))
      << error;
  EXPECT_EQ(apart.info.names, std::vector<std::string>{"*.tenant-b.test"});
  EXPECT_EQ(apart.info.key_type, "RSA 2048");

  // What it wrote loads again, as a database certificate.
  TlsConfig config = defaults_only();
  config.database_certificates = {
      CertificatePem{"db:tenant-a.test/a", together.chain_pem, together.key_pem, "tenant-a.test"}};
  auto context = tlstest::load_or_die(config);
  ASSERT_TRUE(context);
  EXPECT_NE(context->ssl_ctx_for_name("tenant-a.test"), nullptr);

  CertificateInfo info;
  ASSERT_TRUE(describe_certificate_chain("db:tenant-a.test/a", together.chain_pem, &info, &error))
      << error;
  EXPECT_EQ(info.names, std::vector<std::string>{"tenant-a.test"});
  EXPECT_EQ(info.key_type, "ECDSA P-256");
  EXPECT_EQ(info.not_after_s, together.info.not_after_s);
}

TEST_F(CheckCertificate, ProblemsNameTheirSource) {
  std::vector<std::string> warnings;
  std::string error;
  CheckedCertificate out;
  EXPECT_FALSE(check_certificate_pem(
      CertificatePem{"m.crt", read(cert_path("mismatch.crt")), read(cert_path("mismatch.key")), ""},
      "m.key", std::time(nullptr), &out, &warnings, &error));
  EXPECT_EQ(error, "m.key: private key does not match the certificate in m.crt");
  EXPECT_FALSE(check_certificate_pem(CertificatePem{"c.crt", read(cert_path("pop-ecdsa.crt")), "", ""},
                                     "", std::time(nullptr), &out, &warnings, &error));
  EXPECT_TRUE(error.starts_with("c.crt: no usable private key")) << error;
  EXPECT_FALSE(check_certificate_pem(CertificatePem{"k.pem", read(cert_path("pop-ecdsa.key")), "", ""},
                                     "", std::time(nullptr), &out, &warnings, &error));
  EXPECT_TRUE(error.starts_with("k.pem: no certificate found")) << error;
  CertificateInfo info;
  EXPECT_FALSE(describe_certificate_chain("x", "nothing", &info, &error));
  EXPECT_TRUE(error.starts_with("x: no certificate found")) << error;

  warnings.clear();
  EXPECT_TRUE(check_certificate_pem(
      CertificatePem{"e.crt", read(cert_path("expired.crt")), read(cert_path("expired.key")), ""},
      "", std::time(nullptr), &out, &warnings, &error));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "e.crt: certificate for pop.example.test expired at 2001-01-01T00:00:00Z");
}

}  // namespace
}  // namespace popgate::tls
