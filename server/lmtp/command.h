// LMTP command lines (RFC 2033 over the RFC 5321 grammar): the verb, the
// MAIL/RCPT path and the MAIL parameters. Pure functions over string_views
// into the caller's line; nothing is copied, nothing allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace popgate::lmtp {

enum class Verb : uint8_t {
  kUnknown,
  kLhlo,
  kHelo,  // not LMTP (RFC 2033 4.1): refused with 500
  kEhlo,  // idem
  kMail,
  kRcpt,
  kData,
  kRset,
  kNoop,
  kQuit,
  kVrfy,
  kHelp,
};
inline constexpr size_t kVerbCount = 12;

// Upper-case wire name, "?" for kUnknown.
[[nodiscard]] std::string_view verb_name(Verb v) noexcept;

struct CommandLine {
  Verb verb = Verb::kUnknown;
  std::string_view keyword;  // as sent
  std::string_view args;     // after the first space; may be empty
};

// Splits "KEYWORD[ SP args]". Keywords match case-insensitively.
[[nodiscard]] CommandLine parse_command_line(std::string_view line) noexcept;

// If `args` starts with `upper` (case-insensitively, e.g. "FROM:"), removes
// it and any spaces after it (a common laxity: "MAIL FROM: <a@b>").
[[nodiscard]] bool strip_keyword(std::string_view& args, std::string_view upper) noexcept;

enum class PathError : uint8_t {
  kOk,
  kSyntax,   // not "<" [source-route ":"] mailbox ">" (or "<>")
  kTooLong,  // address over kAddressBytesMax
  kBadUtf8,  // octets over 0x7F that are not well-formed UTF-8
};

struct Path {
  PathError error = PathError::kSyntax;
  // Between the brackets, without a source route; empty for "<>".
  std::string_view address;
  // What follows ">": empty, or parameters after a space.
  std::string_view rest;
  bool has_domain = false;  // "local@domain" (false for "<>" and "<postmaster>")
  bool non_ascii = false;   // UTF-8 in the address (needs SMTPUTF8)
};

// Parses a reverse-path or forward-path starting at `text[0]` (RFC 5321
// 4.1.2, with RFC 6531 UTF-8). Local parts are a dot-string or a quoted
// string; the dot placement of a dot-string is not policed (MTAs relay such
// addresses), but control characters, spaces and unbalanced quotes are
// refused. A domain is dot-separated labels of letters, digits, hyphens and
// UTF-8, or an address literal in brackets.
[[nodiscard]] Path parse_path(std::string_view text) noexcept;

// True for "postmaster" in any case: the one recipient without a domain
// (RFC 5321 4.5.1).
[[nodiscard]] bool is_postmaster(std::string_view address) noexcept;

enum class BodyType : uint8_t { kUnspecified, k7Bit, k8BitMime };

enum class ParamError : uint8_t {
  kOk,
  kSyntax,    // not SP-separated keyword[=value]: 501 5.5.4
  kBadValue,  // a known keyword with a bad or repeated value: 501 5.5.4
  kUnknown,   // a keyword we do not support: 555 5.5.4
};

// MAIL FROM parameters: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC
// 6531). Keywords and BODY values are case-insensitive.
struct MailParams {
  ParamError error = ParamError::kOk;
  bool has_size = false;
  uint64_t size = 0;  // UINT64_MAX when the digits do not fit
  BodyType body = BodyType::kUnspecified;
  bool smtputf8 = false;
};

// `rest` is Path::rest: empty, or " " followed by the parameters.
[[nodiscard]] MailParams parse_mail_params(std::string_view rest) noexcept;

}  // namespace popgate::lmtp
