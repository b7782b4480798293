// APOP (RFC 1939 section 7): the timestamp banner the greeting carries and
// the check of a client's digest, MD5(banner || shared secret).
//
// APOP needs the secret itself on the server (users.apop_secret): a user has
// one only after opting in, and a listener offers APOP only when enabled.
// Both functions are noexcept and allocation-free: the shard calls them on
// its own thread.
// Must not know: sessions, storage, where the inputs come from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace popgate::auth {

// "<" + 4 numbers of up to 20 digits + "@" + a 253-octet host name + ">".
inline constexpr size_t kApopBannerBytesMax = 2 + 4 * 21 + 253 + 1;

// What makes a banner unique. The shard fills these for each connection;
// tests pass fixed values.
struct ApopBannerInputs {
  uint64_t pid = 0;                // getpid()
  uint64_t connection_serial = 0;  // unique per connection within the process
  uint64_t random = 0;             // fresh random bits: unique across hosts and restarts too
  uint64_t clock = 0;              // e.g. seconds since the epoch
  std::string_view hostname;       // replaced by "localhost" unless a DNS name
};

// Writes "<pid.serial.random.clock@hostname>" (decimal numbers) into `out`
// and returns it; "" when `out` is shorter than kApopBannerBytesMax.
[[nodiscard]] std::string_view make_apop_banner(const ApopBannerInputs& inputs,
                                                std::span<char> out) noexcept;

// True when `hex_digest` (32 hex digits, either case) is MD5(banner ||
// secret). The banner is the whole "<...>" as sent. An empty secret never
// matches. Constant-time in the digest.
[[nodiscard]] bool apop_matches(std::string_view banner, std::string_view secret,
                                std::string_view hex_digest) noexcept;

}  // namespace popgate::auth
