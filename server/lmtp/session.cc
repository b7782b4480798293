// Session core: the command table, input loop, replies, limits, timers and
// peer events. The command handlers, DATA and the per-recipient replies live
// in session_transaction.cc.
#include "server/lmtp/session.h"

#include "server/pop3/replies.h"  // LineBuilder

namespace popgate::lmtp {
namespace {

constexpr TimePoint kNever = TimePoint::max();

// RFC 5321 4.1.1.5 and RFC 3463 5.5.x: what a 500/501/503 says.
constexpr std::string_view kUnrecognized = "500 5.5.1 command unrecognized\r\n";
constexpr std::string_view kLineTooLong = "500 5.5.2 line too long\r\n";
constexpr std::string_view kNulInLine = "500 5.5.2 NUL octet in command\r\n";

}  // namespace

std::string_view end_reason_name(EndReason reason) noexcept {
  switch (reason) {
    case EndReason::kOpen: return "open";
    case EndReason::kQuit: return "quit";
    case EndReason::kPeerClosed: return "peer_closed";
    case EndReason::kIdleTimeout: return "idle_timeout";
    case EndReason::kBadCommands: return "bad_commands";
    case EndReason::kFlood: return "flood";
    case EndReason::kDataOverrun: return "data_overrun";
    case EndReason::kShutdown: return "shutdown";
    case EndReason::kStalled: return "stalled";
    case EndReason::kRefused: return "refused";
  }
  return "?";
}

// One table, one signature. Which commands are valid when is each handler's
// business: SMTP answers each wrong order with its own 503 text.
const std::array<Session::CommandSpec, kVerbCount - 1> Session::kCommands{{
    {Verb::kLhlo, &Session::cmd_lhlo},
    {Verb::kHelo, &Session::cmd_helo},
    {Verb::kEhlo, &Session::cmd_helo},
    {Verb::kMail, &Session::cmd_mail},
    {Verb::kRcpt, &Session::cmd_rcpt},
    {Verb::kData, &Session::cmd_data},
    {Verb::kRset, &Session::cmd_rset},
    {Verb::kNoop, &Session::cmd_noop},
    {Verb::kQuit, &Session::cmd_quit},
    {Verb::kVrfy, &Session::cmd_vrfy},
    {Verb::kHelp, &Session::cmd_help},
}};

Session::Session(const SessionConfig& config, pop3::BufferPool& pool, Counters& counters)
    : config_(config), counters_(counters), out_(pool) {
  counters_.sessions_opened.add();
}

Session::~Session() {
  wipe(body_);
  counters_.sessions_closed.add();
}

void Session::start(TimePoint now) {
  started_ = true;
  touch(now);
  reply_host_line("220 ", "LMTP popgate ready");
}

void Session::refuse(std::string_view text, TimePoint now) {
  started_ = true;
  touch(now);
  reply_host_line("421 4.3.2 ", text);
  close_after_flush(now, EndReason::kRefused);
}

// ---- Input ---------------------------------------------------------------

bool Session::ready_for_command() const noexcept {
  if (!started_ || close_ != CloseMode::kOpen || pending_ != Pending::kNone || request_ready_) {
    return false;
  }
  // DATA writes nothing until its end, and its end waits for room itself.
  if (state_ == State::kData) return true;
  return state_ != State::kReplying && out_.space() >= kCommandReplyBytesMax;
}

bool Session::wants_input() const noexcept { return ready_for_command(); }

size_t Session::handle_input(std::string_view bytes, TimePoint now) {
  // Once closing, nothing more is read (QUIT, limits, EOF).
  if (close_ != CloseMode::kOpen) return bytes.size();
  size_t used = 0;
  while (used < bytes.size() && ready_for_command()) {
    if (state_ == State::kData) {
      used += read_data(bytes.substr(used), now);
      continue;
    }
    const CommandReader::Step step = reader_.next(bytes.substr(used));
    used += step.consumed;
    if (step.event == CommandReader::Event::kLine) {
      touch(now);
      dispatch(reader_.line(), now);
    } else if (step.event != CommandReader::Event::kNeedMore) {
      touch(now);
      handle_line_event(step.event, now);
    }
  }
  if (close_ != CloseMode::kOpen) return bytes.size();
  return used;
}

void Session::handle_line_event(CommandReader::Event event, TimePoint now) {
  current_verb_ = Verb::kUnknown;
  switch (event) {
    case CommandReader::Event::kTooLong:
      counters_.line_too_long.add();
      bad_command(kLineTooLong);
      break;
    case CommandReader::Event::kNul:
      counters_.nul_in_line.add();
      bad_command(kNulInLine);
      break;
    case CommandReader::Event::kFlood:
      counters_.input_flood.add();
      reply_host_line("421 4.5.2 ", "line too long; closing connection");
      close_after_flush(now, EndReason::kFlood);
      break;
    case CommandReader::Event::kLine:
    case CommandReader::Event::kNeedMore:
      break;
  }
}

void Session::dispatch(std::string_view line, TimePoint now) {
  const CommandLine command = parse_command_line(line);
  current_verb_ = command.verb;
  ++stats_.commands;
  counters_.commands[static_cast<size_t>(command.verb)].add();
  for (const CommandSpec& spec : kCommands) {
    if (spec.verb == command.verb) {
      (this->*spec.handler)(command.args, now);
      return;
    }
  }
  bad_command(kUnrecognized);
}

// ---- Replies and limits ----------------------------------------------------

std::string_view Session::host() const noexcept {
  std::string_view name(config_.hostname);
  if (name.size() > kHostnameBytesMax) name = name.substr(0, kHostnameBytesMax);
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x21 || c > 0x7e) return name.substr(0, i);
  }
  return name;
}

void Session::reply(std::string_view line) {
  // ready_for_command() keeps kCommandReplyBytesMax free before every
  // command, and the per-recipient replies wait for as much, so this fits.
  const bool fitted = out_.append(line);
  (void)fitted;
}

void Session::reply_host_line(std::string_view code, std::string_view text) {
  pop3::LineBuilder b;
  reply(b.add(code).add(host()).add(" ").add(text).finish());
}

void Session::command_failed(std::string_view line) {
  counters_.command_errors[static_cast<size_t>(current_verb_)].add();
  reply(line);
}

void Session::bad_command(std::string_view line) {
  counters_.bad_commands.add();
  counters_.command_errors[static_cast<size_t>(current_verb_)].add();
  if (++bad_commands_ >= kBadCommandsMax) {
    counters_.bad_command_limit.add();
    reply_host_line("421 4.7.0 ", "too many bad commands; closing connection");
    close_after_flush(last_now_, EndReason::kBadCommands);
    return;
  }
  reply(line);
}

void Session::close_after_flush(TimePoint now, EndReason reason) noexcept {
  if (close_ != CloseMode::kOpen) return;
  close_ = CloseMode::kAfterFlush;
  end_ = reason;
  linger_deadline_ = now + config_.close_linger;
  if (pending_ == Pending::kNone) wipe_and_release(body_);
}

void Session::close_now(EndReason reason) noexcept {
  if (end_ == EndReason::kOpen) end_ = reason;
  close_ = CloseMode::kNow;
  // A request not taken yet is withdrawn; one taken must still be answered
  // and its body stays until then.
  if (request_ready_) {
    request_ready_ = false;
    pending_ = Pending::kNone;
  }
  if (pending_ == Pending::kNone) wipe_and_release(body_);
}

void Session::touch(TimePoint now) noexcept {
  last_now_ = now;
  idle_deadline_ =
      now + (state_ == State::kData ? config_.data_idle_timeout : config_.idle_timeout);
}

void Session::issue(const Request& request, Pending pending) noexcept {
  request_ = request;
  request_ready_ = true;
  pending_ = pending;
}

bool Session::expect(Pending pending) noexcept {
  // A reply that does not match the outstanding request is a caller bug;
  // it is ignored rather than allowed to corrupt the conversation.
  if (pending_ != pending || request_ready_) return false;
  pending_ = Pending::kNone;
  return true;
}

const Request* Session::take_request() noexcept {
  if (!request_ready_) return nullptr;
  request_ready_ = false;
  return &request_;
}

// ---- Output, timers, peer events -------------------------------------------

void Session::handle_output_sent(size_t bytes, TimePoint now) {
  out_.consume(bytes);
  if (close_ != CloseMode::kOpen) return;
  // A client that reads its replies is not idle.
  if (bytes > 0) touch(now);
  if (state_ == State::kReplying) continue_replies(now);
}

TimePoint Session::deadline() const noexcept {
  if (!started_) return kNever;
  if (close_ == CloseMode::kAfterFlush) return linger_deadline_;
  if (close_ == CloseMode::kNow) return kNever;
  // While the store works, its own timeout bounds the wait.
  if (pending_ != Pending::kNone || request_ready_) return kNever;
  return idle_deadline_;
}

void Session::handle_timer(TimePoint now) {
  if (close_ == CloseMode::kAfterFlush) {
    if (now >= linger_deadline_) {
      counters_.stalled.add();
      close_now(EndReason::kStalled);  // the peer will not take the rest
    }
    return;
  }
  if (!started_ || close_ != CloseMode::kOpen) return;
  if (pending_ != Pending::kNone || request_ready_ || now < idle_deadline_) return;
  if (state_ == State::kData) {
    counters_.data_idle_timeout.add();
  } else {
    counters_.idle_timeout.add();
  }
  if (!out_.empty()) {
    // Output has not moved for the whole idle period: the peer stopped
    // reading. Nothing more can reach it.
    counters_.stalled.add();
    close_now(EndReason::kStalled);
    return;
  }
  reply_host_line("421 4.4.2 ", "idle for too long; closing connection");
  close_after_flush(now, EndReason::kIdleTimeout);
}

void Session::handle_peer_closed(TimePoint now) noexcept {
  last_now_ = now;
  close_now(EndReason::kPeerClosed);
}

void Session::handle_shutdown(TimePoint now) {
  if (!started_ || close_ != CloseMode::kOpen) return;
  counters_.shutdown_closes.add();
  shutting_down_ = true;
  last_now_ = now;
  // A lookup or delivery under way is answered first (a delivery may have
  // committed: its recipient must hear so); its handler then ends the
  // session, or answers the remaining recipients 451.
  if (pending_ != Pending::kNone || request_ready_) return;
  if (state_ == State::kReplying) {
    continue_replies(now);
    return;
  }
  end_by_server(now);
}

void Session::end_by_server(TimePoint now) {
  reply_host_line("421 4.3.2 ", "server shutting down");
  close_after_flush(now, EndReason::kShutdown);
}

}  // namespace popgate::lmtp
