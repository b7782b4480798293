// LineReader: turns a byte stream, split however the network likes, into
// command lines. A line ends at LF; a CR before the LF is dropped. Complete
// lines are returned as views into the caller's bytes when they arrived in
// one piece, and copied into a fixed buffer only when they straddle reads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/pop3/limits.h"

namespace popgate::pop3 {

class LineReader {
 public:
  enum class Event : uint8_t {
    kNeedMore,  // all input consumed, no complete line yet
    kLine,      // line() holds a complete line (without CR LF)
    kTooLong,   // a line over kCommandLineBytesMax; its rest is discarded
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
  // Forgets any partial line (STLS, for one, must not carry bytes across).
  void reset() noexcept;

 private:
  Step finish_line(std::string_view head, size_t consumed) noexcept;

  // +1: a CR may wait for its LF behind a line of maximum length.
  std::array<char, kCommandLineBytesMax + 1> buf_{};
  size_t len_ = 0;
  bool discarding_ = false;
  size_t discarded_ = 0;
  std::string_view line_;
};

}  // namespace popgate::pop3
