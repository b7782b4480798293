// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash. The limit
// tables hash client-chosen keys (addresses, user IDs) with a secret key so
// that clients cannot aim many keys at one stripe or probe sequence.
// Must not know: what is being hashed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace popgate::limits {

[[nodiscard]] uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t* data,
                                 size_t size) noexcept;

}  // namespace popgate::limits
