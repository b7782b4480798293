#include "server/base/log.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

namespace popgate::log {
namespace detail {
std::atomic<uint8_t> g_level{static_cast<uint8_t>(Level::kInfo)};
}  // namespace detail

namespace {

// Bytes of log lines that may wait for the writer; beyond this, lines drop.
constexpr size_t kQueueBytesMax = 4 * 1024 * 1024;

struct Writer {
  std::mutex mu;
  std::condition_variable cv;
  std::string queue;  // reserved to kQueueBytesMax at start
  bool running = false;
  bool stopping = false;
  int fd = 1;
  std::thread thread;
  std::atomic<uint64_t> dropped{0};
};

Writer& writer() {
  static Writer w;
  return w;
}

void write_all(int fd, const char* data, size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere to report a failing log sink
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

void run_writer() {
  Writer& w = writer();
  std::string batch;
  batch.reserve(kQueueBytesMax);
  std::unique_lock lock(w.mu);
  for (;;) {
    w.cv.wait(lock, [&] { return w.stopping || !w.queue.empty(); });
    batch.swap(w.queue);
    const bool stop = w.stopping;
    lock.unlock();
    write_all(w.fd, batch.data(), batch.size());
    batch.clear();
    lock.lock();
    if (stop && w.queue.empty()) return;
  }
}

}  // namespace

bool parse_level(std::string_view text, Level* out) noexcept {
  if (text == "debug") *out = Level::kDebug;
  else if (text == "info") *out = Level::kInfo;
  else if (text == "warn") *out = Level::kWarn;
  else if (text == "error") *out = Level::kError;
  else return false;
  return true;
}

std::string_view level_name(Level level) noexcept {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

void set_level(Level level) noexcept {
  detail::g_level.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
}

Level level() noexcept { return static_cast<Level>(detail::g_level.load(std::memory_order_relaxed)); }

void start(int fd) {
  Writer& w = writer();
  std::lock_guard lock(w.mu);
  if (w.running) return;
  w.fd = fd;
  w.queue.reserve(kQueueBytesMax);
  w.stopping = false;
  w.running = true;
  w.thread = std::thread(run_writer);
}

void stop() noexcept {
  Writer& w = writer();
  {
    std::lock_guard lock(w.mu);
    if (!w.running) return;
    w.stopping = true;
  }
  w.cv.notify_one();
  w.thread.join();
  std::lock_guard lock(w.mu);
  w.running = false;
}

uint64_t dropped() noexcept { return writer().dropped.load(std::memory_order_relaxed); }

Line::Line(Level level, std::string_view message) noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[40];
  const size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  raw("{\"ts\":\"");
  raw(std::string_view(stamp, n));
  const auto millis = static_cast<unsigned>(ts.tv_nsec / 1'000'000) % 1000;
  const char ms[6] = {'.', static_cast<char>('0' + millis / 100), static_cast<char>('0' + millis / 10 % 10),
                      static_cast<char>('0' + millis % 10), 'Z', '\0'};
  raw(std::string_view(ms, 5));
  raw("\",\"level\":\"");
  raw(level_name(level));
  raw("\",\"msg\":\"");
  escaped(message);
  raw("\"");
}

void Line::raw(std::string_view text) noexcept {
  // Keep room for the closing "}\n" and a truncation marker.
  constexpr size_t kReserve = 32;
  const size_t room = kLineBytesMax - kReserve - len_;
  if (text.size() > room) {
    truncated_ = true;
    text = text.substr(0, room);
  }
  // An empty view may have a null data(), which memcpy must not be given
  // even for 0 octets (UBSan: a TLS version that was never negotiated).
  if (text.empty()) return;
  std::memcpy(buf_.data() + len_, text.data(), text.size());
  len_ += text.size();
}

void Line::escaped(std::string_view text) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
    raw(text.substr(start, i - start));
    char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
    if (c == '"' || c == '\\') {
      esc[1] = static_cast<char>(c);
      raw(std::string_view(esc, 2));
    } else {
      raw(std::string_view(esc, 6));
    }
    start = i + 1;
  }
  raw(text.substr(start));
}

void Line::key(std::string_view k) noexcept {
  raw(",\"");
  raw(k);
  raw("\":");
}

Line& Line::str(std::string_view k, std::string_view value) noexcept {
  key(k);
  raw("\"");
  escaped(value);
  raw("\"");
  return *this;
}

Line& Line::num(std::string_view k, int64_t value) noexcept {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  (void)ec;
  key(k);
  raw(std::string_view(digits, static_cast<size_t>(end - digits)));
  return *this;
}

Line& Line::unum(std::string_view k, uint64_t value) noexcept {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  (void)ec;
  key(k);
  raw(std::string_view(digits, static_cast<size_t>(end - digits)));
  return *this;
}

Line& Line::boolean(std::string_view k, bool value) noexcept {
  key(k);
  raw(value ? "true" : "false");
  return *this;
}

Line::~Line() {
  const char* tail = truncated_ ? ",\"truncated\":true}\n" : "}\n";
  const size_t tail_len = std::strlen(tail);
  std::memcpy(buf_.data() + len_, tail, tail_len);
  const size_t total = len_ + tail_len;
  Writer& w = writer();
  {
    std::unique_lock lock(w.mu);
    if (!w.running) {
      lock.unlock();
      write_all(2, buf_.data(), total);
      return;
    }
    if (w.queue.size() + total > kQueueBytesMax) {
      w.dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    w.queue.append(buf_.data(), total);
  }
  w.cv.notify_one();
}

}  // namespace popgate::log
