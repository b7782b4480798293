#include "server/proxy/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace popgate::proxy {
namespace {

// ::ffff:0:0/96 holds the IPv4-mapped addresses (RFC 4291 section 2.5.5.2).
constexpr unsigned kIpv4MappedPrefixBits = 96;
constexpr unsigned kIpv4Bits = 32;
constexpr unsigned kIpv6Bits = 128;

Ipv6Bytes mapped(const Ipv4Bytes& v4) noexcept {
  Ipv6Bytes out{};
  out[10] = 0xff;
  out[11] = 0xff;
  std::memcpy(out.data() + 12, v4.data(), v4.size());
  return out;
}

uint8_t prefix_mask(unsigned bits_in_byte) noexcept {
  return static_cast<uint8_t>(0xff00u >> bits_in_byte);
}

bool prefix_matches(const Ipv6Bytes& a, const Ipv6Bytes& b, unsigned bits) noexcept {
  const size_t whole = bits / 8;
  if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
  if (bits % 8 == 0) return true;
  const uint8_t mask = prefix_mask(bits % 8);
  return (a[whole] & mask) == (b[whole] & mask);
}

Ipv6Bytes masked(Ipv6Bytes address, unsigned bits) noexcept {
  for (size_t i = 0; i < address.size(); ++i) {
    const unsigned start = static_cast<unsigned>(i) * 8;
    if (start >= bits) {
      address[i] = 0;
    } else if (bits - start < 8) {
      address[i] = static_cast<uint8_t>(address[i] & prefix_mask(bits - start));
    }
  }
  return address;
}

std::string_view trim(std::string_view text) noexcept {
  constexpr std::string_view kBlanks = " \t\r\n";
  const size_t first = text.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kBlanks) - first + 1);
}

// "10.0.0.0/8" or "fd00::/8".
std::string format(const Ipv6Bytes& address, unsigned prefix_bits, bool ipv4) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ipv4) {
    inet_ntop(AF_INET, address.data() + 12, text, sizeof(text));
    return std::string(text) + "/" + std::to_string(prefix_bits - kIpv4MappedPrefixBits);
  }
  inet_ntop(AF_INET6, address.data(), text, sizeof(text));
  return std::string(text) + "/" + std::to_string(prefix_bits);
}

std::string quoted(std::string_view entry) { return "bad entry \"" + std::string(entry) + "\": "; }

}  // namespace

std::optional<CidrSet> CidrSet::parse(std::string_view list, std::string* error) {
  CidrSet set;
  if (trim(list).empty()) return set;
  while (true) {
    const size_t comma = list.find(',');
    if (!set.add(list.substr(0, comma), error)) return std::nullopt;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return set;
}

bool CidrSet::add(std::string_view entry, std::string* error) {
  entry = trim(entry);
  if (entry.empty()) {
    *error = "empty entry (a stray comma?)";
    return false;
  }
  const size_t slash = entry.find('/');
  const std::string_view address_text = entry.substr(0, slash);
  const std::optional<Ipv4Bytes> v4 = parse_ipv4(address_text);
  const std::optional<Ipv6Bytes> v6 = v4 ? std::nullopt : parse_ipv6(address_text);
  if (!v4 && !v6) {
    *error = quoted(entry) + "not an IPv4 or IPv6 address";
    return false;
  }
  const unsigned bits_max = v4 ? kIpv4Bits : kIpv6Bits;
  std::optional<uint32_t> prefix = bits_max;
  if (slash != std::string_view::npos) prefix = parse_decimal(entry.substr(slash + 1), bits_max);
  if (!prefix) {
    *error = quoted(entry) + "prefix length must be 0.." + std::to_string(bits_max);
    return false;
  }
  Entry added;
  added.address = v4 ? mapped(*v4) : *v6;
  added.prefix_bits = static_cast<uint8_t>(v4 ? kIpv4MappedPrefixBits + *prefix : *prefix);
  const Ipv6Bytes network = masked(added.address, added.prefix_bits);
  if (network != added.address) {
    *error = quoted(entry) + "bits set past the prefix (did you mean " +
             format(network, added.prefix_bits, v4.has_value()) + "?)";
    return false;
  }
  added.ipv4 = v4.has_value();
  entries_.push_back(added);
  return true;
}

bool CidrSet::contains(const sockaddr* address) const noexcept {
  if (address == nullptr) return false;
  if (address->sa_family == AF_INET) {
    sockaddr_in sin{};
    std::memcpy(&sin, address, sizeof(sin));
    Ipv4Bytes v4{};
    std::memcpy(v4.data(), &sin.sin_addr, v4.size());
    return contains(mapped(v4));
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, address, sizeof(sin6));
    Ipv6Bytes v6{};
    std::memcpy(v6.data(), &sin6.sin6_addr, v6.size());
    return contains(v6);
  }
  return false;
}

bool CidrSet::contains(const Ipv6Bytes& address) const noexcept {
  for (const Entry& entry : entries_) {
    if (prefix_matches(entry.address, address, entry.prefix_bits)) return true;
  }
  return false;
}

std::string CidrSet::to_string() const {
  std::string out;
  for (const Entry& entry : entries_) {
    if (!out.empty()) out += ", ";
    out += format(entry.address, entry.prefix_bits, entry.ipv4);
  }
  return out;
}

}  // namespace popgate::proxy
