// The LMTP commands, the DATA phase and the replies after the final dot:
// one per accepted recipient, in RCPT order (RFC 2033 4.2), each written as
// its delivery completes.
#include <algorithm>

#include "server/lmtp/session.h"
#include "server/pop3/replies.h"  // LineBuilder

namespace popgate::lmtp {
namespace {

constexpr std::string_view kOk = "250 2.0.0 OK\r\n";
constexpr std::string_view kLhloFirst = "503 5.5.1 send LHLO first\r\n";
constexpr std::string_view kTooBig = "552 5.3.4 message size exceeds fixed maximum message size\r\n";
constexpr std::string_view kReturnPathOpen = "Return-Path: <";
constexpr std::string_view kReturnPathClose = ">\r\n";
// RFC 1939's bound on a unique-id; longer ones are cut in the reply.
constexpr size_t kUidlShownBytesMax = 70;

// The UIDL as shown: printable ASCII only, cut at the first other octet.
std::string_view printable_prefix(std::string_view text, size_t max) noexcept {
  text = text.substr(0, std::min(text.size(), max));
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x21 || c > 0x7e) return text.substr(0, i);
  }
  return text;
}

// Every LHLO reply fits in one reply budget (see kCommandReplyBytesMax).
static_assert(4 + kHostnameBytesMax + 2 + 16 + 25 + 14 + 9 + 20 + 2 + 14 <= kReplyLineBytesMax);

}  // namespace

uint64_t Session::message_bytes_max() const noexcept {
  return std::min(config_.message_bytes_max, kMessageBytesCap);
}

void Session::reset_transaction() noexcept {
  recipients_.clear();  // capacity kept: the next transaction reuses it
  replied_ = 0;
  sender_len_ = 0;
  size_hint_ = 0;
  size_declared_ = false;
  smtputf8_ = false;
  verdict_ = Verdict::kDeliver;
  wipe_and_release(body_);
}

// ---- Commands --------------------------------------------------------------

void Session::cmd_lhlo(std::string_view args, TimePoint) {
  if (args.empty()) {
    bad_command("501 5.5.4 syntax: LHLO hostname\r\n");
    return;
  }
  // Like EHLO (RFC 5321 4.1.4): a new LHLO ends any transaction.
  reset_transaction();
  state_ = State::kReady;
  pop3::LineBuilder first;
  reply(first.add("250-").add(host()).finish());
  reply("250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n");
  pop3::LineBuilder size;
  reply(size.add("250-SIZE ").add(message_bytes_max()).finish());
  reply("250 SMTPUTF8\r\n");
}

void Session::cmd_helo(std::string_view, TimePoint) {
  // RFC 2033 4.1: never a positive reply, so a misconfigured SMTP client
  // notices.
  bad_command("500 5.5.1 use LHLO\r\n");
}

void Session::cmd_mail(std::string_view args, TimePoint) {
  if (state_ == State::kGreeted) {
    bad_command(kLhloFirst);
    return;
  }
  if (state_ == State::kMail) {
    bad_command("503 5.5.1 nested MAIL command\r\n");
    return;
  }
  if (!strip_keyword(args, "FROM:")) {
    bad_command("501 5.5.4 syntax: MAIL FROM:<address>\r\n");
    return;
  }
  const Path path = parse_path(args);
  if (path.error == PathError::kTooLong) {
    bad_command("501 5.1.7 sender address too long\r\n");
    return;
  }
  if (path.error != PathError::kOk || (!path.address.empty() && !path.has_domain)) {
    bad_command("501 5.1.7 bad sender address syntax\r\n");
    return;
  }
  const MailParams params = parse_mail_params(path.rest);
  switch (params.error) {
    case ParamError::kOk:
      break;
    case ParamError::kSyntax:
      bad_command("501 5.5.4 syntax error in parameters\r\n");
      return;
    case ParamError::kBadValue:
      bad_command("501 5.5.4 bad parameter value\r\n");
      return;
    case ParamError::kUnknown:
      command_failed("555 5.5.4 unsupported parameter\r\n");
      return;
  }
  if (path.non_ascii && !params.smtputf8) {
    counters_.smtputf8_required.add();
    command_failed("553 5.6.7 non-ASCII address requires SMTPUTF8\r\n");
    return;
  }
  if (params.has_size && params.size > message_bytes_max()) {
    // RFC 1870 6.2: refuse at MAIL what would be refused after DATA.
    counters_.size_declared_too_big.add();
    command_failed(kTooBig);
    return;
  }
  std::copy(path.address.begin(), path.address.end(), sender_.begin());
  sender_len_ = path.address.size();
  smtputf8_ = params.smtputf8;
  size_declared_ = params.has_size;
  size_hint_ = params.size;
  state_ = State::kMail;
  counters_.transactions.add();
  reply("250 2.1.0 OK\r\n");
}

void Session::cmd_rcpt(std::string_view args, TimePoint) {
  if (state_ == State::kGreeted) {
    bad_command(kLhloFirst);
    return;
  }
  if (state_ != State::kMail) {
    bad_command("503 5.5.1 need MAIL before RCPT\r\n");
    return;
  }
  if (!strip_keyword(args, "TO:")) {
    bad_command("501 5.5.4 syntax: RCPT TO:<address>\r\n");
    return;
  }
  const Path path = parse_path(args);
  if (path.error == PathError::kTooLong) {
    bad_command("501 5.1.3 recipient address too long\r\n");
    return;
  }
  if (path.error != PathError::kOk || path.address.empty() ||
      (!path.has_domain && !is_postmaster(path.address))) {
    bad_command("501 5.1.3 bad recipient address syntax\r\n");
    return;
  }
  if (!path.rest.empty()) {
    if (path.rest.front() != ' ') {
      bad_command("501 5.5.4 syntax error in parameters\r\n");
      return;
    }
    if (path.rest.find_first_not_of(' ') != std::string_view::npos) {
      // No RCPT parameter is offered (no DSN).
      command_failed("555 5.5.4 unsupported parameter\r\n");
      return;
    }
  }
  if (path.non_ascii && !smtputf8_) {
    counters_.smtputf8_required.add();
    command_failed("553 5.6.7 non-ASCII address requires SMTPUTF8\r\n");
    return;
  }
  if (recipients_.size() >= kRecipientsMax) {
    counters_.recipient_limit.add();
    command_failed("452 4.5.3 too many recipients\r\n");
    return;
  }
  std::copy(path.address.begin(), path.address.end(), rcpt_.begin());
  rcpt_len_ = path.address.size();
  Request r;
  r.kind = RequestKind::kLookupRecipient;
  r.address = std::string_view(rcpt_.data(), rcpt_len_);
  issue(r, Pending::kLookupRecipient);
}

void Session::cmd_data(std::string_view args, TimePoint now) {
  if (!args.empty()) {
    bad_command("501 5.5.4 syntax: DATA\r\n");
    return;
  }
  if (state_ == State::kGreeted) {
    bad_command(kLhloFirst);
    return;
  }
  if (state_ != State::kMail) {
    bad_command("503 5.5.1 need MAIL command\r\n");
    return;
  }
  if (recipients_.empty()) {
    // RFC 2033 4.2: DATA without a successful RCPT MUST fail with 503.
    bad_command("503 5.5.1 no valid recipients\r\n");
    return;
  }
  reply("354 start mail input; end with <CRLF>.<CRLF>\r\n");
  const uint64_t max = message_bytes_max();
  const std::string_view sender(sender_.data(), sender_len_);
  const size_t prefix =
      config_.return_path ? kReturnPathOpen.size() + sender.size() + kReturnPathClose.size() : 0;
  const uint64_t hint = size_declared_ ? size_hint_ : kBodyReserveDefaultBytes;
  wipe_and_release(body_);
  body_.reserve(prefix + static_cast<size_t>(std::min(hint, max)));
  if (config_.return_path) {
    body_.append(kReturnPathOpen).append(sender).append(kReturnPathClose);
  }
  data_.start(&body_, max, max + kDataOverrunBytesMax);
  state_ = State::kData;
  touch(now);
}

void Session::cmd_rset(std::string_view args, TimePoint) {
  if (!args.empty()) {
    bad_command("501 5.5.4 syntax: RSET\r\n");
    return;
  }
  reset_transaction();
  if (state_ != State::kGreeted) state_ = State::kReady;
  reply(kOk);
}

void Session::cmd_noop(std::string_view, TimePoint) { reply(kOk); }

void Session::cmd_quit(std::string_view args, TimePoint now) {
  if (!args.empty()) {
    bad_command("501 5.5.4 syntax: QUIT\r\n");
    return;
  }
  reply_host_line("221 2.0.0 ", "closing connection");
  close_after_flush(now, EndReason::kQuit);
}

void Session::cmd_vrfy(std::string_view args, TimePoint) {
  if (args.empty()) {
    bad_command("501 5.5.4 syntax: VRFY address\r\n");
    return;
  }
  // RFC 5321 3.5.3: 252 when we will not say.
  reply("252 2.5.0 cannot VRFY user; try RCPT\r\n");
}

void Session::cmd_help(std::string_view, TimePoint) {
  reply("214 2.0.0 commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
}

// ---- Recipient lookups -----------------------------------------------------

void Session::handle_recipient_found(int64_t tenant_id, int64_t user_id, TimePoint now) {
  if (!expect(Pending::kLookupRecipient) || close_ != CloseMode::kOpen) return;
  touch(now);
  recipients_.push_back(Recipient{tenant_id, user_id});
  ++stats_.recipients;
  counters_.recipients_accepted.add();
  reply("250 2.1.5 OK\r\n");
  if (shutting_down_) end_by_server(now);
}

void Session::handle_recipient_not_found(TimePoint now) {
  if (!expect(Pending::kLookupRecipient) || close_ != CloseMode::kOpen) return;
  touch(now);
  counters_.recipients_unknown.add();
  counters_.command_errors[static_cast<size_t>(Verb::kRcpt)].add();
  pop3::LineBuilder b;
  reply(b.add("550 5.1.1 <").add(std::string_view(rcpt_.data(), rcpt_len_)).add(">: no such user")
            .finish());
  if (shutting_down_) end_by_server(now);
}

void Session::handle_recipient_failed(TimePoint now) {
  if (!expect(Pending::kLookupRecipient) || close_ != CloseMode::kOpen) return;
  touch(now);
  counters_.recipients_temporary.add();
  counters_.command_errors[static_cast<size_t>(Verb::kRcpt)].add();
  reply("451 4.3.0 temporary failure\r\n");
  if (shutting_down_) end_by_server(now);
}

// ---- DATA --------------------------------------------------------------------

size_t Session::read_data(std::string_view bytes, TimePoint now) {
  touch(now);  // data flowing is not idle, whole lines or not
  const DataReader::Step step = data_.feed(bytes);
  switch (step.event) {
    case DataReader::Event::kNeedMore:
      break;
    case DataReader::Event::kEnd:
      finish_data(now);
      break;
    case DataReader::Event::kOverrun:
      data_overrun(now);
      break;
  }
  return step.consumed;
}

void Session::finish_data(TimePoint now) {
  counters_.data_line_over_rfc.add(data_.lines_over_rfc());
  // A line too long is found however the input was split; "too big" may go
  // unnoticed once a long line stopped the body, so the line verdict wins.
  if (data_.line_too_long()) {
    counters_.data_line_too_long.add();
    verdict_ = Verdict::kLineTooLong;
  } else if (data_.too_big()) {
    counters_.size_exceeded.add();
    verdict_ = Verdict::kTooBig;
  } else {
    verdict_ = Verdict::kDeliver;
    ++stats_.messages;
    counters_.messages_received.add();
    counters_.message_bytes.add(data_.body_bytes());
  }
  if (verdict_ != Verdict::kDeliver) wipe_and_release(body_);
  state_ = State::kReplying;
  replied_ = 0;
  touch(now);
  continue_replies(now);
}

void Session::data_overrun(TimePoint now) {
  // The client goes on long past a message it was going to be refused: tell
  // every recipient why, then hang up rather than read on.
  counters_.data_overrun.add();
  counters_.size_exceeded.add();
  wipe_and_release(body_);
  verdict_ = Verdict::kTooBig;
  end_after_replies_ = EndReason::kDataOverrun;
  state_ = State::kReplying;
  replied_ = 0;
  touch(now);
  continue_replies(now);
}

// ---- Replies after the final dot --------------------------------------------

void Session::continue_replies(TimePoint now) {
  while (state_ == State::kReplying && close_ == CloseMode::kOpen &&
         pending_ == Pending::kNone && !request_ready_) {
    if (replied_ == recipients_.size()) {
      finish_transaction(now);
      return;
    }
    // Room for this reply and a closing 421; else wait for the client to
    // read (handle_output_sent comes back here).
    if (out_.space() < kCommandReplyBytesMax) return;
    if (shutting_down_ && verdict_ == Verdict::kDeliver) verdict_ = Verdict::kShuttingDown;
    if (verdict_ == Verdict::kDeliver) {
      const Recipient& to = recipients_[replied_];
      Request r;
      r.kind = RequestKind::kDeliver;
      r.tenant_id = to.tenant_id;
      r.user_id = to.user_id;
      r.sender = std::string_view(sender_.data(), sender_len_);
      r.body = body_;
      r.recipient_index = static_cast<uint32_t>(replied_);
      issue(r, Pending::kDeliver);
      return;
    }
    reply_refused_recipient();
    ++replied_;
  }
}

void Session::reply_refused_recipient() {
  ++stats_.failed;
  switch (verdict_) {
    case Verdict::kTooBig:
      command_failed(kTooBig);
      break;
    case Verdict::kLineTooLong:
      static_assert(kDataLineBytesMax == 65536, "the reply text names the limit");
      command_failed("554 5.6.0 message has a line over 65536 octets\r\n");
      break;
    case Verdict::kShuttingDown:
      command_failed("451 4.3.2 server shutting down\r\n");
      break;
    case Verdict::kDeliver:
      break;
  }
}

void Session::finish_transaction(TimePoint now) {
  reset_transaction();  // wipes and releases the body
  state_ = State::kReady;
  touch(now);
  if (shutting_down_) {
    end_by_server(now);
  } else if (end_after_replies_ != EndReason::kOpen) {
    close_after_flush(now, end_after_replies_);
  }
}

void Session::handle_delivered(std::string_view uidl, TimePoint now) {
  if (!expect(Pending::kDeliver)) return;
  ++replied_;
  ++stats_.delivered;
  stats_.delivered_bytes += body_.size();
  counters_.delivered.add();
  counters_.delivered_bytes.add(body_.size());
  if (close_ != CloseMode::kOpen) {
    wipe_and_release(body_);  // no one left to deliver for
    return;
  }
  touch(now);
  const std::string_view shown = printable_prefix(uidl, kUidlShownBytesMax);
  pop3::LineBuilder b;
  if (shown.empty()) {
    reply("250 2.0.0 delivered\r\n");
  } else {
    reply(b.add("250 2.0.0 ").add(shown).add(" delivered").finish());
  }
  continue_replies(now);
}

void Session::handle_delivery_failed(DeliveryFailure failure, TimePoint now) {
  if (!expect(Pending::kDeliver)) return;
  ++replied_;
  ++stats_.failed;
  switch (failure) {
    case DeliveryFailure::kOverQuota:
      counters_.over_quota.add();
      break;
    case DeliveryFailure::kGone:
      counters_.recipient_gone.add();
      break;
    case DeliveryFailure::kTemporary:
      counters_.delivery_temporary.add();
      break;
  }
  if (close_ != CloseMode::kOpen) {
    wipe_and_release(body_);
    return;
  }
  touch(now);
  reply_delivery_failure(failure);
  continue_replies(now);
}

void Session::reply_delivery_failure(DeliveryFailure failure) {
  switch (failure) {
    case DeliveryFailure::kOverQuota:
      command_failed(config_.over_quota_is_temporary ? "452 4.2.2 mailbox full\r\n"
                                                     : "552 5.2.2 mailbox full\r\n");
      return;
    case DeliveryFailure::kGone:
      command_failed("550 5.1.1 recipient gone\r\n");
      return;
    case DeliveryFailure::kTemporary:
      command_failed("451 4.3.0 temporary failure\r\n");
      return;
  }
}

}  // namespace popgate::lmtp
