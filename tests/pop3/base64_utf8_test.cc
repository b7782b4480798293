#include <gtest/gtest.h>

#include "server/pop3/base64.h"
#include "server/pop3/utf8.h"

namespace popgate::pop3 {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    std::string out;
    base64_encode(plain, out);
    EXPECT_EQ(out, encoded);
    ASSERT_TRUE(base64_decode(encoded, out)) << encoded;
    EXPECT_EQ(out, plain);
  }
}

TEST(Base64, BinaryRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  std::string enc, dec;
  base64_encode(all, enc);
  ASSERT_TRUE(base64_decode(enc, dec));
  EXPECT_EQ(dec, all);
}

TEST(Base64, StrictDecoding) {
  std::string out;
  for (std::string_view bad : {"Zg=", "Zg", "Z===", "Zg==Zg==", "Zm9v\n", " Zm9v", "Zm=v", "Zh==", "Zm9=",
                               "!!!!", "Zm8"}) {
    EXPECT_FALSE(base64_decode(bad, out)) << bad;
  }
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("jürgen ✓ 𝄞"));
  EXPECT_FALSE(is_valid_utf8("\xC3\x28"));          // bad continuation
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation
  EXPECT_TRUE(is_ascii("abc"));
  EXPECT_FALSE(is_ascii("ä"));
}

}  // namespace
}  // namespace popgate::pop3
