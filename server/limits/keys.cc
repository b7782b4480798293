#include "server/limits/keys.h"

#include <netinet/in.h>

#include <cstring>
#include <random>

#include "server/limits/siphash.h"

namespace popgate::limits {
namespace {

constexpr unsigned kIpv6Bits = 128;

bool is_v4_mapped(const std::array<uint8_t, 16>& bytes) noexcept {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(bytes.data(), kPrefix, sizeof(kPrefix)) == 0;
}

void keep_prefix(std::array<uint8_t, 16>* bytes, unsigned bits) noexcept {
  for (unsigned i = 0; i < bytes->size(); ++i) {
    const unsigned start = i * 8;
    if (start >= bits) {
      (*bytes)[i] = 0;
    } else if (bits - start < 8) {
      (*bytes)[i] = static_cast<uint8_t>((*bytes)[i] & (0xff00u >> (bits - start)));
    }
  }
}

}  // namespace

std::optional<AddressKey> address_key(const sockaddr* address,
                                      unsigned ipv6_prefix_bits) noexcept {
  if (address == nullptr) return std::nullopt;
  AddressKey key;
  if (address->sa_family == AF_INET) {
    sockaddr_in sin{};
    std::memcpy(&sin, address, sizeof(sin));
    key.bytes[10] = 0xff;
    key.bytes[11] = 0xff;
    std::memcpy(key.bytes.data() + 12, &sin.sin_addr, 4);
    return key;
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, address, sizeof(sin6));
    std::memcpy(key.bytes.data(), &sin6.sin6_addr, 16);
    if (!is_v4_mapped(key.bytes)) {
      keep_prefix(&key.bytes, ipv6_prefix_bits < kIpv6Bits ? ipv6_prefix_bits : kIpv6Bits);
    }
    return key;
  }
  return std::nullopt;
}

KeyHasher KeyHasher::random() {
  std::random_device device;
  const auto draw64 = [&device] { return uint64_t{device()} << 32 | device(); };
  const uint64_t k0 = draw64();
  return KeyHasher(k0, draw64());
}

uint64_t KeyHasher::operator()(const AddressKey& key) const noexcept {
  return siphash24(k0_, k1_, key.bytes.data(), key.bytes.size());
}

uint64_t KeyHasher::operator()(const UserKey& key) const noexcept {
  uint8_t bytes[16];
  std::memcpy(bytes, &key.tenant_id, 8);
  std::memcpy(bytes + 8, &key.user_id, 8);
  return siphash24(k0_, k1_, bytes, sizeof(bytes));
}

uint64_t KeyHasher::operator()(const TenantKey& key) const noexcept {
  uint8_t bytes[8];
  std::memcpy(bytes, &key.tenant_id, 8);
  return siphash24(k0_, k1_, bytes, sizeof(bytes));
}

}  // namespace popgate::limits
