// popgate-bench-ref: the in-memory reference POP3 responder, a ceiling for
// this machine. It serves the benchmark dataset (bench/common/dataset.h)
// from memory, every reply precomputed at startup (RETR bodies already
// stuffed), with the protocol subset the load generator uses: USER, PASS,
// STAT, LIST, UIDL, RETR, NOOP, CAPA, QUIT. No database, no KDF (PASS is a
// string compare), no locks, no limits: what is left is the cost of
// connections, syscalls, TLS and copying bytes, so popgate's and Dovecot's
// figures read as fractions of it.
//
//   popgate-bench-ref --dataset D [--groups a,b] --port P [--tls-port T
//       --cert C --key K] [--threads N] [--ready-file F]
//
// One epoll thread per core, each with its own SO_REUSEPORT listeners.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/common/dataset.h"
#include "bench/common/proc_stats.h"

namespace popgate::bench {
namespace {

constexpr size_t kLineBytesMax = 512;
constexpr size_t kReadChunkBytes = 16 * 1024;
constexpr size_t kEventsMax = 256;
constexpr int kBacklog = 4096;
constexpr uint64_t kFdLimit = 1'100'000;

struct Maildrop {
  std::string stat;   // "+OK n size\r\n"
  std::string list;   // whole LIST reply
  std::string uidl;   // whole UIDL reply
  std::vector<uint32_t> sizes;
  std::vector<std::string> retr;  // "+OK n octets\r\n" + stuffed text + ".\r\n"
};

std::string stuffed_reply(const std::string& text) {
  std::string out = "+OK " + std::to_string(text.size()) + " octets\r\n";
  out.reserve(out.size() + text.size() + text.size() / 64 + 8);
  bool line_start = true;
  for (const char ch : text) {
    if (line_start && ch == '.') out += '.';
    out += ch;
    line_start = ch == '\n';
  }
  out += ".\r\n";
  return out;
}

Maildrop make_maildrop(const GroupSpec& spec, uint32_t user) {
  Maildrop m;
  uint64_t total = 0;
  m.list = "+OK\r\n";
  m.uidl = "+OK\r\n";
  for (uint32_t i = 0; i < spec.messages_per_user; ++i) {
    const std::string text = make_message(spec, user, i);
    m.sizes.push_back(uint32_t(text.size()));
    total += text.size();
    m.list += std::to_string(i + 1) + " " + std::to_string(text.size()) + "\r\n";
    char uid[32];
    std::snprintf(uid, sizeof uid, "%u %08x%08x\r\n", i + 1, user, i);
    m.uidl += uid;
    m.retr.push_back(stuffed_reply(text));
  }
  m.list += ".\r\n";
  m.uidl += ".\r\n";
  m.stat = "+OK " + std::to_string(spec.messages_per_user) + " " + std::to_string(total) + "\r\n";
  return m;
}

struct Store {
  std::unordered_map<std::string, Maildrop> by_login;
};

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  bool handshaking = false;
  std::string in;
  std::string small;          // short replies live here
  const char* out = nullptr;  // pending output
  size_t out_len = 0;
  const Maildrop* user = nullptr;  // after USER
  bool logged_in = false;
  bool quitting = false;
};

class Server {
 public:
  Server(const Store& store, SSL_CTX* tls, uint16_t port, uint16_t tls_port)
      : store_(store), tls_(tls), port_(port), tls_port_(tls_port) {}

  // Binds this thread's listeners; false on failure.
  bool bind() {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    plain_ = listen_on(port_);
    if (plain_ < 0) return false;
    if (tls_ != nullptr) {
      secure_ = listen_on(tls_port_);
      if (secure_ < 0) return false;
    }
    return true;
  }
  uint16_t bound_port(bool tls) const { return local_port(tls ? secure_ : plain_); }

  void run() {
    std::vector<epoll_event> events(kEventsMax);
    for (;;) {
      const int n = ::epoll_wait(epoll_, events.data(), int(events.size()), -1);
      for (int i = 0; i < n; ++i) {
        const epoll_event& e = events[size_t(i)];
        const int fd = e.data.fd;
        if (fd == plain_ || fd == secure_) {
          accept_all(fd, fd == secure_);
          continue;
        }
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        serve(*it->second, e.events);
      }
    }
  }

 private:
  int listen_on(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, kBacklog) != 0) {
      std::cerr << "popgate-bench-ref: bind/listen port " << port << ": " << std::strerror(errno) << "\n";
      ::close(fd);
      return -1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    return fd;
  }

  static uint16_t local_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }

  void accept_all(int listener, bool tls) {
    for (;;) {
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      if (tls) {
        c->ssl = SSL_new(tls_);
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
        c->handshaking = true;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.fd = fd;
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
      Conn& ref = *c;
      conns_[fd] = std::move(c);
      if (!tls) reply_small(ref, "+OK popgate-bench-ref ready\r\n");
      serve(ref, EPOLLIN | EPOLLOUT);
    }
  }

  void close_conn(Conn& c) {
    if (c.ssl != nullptr) {
      (void)SSL_shutdown(c.ssl);
      SSL_free(c.ssl);
    }
    ::close(c.fd);
    conns_.erase(c.fd);  // destroys c
  }

  void reply_small(Conn& c, std::string_view text) {
    c.small.assign(text);
    c.out = c.small.data();
    c.out_len = c.small.size();
  }
  void reply_view(Conn& c, const std::string& text) {
    c.out = text.data();
    c.out_len = text.size();
  }

  // Returns false when the connection was closed.
  bool flush(Conn& c) {
    while (c.out_len > 0) {
      ssize_t n = 0;
      if (c.ssl != nullptr) {
        const int r = SSL_write(c.ssl, c.out, int(std::min<size_t>(c.out_len, 1 << 30)));
        if (r <= 0) {
          const int e = SSL_get_error(c.ssl, r);
          if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return true;
          close_conn(c);
          return false;
        }
        n = r;
      } else {
        n = ::send(c.fd, c.out, c.out_len, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) return true;
          close_conn(c);
          return false;
        }
      }
      c.out += n;
      c.out_len -= size_t(n);
    }
    if (c.quitting) {
      close_conn(c);
      return false;
    }
    return true;
  }

  void serve(Conn& c, uint32_t) {
    if (c.handshaking) {
      ERR_clear_error();
      const int r = SSL_do_handshake(c.ssl);
      if (r != 1) {
        const int e = SSL_get_error(c.ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) close_conn(c);
        return;
      }
      c.handshaking = false;
      reply_small(c, "+OK popgate-bench-ref ready\r\n");
    }
    for (;;) {
      if (!flush(c)) return;
      if (c.out_len > 0) return;  // wait for EPOLLOUT
      // Commands queued from an earlier read?
      const size_t lf = c.in.find('\n');
      if (lf != std::string::npos) {
        std::string line = c.in.substr(0, lf);
        c.in.erase(0, lf + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        command(c, line);
        continue;
      }
      char buf[kReadChunkBytes];
      ssize_t n = 0;
      if (c.ssl != nullptr) {
        ERR_clear_error();
        const int r = SSL_read(c.ssl, buf, sizeof buf);
        if (r <= 0) {
          const int e = SSL_get_error(c.ssl, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
          close_conn(c);
          return;
        }
        n = r;
      } else {
        n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          close_conn(c);
          return;
        }
        if (n < 0) return;
      }
      c.in.append(buf, size_t(n));
      if (c.in.size() > kLineBytesMax && c.in.find('\n') == std::string::npos) {
        close_conn(c);
        return;
      }
    }
  }

  static std::string upper(std::string_view s) {
    std::string out(s);
    for (char& ch : out) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    return out;
  }

  // msn argument -> index, or -1.
  static long msn_index(std::string_view arg, const Maildrop& m) {
    if (arg.empty() || arg.size() > 9) return -1;
    long v = 0;
    for (const char ch : arg) {
      if (ch < '0' || ch > '9') return -1;
      v = v * 10 + (ch - '0');
    }
    return v >= 1 && size_t(v) <= m.sizes.size() ? v - 1 : -1;
  }

  void command(Conn& c, const std::string& line) {
    const size_t sp = line.find(' ');
    const std::string verb = upper(line.substr(0, sp));
    const std::string_view arg = sp == std::string::npos ? std::string_view() : std::string_view(line).substr(sp + 1);
    if (verb == "QUIT") {
      c.quitting = true;
      reply_small(c, "+OK bye\r\n");
      return;
    }
    if (verb == "NOOP") return reply_small(c, "+OK\r\n");
    if (verb == "CAPA") return reply_small(c, "+OK\r\nUSER\r\nUIDL\r\nPIPELINING\r\n.\r\n");
    if (!c.logged_in) {
      if (verb == "USER") {
        auto it = store_.by_login.find(std::string(arg));
        c.user = it == store_.by_login.end() ? nullptr : &it->second;
        return reply_small(c, "+OK\r\n");
      }
      if (verb == "PASS" && c.user != nullptr && arg == kBenchPassword) {
        c.logged_in = true;
        return reply_small(c, "+OK logged in\r\n");
      }
      return reply_small(c, "-ERR [AUTH] no\r\n");
    }
    const Maildrop& m = *c.user;
    if (verb == "STAT") return reply_view(c, m.stat);
    if (verb == "LIST" || verb == "UIDL") {
      if (arg.empty()) return reply_view(c, verb == "LIST" ? m.list : m.uidl);
      const long i = msn_index(arg, m);
      if (i < 0) return reply_small(c, "-ERR no such message\r\n");
      char b[64];
      if (verb == "LIST") {
        std::snprintf(b, sizeof b, "+OK %ld %u\r\n", i + 1, m.sizes[size_t(i)]);
      } else {
        std::snprintf(b, sizeof b, "+OK %ld %08x%08lx\r\n", i + 1, 0U, i);
      }
      return reply_small(c, b);
    }
    if (verb == "RETR") {
      const long i = msn_index(arg, m);
      if (i < 0) return reply_small(c, "-ERR no such message\r\n");
      return reply_view(c, m.retr[size_t(i)]);
    }
    reply_small(c, "-ERR unknown command\r\n");
  }

  const Store& store_;
  SSL_CTX* tls_;
  uint16_t port_;
  uint16_t tls_port_;
  int epoll_ = -1;
  int plain_ = -1;
  int secure_ = -1;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
};

}  // namespace
}  // namespace popgate::bench

int main(int argc, char** argv) {
  using namespace popgate::bench;
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"popgate-bench-ref: in-memory reference POP3 responder (a ceiling)"};
  std::string dataset = "full";
  std::string groups;
  uint16_t port = 0;
  uint16_t tls_port = 0;
  std::string cert;
  std::string key;
  unsigned threads = std::max(1U, std::thread::hardware_concurrency());
  std::string ready_file;
  app.add_option("--dataset", dataset, "full, quick or smoke");
  app.add_option("--groups", groups, "comma-separated groups to serve (default: all)");
  app.add_option("--port", port, "plain POP3 port (0: pick one)");
  app.add_option("--tls-port", tls_port, "implicit-TLS port (0: pick one); needs --cert and --key");
  app.add_option("--cert", cert, "certificate chain (PEM)");
  app.add_option("--key", key, "private key (PEM)");
  app.add_option("--threads", threads, "threads");
  app.add_option("--ready-file", ready_file, "written with 'pop3 host:port' / 'pop3s host:port' once serving");
  CLI11_PARSE(app, argc, argv);
  const auto size = dataset_size_from_name(dataset);
  if (!size) {
    std::cerr << "popgate-bench-ref: --dataset full, quick or smoke\n";
    return 2;
  }
  raise_fd_limit(kFdLimit);
  Store store;
  std::vector<Group> list;
  if (groups.empty()) {
    for (size_t i = 0; i < kGroupCount; ++i) list.push_back(Group(i));
  } else {
    std::stringstream in(groups);
    std::string item;
    while (std::getline(in, item, ',')) {
      const auto g = group_from_name(item);
      if (!g) {
        std::cerr << "popgate-bench-ref: unknown group " << item << "\n";
        return 2;
      }
      list.push_back(*g);
    }
  }
  for (const Group g : list) {
    const GroupSpec& spec = group_spec(g, *size);
    for (uint32_t u = 0; u < spec.users; ++u) store.by_login.emplace(login_name(spec, u), make_maildrop(spec, u));
  }
  SSL_CTX* tls = nullptr;
  if (!cert.empty()) {
    tls = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(tls, cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls, key.c_str(), SSL_FILETYPE_PEM) != 1) {
      std::cerr << "popgate-bench-ref: cannot load " << cert << " / " << key << "\n";
      return 2;
    }
  }
  // The first thread picks the ports (0 = any); the others share them.
  std::vector<std::unique_ptr<Server>> servers;
  for (unsigned t = 0; t < threads; ++t) {
    servers.push_back(std::make_unique<Server>(store, tls, port, tls_port));
    if (!servers.back()->bind()) return 1;
    if (t == 0) {
      port = servers[0]->bound_port(false);
      if (tls != nullptr) tls_port = servers[0]->bound_port(true);
    }
  }
  if (!ready_file.empty()) {
    std::ofstream f(ready_file + ".tmp");
    f << "127.0.0.1:" << port << "\npop3 127.0.0.1:" << port << "\n";
    if (tls != nullptr) f << "pop3s 127.0.0.1:" << tls_port << "\n";
    f.close();
    std::rename((ready_file + ".tmp").c_str(), ready_file.c_str());
  }
  std::vector<std::thread> running;
  for (auto& s : servers) running.emplace_back([&s] { s->run(); });
  for (auto& t : running) t.join();
  return 0;
}
