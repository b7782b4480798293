// Filling sockaddr_storage from raw address bytes, for the v1 and v2
// decoders. Ports are taken in host order and stored in network order.
// Must not know: where the bytes came from.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <cstring>

namespace popgate::proxy {

inline void set_inet4(const uint8_t* address4, uint16_t port, sockaddr_storage* out,
                      socklen_t* out_len) noexcept {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  std::memcpy(&sin.sin_addr, address4, 4);
  *out = sockaddr_storage{};
  std::memcpy(out, &sin, sizeof(sin));
  *out_len = sizeof(sin);
}

inline void set_inet6(const uint8_t* address16, uint16_t port, sockaddr_storage* out,
                      socklen_t* out_len) noexcept {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  std::memcpy(&sin6.sin6_addr, address16, 16);
  *out = sockaddr_storage{};
  std::memcpy(out, &sin6, sizeof(sin6));
  *out_len = sizeof(sin6);
}

// `path` is the 108-byte sun_path as sent (not necessarily NUL-terminated;
// a leading NUL means an abstract socket).
inline void set_unix(const char* path, sockaddr_storage* out, socklen_t* out_len) noexcept {
  sockaddr_un sun{};
  static_assert(sizeof(sun.sun_path) == 108, "spec 2.2: AF_UNIX addresses are 108 bytes");
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path, sizeof(sun.sun_path));
  *out = sockaddr_storage{};
  std::memcpy(out, &sun, sizeof(sun));
  *out_len = sizeof(sun);
}

}  // namespace popgate::proxy
