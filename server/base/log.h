// Structured logs: one JSON object per line on stdout.
//
// A Line is built on the caller's stack and handed to a writer thread
// through a bounded byte queue, so a shard never waits on a slow stdout;
// when the queue is full the line is dropped and counted. Check the level
// first (POPGATE_LOG does) so disabled lines cost one relaxed load.
//
// Keys are fixed strings chosen by the caller; values are escaped. Never
// pass a password, a hash or message content.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace popgate::log {

enum class Level : uint8_t { kDebug, kInfo, kWarn, kError };

[[nodiscard]] bool parse_level(std::string_view text, Level* out) noexcept;
[[nodiscard]] std::string_view level_name(Level level) noexcept;

void set_level(Level level) noexcept;
[[nodiscard]] Level level() noexcept;
[[nodiscard]] inline bool enabled(Level l) noexcept;

// Starts the writer thread on `fd` (default stdout). Until started, lines
// are written synchronously (for tools and tests).
void start(int fd = 1);
// Flushes what is queued and stops the writer.
void stop() noexcept;
[[nodiscard]] uint64_t dropped() noexcept;

class Line {
 public:
  Line(Level level, std::string_view message) noexcept;
  ~Line();  // emits
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& str(std::string_view key, std::string_view value) noexcept;
  Line& num(std::string_view key, int64_t value) noexcept;
  Line& unum(std::string_view key, uint64_t value) noexcept;
  Line& boolean(std::string_view key, bool value) noexcept;

 private:
  void raw(std::string_view text) noexcept;
  void escaped(std::string_view text) noexcept;
  void key(std::string_view k) noexcept;

  static constexpr size_t kLineBytesMax = 4096;
  std::array<char, kLineBytesMax> buf_;
  size_t len_ = 0;
  bool truncated_ = false;
};

namespace detail {
extern std::atomic<uint8_t> g_level;
}
inline bool enabled(Level l) noexcept {
  return static_cast<uint8_t>(l) >= detail::g_level.load(std::memory_order_relaxed);
}

}  // namespace popgate::log

// POPGATE_LOG(kInfo, "session_end").str("user", u).unum("bytes", n);
#define POPGATE_LOG(lvl, message)                                        \
  if (!::popgate::log::enabled(::popgate::log::Level::lvl)) {            \
  } else                                                                 \
    ::popgate::log::Line(::popgate::log::Level::lvl, message)
