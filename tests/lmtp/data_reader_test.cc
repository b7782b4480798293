// The DATA reader: dot-unstuffing, the terminator, CRLF normalisation
// byte-exact against popgate-admin deliver's normaliser, limits; whole, at
// every split and one byte at a time, and randomized (seed printed).
#include "server/lmtp/data_reader.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ops/admin/message.h"
#include "server/lmtp/limits.h"

namespace popgate::lmtp {
namespace {

struct Result {
  std::string body;
  DataReader::Event event = DataReader::Event::kNeedMore;
  size_t consumed = 0;  // of the whole stream, up to the event
  bool too_big = false;
  bool line_too_long = false;
  uint32_t lines_over_rfc = 0;
  uint64_t body_bytes = 0;

  bool operator==(const Result&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
  return os << "{event " << static_cast<int>(r.event) << ", consumed " << r.consumed << ", body "
            << ::testing::PrintToString(r.body) << ", too_big " << r.too_big << ", long "
            << r.line_too_long << ", over_rfc " << r.lines_over_rfc << "}";
}

Result read(std::string_view stream, const std::vector<size_t>& cuts, uint64_t max = 1 << 20,
            uint64_t raw_max = 1 << 24, std::string prefix = {}) {
  std::string body = std::move(prefix);
  DataReader reader;
  reader.start(&body, max, raw_max);
  Result r;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(stream.size());
  for (size_t to : ends) {
    std::string_view piece = stream.substr(from, to - from);
    from = to;
    while (!piece.empty()) {
      const DataReader::Step step = reader.feed(piece);
      r.consumed += step.consumed;
      piece.remove_prefix(step.consumed);
      if (step.event != DataReader::Event::kNeedMore) {
        r.event = step.event;
        goto done;
      }
      EXPECT_TRUE(piece.empty());
    }
  }
done:
  r.body = body;
  r.too_big = reader.too_big();
  r.line_too_long = reader.line_too_long();
  r.lines_over_rfc = reader.lines_over_rfc();
  r.body_bytes = reader.body_bytes();
  return r;
}

// Whole, every single split, one byte at a time: all the same.
Result read_every_way(std::string_view stream, uint64_t max = 1 << 20) {
  const Result whole = read(stream, {}, max);
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    const Result split = read(stream, {cut}, max);
    EXPECT_EQ(split, whole) << "cut at " << cut;
    if (split != whole) break;
  }
  std::vector<size_t> bytes;
  for (size_t i = 1; i < stream.size(); ++i) bytes.push_back(i);
  EXPECT_EQ(read(stream, bytes, max), whole) << "byte at a time";
  return whole;
}

TEST(DataReader, PlainMessage) {
  const std::string stream = "Subject: hi\r\n\r\nHello\r\n.\r\nQUIT\r\n";
  const Result r = read_every_way(stream);
  EXPECT_EQ(r.event, DataReader::Event::kEnd);
  EXPECT_EQ(r.body, "Subject: hi\r\n\r\nHello\r\n");
  EXPECT_EQ(r.consumed, stream.size() - 6);  // QUIT is left for the command reader
  EXPECT_EQ(r.body_bytes, r.body.size());
}

TEST(DataReader, EmptyMessage) {
  const Result r = read_every_way(".\r\n");
  EXPECT_EQ(r.event, DataReader::Event::kEnd);
  EXPECT_EQ(r.body, "");
}

TEST(DataReader, DotUnstuffing) {
  const Result r = read_every_way("..\r\n...\r\n..hidden\r\n.x\r\na.b\r\n .\r\n.\r\n");
  EXPECT_EQ(r.body, ".\r\n..\r\n.hidden\r\nx\r\na.b\r\n .\r\n");
}

TEST(DataReader, BareLfAndBareCrBecomeCrlf) {
  EXPECT_EQ(read_every_way("a\nb\r\nc\rd\r\n.\n").body, "a\r\nb\r\nc\r\nd\r\n");
  EXPECT_EQ(read_every_way("a\r\r\nb\n\n.\r\n").body, "a\r\n\r\nb\r\n\r\n");
  // A CR before the terminator's LF belongs to the terminator.
  EXPECT_EQ(read_every_way("x\n.\r\n").body, "x\r\n");
  // ".\r" then something else: a stuffing dot and a lone CR.
  EXPECT_EQ(read_every_way(".\rz\r\n.\r\n").body, "\r\nz\r\n");
  EXPECT_EQ(read_every_way(".\r\r\n.\r\n").body, "\r\n\r\n");
  // After a lone CR the line goes on: a dot there is not at a line start.
  EXPECT_EQ(read_every_way("a\r.\r\n.\r\n").body, "a\r\n.\r\n");
}

TEST(DataReader, TerminatorNeedsALineOfItsOwn) {
  const Result r = read_every_way("a.\r\n .\r\n.. \r\n.\r\n");
  EXPECT_EQ(r.body, "a.\r\n .\r\n. \r\n");
  // Without a terminator, all input is consumed and more is wanted.
  const Result open = read("a\r\n.", {});
  EXPECT_EQ(open.event, DataReader::Event::kNeedMore);
  EXPECT_EQ(open.consumed, 4u);
}

TEST(DataReader, BinaryAndNulPassThrough) {
  std::string stream;
  std::string expected;
  for (int c = 0; c < 256; ++c) {
    if (c == '\r' || c == '\n') continue;
    stream.push_back(static_cast<char>(c));
    expected.push_back(static_cast<char>(c));
  }
  stream += "\r\n.\r\n";
  expected += "\r\n";
  EXPECT_EQ(read_every_way(stream).body, expected);
}

TEST(DataReader, PrefixIsKept) {
  const Result r = read("b\r\n.\r\n", {}, 100, 1000, "Return-Path: <a@b>\r\n");
  EXPECT_EQ(r.body, "Return-Path: <a@b>\r\nb\r\n");
  EXPECT_EQ(r.body_bytes, 3u);
}

TEST(DataReader, SizeLimitCountsNormalisedOctets) {
  // 10 octets stored exactly fit a 10-octet limit; stuffing dots and the
  // terminator do not count, added CRs do.
  EXPECT_FALSE(read_every_way("..23456\r\n.\r\n", 10).too_big);   // ".23456\r\n" = 8
  EXPECT_FALSE(read_every_way("12345678\r\n.\r\n", 10).too_big);  // 10
  const Result over = read_every_way("123456789\r\n.\r\n", 10);     // 11
  EXPECT_TRUE(over.too_big);
  EXPECT_EQ(over.event, DataReader::Event::kEnd);
  EXPECT_EQ(over.body, "");
  EXPECT_TRUE(read_every_way("1234567\n\n.\r\n", 10).too_big);     // 9 CRLF 2 = 11
}

TEST(DataReader, RefusedBodyIsReleasedAndNeverGrowsPastTheLimit) {
  std::string body;
  body.reserve(16);
  DataReader reader;
  reader.start(&body, 100, 1 << 20);
  const std::string line(30, 'x');
  size_t max_capacity = 0;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(reader.feed(line + "\r\n").event, DataReader::Event::kNeedMore);
    max_capacity = std::max(max_capacity, body.capacity());
  }
  EXPECT_LE(max_capacity, 100u);
  EXPECT_FALSE(reader.too_big());
  EXPECT_EQ(reader.feed(line + "\r\n").event, DataReader::Event::kNeedMore);
  EXPECT_TRUE(reader.too_big());
  EXPECT_EQ(body.capacity(), std::string().capacity());
  EXPECT_EQ(reader.feed(".\r\n").event, DataReader::Event::kEnd);
}

TEST(DataReader, LongLines) {
  const std::string rfc_max(kDataLineBytesRfc - 2, 'r');  // 1000 with CRLF
  const Result ok = read_every_way(rfc_max + "\r\n" + rfc_max + "r\r\n.\r\n");
  EXPECT_EQ(ok.lines_over_rfc, 1u);
  EXPECT_FALSE(ok.line_too_long);
  EXPECT_EQ(ok.body.size(), 2 * kDataLineBytesRfc + 1);

  const std::string at_max(kDataLineBytesMax - 2, 'm');
  const Result lenient = read(at_max + "\r\n.\r\n", {}, 1 << 20);
  EXPECT_FALSE(lenient.line_too_long);
  EXPECT_EQ(lenient.body, at_max + "\r\n");

  const std::string stream = at_max + "m\r\nnext\r\n.\r\n";
  const Result whole = read(stream, {}, 1 << 20);
  EXPECT_TRUE(whole.line_too_long);
  EXPECT_EQ(whole.event, DataReader::Event::kEnd);
  EXPECT_EQ(whole.body, "");
  for (size_t cut : {size_t{1}, size_t{4096}, kDataLineBytesMax - 1, kDataLineBytesMax,
                     kDataLineBytesMax + 1, stream.size() - 3}) {
    EXPECT_EQ(read(stream, {cut}, 1 << 20), whole) << cut;
  }
}

TEST(DataReader, Overrun) {
  const std::string stream = std::string(100, 'x') + "\r\n.\r\n";
  const Result r = read(stream, {}, 10, 50);
  EXPECT_EQ(r.event, DataReader::Event::kOverrun);
  EXPECT_EQ(r.consumed, 50u);
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    ASSERT_EQ(read(stream, {cut}, 10, 50), r) << cut;
  }
  // Exactly at the budget the terminator still counts.
  const Result fits = read("abc\r\n.\r\n", {}, 10, 8);
  EXPECT_EQ(fits.event, DataReader::Event::kEnd);
}

// What a client sends for `message`: every LF-started line that begins
// with a dot gets another, a line end is added if the message lacks one,
// then the terminator.
std::string transmit(const std::string& message) {
  std::string out;
  bool line_start = true;
  for (char c : message) {
    if (line_start && c == '.') out.push_back('.');
    out.push_back(c);
    line_start = c == '\n';
  }
  if (!message.empty() && message.back() != '\n') out += "\r\n";
  return out + ".\r\n";
}

TEST(DataReader, SameBytesAsPopgateAdminDeliver) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::string alphabet = std::string("\r\n.\r\n.ab \x00\xff\xc3\xa9", 14);
  for (int round = 0; round < 2000; ++round) {
    std::string message;
    const size_t length = rng() % 40;
    for (size_t i = 0; i < length; ++i) message.push_back(alphabet[rng() % alphabet.size()]);
    // A message ending in a lone CR cannot be sent as it is (the client's
    // added line end would join it); real clients never send one.
    if (!message.empty() && message.back() == '\r') message.push_back('z');
    const std::string stream = transmit(message);
    std::vector<size_t> cuts;
    for (size_t at = 1 + rng() % 5; at < stream.size(); at += 1 + rng() % 5) cuts.push_back(at);
    const Result r = read(stream, cuts);
    ASSERT_EQ(r.event, DataReader::Event::kEnd) << ::testing::PrintToString(message);
    ASSERT_EQ(r.consumed, stream.size()) << ::testing::PrintToString(message);
    ASSERT_EQ(r.body, admin::normalize_crlf(message)) << ::testing::PrintToString(message);
  }
}

TEST(Wipe, ZeroesAndReleases) {
  std::string s(1000, 'x');
  wipe(s);
  EXPECT_TRUE(s.empty());
  EXPECT_GE(s.capacity(), 1000u);
  s.assign(1000, 'y');
  wipe_and_release(s);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.capacity(), std::string().capacity());
}

}  // namespace
}  // namespace popgate::lmtp
