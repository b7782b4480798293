// Status lines and the one place where store outcomes become RFC 2449 /
// RFC 3206 response codes. Lines are built in a fixed buffer, never longer
// than kReplyLineBytesMax including CRLF; text past that is cut.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/pop3/limits.h"

namespace popgate::pop3 {

// What the store (or the KDF pool) said, as the protocol core sees it.
enum class StoreStatus : uint8_t {
  kOk,
  kNotFound,
  kInUse,      // -> [IN-USE]
  kTemporary,  // -> [SYS/TEMP]
  kPermanent,  // -> [SYS/PERM]
};

// RFC 2449 / RFC 3206 / RFC 6856 response codes.
enum class RespCode : uint8_t { kNone, kInUse, kLoginDelay, kSysTemp, kSysPerm, kAuth, kUtf8 };

// The one translation of store outcomes into response codes.
[[nodiscard]] RespCode code_for(StoreStatus status) noexcept;
// "[IN-USE] ", "[SYS/TEMP] " ... or "" for kNone (with the trailing space).
[[nodiscard]] std::string_view response_code(RespCode code) noexcept;

class LineBuilder {
 public:
  LineBuilder& add(std::string_view text) noexcept;
  LineBuilder& add(uint64_t number) noexcept;
  // The line with CRLF appended (room for it is always kept).
  [[nodiscard]] std::string_view finish() noexcept;
  // The text so far, without CRLF.
  [[nodiscard]] std::string_view text() const noexcept { return {buf_.data(), len_}; }
  [[nodiscard]] size_t size() const noexcept { return len_; }

 private:
  static constexpr size_t kTextMax = kReplyLineBytesMax - 2;
  std::array<char, kReplyLineBytesMax> buf_{};
  size_t len_ = 0;
};

}  // namespace popgate::pop3
