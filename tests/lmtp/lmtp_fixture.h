// A session with a directory of three recipients (carol's mailbox holds
// 100 octets), greeted; the replies every transcript starts with.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/lmtp/lmtp_harness.h"

namespace popgate::testing {

inline constexpr std::string_view kGreeting = "220 mx.example.test LMTP popgate ready\r\n";
inline constexpr std::string_view kLhloReply =
    "250-mx.example.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
    "250-SIZE 1000\r\n250 SMTPUTF8\r\n";
inline constexpr std::string_view kMailOk = "250 2.1.0 OK\r\n";
inline constexpr std::string_view kRcptOk = "250 2.1.5 OK\r\n";
inline constexpr std::string_view kDataGo = "354 start mail input; end with <CRLF>.<CRLF>\r\n";
inline constexpr std::string_view kOk = "250 2.0.0 OK\r\n";

class LmtpTest : public ::testing::Test {
 protected:
  explicit LmtpTest(lmtp::SessionConfig config = LmtpHarness::default_config(),
                    size_t block_bytes = 16 * 1024)
      : h(std::move(config), block_bytes) {
    h.store().add("alice@example.test");
    h.store().add("bob@example.test");
    h.store().add("carol@example.test", 100);
    greeting = h.take_output();
  }

  std::string lhlo() { return h.send("LHLO client.example\r\n"); }
  // "250 2.0.0 <uidl> delivered" for the n-th delivery (1-based).
  static std::string delivered(size_t n) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "250 2.0.0 U%015zu delivered\r\n", n);
    return buf;
  }

  LmtpHarness h;
  std::string greeting;
};

}  // namespace popgate::testing
