// LineReader: turns a byte stream, split however the network likes, into
// command lines. A line ends at LF; a CR before the LF is dropped. Complete
// lines are returned as views into the caller's bytes when they arrived in
// one piece, and copied into a fixed buffer only when they straddle reads.
//
// Command lines are limited to kCommandLineBytesMax. SASL lines may be
// longer (kSaslLineBytesMax): a line that starts with "AUTH " (any case), or
// any line while set_sasl_mode(true). Those spill into a string that exists
// only while such a line is being read.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
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
  // The next lines are SASL client responses (long lines allowed).
  void set_sasl_mode(bool on) noexcept { sasl_mode_ = on; }

 private:
  Step finish_line(std::string_view head, size_t consumed) noexcept;
  Step finish_long_line(std::string_view head, size_t consumed) noexcept;
  [[nodiscard]] bool long_allowed(std::string_view more) const noexcept;
  Step start_discarding(size_t bytes, size_t consumed) noexcept;

  // +1: a CR may wait for its LF behind a line of maximum length.
  std::array<char, kCommandLineBytesMax + 1> buf_{};
  size_t len_ = 0;
  bool discarding_ = false;
  bool sasl_mode_ = false;
  bool in_long_ = false;  // the partial line lives in long_, not buf_
  size_t discarded_ = 0;
  std::string long_;
  std::string_view line_;
};

}  // namespace popgate::pop3
