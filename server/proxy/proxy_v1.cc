#include "server/proxy/proxy_v1.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "server/proxy/ip_text.h"
#include "server/proxy/sockaddr_build.h"

namespace popgate::proxy {
namespace {

constexpr std::string_view kPrefix = kProxyV1Signature;
constexpr std::string_view kCrlf = "\r\n";
// Source address, destination address, source port, destination port.
constexpr size_t kAddressFields = 4;

enum class Family : uint8_t { kInet4, kInet6 };

// Splits "a b c d" on single spaces into exactly kAddressFields fields.
ProxyError split_fields(std::string_view text,
                        std::array<std::string_view, kAddressFields>* fields) noexcept {
  size_t count = 0;
  size_t start = 0;
  while (true) {
    const size_t space = text.find(' ', start);
    const std::string_view field = text.substr(start, space - start);
    if (field.empty()) return ProxyError::kV1BadSpacing;
    if (count == kAddressFields) return ProxyError::kV1FieldCount;
    (*fields)[count++] = field;
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  return count == kAddressFields ? ProxyError::kNone : ProxyError::kV1FieldCount;
}

// Parses an address of `family`; on failure tells a well-formed address of
// the other family (kV1FamilyMismatch) from junk (`bad`).
ProxyError parse_address(std::string_view text, Family family, ProxyError bad,
                         sockaddr_storage* out, socklen_t* out_len) noexcept {
  const std::optional<Ipv4Bytes> v4 = parse_ipv4(text);
  const std::optional<Ipv6Bytes> v6 = v4 ? std::nullopt : parse_ipv6(text);
  if (family == Family::kInet4 && v4) {
    set_inet4(v4->data(), 0, out, out_len);
    return ProxyError::kNone;
  }
  if (family == Family::kInet6 && v6) {
    set_inet6(v6->data(), 0, out, out_len);
    return ProxyError::kNone;
  }
  return v4 || v6 ? ProxyError::kV1FamilyMismatch : bad;
}

// Ports go in after the address, which zeroed them.
void set_port(uint16_t port, sockaddr_storage* address) noexcept {
  if (address->ss_family == AF_INET) {
    sockaddr_in sin{};
    std::memcpy(&sin, address, sizeof(sin));
    sin.sin_port = htons(port);
    std::memcpy(address, &sin, sizeof(sin));
  } else {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, address, sizeof(sin6));
    sin6.sin6_port = htons(port);
    std::memcpy(address, &sin6, sizeof(sin6));
  }
}

ProxyError decode_tcp(std::string_view fields_text, Family family, ProxyHeader* out) noexcept {
  std::array<std::string_view, kAddressFields> fields;
  if (const ProxyError error = split_fields(fields_text, &fields); error != ProxyError::kNone) {
    return error;
  }
  if (const ProxyError error = parse_address(fields[0], family, ProxyError::kV1BadSourceAddress,
                                             &out->source, &out->source_len);
      error != ProxyError::kNone) {
    return error;
  }
  if (const ProxyError error =
          parse_address(fields[1], family, ProxyError::kV1BadDestinationAddress,
                        &out->destination, &out->destination_len);
      error != ProxyError::kNone) {
    return error;
  }
  const std::optional<uint16_t> source_port = parse_port(fields[2]);
  if (!source_port) return ProxyError::kV1BadSourcePort;
  const std::optional<uint16_t> destination_port = parse_port(fields[3]);
  if (!destination_port) return ProxyError::kV1BadDestinationPort;
  set_port(*source_port, &out->source);
  set_port(*destination_port, &out->destination);
  out->has_addresses = true;
  out->transport = ProxyTransport::kStream;
  return ProxyError::kNone;
}

ProxyError decode_line(std::string_view line, ProxyHeader* out) noexcept {
  if (line.substr(0, kPrefix.size()) != kPrefix) return ProxyError::kNotProxy;
  if (line.size() < kPrefix.size() + kCrlf.size() ||
      line.substr(line.size() - kCrlf.size()) != kCrlf) {
    return ProxyError::kV1BareCrOrLf;
  }
  const std::string_view body = line.substr(kPrefix.size(), line.size() - kPrefix.size() - 2);
  const size_t space = body.find(' ');
  const std::string_view protocol = body.substr(0, space);
  const std::string_view rest =
      space == std::string_view::npos ? std::string_view{} : body.substr(space + 1);
  out->version = ProxyVersion::kV1;
  out->command = ProxyCommand::kProxy;
  if (protocol.empty()) return ProxyError::kV1BadSpacing;
  // Spec 2.1: after UNKNOWN the receiver ignores everything up to the CRLF
  // and uses the real connection's endpoints.
  if (protocol == "UNKNOWN") return ProxyError::kNone;
  if (protocol != "TCP4" && protocol != "TCP6") return ProxyError::kV1BadProtocol;
  if (space == std::string_view::npos) return ProxyError::kV1FieldCount;
  return decode_tcp(rest, protocol == "TCP4" ? Family::kInet4 : Family::kInet6, out);
}

}  // namespace

ProxyError decode_v1(std::string_view line, ProxyHeader* out) noexcept {
  *out = ProxyHeader{};
  const ProxyError error = decode_line(line, out);
  if (error != ProxyError::kNone) *out = ProxyHeader{};
  return error;
}

}  // namespace popgate::proxy
