// Login names: "local@domain" split at the last '@' (local parts may contain
// '@' when quoted), "local" completed with the default domain, both parts
// lowercased (ASCII only; the schema stores them lowercase).
//
// Rejected here, without asking the database, and reported as "no such user":
// empty parts, names over kLoginBytesMax, control characters and bytes that
// are not UTF-8 (PostgreSQL would refuse them as text with an error, which
// must not turn a peer's typo into a server failure).
// Must not know: libpq, requests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace popgate::storage {

// Longest accepted "local@domain", in octets (the contract's limit).
inline constexpr std::size_t kLoginBytesMax = 255;

struct LoginName {
  std::array<char, kLoginBytesMax> bytes{};  // local part, then domain
  uint16_t local_bytes = 0;
  uint16_t domain_bytes = 0;

  [[nodiscard]] std::string_view local_part() const noexcept {
    return {bytes.data(), local_bytes};
  }
  [[nodiscard]] std::string_view domain() const noexcept {
    return {bytes.data() + local_bytes, domain_bytes};
  }
};

// Fills `out` and returns true when `login` names a possible user.
// default_domain ("" = none) completes a login without '@'.
[[nodiscard]] bool parse_login(std::string_view login, std::string_view default_domain,
                               LoginName& out) noexcept;

}  // namespace popgate::storage
