#include "server/lmtp/command.h"

#include <array>
#include <limits>

#include "server/lmtp/limits.h"
#include "server/pop3/utf8.h"

namespace popgate::lmtp {
namespace {

struct VerbName {
  Verb verb;
  std::string_view name;
};

constexpr std::array<VerbName, kVerbCount - 1> kVerbs{{
    {Verb::kLhlo, "LHLO"},
    {Verb::kHelo, "HELO"},
    {Verb::kEhlo, "EHLO"},
    {Verb::kMail, "MAIL"},
    {Verb::kRcpt, "RCPT"},
    {Verb::kData, "DATA"},
    {Verb::kRset, "RSET"},
    {Verb::kNoop, "NOOP"},
    {Verb::kQuit, "QUIT"},
    {Verb::kVrfy, "VRFY"},
    {Verb::kHelp, "HELP"},
}};

constexpr char ascii_upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

bool equals_upper(std::string_view text, std::string_view upper) noexcept {
  if (text.size() != upper.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (ascii_upper(text[i]) != upper[i]) return false;
  }
  return true;
}

constexpr bool is_alpha_digit(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 5322 atext, plus UTF-8 octets (RFC 6531 extends atext with them).
constexpr bool is_atext(unsigned char c) noexcept {
  if (is_alpha_digit(c) || c >= 0x80) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

// The local part at text[i]: a quoted string or a dot-string. Returns the
// index after it, or npos.
size_t scan_local_part(std::string_view text, size_t i) noexcept {
  if (i < text.size() && text[i] == '"') {
    ++i;
    while (i < text.size()) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c == '"') return i + 1;
      if (c == '\\') {
        if (i + 1 >= text.size()) return std::string_view::npos;
        const auto e = static_cast<unsigned char>(text[i + 1]);
        if (e < 0x20 || e == 0x7f) return std::string_view::npos;
        i += 2;
        continue;
      }
      if (c < 0x20 || c == 0x7f) return std::string_view::npos;
      ++i;
    }
    return std::string_view::npos;  // unterminated
  }
  const size_t start = i;
  while (i < text.size() && (is_atext(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  return i == start ? std::string_view::npos : i;
}

// The domain at text[i]: labels or an address literal. Returns the index
// after it, or npos.
size_t scan_domain(std::string_view text, size_t i) noexcept {
  if (i < text.size() && text[i] == '[') {
    const size_t start = ++i;
    while (i < text.size() && text[i] != ']') {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x21 || c > 0x7e || c == '[' || c == '\\') return std::string_view::npos;
      ++i;
    }
    if (i == text.size() || i == start) return std::string_view::npos;
    return i + 1;
  }
  size_t label = 0;  // octets in the current label
  size_t labels = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '.') {
      if (label == 0) return std::string_view::npos;
      label = 0;
    } else if (is_alpha_digit(c) || c == '-' || c >= 0x80) {
      if (label++ == 0) ++labels;
    } else {
      break;
    }
    ++i;
  }
  if (labels == 0 || label == 0) return std::string_view::npos;  // empty, or a trailing dot
  return i;
}

bool is_esmtp_keyword(std::string_view k) noexcept {
  if (k.empty() || !is_alpha_digit(static_cast<unsigned char>(k[0]))) return false;
  for (char c : k) {
    if (!is_alpha_digit(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

// RFC 5321 esmtp-value, widened to UTF-8 (RFC 6531): no '=', no controls.
bool is_esmtp_value(std::string_view v) noexcept {
  if (v.empty()) return false;
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c == '=' || c == 0x7f) return false;
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
  if (out.keyword.size() != 4) return out;  // every LMTP verb has four letters
  for (const auto& entry : kVerbs) {
    if (equals_upper(out.keyword, entry.name)) {
      out.verb = entry.verb;
      break;
    }
  }
  return out;
}

bool strip_keyword(std::string_view& args, std::string_view upper) noexcept {
  if (args.size() < upper.size() || !equals_upper(args.substr(0, upper.size()), upper)) return false;
  args.remove_prefix(upper.size());
  while (!args.empty() && args.front() == ' ') args.remove_prefix(1);
  return true;
}

bool is_postmaster(std::string_view address) noexcept {
  return equals_upper(address, "POSTMASTER");
}

Path parse_path(std::string_view text) noexcept {
  Path out;
  if (text.empty() || text[0] != '<') return out;
  size_t i = 1;
  // A source route ("@a,@b:") is obsolete; RFC 5321 4.1.2 says to accept
  // and ignore it.
  if (i < text.size() && text[i] == '@') {
    const size_t colon = text.find(':', i);
    const size_t close = text.find('>', i);
    if (colon == std::string_view::npos || (close != std::string_view::npos && close < colon)) {
      return out;
    }
    i = colon + 1;
  }
  const size_t begin = i;
  if (i < text.size() && text[i] == '>' && begin == 1) {
    out.error = PathError::kOk;  // "<>", the null reverse-path
    out.rest = text.substr(i + 1);
    return out;
  }
  i = scan_local_part(text, i);
  if (i == std::string_view::npos || i >= text.size()) return out;
  if (text[i] == '@') {
    i = scan_domain(text, i + 1);
    if (i == std::string_view::npos || i >= text.size()) return out;
    out.has_domain = true;
  }
  if (text[i] != '>') return out;
  out.address = text.substr(begin, i - begin);
  out.rest = text.substr(i + 1);
  if (out.address.size() > kAddressBytesMax) {
    out.error = PathError::kTooLong;
    return out;
  }
  out.non_ascii = !pop3::is_ascii(out.address);
  if (out.non_ascii && !pop3::is_valid_utf8(out.address)) {
    out.error = PathError::kBadUtf8;
    return out;
  }
  out.error = PathError::kOk;
  return out;
}

namespace {

// One "keyword[=value]" into `out`; false (with out.error set) to stop.
bool apply_mail_param(std::string_view keyword, bool has_value, std::string_view value,
                      MailParams& out) noexcept {
  if (equals_upper(keyword, "SIZE")) {
    if (out.has_size || !has_value) {
      out.error = ParamError::kBadValue;
      return false;
    }
    uint64_t n = 0;
    for (char c : value) {
      if (c < '0' || c > '9') {
        out.error = ParamError::kBadValue;
        return false;
      }
      const auto digit = static_cast<uint64_t>(c - '0');
      n = n > (std::numeric_limits<uint64_t>::max() - digit) / 10
              ? std::numeric_limits<uint64_t>::max()  // saturate: surely over the limit
              : n * 10 + digit;
    }
    out.has_size = true;
    out.size = n;
    return true;
  }
  if (equals_upper(keyword, "BODY")) {
    if (out.body != BodyType::kUnspecified || !has_value) {
      out.error = ParamError::kBadValue;
      return false;
    }
    if (equals_upper(value, "7BIT")) {
      out.body = BodyType::k7Bit;
    } else if (equals_upper(value, "8BITMIME")) {
      out.body = BodyType::k8BitMime;
    } else {
      out.error = ParamError::kBadValue;  // BINARYMIME needs CHUNKING, not offered
      return false;
    }
    return true;
  }
  if (equals_upper(keyword, "SMTPUTF8")) {
    if (out.smtputf8 || has_value) {
      out.error = ParamError::kBadValue;
      return false;
    }
    out.smtputf8 = true;
    return true;
  }
  out.error = ParamError::kUnknown;
  return false;
}

}  // namespace

MailParams parse_mail_params(std::string_view rest) noexcept {
  MailParams out;
  if (rest.empty()) return out;
  if (rest.front() != ' ') {
    out.error = ParamError::kSyntax;  // "<a@b>SIZE=1"
    return out;
  }
  size_t pos = 0;
  while (pos < rest.size()) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    if (pos == rest.size()) break;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    const std::string_view param = rest.substr(pos, end - pos);
    pos = end;
    const size_t eq = param.find('=');
    const std::string_view keyword = param.substr(0, eq);
    const bool has_value = eq != std::string_view::npos;
    const std::string_view value = has_value ? param.substr(eq + 1) : std::string_view{};
    if (!is_esmtp_keyword(keyword) || (has_value && !is_esmtp_value(value))) {
      out.error = ParamError::kSyntax;
      return out;
    }
    if (!apply_mail_param(keyword, has_value, value, out)) return out;
  }
  return out;
}

}  // namespace popgate::lmtp
