// Fuzz target: the POP3 command parser and the whole pop3::Session, driven
// the way a shard drives it (tests/support/session_harness.h) against a
// fake store and a fake clock. The input is the client's bytes, cut where
// the input says, with the clock moved between pieces (past the failed-login
// delay, the login timeout or the autologout sometimes), store faults and
// the session's configuration picked by the first octets, and the end of
// the connection (EOF, shutdown, kick) chosen too.
//
// Input: [config] [faults] [send limit] [sizes] [cut seed: 4] client bytes...
//   config  bit 0 implicit TLS, 1 APOP offered, 2 every mechanism enabled,
//           3 STLS offered, 4 no cleartext login, 5 1 KiB output block,
//           bits 6-7 the end: none, EOF, shutdown, kick
//   faults  bit 0 the lookup fails, 1 the open fails, 2 UPDATE fails,
//           3 a body fetch fails (which: bits 5-7), 4 the KDF is unavailable
//   send    octets drained per send (0: all)
//   sizes   bits 0-1 body chunk (8, 100, 4096, 256 KiB octets), bit 2 a
//           limit refuses the open, bit 3 failed logins end the connection,
//           bit 4 carol's maildrop is locked elsewhere
//
// Checks: the output starts with the greeting and is CRLF lines (no bare CR
// or LF, no NUL); status lines fit RFC 2449's 512 octets and "+ "
// challenges are base64; the output ends at a line end unless the session
// closed mid-reply on purpose; no more status lines than client lines and a
// few unsolicited ones; UPDATE is asked for only after a QUIT, deletes only
// messages of the snapshot; once closed, the session takes no command,
// writes nothing and asks nothing. The harness aborts if the session never
// settles.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/pop3/base64.h"
#include "server/pop3/session.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/session_harness.h"

namespace {

using popgate::testing::FakeStore;
using popgate::testing::FakeUser;
using popgate::testing::SessionHarness;
namespace pop3 = popgate::pop3;
using std::chrono::milliseconds;

// No line of these bodies starts with '+' or '-', so every line that does
// in the output is a status line.
std::string big_body() {
  std::string body = "Subject: big\r\nFrom: a@example.test\r\n\r\n";
  for (int i = 0; i < 400; ++i) {
    if (i % 7 == 0) body += ".";
    if (i % 50 == 0) body += ".\r\n";
    body += "line " + std::to_string(i) + " of a message that is longer than the output block\r\n";
  }
  return body;
}

void add_users(FakeStore& store, bool carol_locked) {
  FakeUser& alice = store.add_user("alice@example.test", "s3cret pw");
  alice.messages = {
      FakeStore::message(11, "uid-one", "Subject: one\r\n\r\nHello\r\n"),
      FakeStore::message(12, "uid-two",
                         "Subject: two\r\nFrom: b@example.test\r\n\r\n.hidden\r\n.\r\nline3\r\n"),
      FakeStore::message(13, "uid-three", big_body()),
      FakeStore::message(14, "uid-four", "\r\n"),
  };
  FakeUser& bob = store.add_user("bob@example.test", "pw");
  bob.apop_secret = "tanstaaf";
  bob.scram = false;
  bob.login_delay_s = 30;
  bob.expire_days = 5;
  bob.since_last_login_s = 3;
  bob.messages = {FakeStore::message(21, "b1", "Subject: b\r\n\r\n..\r\n")};
  FakeUser& carol = store.add_user("carol@example.test", "c");
  carol.require_tls = true;
  carol.mechanisms = pop3::kMechUser | pop3::kMechPlain;
  carol.locked = carol_locked;
}

bool contains_quit(std::string_view client) {
  for (size_t i = 0; i + 4 <= client.size(); ++i) {
    std::string word(client.substr(i, 4));
    std::transform(word.begin(), word.end(), word.begin(),
                   [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; });
    if (word == "QUIT") return true;
  }
  return false;
}

void check_output(std::string_view out, std::string_view client, bool closed_now) {
  POPGATE_FUZZ_CHECK(out.starts_with("+OK"), "output does not start with the greeting");
  POPGATE_FUZZ_CHECK(out.find('\0') == std::string_view::npos, "NUL in the output");
  size_t status_lines = 0;
  size_t pos = 0;
  while (pos < out.size()) {
    const size_t lf = out.find('\n', pos);
    if (lf == std::string_view::npos) {
      POPGATE_FUZZ_CHECK(closed_now, "output ends inside a line");
      POPGATE_FUZZ_CHECK(out.find('\r', pos) == std::string_view::npos, "bare CR in the output");
      break;
    }
    POPGATE_FUZZ_CHECK(lf > pos && out[lf - 1] == '\r', "bare LF in the output");
    const std::string_view line = out.substr(pos, lf - 1 - pos);
    POPGATE_FUZZ_CHECK(line.find('\r') == std::string_view::npos, "bare CR in the output");
    if (line.starts_with("+OK") || line.starts_with("-ERR")) {
      ++status_lines;
      POPGATE_FUZZ_CHECK(line.size() + 2 <= pop3::kReplyLineBytesMax, "status line over 512 octets");
    } else if (line.starts_with("+ ")) {
      ++status_lines;
      POPGATE_FUZZ_CHECK(line.size() + 2 <= pop3::kReplyLineBytesMax, "challenge over 512 octets");
      std::string decoded;
      POPGATE_FUZZ_CHECK(line == "+ " || pop3::base64_decode(line.substr(2), decoded),
                         "challenge is not base64");
    } else if (line.starts_with("+") || line.starts_with("-")) {
      POPGATE_FUZZ_CHECK(false, "a line that is neither +OK, -ERR nor a challenge");
    }
    pos = lf + 1;
  }
  // One reply per client line, plus the greeting, a too-long line's early
  // -ERR and one unsolicited end (autologout, shutdown, kick).
  const auto client_lines = static_cast<size_t>(std::count(client.begin(), client.end(), '\n'));
  POPGATE_FUZZ_CHECK(status_lines <= client_lines + 3, "more replies than commands");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  popgate::fuzz::FuzzInput in(data, size);
  const uint8_t config_bits = in.byte();
  const uint8_t faults = in.byte();
  const uint8_t send_limit = in.byte();
  const uint8_t sizes = in.byte();
  const uint32_t seed = in.u32();
  const std::string_view client = in.rest();

  pop3::SessionConfig config;
  config.apop = (config_bits & 2U) != 0;
  if ((config_bits & 4U) != 0) config.mechanisms = pop3::kMechAll;
  config.tls_available = (config_bits & 8U) != 0;
  config.allow_cleartext_login = (config_bits & 16U) == 0;
  static constexpr uint32_t kChunks[] = {8, 100, 4096, 256 * 1024};
  config.body_chunk_bytes = kChunks[sizes & 3U];
  config.capa_login_delay_s = 5;
  const size_t block = (config_bits & 32U) != 0 ? 1024 : 16 * 1024;
  SessionHarness h(config, block, (config_bits & 1U) != 0,
                   config.apop ? "<1896.697170952@dbc.mtview.ca.us>" : "");

  FakeStore& store = h.store();
  add_users(store, (sizes & 16U) != 0);
  if ((faults & 1U) != 0) store.fail_lookup = pop3::StoreStatus::kTemporary;
  if ((faults & 2U) != 0) store.fail_open = pop3::StoreStatus::kTemporary;
  if ((faults & 4U) != 0) store.fail_commit = pop3::StoreStatus::kTemporary;
  if ((faults & 8U) != 0) store.fail_fetch_number = faults >> 5;
  if ((faults & 16U) != 0) store.password_override = pop3::PasswordCheck::kUnavailable;
  if ((sizes & 4U) != 0) {
    h.refuse_open = std::make_pair(pop3::RespCode::kSysTemp, std::string("too many sessions"));
  }
  if ((sizes & 8U) != 0) {
    h.failure_delay = milliseconds(0);
    h.close_after_failure = true;
  }
  h.send_limit = send_limit;

  std::string out = h.take_output();
  popgate::fuzz::Xorshift clock(seed ^ 0x5bd1e995U);
  for (std::string_view piece :
       popgate::fuzz::pieces(client, popgate::fuzz::derived_cuts(client.size(), seed))) {
    if (h.closed()) break;
    out += h.send(piece);
    if (h.session().wants_tls()) (void)h.start_tls();
    const uint32_t r = clock.below(16);
    if (r >= 11) {
      const milliseconds by = r == 15   ? milliseconds(11 * 60 * 1000)
                              : r == 14 ? milliseconds(61 * 1000)
                                        : milliseconds(1 + clock.below(3000));
      out += h.advance(by);
    }
  }
  if (!h.closed()) {
    switch (config_bits >> 6) {
      case 1: h.peer_closed(); break;
      case 2: h.shutdown(); break;
      case 3:
        h.session().handle_kick(h.now());
        h.pump();
        break;
      default: break;
    }
    out += h.take_output();
  }

  pop3::Session& s = h.session();
  const bool closed_now = s.close_mode() == pop3::CloseMode::kNow;
  check_output(out, client, closed_now);

  const auto& seen = store.seen;
  if (std::find(seen.begin(), seen.end(), pop3::RequestKind::kCommitUpdate) != seen.end()) {
    POPGATE_FUZZ_CHECK(contains_quit(client), "UPDATE without a QUIT");
  }
  for (int64_t id : store.committed_ids) {
    POPGATE_FUZZ_CHECK((id >= 11 && id <= 14) || id == 21, "UPDATE of a message not in the snapshot");
  }

  if (h.closed()) {
    POPGATE_FUZZ_CHECK(!s.wants_input(), "a closed session wants input");
    const size_t pending = s.pending_output().size();
    POPGATE_FUZZ_CHECK(closed_now || pending == 0, "closed before its last reply was sent");
    const std::string_view more = "NOOP\r\nQUIT\r\n";
    POPGATE_FUZZ_CHECK(s.handle_input(more, h.now()) == more.size(),
                       "a closed session held input back");
    POPGATE_FUZZ_CHECK(s.take_request() == nullptr, "a closed session asked the store");
    POPGATE_FUZZ_CHECK(s.pending_output().size() == pending, "a closed session wrote more");
    POPGATE_FUZZ_CHECK(s.end_reason() != pop3::EndReason::kOpen, "closed without a reason");
  }
  return 0;
}
