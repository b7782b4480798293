// Splitting an mbox file (RFC 4155) into messages as its bytes arrive, in
// pieces of any size. Pure: the caller reads the file.
//
// A message starts at a "From " line at the start of the file or after an
// empty line; that line (the envelope) is not part of the message, nor is
// the empty line that ends each message. Quoted "From " lines are
// un-escaped: mboxrd turns ">From ", ">>From ", ... into one '>' less;
// mboxo turns only ">From " into "From " (its writers escape nothing else,
// so the two cannot be told apart). Line endings pass through as they are
// (LF or CRLF); the importer normalises them like `deliver`.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace popgate::admin {

enum class MboxVariant { kMboxrd, kMboxo };

struct MboxMessage {
  std::string envelope;  // the separator line after "From ", without its line end
  std::string body;      // the message, un-escaped
};

class MboxSplitter {
 public:
  MboxSplitter(MboxVariant variant, uint64_t message_bytes_max)
      : variant_(variant), message_bytes_max_(message_bytes_max) {}

  // Consumes `data`; finished messages become available from next().
  // Ignored once problem() is set.
  void feed(std::string_view data);
  // The end of the file: finishes the last message.
  void finish();
  // Moves the oldest finished message into `out`; false when none is ready.
  bool next(MboxMessage& out);
  // "" while all is well; else why the input is not an mbox (text before
  // the first "From " line) or holds a message over message_bytes_max.
  [[nodiscard]] const std::string& problem() const noexcept { return problem_; }
  // Messages begun so far (the one being read included).
  [[nodiscard]] uint64_t messages_started() const noexcept { return started_; }

 private:
  void handle_line(std::string_view line);  // one line, its line end included
  void end_message();
  void append(std::string_view line);

  MboxVariant variant_;
  uint64_t message_bytes_max_;
  std::string partial_;  // a line still waiting for its line end
  bool in_message_ = false;
  bool previous_blank_ = true;  // the start of the file counts as after an empty line
  MboxMessage current_;
  std::deque<MboxMessage> ready_;
  uint64_t started_ = 0;
  std::string problem_;
};

}  // namespace popgate::admin
