// CidrSet: a set of IPv4 and IPv6 prefixes, for "which peers may send a
// PROXY header" (spec section 5: accept the header only from trusted
// proxies). Built once from configuration; contains() is the per-accept
// check and neither allocates nor locks.
// IPv4 entries are kept as IPv4-mapped IPv6 (::ffff:a.b.c.d/96+n), so a peer
// that a dual-stack socket reports as ::ffff:10.1.2.3 matches "10.0.0.0/8".
// The flip side: an IPv6 entry that covers ::ffff:0:0/96 (such as "::/0")
// matches every IPv4 peer too.
// Must not know: sockets, listeners, configuration syntax beyond one list.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/proxy/ip_text.h"

namespace popgate::proxy {

class CidrSet {
 public:
  // Parses a list such as "127.0.0.1/32, 10.0.0.0/8, ::1/128, fd00::/8":
  // entries separated by commas, blanks around them ignored; a bare address
  // is a host route (/32 or /128). A blank list is the empty set. An entry
  // with bits set past its prefix ("10.0.0.1/8") is refused as a likely
  // typo. On error returns nullopt with *error naming the bad entry.
  [[nodiscard]] static std::optional<CidrSet> parse(std::string_view list, std::string* error);

  // Adds one entry ("10.0.0.0/8", "::1"); false with *error naming it.
  [[nodiscard]] bool add(std::string_view entry, std::string* error);

  // True when `address` is AF_INET or AF_INET6 and inside some entry.
  // AF_UNIX, AF_UNSPEC and nullptr are never contained.
  [[nodiscard]] bool contains(const sockaddr* address) const noexcept;
  // Same, for an address already in 16-byte form (IPv4 mapped).
  [[nodiscard]] bool contains(const Ipv6Bytes& address) const noexcept;

  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] size_t size() const noexcept { return entries_.size(); }
  // "127.0.0.1/32, ::1/128": canonical text, for logs and --check-config.
  [[nodiscard]] std::string to_string() const;

 private:
  struct Entry {
    Ipv6Bytes address{};      // IPv4 as ::ffff:a.b.c.d
    uint8_t prefix_bits = 0;  // 0..128, in the 128-bit space
    bool ipv4 = false;        // written as IPv4: print it that way
  };
  std::vector<Entry> entries_;
};

}  // namespace popgate::proxy
