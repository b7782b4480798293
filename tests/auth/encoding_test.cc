#include "server/auth/encoding.h"

#include <gtest/gtest.h>

#include <string>

namespace popgate::auth {
namespace {

TEST(Encoding, Base64Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
    std::string unpadded(encoded);
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    EXPECT_EQ(base64_decode(unpadded), plain);
    EXPECT_EQ(base64url_decode(unpadded), plain);
    EXPECT_EQ(base64url_encode(plain), unpadded);
  }
}

TEST(Encoding, Base64RefusesWhatIsNotCanonical) {
  for (const char* bad : {"Zg=", "Zg===", "Z", "Zm9", "Zh==", "Zm9=v", "Zm 9v", "Zm9v\n",
                          "====", "Zg==Zg==", "-_==", "Zm9vYmF="}) {
    EXPECT_FALSE(base64_decode(std::string_view(bad))) << bad;
  }
  EXPECT_FALSE(base64url_decode(std::string_view("Zg==")));
  EXPECT_FALSE(base64url_decode(std::string_view("+/")));
  EXPECT_EQ(base64url_decode(std::string_view("-_8")), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64_decode(std::string_view("+/8=")), std::string("\xfb\xff", 2));
}

TEST(Encoding, DecodeIntoTooSmallBuffer) {
  std::array<uint8_t, 2> out{};
  EXPECT_FALSE(base64_decode("Zm9v", out));
  EXPECT_EQ(base64_decode("Zm8=", out), 2u);
  EXPECT_FALSE(hex_decode("aabbcc", out));
  std::array<char, 3> small{};
  EXPECT_EQ(base64_encode("f", small), 0u);
  EXPECT_EQ(hex_encode("ab", small), 0u);
}

TEST(Encoding, AllByteValuesRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(char(i));
  for (size_t len = 0; len <= all.size(); len += 1) {
    const std::string part = all.substr(256 - len);
    EXPECT_EQ(base64_decode(base64_encode(part)), part);
    EXPECT_EQ(base64url_decode(base64url_encode(part)), part);
    std::array<uint8_t, 256> out{};
    EXPECT_EQ(hex_decode(hex_encode(part), out), part.size());
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(out.data()), part.size()), part);
  }
}

TEST(Encoding, Hex) {
  std::array<uint8_t, 4> out{};
  EXPECT_EQ(hex_decode("00fFaB", out), 3u);
  EXPECT_EQ(out[1], 0xff);
  EXPECT_EQ(out[2], 0xab);
  EXPECT_FALSE(hex_decode("abc", out));
  EXPECT_FALSE(hex_decode("zz", out));
  EXPECT_EQ(hex_encode(std::string("\x00\xff", 2)), "00ff");
}

TEST(Encoding, ConstantTimeEqual) {
  EXPECT_TRUE(ct_equal("", ""));
  EXPECT_TRUE(ct_equal("abc", "abc"));
  EXPECT_FALSE(ct_equal("abc", "abd"));
  EXPECT_FALSE(ct_equal("abc", "ab"));
}

}  // namespace
}  // namespace popgate::auth
