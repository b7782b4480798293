#include "server/auth/apop.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>

namespace popgate::auth {
namespace {

// RFC 1939 section 7: the example exchange.
constexpr std::string_view kRfcBanner = "<1896.697170952@dbc.mtview.ca.us>";
constexpr std::string_view kRfcSecret = "tanstaaf";
constexpr std::string_view kRfcDigest = "c4c9334bac560ecc979e58001b3e22fb";

TEST(Apop, Rfc1939Example) {
  EXPECT_TRUE(apop_matches(kRfcBanner, kRfcSecret, kRfcDigest));
  EXPECT_TRUE(apop_matches(kRfcBanner, kRfcSecret, "C4C9334BAC560ECC979E58001B3E22FB"));
  EXPECT_TRUE(apop_matches(kRfcBanner, kRfcSecret, "c4C9334bAc560ecc979e58001b3e22fb"));
}

TEST(Apop, Refusals) {
  EXPECT_FALSE(apop_matches(kRfcBanner, "tanstaafl", kRfcDigest));
  EXPECT_FALSE(apop_matches(kRfcBanner, "", kRfcDigest));
  EXPECT_FALSE(apop_matches("<1896.697170953@dbc.mtview.ca.us>", kRfcSecret, kRfcDigest));
  EXPECT_FALSE(apop_matches(kRfcBanner, kRfcSecret, "c4c9334bac560ecc979e58001b3e22fa"));
  EXPECT_FALSE(apop_matches(kRfcBanner, kRfcSecret, "c4c9334bac560ecc979e58001b3e22f"));
  EXPECT_FALSE(apop_matches(kRfcBanner, kRfcSecret, "c4c9334bac560ecc979e58001b3e22fb0"));
  EXPECT_FALSE(apop_matches(kRfcBanner, kRfcSecret, "g4c9334bac560ecc979e58001b3e22fb"));
  EXPECT_FALSE(apop_matches(kRfcBanner, kRfcSecret, " c4c9334bac560ecc979e58001b3e22fb"));
  EXPECT_FALSE(apop_matches(kRfcBanner, kRfcSecret, ""));
}

TEST(Apop, BannerFormat) {
  std::array<char, kApopBannerBytesMax> buf{};
  const ApopBannerInputs in{.pid = 1896,
                            .connection_serial = 7,
                            .random = 42,
                            .clock = 697170952,
                            .hostname = "dbc.mtview.ca.us"};
  const std::string_view banner = make_apop_banner(in, buf);
  EXPECT_EQ(banner, "<1896.7.42.697170952@dbc.mtview.ca.us>");
  // The digest a client computes over it verifies.
  EXPECT_FALSE(apop_matches(banner, kRfcSecret, kRfcDigest));
}

TEST(Apop, BannerIsUniquePerInput) {
  std::set<std::string> seen;
  std::array<char, kApopBannerBytesMax> buf{};
  for (uint64_t serial = 0; serial < 100; ++serial) {
    for (uint64_t random : {uint64_t{0}, uint64_t{1}, UINT64_MAX}) {
      const ApopBannerInputs in{
          .pid = 1, .connection_serial = serial, .random = random, .clock = 5, .hostname = "h"};
      EXPECT_TRUE(seen.insert(std::string(make_apop_banner(in, buf))).second);
    }
  }
}

TEST(Apop, BannerHostnameIsSanitisedAndBufferChecked) {
  std::array<char, kApopBannerBytesMax> buf{};
  for (const char* bad : {"", "a b", "evil>host", ".lead", "trail.", "x\r\ny"}) {
    const ApopBannerInputs in{
        .pid = 1, .connection_serial = 2, .random = 3, .clock = 4, .hostname = bad};
    EXPECT_EQ(make_apop_banner(in, buf), "<1.2.3.4@localhost>") << bad;
  }
  const std::string long_host(254, 'a');
  ApopBannerInputs in{.pid = UINT64_MAX,
                      .connection_serial = UINT64_MAX,
                      .random = UINT64_MAX,
                      .clock = UINT64_MAX,
                      .hostname = long_host};
  EXPECT_TRUE(make_apop_banner(in, buf).ends_with("@localhost>"));
  const std::string max_host(253, 'a');
  in.hostname = max_host;
  const std::string_view longest = make_apop_banner(in, buf);
  EXPECT_LE(longest.size(), kApopBannerBytesMax);
  EXPECT_TRUE(longest.ends_with(max_host + ">"));
  std::array<char, kApopBannerBytesMax - 1> small{};
  EXPECT_EQ(make_apop_banner(in, small), "");
}

}  // namespace
}  // namespace popgate::auth
