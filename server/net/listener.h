// Listening sockets: one per shard on the same address (SO_REUSEPORT), so
// the kernel spreads connections across shards and each shard accepts on
// its own ring. Created before the shards start, so a bad address fails
// startup with a clear message.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace popgate::net {

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// "127.0.0.1:1110", "[::1]:110", "0.0.0.0:995". Numeric hosts only: no DNS
// at startup. Returns false with *error set.
[[nodiscard]] bool parse_endpoint(std::string_view text, Endpoint* out, std::string* error);
[[nodiscard]] std::string format_endpoint(const sockaddr* addr, socklen_t len);
// The same into a caller's buffer (no allocation); returns the length.
size_t format_endpoint(const sockaddr* addr, socklen_t len, char* out, size_t capacity) noexcept;

// `count` non-blocking listening sockets bound to one address. Port 0 picks
// a free port once and binds every socket to it. Returns the fds (empty on
// failure, with *error set) and the bound endpoint in *bound.
[[nodiscard]] std::vector<int> open_listeners(const Endpoint& endpoint, unsigned count, int backlog,
                                              Endpoint* bound, std::string* error);

}  // namespace popgate::net
