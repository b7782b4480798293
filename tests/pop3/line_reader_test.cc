#include "server/pop3/line_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace popgate::pop3 {
namespace {

// What a reader makes of a stream: one string per event.
std::vector<std::string> events_of(const std::vector<std::string_view>& pieces) {
  LineReader reader;
  std::vector<std::string> out;
  for (std::string_view piece : pieces) {
    while (!piece.empty()) {
      const LineReader::Step step = reader.next(piece);
      EXPECT_GT(step.consumed, 0u);
      EXPECT_LE(step.consumed, piece.size());
      piece.remove_prefix(step.consumed);
      switch (step.event) {
        case LineReader::Event::kLine:
          out.push_back("line:" + std::string(reader.line()));
          break;
        case LineReader::Event::kTooLong:
          out.emplace_back("too-long");
          break;
        case LineReader::Event::kNul:
          out.emplace_back("nul");
          break;
        case LineReader::Event::kFlood:
          out.emplace_back("flood");
          return out;
        case LineReader::Event::kNeedMore:
          break;
      }
    }
  }
  return out;
}

// Feeds `stream` whole, then at every single split point, then one byte at
// a time; the events must be the same every way.
void expect_split_invariant(const std::string& stream, const std::vector<std::string>& expected) {
  EXPECT_EQ(events_of({stream}), expected) << "whole";
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    const std::string_view s(stream);
    ASSERT_EQ(events_of({s.substr(0, cut), s.substr(cut)}), expected) << "cut at " << cut;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < stream.size(); ++i) bytes.push_back(std::string_view(stream).substr(i, 1));
  EXPECT_EQ(events_of(bytes), expected) << "byte at a time";
}

TEST(LineReader, CrlfAndBareLfLines) {
  expect_split_invariant("USER a\r\nPASS b c\r\nNOOP\nQUIT\r\n",
                         {"line:USER a", "line:PASS b c", "line:NOOP", "line:QUIT"});
}

TEST(LineReader, EmptyLines) {
  expect_split_invariant("\r\n\n", {"line:", "line:"});
}

TEST(LineReader, PartialLineIsHeldUntilLf) {
  LineReader reader;
  auto step = reader.next("STA");
  EXPECT_EQ(step.event, LineReader::Event::kNeedMore);
  EXPECT_EQ(reader.buffered(), 3u);
  step = reader.next("T\r\nNOOP");
  EXPECT_EQ(step.event, LineReader::Event::kLine);
  EXPECT_EQ(step.consumed, 3u);
  EXPECT_EQ(reader.line(), "STAT");
  reader.reset();
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(LineReader, LineOfMaximumLengthIsAccepted) {
  const std::string max(kCommandLineBytesMax, 'x');
  expect_split_invariant(max + "\r\n" + max + "\n", {"line:" + max, "line:" + max});
}

TEST(LineReader, OneOctetOverTheLimitIsTooLong) {
  const std::string over(kCommandLineBytesMax + 1, 'x');
  expect_split_invariant(over + "\r\nNOOP\r\n", {"too-long", "line:NOOP"});
  expect_split_invariant(over + "\nNOOP\r\n", {"too-long", "line:NOOP"});
}

TEST(LineReader, LongLineIsReportedOnceAndDiscarded) {
  const std::string long_line(5000, 'y');
  expect_split_invariant(long_line + "\r\nQUIT\r\n", {"too-long", "line:QUIT"});
}

TEST(LineReader, NulOctetIsRejected) {
  expect_split_invariant(std::string("US\0ER a\r\nNOOP\r\n", 15), {"nul", "line:NOOP"});
}

TEST(LineReader, FloodWithoutLineEnd) {
  const std::string flood(kInputDiscardBytesMax + 10, 'z');
  // Whole: one line far beyond the discard budget.
  EXPECT_EQ(events_of({flood + "\r\n"}), std::vector<std::string>{"flood"});
  // In pieces: reported too long first, then flood once the budget is gone.
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < flood.size(); i += 4096) {
    pieces.push_back(std::string_view(flood).substr(i, 4096));
  }
  EXPECT_EQ(events_of(pieces), (std::vector<std::string>{"too-long", "flood"}));
}

TEST(LineReader, ZeroCopyWhenLineArrivesWhole) {
  LineReader reader;
  const std::string input = "NOOP\r\n";
  ASSERT_EQ(reader.next(input).event, LineReader::Event::kLine);
  EXPECT_EQ(reader.line().data(), input.data());
}

}  // namespace
}  // namespace popgate::pop3
