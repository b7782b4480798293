#include "server/auth/password.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace popgate::auth {
namespace {

// Cheap parameters: these tests are about encoding, not cost.
constexpr Argon2Params kFast{.memory_kib = 64, .passes = 1, .lanes = 1};

// Made by the real Dovecot 2.3.19.1 (Debian 12), e.g.
//   doveadm pw -s ARGON2ID -p 'correct horse battery staple'
//   doveadm pw -s ARGON2ID -p 'dovecot interop 1 ✓'
//   doveadm pw -s ARGON2I -p 'argon2i from dovecot'
struct DovecotHash {
  const char* password;
  const char* stored;
};
constexpr DovecotHash kDovecotHashes[] = {
    {"correct horse battery staple",
     "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$CHWvxE1cDh6jdtjQqITMOw$"
     "0LPuPa8okxDYBeKsH1Vw4/Ogp/FEpO0lkr9OYBPGCBw"},
    {"dovecot interop 1 \xE2\x9C\x93",
     "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$X827pXs5okSOZh3dHAHITg$"
     "GNgvhGlIw3VCHQG1rn4TRHBtajiFs2dWsVoLAqK1R1k"},
    {"argon2i from dovecot",
     "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$nxu9GTksKGz7yAkarWBuhA$"
     "OW0RG9Svj2foGLzeIdhD6AlGYoUv3rzjk46wMLJl7DU"},
};

TEST(Password, RoundTrip) {
  const std::string stored = hash_password("s3cret pass", kFast);
  EXPECT_TRUE(stored.starts_with("{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$")) << stored;
  EXPECT_EQ(verify_password(stored, "s3cret pass"), VerifyResult::kMatch);
}

TEST(Password, DefaultParamsAreOwaspMinimum) {
  const std::string stored = hash_password("pw");
  EXPECT_TRUE(stored.starts_with("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$")) << stored;
  EXPECT_EQ(verify_password(stored, "pw"), VerifyResult::kMatch);
}

TEST(Password, SaltIsRandom) {
  EXPECT_NE(hash_password("same", kFast), hash_password("same", kFast));
}

TEST(Password, Mismatch) {
  const std::string stored = hash_password("right", kFast);
  EXPECT_EQ(verify_password(stored, "wrong"), VerifyResult::kMismatch);
  EXPECT_EQ(verify_password(stored, ""), VerifyResult::kMismatch);
  EXPECT_EQ(verify_password(stored, "right "), VerifyResult::kMismatch);
}

TEST(Password, BinaryPasswordsAreWholeStrings) {
  const std::string with_nul("a\0b", 3);
  const std::string stored = hash_password(with_nul, kFast);
  EXPECT_EQ(verify_password(stored, with_nul), VerifyResult::kMatch);
  EXPECT_EQ(verify_password(stored, "a"), VerifyResult::kMismatch);
}

TEST(Password, SchemeNameIsCaseInsensitive) {
  std::string stored = hash_password("pw", kFast);
  stored.replace(0, 10, "{argon2Id}");
  EXPECT_EQ(verify_password(stored, "pw"), VerifyResult::kMatch);
}

TEST(Password, BareArgon2idString) {
  const std::string stored = hash_password("bare", kFast);
  const std::string bare = stored.substr(std::string("{ARGON2ID}").size());
  ASSERT_TRUE(bare.starts_with("$argon2id$"));
  EXPECT_EQ(verify_password(bare, "bare"), VerifyResult::kMatch);
  EXPECT_EQ(verify_password(bare, "nope"), VerifyResult::kMismatch);
}

TEST(Password, UnsupportedSchemes) {
  EXPECT_EQ(verify_password("{FOO}secret", "secret"), VerifyResult::kUnsupportedScheme);
  EXPECT_EQ(verify_password("{PLAIN.ROT13}secret", "secret"), VerifyResult::kUnsupportedScheme);
  EXPECT_EQ(verify_password("{CRAM-MD5}x", "x"), VerifyResult::kUnsupportedScheme);
  EXPECT_EQ(verify_password("{}x", "x"), VerifyResult::kUnsupportedScheme);
  EXPECT_EQ(verify_password("secret", "secret"), VerifyResult::kUnsupportedScheme);
  EXPECT_EQ(verify_password("", ""), VerifyResult::kUnsupportedScheme);
  EXPECT_EQ(verify_password("$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "x"),
            VerifyResult::kUnsupportedScheme);  // bare form is argon2id only
  // crypt(3) methods libxcrypt has but we do not accept: NT hash (no salt,
  // a plaintext equivalent), Sun MD5 and SHA1-crypt (unbounded rounds), BSDi.
  for (const char* stored :
       {"{CRYPT}$3$$8cc19b6a8cfeac299c2871c86b38de28", "{CRYPT}$md5$abc$$kdHOzWryR1yllNTXdT6hs/",
        "{CRYPT}$sha1$40000$abc$xdIxY8L9PfE82CKf3vhAqSL3pPMM", "{CRYPT}_J9..abcdTZ/33djMPto"}) {
    EXPECT_EQ(verify_password(stored, "pw"), VerifyResult::kUnsupportedScheme) << stored;
    EXPECT_FALSE(is_supported_scheme(stored)) << stored;
  }
}

TEST(Password, Malformed) {
  const std::string good = hash_password("pw", kFast);
  EXPECT_EQ(verify_password("{ARGON2ID", "pw"), VerifyResult::kMalformed);
  EXPECT_EQ(verify_password("{ARGON2ID}", "pw"), VerifyResult::kMalformed);
  EXPECT_EQ(verify_password("{ARGON2ID}garbage", "pw"), VerifyResult::kMalformed);
  EXPECT_EQ(verify_password(good.substr(0, good.size() - 10), "pw"), VerifyResult::kMalformed);
  EXPECT_EQ(verify_password(good.substr(0, good.rfind('$')), "pw"), VerifyResult::kMalformed);
  // Scheme and encoding disagree on the variant.
  std::string wrong_type = good;
  wrong_type.replace(0, 10, "{ARGON2I}");
  EXPECT_EQ(verify_password(wrong_type, "pw"), VerifyResult::kMalformed);
  // An embedded NUL would truncate the C string argon2 sees.
  std::string with_nul = good;
  with_nul[with_nul.size() - 5] = '\0';
  EXPECT_EQ(verify_password(with_nul, "pw"), VerifyResult::kMalformed);
}

TEST(Password, RefusesCostsOverTheLimits) {
  // Well-formed but asking for 4 GiB / 1000 passes / 255 lanes: refused
  // before any memory is allocated.
  const char* salt_hash = "$c2FsdHNhbHRzYWx0c2FsdA$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI";
  for (const char* costs : {"m=4194304,t=1,p=1", "m=64,t=1000,p=1", "m=64,t=1,p=255"}) {
    const std::string stored = std::string("{ARGON2ID}$argon2id$v=19$") + costs + salt_hash;
    EXPECT_EQ(verify_password(stored, "pw"), VerifyResult::kMalformed) << costs;
  }
}

TEST(Password, VerifiesHashesMadeByDovecot) {
  for (const auto& h : kDovecotHashes) {
    EXPECT_EQ(verify_password(h.stored, h.password), VerifyResult::kMatch) << h.stored;
    EXPECT_EQ(verify_password(h.stored, std::string(h.password) + "x"), VerifyResult::kMismatch);
  }
}

// The other direction, when Dovecot is installed: doveadm accepts our hash.
TEST(Password, DovecotVerifiesOurHash) {
  if (!std::filesystem::exists("/usr/bin/doveadm")) GTEST_SKIP() << "doveadm not installed";
  const std::string stored = hash_password("exported pw", kFast);
  const std::string cmd = "/usr/bin/doveadm pw -t '" + stored + "' -p 'exported pw' 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char line[512] = {};
  const bool got = std::fgets(line, sizeof line, pipe) != nullptr;
  const int status = ::pclose(pipe);
  ASSERT_TRUE(got);
  EXPECT_EQ(status, 0) << line;
  EXPECT_NE(std::string(line).find("(verified)"), std::string::npos) << line;
}

TEST(Password, DummyHashIsStableAndWellFormed) {
  const std::string& a = dummy_hash();
  EXPECT_EQ(&a, &dummy_hash());
  EXPECT_TRUE(a.starts_with("{ARGON2ID}$argon2id$")) << a;
  EXPECT_EQ(verify_password(a, "anything"), VerifyResult::kMismatch);
}

}  // namespace
}  // namespace popgate::auth
