// ReplyReader: the client side of POP3 replies, checked as they stream in,
// so that a fast but wrong server cannot score. It checks:
//   - the status line: "+OK" or "-ERR", then end of line or a space; CRLF;
//     at most kStatusLineBytesMax octets (RFC 2449);
//   - multi-line replies: every line ends in CRLF; a line that starts with
//     '.' is either the terminator ".\r\n" or stuffed (".."); the reply ends
//     with the terminator;
//   - LIST and UIDL listings: "msn SP size" / "msn SP uid", msn counting up
//     from 1 without gaps, sizes decimal, UIDs 1-70 printable octets;
//   - message text (RETR): the unstuffed octet count, and the dataset's
//     trailer (bench/common/dataset.h): the CRC-32C of everything before the
//     last line.
// Sans-I/O: bytes in, a verdict out. Input may be split anywhere.
// Must not know: sockets, TLS, which command was sent.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace popgate::bench {

// RFC 2449 section 4: a status line is at most 512 octets with its CRLF.
inline constexpr size_t kStatusLineBytesMax = 512;
// LIST/UIDL/CAPA lines: no legal one comes near this (UIDs are <= 70).
inline constexpr size_t kListingLineBytesMax = 512;
// RFC 1939 section 7: a unique-id is 1 to 70 characters 0x21-0x7E.
inline constexpr size_t kUidBytesMax = 70;

class ReplyReader {
 public:
  enum class Shape : uint8_t {
    kStatus,   // single line (greeting, USER, PASS, STAT, LIST n, DELE, QUIT ...)
    kList,     // LIST: +OK then a scan listing
    kUidl,     // UIDL: +OK then a unique-id listing
    kMessage,  // RETR: +OK then message text
    kLines,    // any other multi-line reply (CAPA): stuffing rules only
  };
  enum class Status : uint8_t { kNeedMore, kDone, kViolation };

  // Starts a new reply of this shape. For kList and kUidl:
  //   `sizes` (kList): filled with the listed sizes (cleared first);
  //   `capture`: receives the listing as sent, terminator included;
  //   `reference`: a listing captured earlier in the same session; the
  //     listing must equal it octet for octet (a maildrop does not change
  //     within a session), which checks it at memcmp speed. Nothing else is
  //     parsed then: entries() and sizes_sum() stay 0.
  // Any of them may be null.
  void expect(Shape shape, std::vector<uint32_t>* sizes = nullptr, std::string* capture = nullptr,
              const std::string* reference = nullptr) noexcept;

  // Consumes reply bytes. On kDone, *consumed ends at the reply's last LF;
  // later bytes belong to the next reply. On kViolation, violation() says
  // why and the connection is unusable.
  [[nodiscard]] Status feed(std::string_view in, size_t* consumed) noexcept;

  // After kDone.
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  // Without CRLF, as sent.
  [[nodiscard]] std::string_view status_line() const noexcept {
    return {status_.data(), status_len_};
  }
  // "+OK <n> octets" (RETR status): n, or -1 when the line says otherwise.
  [[nodiscard]] int64_t status_octets() const noexcept;
  // Listing entries (kList, kUidl) or lines (kLines); 0 for kMessage.
  [[nodiscard]] uint64_t entries() const noexcept { return entries_; }
  // kList: the sum of the listed sizes.
  [[nodiscard]] uint64_t sizes_sum() const noexcept { return sizes_sum_; }
  // kMessage: unstuffed octets, CRLFs included, terminator excluded.
  [[nodiscard]] uint64_t body_octets() const noexcept { return body_octets_; }
  // kMessage: the last line is a dataset trailer whose CRC matches.
  [[nodiscard]] bool trailer_ok() const noexcept { return trailer_ok_; }
  // Message-text octets fed so far in the current reply (for MB/s while
  // streaming): stuffed, as on the wire.
  [[nodiscard]] uint64_t wire_body_octets() const noexcept { return wire_body_octets_; }

  [[nodiscard]] std::string_view violation() const noexcept { return violation_; }

 private:
  enum class Phase : uint8_t { kStatusLine, kListing, kBody, kDone, kViolation };
  enum class Dot : uint8_t { kNone, kDot, kDotCr };
  static constexpr size_t kHeadBytes = 64;  // of each text line, for the trailer

  Status fail(std::string_view why) noexcept;
  Status feed_status(std::string_view in, size_t* used) noexcept;
  Status finish_status() noexcept;
  Status feed_listing(std::string_view in, size_t* used) noexcept;
  Status finish_listing_line(std::string_view line) noexcept;
  Status feed_reference(std::string_view in, size_t* used) noexcept;
  Status feed_body(std::string_view in, size_t* used) noexcept;
  void hash(std::string_view bytes) noexcept;
  void complete_through(std::string_view in, size_t from, size_t lf) noexcept;
  void partial_line(std::string_view in, size_t from) noexcept;
  void begin_text_line() noexcept;
  Status finish_body() noexcept;

  Shape shape_ = Shape::kStatus;
  Phase phase_ = Phase::kStatusLine;
  bool ok_ = false;
  std::vector<uint32_t>* sizes_ = nullptr;
  std::string* capture_ = nullptr;
  const std::string* reference_ = nullptr;
  size_t reference_at_ = 0;

  std::array<char, kStatusLineBytesMax> status_{};
  size_t status_len_ = 0;
  std::array<char, kListingLineBytesMax> line_{};
  size_t line_len_ = 0;

  uint64_t entries_ = 0;
  uint64_t sizes_sum_ = 0;

  // Message text. Lines are not visited one by one: the text is scanned
  // (SSE2) for line ends followed by '.', and hashed in bulk; only the
  // current line's head and the last complete line are kept, for the trailer.
  Dot dot_ = Dot::kNone;
  bool line_start_ = true;
  bool prev_cr_ = false;
  uint32_t crc_ = 0;
  uint32_t crc_line_start_ = 0;  // crc_ where the current line began
  uint32_t crc_prev_line_start_ = 0;
  std::array<char, kHeadBytes> head_{};  // of the current line
  size_t text_line_len_ = 0;
  std::array<char, kHeadBytes> prev_head_{};
  size_t prev_line_len_ = 0;
  uint64_t body_octets_ = 0;
  uint64_t wire_body_octets_ = 0;
  bool trailer_ok_ = false;

  std::string_view violation_;
};

}  // namespace popgate::bench
