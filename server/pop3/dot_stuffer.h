// DotStuffer: encodes message text as the body of a multi-line reply
// (RFC 1939 section 3): a line that begins with '.' gets one more '.', and
// the reply ends with ".\r\n". Resumable: input may arrive in chunks of any
// size and output space may run out anywhere, including between the added
// '.' and the original one.
//
// For TOP it also counts lines: it passes the header, the blank line that
// ends it, and then at most `body_lines` lines, and reports done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace popgate::pop3 {

class DotStuffer {
 public:
  static constexpr uint64_t kAllLines = UINT64_MAX;

  void reset(uint64_t body_lines = kAllLines) noexcept;

  struct Step {
    size_t consumed = 0;  // input octets used
    size_t produced = 0;  // output octets written
    bool done = false;    // TOP's line budget is spent; ignore further input
  };
  [[nodiscard]] Step encode(std::string_view in, char* out, size_t out_space) noexcept;

  // Octets finish() may write: CRLF (if the text did not end with one) and
  // the ".\r\n" terminator.
  static constexpr size_t kFinishBytesMax = 5;
  // Call once all input (or TOP's part of it) has been encoded.
  [[nodiscard]] size_t finish(char* out) noexcept;

  [[nodiscard]] bool done() const noexcept { return done_; }

 private:
  void end_line() noexcept;  // TOP only
  [[nodiscard]] Step encode_all(std::string_view in, char* out, size_t out_space) noexcept;

  uint64_t body_lines_left_ = kAllLines;
  bool limit_lines_ = false;
  bool in_header_ = true;
  bool line_start_ = true;
  bool done_ = false;
  // TOP only (RETR does not count lines):
  uint32_t line_bytes_ = 0;  // of the current line, saturating
  char line_first_ = 0;
};

// The inverse, for tests and fuzzing: takes a complete multi-line body
// including the terminating ".\r\n" and returns the original text, or false
// if the input is not a well-formed stuffed body.
[[nodiscard]] bool dot_unstuff(std::string_view stuffed, std::string& out);

}  // namespace popgate::pop3
