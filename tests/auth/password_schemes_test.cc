// The Dovecot schemes other than argon2: hashes made by the real doveadm,
// mismatches, malformed values, cost caps and is_supported_scheme().
#include <gtest/gtest.h>

#include <string>

#include "server/auth/password.h"

namespace popgate::auth {
namespace {

struct Vector {
  const char* password;
  const char* stored;
};

// Made by Dovecot 2.3.19.1 (Debian 12) with
//   doveadm pw -s SCHEME -p 'PASSWORD'
// one command per line below, e.g. doveadm pw -s SHA512-CRYPT -p 'sha512 crypt pw'.
constexpr Vector kDoveadm[] = {
    // doveadm pw -s SHA512-CRYPT -p 'sha512 crypt pw'
    {"sha512 crypt pw",
     "{SHA512-CRYPT}$6$FkpqdEXMChSgKUiE$D29FUha8Js."
     "lkNhtuuhTRRgdhlhSqIqn6j27snXxihpTMqEHAqrUPXd4FUfiO"
     "Bwfsm8N.5m04YIvlGLtozE3e/"},
    // doveadm pw -s SHA512-CRYPT -p 'pässwörd ✓'
    {"p\xC3\xA4ssw\xC3\xB6rd \xE2\x9C\x93",
     "{SHA512-CRYPT}$6$rIO0tXxSWXbAWH/z$Pn/"
     "BFV22SzDJDKypWOlBSD8NtEI2uCBrNwa0w2Ybkl4fcWwJw4rESNrWLzT35"
     "yt8cqkqzpg4d/rJMjzSXlbnW0"},
    // doveadm pw -s SHA512-CRYPT -r 6000 -p 'sha512 rounds pw'
    {"sha512 rounds pw",
     "{SHA512-CRYPT}$6$rounds=6000$VddykDJnjjlJwICW$DvWf09NmF2zmkQztjgvYzN339Ak5Rbcnv.WCPRF1BZ708."
     "dv"
     "vOl2Fo3jeMDJjykfWOReZzQmTlBhO2WeJjVbx1"},
    // doveadm pw -s SHA256-CRYPT -p 'sha256 crypt pw'
    {"sha256 crypt pw",
     "{SHA256-CRYPT}$5$JGzZWj.KPMjkbl3c$J4TUIHSZS6vel2rDbBe5/E.ELzwQbiJizee4ZzJM3lB"},
    // doveadm pw -s BLF-CRYPT -p 'blowfish pw'
    {"blowfish pw", "{BLF-CRYPT}$2y$05$pOue6E/BEGd0jI.xfUZAWe2mya2AQGzk0A5vyt/1WzZ6JAINQBiDS"},
    // doveadm pw -s BLF-CRYPT -r 10 -p 'bcrypt cost 10'
    {"bcrypt cost 10", "{BLF-CRYPT}$2y$10$ae5O8slQNCoQiqfMkb.EsuO3pGU6uCstL0hzZzxHcPfF6pnf5Gyfm"},
    // doveadm pw -s BLF-CRYPT.HEX -p 'x'
    {"x",
     "{BLF-CRYPT.HEX}"
     "24327924303524534f33776b317066374a554c6e56622e697979447065614843374e54764d535143"
     "35336c6f6330486b58457552325053722f486636"},
    // doveadm pw -s MD5-CRYPT -p 'md5 crypt pw'
    {"md5 crypt pw", "{MD5-CRYPT}$1$gTlQfbTM$XVtEC1pOAIEK4VAbOZCb10"},
    // doveadm pw -s CRYPT -p 'crypt pw'   (Dovecot 2.3 makes bcrypt for CRYPT)
    {"crypt pw", "{CRYPT}$2y$05$hUJOtr3k1nq8aE5rGMPom.NsHywAMQ52QqFCx1LuewhPGdVIX2hj2"},
    // doveadm pw -s DES-CRYPT -p 'des pw'
    {"des pw", "{DES-CRYPT}SuFniCKObG/7c"},
    // doveadm pw -s SSHA -p 'ssha pw'
    {"ssha pw", "{SSHA}HSeM/pP/POzeZ1QgcHpVvIdecZDBX6LS"},
    // doveadm pw -s SSHA256 -p 'ssha256 pw'
    {"ssha256 pw", "{SSHA256}Jx6zdSMEr+GVwroZg0vh480m+MKG9I6FWe4mboNeeT+kblIA"},
    // doveadm pw -s SSHA512 -p 'ssha512 pw'
    {"ssha512 pw",
     "{SSHA512}W0nD5xc1TW/"
     "7v7wIGFMZSrsOSkpXH5C2TImfruzze9yFiUIE949jNwgYyVYM2bwLQcMNOkmyWTM6wdiepaNaBk"
     "eD1BA="},
    // doveadm pw -s SHA -p 'sha pw'
    {"sha pw", "{SHA}7ubAkIthNAIpEJjMktYaoVaMPB8="},
    // doveadm pw -s SHA1 -p 'sha1 pw'
    {"sha1 pw", "{SHA1}Y/Xy6qKOF1R+GS8897n51eM67hk="},
    // doveadm pw -s SHA256 -p 'sha256 pw'
    {"sha256 pw", "{SHA256}SHY/hMVJggFbkH3Sf7UUqs2QVguG4hQMsR2hmDMyu5A="},
    // doveadm pw -s SHA512 -p 'sha512 pw'
    {"sha512 pw",
     "{SHA512}Jw43DDpSfC/me9iR9iTPDP/"
     "qxF6iyxZtzEkZuKA4WvfHAhe53Sj4X1FZsVhXx7XLlO2b0HA+oss4uVFXFClUJw=="},
    // doveadm pw -s SHA.HEX -p 'sha hex pw'
    {"sha hex pw", "{SHA.HEX}8c851a7ad4ea98575b0f0d96c9575e8ca8c4caa7"},
    // doveadm pw -s SHA256.HEX -p 'sha256 hex pw'
    {"sha256 hex pw",
     "{SHA256.HEX}28e0bd8780ec50b2cdd377ae70261fe8bf563fbd56122b7cb8f0f5804871a1e3"},
    // doveadm pw -s SHA512.HEX -p 'sha512 hex pw'
    {"sha512 hex pw",
     "{SHA512.HEX}"
     "d3c39124d715261ec97686221702995ad2ed68b21a84dcd08fbd6e2851318ee935ee939337debb18c930a"
     "73d97bd78fd800e30585a9095a46c8070dcaa1aa1ad"},
    // doveadm pw -s SSHA.HEX -p 'ssha hex pw'
    {"ssha hex pw", "{SSHA.HEX}c8bcecd208aa4a7feb770d181d157712dba7e0eae495586a"},
    // doveadm pw -s SSHA512.B64 -p 'ssha512 b64 pw'
    {"ssha512 b64 pw",
     "{SSHA512.B64}xGAeb7//ZYIkHaOewiZcjZWqH6CeHir3TjZ6H0Z7axoqMxVLYQz5MW/"
     "nGhr+iqQGNXCpgD6Vbk8fFSzf5yk"
     "3fcPAk60="},
    // doveadm pw -s PLAIN-MD5 -p 'plain md5 pw'
    {"plain md5 pw", "{PLAIN-MD5}2539e0e215038fcba5e684f9332f301f"},
    // doveadm pw -s LDAP-MD5 -p 'ldap md5 pw'
    {"ldap md5 pw", "{LDAP-MD5}3LrpsjbTjNQq8k/JiuLeLA=="},
    // doveadm pw -s SMD5 -p 'smd5 pw'
    {"smd5 pw", "{SMD5}taqvKoMaH5lOepyGNfWs7qvEbc0="},
    // doveadm pw -s MD5 -p 'md5 pw'
    {"md5 pw", "{MD5}$1$gXhdvQLU$TC.JN5REasYczaWkVZ28d."},
    // doveadm pw -s PBKDF2 -p 'pbkdf2 pw'
    {"pbkdf2 pw", "{PBKDF2}$1$One6l7HE4Qno7vl4$5000$57c052366b233e49613f1bb11f0372b2ab1485d1"},
    // doveadm pw -s PBKDF2 -r 10000 -p 'pbkdf2 10000'
    {"pbkdf2 10000", "{PBKDF2}$1$cMPlubNFcNRSj0DD$10000$ea298f1575c9aa67256f86f036fd3a3b9cc6a444"},
    // doveadm pw -s SCRAM-SHA-256 -p 'scram256 pw'
    {"scram256 pw",
     "{SCRAM-SHA-256}4096,3AyVXPHvJ61rt8BWA5gHjw==,XXpunCtaL3rLz62nZ7FpbxOmnqx27lSe7MEWOBqC0hg=,"
     "IXQIwHXThbg7nNgD4UFk5Q+1acU9JnA87h9vvod1KrU="},
    // doveadm pw -s SCRAM-SHA-1 -p 'scram1 pw'
    {"scram1 pw",
     "{SCRAM-SHA-1}4096,5NdJWJXT/coSH2geWosp6g==,EycSdIu3Waf+ZavR5qwR3xoAA1A=,"
     "Oqlb+6oEeRHI7kP7VyADNg3Rw9s="},
    // doveadm pw -s PLAIN -p 'plain pw'
    {"plain pw", "{PLAIN}plain pw"},
    // doveadm pw -s CLEARTEXT -p 'cleartext pw'
    {"cleartext pw", "{CLEARTEXT}cleartext pw"},
    // doveadm pw -s PLAIN.B64 -p 'plain b64 pw'
    {"plain b64 pw", "{PLAIN.B64}cGxhaW4gYjY0IHB3"},
    // doveadm pw -s PLAIN.HEX -p 'plain hex pw'
    {"plain hex pw", "{PLAIN.HEX}706c61696e20686578207077"},
};

// Not made by doveadm (it has no yescrypt): libxcrypt's own
//   crypt("yescrypt pw", crypt_gensalt("$y$", 0, NULL, 0))
// as /etc/shadow on Debian 12 holds it, and likewise "$7$" and "$gy$".
constexpr Vector kLibxcrypt[] = {
    {"yescrypt pw",
     "{CRYPT}$y$j9T$ldu56pExrFh5Oagnod.5r/$W72G7O7mdt0HRfpl.zbHuELo4AGdVtTEkjU3XV6xVs7"},
    {"scrypt pw",
     "{CRYPT}$7$CU..../....eG2rArQpZ4fFa7Luuewi31$Jq1E2mkjTmc8n9W3li36CjbRZAkxufyzpyXzVO8xUOD"},
    {"gost pw",
     "{CRYPT}$gy$j9T$js9hmcaIfkU.d8VKC3sx6/$RYvZLzoxjCfFepLXC3X3IwMk6oOXlRHL9wtUqdwoWV7"},
    // crypt(3) strings of each family are also accepted under {CRYPT}.
    {"sha512 crypt pw",
     "{CRYPT}$6$FkpqdEXMChSgKUiE$D29FUha8Js."
     "lkNhtuuhTRRgdhlhSqIqn6j27snXxihpTMqEHAqrUPXd4FUfiOBwfsm8N"
     ".5m04YIvlGLtozE3e/"},
    {"des pw", "{CRYPT}SuFniCKObG/7c"},
};

TEST(PasswordSchemes, VerifyDoveadmHashes) {
  for (const auto& v : kDoveadm) {
    SCOPED_TRACE(v.stored);
    EXPECT_TRUE(is_supported_scheme(v.stored));
    EXPECT_EQ(verify_password(v.stored, v.password), VerifyResult::kMatch);
    EXPECT_EQ(verify_password(v.stored, std::string(v.password) + "x"), VerifyResult::kMismatch);
    EXPECT_EQ(verify_password(v.stored, ""), VerifyResult::kMismatch);
  }
}

TEST(PasswordSchemes, VerifyLibxcryptHashes) {
  for (const auto& v : kLibxcrypt) {
    SCOPED_TRACE(v.stored);
    EXPECT_TRUE(is_supported_scheme(v.stored));
    EXPECT_EQ(verify_password(v.stored, v.password), VerifyResult::kMatch);
    EXPECT_EQ(verify_password(v.stored, std::string(v.password) + "!"), VerifyResult::kMismatch);
  }
}

TEST(PasswordSchemes, SchemeNamesAndSuffixesAreCaseInsensitive) {
  EXPECT_EQ(verify_password("{sha}7ubAkIthNAIpEJjMktYaoVaMPB8=", "sha pw"), VerifyResult::kMatch);
  EXPECT_EQ(verify_password("{Sha.hex}8c851a7ad4ea98575b0f0d96c9575e8ca8c4caa7", "sha hex pw"),
            VerifyResult::kMatch);
  EXPECT_EQ(verify_password("{SHA.base64}7ubAkIthNAIpEJjMktYaoVaMPB8=", "sha pw"),
            VerifyResult::kMatch);
  EXPECT_EQ(verify_password("{clear}x y", "x y"), VerifyResult::kMatch);
}

TEST(PasswordSchemes, HexDigestsWithoutSuffixAreRecognisedByLength) {
  // As Dovecot's password_decode(): 2 * digest size characters mean hex.
  EXPECT_EQ(verify_password("{SHA}8c851a7ad4ea98575b0f0d96c9575e8ca8c4caa7", "sha hex pw"),
            VerifyResult::kMatch);
  EXPECT_EQ(verify_password("{SHA}8C851A7AD4EA98575B0F0D96C9575E8CA8C4CAA7", "sha hex pw"),
            VerifyResult::kMatch);
  // and PLAIN-MD5's default is hex, but base64 of the right size works too.
  EXPECT_EQ(verify_password("{PLAIN-MD5}3LrpsjbTjNQq8k/JiuLeLA==", "ldap md5 pw"),
            VerifyResult::kMatch);
}

TEST(PasswordSchemes, PlainComparesWholeStrings) {
  EXPECT_EQ(verify_password("{PLAIN}abc", "abc"), VerifyResult::kMatch);
  EXPECT_EQ(verify_password("{PLAIN}abc", "ab"), VerifyResult::kMismatch);
  EXPECT_EQ(verify_password("{PLAIN}abc", "abcd"), VerifyResult::kMismatch);
  EXPECT_EQ(verify_password("{PLAIN}", ""), VerifyResult::kMatch);  // as Dovecot
  EXPECT_EQ(verify_password("{PLAIN.B64}!!", "x"), VerifyResult::kMalformed);
  EXPECT_EQ(verify_password("{PLAIN.HEX}abc", "x"), VerifyResult::kMalformed);
}

TEST(PasswordSchemes, CryptNeverMatchesPasswordsItCannotSee) {
  const char* stored =
      "{SHA256-CRYPT}$5$JGzZWj.KPMjkbl3c$J4TUIHSZS6vel2rDbBe5/E.ELzwQbiJizee4ZzJM3lB";
  EXPECT_EQ(verify_password(stored, std::string("sha256 crypt pw\0x", 17)),
            VerifyResult::kMismatch);
  EXPECT_EQ(verify_password(stored, std::string(600, 'a')), VerifyResult::kMismatch);
}

TEST(PasswordSchemes, Malformed) {
  const char* cases[] = {
      // digests: bad base64/hex, wrong decoded size, salted without salt
      "{SHA}7ubAkIthNAIpEJjMktYaoVaMPB8=extra",
      "{SHA}****",
      "{SHA256}SHY/hMVJggFbkH3Sf7UUqs2QVguG4hQMsR2hmDMyu5B",  // leftover bits set
      "{SHA.HEX}8c851a7ad4ea98575b0f0d96c9575e8ca8c4caa",
      "{SHA.HEX}zz851a7ad4ea98575b0f0d96c9575e8ca8c4caa7",
      "{SSHA}7ubAkIthNAIpEJjMktYaoVaMPB8=",  // 20 octets: no salt
      "{SSHA}",
      "{SHA512}",
      // crypt families: wrong family, bad lengths, bad characters
      "{SHA512-CRYPT}$1$gTlQfbTM$XVtEC1pOAIEK4VAbOZCb10",
      "{SHA512-CRYPT}$6$FkpqdEXMChSgKUiE$D29FUha8Js",
      "{SHA512-CRYPT}$6$rounds=abc$salt$D29FUha8Js",
      "{SHA256-CRYPT}$5$JGzZWj.KPMjkbl3c$J4TUIHSZS6vel2rDbBe5/E.ELzwQbiJizee4ZzJM3l!",
      "{BLF-CRYPT}$2y$5$pOue6E/BEGd0jI.xfUZAWe2mya2AQGzk0A5vyt/1WzZ6JAINQBiDS",
      "{BLF-CRYPT}$2y$05$pOue6E/BEGd0jI.xfUZAWe2mya2AQGzk0A5vyt/1WzZ6JAINQBiD",
      "{BLF-CRYPT}$2y$03$pOue6E/BEGd0jI.xfUZAWe2mya2AQGzk0A5vyt/1WzZ6JAINQBiDS",  // cost < 4
      "{MD5-CRYPT}$1$toolongsalt$XVtEC1pOAIEK4VAbOZCb10",
      "{DES-CRYPT}SuFniCKObG/7",
      "{CRYPT}",
      "{CRYPT}*",
      "{CRYPT}!$6$FkpqdEXMChSgKUiE$D29FUha8Js",  // a locked /etc/shadow entry
      "{CRYPT}$y$j9T$ldu56pExrFh5Oagnod.5r/$W72G7O7mdt0HRfpl",
      "{CRYPT}$y$j$ldu56pExrFh5Oagnod.5r/$W72G7O7mdt0HRfpl.zbHuELo4AGdVtTEkjU3XV6xVs7",
      "{CRYPT}$y$j9T$$W72G7O7mdt0HRfpl.zbHuELo4AGdVtTEkjU3XV6xVs7",
      // PBKDF2
      "{PBKDF2}$2$One6l7HE4Qno7vl4$5000$57c052366b233e49613f1bb11f0372b2ab1485d1",
      "{PBKDF2}$1$One6l7HE4Qno7vl4$$57c052366b233e49613f1bb11f0372b2ab1485d1",
      "{PBKDF2}$1$One6l7HE4Qno7vl4$0$57c052366b233e49613f1bb11f0372b2ab1485d1",
      "{PBKDF2}$1$One6l7HE4Qno7vl4$5000$57c052366b233e49613f1bb11f0372b2ab1485",
      "{PBKDF2}$1$One6l7HE4Qno7vl4$5000$57c052366b233e49613f1bb11f0372b2ab1485dg",
      "{PBKDF2}$1$One6l7HE4Qno7vl4$5000",
      // SCRAM
      "{SCRAM-SHA-256}4096,3AyVXPHvJ61rt8BWA5gHjw==,XXpunCtaL3rLz62nZ7FpbxOmnqx27lSe7MEWOBqC0hg=",
      "{SCRAM-SHA-256}0,3AyVXPHvJ61rt8BWA5gHjw==,XXpunCtaL3rLz62nZ7FpbxOmnqx27lSe7MEWOBqC0hg=,"
      "IXQIwHXThbg7nNgD4UFk5Q+1acU9JnA87h9vvod1KrU=",
      "{SCRAM-SHA-256}4096,,XXpunCtaL3rLz62nZ7FpbxOmnqx27lSe7MEWOBqC0hg=,"
      "IXQIwHXThbg7nNgD4UFk5Q+1acU9JnA87h9vvod1KrU=",
      "{SCRAM-SHA-256}4096,3AyVXPHvJ61rt8BWA5gHjw==,EycSdIu3Waf+ZavR5qwR3xoAA1A=,"
      "Oqlb+6oEeRHI7kP7VyADNg3Rw9s=",  // SHA-1 sized keys
      "{SCRAM-SHA-1}4096,5NdJWJXT/coSH2geWosp6g==,EycSdIu3Waf+ZavR5qwR3xoAA1A=,"
      "Oqlb+6oEeRHI7kP7VyADNg3Rw9s=,extra",
      // a suffix on a text scheme that does not decode
      "{BLF-CRYPT.HEX}zz",
  };
  for (const char* stored : cases) {
    SCOPED_TRACE(stored);
    EXPECT_EQ(verify_password(stored, "pw"), VerifyResult::kMalformed);
    EXPECT_FALSE(is_supported_scheme(stored));
  }
  const std::string huge = "{PLAIN}" + std::string(kStoredHashBytesMax, 'a');
  EXPECT_EQ(verify_password(huge, "pw"), VerifyResult::kMalformed);
}

TEST(PasswordSchemes, RefusesCostsOverTheCaps) {
  // Each would be valid syntax, and each would tie up a worker: refused
  // before hashing (these tests would time out otherwise).
  const std::string over_pbkdf2 = std::to_string(kPbkdf2IterationsMax + 1);
  const char* scram_rest =
      ",3AyVXPHvJ61rt8BWA5gHjw==,XXpunCtaL3rLz62nZ7FpbxOmnqx27lSe7MEWOBqC0hg=,"
      "IXQIwHXThbg7nNgD4UFk5Q+1acU9JnA87h9vvod1KrU=";
  const std::string cases[] = {
      "{PBKDF2}$1$salt$" + over_pbkdf2 + "$57c052366b233e49613f1bb11f0372b2ab1485d1",
      "{PBKDF2}$1$salt$4294967296$57c052366b233e49613f1bb11f0372b2ab1485d1",
      "{SCRAM-SHA-256}" + over_pbkdf2 + scram_rest,
      "{SCRAM-SHA-256}99999999999999999999" + std::string(scram_rest),
      "{BLF-CRYPT}$2y$16$pOue6E/BEGd0jI.xfUZAWe2mya2AQGzk0A5vyt/1WzZ6JAINQBiDS",
      "{BLF-CRYPT}$2b$31$pOue6E/BEGd0jI.xfUZAWe2mya2AQGzk0A5vyt/1WzZ6JAINQBiDS",
      "{SHA512-CRYPT}$6$rounds=" + std::to_string(kShaCryptRoundsMax + 1) +
          "$VddykDJnjjlJwICW$DvWf09NmF2zmkQztjgvYzN339Ak5Rbcnv.WCPRF1BZ708."
          "dvvOl2Fo3jeMDJjykfWOReZzQm"
          "TlBhO2WeJjVbx1",
      "{SHA256-CRYPT}$5$rounds=999999999$JGzZWj.KPMjkbl3c$J4TUIHSZS6vel2rDbBe5/"
      "E.ELzwQbiJizee4ZzJM3lB",
      // yescrypt N = 2^20 ('H'), r = 32 ('T'): 4 GiB
      "{CRYPT}$y$jHT$ldu56pExrFh5Oagnod.5r/$W72G7O7mdt0HRfpl.zbHuELo4AGdVtTEkjU3XV6xVs7",
      // scrypt N = 2^30 ('S'), r = 32
      "{CRYPT}$7$SU..../....eG2rArQpZ4fFa7Luuewi31$Jq1E2mkjTmc8n9W3li36CjbRZAkxufyzpyXzVO8xUOD",
  };
  for (const std::string& stored : cases) {
    SCOPED_TRACE(stored);
    EXPECT_EQ(verify_password(stored, "pw"), VerifyResult::kMalformed);
    EXPECT_FALSE(is_supported_scheme(stored));
  }
  // At the caps themselves the hashes are accepted as well-formed.
  EXPECT_TRUE(is_supported_scheme("{PBKDF2}$1$salt$" + std::to_string(kPbkdf2IterationsMax) +
                                  "$57c052366b233e49613f1bb11f0372b2ab1485d1"));
  EXPECT_TRUE(is_supported_scheme(
      "{BLF-CRYPT}$2y$15$pOue6E/BEGd0jI.xfUZAWe2mya2AQGzk0A5vyt/1WzZ6JAINQBiDS"));
}

TEST(PasswordSchemes, IsSupportedSchemeCoversArgon2) {
  EXPECT_TRUE(
      is_supported_scheme("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$CHWvxE1cDh6jdtjQqITMOw$"
                          "0LPuPa8okxDYBeKsH1Vw4/Ogp/FEpO0lkr9OYBPGCBw"));
  EXPECT_TRUE(
      is_supported_scheme(hash_password("pw", {.memory_kib = 64, .passes = 1, .lanes = 1})));
  EXPECT_FALSE(
      is_supported_scheme("{ARGON2ID}$argon2i$v=19$m=65536,t=3,p=1$CHWvxE1cDh6jdtjQqITMOw$"
                          "0LPuPa8okxDYBeKsH1Vw4/Ogp/FEpO0lkr9OYBPGCBw"));
  EXPECT_FALSE(
      is_supported_scheme("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$CHWvxE1cDh6jdtjQqITMOw"));
  EXPECT_FALSE(
      is_supported_scheme("{ARGON2ID}$argon2id$v=19$m=4194304,t=3,p=1$CHWvxE1cDh6jdtjQqITMOw$"
                          "0LPuPa8okxDYBeKsH1Vw4/Ogp/FEpO0lkr9OYBPGCBw"));
  EXPECT_FALSE(is_supported_scheme("{FOO}bar"));
  EXPECT_FALSE(is_supported_scheme("plaintext"));
  EXPECT_FALSE(is_supported_scheme(""));
}

}  // namespace
}  // namespace popgate::auth
