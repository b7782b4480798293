#include "ops/admin/message.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace popgate::admin {
namespace {

using namespace std::string_literals;

const std::vector<std::pair<std::string, std::string>>& cases() {
  static const std::vector<std::pair<std::string, std::string>> all = {
      {"", ""},
      {"a", "a\r\n"},
      {"a\n", "a\r\n"},
      {"a\r", "a\r\n"},
      {"a\r\n", "a\r\n"},
      {"\n", "\r\n"},
      {"\r", "\r\n"},
      {"\r\n", "\r\n"},
      {"\n\r", "\r\n\r\n"},
      {"\r\r\n\n", "\r\n\r\n\r\n"},
      {"Subject: x\n\nbody\nend", "Subject: x\r\n\r\nbody\r\nend\r\n"},
      {"A\nB\r\nC\rD\r\r\nE", "A\r\nB\r\nC\r\nD\r\n\r\nE\r\n"},
      {".\n..\n.x\r\n", ".\r\n..\r\n.x\r\n"},
      {"nul\0in\0\n"s, "nul\0in\0\r\n"s},
      {"\xff\xfe\r\xff", "\xff\xfe\r\n\xff\r\n"},
  };
  return all;
}

std::string feed_pieces(const std::vector<std::string_view>& pieces) {
  std::string out;
  CrlfNormalizer normalizer;
  for (const auto piece : pieces) normalizer.feed(piece, out);
  normalizer.finish(out);
  return out;
}

TEST(CrlfNormalizer, Whole) {
  for (const auto& [in, want] : cases()) EXPECT_EQ(normalize_crlf(in), want) << in;
}

TEST(CrlfNormalizer, EverySplit) {
  for (const auto& [in, want] : cases()) {
    const std::string_view v(in);
    for (size_t cut = 0; cut <= v.size(); ++cut) {
      EXPECT_EQ(feed_pieces({v.substr(0, cut), v.substr(cut)}), want) << in << " cut " << cut;
    }
  }
}

TEST(CrlfNormalizer, SingleBytesAndEmptyPieces) {
  for (const auto& [in, want] : cases()) {
    std::vector<std::string_view> pieces;
    for (size_t i = 0; i < in.size(); ++i) {
      pieces.emplace_back(in.data() + i, 1);
      pieces.emplace_back();  // empty feeds change nothing
    }
    EXPECT_EQ(feed_pieces(pieces), want) << in;
  }
}

TEST(CrlfNormalizer, LimitIsStoragesCap) { EXPECT_EQ(kDeliverMessageBytesMax, 2147483647u); }

}  // namespace
}  // namespace popgate::admin
