#include "storage/pg_codec.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace popgate::storage {
namespace {

TEST(Codec, Int8RoundTripsInNetworkOrder) {
  char buf[kInt8Bytes];
  encode_int8(0x0102030405060708LL, buf);
  EXPECT_EQ(std::string(buf, sizeof buf), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  for (const int64_t v : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{255}, int64_t{-256},
                          std::numeric_limits<int64_t>::min(),
                          std::numeric_limits<int64_t>::max()}) {
    encode_int8(v, buf);
    int64_t back = 42;
    ASSERT_TRUE(decode_int8(buf, kInt8Bytes, back));
    EXPECT_EQ(back, v);
  }
  encode_int8(-1, buf);
  EXPECT_EQ(std::string(buf, sizeof buf), std::string(8, '\xff'));
}

TEST(Codec, Int4RoundTripsInNetworkOrder) {
  char buf[kInt4Bytes];
  encode_int4(0x0a0b0c0d, buf);
  EXPECT_EQ(std::string(buf, sizeof buf), "\x0a\x0b\x0c\x0d");
  for (const int32_t v : {0, 1, -1, 65536, std::numeric_limits<int32_t>::min(),
                          std::numeric_limits<int32_t>::max()}) {
    encode_int4(v, buf);
    int32_t back = 42;
    ASSERT_TRUE(decode_int4(buf, kInt4Bytes, back));
    EXPECT_EQ(back, v);
  }
}

TEST(Codec, DecodeRejectsWrongWidth) {
  const char bytes[9] = {};
  int64_t v8 = 7;
  int32_t v4 = 7;
  EXPECT_FALSE(decode_int8(bytes, 4, v8));
  EXPECT_FALSE(decode_int8(bytes, 9, v8));
  EXPECT_FALSE(decode_int8(bytes, 0, v8));
  EXPECT_EQ(v8, 7);  // untouched
  EXPECT_FALSE(decode_int4(bytes, 8, v4));
  EXPECT_EQ(v4, 7);
}

TEST(Codec, FormatsInt8ArrayLiteral) {
  std::string out = "garbage";
  format_int8_array({}, out);
  EXPECT_EQ(out, "{}");
  const std::vector<int64_t> one{42};
  format_int8_array(one, out);
  EXPECT_EQ(out, "{42}");
  const std::vector<int64_t> many{1, -2, std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::max()};
  format_int8_array(many, out);
  EXPECT_EQ(out, "{1,-2,-9223372036854775808,9223372036854775807}");
}

TEST(Codec, FormatReusesCapacity) {
  std::string out;
  const std::vector<int64_t> ids(100, 123456789);
  format_int8_array(ids, out);
  const auto* data = out.data();
  const std::vector<int64_t> fewer(50, 7);
  format_int8_array(fewer, out);
  EXPECT_EQ(out.data(), data);  // no reallocation for a smaller list
}

TEST(Codec, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9"));              // é
  EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));          // €
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x93\xab"));      // 📫
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));      // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));                 // stray continuation
  EXPECT_FALSE(is_valid_utf8("\xc0\x80"));             // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));         // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));         // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));     // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("abc\xe2\x82"));          // truncated at the end
  EXPECT_FALSE(is_valid_utf8("\xe2\x28\xa1"));         // bad continuation
}

}  // namespace
}  // namespace popgate::storage
