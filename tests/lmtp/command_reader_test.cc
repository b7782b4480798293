// The command line reader, whole, at every split and one byte at a time.
#include "server/lmtp/command_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace popgate::lmtp {
namespace {

std::vector<std::string> events_of(const std::vector<std::string_view>& pieces) {
  CommandReader reader;
  std::vector<std::string> out;
  for (std::string_view piece : pieces) {
    while (!piece.empty()) {
      const CommandReader::Step step = reader.next(piece);
      EXPECT_GT(step.consumed, 0u);
      EXPECT_LE(step.consumed, piece.size());
      piece.remove_prefix(step.consumed);
      switch (step.event) {
        case CommandReader::Event::kLine:
          out.push_back("line:" + std::string(reader.line()));
          break;
        case CommandReader::Event::kTooLong:
          out.emplace_back("too-long");
          break;
        case CommandReader::Event::kNul:
          out.emplace_back("nul");
          break;
        case CommandReader::Event::kFlood:
          out.emplace_back("flood");
          return out;
        case CommandReader::Event::kNeedMore:
          break;
      }
    }
  }
  return out;
}

void expect_split_invariant(const std::string& stream, const std::vector<std::string>& expected) {
  EXPECT_EQ(events_of({stream}), expected) << "whole";
  const std::string_view s(stream);
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    ASSERT_EQ(events_of({s.substr(0, cut), s.substr(cut)}), expected) << "cut at " << cut;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < stream.size(); ++i) bytes.push_back(s.substr(i, 1));
  EXPECT_EQ(events_of(bytes), expected) << "byte at a time";
}

TEST(CommandReader, CrlfAndBareLfLines) {
  expect_split_invariant("LHLO a\r\nMAIL FROM:<>\r\nNOOP\nQUIT\r\n",
                         {"line:LHLO a", "line:MAIL FROM:<>", "line:NOOP", "line:QUIT"});
}

TEST(CommandReader, EmptyLinesAndLoneCr) {
  expect_split_invariant("\r\n\n\r\r\n", {"line:", "line:", "line:\r"});
}

TEST(CommandReader, LineOfMaximumLengthIsAccepted) {
  const std::string max(kCommandLineBytesMax, 'x');
  expect_split_invariant(max + "\r\n" + max + "\n", {"line:" + max, "line:" + max});
}

TEST(CommandReader, OneOctetMoreIsTooLongAndTheNextLineIsFine) {
  const std::string over(kCommandLineBytesMax + 1, 'x');
  expect_split_invariant(over + "\r\nNOOP\r\n", {"too-long", "line:NOOP"});
  expect_split_invariant(over + "\nNOOP\r\n", {"too-long", "line:NOOP"});
  expect_split_invariant(std::string(3000, 'y') + "\r\nNOOP\r\n", {"too-long", "line:NOOP"});
}

TEST(CommandReader, NulInALine) {
  expect_split_invariant(std::string("NO\0OP\r\nNOOP\r\n", 13), {"nul", "line:NOOP"});
}

TEST(CommandReader, FloodWithoutLineEnd) {
  // Up to the discard budget (line end included) it is "too long"; one more
  // octet and it is a flood, however it arrives.
  const std::string at_budget(kInputDiscardBytesMax - 1, 'z');
  EXPECT_EQ(events_of({at_budget + "\nNOOP\n"}), (std::vector<std::string>{"too-long", "line:NOOP"}));
  const std::string over_budget(kInputDiscardBytesMax, 'z');
  EXPECT_EQ(events_of({over_budget + "\nNOOP\n"}), std::vector<std::string>{"flood"});
  for (size_t piece : {1u, 7u, 512u, 4096u}) {
    std::vector<std::string_view> pieces;
    const std::string s1 = at_budget + "\nNOOP\n";
    for (size_t i = 0; i < s1.size(); i += piece) pieces.push_back(std::string_view(s1).substr(i, piece));
    EXPECT_EQ(events_of(pieces), (std::vector<std::string>{"too-long", "line:NOOP"})) << piece;
    pieces.clear();
    const std::string s2 = over_budget + "\nNOOP\n";
    for (size_t i = 0; i < s2.size(); i += piece) pieces.push_back(std::string_view(s2).substr(i, piece));
    EXPECT_EQ(events_of(pieces), std::vector<std::string>{"flood"}) << piece;
  }
  EXPECT_EQ(events_of({std::string(kInputDiscardBytesMax + 1, 'z')}), std::vector<std::string>{"flood"});
}

TEST(CommandReader, ZeroCopyForWholeLines) {
  CommandReader reader;
  const std::string_view in = "NOOP\r\nQUIT\r\n";
  const auto step = reader.next(in);
  EXPECT_EQ(step.event, CommandReader::Event::kLine);
  EXPECT_EQ(reader.line().data(), in.data());
  EXPECT_EQ(reader.buffered(), 0u);
  EXPECT_EQ(reader.next("NO").event, CommandReader::Event::kNeedMore);
  EXPECT_EQ(reader.buffered(), 2u);
}

}  // namespace
}  // namespace popgate::lmtp
