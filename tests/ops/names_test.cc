#include "ops/admin/names.h"

#include <gtest/gtest.h>

#include <string>

namespace popgate::admin {
namespace {

TEST(Names, Lowercase) {
  EXPECT_EQ(lowercase_ascii("Demo@Example.TEST"), "demo@example.test");
  EXPECT_EQ(lowercase_ascii("\xC3\x89"), "\xC3\x89");  // non-ASCII untouched
}

TEST(Names, GoodDomains) {
  for (const char* d : {"example.test", "a", "xn--bcher-kva.example", "a-b.c0", "1.2.3.4"}) {
    EXPECT_EQ(domain_problem(d), "") << d;
  }
  const std::string label63(63, 'a');
  EXPECT_EQ(domain_problem(label63 + ".test"), "");
  // 253 octets exactly: 4 labels of 63 plus 3 dots, minus 2.
  std::string longest = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(longest.size(), 253u);
  EXPECT_EQ(domain_problem(longest), "");
}

TEST(Names, BadDomains) {
  const std::string label64(64, 'a');
  for (const std::string& d :
       {std::string(), std::string("."), std::string("a..b"), std::string(".a"), std::string("a."),
        std::string("-a.b"), std::string("a-.b"), std::string("a_b.c"), std::string("A.b"),
        std::string("a b"), std::string("a@b"), std::string("b\xC3\xBC.c"), label64 + ".b",
        std::string(254, 'a')}) {
    EXPECT_NE(domain_problem(d), "") << d;
  }
}

TEST(Names, LocalParts) {
  EXPECT_EQ(local_part_problem("demo"), "");
  EXPECT_EQ(local_part_problem("a.b+c!#$%&'*/=?^_`{|}~-"), "");
  EXPECT_EQ(local_part_problem(std::string(64, 'x')), "");
  // RFC 6531: UTF-8 local parts (logged in with after UTF8, RFC 6856).
  EXPECT_EQ(local_part_problem("caf\xC3\xA9"), "");
  EXPECT_EQ(local_part_problem("j\xC3\xBCrgen.\xE2\x9C\x93"), "");
  for (const std::string& l : {std::string(), std::string(65, 'x'), std::string("a b"),
                               std::string("a@b"), std::string("a\tb"), std::string("a\x7f"),
                               std::string("a\0b", 3), std::string("caf\xC3"),  // truncated UTF-8
                               std::string("a\xC2\x85"),                       // C1 control (NEL)
                               std::string("\xC0\xAF"), std::string(22, '\xE2'),
                               // RFC 5322 specials: quoted-string territory, refused
                               std::string("o\"x"), std::string("back\\slash"), std::string("semi;colon"),
                               std::string("a(b)"), std::string("a,b"), std::string("a:b"), std::string("<a>"),
                               std::string("a[b]")}) {
    EXPECT_NE(local_part_problem(l), "") << l;
  }
}

TEST(Names, Uidls) {
  EXPECT_EQ(uidl_problem("0123456789abcdef"), "");
  EXPECT_EQ(uidl_problem(std::string(70, '~')), "");
  EXPECT_EQ(uidl_problem("!"), "");
  for (const std::string& u : {std::string(), std::string(71, 'a'), std::string("a b"),
                               std::string("a\x7f"), std::string("\x80"), std::string("a\r\n")}) {
    EXPECT_NE(uidl_problem(u), "") << u;
  }
}

TEST(Names, ParseAddress) {
  const Address a = parse_address("Demo.User@Example.TEST");
  EXPECT_EQ(a.problem, "");
  EXPECT_EQ(a.local_part, "demo.user");
  EXPECT_EQ(a.domain, "example.test");
  EXPECT_EQ(a.login(), "demo.user@example.test");
  EXPECT_NE(parse_address("no-at").problem, "");
  EXPECT_NE(parse_address("@example.test").problem, "");
  EXPECT_NE(parse_address("a@").problem, "");
  EXPECT_NE(parse_address("a@b@c.test").problem, "");  // '@' in the local part
  EXPECT_NE(parse_address("a b@c.test").problem, "");
}

}  // namespace
}  // namespace popgate::admin
