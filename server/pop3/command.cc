#include "server/pop3/command.h"

#include <array>
#include <cstdint>

namespace popgate::pop3 {
namespace {

struct VerbName {
  Verb verb;
  std::string_view name;
};

constexpr std::array<VerbName, kVerbCount - 1> kVerbs{{
    {Verb::kUser, "USER"},
    {Verb::kPass, "PASS"},
    {Verb::kQuit, "QUIT"},
    {Verb::kStat, "STAT"},
    {Verb::kList, "LIST"},
    {Verb::kRetr, "RETR"},
    {Verb::kDele, "DELE"},
    {Verb::kNoop, "NOOP"},
    {Verb::kRset, "RSET"},
    {Verb::kTop, "TOP"},
    {Verb::kUidl, "UIDL"},
    {Verb::kCapa, "CAPA"},
    {Verb::kAuth, "AUTH"},
    {Verb::kApop, "APOP"},
    {Verb::kStls, "STLS"},
    {Verb::kUtf8, "UTF8"},
}};

constexpr char ascii_upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

bool equals_upper(std::string_view keyword, std::string_view upper) noexcept {
  if (keyword.size() != upper.size()) return false;
  for (size_t i = 0; i < keyword.size(); ++i) {
    if (ascii_upper(keyword[i]) != upper[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view verb_name(Verb v) noexcept {
  for (const auto& entry : kVerbs) {
    if (entry.verb == v) return entry.name;
  }
  return "?";
}

CommandLine parse_command_line(std::string_view line) noexcept {
  CommandLine out;
  const size_t space = line.find(' ');
  out.keyword = line.substr(0, space);
  out.args = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
  // Keywords are 3 or 4 characters (RFC 1939 section 3); anything else is
  // unknown without a table walk.
  if (out.keyword.size() < 3 || out.keyword.size() > 4) return out;
  for (const auto& entry : kVerbs) {
    if (equals_upper(out.keyword, entry.name)) {
      out.verb = entry.verb;
      break;
    }
  }
  return out;
}

size_t split_args(std::string_view args, std::string_view* out, size_t out_max,
                  bool* extra) noexcept {
  size_t count = 0;
  *extra = false;
  size_t pos = 0;
  while (pos < args.size()) {
    while (pos < args.size() && args[pos] == ' ') ++pos;
    if (pos == args.size()) break;
    size_t end = args.find(' ', pos);
    if (end == std::string_view::npos) end = args.size();
    if (count == out_max) {
      *extra = true;
      break;
    }
    out[count++] = args.substr(pos, end - pos);
    pos = end;
  }
  return count;
}

ParsedNumber parse_number(std::string_view text) noexcept {
  ParsedNumber out;
  if (text.empty()) return out;  // kMissing
  if (text[0] == '-') {
    out.error = NumberError::kNegative;
    for (size_t i = 1; i < text.size(); ++i) {
      if (text[i] < '0' || text[i] > '9') out.error = NumberError::kNotANumber;
    }
    if (text.size() == 1) out.error = NumberError::kNotANumber;
    return out;
  }
  uint64_t value = 0;
  bool too_large = false;
  for (char c : text) {
    if (c < '0' || c > '9') {
      out.error = NumberError::kNotANumber;
      return out;
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > UINT32_MAX) {
      too_large = true;
      value = UINT32_MAX;  // keep scanning for non-digits; cap avoids overflow
    }
  }
  out.error = too_large ? NumberError::kTooLarge : NumberError::kOk;
  out.value = value;
  return out;
}

}  // namespace popgate::pop3
