// Session: one LMTP conversation (RFC 2033), sans I/O, shaped like
// pop3::Session so the shard drives both the same way. LHLO with PIPELINING,
// ENHANCEDSTATUSCODES (RFC 2034/3463), 8BITMIME, SIZE and SMTPUTF8; MAIL,
// RCPT, DATA, RSET, NOOP, QUIT, VRFY and HELP over the RFC 5321 grammar.
//
// Bytes, store replies and `now` go in; reply bytes, at most one request at a
// time, a deadline and "close" come out. It never reads a clock, a socket or
// a database: recipients are looked up and messages stored by the shard,
// which answers each request with one handle_* call.
//
// Flow control: the session takes input only while it can act on it (no
// request outstanding, not answering a message's recipients, room in the
// output for a command's reply). handle_input() returns how much it used;
// the caller keeps the rest and offers it again later. After the final dot
// each recipient gets its own reply, in RCPT order (RFC 2033 4.2), written
// as its delivery completes, one delivery at a time.
//
// Memory: replies go to one output block borrowed from the shard's pool
// while there is output. A message body lives in a string reserved to the
// SIZE the client declared (or kBodyReserveDefaultBytes), never past the
// size limit; it is wiped and released once every recipient is answered.
//
// Must not know: sockets, rings, TLS, SQL, threads.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/lmtp/command.h"
#include "server/lmtp/command_reader.h"
#include "server/lmtp/counters.h"
#include "server/lmtp/data_reader.h"
#include "server/lmtp/limits.h"
#include "server/pop3/output_buffer.h"

namespace popgate::lmtp {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct SessionConfig {
  // In the greeting, LHLO and 221/421 replies: printable ASCII; the name is
  // cut at the first octet that is not (and at kHostnameBytesMax). Must
  // outlive the sessions (they keep a view).
  std::string hostname = "localhost";
  // Idle between commands (RFC 5321 4.5.3.2.7: at least 5 minutes).
  std::chrono::milliseconds idle_timeout{300'000};
  // Idle while reading DATA (RFC 5321 4.5.3.2.5 gives the client 3 minutes
  // per block; the server waits longer).
  std::chrono::milliseconds data_idle_timeout{300'000};
  // How long a closing session may take to flush its last reply.
  std::chrono::milliseconds close_linger{5'000};
  // The SIZE limit: octets of a message as stored, CRLF form, without the
  // Return-Path line. Clamped to kMessageBytesCap.
  uint64_t message_bytes_max = 64 * 1024 * 1024;
  // Prepend "Return-Path: <sender>" (RFC 5321 4.4: the final delivery adds
  // it; nothing upstream of an LMTP server does).
  bool return_path = true;
  // A full mailbox is 452 4.2.2 (the MTA retries) instead of 552 5.2.2 (it
  // bounces).
  bool over_quota_is_temporary = false;
};

enum class RequestKind : uint8_t {
  kNone,
  kLookupRecipient,  // address -> handle_recipient_found / _not_found / _failed
  kDeliver,          // tenant_id, user_id, body -> handle_delivered / _delivery_failed
};

// Views point into the session and stay valid until the matching handle_*
// call. Exactly one reply is expected for each request, even after the
// session closed: the session must be kept until then.
struct Request {
  RequestKind kind = RequestKind::kNone;
  // kLookupRecipient: the RCPT address as sent, without brackets or source
  // route ("user@domain", or "postmaster"); may be UTF-8 (SMTPUTF8).
  std::string_view address;
  // kDeliver: whose maildrop; the sender ("" for the null reverse-path),
  // the message as it is to be stored (CRLF, Return-Path line first), and
  // which accepted recipient this is (0-based, RCPT order).
  int64_t tenant_id = 0;
  int64_t user_id = 0;
  std::string_view sender;
  std::string_view body;
  uint32_t recipient_index = 0;
};

// Why a delivery failed, as the store reports it.
enum class DeliveryFailure : uint8_t {
  kOverQuota,  // 552 5.2.2 (or 452 4.2.2, over_quota_is_temporary)
  kGone,       // the user was removed since RCPT: 550 5.1.1
  kTemporary,  // the store is unavailable: 451 4.3.0
};

// How a session ended, for the log line and counters.
enum class EndReason : uint8_t {
  kOpen,         // not ended
  kQuit,         // QUIT
  kPeerClosed,   // EOF or reset before QUIT
  kIdleTimeout,  // idle between commands or during DATA
  kBadCommands,  // kBadCommandsMax
  kFlood,        // kInputDiscardBytesMax without a line end
  kDataOverrun,  // kDataOverrunBytesMax past a refused message
  kShutdown,     // server stopping
  kStalled,      // peer stopped reading
  kRefused,      // refused before the greeting (a limit)
};
[[nodiscard]] std::string_view end_reason_name(EndReason reason) noexcept;

enum class CloseMode : uint8_t {
  kOpen,        // keep going
  kAfterFlush,  // send what is pending, then close
  kNow,         // close without flushing (stalled peer)
};

// What one session did, for its log line.
struct SessionStats {
  uint32_t commands = 0;
  uint32_t messages = 0;        // messages received within limits
  uint32_t recipients = 0;      // RCPTs accepted
  uint32_t delivered = 0;       // recipients answered 250 after the dot
  uint32_t failed = 0;          // recipients answered 4xx/5xx after the dot
  uint64_t delivered_bytes = 0;
};

class Session {
 public:
  // `pool` blocks must be at least kCommandReplyBytesMax octets.
  Session(const SessionConfig& config, pop3::BufferPool& pool, Counters& counters);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // ---- Start (exactly one of these first) ------------------------------
  // Writes the greeting "220 <hostname> LMTP popgate ready".
  void start(TimePoint now);
  // Answers "421 4.3.2 <hostname> <text>" and closes (a connection limit).
  void refuse(std::string_view text, TimePoint now);

  // ---- Inputs ----------------------------------------------------------
  // Network bytes. Returns how many were used; offer the rest again once
  // wants_input() is true.
  [[nodiscard]] size_t handle_input(std::string_view bytes, TimePoint now);
  // The peer sent EOF (or the connection failed). A request outstanding
  // must still be answered; no further request is issued.
  void handle_peer_closed(TimePoint now) noexcept;
  // Call when now >= deadline().
  void handle_timer(TimePoint now);
  // `bytes` from the front of pending_output() were sent.
  void handle_output_sent(size_t bytes, TimePoint now);
  // The server is stopping: 421 and close. A delivery under way is answered
  // first; recipients not yet delivered get 451 4.3.2.
  void handle_shutdown(TimePoint now);

  // Replies to kLookupRecipient.
  void handle_recipient_found(int64_t tenant_id, int64_t user_id, TimePoint now);
  void handle_recipient_not_found(TimePoint now);
  void handle_recipient_failed(TimePoint now);
  // Replies to kDeliver. `uidl` (printable ASCII) is read during the call.
  void handle_delivered(std::string_view uidl, TimePoint now);
  void handle_delivery_failed(DeliveryFailure failure, TimePoint now);

  // ---- Outputs ---------------------------------------------------------
  [[nodiscard]] std::string_view pending_output() const noexcept { return out_.pending(); }
  // Marks pending_output() as handed to the kernel: it will not move.
  void begin_send() noexcept { out_.begin_send(); }
  [[nodiscard]] bool sending() const noexcept { return out_.sending(); }
  // A new request, once; nullptr when there is none.
  [[nodiscard]] const Request* take_request() noexcept;
  [[nodiscard]] TimePoint deadline() const noexcept;
  [[nodiscard]] bool wants_input() const noexcept;
  [[nodiscard]] CloseMode close_mode() const noexcept { return close_; }
  [[nodiscard]] EndReason end_reason() const noexcept { return end_; }
  // A request was taken and not answered yet.
  [[nodiscard]] bool awaiting_reply() const noexcept { return pending_ != Pending::kNone; }
  [[nodiscard]] const SessionStats& stats() const noexcept { return stats_; }
  // For tests and logs.
  [[nodiscard]] uint32_t bad_commands() const noexcept { return bad_commands_; }
  [[nodiscard]] bool in_data() const noexcept { return state_ == State::kData; }
  // Octets the message body holds (capacity), for memory tests.
  [[nodiscard]] size_t body_capacity_for_test() const noexcept { return body_.capacity(); }

 private:
  enum class State : uint8_t {
    kGreeted,   // before LHLO
    kReady,     // after LHLO, no transaction
    kMail,      // MAIL accepted: RCPT, DATA
    kData,      // reading the message
    kReplying,  // answering the recipients, one delivery at a time
  };
  enum class Pending : uint8_t { kNone, kLookupRecipient, kDeliver };
  // What the recipients of a finished DATA get.
  enum class Verdict : uint8_t { kDeliver, kTooBig, kLineTooLong, kShuttingDown };

  struct Recipient {
    int64_t tenant_id = 0;
    int64_t user_id = 0;
  };

  using Handler = void (Session::*)(std::string_view args, TimePoint now);
  struct CommandSpec {
    Verb verb;
    Handler handler;
  };
  static const std::array<CommandSpec, kVerbCount - 1> kCommands;

  // session.cc: input loop, dispatch, replies, limits, timers
  [[nodiscard]] bool ready_for_command() const noexcept;
  void dispatch(std::string_view line, TimePoint now);
  void handle_line_event(CommandReader::Event event, TimePoint now);
  [[nodiscard]] std::string_view host() const noexcept;
  void reply(std::string_view line);
  void reply_host_line(std::string_view code, std::string_view text);
  void command_failed(std::string_view line);
  void bad_command(std::string_view line);
  void close_after_flush(TimePoint now, EndReason reason) noexcept;
  void close_now(EndReason reason) noexcept;
  void touch(TimePoint now) noexcept;
  void issue(const Request& request, Pending pending) noexcept;
  [[nodiscard]] bool expect(Pending pending) noexcept;
  void end_by_server(TimePoint now);

  // session_transaction.cc: the commands, DATA and the per-recipient replies
  void cmd_lhlo(std::string_view args, TimePoint now);
  void cmd_helo(std::string_view args, TimePoint now);
  void cmd_mail(std::string_view args, TimePoint now);
  void cmd_rcpt(std::string_view args, TimePoint now);
  void cmd_data(std::string_view args, TimePoint now);
  void cmd_rset(std::string_view args, TimePoint now);
  void cmd_noop(std::string_view args, TimePoint now);
  void cmd_quit(std::string_view args, TimePoint now);
  void cmd_vrfy(std::string_view args, TimePoint now);
  void cmd_help(std::string_view args, TimePoint now);
  [[nodiscard]] uint64_t message_bytes_max() const noexcept;
  size_t read_data(std::string_view bytes, TimePoint now);
  void finish_data(TimePoint now);
  void data_overrun(TimePoint now);
  void continue_replies(TimePoint now);
  void reply_refused_recipient();
  void reply_delivery_failure(DeliveryFailure failure);
  void finish_transaction(TimePoint now);
  void reset_transaction() noexcept;

  const SessionConfig& config_;
  Counters& counters_;
  pop3::OutputBuffer out_;
  CommandReader reader_;
  DataReader data_;

  State state_ = State::kGreeted;
  Pending pending_ = Pending::kNone;
  CloseMode close_ = CloseMode::kOpen;
  EndReason end_ = EndReason::kOpen;
  Verdict verdict_ = Verdict::kDeliver;
  Verb current_verb_ = Verb::kUnknown;  // of the line being handled
  bool started_ = false;
  bool request_ready_ = false;
  bool shutting_down_ = false;
  bool smtputf8_ = false;  // this transaction's MAIL carried SMTPUTF8
  uint32_t bad_commands_ = 0;

  TimePoint last_now_;  // of the last event, for closes started without a clock
  TimePoint idle_deadline_;
  TimePoint linger_deadline_;
  Request request_;

  std::array<char, kAddressBytesMax> sender_{};
  size_t sender_len_ = 0;
  std::array<char, kAddressBytesMax> rcpt_{};  // the address being looked up
  size_t rcpt_len_ = 0;
  uint64_t size_hint_ = 0;      // MAIL ... SIZE=
  bool size_declared_ = false;  // size_hint_ is set
  EndReason end_after_replies_ = EndReason::kOpen;  // close once they are out
  std::vector<Recipient> recipients_;  // accepted, RCPT order; capacity kept
  size_t replied_ = 0;                 // recipients answered after the dot
  std::string body_;                   // the message being received or delivered
  SessionStats stats_;
};

}  // namespace popgate::lmtp
