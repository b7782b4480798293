// Command lines, paths and MAIL parameters: pure parsers over views.
#include "server/lmtp/command.h"

#include <gtest/gtest.h>

#include <string>

#include "server/lmtp/limits.h"

namespace popgate::lmtp {
namespace {

TEST(ParseCommandLine, VerbsAreCaseInsensitive) {
  for (std::string_view line : {"LHLO x", "lhlo x", "LhLo x"}) {
    EXPECT_EQ(parse_command_line(line).verb, Verb::kLhlo) << line;
  }
  EXPECT_EQ(parse_command_line("mail FROM:<>").verb, Verb::kMail);
  EXPECT_EQ(parse_command_line("Rcpt TO:<a@b>").verb, Verb::kRcpt);
  EXPECT_EQ(parse_command_line("data").verb, Verb::kData);
}

TEST(ParseCommandLine, SplitsArgumentsAfterFirstSpace) {
  const CommandLine c = parse_command_line("MAIL FROM:<a@b> SIZE=10");
  EXPECT_EQ(c.verb, Verb::kMail);
  EXPECT_EQ(c.keyword, "MAIL");
  EXPECT_EQ(c.args, "FROM:<a@b> SIZE=10");
  EXPECT_EQ(parse_command_line("NOOP").args, "");
}

TEST(ParseCommandLine, UnknownKeywords) {
  for (std::string_view line : {"", " NOOP", "NOOPS", "NOO", "BDAT 10 LAST", "STARTTLS",
                                "EXPN x", "MAIL\tFROM:<>", "DATA\r"}) {
    EXPECT_EQ(parse_command_line(line).verb, Verb::kUnknown) << "'" << line << "'";
  }
}

TEST(ParseCommandLine, EveryVerbHasAWireName) {
  for (size_t i = 1; i < kVerbCount; ++i) {
    const auto v = static_cast<Verb>(i);
    EXPECT_EQ(parse_command_line(verb_name(v)).verb, v);
  }
  EXPECT_EQ(verb_name(Verb::kUnknown), "?");
}

TEST(StripKeyword, CaseInsensitiveAndLenientAboutSpaces) {
  std::string_view a = "from:<a@b>";
  EXPECT_TRUE(strip_keyword(a, "FROM:"));
  EXPECT_EQ(a, "<a@b>");
  std::string_view b = "FROM:   <a@b> SIZE=1";
  EXPECT_TRUE(strip_keyword(b, "FROM:"));
  EXPECT_EQ(b, "<a@b> SIZE=1");
  std::string_view c = "FROM <a@b>";
  EXPECT_FALSE(strip_keyword(c, "FROM:"));
  std::string_view d = "TO";
  EXPECT_FALSE(strip_keyword(d, "TO:"));
}

TEST(ParsePath, Mailboxes) {
  const Path p = parse_path("<alice@example.test>");
  EXPECT_EQ(p.error, PathError::kOk);
  EXPECT_EQ(p.address, "alice@example.test");
  EXPECT_EQ(p.rest, "");
  EXPECT_TRUE(p.has_domain);
  EXPECT_FALSE(p.non_ascii);
  for (std::string_view ok :
       {"<a.b+tag@sub.example.test>", "<\"john doe\"@example.test>", "<\"a\\\"b\"@x>",
        "<x@[192.0.2.1]>", "<x@[IPv6:2001:db8::1]>", "<o'hara!#$%&*=?^_`{|}~-/@x-y.z>",
        "<a..b.@example.test>", "<1@2>"}) {
    const Path q = parse_path(ok);
    EXPECT_EQ(q.error, PathError::kOk) << ok;
    EXPECT_EQ(q.address, ok.substr(1, ok.size() - 2)) << ok;
    EXPECT_TRUE(q.has_domain) << ok;
  }
}

TEST(ParsePath, NullPathAndPostmaster) {
  const Path null = parse_path("<> BODY=8BITMIME");
  EXPECT_EQ(null.error, PathError::kOk);
  EXPECT_EQ(null.address, "");
  EXPECT_EQ(null.rest, " BODY=8BITMIME");
  EXPECT_FALSE(null.has_domain);
  const Path pm = parse_path("<Postmaster>");
  EXPECT_EQ(pm.error, PathError::kOk);
  EXPECT_EQ(pm.address, "Postmaster");
  EXPECT_FALSE(pm.has_domain);
  EXPECT_TRUE(is_postmaster(pm.address));
  EXPECT_FALSE(is_postmaster("postmasters"));
}

TEST(ParsePath, SourceRouteIsIgnored) {
  const Path p = parse_path("<@relay.test,@other.test:bob@example.test>");
  EXPECT_EQ(p.error, PathError::kOk);
  EXPECT_EQ(p.address, "bob@example.test");
  EXPECT_EQ(parse_path("<@relay.test>").error, PathError::kSyntax);
}

TEST(ParsePath, Rest) {
  EXPECT_EQ(parse_path("<a@b> SIZE=1 BODY=7BIT").rest, " SIZE=1 BODY=7BIT");
  EXPECT_EQ(parse_path("<a@b>junk").rest, "junk");  // the caller refuses it
  EXPECT_EQ(parse_path("<>>").rest, ">");
}

TEST(ParsePath, SyntaxErrors) {
  for (std::string_view bad :
       {"", "a@b", "<a@b", "a@b>", "<a b@c>", "<a@b c>", "<a@>", "<@b>", "<a@.b>",
        "<a@b.>", "<a@b..c>", "<a@b_c>", "<\"unterminated@b>", "<a\x01@b>", "<a@[]>",
        "<a@[1.2.3.4>", "<a@b@c>", "<<a@b>>", "< a@b>", "<a@b >", "<\"a\x7f\"@b>", "<a\\b@c>"}) {
    EXPECT_EQ(parse_path(bad).error, PathError::kSyntax) << "'" << bad << "'";
  }
}

TEST(ParsePath, LengthLimit) {
  const std::string domain = "@" + std::string(60, 'd') + "." + std::string(60, 'e') + "." +
                             std::string(60, 'f') + ".test";
  const std::string longest = std::string(kAddressBytesMax - domain.size(), 'l') + domain;
  EXPECT_EQ(parse_path("<" + longest + ">").error, PathError::kOk);
  EXPECT_EQ(parse_path("<l" + longest + ">").error, PathError::kTooLong);
}

TEST(ParsePath, Utf8) {
  const Path p = parse_path("<j\xC3\xB6rg@b\xC3\xBC" "cher.example>");
  EXPECT_EQ(p.error, PathError::kOk);
  EXPECT_TRUE(p.non_ascii);
  EXPECT_EQ(parse_path("<j\xC3@x>").error, PathError::kBadUtf8);          // truncated
  EXPECT_EQ(parse_path("<\xC0\xAF@x>").error, PathError::kBadUtf8);       // overlong
  EXPECT_EQ(parse_path("<\"\xE2\x82\xAC\"@x>").error, PathError::kOk);    // quoted UTF-8
}

TEST(MailParams, None) {
  const MailParams p = parse_mail_params("");
  EXPECT_EQ(p.error, ParamError::kOk);
  EXPECT_FALSE(p.has_size);
  EXPECT_EQ(p.body, BodyType::kUnspecified);
  EXPECT_FALSE(p.smtputf8);
  EXPECT_EQ(parse_mail_params("  ").error, ParamError::kOk);
}

TEST(MailParams, Known) {
  const MailParams p = parse_mail_params(" size=12345  body=8bitmime SMTPUTF8");
  EXPECT_EQ(p.error, ParamError::kOk);
  EXPECT_TRUE(p.has_size);
  EXPECT_EQ(p.size, 12345u);
  EXPECT_EQ(p.body, BodyType::k8BitMime);
  EXPECT_TRUE(p.smtputf8);
  EXPECT_EQ(parse_mail_params(" BODY=7BIT").body, BodyType::k7Bit);
  EXPECT_EQ(parse_mail_params(" SIZE=0").size, 0u);
  EXPECT_EQ(parse_mail_params(" SIZE=99999999999999999999999").size, UINT64_MAX);
}

TEST(MailParams, Errors) {
  EXPECT_EQ(parse_mail_params("SIZE=1").error, ParamError::kSyntax);  // no space after '>'
  EXPECT_EQ(parse_mail_params(" =1").error, ParamError::kSyntax);
  EXPECT_EQ(parse_mail_params(" -X").error, ParamError::kSyntax);
  EXPECT_EQ(parse_mail_params(" X=").error, ParamError::kSyntax);
  EXPECT_EQ(parse_mail_params(" X=a=b").error, ParamError::kSyntax);
  EXPECT_EQ(parse_mail_params(" SIZE").error, ParamError::kBadValue);
  EXPECT_EQ(parse_mail_params(" SIZE=1k").error, ParamError::kBadValue);
  EXPECT_EQ(parse_mail_params(" SIZE=-1").error, ParamError::kBadValue);
  EXPECT_EQ(parse_mail_params(" SIZE=1 SIZE=2").error, ParamError::kBadValue);
  EXPECT_EQ(parse_mail_params(" BODY=BINARYMIME").error, ParamError::kBadValue);
  EXPECT_EQ(parse_mail_params(" BODY").error, ParamError::kBadValue);
  EXPECT_EQ(parse_mail_params(" SMTPUTF8=yes").error, ParamError::kBadValue);
  EXPECT_EQ(parse_mail_params(" AUTH=<>").error, ParamError::kUnknown);
  EXPECT_EQ(parse_mail_params(" RET=FULL").error, ParamError::kUnknown);
  EXPECT_EQ(parse_mail_params(" SIZE=1 XYZZY").error, ParamError::kUnknown);
}

}  // namespace
}  // namespace popgate::lmtp
