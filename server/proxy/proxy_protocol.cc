// The resumable part: detect the version from the first byte, gather the
// header into buf_ while refusing as early as a byte proves it wrong, then
// hand the complete header to decode_v1 / decode_v2.
#include "server/proxy/proxy_protocol.h"

#include <algorithm>
#include <cstring>

#include "server/proxy/proxy_v1.h"
#include "server/proxy/proxy_v2.h"

namespace popgate::proxy {
namespace {

// Offsets in the v2 fixed part.
constexpr size_t kV2VersionCommandAt = 12;
constexpr size_t kV2FamilyAt = 13;
constexpr size_t kV2LengthLowAt = 15;

constexpr std::array<std::string_view, static_cast<size_t>(ProxyError::kCount)> kErrorNames = {
    "none",
    "not_proxy",
    "v1_too_long",
    "v1_bad_byte",
    "v1_bare_cr_or_lf",
    "v1_bad_protocol",
    "v1_bad_spacing",
    "v1_field_count",
    "v1_bad_source_address",
    "v1_bad_destination_address",
    "v1_family_mismatch",
    "v1_bad_source_port",
    "v1_bad_destination_port",
    "v2_bad_version",
    "v2_bad_command",
    "v2_bad_family",
    "v2_too_long",
    "v2_short_address_block",
    "v2_tlv_truncated",
    "v2_tlv_overrun",
    "v2_duplicate_tlv",
    "v2_unique_id_too_long",
    "v2_ssl_too_short",
    "v2_ssl_sub_tlv_truncated",
    "v2_ssl_sub_tlv_overrun",
    "v2_bad_crc32c_length",
    "v2_crc32c_mismatch",
};

uint8_t byte_at(const std::array<char, kProxyV2HeaderBytesMax>& buf, size_t at) noexcept {
  return static_cast<uint8_t>(buf[at]);
}

}  // namespace

std::string_view proxy_error_name(ProxyError error) noexcept {
  const auto index = static_cast<size_t>(error);
  return index < kErrorNames.size() ? kErrorNames[index] : "unknown";
}

ProxyParser::Status ProxyParser::feed(std::string_view bytes, size_t* consumed) noexcept {
  size_t used = 0;
  while (status_ == Status::kNeedMore && used < bytes.size()) {
    const std::string_view rest = bytes.substr(used);
    switch (phase_) {
      case Phase::kStart:
        // The two signatures differ in their first byte already.
        if (rest[0] == kProxyV1Signature[0]) {
          phase_ = Phase::kV1;
        } else if (rest[0] == kProxyV2Signature[0]) {
          phase_ = Phase::kV2Fixed;
        } else {
          fail(ProxyError::kNotProxy);
        }
        break;
      case Phase::kV1:
        used += feed_v1(rest);
        break;
      case Phase::kV2Fixed:
        used += feed_v2_fixed(rest);
        break;
      case Phase::kV2Body:
        used += feed_v2_body(rest);
        break;
      case Phase::kFinished:
        break;  // status_ is no longer kNeedMore
    }
  }
  *consumed = used;
  return status_;
}

// One byte at a time: the line is at most 107 bytes and every byte is
// checked anyway. Stops right after the LF.
size_t ProxyParser::feed_v1(std::string_view bytes) noexcept {
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    const auto octet = static_cast<uint8_t>(c);
    if (len_ < kProxyV1Signature.size() && c != kProxyV1Signature[len_]) {
      fail(ProxyError::kNotProxy);
      return i + 1;
    }
    const bool after_cr = len_ > 0 && buf_[len_ - 1] == '\r';
    buf_[len_++] = c;
    if (after_cr || c == '\n') {
      if (!after_cr || c != '\n') {
        fail(ProxyError::kV1BareCrOrLf);
      } else if (const ProxyError error = decode_v1({buf_.data(), len_}, &header_);
                 error != ProxyError::kNone) {
        fail(error);
      } else {
        status_ = Status::kDone;
        phase_ = Phase::kFinished;
      }
      return i + 1;
    }
    if (c != '\r' && (octet < 0x20 || octet > 0x7E)) {
      fail(ProxyError::kV1BadByte);
      return i + 1;
    }
    if (len_ == kProxyV1LineBytesMax) {
      fail(ProxyError::kV1TooLong);
      return i + 1;
    }
  }
  return bytes.size();
}

size_t ProxyParser::feed_v2_fixed(std::string_view bytes) noexcept {
  size_t i = 0;
  while (i < bytes.size() && len_ < kProxyV2FixedBytes) {
    const size_t at = len_;
    buf_[len_++] = bytes[i++];
    ProxyError error = ProxyError::kNone;
    if (at < kProxyV2Signature.size()) {
      if (buf_[at] != kProxyV2Signature[at]) error = ProxyError::kNotProxy;
    } else if (at == kV2VersionCommandAt) {
      error = check_v2_version_command(byte_at(buf_, at));
    } else if (at == kV2FamilyAt) {
      error = check_v2_family(byte_at(buf_, at));
    } else if (at == kV2LengthLowAt) {
      v2_total_ = kProxyV2FixedBytes + (size_t{byte_at(buf_, at - 1)} << 8 | byte_at(buf_, at));
      error = check_v2_length(v2_total_);
    }
    if (error != ProxyError::kNone) {
      fail(error);
      return i;
    }
  }
  if (len_ == kProxyV2FixedBytes) {
    phase_ = Phase::kV2Body;
    if (v2_total_ == len_) return i + feed_v2_body({});  // no address, no TLV
  }
  return i;
}

size_t ProxyParser::feed_v2_body(std::string_view bytes) noexcept {
  const size_t take = std::min(bytes.size(), v2_total_ - len_);
  if (take > 0) std::memcpy(buf_.data() + len_, bytes.data(), take);
  len_ += take;
  if (len_ == v2_total_) {
    if (const ProxyError error = decode_v2({buf_.data(), len_}, &header_);
        error != ProxyError::kNone) {
      fail(error);
    } else {
      status_ = Status::kDone;
      phase_ = Phase::kFinished;
    }
  }
  return take;
}

void ProxyParser::fail(ProxyError error) noexcept {
  status_ = Status::kInvalid;
  error_ = error;
  phase_ = Phase::kFinished;
  header_ = ProxyHeader{};
}

void ProxyParser::reset() noexcept {
  phase_ = Phase::kStart;
  status_ = Status::kNeedMore;
  error_ = ProxyError::kNone;
  len_ = 0;
  v2_total_ = 0;
  header_ = ProxyHeader{};
}

}  // namespace popgate::proxy
