#include "server/auth/scram.h"

#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <map>
#include <string>

#include "server/auth/digest.h"
#include "server/auth/encoding.h"
#include "server/auth/password.h"

namespace popgate::auth {
namespace {

class FixedNonce final : public ScramNonceSource {
 public:
  explicit FixedNonce(std::string nonce) : nonce_(std::move(nonce)) {}
  size_t fill_nonce(std::span<char> out) noexcept override {
    if (nonce_.size() > out.size()) return 0;
    std::copy(nonce_.begin(), nonce_.end(), out.begin());
    return nonce_.size();
  }

 private:
  std::string nonce_;
};

const std::array<uint8_t, 32> kFakeKey = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                          12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                          23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The field `key` ("r", "s", "i", "v") of a SCRAM message.
std::string field(std::string_view message, char key) {
  const std::string prefix = std::string(1, key) + "=";
  size_t at = 0;
  while (at < message.size()) {
    size_t end = message.find(',', at);
    if (end == std::string_view::npos) end = message.size();
    const std::string_view f = message.substr(at, end - at);
    if (f.starts_with(prefix)) return std::string(f.substr(2));
    at = end + 1;
  }
  return "";
}

// A SCRAM-SHA-256 client, written from RFC 5802 section 3 for these tests.
struct TestClient {
  std::string user = "user";
  std::string password = "pencil";
  std::string client_nonce = "rOprNGfwEbeRWgbNEkqO";
  std::string gs2_header = "n,,";
  std::string expected_server_final;

  std::string bare() const { return "n=" + user + ",r=" + client_nonce; }
  std::string first() const { return gs2_header + bare(); }

  std::string final_message(std::string_view server_first) {
    const std::string nonce = field(server_first, 'r');
    const std::string salt = *base64_decode(field(server_first, 's'));
    const uint32_t iterations = uint32_t(std::stoul(field(server_first, 'i')));
    std::array<uint8_t, 32> salted{}, client_key{}, stored_key{}, server_key{}, signature{},
        server_signature{};
    EXPECT_TRUE(pbkdf2_hmac(HashAlg::kSha256, password, salt, iterations, salted));
    EXPECT_TRUE(hmac(HashAlg::kSha256, as_chars(salted), {"Client Key"}, client_key));
    EXPECT_TRUE(digest(HashAlg::kSha256, {as_chars(client_key)}, stored_key));
    EXPECT_TRUE(hmac(HashAlg::kSha256, as_chars(salted), {"Server Key"}, server_key));
    const std::string without_proof = "c=" + base64_encode(gs2_header) + ",r=" + nonce;
    const std::string auth_message = bare() + "," + std::string(server_first) + "," + without_proof;
    EXPECT_TRUE(hmac(HashAlg::kSha256, as_chars(stored_key), {auth_message}, signature));
    std::array<uint8_t, 32> proof{};
    for (size_t i = 0; i < 32; ++i) proof[i] = client_key[i] ^ signature[i];
    EXPECT_TRUE(hmac(HashAlg::kSha256, as_chars(server_key), {auth_message}, server_signature));
    expected_server_final = "v=" + base64_encode(as_chars(server_signature));
    return without_proof + ",p=" + base64_encode(as_chars(proof));
  }
};

ScramServerOptions options(ScramNonceSource* nonces) {
  return {.nonces = nonces, .fake_salt_key = kFakeKey, .fake_iterations = 4096};
}

// RFC 7677 section 3, byte for byte.
TEST(Scram, Rfc7677Example) {
  const std::string salt = *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
  const ScramCredential credential = derive_scram_credential("pencil", 4096, bytes(salt));
  FixedNonce nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  ScramServer server(options(&nonce));
  ASSERT_EQ(server.handle_client_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), ScramError::kNone);
  EXPECT_EQ(server.username(), "user");
  EXPECT_EQ(server.authzid(), "");
  EXPECT_EQ(server.server_first(credential),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  std::string server_final;
  EXPECT_EQ(
      server.handle_client_final("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                 "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                                 &server_final),
      ScramError::kNone);
  EXPECT_EQ(server_final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  EXPECT_EQ(server.server_final_message(), server_final);
}

TEST(Scram, CredentialTextRoundTripAndDovecotCompatibility) {
  // doveadm pw -s SCRAM-SHA-256 -p 'scram256 pw'
  const std::string dovecot =
      "{SCRAM-SHA-256}4096,3AyVXPHvJ61rt8BWA5gHjw==,XXpunCtaL3rLz62nZ7FpbxOmnqx27lSe7MEWOBqC0hg=,"
      "IXQIwHXThbg7nNgD4UFk5Q+1acU9JnA87h9vvod1KrU=";
  const auto parsed = parse_scram_credential(dovecot);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->iterations, 4096u);
  EXPECT_EQ(parsed->salt_bytes, 16u);
  EXPECT_EQ(format_scram_credential(*parsed), dovecot);
  // Our derivation from the same salt gives Dovecot's string exactly.
  const std::string salt = *base64_decode("3AyVXPHvJ61rt8BWA5gHjw==");
  EXPECT_EQ(make_scram_credential("scram256 pw", 4096, bytes(salt)), dovecot);
  // And our own credentials verify as password hashes, like Dovecot's.
  const std::string ours = make_scram_credential("mine");
  EXPECT_TRUE(ours.starts_with("{SCRAM-SHA-256}4096,")) << ours;
  EXPECT_EQ(verify_password(ours, "mine"), VerifyResult::kMatch);
  EXPECT_EQ(verify_password(ours, "Mine"), VerifyResult::kMismatch);
  EXPECT_NE(make_scram_credential("mine"), ours);  // random salt
  EXPECT_TRUE(parse_scram_credential("{scram-sha-256}" + dovecot.substr(15)));
}

TEST(Scram, ParseCredentialRefusesBrokenText) {
  const std::string keys =
      ",XXpunCtaL3rLz62nZ7FpbxOmnqx27lSe7MEWOBqC0hg=,IXQIwHXThbg7nNgD4UFk5Q+1acU9JnA87h9vvod1KrU=";
  for (const std::string& text :
       {std::string(""), std::string("{SCRAM-SHA-1}4096,3AyVXPHvJ61rt8BWA5gHjw==") + keys,
        "4096,3AyVXPHvJ61rt8BWA5gHjw==" + keys, "{SCRAM-SHA-256}0,3AyVXPHvJ61rt8BWA5gHjw==" + keys,
        "{SCRAM-SHA-256}x,3AyVXPHvJ61rt8BWA5gHjw==" + keys, "{SCRAM-SHA-256}4096," + keys,
        std::string("{SCRAM-SHA-256}4096,3AyVXPHvJ61rt8BWA5gHjw==,abc,def"),
        "{SCRAM-SHA-256}4096,3AyVXPHvJ61rt8BWA5gHjw==" + keys + ",",
        "{SCRAM-SHA-256}4096," + std::string(100, 'A') + keys,  // 75-octet salt
        "{SCRAM-SHA-256}2000000,3AyVXPHvJ61rt8BWA5gHjw==" + keys}) {
    EXPECT_FALSE(parse_scram_credential(text)) << text;
  }
  EXPECT_THROW((void)make_scram_credential("x", 0), std::invalid_argument);
  EXPECT_THROW((void)make_scram_credential("x", kPbkdf2IterationsMax + 1), std::invalid_argument);
}

struct Exchange {
  FixedNonce nonce{"SERVERNONCE"};
  ScramServer server{options(&nonce)};
  TestClient client;
};

TEST(Scram, RoundTripWithOurClient) {
  for (const char* password : {"pencil", "", "p\xC3\xA4ss w0rd,=", "x"}) {
    Exchange x;
    x.client.password = password;
    x.client.user = "bob@example.com";
    const ScramCredential credential = derive_scram_credential(password, 4096);
    ASSERT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kNone);
    EXPECT_EQ(x.server.username(), "bob@example.com");
    const std::string first(x.server.server_first(credential));
    ASSERT_FALSE(first.empty());
    std::string final_reply;
    EXPECT_EQ(x.server.handle_client_final(x.client.final_message(first), &final_reply),
              ScramError::kNone);
    EXPECT_EQ(final_reply, x.client.expected_server_final);
  }
}

TEST(Scram, SystemNonceIsRandomBase64) {
  ScramServer a({.fake_salt_key = kFakeKey});
  ScramServer b({.fake_salt_key = kFakeKey});
  const auto credential = derive_scram_credential("pw", 4096);
  ASSERT_EQ(a.handle_client_first("n,,n=u,r=abc"), ScramError::kNone);
  ASSERT_EQ(b.handle_client_first("n,,n=u,r=abc"), ScramError::kNone);
  const std::string ra = field(a.server_first(credential), 'r');
  const std::string rb = field(b.server_first(credential), 'r');
  EXPECT_EQ(ra.size(), 3 + 24u) << ra;
  EXPECT_TRUE(ra.starts_with("abc"));
  EXPECT_NE(ra, rb);
}

TEST(Scram, AuthzidAndSaslnameEscapes) {
  Exchange x;
  ASSERT_EQ(x.server.handle_client_first("y,a=admin=2Cx=3Dy,n=a=2Cb=3Dc,r=nonce,x=ext"),
            ScramError::kNone);
  EXPECT_EQ(x.server.authzid(), "admin,x=y");
  EXPECT_EQ(x.server.username(), "a,b=c");
}

TEST(Scram, YFlagRoundTrip) {
  Exchange x;
  x.client.gs2_header = "y,,";
  const auto credential = derive_scram_credential(x.client.password, 4096);
  ASSERT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kNone);
  const std::string first(x.server.server_first(credential));
  EXPECT_EQ(x.server.handle_client_final(x.client.final_message(first), nullptr),
            ScramError::kNone);
}

TEST(Scram, ClientFirstRefusals) {
  const std::map<std::string, ScramError> cases = {
      {"p=tls-server-end-point,,n=user,r=abc", ScramError::kChannelBindingNotSupported},
      {"n,,m=ext,n=user,r=abc", ScramError::kExtensionsNotSupported},
      {"", ScramError::kInvalidEncoding},
      {"n", ScramError::kInvalidEncoding},
      {"n,", ScramError::kInvalidEncoding},
      {"x,,n=user,r=abc", ScramError::kInvalidEncoding},
      {"nn,,n=user,r=abc", ScramError::kInvalidEncoding},
      {"n,b=x,n=user,r=abc", ScramError::kInvalidEncoding},
      {"n,,r=abc,n=user", ScramError::kInvalidEncoding},
      {"n,,n=user", ScramError::kInvalidEncoding},
      {"n,,n=user,", ScramError::kInvalidEncoding},
      {"n,,n=user,r=", ScramError::kInvalidEncoding},
      {"n,,n=user,r=ab c", ScramError::kInvalidEncoding},
      {"n,,n=user,r=ab\x7f", ScramError::kInvalidEncoding},
      {"n,,n=user,r=abc,", ScramError::kInvalidEncoding},
      {"n,,n=user,r=abc,1=x", ScramError::kInvalidEncoding},
      {"n,,n=user,r=abc,x=", ScramError::kInvalidEncoding},
      {"n,,n=user,r=" + std::string(kScramClientNonceBytesMax + 1, 'a'),
       ScramError::kInvalidEncoding},
      {"n,,n=" + std::string(kScramMessageBytesMax, 'u') + ",r=abc", ScramError::kInvalidEncoding},
      {"n,,n=,r=abc", ScramError::kInvalidUsernameEncoding},
      {"n,,n=a=2,r=abc", ScramError::kInvalidUsernameEncoding},
      {"n,,n=a=,r=abc", ScramError::kInvalidUsernameEncoding},
      {"n,,n=a=41,r=abc", ScramError::kInvalidUsernameEncoding},
      {"n,,n=a=b,r=abc", ScramError::kInvalidUsernameEncoding},
      {std::string("n,,n=a\0b,r=abc", 14), ScramError::kInvalidUsernameEncoding},
      {"n,,n=a\tb,r=abc", ScramError::kInvalidUsernameEncoding},
      {"n,,n=" + std::string(kScramNameBytesMax + 1, 'u') + ",r=abc",
       ScramError::kInvalidUsernameEncoding},
      {"n,a=,n=user,r=abc", ScramError::kInvalidUsernameEncoding},
      {"n,a=x=zz,n=user,r=abc", ScramError::kInvalidUsernameEncoding},
  };
  for (const auto& [message, expected] : cases) {
    Exchange x;
    EXPECT_EQ(x.server.handle_client_first(message), expected) << message;
    // Once failed, the exchange stays failed.
    EXPECT_EQ(x.server.server_first_unknown_user(), "") << message;
  }
}

TEST(Scram, EveryPrefixOfAClientFirstIsHandled) {
  const std::string full = "n,a=admin=2Cx,n=user=3Dname,r=fyko+d2lbbFgONRv9qkxdawL,e=1";
  for (size_t len = 0; len <= full.size(); ++len) {
    Exchange x;
    const ScramError e = x.server.handle_client_first(full.substr(0, len));
    if (e == ScramError::kNone) {
      EXPECT_GE(len, full.find(",r=") + 4) << len;
    }
  }
}

// Runs a good exchange up to the client-final, which `mutate` changes.
ScramError final_with(const std::function<std::string(std::string)>& mutate,
                      std::string* server_final = nullptr) {
  Exchange x;
  const auto credential = derive_scram_credential(x.client.password, 4096);
  EXPECT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kNone);
  const std::string first(x.server.server_first(credential));
  return x.server.handle_client_final(mutate(x.client.final_message(first)), server_final);
}

TEST(Scram, ClientFinalRefusals) {
  auto replace = [](std::string from, std::string to) {
    return [from, to](std::string m) {
      const size_t at = m.find(from);
      if (at != std::string::npos) m.replace(at, from.size(), to);
      return m;
    };
  };
  std::string reply;
  EXPECT_EQ(final_with([](std::string m) { return m; }, &reply), ScramError::kNone);
  EXPECT_TRUE(reply.starts_with("v=")) << reply;
  // channel binding: another gs2 header, or not base64
  EXPECT_EQ(final_with(replace("c=biws", "c=eSws"), &reply), ScramError::kChannelBindingsDontMatch);
  EXPECT_EQ(reply, "e=channel-bindings-dont-match");
  EXPECT_EQ(final_with(replace("c=biws", "c=")), ScramError::kChannelBindingsDontMatch);
  EXPECT_EQ(final_with(replace("c=biws", "c=b!ws")), ScramError::kInvalidEncoding);
  // nonce: not ours
  EXPECT_EQ(final_with(replace("SERVERNONCE", "SERVERNONCF"), &reply), ScramError::kOtherError);
  EXPECT_EQ(reply, "e=other-error");
  EXPECT_EQ(final_with(replace("SERVERNONCE", "")), ScramError::kOtherError);
  // proof: flipped bit, wrong length, not base64, missing
  EXPECT_EQ(final_with(
                [](std::string m) {
                  const size_t at = m.find(",p=") + 3;
                  m[at] = m[at] == 'A' ? 'B' : 'A';
                  return m;
                },
                &reply),
            ScramError::kInvalidProof);
  EXPECT_EQ(reply, "e=invalid-proof");
  EXPECT_EQ(final_with([](std::string m) { return m.substr(0, m.find(",p=")) + ",p=AAAA"; }),
            ScramError::kInvalidProof);
  EXPECT_EQ(final_with([](std::string m) { return m.substr(0, m.find(",p=")) + ",p=!!!!"; }),
            ScramError::kInvalidEncoding);
  EXPECT_EQ(final_with([](std::string m) { return m.substr(0, m.find(",p=")); }),
            ScramError::kInvalidEncoding);
  // syntax
  EXPECT_EQ(final_with([](std::string m) { return m.substr(m.find(",r=") + 1); }),
            ScramError::kInvalidEncoding);
  EXPECT_EQ(final_with([](std::string) { return std::string(",p=AAAA"); }),
            ScramError::kInvalidEncoding);
  EXPECT_EQ(final_with([](std::string) { return std::string(); }), ScramError::kInvalidEncoding);
  EXPECT_EQ(final_with([](std::string m) { return m + std::string(kScramMessageBytesMax, 'x'); }),
            ScramError::kInvalidEncoding);
  EXPECT_EQ(final_with(replace(",p=", ",x=1,p=")), ScramError::kInvalidProof);  // ext is signed
  EXPECT_EQ(final_with(replace(",p=", ",1=1,p=")), ScramError::kInvalidEncoding);
}

TEST(Scram, WrongPasswordIsInvalidProof) {
  Exchange x;
  const auto credential = derive_scram_credential("right", 4096);
  x.client.password = "wrong";
  ASSERT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kNone);
  const std::string first(x.server.server_first(credential));
  std::string reply;
  EXPECT_EQ(x.server.handle_client_final(x.client.final_message(first), &reply),
            ScramError::kInvalidProof);
  EXPECT_EQ(reply, "e=invalid-proof");
  EXPECT_EQ(x.server.server_final_message(), "e=invalid-proof");
}

TEST(Scram, UnknownUserLooksLikeAKnownOneAndFails) {
  auto first_for = [](const std::string& user, const std::array<uint8_t, 32>& key) {
    FixedNonce nonce("S");
    ScramServer server({.nonces = &nonce, .fake_salt_key = key, .fake_iterations = 4096});
    EXPECT_EQ(server.handle_client_first("n,,n=" + user + ",r=c"), ScramError::kNone);
    return std::string(server.server_first_unknown_user());
  };
  const std::string a1 = first_for("ghost", kFakeKey);
  const std::string a2 = first_for("ghost", kFakeKey);
  const std::string b = first_for("other", kFakeKey);
  auto other_key = kFakeKey;
  other_key[0] ^= 1;
  const std::string a3 = first_for("ghost", other_key);
  EXPECT_EQ(a1, a2);  // stable, as a real user's salt is
  EXPECT_NE(a1, b);
  EXPECT_NE(a1, a3);
  EXPECT_EQ(base64_decode(field(a1, 's'))->size(), 16u);
  EXPECT_EQ(field(a1, 'i'), "4096");
  EXPECT_EQ(field(a1, 'r'), "cS");

  // A client that somehow guessed everything still fails, with the same
  // error as a wrong password.
  for (const char* stored : {"", "{SCRAM-SHA-256}garbage"}) {
    Exchange x;
    ASSERT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kNone);
    const std::string first(x.server.server_first_from_stored(stored));
    ASSERT_FALSE(first.empty());
    std::string reply;
    EXPECT_EQ(x.server.handle_client_final(x.client.final_message(first), &reply),
              ScramError::kInvalidProof);
    EXPECT_EQ(reply, "e=invalid-proof");
  }
}

TEST(Scram, StoredCredentialColumnWorks) {
  Exchange x;
  const std::string stored = make_scram_credential(x.client.password, 4096);
  ASSERT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kNone);
  const std::string first(x.server.server_first_from_stored(stored));
  EXPECT_EQ(x.server.handle_client_final(x.client.final_message(first), nullptr),
            ScramError::kNone);
}

TEST(Scram, CallsOutOfOrderFail) {
  const auto credential = derive_scram_credential("pw", 4096);
  {
    Exchange x;  // server-first before client-first
    EXPECT_EQ(x.server.server_first(credential), "");
    EXPECT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kOtherError);
  }
  {
    Exchange x;  // client-final before server-first
    ASSERT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kNone);
    EXPECT_EQ(x.server.handle_client_final("c=biws,r=x,p=AAAA", nullptr), ScramError::kOtherError);
  }
  {
    Exchange x;  // client-first twice, client-final after success
    ASSERT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kNone);
    EXPECT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kOtherError);
  }
  {
    Exchange x;
    x.client.password = "pw";
    ASSERT_EQ(x.server.handle_client_first(x.client.first()), ScramError::kNone);
    const std::string first(x.server.server_first(credential));
    const std::string final_message = x.client.final_message(first);
    ASSERT_EQ(x.server.handle_client_final(final_message, nullptr), ScramError::kNone);
    EXPECT_EQ(x.server.handle_client_final(final_message, nullptr), ScramError::kOtherError);
  }
}

TEST(Scram, BrokenNonceSourceFailsTheExchange) {
  for (const char* bad : {"", "has,comma", "has space"}) {
    FixedNonce nonce(bad);
    ScramServer server(options(&nonce));
    ASSERT_EQ(server.handle_client_first("n,,n=u,r=abc"), ScramError::kNone);
    EXPECT_EQ(server.server_first(derive_scram_credential("pw", 4096)), "") << bad;
  }
}

TEST(Scram, ErrorNames) {
  EXPECT_EQ(scram_error_name(ScramError::kNone), "");
  EXPECT_EQ(scram_error_name(ScramError::kInvalidEncoding), "invalid-encoding");
  EXPECT_EQ(scram_error_name(ScramError::kExtensionsNotSupported), "extensions-not-supported");
  EXPECT_EQ(scram_error_name(ScramError::kChannelBindingNotSupported),
            "channel-binding-not-supported");
  EXPECT_EQ(scram_error_name(ScramError::kChannelBindingsDontMatch), "channel-bindings-dont-match");
  EXPECT_EQ(scram_error_name(ScramError::kInvalidUsernameEncoding), "invalid-username-encoding");
  EXPECT_EQ(scram_error_name(ScramError::kInvalidProof), "invalid-proof");
  EXPECT_EQ(scram_error_name(ScramError::kOtherError), "other-error");
}

}  // namespace
}  // namespace popgate::auth
