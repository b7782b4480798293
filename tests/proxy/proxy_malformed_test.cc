// Malformed headers: each is kInvalid with its own reason, the same whether
// fed whole, split anywhere or byte by byte; and the parser refuses as soon
// as a byte proves the input wrong, without waiting for more.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/proxy/proxy_protocol.h"
#include "server/proxy/proxy_v1.h"
#include "server/proxy/proxy_v2.h"
#include "tests/proxy/proxy_test_support.h"

namespace popgate::proxy {
namespace {

using testing::bytes;
using testing::describe;
using testing::FeedResult;
using testing::ssl_value;
using testing::tlv;
using testing::V2Builder;

struct Bad {
  std::string name;
  std::string input;
  std::string error;
};

V2Builder tcp4() {
  V2Builder b;
  b.inet4("192.0.2.1", "198.51.100.2", 40000, 110);
  return b;
}

V2Builder with(V2Builder b, uint8_t version_command, uint8_t family_protocol) {
  b.version_command = version_command;
  b.family_protocol = family_protocol;
  return b;
}

V2Builder with_length(V2Builder b, uint16_t length) {
  b.length_override = length;
  return b;
}

std::string v2_raw(std::string_view tlvs) {
  V2Builder b = tcp4();
  b.tlvs = std::string(tlvs);
  return b.build();
}

std::vector<Bad> v1_bad() {
  const std::string ffff6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  return {
      {"http", "GET / HTTP/1.1\r\n", "not_proxy"},
      {"pop3", "USER alice\r\n", "not_proxy"},
      {"tls_client_hello", bytes("\x16\x03\x01\x00\xc8\x01", 6), "not_proxy"},
      {"lowercase", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not_proxy"},
      {"proxx", "PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not_proxy"},
      {"no_space_after_proxy", "PROXY\r\n", "not_proxy"},
      {"no_crlf_in_107", "PROXY UNKNOWN " + std::string(93, 'a'), "v1_too_long"},
      {"crlf_at_108", "PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 655355\r\n",
       "v1_too_long"},
      {"bare_lf", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1_bare_cr_or_lf"},
      {"bare_cr", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "v1_bare_cr_or_lf"},
      {"cr_cr_lf", "PROXY UNKNOWN\r\r\n", "v1_bare_cr_or_lf"},
      {"nul_byte", bytes("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33), "v1_bad_byte"},
      {"tab", "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", "v1_bad_byte"},
      {"high_byte", "PROXY UNKNOWN \xff\r\n", "v1_bad_byte"},
      {"tcp5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "v1_bad_protocol"},
      {"udp4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "v1_bad_protocol"},
      {"lower_tcp4", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "v1_bad_protocol"},
      {"unknownx", "PROXY UNKNOWNX\r\n", "v1_bad_protocol"},
      {"double_space_after_proxy", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "v1_bad_spacing"},
      {"double_space_in_fields", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "v1_bad_spacing"},
      {"trailing_space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "v1_bad_spacing"},
      {"empty_protocol", "PROXY \r\n", "v1_bad_spacing"},
      {"no_fields", "PROXY TCP4\r\n", "v1_field_count"},
      {"three_fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "v1_field_count"},
      {"five_fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "v1_field_count"},
      {"short_ipv4", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "v1_bad_source_address"},
      {"octet_256", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "v1_bad_source_address"},
      {"leading_zero_octet", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "v1_bad_source_address"},
      {"bad_destination", "PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n", "v1_bad_destination_address"},
      {"bad_ipv6", "PROXY TCP6 ::g ::1 1 2\r\n", "v1_bad_source_address"},
      {"ipv6_two_gaps", "PROXY TCP6 ::1 1::2::3 1 2\r\n", "v1_bad_destination_address"},
      {"tcp4_with_ipv6", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "v1_family_mismatch"},
      {"tcp6_with_ipv4", "PROXY TCP6 ::1 5.6.7.8 1 2\r\n", "v1_family_mismatch"},
      {"port_65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "v1_bad_source_port"},
      {"port_plus", "PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", "v1_bad_source_port"},
      {"port_minus", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "v1_bad_source_port"},
      {"port_leading_zero", "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", "v1_bad_source_port"},
      {"port_junk", "PROXY TCP4 1.2.3.4 5.6.7.8 8o 2\r\n", "v1_bad_source_port"},
      {"port_huge", "PROXY TCP4 1.2.3.4 5.6.7.8 99999999999 2\r\n", "v1_bad_source_port"},
      {"destination_port_junk", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n",
       "v1_bad_destination_port"},
  };
}

std::vector<Bad> v2_bad() {
  const std::string ok_ssl = tlv(0x20, ssl_value(1, 0, tlv(0x21, "TLSv1.3")));
  V2Builder bad_crc = tcp4();
  bad_crc.with_crc = true;
  bad_crc.crc_override = 0xdeadbeef;
  V2Builder tampered = tcp4();
  tampered.add_tlv(0x02, "mail.example.com");
  tampered.with_crc = true;
  std::string tampered_bytes = tampered.build();
  tampered_bytes[17] ^= 0x01;  // flip a bit in the source address after signing
  return {
      {"signature_byte_5", bytes("\r\n\r\n\1\r\nQUIT\n\x21\x11\0\0", 16), "not_proxy"},
      {"signature_last_byte", bytes("\r\n\r\n\0\r\nQUIT\r\x21\x11\0\0", 16), "not_proxy"},
      {"version_1", with(tcp4(), 0x11, 0x11).build(), "v2_bad_version"},
      {"version_3", with(tcp4(), 0x31, 0x11).build(), "v2_bad_version"},
      {"command_2", with(tcp4(), 0x22, 0x11).build(), "v2_bad_command"},
      {"command_f", with(tcp4(), 0x2F, 0x11).build(), "v2_bad_command"},
      {"family_4", with(tcp4(), 0x21, 0x41).build(), "v2_bad_family"},
      {"protocol_3", with(tcp4(), 0x21, 0x13).build(), "v2_bad_family"},
      {"inet_unspec_protocol", with(tcp4(), 0x21, 0x10).build(), "v2_bad_family"},
      {"unspec_stream", with(tcp4(), 0x21, 0x01).build(), "v2_bad_family"},
      {"local_bad_family", with(tcp4(), 0x20, 0x33).build(), "v2_bad_family"},
      {"too_long", with_length(tcp4(), 4097).build() + std::string(4097 - 12, '\0'),
       "v2_too_long"},
      {"too_long_max", with_length(tcp4(), 0xFFFF).build(), "v2_too_long"},
      {"short_inet4", with_length(tcp4(), 11).build(), "v2_short_address_block"},
      {"short_inet6", with_length(with(tcp4(), 0x21, 0x21), 35).build() + std::string(23, '\0'),
       "v2_short_address_block"},
      {"short_unix", with_length(with(tcp4(), 0x21, 0x31), 215).build() + std::string(203, 'a'),
       "v2_short_address_block"},
      {"short_inet4_local", with_length(with(tcp4(), 0x20, 0x11), 4).build(),
       "v2_short_address_block"},
      {"tlv_two_bytes_left", v2_raw(bytes("\x02\x00", 2)), "v2_tlv_truncated"},
      {"tlv_one_byte_left", v2_raw(bytes("\x04", 1)), "v2_tlv_truncated"},
      {"tlv_overrun", v2_raw(bytes("\x02\x00\x05" "abcd", 7)), "v2_tlv_overrun"},
      {"tlv_overrun_max", v2_raw(bytes("\x04\xff\xff", 3)), "v2_tlv_overrun"},
      {"tlv_overrun_after_good", v2_raw(tlv(0x01, "pop3") + bytes("\x30\x00\x09xy", 5)),
       "v2_tlv_overrun"},
      {"duplicate_authority", tcp4().add_tlv(0x02, "a").add_tlv(0x02, "b").build(),
       "v2_duplicate_tlv"},
      {"duplicate_ssl", v2_raw(ok_ssl + ok_ssl), "v2_duplicate_tlv"},
      {"duplicate_ssl_cn",
       tcp4().add_tlv(0x20, ssl_value(1, 0, tlv(0x22, "a") + tlv(0x22, "b"))).build(),
       "v2_duplicate_tlv"},
      {"unique_id_129", tcp4().add_tlv(0x05, std::string(129, 'u')).build(),
       "v2_unique_id_too_long"},
      {"ssl_4_bytes", tcp4().add_tlv(0x20, bytes("\x01\0\0\0", 4)).build(), "v2_ssl_too_short"},
      {"ssl_sub_truncated", tcp4().add_tlv(0x20, ssl_value(1, 0, bytes("\x21\x00", 2))).build(),
       "v2_ssl_sub_tlv_truncated"},
      {"ssl_sub_overrun",
       tcp4().add_tlv(0x20, ssl_value(1, 0, bytes("\x22\x00\x09" "abc", 6))).build(),
       "v2_ssl_sub_tlv_overrun"},
      {"crc_3_bytes", tcp4().add_tlv(0x03, "abc").build(), "v2_bad_crc32c_length"},
      {"crc_5_bytes", tcp4().add_tlv(0x03, "abcde").build(), "v2_bad_crc32c_length"},
      {"crc_wrong", bad_crc.build(), "v2_crc32c_mismatch"},
      {"crc_tampered", tampered_bytes, "v2_crc32c_mismatch"},
  };
}

std::vector<Bad> all_bad() {
  std::vector<Bad> cases = v1_bad();
  for (auto& c : v2_bad()) cases.push_back(c);
  return cases;
}

class ProxyMalformedTest : public ::testing::TestWithParam<Bad> {};

TEST_P(ProxyMalformedTest, InvalidWithItsReasonHoweverFed) {
  const Bad& bad = GetParam();
  const FeedResult whole = testing::feed_whole(bad.input);
  ASSERT_EQ(whole.status, ProxyParser::Status::kInvalid) << describe(whole);
  EXPECT_EQ(whole.error, bad.error);
  EXPECT_EQ(whole.header, "");
  for (size_t at = 0; at <= bad.input.size(); ++at) {
    EXPECT_EQ(testing::feed_split(bad.input, at), whole) << "split at " << at;
  }
  EXPECT_EQ(testing::feed_bytewise(bad.input), whole);
}

INSTANTIATE_TEST_SUITE_P(Malformed, ProxyMalformedTest, ::testing::ValuesIn(all_bad()),
                         [](const auto& param_info) { return param_info.param.name; });

// Bytes needed before the parser can refuse: it must not wait for more.
struct Early {
  std::string name;
  std::string input;
  std::string error;
};

class ProxyEarlyRefusalTest : public ::testing::TestWithParam<Early> {};

TEST_P(ProxyEarlyRefusalTest, RefusesOnTheByteThatProvesIt) {
  const Early& early = GetParam();
  const std::string head = early.input.substr(0, early.input.size() - 1);
  EXPECT_EQ(testing::feed_whole(head).status, ProxyParser::Status::kNeedMore);
  const FeedResult result = testing::feed_whole(early.input);
  EXPECT_EQ(result.status, ProxyParser::Status::kInvalid);
  EXPECT_EQ(result.error, early.error);
}

INSTANTIATE_TEST_SUITE_P(
    Early, ProxyEarlyRefusalTest,
    ::testing::Values(
        Early{"tls_first_byte", "\x16", "not_proxy"},
        Early{"pop3_first_byte", "U", "not_proxy"},
        Early{"v1_sixth_byte", "PROXY\r", "not_proxy"},
        Early{"v2_fifth_byte", bytes("\r\n\r\n\x01", 5), "not_proxy"},
        Early{"v1_bad_byte", bytes("PROXY TCP4 \0", 12), "v1_bad_byte"},
        Early{"v1_bare_lf", "PROXY TCP4\n", "v1_bare_cr_or_lf"},
        Early{"v1_107_without_crlf", "PROXY " + std::string(101, 'x'), "v1_too_long"},
        Early{"v2_version", bytes("\r\n\r\n\0\r\nQUIT\n\x11", 13), "v2_bad_version"},
        Early{"v2_family", bytes("\r\n\r\n\0\r\nQUIT\n\x21\x44", 14), "v2_bad_family"},
        Early{"v2_length", bytes("\r\n\r\n\0\r\nQUIT\n\x21\x11\x10\x01", 16), "v2_too_long"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(ProxyDecodeTest, LeavesHeaderEmptyOnError) {
  ProxyHeader header;
  EXPECT_EQ(decode_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 x\r\n", &header),
            ProxyError::kV1BadDestinationPort);
  EXPECT_FALSE(header.has_addresses);
  EXPECT_EQ(header.version, ProxyVersion::kNone);
  EXPECT_EQ(decode_v2(tcp4().add_tlv(0x02, "a").add_tlv(0x03, "x").build(), &header),
            ProxyError::kV2BadCrc32cLength);
  EXPECT_TRUE(header.authority.empty());
  EXPECT_FALSE(header.has_addresses);
}

TEST(ProxyDecodeTest, DecodeV2RejectsAMiscutHeader) {
  ProxyHeader header;
  const std::string whole = tcp4().build();
  EXPECT_EQ(decode_v2(whole.substr(0, 10), &header), ProxyError::kNotProxy);
  EXPECT_EQ(decode_v2(whole.substr(0, 14), &header), ProxyError::kV2ShortAddressBlock);
  EXPECT_EQ(decode_v2("PROXY UNKNOWN\r\n", &header), ProxyError::kNotProxy);
  EXPECT_EQ(decode_v2(whole.substr(0, whole.size() - 1), &header),
            ProxyError::kV2ShortAddressBlock);
  EXPECT_EQ(decode_v2(whole, &header), ProxyError::kNone);
}

TEST(ProxyErrorTest, EveryErrorHasADistinctName) {
  std::vector<std::string_view> names;
  for (size_t i = 0; i < static_cast<size_t>(ProxyError::kCount); ++i) {
    const std::string_view name = proxy_error_name(static_cast<ProxyError>(i));
    EXPECT_FALSE(name.empty());
    EXPECT_NE(name, "unknown") << i;
    for (const std::string_view other : names) EXPECT_NE(name, other);
    names.push_back(name);
  }
  EXPECT_EQ(proxy_error_name(ProxyError::kCount), "unknown");
}

}  // namespace
}  // namespace popgate::proxy
