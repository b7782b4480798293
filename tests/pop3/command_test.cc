#include "server/pop3/command.h"

#include <gtest/gtest.h>

namespace popgate::pop3 {
namespace {

TEST(ParseCommandLine, KeywordsAreCaseInsensitive) {
  for (std::string_view line : {"STAT", "stat", "StAt", "sTAT"}) {
    EXPECT_EQ(parse_command_line(line).verb, Verb::kStat) << line;
  }
  EXPECT_EQ(parse_command_line("top 1 2").verb, Verb::kTop);
  EXPECT_EQ(parse_command_line("uidl").verb, Verb::kUidl);
}

TEST(ParseCommandLine, SplitsArgumentsAfterFirstSpace) {
  const CommandLine c = parse_command_line("PASS my secret  pw");
  EXPECT_EQ(c.verb, Verb::kPass);
  EXPECT_EQ(c.keyword, "PASS");
  EXPECT_EQ(c.args, "my secret  pw");
  EXPECT_EQ(parse_command_line("NOOP").args, "");
}

TEST(ParseCommandLine, UnknownKeywords) {
  for (std::string_view line : {"", " STAT", "STATS", "ST", "XYZZY", "STA", "LIST\t1", "RETR1"}) {
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

TEST(SplitArgs, RunsOfSpaces) {
  std::string_view parts[2];
  bool extra = true;
  EXPECT_EQ(split_args("", parts, 2, &extra), 0u);
  EXPECT_FALSE(extra);
  EXPECT_EQ(split_args("  1   2 ", parts, 2, &extra), 2u);
  EXPECT_EQ(parts[0], "1");
  EXPECT_EQ(parts[1], "2");
  EXPECT_FALSE(extra);
  EXPECT_EQ(split_args("1 2 3", parts, 2, &extra), 2u);
  EXPECT_TRUE(extra);
}

TEST(ParseNumber, AcceptsDecimalDigitsOnly) {
  EXPECT_EQ(parse_number("1").value, 1u);
  EXPECT_EQ(parse_number("0").error, NumberError::kOk);
  EXPECT_EQ(parse_number("007").value, 7u);
  EXPECT_EQ(parse_number("4294967295").value, 4294967295u);
  EXPECT_EQ(parse_number("").error, NumberError::kMissing);
  EXPECT_EQ(parse_number("-1").error, NumberError::kNegative);
  EXPECT_EQ(parse_number("-").error, NumberError::kNotANumber);
  EXPECT_EQ(parse_number("-x").error, NumberError::kNotANumber);
  EXPECT_EQ(parse_number("+1").error, NumberError::kNotANumber);
  EXPECT_EQ(parse_number("1a").error, NumberError::kNotANumber);
  EXPECT_EQ(parse_number("1.0").error, NumberError::kNotANumber);
  EXPECT_EQ(parse_number("0x10").error, NumberError::kNotANumber);
  EXPECT_EQ(parse_number("4294967296").error, NumberError::kTooLarge);
  EXPECT_EQ(parse_number("99999999999999999999999999").error, NumberError::kTooLarge);
  EXPECT_EQ(parse_number("99999999999999999999999999x").error, NumberError::kNotANumber);
}

}  // namespace
}  // namespace popgate::pop3
