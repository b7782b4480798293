// Randomness for salts, nonces and keys: OpenSSL's CSPRNG, plus one secret
// per process for values that must be stable within a process but
// unpredictable outside it (fake SCRAM salts for unknown users).
// Must not know: what the bytes are for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace popgate::auth {

inline constexpr size_t kProcessSecretBytes = 32;

// False only when the system has no randomness to give (then fail closed).
[[nodiscard]] bool random_bytes(std::span<uint8_t> out) noexcept;

// 32 random bytes drawn on first use (thread-safe), the same until exit.
// Aborts the process if no randomness is available: nothing else in
// authentication could be trusted then.
[[nodiscard]] std::span<const uint8_t, kProcessSecretBytes> process_secret() noexcept;

}  // namespace popgate::auth
