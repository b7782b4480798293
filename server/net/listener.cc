#include "server/net/listener.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <algorithm>
#include <cstdio>
#include <cstring>

namespace popgate::net {

bool parse_endpoint(std::string_view text, Endpoint* out, std::string* error) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    *error = "expected host:port, got '" + std::string(text) + "'";
    return false;
  }
  std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    *error = "bad port in '" + std::string(text) + "'";
    return false;
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  *out = Endpoint{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in6);
    return true;
  }
  *error = "host must be a numeric IPv4 or IPv6 address, got '" + host + "'";
  return false;
}

size_t format_endpoint(const sockaddr* addr, socklen_t len, char* out, size_t capacity) noexcept {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  bool v6 = false;
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
    port = ntohs(in4->sin_port);
  } else if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    v6 = true;
  }
  const int n = std::snprintf(out, capacity, v6 ? "[%s]:%u" : "%s:%u", host, port);
  return n < 0 ? 0 : std::min(static_cast<size_t>(n), capacity - 1);
}

std::string format_endpoint(const sockaddr* addr, socklen_t len) {
  char buf[INET6_ADDRSTRLEN + 16];
  const size_t n = format_endpoint(addr, len, buf, sizeof buf);
  return std::string(buf, n);
}

std::vector<int> open_listeners(const Endpoint& endpoint, unsigned count, int backlog,
                                Endpoint* bound, std::string* error) {
  std::vector<int> fds;
  error->clear();
  Endpoint target = endpoint;
  for (unsigned i = 0; i < count; ++i) {
    const int fd = socket(target.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *error = std::string("socket: ") + std::strerror(errno);
      break;
    }
    fds.push_back(fd);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      *error = std::string("SO_REUSEPORT: ") + std::strerror(errno);
      break;
    }
    if (bind(fd, reinterpret_cast<const sockaddr*>(&target.addr), target.len) != 0) {
      *error = "bind " + format_endpoint(reinterpret_cast<const sockaddr*>(&target.addr), target.len) +
               ": " + std::strerror(errno);
      break;
    }
    if (listen(fd, backlog) != 0) {
      *error = std::string("listen: ") + std::strerror(errno);
      break;
    }
    if (i == 0) {
      // With port 0 the kernel chose one; every other shard binds to it.
      target.len = sizeof target.addr;
      getsockname(fd, reinterpret_cast<sockaddr*>(&target.addr), &target.len);
      *bound = target;
    }
  }
  if (fds.size() != count || !error->empty()) {
    for (int fd : fds) close(fd);
    fds.clear();
  }
  return fds;
}

}  // namespace popgate::net
