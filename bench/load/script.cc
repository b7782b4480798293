// The scenarios' scripts and their checks: what each reply must say and
// what to send next. One session of each scenario:
//   login       USER, PASS, STAT, QUIT
//   login_tls   the same over implicit TLS (resumed when --tls-resume)
//   poll        TLS; USER, PASS, STAT, UIDL, then for the newest 1-3
//               messages: LIST n, RETR n; QUIT
//   list        USER, PASS, STAT, then LIST, UIDL, LIST, UIDL ... until the
//               window closes (--list-only: LIST, LIST, ...; --once: one
//               round, then hold); QUIT
//   retr_small  USER, PASS, STAT, LIST, RETR 1 .. RETR n, QUIT
//   retr_big    the same, on 1 MiB (or --group huge: 25 MiB) messages
//   idle        USER, PASS, STAT, hold; at the end NOOP, QUIT
// Every count and size is checked against the dataset (bench/common/dataset.h).
#include <cstdio>
#include <string>

#include "bench/load/worker.h"

namespace popgate::bench {
namespace {

// "+OK a b" with nothing else; false otherwise.
bool parse_two_numbers(std::string_view line, uint64_t* a, uint64_t* b) {
  if (line.substr(0, 4) != "+OK ") return false;
  line.remove_prefix(4);
  const auto number = [&](uint64_t* out) {
    size_t i = 0;
    uint64_t v = 0;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9' && i < 19) {
      v = v * 10 + uint64_t(line[i] - '0');
      ++i;
    }
    if (i == 0) return false;
    *out = v;
    line.remove_prefix(i);
    return true;
  };
  if (!number(a) || line.empty() || line[0] != ' ') return false;
  line.remove_prefix(1);
  // RFC 1939: STAT is exactly "+OK nn mm"; LIST n may add more after the size.
  return number(b) && (line.empty() || line[0] == ' ');
}

}  // namespace

uint32_t Worker::pick_user(Conn& c) const noexcept {
  // Counted from --first-user. Slot g uses users g, g + C, g + 2C, ...: no
  // two connections ever share a maildrop (popgate locks it; a second
  // session would get [IN-USE]).
  uint32_t index = c.global_index;
  if (restarts()) {
    const uint32_t per_connection = std::max<uint32_t>(1, users_ / total_connections_);
    index += total_connections_ * uint32_t(c.session_seq % per_connection);
  }
  return options_.first_user + index;
}

bool Worker::verify(Conn& c, bool condition, std::string_view why, uint64_t now) {
  if (condition) return true;
  fail(c, ErrorKind::kVerify, std::string(cmd_name(c.cmd)) + ": " + std::string(why) +
                                  " (user " + login_name(spec_, c.user) + ", reply '" +
                                  std::string(c.reader.status_line().substr(0, 80)) + "')",
       now);
  return false;
}

// Long sessions (list loops, RETR of a whole maildrop) end early once the
// window has closed.
bool Worker::ends_after_this_command() const noexcept { return draining(); }

void Worker::send(Conn& c, Cmd cmd, std::string_view line, ReplyReader::Shape shape,
                  uint64_t now) {
  c.cmd = cmd;
  c.phase = Phase::kReply;
  switch (shape) {
    case ReplyReader::Shape::kList:
      if (c.have_list_ref) {
        c.reader.expect(shape, nullptr, nullptr, &c.list_ref);
      } else {
        c.reader.expect(shape, &c.sizes, options_.scenario == Scenario::kList ? &c.list_ref : nullptr);
      }
      break;
    case ReplyReader::Shape::kUidl:
      if (c.have_uidl_ref) {
        c.reader.expect(shape, nullptr, nullptr, &c.uidl_ref);
      } else {
        c.reader.expect(shape, nullptr, options_.scenario == Scenario::kList ? &c.uidl_ref : nullptr);
      }
      break;
    default:
      c.reader.expect(shape);
      break;
  }
  c.octets_seen = 0;
  c.stalled_this_command = false;
  c.command_start_ns = now;
  c.deadline_ns = now + uint64_t(options_.command_timeout_ms) * 1'000'000ULL;
  c.out.append(line);
  flush(c, now);
}

void Worker::send_quit(Conn& c, uint64_t now) {
  send(c, Cmd::kQuit, "QUIT\r\n", ReplyReader::Shape::kStatus, now);
}

void Worker::hold(Conn& c) noexcept {
  c.phase = Phase::kHolding;
  c.deadline_ns = 0;
  c.reached_hold = true;
  c.counted_holding = true;
  if (in_login_ > 0) --in_login_;
  holding.fetch_add(1, std::memory_order_acq_rel);
}

void Worker::on_reply(Conn& c, uint64_t now) {
  metrics_.latency[size_t(c.cmd)].record(now - c.command_start_ns);
  if (!c.reader.ok()) {
    fail(c, ErrorKind::kErrReply, std::string(cmd_name(c.cmd)) + " -> " +
                                      std::string(c.reader.status_line().substr(0, 120)) +
                                      " (user " + login_name(spec_, c.user) + ")",
         now);
    return;
  }
  ++metrics_.commands;
  switch (c.cmd) {
    case Cmd::kGreeting: {
      const std::string line = "USER " + login_name(spec_, c.user) + "\r\n";
      send(c, Cmd::kUser, line, ReplyReader::Shape::kStatus, now);
      return;
    }
    case Cmd::kUser: {
      const std::string line = "PASS " + options_.password + "\r\n";
      send(c, Cmd::kPass, line, ReplyReader::Shape::kStatus, now);
      return;
    }
    case Cmd::kPass:
      send(c, Cmd::kStat, "STAT\r\n", ReplyReader::Shape::kStatus, now);
      return;
    case Cmd::kStat: after_stat(c, now); return;
    case Cmd::kList: after_list(c, now); return;
    case Cmd::kUidl: after_uidl(c, now); return;
    case Cmd::kListOne: after_list_one(c, now); return;
    case Cmd::kRetr: after_retr(c, now); return;
    case Cmd::kNoop: send_quit(c, now); return;
    case Cmd::kQuit:
      ++metrics_.sessions;
      metrics_.session.record(now - c.session_start_ns);
      control_.sessions_done.fetch_add(1, std::memory_order_relaxed);
      c.phase = Phase::kWaitEof;
      c.deadline_ns = now + uint64_t(options_.command_timeout_ms) * 1'000'000ULL;
      return;
  }
}

void Worker::after_stat(Conn& c, uint64_t now) {
  uint64_t count = 0;
  uint64_t octets = 0;
  if (!verify(c, parse_two_numbers(c.reader.status_line(), &count, &octets),
              "STAT is not '+OK count size'", now)) {
    return;
  }
  uint64_t want = 0;
  for (uint32_t i = 0; i < spec_.messages_per_user; ++i) want += message_size(spec_, c.user, i);
  if (!verify(c, count == spec_.messages_per_user && octets == want,
              "STAT does not match the dataset", now)) {
    return;
  }
  c.count = count;
  c.octets = octets;
  switch (options_.scenario) {
    case Scenario::kLogin:
    case Scenario::kLoginTls:
      send_quit(c, now);
      return;
    case Scenario::kPoll:
      send(c, Cmd::kUidl, "UIDL\r\n", ReplyReader::Shape::kUidl, now);
      return;
    case Scenario::kList:
    case Scenario::kRetrSmall:
    case Scenario::kRetrBig:
      send(c, Cmd::kList, "LIST\r\n", ReplyReader::Shape::kList, now);
      return;
    case Scenario::kIdle:
      hold(c);
      return;
  }
}

void Worker::after_list(Conn& c, uint64_t now) {
  if (c.have_list_ref) {  // equal to the first LIST, which was checked
    ++metrics_.listings_verified;
    next_listing(c, now);
    return;
  }
  if (!verify(c, c.reader.entries() == c.count && c.reader.sizes_sum() == c.octets,
              "LIST disagrees with STAT", now)) {
    return;
  }
  for (uint32_t i = 0; i < c.sizes.size(); ++i) {
    if (c.sizes[i] != message_size(spec_, c.user, i)) {
      verify(c, false, "LIST size of message " + std::to_string(i + 1) + " is not the delivered size",
             now);
      return;
    }
  }
  ++metrics_.listings_verified;
  if (options_.scenario == Scenario::kList) {
    c.have_list_ref = true;
    next_listing(c, now);
    return;
  }
  c.msn = 1;
  if (c.count == 0 || ends_after_this_command()) {
    send_quit(c, now);
    return;
  }
  send_retr(c, now);
}

// list: after a LIST, the UIDL (or with --list-only the next LIST).
void Worker::next_listing(Conn& c, uint64_t now) {
  if (!options_.list_only) {
    send(c, Cmd::kUidl, "UIDL\r\n", ReplyReader::Shape::kUidl, now);
    return;
  }
  if (options_.once) {
    hold(c);
    return;
  }
  if (ends_after_this_command()) {
    send_quit(c, now);
    return;
  }
  send(c, Cmd::kList, "LIST\r\n", ReplyReader::Shape::kList, now);
}

void Worker::after_uidl(Conn& c, uint64_t now) {
  if (!c.have_uidl_ref &&
      !verify(c, c.reader.entries() == c.count, "UIDL count differs from STAT", now)) {
    return;
  }
  ++metrics_.listings_verified;
  if (options_.scenario == Scenario::kList) c.have_uidl_ref = true;
  if (options_.scenario == Scenario::kPoll) {
    // Newest first: 1, 2 or 3 of them, by session.
    c.poll_left = uint32_t(std::min<uint64_t>(1 + c.session_seq % 3, c.count));
    c.msn = c.count;
    next_poll_message(c, now);
    return;
  }
  // list
  if (options_.once) {
    hold(c);
    return;
  }
  if (ends_after_this_command()) {
    send_quit(c, now);
    return;
  }
  send(c, Cmd::kList, "LIST\r\n", ReplyReader::Shape::kList, now);
}

void Worker::next_poll_message(Conn& c, uint64_t now) {
  if (c.poll_left == 0 || c.msn == 0) {
    send_quit(c, now);
    return;
  }
  const std::string line = "LIST " + std::to_string(c.msn) + "\r\n";
  send(c, Cmd::kListOne, line, ReplyReader::Shape::kStatus, now);
}

void Worker::after_list_one(Conn& c, uint64_t now) {
  uint64_t msn = 0;
  uint64_t size = 0;
  if (!verify(c, parse_two_numbers(c.reader.status_line(), &msn, &size) && msn == c.msn,
              "LIST n is not '+OK n size'", now)) {
    return;
  }
  if (!verify(c, size == message_size(spec_, c.user, uint32_t(msn - 1)),
              "LIST n size is not the delivered size", now)) {
    return;
  }
  c.expected_size = size;
  send_retr(c, now);
}

void Worker::send_retr(Conn& c, uint64_t now) {
  if (options_.scenario != Scenario::kPoll) c.expected_size = c.sizes[c.msn - 1];
  const std::string line = "RETR " + std::to_string(c.msn) + "\r\n";
  send(c, Cmd::kRetr, line, ReplyReader::Shape::kMessage, now);
}

void Worker::after_retr(Conn& c, uint64_t now) {
  const int64_t said = c.reader.status_octets();
  if (!verify(c, c.reader.body_octets() == c.expected_size,
              "RETR text length " + std::to_string(c.reader.body_octets()) + " != LIST size " +
                  std::to_string(c.expected_size),
              now) ||
      !verify(c, said < 0 || uint64_t(said) == c.expected_size,
              "RETR '+OK n octets' differs from LIST size", now) ||
      !verify(c, c.reader.trailer_ok(), "RETR content CRC trailer mismatch", now)) {
    return;
  }
  ++metrics_.retr_verified;
  if (options_.scenario == Scenario::kPoll) {
    --c.poll_left;
    --c.msn;
    next_poll_message(c, now);
    return;
  }
  if (c.msn >= c.count || ends_after_this_command()) {
    send_quit(c, now);
    return;
  }
  ++c.msn;
  send_retr(c, now);
}

}  // namespace popgate::bench
