// popgate-bench-loopback: the raw ceilings of this machine's loopback, so
// every POP3 figure can be read as a fraction of them.
//   stream: N TCP connections over 127.0.0.1, each pushing 1 MiB writes as
//           fast as the kernel takes them; the reader discards. GB/s.
//   connect: N threads connecting, the server accepting and closing at
//           once, the client reading EOF and closing. Connections/s.
// Prints human text and one JSON line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>
#include <vector>

#include "bench/common/proc_stats.h"

namespace {

constexpr size_t kWriteBytes = 1 << 20;
constexpr size_t kReadBytes = 256 * 1024;
constexpr int kBacklog = 4096;

using Clock = std::chrono::steady_clock;

int listen_any(uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, kBacklog) != 0) {
    std::perror("bind/listen");
    std::exit(1);
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

int connect_to(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

double stream(unsigned pairs, double seconds) {
  uint16_t port = 0;
  const int lfd = listen_any(&port);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bytes{0};
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < pairs; ++i) {
    const int c = connect_to(port);
    const int s = ::accept(lfd, nullptr, nullptr);
    threads.emplace_back([c, &stop] {
      std::vector<char> buf(kWriteBytes, 'x');
      while (!stop.load(std::memory_order_relaxed)) {
        if (::send(c, buf.data(), buf.size(), MSG_NOSIGNAL) <= 0) break;
      }
      ::shutdown(c, SHUT_WR);
    });
    threads.emplace_back([s, &bytes] {
      std::vector<char> buf(kReadBytes);
      for (;;) {
        const ssize_t n = ::recv(s, buf.data(), buf.size(), 0);
        if (n <= 0) break;
        bytes.fetch_add(uint64_t(n), std::memory_order_relaxed);
      }
    });
  }
  const auto t0 = Clock::now();
  const uint64_t b0 = bytes.load();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t b1 = bytes.load();
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  for (auto& t : threads) t.join();
  ::close(lfd);
  return double(b1 - b0) / dt;
}

double connects(unsigned threads_n, double seconds) {
  uint16_t port = 0;
  const int lfd = listen_any(&port);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  // Accepts until the listener is shut down, after every client stopped:
  // a client waiting for its connection to be closed must get its close.
  std::thread acceptor([lfd] {
    for (;;) {
      const int s = ::accept(lfd, nullptr, nullptr);
      if (s < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      ::close(s);
    }
  });
  std::vector<std::thread> clients;
  for (unsigned i = 0; i < threads_n; ++i) {
    clients.emplace_back([port, &stop, &done] {
      char b[16];
      while (!stop.load(std::memory_order_relaxed)) {
        const int c = connect_to(port);
        if (c < 0) continue;
        while (::recv(c, b, sizeof b, 0) > 0) {
        }
        ::close(c);
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  const auto t0 = Clock::now();
  const uint64_t n0 = done.load();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t n1 = done.load();
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  for (auto& t : clients) t.join();
  // Wakes the acceptor (accept() fails on a shut-down listener). A connect
  // would not do: the ephemeral ports may all be in TIME_WAIT by now.
  ::shutdown(lfd, SHUT_RDWR);
  acceptor.join();
  ::close(lfd);
  return double(n1 - n0) / dt;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"popgate-bench-loopback: raw loopback ceilings (stream GB/s, connections/s)"};
  double seconds = 3;
  unsigned threads = std::max(1U, std::thread::hardware_concurrency());
  app.add_option("--duration-s", seconds, "per measurement")->check(CLI::Range(0.1, 600.0));
  app.add_option("--threads", threads, "parallel streams / connecting threads (besides 1)");
  CLI11_PARSE(app, argc, argv);
  const double cpu0 = popgate::bench::self_cpu_seconds();
  const double one = stream(1, seconds);
  const double many = stream(threads, seconds);
  const double conn1 = connects(1, seconds);
  const double conn = connects(threads, seconds);
  const double cpu = popgate::bench::self_cpu_seconds() - cpu0;
  std::printf("loopback stream, 1 connection:  %.2f GB/s\n", one / 1e9);
  std::printf("loopback stream, %u connections: %.2f GB/s\n", threads, many / 1e9);
  std::printf("connect+accept+close, 1 thread:  %.0f /s\n", conn1);
  std::printf("connect+accept+close, %u threads: %.0f /s\n", threads, conn);
  std::printf(
      "{\"tool\":\"popgate-bench-loopback\",\"stream_1_mb_per_s\":%.1f,\"stream_n_mb_per_s\":%.1f,"
      "\"streams\":%u,\"connects_1_per_s\":%.0f,\"connects_n_per_s\":%.0f,\"cpu_s\":%.2f}\n",
      one / 1e6, many / 1e6, threads, conn1, conn, cpu);
  return 0;
}
