// CIDR sets for trusted proxies, and the text parsers and CRC under them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include "server/proxy/cidr.h"
#include "server/proxy/crc32c.h"
#include "server/proxy/ip_text.h"

namespace popgate::proxy {
namespace {

sockaddr_storage inet(const char* text) {
  sockaddr_storage storage{};
  sockaddr_in sin{};
  sockaddr_in6 sin6{};
  if (inet_pton(AF_INET, text, &sin.sin_addr) == 1) {
    sin.sin_family = AF_INET;
    std::memcpy(&storage, &sin, sizeof(sin));
  } else if (inet_pton(AF_INET6, text, &sin6.sin6_addr) == 1) {
    sin6.sin6_family = AF_INET6;
    std::memcpy(&storage, &sin6, sizeof(sin6));
  } else {
    ADD_FAILURE() << "bad test address " << text;
  }
  return storage;
}

bool contains(const CidrSet& set, const char* text) {
  const sockaddr_storage storage = inet(text);
  return set.contains(reinterpret_cast<const sockaddr*>(&storage));
}

CidrSet parsed(std::string_view list) {
  std::string error;
  std::optional<CidrSet> set = CidrSet::parse(list, &error);
  EXPECT_TRUE(set.has_value()) << error;
  return set ? *set : CidrSet{};
}

std::string parse_error(std::string_view list) {
  std::string error;
  EXPECT_FALSE(CidrSet::parse(list, &error).has_value()) << list;
  return error;
}

TEST(CidrSetTest, ParsesTheDocumentedList) {
  const CidrSet set = parsed("127.0.0.1/32, 10.0.0.0/8, ::1/128, fd00::/8");
  EXPECT_EQ(set.size(), 4u);
  EXPECT_EQ(set.to_string(), "127.0.0.1/32, 10.0.0.0/8, ::1/128, fd00::/8");
  EXPECT_TRUE(contains(set, "127.0.0.1"));
  EXPECT_FALSE(contains(set, "127.0.0.2"));
  EXPECT_TRUE(contains(set, "10.0.0.0"));
  EXPECT_TRUE(contains(set, "10.255.255.255"));
  EXPECT_FALSE(contains(set, "11.0.0.0"));
  EXPECT_FALSE(contains(set, "9.255.255.255"));
  EXPECT_TRUE(contains(set, "::1"));
  EXPECT_FALSE(contains(set, "::2"));
  EXPECT_TRUE(contains(set, "fd12:3456::1"));
  EXPECT_TRUE(contains(set, "fdff:ffff::1"));
  EXPECT_FALSE(contains(set, "fe00::1"));
  EXPECT_FALSE(contains(set, "fc00::1"));
}

TEST(CidrSetTest, MappedPeersMatchIpv4Entries) {
  const CidrSet set = parsed("10.0.0.0/8,192.0.2.7");
  EXPECT_TRUE(contains(set, "::ffff:10.1.2.3"));
  EXPECT_TRUE(contains(set, "::ffff:192.0.2.7"));
  EXPECT_FALSE(contains(set, "::ffff:192.0.2.8"));
  EXPECT_FALSE(contains(set, "::ffff:11.1.2.3"));
  // IPv4-compatible (deprecated ::a.b.c.d) is not the same thing.
  EXPECT_FALSE(contains(set, "::10.1.2.3"));
}

TEST(CidrSetTest, BareAddressesAreHostRoutes) {
  const CidrSet set = parsed(" 192.0.2.7 ,\t2001:db8::7 ");
  EXPECT_EQ(set.to_string(), "192.0.2.7/32, 2001:db8::7/128");
  EXPECT_TRUE(contains(set, "192.0.2.7"));
  EXPECT_FALSE(contains(set, "192.0.2.6"));
  EXPECT_TRUE(contains(set, "2001:db8::7"));
  EXPECT_FALSE(contains(set, "2001:db8::8"));
}

TEST(CidrSetTest, OddPrefixLengths) {
  const CidrSet set = parsed("192.0.2.128/25, 2001:db8:8000::/33");
  EXPECT_TRUE(contains(set, "192.0.2.128"));
  EXPECT_TRUE(contains(set, "192.0.2.255"));
  EXPECT_FALSE(contains(set, "192.0.2.127"));
  EXPECT_TRUE(contains(set, "2001:db8:8000::1"));
  EXPECT_TRUE(contains(set, "2001:db8:ffff::1"));
  EXPECT_FALSE(contains(set, "2001:db8:7fff::1"));
}

TEST(CidrSetTest, ZeroPrefixes) {
  const CidrSet v4 = parsed("0.0.0.0/0");
  EXPECT_TRUE(contains(v4, "1.2.3.4"));
  EXPECT_TRUE(contains(v4, "::ffff:1.2.3.4"));
  EXPECT_FALSE(contains(v4, "2001:db8::1"));
  const CidrSet v6 = parsed("::/0");
  EXPECT_TRUE(contains(v6, "2001:db8::1"));
  EXPECT_TRUE(contains(v6, "1.2.3.4"));  // documented: mapped space is inside ::/0
}

TEST(CidrSetTest, EmptyListIsEmptySet) {
  const CidrSet set = parsed("  ");
  EXPECT_TRUE(set.empty());
  EXPECT_FALSE(contains(set, "127.0.0.1"));
  EXPECT_EQ(set.to_string(), "");
}

TEST(CidrSetTest, NonInetAndNullAreNeverContained) {
  const CidrSet set = parsed("0.0.0.0/0, ::/0");
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  EXPECT_FALSE(set.contains(reinterpret_cast<const sockaddr*>(&sun)));
  sockaddr_storage unspec{};
  EXPECT_FALSE(set.contains(reinterpret_cast<const sockaddr*>(&unspec)));
  EXPECT_FALSE(set.contains(static_cast<const sockaddr*>(nullptr)));
}

TEST(CidrSetTest, ErrorsNameTheBadEntry) {
  EXPECT_EQ(parse_error("10.0.0.0/8, 10.0.0.0/33"),
            "bad entry \"10.0.0.0/33\": prefix length must be 0..32");
  EXPECT_EQ(parse_error("::1/129"), "bad entry \"::1/129\": prefix length must be 0..128");
  EXPECT_EQ(parse_error("10.0.0.0/"), "bad entry \"10.0.0.0/\": prefix length must be 0..32");
  EXPECT_EQ(parse_error("10.0.0.0/08"), "bad entry \"10.0.0.0/08\": prefix length must be 0..32");
  EXPECT_EQ(parse_error("10.0.0.0/+8"), "bad entry \"10.0.0.0/+8\": prefix length must be 0..32");
  EXPECT_EQ(parse_error("127.0.0.1, example.com"),
            "bad entry \"example.com\": not an IPv4 or IPv6 address");
  EXPECT_EQ(parse_error("10.0.0/8"), "bad entry \"10.0.0/8\": not an IPv4 or IPv6 address");
  EXPECT_EQ(parse_error("[::1]"), "bad entry \"[::1]\": not an IPv4 or IPv6 address");
  EXPECT_EQ(parse_error("10.0.0.1/8"),
            "bad entry \"10.0.0.1/8\": bits set past the prefix (did you mean 10.0.0.0/8?)");
  EXPECT_EQ(parse_error("fd00::1/8"),
            "bad entry \"fd00::1/8\": bits set past the prefix (did you mean fd00::/8?)");
  EXPECT_EQ(parse_error("127.0.0.1,,::1"), "empty entry (a stray comma?)");
  EXPECT_EQ(parse_error("127.0.0.1,"), "empty entry (a stray comma?)");
}

TEST(CidrSetTest, AddOneEntry) {
  CidrSet set;
  std::string error;
  ASSERT_TRUE(set.add("198.51.100.0/24", &error)) << error;
  EXPECT_FALSE(set.add("198.51.100.0/24x", &error));
  EXPECT_EQ(set.size(), 1u);
  EXPECT_TRUE(contains(set, "198.51.100.9"));
}

TEST(IpTextTest, Ipv4) {
  EXPECT_EQ(parse_ipv4("0.0.0.0"), (Ipv4Bytes{0, 0, 0, 0}));
  EXPECT_EQ(parse_ipv4("255.255.255.255"), (Ipv4Bytes{255, 255, 255, 255}));
  EXPECT_EQ(parse_ipv4("192.0.2.1"), (Ipv4Bytes{192, 0, 2, 1}));
  for (const char* bad : {"", "1", "1.2.3", "1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2.3.4.5",
                          "256.1.1.1", "01.1.1.1", "1.1.1.00", "1.1.1.+1", "1.1.1.-1",
                          " 1.1.1.1", "1.1.1.1 ", "1.1.1.0x1", "1111.1.1.1"}) {
    EXPECT_FALSE(parse_ipv4(bad).has_value()) << bad;
  }
}

TEST(IpTextTest, Ipv6AgreesWithInetPton) {
  for (const char* good :
       {"::", "::1", "1::", "1::2", "2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "FE80::ABCD", "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "1:2:3:4:5:6:1.2.3.4", "::ffff:192.0.2.1", "::1.2.3.4", "1:2:3:4:5::1.2.3.4"}) {
    const std::optional<Ipv6Bytes> mine = parse_ipv6(good);
    unsigned char expected[16] = {};
    ASSERT_EQ(inet_pton(AF_INET6, good, expected), 1) << good;
    ASSERT_TRUE(mine.has_value()) << good;
    EXPECT_EQ(std::memcmp(mine->data(), expected, 16), 0) << good;
  }
  for (const char* bad :
       {"", ":", ":::", "1", "1:2", ":1::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::",
        "::1:2:3:4:5:6:7:8", "12345::", "g::", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "::1.2.3.4:5",
        "1.2.3.4", "::1%eth0", "[::1]", " ::1", "1:", ":1", "1:2:3:4:5:6:7:8:"}) {
    EXPECT_FALSE(parse_ipv6(bad).has_value()) << bad;
  }
}

TEST(IpTextTest, Decimal) {
  EXPECT_EQ(parse_port("0"), 0);
  EXPECT_EQ(parse_port("65535"), 65535);
  EXPECT_EQ(parse_decimal("4294967295", 0xFFFFFFFFu), 0xFFFFFFFFu);
  for (const char* bad : {"", "65536", "00", "01", "+1", "-1", "1a", " 1", "99999999999"}) {
    EXPECT_FALSE(parse_port(bad).has_value()) << bad;
  }
}

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  // RFC 3720 appendix B.4.
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(Crc32cTest, PiecesEqualWhole) {
  const std::string text = "The PROXY protocol header, in pieces";
  for (size_t at = 0; at <= text.size(); ++at) {
    const uint32_t crc = crc32c_update(crc32c_update(kCrc32cInit, text.substr(0, at)),
                                       text.substr(at));
    EXPECT_EQ(crc32c_final(crc), crc32c(text));
  }
}

}  // namespace
}  // namespace popgate::proxy
