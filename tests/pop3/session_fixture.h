// A session over a fake maildrop with three messages, one of them with
// lines that start with '.'.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/support/session_harness.h"

namespace popgate::testing {

inline constexpr std::string_view kGreeting = "+OK POP3 server ready\r\n";
inline const std::string kMsg1 = "Subject: one\r\n\r\nHello\r\n";
inline const std::string kMsg2 =
    "Subject: two\r\nFrom: b@example.test\r\n\r\n.hidden\r\n.\r\nline3\r\nline4\r\n";
inline const std::string kMsg3 = "Subject: three\r\n\r\nbody\r\n";

class SessionTest : public ::testing::Test {
 protected:
  explicit SessionTest(pop3::SessionConfig config = {}) : h(std::move(config)) {
    FakeUser& u = h.store().add_user("alice@example.test", "s3cret pw");
    u.messages = {FakeStore::message(11, "uid-one", kMsg1),
                  FakeStore::message(12, "uid-two", kMsg2),
                  FakeStore::message(13, "uid-three", kMsg3)};
    greeting = h.take_output();
  }

  // Logs in; returns what the server said to the login.
  std::string login() { return h.send("USER alice@example.test\r\nPASS s3cret pw\r\n"); }

  std::string size_of(const std::string& m) { return std::to_string(m.size()); }

  SessionHarness h;
  std::string greeting;
};

}  // namespace popgate::testing
