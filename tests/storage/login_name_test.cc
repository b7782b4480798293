#include "storage/login_name.h"

#include <gtest/gtest.h>

#include <string>

namespace popgate::storage {
namespace {

struct Parsed {
  bool ok;
  std::string local;
  std::string domain;
};

Parsed parse(std::string_view login, std::string_view default_domain = "") {
  LoginName n;
  const bool ok = parse_login(login, default_domain, n);
  return {ok, std::string(n.local_part()), std::string(n.domain())};
}

TEST(LoginName, SplitsAndLowercases) {
  const Parsed p = parse("Alice.Smith@Example.COM");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.local, "alice.smith");
  EXPECT_EQ(p.domain, "example.com");
}

TEST(LoginName, SplitsAtTheLastAt) {
  const Parsed p = parse("\"a@b\"@example.org");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.local, "\"a@b\"");
  EXPECT_EQ(p.domain, "example.org");
}

TEST(LoginName, DefaultDomainCompletesBareLocalPart) {
  const Parsed p = parse("Bob", "corp.example");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.local, "bob");
  EXPECT_EQ(p.domain, "corp.example");
  // An explicit domain wins over the default.
  const Parsed q = parse("bob@other.example", "corp.example");
  ASSERT_TRUE(q.ok);
  EXPECT_EQ(q.domain, "other.example");
}

TEST(LoginName, DefaultDomainIsLowercasedToo) {
  const Parsed p = parse("bob", "Corp.Example");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.domain, "corp.example");
}

TEST(LoginName, BareLocalPartWithoutDefaultIsRejected) {
  EXPECT_FALSE(parse("bob").ok);
}

TEST(LoginName, EmptyPartsAreRejected) {
  EXPECT_FALSE(parse("").ok);
  EXPECT_FALSE(parse("@").ok);
  EXPECT_FALSE(parse("@example.com").ok);
  EXPECT_FALSE(parse("bob@").ok);
  EXPECT_FALSE(parse("", "example.com").ok);
  EXPECT_FALSE(parse("bob@", "example.com").ok);  // explicit empty domain
}

TEST(LoginName, LengthLimitAppliesToTheWholeName) {
  const std::string domain = "example.com";
  const std::string fits(kLoginBytesMax - 1 - domain.size(), 'a');
  EXPECT_TRUE(parse(fits + "@" + domain).ok);
  EXPECT_FALSE(parse(fits + "a@" + domain).ok);
  // Also when the default domain makes it too long.
  EXPECT_TRUE(parse(fits, domain).ok);
  EXPECT_FALSE(parse(fits + "a", domain).ok);
  EXPECT_FALSE(parse(std::string(4096, 'x') + "@" + domain).ok);
}

TEST(LoginName, ControlCharactersAndSpacesAreRejected) {
  EXPECT_FALSE(parse(std::string("bo\0b@example.com", 16)).ok);
  EXPECT_FALSE(parse("bo b@example.com").ok);
  EXPECT_FALSE(parse("bob@exa\tmple.com").ok);
  EXPECT_FALSE(parse("bob\x7f@example.com").ok);
}

TEST(LoginName, NonAsciiIsKeptButMustBeUtf8) {
  const Parsed p = parse("J\xc3\x89R\xc3\x94ME@Example.com");  // JÉRÔME
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.local, "j\xc3\x89r\xc3\x94me");  // only ASCII is folded
  EXPECT_FALSE(parse("bob\xff@example.com").ok);
  EXPECT_FALSE(parse("bob@ex\xc0\x80.com").ok);
}

}  // namespace
}  // namespace popgate::storage
