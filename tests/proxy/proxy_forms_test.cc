// Every valid PROXY form, fed whole, split at every offset and one byte at a
// time, alone and with POP3 or TLS bytes behind it: same header, and
// `consumed` ends exactly where the header does.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/proxy/proxy_protocol.h"
#include "tests/proxy/proxy_test_support.h"

namespace popgate::proxy {
namespace {

using testing::bytes;
using testing::describe;
using testing::FeedResult;
using testing::ssl_value;
using testing::tlv;
using testing::V2Builder;

struct Form {
  std::string name;
  std::string input;
  std::string expected;  // describe() of the header
};

V2Builder tcp4() {
  V2Builder b;
  b.inet4("192.0.2.1", "198.51.100.2", 40000, 110);
  return b;
}

constexpr const char* kTcp4 = "v2 PROXY stream 192.0.2.1:40000 -> 198.51.100.2:110";

std::string full_ssl() {
  return ssl_value(kPp2ClientSsl | kPp2ClientCertConn | kPp2ClientCertSess, 0,
                   tlv(0x21, "TLSv1.3") + tlv(0x22, "alice.example") +
                       tlv(0x23, "TLS_AES_128_GCM_SHA256") + tlv(0x24, "RSA-SHA256") +
                       tlv(0x25, "RSA2048"));
}

std::vector<Form> v1_forms() {
  const std::string ffff6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  return {
      {"tcp4", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
       "v1 PROXY stream 192.168.0.1:56324 -> 192.168.0.11:443"},
      {"tcp4_longest", "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
       "v1 PROXY stream 255.255.255.255:65535 -> 255.255.255.255:65535"},
      {"tcp4_port_zero", "PROXY TCP4 0.0.0.0 10.0.0.1 0 110\r\n",
       "v1 PROXY stream 0.0.0.0:0 -> 10.0.0.1:110"},
      {"tcp6_full",
       "PROXY TCP6 2001:0db8:0000:0000:0000:0000:0000:0001 " + ffff6 + " 65535 995\r\n",
       "v1 PROXY stream [2001:db8::1]:65535 -> [" + ffff6 + "]:995"},
      {"tcp6_compressed", "PROXY TCP6 ::1 fe80::1 1234 110\r\n",
       "v1 PROXY stream [::1]:1234 -> [fe80::1]:110"},
      {"tcp6_mapped", "PROXY TCP6 ::ffff:192.0.2.1 ::FFFF:198.51.100.2 40000 110\r\n",
       "v1 PROXY stream [::ffff:192.0.2.1]:40000 -> [::ffff:198.51.100.2]:110"},
      {"unknown_short", "PROXY UNKNOWN\r\n", "v1 PROXY unspec"},
      {"unknown_longest", "PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 65535\r\n",
       "v1 PROXY unspec"},
      {"unknown_with_anything", "PROXY UNKNOWN whatever  is here\r\n", "v1 PROXY unspec"},
  };
}

std::vector<Form> v2_address_forms() {
  V2Builder local;
  local.version_command = 0x20;
  local.family_protocol = 0x00;
  V2Builder local_tcp4 = tcp4();
  local_tcp4.version_command = 0x20;
  V2Builder local_tlv = local;
  local_tlv.add_tlv(0x05, "hc-1");
  V2Builder udp4 = tcp4();
  udp4.family_protocol = 0x12;
  V2Builder tcp6;
  tcp6.family_protocol = 0x21;
  tcp6.inet6("2001:db8::1", "2001:db8::2", 40000, 995);
  V2Builder udp6 = tcp6;
  udp6.family_protocol = 0x22;
  V2Builder unix_stream;
  unix_stream.family_protocol = 0x31;
  unix_stream.unix_paths("/run/a.sock", "/run/b.sock");
  V2Builder unix_dgram = unix_stream;
  unix_dgram.family_protocol = 0x32;
  V2Builder unspec;
  unspec.family_protocol = 0x00;
  V2Builder unspec_tlv = unspec;
  unspec_tlv.add_tlv(0x02, "mail.example.com");
  return {
      {"v2_local", local.build(), "v2 LOCAL unspec"},
      {"v2_local_with_tcp4_block", local_tcp4.build(), "v2 LOCAL stream"},
      {"v2_local_with_tlv", local_tlv.build(), "v2 LOCAL unspec unique_id=hc-1"},
      {"v2_tcp4", tcp4().build(), kTcp4},
      {"v2_udp4", udp4.build(), "v2 PROXY dgram 192.0.2.1:40000 -> 198.51.100.2:110"},
      {"v2_tcp6", tcp6.build(), "v2 PROXY stream [2001:db8::1]:40000 -> [2001:db8::2]:995"},
      {"v2_udp6", udp6.build(), "v2 PROXY dgram [2001:db8::1]:40000 -> [2001:db8::2]:995"},
      {"v2_unix_stream", unix_stream.build(),
       "v2 PROXY stream unix:/run/a.sock -> unix:/run/b.sock"},
      {"v2_unix_dgram", unix_dgram.build(),
       "v2 PROXY dgram unix:/run/a.sock -> unix:/run/b.sock"},
      {"v2_unspec", unspec.build(), "v2 PROXY unspec"},
      {"v2_unspec_with_tlv", unspec_tlv.build(), "v2 PROXY unspec authority=mail.example.com"},
  };
}

std::vector<Form> v2_tlv_forms() {
  const std::string id128(kProxyV2UniqueIdBytesMax, 'u');
  V2Builder crc = tcp4();
  crc.with_crc = true;
  V2Builder crc_unix;
  crc_unix.family_protocol = 0x31;
  crc_unix.unix_paths("/a", "/b");
  crc_unix.with_crc = true;
  V2Builder all = tcp4();
  all.add_tlv(0x04, "")
      .add_tlv(0x01, "pop3")
      .add_tlv(0x02, "mail.example.com")
      .add_tlv(0x05, "id-7")
      .add_tlv(0x20, full_ssl())
      .add_tlv(0x30, "blue")
      .add_tlv(0xE0, "custom")
      .add_tlv(0xF7, "experiment")
      .add_tlv(0xFF, "future");
  all.with_crc = true;
  const std::string all_text = std::string(kTcp4) +
                               " authority=mail.example.com alpn=pop3 unique_id=id-7 netns=blue"
                               " ssl(client=7 verify=0 version=TLSv1.3 cn=alice.example"
                               " cipher=TLS_AES_128_GCM_SHA256 sig_alg=RSA-SHA256"
                               " key_alg=RSA2048) crc32c";
  return {
      {"v2_alpn", tcp4().add_tlv(0x01, "pop3").build(), std::string(kTcp4) + " alpn=pop3"},
      {"v2_authority", tcp4().add_tlv(0x02, "mail.example.com").build(),
       std::string(kTcp4) + " authority=mail.example.com"},
      {"v2_crc32c", crc.build(), std::string(kTcp4) + " crc32c"},
      {"v2_crc32c_unix", crc_unix.build(), "v2 PROXY stream unix:/a -> unix:/b crc32c"},
      {"v2_noop_empty", tcp4().add_tlv(0x04, "").build(), kTcp4},
      {"v2_noop_padding", tcp4().add_tlv(0x04, bytes("\0\0\0\0\0", 5)).build(), kTcp4},
      {"v2_unique_id_longest", tcp4().add_tlv(0x05, id128).build(),
       std::string(kTcp4) + " unique_id=" + id128},
      {"v2_netns", tcp4().add_tlv(0x30, "blue").build(), std::string(kTcp4) + " netns=blue"},
      {"v2_ssl_bare", tcp4().add_tlv(0x20, ssl_value(0, 1, "")).build(),
       std::string(kTcp4) + " ssl(client=0 verify=1)"},
      {"v2_ssl_version_only",
       tcp4().add_tlv(0x20, ssl_value(kPp2ClientSsl, 0, tlv(0x21, "TLSv1.2"))).build(),
       std::string(kTcp4) + " ssl(client=1 verify=0 version=TLSv1.2)"},
      {"v2_ssl_full", tcp4().add_tlv(0x20, full_ssl()).build(),
       std::string(kTcp4) +
           " ssl(client=7 verify=0 version=TLSv1.3 cn=alice.example"
           " cipher=TLS_AES_128_GCM_SHA256 sig_alg=RSA-SHA256 key_alg=RSA2048)"},
      {"v2_ssl_unknown_subtype",
       tcp4().add_tlv(0x20, ssl_value(1, 0, tlv(0x2F, "x") + tlv(0x22, "cn"))).build(),
       std::string(kTcp4) + " ssl(client=1 verify=0 cn=cn)"},
      {"v2_custom_types_skipped", tcp4().add_tlv(0xE0, "a").add_tlv(0xEF, "b").build(), kTcp4},
      {"v2_all_tlvs", all.build(), all_text},
  };
}

std::vector<Form> all_forms() {
  std::vector<Form> forms = v1_forms();
  for (auto& f : v2_address_forms()) forms.push_back(f);
  for (auto& f : v2_tlv_forms()) forms.push_back(f);
  return forms;
}

class ProxyFormTest : public ::testing::TestWithParam<Form> {};

TEST_P(ProxyFormTest, WholeGivesTheHeaderAndConsumesAll) {
  const Form& form = GetParam();
  const FeedResult whole = testing::feed_whole(form.input);
  ASSERT_EQ(whole.status, ProxyParser::Status::kDone) << describe(whole);
  EXPECT_EQ(whole.consumed, form.input.size());
  EXPECT_EQ(whole.header, form.expected);
  EXPECT_EQ(whole.error, "none");
}

TEST_P(ProxyFormTest, EverySplitAndBytewiseMatchWhole) {
  const Form& form = GetParam();
  const FeedResult whole = testing::feed_whole(form.input);
  for (size_t at = 0; at <= form.input.size(); ++at) {
    EXPECT_EQ(testing::feed_split(form.input, at), whole) << "split at " << at;
  }
  EXPECT_EQ(testing::feed_bytewise(form.input), whole);
}

TEST_P(ProxyFormTest, StopsExactlyAtHeaderEndWhenBytesFollow) {
  const Form& form = GetParam();
  const std::string pop3 = "USER alice\r\n";
  const std::string tls = bytes("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03", 11);
  for (const std::string& trailer : {pop3, tls, std::string(kProxyV2HeaderBytesMax, 'x')}) {
    const std::string input = form.input + trailer;
    for (size_t at = 0; at <= input.size(); at += (at < form.input.size() + 16 ? 1 : 997)) {
      const FeedResult split = testing::feed_split(input, at);
      ASSERT_EQ(split.status, ProxyParser::Status::kDone) << "split at " << at;
      EXPECT_EQ(split.consumed, form.input.size()) << "split at " << at;
      EXPECT_EQ(split.header, form.expected);
    }
    EXPECT_EQ(testing::feed_bytewise(input).consumed, form.input.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Forms, ProxyFormTest, ::testing::ValuesIn(all_forms()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(ProxyParserTest, AfterDoneItTakesNothingMore) {
  ProxyParser parser;
  size_t consumed = 99;
  ASSERT_EQ(parser.feed("PROXY UNKNOWN\r\nUSER a\r\n", &consumed), ProxyParser::Status::kDone);
  EXPECT_EQ(consumed, 15u);
  EXPECT_EQ(parser.feed("USER a\r\n", &consumed), ProxyParser::Status::kDone);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(parser.buffered(), 15u);
}

TEST(ProxyParserTest, EmptyFeedNeedsMore) {
  ProxyParser parser;
  size_t consumed = 99;
  EXPECT_EQ(parser.feed({}, &consumed), ProxyParser::Status::kNeedMore);
  EXPECT_EQ(consumed, 0u);
}

TEST(ProxyParserTest, ResetAllowsReuse) {
  ProxyParser parser;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed("GET / HTTP/1.0\r\n", &consumed), ProxyParser::Status::kInvalid);
  EXPECT_EQ(parser.error(), "not_proxy");
  parser.reset();
  EXPECT_EQ(parser.error_code(), ProxyError::kNone);
  ASSERT_EQ(parser.feed("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", &consumed),
            ProxyParser::Status::kDone);
  EXPECT_TRUE(parser.header().has_ip());
}

TEST(ProxyParserTest, TlvViewsOutliveTheCallersBuffer) {
  ProxyParser parser;
  size_t consumed = 0;
  {
    std::string input = tcp4().add_tlv(0x02, "mail.example.com").build();
    ASSERT_EQ(parser.feed(input, &consumed), ProxyParser::Status::kDone);
    input.assign(input.size(), 'z');  // the receive buffer is reused
  }
  EXPECT_EQ(parser.header().authority, "mail.example.com");
}

TEST(ProxyParserTest, HasIpOnlyForInetSources) {
  V2Builder unix_stream;
  unix_stream.family_protocol = 0x31;
  unix_stream.unix_paths("/a", "/b");
  for (const auto& [input, has_ip] : std::vector<std::pair<std::string, bool>>{
           {"PROXY UNKNOWN\r\n", false},
           {"PROXY TCP6 ::1 ::1 1 2\r\n", true},
           {unix_stream.build(), false},
       }) {
    ProxyParser parser;
    size_t consumed = 0;
    ASSERT_EQ(parser.feed(input, &consumed), ProxyParser::Status::kDone) << parser.error();
    EXPECT_EQ(parser.header().has_ip(), has_ip);
  }
}

}  // namespace
}  // namespace popgate::proxy
