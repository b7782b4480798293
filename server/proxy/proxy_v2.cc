#include "server/proxy/proxy_v2.h"

#include <array>

#include "server/proxy/crc32c.h"
#include "server/proxy/sockaddr_build.h"

namespace popgate::proxy {
namespace {

constexpr uint8_t kVersion2 = 0x2;
constexpr uint8_t kCommandLocal = 0x0;
constexpr uint8_t kCommandProxy = 0x1;

// Offsets in the header (spec 2.2).
constexpr size_t kVersionCommandAt = 12;
constexpr size_t kFamilyAt = 13;
constexpr size_t kLengthAt = 14;
constexpr size_t kAddressAt = kProxyV2FixedBytes;
constexpr size_t kUnixPathBytes = 108;

// TLV types (spec 2.2); any other type is skipped, as the spec allows.
constexpr uint8_t kTypeAlpn = 0x01;
constexpr uint8_t kTypeAuthority = 0x02;
constexpr uint8_t kTypeCrc32c = 0x03;
constexpr uint8_t kTypeUniqueId = 0x05;
constexpr uint8_t kTypeSsl = 0x20;
constexpr uint8_t kTypeNetns = 0x30;
constexpr uint8_t kSubtypeSslVersion = 0x21;
constexpr uint8_t kSubtypeSslCn = 0x22;
constexpr uint8_t kSubtypeSslCipher = 0x23;
constexpr uint8_t kSubtypeSslSigAlg = 0x24;
constexpr uint8_t kSubtypeSslKeyAlg = 0x25;

constexpr size_t kTlvHeadBytes = 3;        // type, length high, length low
constexpr size_t kSslHeadBytes = 1 + 4;    // client bits, verify (big-endian)
constexpr size_t kCrc32cValueBytes = 4;

// Which TLV types were seen, to refuse a second copy of one we interpret.
using Seen = std::array<bool, 256>;

uint8_t u8(std::string_view bytes, size_t at) noexcept { return static_cast<uint8_t>(bytes[at]); }

uint16_t be16(std::string_view bytes, size_t at) noexcept {
  return static_cast<uint16_t>(u8(bytes, at) << 8 | u8(bytes, at + 1));
}

uint32_t be32(std::string_view bytes, size_t at) noexcept {
  return uint32_t{be16(bytes, at)} << 16 | be16(bytes, at + 2);
}

const uint8_t* raw(std::string_view bytes, size_t at) noexcept {
  return reinterpret_cast<const uint8_t*>(bytes.data() + at);
}

size_t address_block_bytes(uint8_t family_protocol) noexcept {
  switch (family_protocol >> 4) {
    case 0x1: return kProxyV2Inet4AddressBytes;
    case 0x2: return kProxyV2Inet6AddressBytes;
    case 0x3: return kProxyV2UnixAddressBytes;
    default: return 0;  // AF_UNSPEC
  }
}

ProxyTransport transport_of(uint8_t family_protocol) noexcept {
  switch (family_protocol & 0x0F) {
    case 0x1: return ProxyTransport::kStream;
    case 0x2: return ProxyTransport::kDgram;
    default: return ProxyTransport::kUnspec;
  }
}

// Walks the TLVs in bytes[pos, end), calling on_tlv(type, value, value_at)
// for each, with value_at the value's offset in `bytes`.
template <typename OnTlv>
ProxyError walk_tlvs(std::string_view bytes, size_t pos, ProxyError truncated,
                     ProxyError overrun, OnTlv&& on_tlv) noexcept {
  while (pos < bytes.size()) {
    if (bytes.size() - pos < kTlvHeadBytes) return truncated;
    const uint8_t type = u8(bytes, pos);
    const size_t length = be16(bytes, pos + 1);
    const size_t value_at = pos + kTlvHeadBytes;
    if (length > bytes.size() - value_at) return overrun;
    if (const ProxyError error = on_tlv(type, bytes.substr(value_at, length), value_at);
        error != ProxyError::kNone) {
      return error;
    }
    pos = value_at + length;
  }
  return ProxyError::kNone;
}

ProxyError set_once(Seen* seen, uint8_t type, std::string_view value,
                    std::string_view* field) noexcept {
  if ((*seen)[type]) return ProxyError::kV2DuplicateTlv;
  (*seen)[type] = true;
  *field = value;
  return ProxyError::kNone;
}

ProxyError decode_ssl(std::string_view value, ProxySsl* ssl) noexcept {
  if (value.size() < kSslHeadBytes) return ProxyError::kV2SslTooShort;
  ssl->present = true;
  ssl->client = u8(value, 0);
  ssl->verify = be32(value, 1);
  Seen seen{};
  return walk_tlvs(value, kSslHeadBytes, ProxyError::kV2SslSubTlvTruncated,
                   ProxyError::kV2SslSubTlvOverrun,
                   [&](uint8_t type, std::string_view sub, size_t) noexcept {
                     switch (type) {
                       case kSubtypeSslVersion: return set_once(&seen, type, sub, &ssl->version);
                       case kSubtypeSslCn: return set_once(&seen, type, sub, &ssl->cn);
                       case kSubtypeSslCipher: return set_once(&seen, type, sub, &ssl->cipher);
                       case kSubtypeSslSigAlg: return set_once(&seen, type, sub, &ssl->sig_alg);
                       case kSubtypeSslKeyAlg: return set_once(&seen, type, sub, &ssl->key_alg);
                       default: return ProxyError::kNone;
                     }
                   });
}

// Spec 2.2.3: the CRC of the whole header with the checksum field zeroed.
bool crc32c_matches(std::string_view header, size_t value_at) noexcept {
  constexpr std::string_view kZeroes{"\0\0\0\0", kCrc32cValueBytes};
  uint32_t crc = crc32c_update(kCrc32cInit, header.substr(0, value_at));
  crc = crc32c_update(crc, kZeroes);
  crc = crc32c_update(crc, header.substr(value_at + kCrc32cValueBytes));
  return crc32c_final(crc) == be32(header, value_at);
}

ProxyError decode_tlvs(std::string_view header, size_t pos, ProxyHeader* out) noexcept {
  Seen seen{};
  size_t crc_at = 0;  // 0: no CRC32C TLV (no value can sit at offset 0)
  const ProxyError error = walk_tlvs(
      header, pos, ProxyError::kV2TlvTruncated, ProxyError::kV2TlvOverrun,
      [&](uint8_t type, std::string_view value, size_t value_at) noexcept {
        switch (type) {
          case kTypeAlpn: return set_once(&seen, type, value, &out->alpn);
          case kTypeAuthority: return set_once(&seen, type, value, &out->authority);
          case kTypeNetns: return set_once(&seen, type, value, &out->netns);
          case kTypeUniqueId:
            if (value.size() > kProxyV2UniqueIdBytesMax) return ProxyError::kV2UniqueIdTooLong;
            return set_once(&seen, type, value, &out->unique_id);
          case kTypeCrc32c:
            if (seen[type]) return ProxyError::kV2DuplicateTlv;
            seen[type] = true;
            if (value.size() != kCrc32cValueBytes) return ProxyError::kV2BadCrc32cLength;
            crc_at = value_at;  // checked once the whole header has parsed
            return ProxyError::kNone;
          case kTypeSsl:
            if (seen[type]) return ProxyError::kV2DuplicateTlv;
            seen[type] = true;
            return decode_ssl(value, &out->ssl);
          default: return ProxyError::kNone;  // NOOP, custom, experimental, future
        }
      });
  if (error != ProxyError::kNone) return error;
  if (crc_at != 0) {
    if (!crc32c_matches(header, crc_at)) return ProxyError::kV2Crc32cMismatch;
    out->crc32c_verified = true;
  }
  return ProxyError::kNone;
}

void decode_addresses(std::string_view header, uint8_t family_protocol,
                      ProxyHeader* out) noexcept {
  const size_t at = kAddressAt;
  switch (family_protocol >> 4) {
    case 0x1:
      set_inet4(raw(header, at), be16(header, at + 8), &out->source, &out->source_len);
      set_inet4(raw(header, at + 4), be16(header, at + 10), &out->destination,
                &out->destination_len);
      out->has_addresses = true;
      break;
    case 0x2:
      set_inet6(raw(header, at), be16(header, at + 32), &out->source, &out->source_len);
      set_inet6(raw(header, at + 16), be16(header, at + 34), &out->destination,
                &out->destination_len);
      out->has_addresses = true;
      break;
    case 0x3:
      set_unix(header.data() + at, &out->source, &out->source_len);
      set_unix(header.data() + at + kUnixPathBytes, &out->destination, &out->destination_len);
      out->has_addresses = true;
      break;
    default:
      break;  // AF_UNSPEC: spec 2.2 says to ignore any address bytes
  }
}

ProxyError decode_header(std::string_view header, ProxyHeader* out) noexcept {
  if (header.substr(0, kProxyV2Signature.size()) != kProxyV2Signature) return ProxyError::kNotProxy;
  if (header.size() < kProxyV2FixedBytes) return ProxyError::kV2ShortAddressBlock;
  const uint8_t version_command = u8(header, kVersionCommandAt);
  const uint8_t family_protocol = u8(header, kFamilyAt);
  for (const ProxyError error :
       {check_v2_version_command(version_command), check_v2_family(family_protocol),
        check_v2_length(header.size())}) {
    if (error != ProxyError::kNone) return error;
  }
  if (kProxyV2FixedBytes + be16(header, kLengthAt) != header.size()) {
    return ProxyError::kV2ShortAddressBlock;  // the caller cut the header wrong
  }
  const size_t address_bytes = address_block_bytes(family_protocol);
  if (header.size() - kProxyV2FixedBytes < address_bytes) return ProxyError::kV2ShortAddressBlock;
  out->version = ProxyVersion::kV2;
  out->transport = transport_of(family_protocol);
  // Spec 2.2: LOCAL means "use the real endpoints"; its address block, if
  // any, is skipped but still sized by the family, like PROXY's.
  if ((version_command & 0x0F) == kCommandLocal) {
    out->command = ProxyCommand::kLocal;
  } else {
    out->command = ProxyCommand::kProxy;
    decode_addresses(header, family_protocol, out);
  }
  return decode_tlvs(header, kAddressAt + address_bytes, out);
}

}  // namespace

ProxyError check_v2_version_command(uint8_t version_command) noexcept {
  if ((version_command >> 4) != kVersion2) return ProxyError::kV2BadVersion;
  const uint8_t command = version_command & 0x0F;
  if (command != kCommandLocal && command != kCommandProxy) return ProxyError::kV2BadCommand;
  return ProxyError::kNone;
}

ProxyError check_v2_family(uint8_t family_protocol) noexcept {
  // Spec 2.2, "In practice": UNSPEC, or TCP/UDP over IPv4/IPv6, or UNIX
  // stream/datagram. Any other byte "must be rejected as invalid".
  switch (family_protocol) {
    case 0x00:
    case 0x11:
    case 0x12:
    case 0x21:
    case 0x22:
    case 0x31:
    case 0x32:
      return ProxyError::kNone;
    default:
      return ProxyError::kV2BadFamily;
  }
}

ProxyError check_v2_length(size_t header_bytes) noexcept {
  return header_bytes > kProxyV2HeaderBytesMax ? ProxyError::kV2TooLong : ProxyError::kNone;
}

ProxyError decode_v2(std::string_view header, ProxyHeader* out) noexcept {
  *out = ProxyHeader{};
  const ProxyError error = decode_header(header, out);
  if (error != ProxyError::kNone) *out = ProxyHeader{};
  return error;
}

}  // namespace popgate::proxy
