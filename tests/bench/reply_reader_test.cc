// The load generator's reply verification (bench/common/reply_reader.h):
// what it accepts and what it refuses, fed whole, at every split point and
// one byte at a time. If it let a wrong reply through, a fast wrong server
// could score.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/common/crc32c.h"
#include "bench/common/dataset.h"
#include "bench/common/reply_reader.h"

namespace popgate::bench {
namespace {

using Shape = ReplyReader::Shape;
using Status = ReplyReader::Status;

std::string stuff(std::string_view text) {
  std::string out;
  bool line_start = true;
  for (const char ch : text) {
    if (line_start && ch == '.') out += '.';
    out += ch;
    line_start = ch == '\n';
  }
  return out;
}

std::string retr_reply(std::string_view text) {
  return "+OK " + std::to_string(text.size()) + " octets\r\n" + stuff(text) + ".\r\n";
}

// The text of a small message with a valid trailer and every stuffing case.
std::string message_text() {
  std::string body =
      "Subject: test\r\n\r\n.starts with a dot\r\n.\r\n..\r\nplain line\r\n\r\n. spaced\r\n";
  char trailer[64];
  std::snprintf(trailer, sizeof trailer, "X-Bench-CRC32C: %08x\r\n", crc32c(body));
  return body + trailer;
}

struct Outcome {
  Status status = Status::kNeedMore;
  size_t consumed = 0;
  ReplyReader reader;
};

// Feeds `reply` in pieces cut at `cuts` (ascending offsets).
void feed_cut(Outcome& o, Shape shape, std::string_view reply, const std::vector<size_t>& cuts,
              std::vector<uint32_t>* sizes = nullptr, std::string* capture = nullptr,
              const std::string* reference = nullptr) {
  o.reader.expect(shape, sizes, capture, reference);
  size_t at = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(reply.size());
  for (const size_t end : ends) {
    // Each piece in its own buffer: the reader must not keep views into it.
    std::string piece(reply.substr(at, end - at));
    size_t used = 0;
    o.status = o.reader.feed(piece, &used);
    o.consumed += used;
    at = end;
    if (o.status != Status::kNeedMore) return;
  }
}

// Every way of splitting `reply` in two, and one byte at a time, gives the
// same verdict as feeding it whole.
template <typename Check>
void at_every_split(Shape shape, std::string_view reply, Check check) {
  {
    Outcome o;
    feed_cut(o, shape, reply, {});
    check(o);
  }
  for (size_t cut = 1; cut < reply.size(); ++cut) {
    SCOPED_TRACE("split at " + std::to_string(cut));
    Outcome o;
    feed_cut(o, shape, reply, {cut});
    check(o);
  }
  std::vector<size_t> bytes;
  for (size_t i = 1; i < reply.size(); ++i) bytes.push_back(i);
  SCOPED_TRACE("one byte at a time");
  Outcome o;
  feed_cut(o, shape, reply, bytes);
  check(o);
}

TEST(BenchReplyReader, StatusLines) {
  at_every_split(Shape::kStatus, "+OK 3 1200\r\n", [](const Outcome& o) {
    ASSERT_EQ(o.status, Status::kDone);
    EXPECT_TRUE(o.reader.ok());
    EXPECT_EQ(o.reader.status_line(), "+OK 3 1200");
  });
  at_every_split(Shape::kStatus, "-ERR [IN-USE] locked\r\n", [](const Outcome& o) {
    ASSERT_EQ(o.status, Status::kDone);
    EXPECT_FALSE(o.reader.ok());
  });
  for (const char* bad : {"+OKAY\r\n", "OK\r\n", "+OK no cr\n", "-ERRx\r\n"}) {
    SCOPED_TRACE(bad);
    at_every_split(Shape::kStatus, bad, [](const Outcome& o) { EXPECT_EQ(o.status, Status::kViolation); });
  }
  Outcome o;
  feed_cut(o, Shape::kStatus, "+OK " + std::string(600, 'x') + "\r\n", {});
  EXPECT_EQ(o.status, Status::kViolation);
}

TEST(BenchReplyReader, MultiLineErrEndsAtTheStatusLine) {
  at_every_split(Shape::kMessage, "-ERR no such message\r\n", [](const Outcome& o) {
    ASSERT_EQ(o.status, Status::kDone);
    EXPECT_FALSE(o.reader.ok());
  });
}

TEST(BenchReplyReader, MessageUnstuffedLengthAndTrailer) {
  const std::string text = message_text();
  const std::string reply = retr_reply(text);
  at_every_split(Shape::kMessage, reply, [&](const Outcome& o) {
    ASSERT_EQ(o.status, Status::kDone) << o.reader.violation();
    EXPECT_EQ(o.consumed, reply.size());
    EXPECT_EQ(o.reader.body_octets(), text.size());
    EXPECT_TRUE(o.reader.trailer_ok());
    EXPECT_EQ(o.reader.status_octets(), int64_t(text.size()));
  });
}

TEST(BenchReplyReader, DatasetMessagesVerify) {
  const GroupSpec& spec = group_spec(Group::kSmall, DatasetSize::kSmoke);
  for (uint32_t i = 0; i < spec.messages_per_user; ++i) {
    const std::string text = make_message(spec, 0, i);
    ASSERT_EQ(text.size(), message_size(spec, 0, i));
    Outcome o;
    feed_cut(o, Shape::kMessage, retr_reply(text), {7, 100, 4095});
    ASSERT_EQ(o.status, Status::kDone) << o.reader.violation();
    EXPECT_EQ(o.reader.body_octets(), text.size());
    EXPECT_TRUE(o.reader.trailer_ok());
  }
}

TEST(BenchReplyReader, WrongContentFailsTheTrailer) {
  std::string text = message_text();
  text[20] ^= 1;  // one bit of the body, after the CRC was computed
  at_every_split(Shape::kMessage, retr_reply(text), [](const Outcome& o) {
    ASSERT_EQ(o.status, Status::kDone);
    EXPECT_FALSE(o.reader.trailer_ok());
  });
}

TEST(BenchReplyReader, UnstuffedDotIsAViolation) {
  // A server that forgot to stuff ".starts with a dot".
  const std::string text = message_text();
  const std::string reply = "+OK\r\n" + text + ".\r\n";
  at_every_split(Shape::kMessage, reply, [](const Outcome& o) { EXPECT_EQ(o.status, Status::kViolation); });
}

TEST(BenchReplyReader, BareLfIsAViolation) {
  at_every_split(Shape::kMessage, "+OK\r\nline one\nline two\r\n.\r\n",
                 [](const Outcome& o) { EXPECT_EQ(o.status, Status::kViolation); });
  // Also where the SIMD scan runs (long lines).
  const std::string long_line(100, 'a');
  at_every_split(Shape::kMessage, "+OK\r\n" + long_line + "\r\n" + long_line + "\n" + long_line + "\r\n.\r\n",
                 [](const Outcome& o) { EXPECT_EQ(o.status, Status::kViolation); });
}

TEST(BenchReplyReader, MissingTerminatorNeedsMore) {
  Outcome o;
  feed_cut(o, Shape::kMessage, "+OK\r\nsome text\r\n", {});
  EXPECT_EQ(o.status, Status::kNeedMore);
}

TEST(BenchReplyReader, ListListing) {
  const std::string reply = "+OK 3 messages\r\n1 120\r\n2 4096\r\n3 7\r\n.\r\n";
  at_every_split(Shape::kList, reply, [](const Outcome& o) {
    ASSERT_EQ(o.status, Status::kDone) << o.reader.violation();
    EXPECT_EQ(o.reader.entries(), 3u);
    EXPECT_EQ(o.reader.sizes_sum(), 120u + 4096u + 7u);
  });
  std::vector<uint32_t> sizes;
  std::string captured;
  Outcome o;
  feed_cut(o, Shape::kList, reply, {5, 20}, &sizes, &captured);
  ASSERT_EQ(o.status, Status::kDone);
  EXPECT_EQ(sizes, (std::vector<uint32_t>{120, 4096, 7}));
  EXPECT_EQ(captured, "1 120\r\n2 4096\r\n3 7\r\n.\r\n");
}

TEST(BenchReplyReader, ListingMistakes) {
  for (const char* bad : {"+OK\r\n1 120\r\n3 7\r\n.\r\n",       // gap
                          "+OK\r\n1 120\r\n1 7\r\n.\r\n",       // repeat
                          "+OK\r\n1 12x\r\n.\r\n",              // not a number
                          "+OK\r\n1120\r\n.\r\n",               // no space
                          "+OK\r\n1 120\n.\r\n"}) {             // bare LF
    SCOPED_TRACE(bad);
    at_every_split(Shape::kList, bad, [](const Outcome& o) { EXPECT_EQ(o.status, Status::kViolation); });
  }
}

TEST(BenchReplyReader, UidlListing) {
  at_every_split(Shape::kUidl, "+OK\r\n1 000000016b092e6c\r\n2 abc\r\n.\r\n", [](const Outcome& o) {
    ASSERT_EQ(o.status, Status::kDone) << o.reader.violation();
    EXPECT_EQ(o.reader.entries(), 2u);
  });
  const std::string too_long = "+OK\r\n1 " + std::string(71, 'u') + "\r\n.\r\n";
  at_every_split(Shape::kUidl, too_long, [](const Outcome& o) { EXPECT_EQ(o.status, Status::kViolation); });
  at_every_split(Shape::kUidl, "+OK\r\n1 has space\r\n.\r\n",
                 [](const Outcome& o) { EXPECT_EQ(o.status, Status::kViolation); });
}

TEST(BenchReplyReader, ListingEqualToTheReference) {
  const std::string reference = "1 120\r\n2 4096\r\n.\r\n";
  for (size_t cut = 1; cut < reference.size() + 16; ++cut) {
    Outcome o;
    feed_cut(o, Shape::kList, "+OK 2 messages\r\n" + reference, {cut}, nullptr, nullptr, &reference);
    EXPECT_EQ(o.status, Status::kDone);
  }
  Outcome o;
  feed_cut(o, Shape::kList, "+OK 2 messages\r\n1 120\r\n2 4097\r\n.\r\n", {}, nullptr, nullptr, &reference);
  EXPECT_EQ(o.status, Status::kViolation);
}

TEST(BenchReplyReader, BytesAfterTheReplyAreLeft) {
  Outcome o;
  feed_cut(o, Shape::kStatus, "+OK\r\n+OK next\r\n", {});
  ASSERT_EQ(o.status, Status::kDone);
  EXPECT_EQ(o.consumed, 5u);
}

}  // namespace
}  // namespace popgate::bench
