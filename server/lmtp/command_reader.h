// CommandReader: turns a byte stream, split however the network likes, into
// LMTP command lines of at most kCommandLineBytesMax octets (RFC 5321
// 4.5.3.1.4). A line ends at LF; a CR before the LF is dropped. Lines that
// arrive in one piece are returned as views into the caller's bytes; only a
// line that straddles reads is copied, into a fixed buffer. Never allocates.
//
// Every verdict is the same however the input was split: a line that is too
// long is reported once, at its LF, unless it turns out to be a flood (more
// than kInputDiscardBytesMax without a LF), which is reported as soon as it
// is one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/lmtp/limits.h"

namespace popgate::lmtp {

class CommandReader {
 public:
  enum class Event : uint8_t {
    kNeedMore,  // all input consumed, no complete line yet
    kLine,      // line() holds a complete line (without CR LF)
    kTooLong,   // a line over kCommandLineBytesMax, now discarded
    kNul,       // a complete line that contains a NUL octet
    kFlood,     // more than kInputDiscardBytesMax without a line end
  };
  struct Step {
    Event event = Event::kNeedMore;
    size_t consumed = 0;  // octets of `in` used, including the LF
  };

  // Consumes at most one line's worth of `in`.
  [[nodiscard]] Step next(std::string_view in) noexcept;
  // After kLine: the line, valid until the next call or until the caller's
  // input bytes change.
  [[nodiscard]] std::string_view line() const noexcept { return line_; }
  // Octets of a partial line held between calls.
  [[nodiscard]] size_t buffered() const noexcept { return len_; }

 private:
  // +1: a CR may wait for its LF behind a line of maximum length.
  std::array<char, kCommandLineBytesMax + 1> buf_{};
  size_t len_ = 0;
  bool discarding_ = false;
  size_t discarded_ = 0;  // octets of the overlong line so far
  std::string_view line_;
};

}  // namespace popgate::lmtp
