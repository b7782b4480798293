// The pure parts of `popgate-admin import`: Dovecot's uidlist and UIDL
// formats, mbox splitting (fed whole and at every split point), X-UIDL
// headers, made-up UIDLs, UIDL maps; and the byte sizes and progress lines
// the operations commands print.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "ops/admin/dovecot_uidlist.h"
#include "ops/admin/legacy_uidl.h"
#include "ops/admin/mbox.h"
#include "ops/admin/progress.h"
#include "ops/admin/uidl_format.h"
#include "ops/admin/units.h"

namespace popgate::admin {
namespace {

// What Dovecot 2.3 wrote in the real-Dovecot test, plus extensions.
constexpr std::string_view kUidlistV3 =
    "3 V1795763179 N5 Ga31cda20eb2b096b8023000083ecc375\n"
    "1 W23 :1000.M1P1.host\n"
    "2 :1001.M2P1.host,S=40:2,S\n"
    "3 P0badc0ffee W10 :1002.M3P1.host\n"
    "4 O1 G0123 :1003.M4P1.host\n"
    "5 W58 P :1004.M5P1.host:2,S\n";

TEST(Uidlist, ParsesVersion3) {
  const UidlistParse p = parse_uidlist(kUidlistV3);
  ASSERT_EQ(p.problem, "");
  EXPECT_EQ(p.uidlist.version, 3);
  EXPECT_EQ(p.uidlist.uid_validity, 1795763179u);
  EXPECT_EQ(p.uidlist.next_uid, 5u);
  EXPECT_EQ(p.uidlist.guid, "a31cda20eb2b096b8023000083ecc375");
  ASSERT_EQ(p.uidlist.entries.size(), 5u);
  EXPECT_EQ(p.uidlist.entries[0].uid, 1u);
  EXPECT_EQ(p.uidlist.entries[0].filename, "1000.M1P1.host");
  EXPECT_FALSE(p.uidlist.entries[0].pop3_uidl);
  EXPECT_EQ(p.uidlist.entries[1].filename, "1001.M2P1.host,S=40:2,S");
  EXPECT_EQ(p.uidlist.entries[2].pop3_uidl, "0badc0ffee");
  EXPECT_EQ(p.uidlist.entries[3].pop3_order, 1u);
  EXPECT_EQ(p.uidlist.entries[4].pop3_uidl, "");  // the base file name, as Dovecot writes it
}

TEST(Uidlist, ParsesVersion1AndCrlfAndMissingFinalNewline) {
  const UidlistParse p = parse_uidlist("1 1234 3\r\n\r\n1 a.host:2,S\r\n2 b.host");
  ASSERT_EQ(p.problem, "");
  EXPECT_EQ(p.uidlist.version, 1);
  EXPECT_EQ(p.uidlist.uid_validity, 1234u);
  ASSERT_EQ(p.uidlist.entries.size(), 2u);
  EXPECT_EQ(p.uidlist.entries[0].filename, "a.host:2,S");
  EXPECT_EQ(p.uidlist.entries[1].filename, "b.host");
}

TEST(Uidlist, RefusesMalformed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty file"},
      {"2 1 2\n", "line 1: unsupported dovecot-uidlist version '2'"},
      {"3 N4\n", "line 1: the header has no valid V"},
      {"3 Vx N4\n", "line 1: the header has no valid V"},
      {"3 V1 Nx\n", "line 1: bad N"},
      {"1 5\n", "line 1: version 1 header"},
      {"3 V1 N2\nx :a\n", "line 2: expected '<uid>"},
      {"3 V1 N2\n0 :a\n", "line 2: expected '<uid>"},
      {"3 V1 N2\n1 a\n", "line 2: expected ':<filename>'"},
      {"3 V1 N2\n1 :\n", "line 2: expected ':<filename>'"},
      {"3 V1 N3\n1 :a\n\n1 :b\n", "line 4: UID 1 appears twice"},
      {"3 V1 N2\n1 Ox :a\n", "line 2: bad O"},
  };
  for (const auto& [text, problem] : cases) {
    EXPECT_EQ(parse_uidlist(text).problem.substr(0, problem.size()), problem) << text;
  }
}

TEST(Uidlist, BaseNameAndPop3Order) {
  EXPECT_EQ(maildir_base_name("1001.M2P1.host,S=40:2,S"), "1001.M2P1.host,S=40");
  EXPECT_EQ(maildir_base_name("plain"), "plain");
  std::vector<UidlistEntry> entries(4);
  entries[0].uid = 1;
  entries[1].uid = 2;
  entries[1].pop3_order = 2;
  entries[2].uid = 3;
  entries[3].uid = 4;
  entries[3].pop3_order = 1;
  std::vector<uint32_t> uids;
  for (const auto& e : pop3_listing_order(entries)) uids.push_back(e.uid);
  EXPECT_EQ(uids, (std::vector<uint32_t>{4, 2, 1, 3}));
}

TEST(UidlFormat, DovecotDefaultIsLowercaseHex) {
  const UidlVariables v{1, 1795763179, "base", ""};
  EXPECT_EQ(expand_uidl_format(kDovecotDefaultUidlFormat, v), "000000016b092beb");
  EXPECT_EQ(expand_uidl_format("%08Xu%08Xv", UidlVariables{0x1234abcd, 7, "", ""}),
            "1234abcd00000007");
}

TEST(UidlFormat, VariablesWidthsAndModifiers) {
  const UidlVariables v{42, 1700000000, "1700.M1P2.host,S=5", "d41d8cd98f00b204e9800998ecf8427e"};
  EXPECT_EQ(expand_uidl_format("%v.%u", v), "1700000000.42");
  EXPECT_EQ(expand_uidl_format("%{uidvalidity}-%{uid}", v), "1700000000-42");
  EXPECT_EQ(expand_uidl_format("%f", v), "1700.M1P2.host,S=5");
  EXPECT_EQ(expand_uidl_format("%{filename}", v), "1700.M1P2.host,S=5");
  EXPECT_EQ(expand_uidl_format("%m", v), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(expand_uidl_format("%Um", v), "D41D8CD98F00B204E9800998ECF8427E");
  EXPECT_EQ(expand_uidl_format("%Lf", v), "1700.m1p2.host,s=5");
  EXPECT_EQ(expand_uidl_format("%4f", v), "1700");
  EXPECT_EQ(expand_uidl_format("%5.4f", v), "M1P2");
  EXPECT_EQ(expand_uidl_format("%06u", v), "000042");
  EXPECT_EQ(expand_uidl_format("%Xu", v), "2a");
  EXPECT_EQ(expand_uidl_format("%UXu", v), "2A");
  EXPECT_EQ(expand_uidl_format("u%%%u", v), "u%42");
  EXPECT_EQ(expand_uidl_format("%02u", v), "42");  // padding never cuts
}

TEST(UidlFormat, Problems) {
  EXPECT_EQ(uidl_format_problem(kDovecotDefaultUidlFormat), "");
  EXPECT_EQ(uidl_format_problem("%{md5}"), "");
  for (const char* bad : {"", "%", "%08X", "%q", "%{nope}", "%{uid", "plain", "%%"}) {
    EXPECT_NE(uidl_format_problem(bad), "") << bad;
  }
  EXPECT_TRUE(uidl_format_uses_md5("x%m"));
  EXPECT_TRUE(uidl_format_uses_md5("%{md5}"));
  EXPECT_FALSE(uidl_format_uses_md5("%%m%u"));
  EXPECT_FALSE(uidl_format_uses_md5(kDovecotDefaultUidlFormat));
}

// ---- mbox ----

std::vector<MboxMessage> split(std::string_view text, size_t piece, MboxVariant variant,
                               std::string* problem = nullptr) {
  MboxSplitter s(variant, 1 << 20);
  std::vector<MboxMessage> out;
  MboxMessage m;
  for (size_t at = 0; at < text.size(); at += piece) {
    s.feed(text.substr(at, piece));
    while (s.next(m)) out.push_back(m);
  }
  s.finish();
  while (s.next(m)) out.push_back(m);
  if (problem != nullptr) *problem = s.problem();
  return out;
}

constexpr std::string_view kMbox =
    "From alice@example.org Thu Nov 27 07:04:55 2026\n"
    "Subject: one\n"
    "\n"
    "body\n"
    ">From the start\n"
    ">>From two quotes\n"
    "From inside a paragraph is not a separator\n"
    "\n"
    "From bob Fri Nov 28 08:00:00 2026\n"
    "Subject: two\r\n"
    "\r\n"
    "crlf body\r\n"
    "\r\n"
    "From carol Sat Nov 29 09:00:00 2026\n"
    "Subject: three\n"
    "\n"
    "no final blank line";

TEST(Mbox, SplitsAtEveryPieceSize) {
  for (size_t piece = 1; piece <= kMbox.size(); ++piece) {
    const auto messages = split(kMbox, piece, MboxVariant::kMboxrd);
    ASSERT_EQ(messages.size(), 3u) << piece;
    EXPECT_EQ(messages[0].envelope, "alice@example.org Thu Nov 27 07:04:55 2026");
    EXPECT_EQ(messages[0].body,
              "Subject: one\n\nbody\nFrom the start\n>From two quotes\n"
              "From inside a paragraph is not a separator\n")
        << piece;
    EXPECT_EQ(messages[1].body, "Subject: two\r\n\r\ncrlf body\r\n") << piece;
    EXPECT_EQ(messages[2].body, "Subject: three\n\nno final blank line") << piece;
  }
}

TEST(Mbox, MboxoUnquotesOnlyOneLevel) {
  const auto messages = split(kMbox, kMbox.size(), MboxVariant::kMboxo);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_NE(messages[0].body.find("\nFrom the start\n>>From two quotes\n"), std::string::npos);
}

TEST(Mbox, LeadingBlankLinesAndEmptyMessages) {
  const auto messages = split("\n\nFrom a\n\nFrom b\nx\n", 3, MboxVariant::kMboxrd);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].body, "");
  EXPECT_EQ(messages[1].body, "x\n");
  EXPECT_TRUE(split("", 1, MboxVariant::kMboxrd).empty());
}

TEST(Mbox, RefusesNonMboxAndHugeMessages) {
  std::string problem;
  EXPECT_TRUE(split("Subject: x\n\nbody\n", 4, MboxVariant::kMboxrd, &problem).empty());
  EXPECT_NE(problem.find("not an mbox"), std::string::npos);
  MboxSplitter s(MboxVariant::kMboxrd, 10);
  s.feed("From a\n0123456789\n");
  EXPECT_NE(s.problem().find("larger than 10"), std::string::npos);
  MboxSplitter t(MboxVariant::kMboxrd, 10);
  t.feed("From a\n0123456789012");  // a line that never ends
  EXPECT_NE(t.problem().find("longer than 10"), std::string::npos);
}

// ---- legacy UIDLs ----

TEST(LegacyUidl, FindsHeaders) {
  const std::string m =
      "Received: x\r\n\tfolded\r\nx-uidl:   abc123  \r\nX-UIDL: second\r\n\r\nX-UIDL: body\r\n";
  EXPECT_EQ(find_header(m, "X-UIDL"), "abc123");
  EXPECT_EQ(find_header(m, "received"), "x folded");
  EXPECT_EQ(find_header("Subject: a\n\nX-UIDL: no\n", "X-UIDL"), std::nullopt);
  EXPECT_EQ(find_header("X-UIDL: lf\nSubject: a\n", "x-uidl"), "lf");
  EXPECT_EQ(find_header("X-UIDL:\n", "x-uidl"), "");
}

TEST(LegacyUidl, ContentUidlsAreStableAndDistinct) {
  const std::string a = content_uidl("message", 1);
  EXPECT_EQ(a.size(), 24u);
  EXPECT_EQ(a, content_uidl("message", 1));
  EXPECT_NE(a, content_uidl("message!", 1));
  EXPECT_EQ(content_uidl("message", 2), a + "-2");
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(LegacyUidl, Maps) {
  const UidlMapParse ok = parse_uidl_map("# comment\n\na.eml\tU1\r\n3\tU 3\n");
  ASSERT_EQ(ok.problem, "");
  EXPECT_EQ(ok.map.by_key.at("a.eml"), "U1");
  EXPECT_EQ(ok.map.by_key.at("3"), "U 3");  // checked later, like every legacy UIDL
  EXPECT_EQ(parse_uidl_map("a b\n").problem, "line 1: expected KEY<TAB>UIDL");
  EXPECT_EQ(parse_uidl_map("\n\tx\n").problem, "line 2: empty key");
  EXPECT_EQ(parse_uidl_map("a\t\n").problem, "line 1: empty UIDL");
  EXPECT_EQ(parse_uidl_map("a\tx\na\ty\n").problem, "line 2: key 'a' appears twice");
}

// ---- sizes and progress ----

TEST(Units, ParsesSizes) {
  EXPECT_EQ(parse_byte_size("0"), 0);
  EXPECT_EQ(parse_byte_size("1234"), 1234);
  EXPECT_EQ(parse_byte_size("1k"), 1024);
  EXPECT_EQ(parse_byte_size("10M"), 10 << 20);
  EXPECT_EQ(parse_byte_size("2G"), int64_t{2} << 30);
  EXPECT_EQ(parse_byte_size("1T"), int64_t{1} << 40);
  EXPECT_EQ(parse_byte_size("8388607T"), int64_t{8388607} << 40);
  for (const char* bad :
       {"", "K", "-1", "1.5M", "10X", "1 M", "+1", "8388608T", "99999999999999999999"}) {
    EXPECT_FALSE(parse_byte_size(bad)) << bad;
  }
}

TEST(Units, FormatsSizes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.0 KiB");
  EXPECT_EQ(format_bytes(10 << 20), "10.0 MiB");
  EXPECT_EQ(format_bytes(uint64_t{5} << 29), "2.5 GiB");
}

TEST(Progress, PrintsByCountAndByTime) {
  std::ostringstream out;
  const auto t0 = Progress::Clock::time_point{};
  Progress p(out, "import", 3, std::chrono::seconds(5), t0);
  p.add(1, 1024, t0 + std::chrono::seconds(1), "(a)");
  p.add(1, 1024, t0 + std::chrono::seconds(1), "(a)");
  EXPECT_EQ(out.str(), "");
  p.add(1, 1024, t0 + std::chrono::seconds(2), "(b)");
  EXPECT_EQ(out.str(), "import: 3 messages (b), 3.0 KiB in 2.0 s, 2 messages/s, 1.5 KiB/s\n");
  out.str("");
  p.add(1, 0, t0 + std::chrono::seconds(8), "");  // five seconds since the last line
  EXPECT_EQ(out.str(), "import: 4 messages, 3.0 KiB in 8.0 s, 0 messages/s, 384 B/s\n");
}

}  // namespace
}  // namespace popgate::admin
