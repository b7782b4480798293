// Test helpers for the PROXY parser: a v2 header builder, feeders that cut
// the input any way we like (each piece copied into a heap block of exactly
// its size, so ASan sees any read past it), and a text rendering of a header
// so that results of different feeds compare as strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/proxy/proxy_protocol.h"

namespace popgate::proxy::testing {

// Bytes from a literal that may hold NULs: bytes("\0\1", 2).
inline std::string bytes(const char* data, size_t size) { return std::string(data, size); }

// One TLV: type, 16-bit big-endian length, value.
std::string tlv(uint8_t type, std::string_view value);
// A PP2_TYPE_SSL value: client bits, verify (big-endian), sub-TLVs.
std::string ssl_value(uint8_t client, uint32_t verify, std::string_view sub_tlvs);

// Builds a v2 header. Defaults: PROXY, TCP over IPv4, no addresses yet.
struct V2Builder {
  uint8_t version_command = 0x21;
  uint8_t family_protocol = 0x11;
  std::string addresses;  // raw address block
  std::string tlvs;       // raw TLVs, after the address block
  std::optional<uint16_t> length_override;
  bool with_crc = false;  // append a CRC32C TLV, filled by build()
  std::optional<uint32_t> crc_override;

  V2Builder& inet4(const char* source, const char* destination, uint16_t source_port,
                   uint16_t destination_port);
  V2Builder& inet6(const char* source, const char* destination, uint16_t source_port,
                   uint16_t destination_port);
  V2Builder& unix_paths(std::string_view source, std::string_view destination);
  V2Builder& add_tlv(uint8_t type, std::string_view value);
  [[nodiscard]] std::string build() const;
};

struct FeedResult {
  ProxyParser::Status status = ProxyParser::Status::kNeedMore;
  size_t consumed = 0;  // total over all pieces fed
  std::string error;
  std::string header;   // describe(header()) after kDone
  bool operator==(const FeedResult&) const = default;
};

// Feeds `input` cut before each offset in `cuts` (ascending), stopping at the
// first status other than kNeedMore.
FeedResult feed_pieces(std::string_view input, const std::vector<size_t>& cuts);
FeedResult feed_whole(std::string_view input);
FeedResult feed_split(std::string_view input, size_t at);
FeedResult feed_bytewise(std::string_view input);

// Deterministic text for a header: version, command, addresses, TLVs.
std::string describe(const ProxyHeader& header);
std::string describe(const FeedResult& result);

}  // namespace popgate::proxy::testing
