#include "server/pop3/dot_stuffer.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace popgate::pop3 {
namespace {

// Encodes `text` fed in pieces of `in_piece` octets into output windows of
// `out_room` octets, then finishes.
std::string stuff(std::string_view text, size_t in_piece, size_t out_room,
                  uint64_t top_lines = DotStuffer::kAllLines) {
  DotStuffer s;
  s.reset(top_lines);
  std::string out;
  std::string window(out_room, '\0');
  size_t pos = 0;
  while (pos < text.size() && !s.done()) {
    const std::string_view piece = text.substr(pos, in_piece);
    const auto step = s.encode(piece, window.data(), window.size());
    out.append(window.data(), step.produced);
    pos += step.consumed;
    EXPECT_TRUE(step.consumed > 0 || step.produced > 0 || step.done) << "no progress";
    if (step.done) break;
  }
  char tail[DotStuffer::kFinishBytesMax];
  out.append(tail, s.finish(tail));
  return out;
}

TEST(DotStuffer, DoublesLeadingDotsOnly) {
  EXPECT_EQ(stuff("a\r\n.b\r\n..c\r\n.\r\nd.e\r\n", 1000, 1000),
            "a\r\n..b\r\n...c\r\n..\r\nd.e\r\n.\r\n");
}

TEST(DotStuffer, FirstLineDotIsStuffed) {
  EXPECT_EQ(stuff(".\r\n", 1000, 1000), "..\r\n.\r\n");
}

TEST(DotStuffer, MissingFinalCrlfIsAddedBeforeTerminator) {
  EXPECT_EQ(stuff("abc", 1000, 1000), "abc\r\n.\r\n");
  EXPECT_EQ(stuff("", 1000, 1000), ".\r\n");
}

TEST(DotStuffer, SameBytesForEverySplitAndEveryWindow) {
  const std::string text = ".a\r\nb\r\n.\r\n..\r\n\r\n.x.y\r\nlast\r\n";
  const std::string expected = stuff(text, text.size(), 4096);
  for (size_t in_piece = 1; in_piece <= text.size(); ++in_piece) {
    for (size_t out_room = 1; out_room <= 8; ++out_room) {
      ASSERT_EQ(stuff(text, in_piece, out_room), expected) << in_piece << "/" << out_room;
    }
  }
}

// The definition, one octet at a time: what the fast RETR path must match.
std::string stuff_reference(std::string_view text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && c == '.') out += '.';
    out += c;
    line_start = c == '\n';
  }
  if (!line_start) out += "\r\n";
  return out + ".\r\n";
}

// RETR scans 16 octets at a time for a line end followed by '.': put that
// pair at every offset around the block boundaries, at both ends of the
// input and of the output window, and across every split of the pair.
TEST(DotStuffer, RetrMatchesTheDefinitionAtEveryOffset) {
  for (size_t len = 0; len <= 70; ++len) {
    for (size_t at = 0; at <= len; ++at) {
      std::string text(len, 'a');
      text.insert(at, "\n.");
      const std::string expected = stuff_reference(text);
      ASSERT_EQ(stuff(text, text.size(), 4096), expected) << len << "/" << at;
      for (size_t piece : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, at + 1}) {
        for (size_t room : {size_t{1}, size_t{16}, size_t{17}, at + 1}) {
          ASSERT_EQ(stuff(text, piece, room), expected) << len << "/" << at << "/" << piece << "/" << room;
        }
      }
    }
  }
}

TEST(DotStuffer, RetrMatchesTheDefinitionOnRandomText) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::string alphabet = "..\n\r\nabc";
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const size_t n = rng() % 300;
    for (size_t i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    ASSERT_EQ(stuff(text, 1 + rng() % 40, 1 + rng() % 40), stuff_reference(text)) << text;
  }
}

TEST(DotStuffer, TopSendsHeaderBlankLineAndNLines) {
  const std::string msg = "Subject: x\r\nFrom: y\r\n\r\nl1\r\n.l2\r\nl3\r\n";
  EXPECT_EQ(stuff(msg, 1000, 1000, 0), "Subject: x\r\nFrom: y\r\n\r\n.\r\n");
  EXPECT_EQ(stuff(msg, 1000, 1000, 2), "Subject: x\r\nFrom: y\r\n\r\nl1\r\n..l2\r\n.\r\n");
  EXPECT_EQ(stuff(msg, 1000, 1000, 3), stuff(msg, 1000, 1000));
  EXPECT_EQ(stuff(msg, 1000, 1000, 100), stuff(msg, 1000, 1000));
  for (size_t piece = 1; piece < msg.size(); ++piece) {
    ASSERT_EQ(stuff(msg, piece, 3, 1), "Subject: x\r\nFrom: y\r\n\r\nl1\r\n.\r\n") << piece;
  }
}

TEST(DotStuffer, TopOnMessageWithoutBodySendsAll) {
  EXPECT_EQ(stuff("Subject: x\r\n", 1000, 1000, 5), "Subject: x\r\n.\r\n");
}

TEST(DotUnstuff, RoundTripsRandomText) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::string alphabet = ".\r\nab\0";
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    const size_t n = rng() % 64;
    for (size_t i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    // Text as delivered: CRLF line ends, ending in CRLF.
    std::string normal;
    for (char c : text) {
      if (c == '\r') continue;
      if (c == '\n') normal += "\r\n"; else normal += c;
    }
    if (!normal.empty()) normal += "\r\n";
    std::string back;
    ASSERT_TRUE(dot_unstuff(stuff(normal, 1 + rng() % 7, 1 + rng() % 9), back)) << normal;
    ASSERT_EQ(back, normal);
  }
}

TEST(DotUnstuff, RejectsMalformed) {
  std::string out;
  EXPECT_FALSE(dot_unstuff("abc\r\n", out));          // no terminator
  EXPECT_FALSE(dot_unstuff(".abc\r\n.\r\n", out));    // unstuffed dot
  EXPECT_FALSE(dot_unstuff(".\r\nextra", out));       // bytes after the end
  EXPECT_TRUE(dot_unstuff("..\r\n.\r\n", out));
  EXPECT_EQ(out, ".\r\n");
}

}  // namespace
}  // namespace popgate::pop3
