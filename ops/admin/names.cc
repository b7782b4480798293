#include "ops/admin/names.h"

#include "server/pop3/utf8.h"

namespace popgate::admin {
namespace {

bool printable_ascii(char c) noexcept { return c >= 0x21 && c <= 0x7e; }

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string label_problem(std::string_view label, std::string_view domain) {
  if (label.empty()) return "domain " + quoted(domain) + " has an empty label";
  if (label.size() > kDomainLabelBytesMax) {
    return "domain " + quoted(domain) + " has a label longer than 63 octets";
  }
  if (label.front() == '-' || label.back() == '-') {
    return "domain " + quoted(domain) + ": a label may not start or end with '-'";
  }
  for (const char c : label) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) {
      return "domain " + quoted(domain) +
             " may hold only letters, digits, '-' and '.' (use the xn-- form for IDNs)";
    }
  }
  return "";
}

}  // namespace

std::string lowercase_ascii(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return lower;
}

std::string domain_problem(std::string_view domain) {
  if (domain.empty()) return "empty domain";
  if (domain.size() > kDomainBytesMax) return "domain is longer than 253 octets";
  size_t start = 0;
  for (;;) {
    const size_t dot = domain.find('.', start);
    const auto label = domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (auto problem = label_problem(label, domain); !problem.empty()) return problem;
    if (dot == std::string_view::npos) return "";
    start = dot + 1;
  }
}

// RFC 5322 atext and dots (letters, digits and !#$%&'*+-/=?^_`{|}~), or
// UTF-8 (RFC 6531 local parts; POP3 clients log in with them after UTF8,
// RFC 6856). The specials a quoted local part would need ("\(),:;<>[]) are
// refused: no mail system hands them out, and they are what injection
// attempts are made of.
std::string local_part_problem(std::string_view local_part) {
  if (local_part.empty()) return "empty local part";
  if (local_part.size() > kLocalPartBytesMax) {
    return "local part " + quoted(local_part) + " is longer than 64 octets";
  }
  if (!pop3::is_valid_utf8(local_part)) {
    return "local part " + quoted(local_part) + " is not valid UTF-8";
  }
  for (size_t i = 0; i < local_part.size(); ++i) {
    const auto u = static_cast<unsigned char>(local_part[i]);
    // C1 controls (U+0080..U+009F) are UTF-8 0xC2 0x80..0x9F.
    const bool c1 = u == 0xc2 && i + 1 < local_part.size() &&
                    static_cast<unsigned char>(local_part[i + 1]) <= 0x9f;
    static constexpr std::string_view kSpecials = "\"\\(),:;<>[]@";
    if ((u < 0x80 && !printable_ascii(local_part[i])) || kSpecials.find(local_part[i]) != std::string_view::npos ||
        c1) {
      return "local part " + quoted(local_part) +
             " may hold only letters, digits, dots, UTF-8 and !#$%&'*+-/=?^_`{|}~";
    }
  }
  return "";
}

std::string uidl_problem(std::string_view uidl) {
  if (uidl.empty()) return "empty UIDL";
  if (uidl.size() > kUidlBytesMax) return "UIDL " + quoted(uidl) + " is longer than 70 octets";
  for (const char c : uidl) {
    if (!printable_ascii(c)) {
      return "UIDL " + quoted(uidl) + " may hold only printable ASCII (0x21..0x7E)";
    }
  }
  return "";
}

Address parse_address(std::string_view text) {
  Address address;
  const size_t at = text.rfind('@');
  if (at == std::string_view::npos) {
    address.problem = "address " + quoted(text) + " is not of the form local@domain";
    return address;
  }
  address.local_part = lowercase_ascii(text.substr(0, at));
  address.domain = lowercase_ascii(text.substr(at + 1));
  address.problem = local_part_problem(address.local_part);
  if (address.problem.empty()) address.problem = domain_problem(address.domain);
  return address;
}

}  // namespace popgate::admin
