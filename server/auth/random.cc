#include "server/auth/random.h"

#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace popgate::auth {

bool random_bytes(std::span<uint8_t> out) noexcept {
  if (out.empty()) return true;
  return RAND_bytes(out.data(), static_cast<int>(out.size())) == 1;
}

std::span<const uint8_t, kProcessSecretBytes> process_secret() noexcept {
  static const std::array<uint8_t, kProcessSecretBytes> secret = [] {
    std::array<uint8_t, kProcessSecretBytes> made{};
    if (!random_bytes(made)) {
      std::fputs("popgate: no randomness for the process secret\n", stderr);
      std::abort();
    }
    return made;
  }();
  return secret;
}

}  // namespace popgate::auth
