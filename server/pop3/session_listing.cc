// TRANSACTION: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, and the resumable
// multi-line replies behind them. Everything but RETR/TOP is answered from
// the snapshot, so it keeps working while the database is away.
#include <algorithm>
#include <charconv>
#include <cstring>

#include "server/pop3/session.h"

namespace popgate::pop3 {
namespace {

// Longest LIST line: 10-digit msn, space, 10-digit size, CRLF.
constexpr size_t kListLineBytesMax = 10 + 1 + 10 + 2;
// Longest UIDL line: msn, space, 70-octet UIDL, CRLF.
constexpr size_t kUidlLineBytesMax = 10 + 1 + kUidlBytesMax + 2;
constexpr std::string_view kTerminator = ".\r\n";

char* put_number(char* at, uint64_t n) noexcept {
  return std::to_chars(at, at + 20, n).ptr;
}

}  // namespace

// ---- Argument checks -------------------------------------------------------

// Validates a message number; on failure replies and returns false.
bool Session::parse_msn(std::string_view arg, size_t* index) {
  const ParsedNumber n = parse_number(arg);
  switch (n.error) {
    case NumberError::kMissing:
      bad_command("message number required");
      return false;
    case NumberError::kNotANumber:
      bad_command("message number must be a decimal number");
      return false;
    case NumberError::kNegative:
      bad_command("message number must be positive");
      return false;
    case NumberError::kTooLarge:
      bad_command("message number too large");
      return false;
    case NumberError::kOk:
      break;
  }
  if (n.value == 0 || n.value > snapshot_.count()) {
    command_failed(current_verb_, RespCode::kNone, "no such message");
    return false;
  }
  const size_t i = static_cast<size_t>(n.value - 1);
  if (is_deleted(i)) {
    command_failed(current_verb_, RespCode::kNone, "message already deleted");
    return false;
  }
  *index = i;
  return true;
}

// For LIST and UIDL: no argument, or exactly one valid message number.
bool Session::single_msn_arg(std::string_view args, bool* present, size_t* index) {
  std::string_view parts[1];
  bool extra = false;
  const size_t n = split_args(args, parts, 1, &extra);
  if (extra) {
    bad_command("too many arguments");
    return false;
  }
  *present = n == 1;
  return n == 0 || parse_msn(parts[0], index);
}

// ---- Answers from the snapshot ---------------------------------------------

void Session::reply_maildrop_summary() {
  LineBuilder b;
  reply(b.add("+OK maildrop has ")
            .add(snapshot_.count() - deleted_count_)
            .add(" messages (")
            .add(total_bytes_ - deleted_bytes_)
            .add(" octets)")
            .finish());
}

void Session::cmd_stat(std::string_view args, TimePoint) {
  if (!args.empty()) {
    bad_command("STAT takes no arguments");
    return;
  }
  // Exactly "+OK count size": clients parse this line.
  LineBuilder b;
  reply(b.add("+OK ")
            .add(snapshot_.count() - deleted_count_)
            .add(" ")
            .add(total_bytes_ - deleted_bytes_)
            .finish());
}

void Session::cmd_list(std::string_view args, TimePoint now) {
  bool present = false;
  size_t i = 0;
  if (!single_msn_arg(args, &present, &i)) return;
  LineBuilder b;
  if (present) {
    reply(b.add("+OK ").add(i + 1).add(" ").add(snapshot_.sizes[i]).finish());
    return;
  }
  reply(b.add("+OK ")
            .add(snapshot_.count() - deleted_count_)
            .add(" messages (")
            .add(total_bytes_ - deleted_bytes_)
            .add(" octets)")
            .finish());
  stream_ = Stream::kList;
  cursor_ = 0;
  continue_stream(now);
}

void Session::cmd_uidl(std::string_view args, TimePoint now) {
  bool present = false;
  size_t i = 0;
  if (!single_msn_arg(args, &present, &i)) return;
  LineBuilder b;
  if (present) {
    reply(b.add("+OK ").add(i + 1).add(" ").add(snapshot_.uidl(i)).finish());
    return;
  }
  reply_ok("unique-id listing follows");
  stream_ = Stream::kUidl;
  cursor_ = 0;
  continue_stream(now);
}

void Session::cmd_dele(std::string_view args, TimePoint) {
  std::string_view parts[1];
  bool extra = false;
  const size_t n = split_args(args, parts, 1, &extra);
  if (extra) {
    bad_command("too many arguments");
    return;
  }
  size_t i = 0;
  if (!parse_msn(n == 1 ? parts[0] : std::string_view{}, &i)) return;
  deleted_[i / 64] |= uint64_t{1} << (i % 64);
  ++deleted_count_;
  deleted_bytes_ += snapshot_.sizes[i];
  counters_.dele_marked.add();
  ++stats_.dele;
  LineBuilder b;
  reply(b.add("+OK message ").add(i + 1).add(" deleted").finish());
}

void Session::cmd_rset(std::string_view args, TimePoint) {
  if (!args.empty()) {
    bad_command("RSET takes no arguments");
    return;
  }
  std::fill(deleted_.begin(), deleted_.end(), 0);
  deleted_count_ = 0;
  deleted_bytes_ = 0;
  reply_maildrop_summary();
}

// ---- Streaming LIST / UIDL ---------------------------------------------------

void Session::observe_command(DurationHistogram& h, TimePoint now) noexcept {
  h.observe_duration(std::chrono::duration_cast<std::chrono::microseconds>(now - command_started_));
}

// Called after every send completion and when a stream starts: fills the
// output block as far as it goes, ends the reply when the cursor is done.

void Session::continue_stream(TimePoint now) {
  if (stream_ == Stream::kBodyFinish) {
    finish_body(now);
    return;
  }
  if (stream_ != Stream::kList && stream_ != Stream::kUidl) return;
  const bool uidl = stream_ == Stream::kUidl;
  const size_t line_max = uidl ? kUidlLineBytesMax : kListLineBytesMax;
  size_t room = 0;
  char* at = out_.reserve_all(&room);
  size_t used = 0;
  while (cursor_ < snapshot_.count() && at != nullptr && room - used >= line_max) {
    const size_t i = cursor_++;
    if (is_deleted(i)) continue;
    char* p = put_number(at + used, i + 1);
    *p++ = ' ';
    if (uidl) {
      const std::string_view id = snapshot_.uidl(i);
      std::memcpy(p, id.data(), id.size());
      p += id.size();
    } else {
      p = put_number(p, snapshot_.sizes[i]);
    }
    *p++ = '\r';
    *p++ = '\n';
    used = static_cast<size_t>(p - at);
  }
  if (at != nullptr) out_.commit(used);
  if (cursor_ == snapshot_.count() && out_.append(kTerminator)) {
    observe_command(uidl ? counters_.uidl_seconds : counters_.list_seconds, now);
    stream_ = Stream::kNone;
    end_after_reply(now);
  }
}

// ---- RETR / TOP --------------------------------------------------------------

void Session::cmd_retr(std::string_view args, TimePoint now) {
  std::string_view parts[1];
  bool extra = false;
  const size_t n = split_args(args, parts, 1, &extra);
  if (extra) {
    bad_command("too many arguments");
    return;
  }
  size_t i = 0;
  if (!parse_msn(n == 1 ? parts[0] : std::string_view{}, &i)) return;
  counters_.retr_messages.add();
  ++stats_.retr;
  start_body(i, DotStuffer::kAllLines, now);
}

void Session::cmd_top(std::string_view args, TimePoint now) {
  std::string_view parts[2];
  bool extra = false;
  const size_t n = split_args(args, parts, 2, &extra);
  if (extra) {
    bad_command("too many arguments");
    return;
  }
  size_t i = 0;
  if (!parse_msn(n >= 1 ? parts[0] : std::string_view{}, &i)) return;
  const ParsedNumber lines = parse_number(n == 2 ? parts[1] : std::string_view{});
  switch (lines.error) {
    case NumberError::kOk:
      break;
    case NumberError::kMissing:
      bad_command("TOP needs a message number and a line count");
      return;
    case NumberError::kTooLarge:
      bad_command("line count too large");
      return;
    case NumberError::kNegative:
    case NumberError::kNotANumber:
      bad_command("line count must be a non-negative decimal number");
      return;
  }
  counters_.top_messages.add();
  ++stats_.top;
  start_body(i, lines.value, now);
}

void Session::start_body(size_t index, uint64_t top_lines, TimePoint now) {
  if (top_lines == DotStuffer::kAllLines && stats_.retr > 1) retr_descending_ = index < body_index_;
  body_index_ = index;
  body_offset_ = 0;
  body_fetched_ = 0;
  body_started_ = false;
  body_is_top_ = top_lines != DotStuffer::kAllLines;
  stuffer_.reset(top_lines);
  stream_ = Stream::kBody;
  if (snapshot_.sizes[index] == 0) {
    // Nothing to fetch: answer at once.
    reply_ok("0 octets");
    body_started_ = true;
    finish_body(now);
    return;
  }
  request_body_chunk();
}

void Session::request_body_chunk() noexcept {
  const uint64_t size = snapshot_.sizes[body_index_];
  Request r;
  r.kind = RequestKind::kFetchBody;
  r.tenant_id = tenant_id_;
  r.user_id = user_id_;
  r.message_id = snapshot_.message_ids[body_index_];
  r.offset = body_fetched_;
  r.length = static_cast<uint32_t>(std::min<uint64_t>(config_.body_chunk_bytes, size - body_fetched_));
  body_fetched_ += r.length;
  issue(r, Pending::kFetchBody);
}

bool Session::predict_fetch(uint32_t message_bytes_max, Request* out) const noexcept {
  int64_t id = 0;
  uint32_t size = 0;
  if (predict_fetches(message_bytes_max, message_bytes_max, std::span<int64_t>(&id, 1),
                      std::span<uint32_t>(&size, 1)) == 0) {
    return false;
  }
  // One message: the very next one, or none (an empty next message is
  // answered without a fetch, and nothing beyond it is guessed).
  size_t i = body_index_;
  for (;;) {
    if (retr_descending_) {
      --i;
    } else {
      ++i;
    }
    if (!is_deleted(i)) break;
  }
  if (snapshot_.message_ids[i] != id) return false;
  *out = Request{};
  out->kind = RequestKind::kFetchBody;
  out->tenant_id = tenant_id_;
  out->user_id = user_id_;
  out->message_id = id;
  out->offset = 0;
  out->length = size;
  return true;
}

size_t Session::predict_fetches(uint32_t message_bytes_max, uint64_t batch_bytes_max,
                                std::span<int64_t> ids, std::span<uint32_t> sizes) const noexcept {
  if (state_ != State::kTransaction || close_ != CloseMode::kOpen || stats_.retr == 0 ||
      body_is_top_ || snapshot_.sizes.empty() || ids.empty()) {
    return 0;
  }
  if (stream_ == Stream::kBody && body_fetched_ < snapshot_.sizes[body_index_]) return 0;
  const size_t max = std::min(ids.size(), sizes.size());
  size_t n = 0;
  uint64_t bytes = 0;
  // The whole next messages, in the order the client retrieves in.
  size_t i = body_index_;
  while (n < max) {
    if (retr_descending_) {
      if (i == 0) break;
      --i;
    } else {
      if (i + 1 >= snapshot_.sizes.size()) break;
      ++i;
    }
    if (is_deleted(i)) continue;
    const uint32_t size = snapshot_.sizes[i];
    if (size == 0) continue;
    if (size > message_bytes_max || size > config_.body_chunk_bytes || bytes + size > batch_bytes_max) break;
    ids[n] = snapshot_.message_ids[i];
    sizes[n] = size;
    ++n;
    bytes += size;
  }
  return n;
}

bool Session::wants_body_bytes() const noexcept {
  return stream_ == Stream::kBody && pending_ == Pending::kNone && close_ == CloseMode::kOpen &&
         out_.space() > 0;
}

size_t Session::handle_body_chunk(StoreStatus status, std::string_view bytes, TimePoint now) {
  expect(Pending::kFetchBody);
  if (close_ != CloseMode::kOpen || stream_ != Stream::kBody) return bytes.size();
  const uint64_t size = snapshot_.sizes[body_index_];
  const uint64_t want = body_fetched_ - body_offset_;  // still owed by this chunk
  if (status != StoreStatus::kOk || bytes.empty() || bytes.size() > want) {
    stream_ = Stream::kNone;
    if (!body_started_) {
      command_failed(current_verb_, code_for(status == StoreStatus::kOk ? StoreStatus::kTemporary : status),
                     "cannot read message; try again later");
      end_after_reply(now);
      return bytes.size();
    }
    // Part of the message is out already; a -ERR now would be read as
    // message text. Cutting the connection is the only honest signal.
    counters_.stream_aborts.add();
    close_now(EndReason::kStreamAborted);
    return bytes.size();
  }
  if (!body_started_) {
    LineBuilder b;
    reply(body_is_top_ ? b.add("+OK top of message follows").finish()
                       : b.add("+OK ").add(size).add(" octets").finish());
    body_started_ = true;
  }
  size_t room = 0;
  char* at = out_.reserve_all(&room);
  if (at == nullptr) return 0;
  const DotStuffer::Step step = stuffer_.encode(bytes, at, room);
  out_.commit(step.produced);
  body_offset_ += step.consumed;
  if (!body_is_top_) {
    counters_.retr_bytes.add(step.consumed);
    stats_.retr_bytes += step.consumed;
  }
  if (step.done || body_offset_ == size) {
    // A whole message went out: it counts as retrieved (EXPIRE).
    if (!body_is_top_) retrieved_[body_index_ / 64] |= uint64_t{1} << (body_index_ % 64);
    stream_ = Stream::kBodyFinish;
    finish_body(now);
    return bytes.size();  // TOP may leave the rest unread
  }
  if (step.consumed == bytes.size()) request_body_chunk();
  return step.consumed;
}

void Session::finish_body(TimePoint now) {
  char* at = out_.reserve(DotStuffer::kFinishBytesMax);
  if (at == nullptr) {
    stream_ = Stream::kBodyFinish;  // again after the next send completes
    return;
  }
  out_.commit(stuffer_.finish(at));
  stream_ = Stream::kNone;
  observe_command(body_is_top_ ? counters_.top_seconds : counters_.retr_seconds, now);
  end_after_reply(now);
}

}  // namespace popgate::pop3
