// PROXY protocol receiver (HAProxy "The PROXY protocol, versions 1 & 2",
// 2020/03/05): a resumable parser for the header a trusted load balancer
// puts in front of a connection, before any TLS or POP3 byte. It owns a copy
// of the header bytes (fixed buffer, no allocation) so that it can resume
// across reads and so that TLV values stay valid after the caller's receive
// buffer is given back.
// Must not know: sockets, listeners, which peers are trusted (see cidr.h),
// or what the shard does with the addresses.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace popgate::proxy {

// Spec 2.1: the longest v1 line, CRLF included ("PROXY UNKNOWN" with two
// full IPv6 addresses and ports). No CRLF within it: invalid.
inline constexpr size_t kProxyV1LineBytesMax = 107;
// Spec 2.2: signature (12), version/command, family/protocol, length (2).
inline constexpr size_t kProxyV2FixedBytes = 16;
// Longest v2 header we take. Addresses need at most 216 bytes (AF_UNIX) and
// the TLVs that senders really emit (authority <= 255, unique ID <= 128,
// ALPN, SSL strings, netns, CRC) fit well within 4 KiB; the wire field
// allows 64 KiB, which a client could make every pending connection hold
// before it has said anything. Longer headers are invalid.
inline constexpr size_t kProxyV2HeaderBytesMax = kProxyV2FixedBytes + 4096;
// Spec 2.2.5: PP2_TYPE_UNIQUE_ID is at most 128 bytes.
inline constexpr size_t kProxyV2UniqueIdBytesMax = 128;
// Spec 2: a receiver that times out waiting for the header should allow at
// least this much (one TCP retransmit). The shard owns the timer.
inline constexpr std::chrono::milliseconds kProxyHeaderTimeoutMin{3000};

// PP2_TYPE_SSL client bits (spec 2.2.6).
inline constexpr uint8_t kPp2ClientSsl = 0x01;
inline constexpr uint8_t kPp2ClientCertConn = 0x02;
inline constexpr uint8_t kPp2ClientCertSess = 0x04;

enum class ProxyVersion : uint8_t { kNone, kV1, kV2 };
// v1 lines are always kProxy. kLocal (v2 health checks and the like): use the
// real connection endpoints.
enum class ProxyCommand : uint8_t { kLocal, kProxy };
// v2 protocol nibble; v1 TCP4/TCP6 are kStream, v1 UNKNOWN is kUnspec.
enum class ProxyTransport : uint8_t { kUnspec, kStream, kDgram };

// Why a header was refused. Stable: the lead uses proxy_error_name() as a
// counter label, so add at the end and keep names.
enum class ProxyError : uint8_t {
  kNone,
  kNotProxy,                 // neither signature: a client that does not speak PROXY
  kV1TooLong,                // no CRLF within kProxyV1LineBytesMax
  kV1BadByte,                // control or non-ASCII byte in the line
  kV1BareCrOrLf,             // CR not followed by LF, or LF without CR
  kV1BadProtocol,            // not TCP4, TCP6 or UNKNOWN
  kV1BadSpacing,             // empty field: double, leading or trailing space
  kV1FieldCount,             // TCP4/TCP6 line without exactly 4 address fields
  kV1BadSourceAddress,
  kV1BadDestinationAddress,
  kV1FamilyMismatch,         // e.g. TCP4 with an IPv6 address
  kV1BadSourcePort,
  kV1BadDestinationPort,
  kV2BadVersion,             // version nibble other than 2
  kV2BadCommand,             // command other than LOCAL or PROXY
  kV2BadFamily,              // family/protocol byte not one of the spec's seven
  kV2TooLong,                // over kProxyV2HeaderBytesMax
  kV2ShortAddressBlock,      // length below the family's address block
  kV2TlvTruncated,           // fewer than 3 bytes left for a TLV's type and length
  kV2TlvOverrun,             // TLV value runs past the header end
  kV2DuplicateTlv,           // a TLV (or SSL sub-TLV) we interpret, twice
  kV2UniqueIdTooLong,        // over kProxyV2UniqueIdBytesMax
  kV2SslTooShort,            // SSL TLV without its 5-byte client/verify head
  kV2SslSubTlvTruncated,
  kV2SslSubTlvOverrun,
  kV2BadCrc32cLength,        // CRC32C TLV whose value is not 4 bytes
  kV2Crc32cMismatch,
  kCount,
};

// A short snake_case reason ("v2_crc32c_mismatch"), for logs and as a
// counter label; "none" for kNone.
[[nodiscard]] std::string_view proxy_error_name(ProxyError error) noexcept;

// PP2_TYPE_SSL. `present` is false when the TLV was absent; the strings are
// empty when their sub-TLV was absent.
struct ProxySsl {
  bool present = false;
  uint8_t client = 0;    // kPp2Client* bits
  uint32_t verify = 0;   // 0: the client's certificate was verified
  std::string_view version;
  std::string_view cn;
  std::string_view cipher;
  std::string_view sig_alg;
  std::string_view key_alg;
};

// What the header says. String views point into the ProxyParser that
// produced it: valid until that parser is reset or destroyed; copy what must
// outlive the PROXY stage. Values are bytes as sent (a TLV with an empty
// value reads as absent): escape them before logging.
struct ProxyHeader {
  ProxyVersion version = ProxyVersion::kNone;
  ProxyCommand command = ProxyCommand::kProxy;
  ProxyTransport transport = ProxyTransport::kUnspec;
  // False for v1 UNKNOWN, v2 LOCAL and v2 AF_UNSPEC: use the real peer.
  // When true, source and destination are AF_INET, AF_INET6 or AF_UNIX
  // (sun_path as sent, 108 bytes) with ports in network order.
  bool has_addresses = false;
  sockaddr_storage source{};
  socklen_t source_len = 0;
  sockaddr_storage destination{};
  socklen_t destination_len = 0;
  std::string_view authority;   // PP2_TYPE_AUTHORITY (SNI)
  std::string_view alpn;        // PP2_TYPE_ALPN
  std::string_view unique_id;   // PP2_TYPE_UNIQUE_ID, <= 128 bytes
  std::string_view netns;       // PP2_TYPE_NETNS
  ProxySsl ssl;
  bool crc32c_verified = false; // a CRC32C TLV was present and matched

  // True when the source is an IP address the limits can key on.
  [[nodiscard]] bool has_ip() const noexcept {
    return has_addresses && (source.ss_family == AF_INET || source.ss_family == AF_INET6);
  }
};

// One per connection in the PROXY stage (about 4.5 KiB). Feed it what arrives
// until it says kDone or kInvalid; bytes past the header are never consumed,
// so the caller hands `bytes.substr(consumed)` to TLS or POP3. Not copyable:
// the header's views point into it.
class ProxyParser {
 public:
  enum class Status : uint8_t {
    kNeedMore,  // all of `bytes` belonged to an unfinished header
    kDone,      // header() is valid; `consumed` ends exactly at the header end
    kInvalid,   // error() says why; close the connection
  };

  ProxyParser() noexcept = default;
  ProxyParser(const ProxyParser&) = delete;
  ProxyParser& operator=(const ProxyParser&) = delete;

  // Takes the header's bytes from the front of `bytes` and sets *consumed to
  // how many it took (all of them on kNeedMore; up to the header end on
  // kDone; unspecified on kInvalid). After kDone or kInvalid it takes nothing
  // and returns the same status again.
  [[nodiscard]] Status feed(std::string_view bytes, size_t* consumed) noexcept;

  // After kDone.
  [[nodiscard]] const ProxyHeader& header() const noexcept { return header_; }
  // After kInvalid; ProxyError::kNone otherwise.
  [[nodiscard]] ProxyError error_code() const noexcept { return error_; }
  [[nodiscard]] std::string_view error() const noexcept { return proxy_error_name(error_); }
  // Header bytes held so far.
  [[nodiscard]] size_t buffered() const noexcept { return len_; }
  // Ready for a new connection; invalidates header()'s views.
  void reset() noexcept;

 private:
  enum class Phase : uint8_t { kStart, kV1, kV2Fixed, kV2Body, kFinished };

  size_t feed_v1(std::string_view bytes) noexcept;
  size_t feed_v2_fixed(std::string_view bytes) noexcept;
  size_t feed_v2_body(std::string_view bytes) noexcept;
  void fail(ProxyError error) noexcept;

  Phase phase_ = Phase::kStart;
  Status status_ = Status::kNeedMore;
  ProxyError error_ = ProxyError::kNone;
  size_t len_ = 0;       // bytes of buf_ in use
  size_t v2_total_ = 0;  // whole v2 header length, once the fixed part is in
  ProxyHeader header_;
  std::array<char, kProxyV2HeaderBytesMax> buf_;
};

}  // namespace popgate::proxy
