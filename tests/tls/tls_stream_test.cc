// TlsStream against a real OpenSSL client over memory BIOs: versions,
// certificate choice, SNI, resumption, reload, every split of the byte
// stream, backpressure, garbage and close_notify.
#include <gtest/gtest.h>
#include <openssl/err.h>

#include <memory>
#include <random>
#include <string>

#include "server/tls/tls_context.h"
#include "server/tls/tls_stream.h"
#include "tests/tls/tls_test_client.h"

namespace popgate::tls {
namespace {

using namespace std::string_view_literals;

using tlstest::ClientOptions;
using tlstest::Pair;
using tlstest::cert_path;
using tlstest::default_config;
using tlstest::load_or_die;
using ReadResult = TlsStream::ReadResult;

struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    POPGATE_REQUIRE_TEST_CERTS();
    context_ = load_or_die(default_config());
    ASSERT_TRUE(context_);
  }
  void TearDown() override {
    // No connection's error may be left for the next one on this thread.
    EXPECT_EQ(ERR_peek_error(), 0u);
  }

  // Sends `command` from the client and `reply` from the server.
  static void exchange(Pair& p, const std::string& command, const std::string& reply) {
    p.server_received.clear();
    p.client.received().clear();
    p.client.write(command);
    p.pump();
    EXPECT_EQ(p.server_received, command);
    size_t taken = 0;
    while (taken < reply.size()) {
      const size_t n = p.server.write(std::string_view(reply).substr(taken));
      ASSERT_GT(n, 0u);
      taken += n;
      p.pump();
    }
    EXPECT_EQ(p.client.received(), reply);
  }

  // A full handshake, with the client reading its ticket; the session.
  SessionPtr first_session(const ClientOptions& options) {
    Pair p(context_, options);
    EXPECT_TRUE(p.handshake()) << p.server.error() << p.client.error();
    EXPECT_FALSE(p.server.resumed());
    exchange(p, "CAPA\r\n", "+OK\r\n");  // the TLS 1.3 ticket arrives by now
    // OpenSSL marks a session not resumable when its connection ends
    // without close_notify.
    p.client.shutdown();
    SessionPtr session(p.client.session());
    EXPECT_TRUE(session && SSL_SESSION_is_resumable(session.get()));
    return session;
  }

  std::shared_ptr<const TlsContext> context_;
};

TEST_F(TlsStreamTest, Tls13HandshakeAndDataBothWays) {
  Pair p(context_, {});
  EXPECT_FALSE(p.server.handshake_complete());
  EXPECT_EQ(p.server.version(), "");
  ASSERT_TRUE(p.handshake()) << p.server.error() << p.client.error();
  EXPECT_EQ(p.server.version(), "TLSv1.3");
  EXPECT_EQ(p.server.cipher(), "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(p.server.server_name(), "");
  EXPECT_FALSE(p.server.resumed());
  EXPECT_EQ(p.client.peer_key_type(), "ECDSA");  // preferred when the client can
  exchange(p, "USER alice@example.test\r\n", "+OK\r\n");
  exchange(p, "RETR 1\r\n", "+OK 3 octets\r\nabc\r\n.\r\n");
}

TEST_F(TlsStreamTest, Tls12HandshakeAndDataBothWays) {
  ClientOptions options;
  options.max_version = TLS1_2_VERSION;
  Pair p(context_, options);
  ASSERT_TRUE(p.handshake()) << p.server.error() << p.client.error();
  EXPECT_EQ(p.server.version(), "TLSv1.2");
  EXPECT_EQ(p.server.cipher(), "ECDHE-ECDSA-AES128-GCM-SHA256");
  exchange(p, "STAT\r\n", "+OK 0 0\r\n");
}

TEST_F(TlsStreamTest, Tls10And11Refused) {
  for (const int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    ClientOptions options;
    options.legacy = true;
    options.min_version = TLS1_VERSION;
    options.max_version = version;
    Pair p(context_, options);
    EXPECT_FALSE(p.handshake());
    EXPECT_TRUE(p.client.failed());
    size_t n = 0;
    char buf[16];
    EXPECT_EQ(p.server.read(buf, sizeof buf, &n), ReadResult::kError);
    EXPECT_EQ(n, 0u);
    EXPECT_NE(p.server.error().find("unsupported protocol"), std::string_view::npos)
        << p.server.error();
    EXPECT_EQ(p.server.write("+OK\r\n"), 0u);
    EXPECT_EQ(p.server.feed("more"), 0u);
  }
}

TEST_F(TlsStreamTest, ClientCapabilitiesPickTheCertificate) {
  struct Case {
    int max_version;
    const char* ciphers;
    const char* sigalgs;
    const char* expected;
  };
  const Case cases[] = {
      {0, "", "ECDSA+SHA256", "ECDSA"},
      {0, "", "rsa_pss_rsae_sha256", "RSA"},
      {TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", "", "ECDSA"},
      {TLS1_2_VERSION, "ECDHE-RSA-AES256-GCM-SHA384", "", "RSA"},
      {TLS1_2_VERSION, "ECDHE-RSA-CHACHA20-POLY1305", "RSA+SHA256", "RSA"},
  };
  for (const Case& c : cases) {
    ClientOptions options;
    options.max_version = c.max_version;
    options.ciphers_tls12 = c.ciphers;
    options.sigalgs = c.sigalgs;
    Pair p(context_, options);
    ASSERT_TRUE(p.handshake()) << c.ciphers << c.sigalgs << ": " << p.server.error();
    EXPECT_EQ(p.client.peer_key_type(), c.expected) << c.ciphers << c.sigalgs;
    exchange(p, "NOOP\r\n", "+OK\r\n");
  }
}

TEST_F(TlsStreamTest, SniSelectsTheTenantCertificate) {
  struct Case {
    const char* sni;
    const char* verify_host;
    const char* common_name;
  };
  const Case cases[] = {
      {"tenant-a.test", "tenant-a.test", "tenant-a.test"},
      {"TENANT-A.test.", "tenant-a.test", "tenant-a.test"},  // case, final dot
      {"mail.tenant-b.test", "mail.tenant-b.test", "*.tenant-b.test"},
      {"pop.tenant-b.test", "pop.tenant-b.test", "*.tenant-b.test"},
      {"tenant-b.test", "pop.example.test", "pop.example.test"},      // wildcard needs a label
      {"a.b.tenant-b.test", "pop.example.test", "pop.example.test"},  // exactly one label
      {"unknown.test", "pop.example.test", "pop.example.test"},
      {"", "pop.example.test", "pop.example.test"},
  };
  for (const int version : {0, TLS1_2_VERSION}) {
    for (const Case& c : cases) {
      ClientOptions options;
      options.max_version = version;
      options.sni = c.sni;
      options.verify_host = c.verify_host;
      Pair p(context_, options);
      ASSERT_TRUE(p.handshake()) << c.sni << ": " << p.server.error() << p.client.error();
      EXPECT_EQ(p.client.peer_common_name(), c.common_name) << c.sni;
      EXPECT_EQ(p.server.server_name(), c.sni);
      exchange(p, "NOOP\r\n", "+OK\r\n");
    }
  }
}

TEST_F(TlsStreamTest, SniCertificateSendsItsChain) {
  ClientOptions options;
  options.sni = options.verify_host = "tenant-a.test";
  Pair p(context_, options);
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(p.client.peer_chain_length(), 2);  // leaf and the CA from the .pem
}

TEST_F(TlsStreamTest, ResumesWithTicketTls13AndTls12) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    for (const char* sni : {"", "tenant-a.test"}) {
      ClientOptions options;
      options.max_version = version;
      options.sni = sni;
      if (*sni != '\0') options.verify_host = sni;
      SessionPtr session = first_session(options);
      ASSERT_TRUE(session);
      options.session = session.get();
      Pair p(context_, options);
      ASSERT_TRUE(p.handshake()) << p.server.error();
      EXPECT_TRUE(p.server.resumed()) << version << sni;
      EXPECT_TRUE(p.client.reused());
      EXPECT_EQ(p.server.server_name(), sni);
      exchange(p, "STAT\r\n", "+OK 1 5\r\n");
    }
  }
}

// Every resumption hands out a fresh ticket, so a client that uses each
// ticket once (OpenSSL's and NSS's TLS 1.3 clients; RFC 8446 C.4) resumes
// on every connection of a chain, not every other one.
TEST_F(TlsStreamTest, EveryResumptionIssuesAFreshTicket) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    ClientOptions options;
    options.max_version = version;
    SessionPtr session = first_session(options);
    ASSERT_TRUE(session);
    for (int hop = 0; hop < 3; ++hop) {
      const unsigned char* ticket = nullptr;
      size_t ticket_bytes = 0;
      SSL_SESSION_get0_ticket(session.get(), &ticket, &ticket_bytes);
      ASSERT_GT(ticket_bytes, 0u) << version << " hop " << hop;
      const std::string before(reinterpret_cast<const char*>(ticket), ticket_bytes);
      options.session = session.get();
      Pair p(context_, options);
      ASSERT_TRUE(p.handshake()) << p.server.error();
      EXPECT_TRUE(p.server.resumed()) << version << " hop " << hop;
      exchange(p, "STAT\r\n", "+OK 1 5\r\n");  // the TLS 1.3 ticket arrives by now
      p.client.shutdown();
      SessionPtr next(p.client.session());
      ASSERT_TRUE(next && SSL_SESSION_is_resumable(next.get())) << version << " hop " << hop;
      SSL_SESSION_get0_ticket(next.get(), &ticket, &ticket_bytes);
      EXPECT_NE(std::string(reinterpret_cast<const char*>(ticket), ticket_bytes), before)
          << version << " hop " << hop << ": no fresh ticket";
      session = std::move(next);
    }
  }
}

TEST_F(TlsStreamTest, ResumesAcrossReloadWithoutTicketKeyFile) {
  SessionPtr session = first_session({});
  auto reloaded = load_or_die(default_config());
  ASSERT_TRUE(reloaded);
  ClientOptions options;
  options.session = session.get();
  Pair p(reloaded, options);
  ASSERT_TRUE(p.handshake());
  EXPECT_TRUE(p.server.resumed());
}

TEST_F(TlsStreamTest, InstancesSharingATicketKeyFileResumeEachOthersTickets) {
  TlsConfig config = default_config();
  config.ticket_key_file = cert_path("ticket.key");
  auto instance_a = load_or_die(config);
  auto instance_b = load_or_die(config);
  config.ticket_key_file = cert_path("ticket.b64");
  auto other_keys = load_or_die(config);
  ASSERT_TRUE(instance_a && instance_b && other_keys);

  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    ClientOptions options;
    options.max_version = version;
    SessionPtr session;
    {
      Pair p(instance_a, options);
      ASSERT_TRUE(p.handshake());
      exchange(p, "CAPA\r\n", "+OK\r\n");
      p.client.shutdown();
      session.reset(p.client.session());
    }
    options.session = session.get();
    Pair on_b(instance_b, options);
    ASSERT_TRUE(on_b.handshake());
    EXPECT_TRUE(on_b.server.resumed()) << version;

    // Other keys, or this process's own: a full handshake, no failure.
    for (const auto& context : {other_keys, context_}) {
      Pair p(context, options);
      ASSERT_TRUE(p.handshake()) << p.server.error();
      EXPECT_FALSE(p.server.resumed()) << version;
      exchange(p, "NOOP\r\n", "+OK\r\n");
    }
  }
}

TEST_F(TlsStreamTest, OldContextOutlivesReload) {
  TlsConfig ecdsa_only;
  ecdsa_only.default_certificates = {{cert_path("pop-ecdsa.crt"), cert_path("pop-ecdsa.key")}};
  ecdsa_only.sni_directory = cert_path("sni");
  TlsConfig rsa_only = ecdsa_only;
  rsa_only.default_certificates = {{cert_path("pop-rsa.crt"), cert_path("pop-rsa.key")}};

  std::shared_ptr<const TlsContext> current = load_or_die(ecdsa_only);
  ASSERT_TRUE(current);
  auto established = std::make_unique<Pair>(current, ClientOptions{});
  ASSERT_TRUE(established->handshake());
  // Made before the reload, handshaking after it, through the SNI callback.
  ClientOptions sni;
  sni.sni = sni.verify_host = "tenant-a.test";
  auto late = std::make_unique<Pair>(current, sni);

  current = load_or_die(rsa_only);  // the old context's last outside reference goes
  ASSERT_TRUE(current);
  EXPECT_EQ(established->server.context().use_count(), 2);  // the two streams

  Pair fresh(current, {});
  ASSERT_TRUE(fresh.handshake());
  EXPECT_EQ(fresh.client.peer_key_type(), "RSA");
  exchange(*established, "LIST\r\n", "+OK\r\n.\r\n");
  EXPECT_EQ(established->client.peer_key_type(), "ECDSA");
  ASSERT_TRUE(late->handshake()) << late->server.error();
  EXPECT_EQ(late->client.peer_common_name(), "tenant-a.test");
  exchange(*late, "NOOP\r\n", "+OK\r\n");
  established.reset();
  late.reset();  // the old context goes here; ASan checks nothing dangles
}

TEST_F(TlsStreamTest, EveryOctetSeparately) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    for (const size_t drain_chunk : {size_t{1}, size_t{3}, size_t{7}}) {
      SessionPtr session;
      for (int resume = 0; resume < 2; ++resume) {
        ClientOptions options;
        options.max_version = version;
        options.sni = options.verify_host = "tenant-a.test";
        options.session = session.get();
        Pair p(context_, options);
        p.feed_chunk = 1;
        p.drain_chunk = drain_chunk;
        ASSERT_TRUE(p.handshake()) << version << " " << drain_chunk << ": " << p.server.error();
        EXPECT_EQ(p.server.resumed(), resume == 1);
        EXPECT_GT(p.feed_calls, 100u);  // it really went octet by octet
        exchange(p, "USER a\r\nPASS b\r\n", "+OK\r\n+OK logged in\r\n");
        if (resume == 0) {
          p.client.shutdown();
          session.reset(p.client.session());
        }
      }
    }
  }
}

TEST_F(TlsStreamTest, RandomSplitsCarryABigTransfer) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Pair p(context_, {});
  ASSERT_TRUE(p.handshake());
  std::string body(300 * 1024, '\0');
  for (char& c : body) c = static_cast<char>('a' + rng() % 26);
  p.client.write(body);  // several records to the server
  std::string sent;
  for (int round = 0; p.server_received.size() < body.size() || sent.size() < body.size();
       ++round) {
    ASSERT_LT(round, 100000) << "no progress";
    p.feed_chunk = 1 + rng() % 3000;
    p.drain_chunk = 1 + rng() % 3000;
    if (sent.size() < body.size()) {
      sent += body.substr(sent.size(), p.server.write(std::string_view(body).substr(sent.size())));
    }
    p.pump();
    ASSERT_NE(p.last_read, ReadResult::kError) << p.server.error();
  }
  EXPECT_EQ(p.server_received, body);
  EXPECT_EQ(p.client.received(), body);
}

TEST_F(TlsStreamTest, FinishedAndFirstCommandInOneFeed) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    ClientOptions options;
    options.max_version = version;
    Pair p(context_, options);
    char buf[16 * 1024];
    // Run the client until it has finished, holding back its last flight.
    std::string held;
    for (int round = 0; round < 10 && !p.client.done(); ++round) {
      p.client.step();
      held = p.client.take_output();
      if (p.client.done()) break;
      ASSERT_EQ(p.server.feed(held), held.size());
      while (p.server.has_ciphertext()) {
        p.client.give_input(std::string_view(buf, p.server.drain(buf, sizeof buf)));
      }
    }
    ASSERT_TRUE(p.client.done());
    p.client.write("CAPA\r\n");
    held += p.client.take_output();  // client Finished + an application record
    std::string_view rest = held;
    rest.remove_prefix(p.server.feed(rest));
    EXPECT_TRUE(rest.empty());
    EXPECT_TRUE(p.server.handshake_complete()) << version;
    size_t n = 0;
    ASSERT_EQ(p.server.read(buf, sizeof buf, &n), ReadResult::kData) << p.server.error();
    EXPECT_EQ(std::string(buf, n), "CAPA\r\n");
  }
}

TEST_F(TlsStreamTest, ClientKeyUpdateIsAnsweredInsideFeed) {
  Pair p(context_, {});
  ASSERT_TRUE(p.handshake());
  ASSERT_EQ(SSL_key_update(p.client.ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
  exchange(p, "NOOP\r\n", "+OK\r\n");  // the client sends its KeyUpdate first
  ASSERT_EQ(SSL_key_update(p.client.ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
  exchange(p, "STAT\r\n", "+OK 0 0\r\n");
  EXPECT_FALSE(p.client.failed()) << p.client.error();
}

TEST_F(TlsStreamTest, Tls12RenegotiationIsRefused) {
  ClientOptions options;
  options.max_version = TLS1_2_VERSION;
  Pair p(context_, options);
  ASSERT_TRUE(p.handshake());
  ASSERT_EQ(SSL_renegotiate(p.client.ssl()), 1);
  SSL_do_handshake(p.client.ssl());  // sends a new ClientHello
  ERR_clear_error();
  p.pump();
  // The server answers no_renegotiation; OpenSSL's client then aborts with
  // a handshake_failure alert, which ends the server side too.
  EXPECT_TRUE(p.client.failed());
  EXPECT_NE(p.client.error().find("no renegotiation"), std::string::npos) << p.client.error();
  EXPECT_EQ(p.last_read, ReadResult::kError);
  EXPECT_NE(p.server.error().find("alert handshake failure"), std::string_view::npos)
      << p.server.error();
}

TEST_F(TlsStreamTest, NoTicketsWhenLifetimeIsZero) {
  TlsConfig config = default_config();
  config.ticket_lifetime_s = 0;
  auto context = load_or_die(config);
  ASSERT_TRUE(context);
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    ClientOptions options;
    options.max_version = version;
    SessionPtr session;
    {
      Pair p(context, options);
      ASSERT_TRUE(p.handshake());
      exchange(p, "CAPA\r\n", "+OK\r\n");
      p.client.shutdown();
      session.reset(p.client.session());
      EXPECT_FALSE(SSL_SESSION_has_ticket(session.get())) << version;
    }
    options.session = session.get();
    Pair p(context, options);
    ASSERT_TRUE(p.handshake());
    EXPECT_FALSE(p.server.resumed()) << version;
  }
}

TEST_F(TlsStreamTest, WriteTakesNothingBeforeTheHandshake) {
  Pair p(context_, {});
  EXPECT_EQ(p.server.write("+OK POP3 ready\r\n"), 0u);
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(p.server.write("+OK POP3 ready\r\n"), 16u);
}

TEST_F(TlsStreamTest, WriteStopsWhenCiphertextIsNotDrained) {
  Pair p(context_, {});
  ASSERT_TRUE(p.handshake());
  const std::string big(1024 * 1024, 'x');
  const size_t first = p.server.write(big);
  EXPECT_GT(first, 0u);
  EXPECT_LT(first, big.size());
  EXPECT_LE(p.server.ciphertext_bytes(), kCiphertextPendingBytesMax);
  EXPECT_EQ(p.server.write(big), 0u);  // nothing drained: nothing more taken
  char block[16 * 1024];
  const size_t drained = p.server.drain(block, sizeof block);
  EXPECT_EQ(drained, first + 22);  // one TLS 1.3 record fits the send block
  EXPECT_FALSE(p.server.has_ciphertext());
  EXPECT_GT(p.server.write(big), 0u);
}

TEST_F(TlsStreamTest, PeekLeavesPlaintextUntilConsumed) {
  Pair p(context_, {});
  ASSERT_TRUE(p.handshake());
  p.client.write("USER a\r\nPASS b\r\n");
  std::string wire = p.client.take_output();
  while (!wire.empty()) {
    const size_t n = p.server.feed(wire);
    ASSERT_GT(n, 0u);
    wire.erase(0, n);
  }
  char buf[64];
  size_t n = 0;
  ASSERT_EQ(p.server.peek(buf, sizeof buf, &n), ReadResult::kData);
  EXPECT_EQ(std::string(buf, n), "USER a\r\nPASS b\r\n");
  EXPECT_EQ(p.server.feed("x"), 0u);  // plaintext waits: nothing more taken
  p.server.consume(8);
  ASSERT_EQ(p.server.peek(buf, sizeof buf, &n), ReadResult::kData);
  EXPECT_EQ(std::string(buf, n), "PASS b\r\n");
  ASSERT_EQ(p.server.read(buf, 4, &n), ReadResult::kData);
  EXPECT_EQ(std::string(buf, n), "PASS");
  p.server.consume(4);
  EXPECT_EQ(p.server.peek(buf, sizeof buf, &n), ReadResult::kWantMore);
  EXPECT_EQ(n, 0u);
}

TEST_F(TlsStreamTest, PlaintextCommandInsteadOfHandshakeIsAnError) {
  TlsStream server(context_);
  const std::string_view command = "USER alice\r\nPASS secret\r\n";
  const size_t taken = server.feed(command);
  EXPECT_GT(taken, 0u);
  char buf[64];
  size_t n = 0;
  EXPECT_EQ(server.read(buf, sizeof buf, &n), ReadResult::kError);
  EXPECT_FALSE(server.error().empty());
  EXPECT_FALSE(server.handshake_complete());
  EXPECT_EQ(server.feed(command.substr(taken)), 0u);
  while (server.has_ciphertext()) (void)server.drain(buf, sizeof buf);  // an alert
}

TEST_F(TlsStreamTest, GarbageAtEveryStageIsAnErrorNotACrash) {
  std::mt19937 rng(12345);
  for (int stage = 0; stage < 3; ++stage) {
    for (int trial = 0; trial < 50; ++trial) {
      Pair p(context_, {});
      if (stage >= 1) {
        ASSERT_TRUE(p.handshake());
      }
      if (stage == 2) exchange(p, "NOOP\r\n", "+OK\r\n");
      std::string junk(1 + rng() % 600, '\0');
      for (char& c : junk) c = static_cast<char>(rng());
      if (trial % 2 == 0 && junk.size() >= 5) junk.replace(0, 3, "\x17\x03\x03");  // record-like
      std::string_view rest = junk;
      char buf[1024];
      size_t n = 0;
      ReadResult r = ReadResult::kWantMore;
      while (!rest.empty()) {
        const size_t taken = p.server.feed(rest);
        rest.remove_prefix(taken);
        while ((r = p.server.read(buf, sizeof buf, &n)) == ReadResult::kData) {
        }
        if (taken == 0) break;
      }
      EXPECT_NE(r, ReadResult::kData);
      if (r == ReadResult::kError) {
        EXPECT_FALSE(p.server.error().empty());
      }
      while (p.server.has_ciphertext()) (void)p.server.drain(buf, sizeof buf);
    }
  }
}

TEST_F(TlsStreamTest, ErrorsStayWithTheirConnection) {
  Pair good(context_, {});
  ASSERT_TRUE(good.handshake());
  TlsStream bad(context_);
  (void)bad.feed("\x16\x03\x01\x00\x05hello"sv);  // a ClientHello that is not one
  char buf[16];
  size_t n = 0;
  EXPECT_EQ(bad.read(buf, sizeof buf, &n), ReadResult::kError);
  EXPECT_EQ(ERR_peek_error(), 0u);
  exchange(good, "NOOP\r\n", "+OK\r\n");
}

TEST_F(TlsStreamTest, CloseNotifyFromTheClient) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    ClientOptions options;
    options.max_version = version;
    Pair p(context_, options);
    ASSERT_TRUE(p.handshake());
    p.client.write("QUIT\r\n");
    p.client.shutdown();
    p.pump();
    EXPECT_EQ(p.server_received, "QUIT\r\n");
    EXPECT_EQ(p.last_read, ReadResult::kClosed);
    EXPECT_EQ(p.server.feed("after"), 0u);
    p.server.close();  // answers with its own close_notify
    p.pump();
    EXPECT_TRUE(p.client.peer_closed());
  }
}

TEST_F(TlsStreamTest, CloseNotifyFromTheServer) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    ClientOptions options;
    options.max_version = version;
    Pair p(context_, options);
    ASSERT_TRUE(p.handshake());
    ASSERT_EQ(p.server.write("+OK bye\r\n"), 9u);
    p.server.close();
    EXPECT_TRUE(p.server.has_ciphertext());
    EXPECT_EQ(p.server.write("more"), 0u);
    p.pump();
    EXPECT_EQ(p.client.received(), "+OK bye\r\n");
    EXPECT_TRUE(p.client.peer_closed());
    // The client's own close_notify still reaches the server.
    p.client.shutdown();
    p.pump();
    EXPECT_EQ(p.last_read, ReadResult::kClosed);
  }
}

TEST_F(TlsStreamTest, CloseDuringHandshakeSendsNothing) {
  TlsStream server(context_);
  server.close();
  EXPECT_FALSE(server.has_ciphertext());
  EXPECT_EQ(server.write("x"), 0u);
}

}  // namespace
}  // namespace popgate::tls
