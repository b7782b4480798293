// The names popgate-admin accepts: tenant domains, mailbox local parts,
// "local@domain" addresses and UIDLs. Pure functions, no database.
// Each *_problem() returns why a value is unacceptable, or "" when it is fine.
#pragma once

#include <string>
#include <string_view>

namespace popgate::admin {

inline constexpr size_t kDomainBytesMax = 253;
inline constexpr size_t kDomainLabelBytesMax = 63;
inline constexpr size_t kLocalPartBytesMax = 64;
inline constexpr size_t kUidlBytesMax = 70;  // RFC 1939, section 7

[[nodiscard]] std::string lowercase_ascii(std::string_view text);

// A DNS name in lowercase ASCII: labels of [a-z0-9-], 1..63 octets, not
// starting or ending with '-'; 253 octets at most; no trailing dot.
[[nodiscard]] std::string domain_problem(std::string_view domain);
// 1..64 octets of printable ASCII (0x21..0x7E) other than '@'.
[[nodiscard]] std::string local_part_problem(std::string_view local_part);
// 1..70 octets of 0x21..0x7E.
[[nodiscard]] std::string uidl_problem(std::string_view uidl);

struct Address {
  std::string local_part;  // lowercased
  std::string domain;      // lowercased
  std::string problem;     // "" when both halves are acceptable
  [[nodiscard]] std::string login() const { return local_part + "@" + domain; }
};
// Splits "local@domain" at the last '@', lowercases and checks both halves.
[[nodiscard]] Address parse_address(std::string_view text);

}  // namespace popgate::admin
