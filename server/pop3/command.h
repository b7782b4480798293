// Command lines: the verb (a case-insensitive keyword) and its argument text,
// plus the number syntax every message-number argument shares.
// Pure functions over string_views into the caller's line; nothing is copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace popgate::pop3 {

enum class Verb : uint8_t {
  kUnknown,
  kUser,
  kPass,
  kQuit,
  kStat,
  kList,
  kRetr,
  kDele,
  kNoop,
  kRset,
  kTop,
  kUidl,
  kCapa,
  kAuth,
  kApop,
  kStls,
  kUtf8,
};
inline constexpr size_t kVerbCount = 17;

// Upper-case wire name, "?" for kUnknown.
[[nodiscard]] std::string_view verb_name(Verb v) noexcept;

struct CommandLine {
  Verb verb = Verb::kUnknown;
  std::string_view keyword;  // as sent
  std::string_view args;     // after the first space; may be empty
};

// Splits "KEYWORD[ SP args]". Keywords match case-insensitively.
[[nodiscard]] CommandLine parse_command_line(std::string_view line) noexcept;

// Splits args on runs of spaces. Returns the number of arguments found, up
// to out_max; *extra is set when there were more than out_max.
size_t split_args(std::string_view args, std::string_view* out, size_t out_max,
                  bool* extra) noexcept;

enum class NumberError : uint8_t { kOk, kMissing, kNotANumber, kNegative, kTooLarge };

struct ParsedNumber {
  NumberError error = NumberError::kMissing;
  uint64_t value = 0;
};
// Decimal digits only ("+1", "1.0", " 1" are not numbers); leading zeros are
// accepted. kTooLarge when the value does not fit in 32 bits: no maildrop
// has that many messages, and no sane TOP asks for that many lines.
[[nodiscard]] ParsedNumber parse_number(std::string_view text) noexcept;

}  // namespace popgate::pop3
