// Keys of the abuse-limit tables, and the keyed hash that places them.
// A client address is 16 bytes: IPv6 as is (cut to its /64 by default,
// since one IPv6 client usually holds a whole /64), IPv4 as IPv4-mapped
// IPv6, so one client counts once whichever socket family saw it. A user is
// (tenant_id, user_id); a tenant is its tenant_id, as in storage.
// Must not know: sockets beyond sockaddr, storage, the shard.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>

namespace popgate::limits {

// IPv6 peers are keyed by this prefix. Providers hand one subscriber a /64
// (RFC 6177 says up to a /48), and the host part is the client's to pick:
// keying on the full 128 bits would let one client be 2^64 clients.
inline constexpr unsigned kIpv6ClientPrefixBits = 64;

struct AddressKey {
  std::array<uint8_t, 16> bytes{};
  friend bool operator==(const AddressKey&, const AddressKey&) = default;
};

struct UserKey {
  int64_t tenant_id = 0;
  int64_t user_id = 0;
  friend bool operator==(const UserKey&, const UserKey&) = default;
};

struct TenantKey {
  int64_t tenant_id = 0;
  friend bool operator==(const TenantKey&, const TenantKey&) = default;
};

// The key for a peer: AF_INET as ::ffff:a.b.c.d, AF_INET6 cut to
// `ipv6_prefix_bits` (0..128; mapped IPv4 peers keep all 128 bits). Other
// families (AF_UNIX: a local peer) have no key: nullopt.
[[nodiscard]] std::optional<AddressKey> address_key(
    const sockaddr* address, unsigned ipv6_prefix_bits = kIpv6ClientPrefixBits) noexcept;

// SipHash-2-4 under a 128-bit secret. One per table; random() draws the
// secret from the OS at startup, so clients cannot precompute collisions.
class KeyHasher {
 public:
  KeyHasher(uint64_t k0, uint64_t k1) noexcept : k0_(k0), k1_(k1) {}
  // Reads std::random_device (getrandom); throws if the OS has no entropy
  // source, which is a startup failure.
  [[nodiscard]] static KeyHasher random();

  [[nodiscard]] uint64_t operator()(const AddressKey& key) const noexcept;
  [[nodiscard]] uint64_t operator()(const UserKey& key) const noexcept;
  [[nodiscard]] uint64_t operator()(const TenantKey& key) const noexcept;

 private:
  uint64_t k0_;
  uint64_t k1_;
};

}  // namespace popgate::limits
