// Session core: the command table, input loop, replies, limits and timers.
// The command handlers live in session_auth.cc and session_listing.cc.
#include "server/pop3/session.h"

#include <algorithm>

namespace popgate::pop3 {
namespace {

constexpr uint8_t bit(int state) { return static_cast<uint8_t>(1U << state); }
constexpr uint8_t kAuth = bit(0);   // State::kAuthorization
constexpr uint8_t kTrans = bit(1);  // State::kTransaction

constexpr TimePoint kNever = TimePoint::max();

}  // namespace

std::string_view end_reason_name(EndReason reason) noexcept {
  switch (reason) {
    case EndReason::kOpen: return "open";
    case EndReason::kQuit: return "quit";
    case EndReason::kPeerClosed: return "peer_closed";
    case EndReason::kAutologout: return "autologout";
    case EndReason::kBadCommands: return "bad_commands";
    case EndReason::kAuthFailures: return "auth_failures";
    case EndReason::kFlood: return "flood";
    case EndReason::kShutdown: return "shutdown";
    case EndReason::kStreamAborted: return "stream_aborted";
    case EndReason::kStalled: return "stalled";
    case EndReason::kRefused: return "refused";
    case EndReason::kTlsFailed: return "tls_failed";
    case EndReason::kKicked: return "kicked";
    case EndReason::kLockLost: return "lock_lost";
  }
  return "?";
}

// One table, one signature: verb, the states it is valid in, the handler.
const std::array<Session::CommandSpec, kVerbCount - 1> Session::kCommands{{
    {Verb::kUser, kAuth, &Session::cmd_user},
    {Verb::kPass, kAuth, &Session::cmd_pass},
    {Verb::kApop, kAuth, &Session::cmd_apop},
    {Verb::kAuth, kAuth, &Session::cmd_auth},
    {Verb::kStls, kAuth, &Session::cmd_stls},
    {Verb::kUtf8, kAuth, &Session::cmd_utf8},
    {Verb::kQuit, kAuth | kTrans, &Session::cmd_quit},
    {Verb::kCapa, kAuth | kTrans, &Session::cmd_capa},
    {Verb::kNoop, kTrans, &Session::cmd_noop},
    {Verb::kStat, kTrans, &Session::cmd_stat},
    {Verb::kList, kTrans, &Session::cmd_list},
    {Verb::kUidl, kTrans, &Session::cmd_uidl},
    {Verb::kRetr, kTrans, &Session::cmd_retr},
    {Verb::kTop, kTrans, &Session::cmd_top},
    {Verb::kDele, kTrans, &Session::cmd_dele},
    {Verb::kRset, kTrans, &Session::cmd_rset},
}};

Session::Session(const SessionConfig& config, BufferPool& pool, Counters& counters)
    : config_(config), counters_(counters), out_(pool) {
  counters_.sessions_opened.add();
}

void Session::start(TimePoint now, bool secure, std::string_view apop_banner) {
  started_ = true;
  secure_ = secure;
  touch(now);
  if (config_.apop && !apop_banner.empty()) {
    apop_banner_.assign(apop_banner);
    LineBuilder b;
    reply(b.add("+OK POP3 server ready ").add(apop_banner).finish());
    return;
  }
  reply_ok("POP3 server ready");
}

void Session::refuse(RespCode code, std::string_view text, TimePoint now) {
  started_ = true;
  touch(now);
  reply_err(code, text);
  close_after_flush(now, EndReason::kRefused);
}

Session::~Session() {
  wipe_password();
  counters_.sessions_closed.add();
}

// ---- Input ---------------------------------------------------------------

bool Session::ready_for_command() const noexcept {
  return started_ && close_ == CloseMode::kOpen && !shutting_down_ && pending_ == Pending::kNone &&
         stream_ == Stream::kNone && stls_ == Stls::kNone && !request_ready_ &&
         out_.space() >= kReplyLineBytesMax;
}

bool Session::wants_input() const noexcept { return ready_for_command(); }

size_t Session::handle_input(std::string_view bytes, TimePoint now) {
  // Once closing, nothing more is read as a command (QUIT, limits, EOF).
  if (close_ != CloseMode::kOpen) return bytes.size();
  // After STLS, whatever came with it is dropped unread (see wants_tls()).
  if (stls_ == Stls::kAccepted) return bytes.size();
  size_t used = 0;
  while (used < bytes.size() && ready_for_command()) {
    const LineReader::Step step = reader_.next(bytes.substr(used));
    used += step.consumed;
    if (step.event == LineReader::Event::kLine) {
      touch(now);
      if (sasl_ != Sasl::kNone) {
        handle_sasl_line(reader_.line(), now);
      } else {
        dispatch(reader_.line(), now);
      }
    } else if (step.event != LineReader::Event::kNeedMore) {
      touch(now);
      handle_line_event(step.event, now);
    }
    if (stls_ == Stls::kAccepted) {
      // Bytes pipelined after STLS were sent in clear before TLS: never
      // run them (RFC 2595 section 3.1).
      reader_.reset();
      return bytes.size();
    }
  }
  if (close_ != CloseMode::kOpen) return bytes.size();
  return used;
}

void Session::handle_line_event(LineReader::Event event, TimePoint now) {
  current_verb_ = Verb::kUnknown;
  if (sasl_ != Sasl::kNone && event != LineReader::Event::kFlood) {
    sasl_abort("malformed authentication response");
    return;
  }
  switch (event) {
    case LineReader::Event::kTooLong:
      counters_.line_too_long.add();
      bad_command("line too long");
      break;
    case LineReader::Event::kNul:
      counters_.nul_in_line.add();
      bad_command("NUL octet in command");
      break;
    case LineReader::Event::kFlood:
      counters_.input_flood.add();
      reply_err("line too long; closing connection");
      close_after_flush(now, EndReason::kFlood);
      break;
    case LineReader::Event::kLine:
    case LineReader::Event::kNeedMore:
      break;
  }
}

void Session::dispatch(std::string_view line, TimePoint now) {
  const CommandLine command = parse_command_line(line);
  current_verb_ = command.verb;
  command_started_ = now;
  ++stats_.commands;
  counters_.commands[static_cast<size_t>(command.verb)].add();
  if (command.verb == Verb::kUnknown) {
    bad_command("unknown command");
    return;
  }
  for (const CommandSpec& spec : kCommands) {
    if (spec.verb != command.verb) continue;
    if ((spec.states & bit(static_cast<int>(state_))) == 0) {
      bad_command("command not valid in this state");
      return;
    }
    (this->*spec.handler)(command.args, now);
    return;
  }
}

// ---- Replies and limits ----------------------------------------------------

void Session::reply(std::string_view line) {
  // ready_for_command() keeps kReplyLineBytesMax free before every command,
  // and completions arrive only while a command waits, so this fits.
  const bool fitted = out_.append(line);
  (void)fitted;
}

void Session::reply_ok(std::string_view text) {
  LineBuilder b;
  reply(text.empty() ? b.add("+OK").finish() : b.add("+OK ").add(text).finish());
}

void Session::reply_err(std::string_view text) { reply_err(RespCode::kNone, text); }

void Session::reply_err(RespCode code, std::string_view text) {
  LineBuilder b;
  reply(b.add("-ERR ").add(response_code(code)).add(text).finish());
}

void Session::command_failed(Verb verb, RespCode code, std::string_view text) {
  counters_.command_errors[static_cast<size_t>(verb)].add();
  reply_err(code, text);
}

void Session::bad_command(std::string_view text) {
  counters_.bad_commands.add();
  counters_.command_errors[static_cast<size_t>(current_verb_)].add();
  if (++bad_commands_ >= kBadCommandsMax) {
    counters_.bad_command_limit.add();
    reply_err("too many bad commands; closing connection");
    close_after_flush(last_now_, EndReason::kBadCommands);
    return;
  }
  reply_err(text);
}

void Session::close_after_flush(TimePoint now, EndReason reason) noexcept {
  if (close_ != CloseMode::kOpen) return;
  close_ = CloseMode::kAfterFlush;
  end_ = reason;
  linger_deadline_ = now + config_.close_linger;
}

void Session::close_now(EndReason reason) noexcept {
  if (end_ == EndReason::kOpen) end_ = reason;
  close_ = CloseMode::kNow;
}

void Session::touch(TimePoint now) noexcept {
  last_now_ = now;
  const auto timeout =
      state_ == State::kAuthorization ? config_.login_idle_timeout
                                      : std::max(config_.idle_timeout, kIdleTimeoutMin);
  idle_deadline_ = now + timeout;
}

void Session::issue(const Request& request, Pending pending) noexcept {
  request_ = request;
  request_ready_ = true;
  pending_ = pending;
}

void Session::expect(Pending pending) noexcept {
  // A reply that does not match the outstanding request is a caller bug.
  if (pending_ == pending) pending_ = Pending::kNone;
}

const Request* Session::take_request() noexcept {
  if (!request_ready_) return nullptr;
  request_ready_ = false;
  return &request_;
}

// ---- Output, timers, peer events ---------------------------------------------

void Session::handle_output_sent(size_t bytes, TimePoint now) {
  out_.consume(bytes);
  // A client that keeps reading a long reply is not idle.
  if (bytes > 0 && close_ == CloseMode::kOpen) touch(now);
  continue_stream(now);
  end_after_reply(now);  // a shutdown's -ERR that waited for room
}

TimePoint Session::deadline() const noexcept {
  if (close_ == CloseMode::kAfterFlush) return linger_deadline_;
  if (close_ == CloseMode::kNow) return kNever;
  if (pending_ == Pending::kAuthDelay) return std::min(delay_until_, idle_deadline_);
  // While the store works, its own timeout bounds the wait.
  if (pending_ != Pending::kNone) return kNever;
  return idle_deadline_;
}

void Session::handle_timer(TimePoint now) {
  if (close_ == CloseMode::kAfterFlush) {
    if (now >= linger_deadline_) close_now(EndReason::kStalled);  // the peer will not take the rest
    return;
  }
  if (close_ != CloseMode::kOpen) return;
  if (pending_ == Pending::kAuthDelay && now >= delay_until_) {
    pending_ = Pending::kNone;
    finish_auth_failure(now);
    return;
  }
  if (pending_ != Pending::kNone && pending_ != Pending::kAuthDelay) return;
  if (now < idle_deadline_) return;
  if (state_ == State::kAuthorization) {
    counters_.autologout_login.add();
  } else {
    counters_.autologout.add();
  }
  if (!out_.empty()) {
    // Output has not moved for the whole idle period: the peer stopped
    // reading. Nothing more can reach it.
    close_now(EndReason::kStalled);
    return;
  }
  reply_err("autologout; idle for too long");
  close_after_flush(now, EndReason::kAutologout);
}

void Session::handle_peer_closed(TimePoint now) noexcept {
  (void)now;
  // No UPDATE: a session that ends without QUIT deletes nothing.
  close_now(EndReason::kPeerClosed);
}

void Session::handle_shutdown(TimePoint now) {
  if (close_ != CloseMode::kOpen) return;
  counters_.shutdown_closes.add();
  end_by_server(now, "server shutting down", EndReason::kShutdown);
}

void Session::handle_kick(TimePoint now) {
  if (close_ != CloseMode::kOpen) return;
  counters_.kicked.add();
  end_by_server(now, "session ended by an administrator", EndReason::kKicked);
}

void Session::handle_lock_lost(TimePoint now) {
  if (close_ != CloseMode::kOpen) return;
  end_by_server(now, "maildrop lock lost; nothing was deleted, log in again",
                EndReason::kLockLost);
}

void Session::end_by_server(TimePoint now, std::string_view text, EndReason reason) {
  end_sasl();
  shutting_down_ = true;
  end_text_ = text;
  end_reason_pending_ = reason;
  if (pending_ == Pending::kCommit) return;  // let UPDATE finish and answer
  // Mid multi-line reply (a long RETR, say): finish it, then end. A -ERR
  // now would be read as message text, and a cut would waste the download.
  // The shard's hard deadline still bounds a client that stops reading.
  if (stream_ != Stream::kNone) return;
  if (pending_ != Pending::kNone && pending_ != Pending::kAuthDelay) {
    return;  // the store reply will arrive and see shutting_down_
  }
  pending_ = Pending::kNone;
  wipe_password();
  reply_err(RespCode::kSysTemp, text);
  close_after_flush(now, reason);
}

void Session::end_after_reply(TimePoint now) {
  if (!shutting_down_ || close_ != CloseMode::kOpen || stream_ != Stream::kNone ||
      (pending_ != Pending::kNone && pending_ != Pending::kAuthDelay)) {
    return;
  }
  // The reply that just ended may have filled the output block: then the
  // line goes after the next send (handle_output_sent calls again).
  LineBuilder b;
  if (!out_.append(b.add("-ERR ").add(response_code(RespCode::kSysTemp)).add(end_text_).finish())) return;
  pending_ = Pending::kNone;
  close_after_flush(now, end_reason_pending_);
}

}  // namespace popgate::pop3
