// DataReader: the DATA phase's bytes (RFC 5321 4.1.1.4, 4.5.2) in, the
// message as popgate stores it out. It removes the leading dot of every line
// (dot-unstuffing), finds the terminating "." line, and writes line ends as
// CRLF exactly as popgate-admin deliver does (ops/admin/message.h): a lone LF
// or a lone CR becomes CRLF, an existing CRLF stays, other octets (8-bit,
// NUL) pass through. Lines end at LF for unstuffing and the terminator, so
// "\n.\n" ends a message as "\r\n.\r\n" does. Every line before the
// terminator ended with a LF, so the body is empty or ends with CRLF.
//
// Streaming: input split anywhere gives the same body and the same verdicts.
// The body is appended to a string owned by the caller, and never holds more
// than its limit: once a message is over the size limit or has a line over
// kDataLineBytesMax it is refused, its bytes are wiped and released, and
// the rest is only scanned for the terminator.
//
// Must not know: sessions, recipients, the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace popgate::lmtp {

// Zeroes a string's bytes (the store cannot skip it as dead) and clears it.
void wipe(std::string& s) noexcept;
// wipe(), then gives its memory back.
void wipe_and_release(std::string& s) noexcept;

class DataReader {
 public:
  enum class Event : uint8_t {
    kNeedMore,  // all input consumed; the message goes on
    kEnd,       // the terminating line was consumed: the body is complete
    kOverrun,   // more than raw_bytes_max without a terminator: give up
  };
  struct Step {
    Event event = Event::kNeedMore;
    size_t consumed = 0;
  };

  // Starts a message. Normalised octets are appended to *body, which may
  // already hold a prefix (a Return-Path line); body_bytes_max bounds what
  // is appended, raw_bytes_max what is read. *body must stay put until kEnd
  // or kOverrun; it grows by doubling, never past prefix + body_bytes_max.
  void start(std::string* body, uint64_t body_bytes_max, uint64_t raw_bytes_max) noexcept;
  // Consumes `in` up to and including the terminating line. Out of memory
  // is fatal (std::terminate), as everywhere on the data path.
  [[nodiscard]] Step feed(std::string_view in) noexcept;

  // Normalised octets of the message so far; 0 once it is refused.
  [[nodiscard]] uint64_t body_bytes() const noexcept { return body_bytes_; }
  // Octets read since start().
  [[nodiscard]] uint64_t raw_bytes() const noexcept { return raw_; }
  [[nodiscard]] bool too_big() const noexcept { return too_big_; }
  [[nodiscard]] bool line_too_long() const noexcept { return line_too_long_; }
  [[nodiscard]] bool refused() const noexcept { return too_big_ || line_too_long_; }
  // Lines longer than kDataLineBytesRfc (line end included) so far.
  [[nodiscard]] uint32_t lines_over_rfc() const noexcept { return lines_over_rfc_; }

 private:
  enum class State : uint8_t {
    kLineStart,  // nothing of this line yet
    kDot,        // a '.' opened the line (held back)
    kDotCr,      // ".\r" opened the line (held back)
    kText,       // inside a line
    kCr,         // inside a line, after a CR (already written as CRLF)
  };

  [[nodiscard]] size_t feed_text(std::string_view in, size_t i) noexcept;
  void emit(const char* p, size_t n) noexcept;
  void reserve_for(size_t n) noexcept;
  void refuse_body() noexcept;
  void end_line(uint64_t raw_after_lf) noexcept;
  void check_partial_line(uint64_t raw_now) noexcept;

  std::string* body_ = nullptr;
  size_t prefix_bytes_ = 0;
  uint64_t body_bytes_max_ = 0;
  uint64_t raw_bytes_max_ = 0;
  uint64_t body_bytes_ = 0;
  uint64_t raw_ = 0;
  uint64_t line_start_ = 0;  // raw offset where the current line began
  uint32_t lines_over_rfc_ = 0;
  State state_ = State::kLineStart;
  bool line_flagged_ = false;  // the current line already counted as too long
  bool too_big_ = false;
  bool line_too_long_ = false;
};

}  // namespace popgate::lmtp
