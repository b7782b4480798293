#include "tests/proxy/proxy_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <memory>

#include "server/proxy/crc32c.h"

namespace popgate::proxy::testing {
namespace {

void put16(std::string* out, uint16_t value) {
  out->push_back(static_cast<char>(value >> 8));
  out->push_back(static_cast<char>(value & 0xff));
}

void put32(std::string* out, uint32_t value) {
  put16(out, static_cast<uint16_t>(value >> 16));
  put16(out, static_cast<uint16_t>(value & 0xffff));
}

std::string pton(int family, const char* text) {
  unsigned char buf[16] = {};
  if (inet_pton(family, text, buf) != 1) return {};
  return std::string(reinterpret_cast<const char*>(buf), family == AF_INET ? 4 : 16);
}

// Printable ASCII as is, anything else as \xNN.
std::string escaped(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : value) {
    const auto octet = static_cast<uint8_t>(c);
    if (octet >= 0x20 && octet < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[octet >> 4]);
      out.push_back(kHex[octet & 0xf]);
    }
  }
  return out;
}

std::string endpoint(const sockaddr_storage& address, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET && length == sizeof(sockaddr_in)) {
    sockaddr_in sin{};
    std::memcpy(&sin, &address, sizeof(sin));
    inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(sin.sin_port));
  }
  if (address.ss_family == AF_INET6 && length == sizeof(sockaddr_in6)) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, &address, sizeof(sin6));
    inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(sin6.sin6_port));
  }
  if (address.ss_family == AF_UNIX && length == sizeof(sockaddr_un)) {
    sockaddr_un sun{};
    std::memcpy(&sun, &address, sizeof(sun));
    std::string_view path(sun.sun_path, sizeof(sun.sun_path));
    path = path.substr(0, path.find_last_not_of('\0') + 1);
    return "unix:" + escaped(path);
  }
  return "family" + std::to_string(address.ss_family) + "/len" + std::to_string(length);
}

}  // namespace

std::string tlv(uint8_t type, std::string_view value) {
  std::string out(1, static_cast<char>(type));
  put16(&out, static_cast<uint16_t>(value.size()));
  out.append(value);
  return out;
}

std::string ssl_value(uint8_t client, uint32_t verify, std::string_view sub_tlvs) {
  std::string out(1, static_cast<char>(client));
  put32(&out, verify);
  out.append(sub_tlvs);
  return out;
}

V2Builder& V2Builder::inet4(const char* source, const char* destination, uint16_t source_port,
                            uint16_t destination_port) {
  addresses = pton(AF_INET, source) + pton(AF_INET, destination);
  put16(&addresses, source_port);
  put16(&addresses, destination_port);
  return *this;
}

V2Builder& V2Builder::inet6(const char* source, const char* destination, uint16_t source_port,
                            uint16_t destination_port) {
  addresses = pton(AF_INET6, source) + pton(AF_INET6, destination);
  put16(&addresses, source_port);
  put16(&addresses, destination_port);
  return *this;
}

V2Builder& V2Builder::unix_paths(std::string_view source, std::string_view destination) {
  std::string a(source);
  a.resize(108, '\0');
  std::string b(destination);
  b.resize(108, '\0');
  addresses = a + b;
  return *this;
}

V2Builder& V2Builder::add_tlv(uint8_t type, std::string_view value) {
  tlvs += tlv(type, value);
  return *this;
}

std::string V2Builder::build() const {
  std::string out = bytes("\r\n\r\n\0\r\nQUIT\n", 12);
  out.push_back(static_cast<char>(version_command));
  out.push_back(static_cast<char>(family_protocol));
  std::string body = addresses + tlvs;
  size_t crc_at = 0;
  if (with_crc) {
    crc_at = 16 + body.size() + 3;
    body += tlv(0x03, std::string(4, '\0'));
  }
  put16(&out, length_override ? *length_override : static_cast<uint16_t>(body.size()));
  out += body;
  if (with_crc) {
    const uint32_t crc = crc_override ? *crc_override : crc32c(out);
    std::string value;
    put32(&value, crc);
    out.replace(crc_at, 4, value);
  }
  return out;
}

FeedResult feed_pieces(std::string_view input, const std::vector<size_t>& cuts) {
  ProxyParser parser;
  FeedResult result;
  size_t start = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : input.size();
    const size_t size = end - start;
    // Exactly `size` bytes on the heap: any read past them is an ASan error.
    std::unique_ptr<char[]> piece(new char[size == 0 ? 1 : size]);
    if (size > 0) std::memcpy(piece.get(), input.data() + start, size);
    size_t consumed = 0;
    result.status = parser.feed({piece.get(), size}, &consumed);
    result.consumed += consumed;
    start = end;
    if (result.status != ProxyParser::Status::kNeedMore) break;
  }
  result.error = std::string(parser.error());
  if (result.status == ProxyParser::Status::kDone) result.header = describe(parser.header());
  // Invalid input: where it stopped is unspecified; compare the reason only.
  if (result.status == ProxyParser::Status::kInvalid) result.consumed = 0;
  return result;
}

FeedResult feed_whole(std::string_view input) { return feed_pieces(input, {}); }

FeedResult feed_split(std::string_view input, size_t at) { return feed_pieces(input, {at}); }

FeedResult feed_bytewise(std::string_view input) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
  return feed_pieces(input, cuts);
}

std::string describe(const ProxyHeader& header) {
  static constexpr const char* kVersions[] = {"none", "v1", "v2"};
  static constexpr const char* kTransports[] = {"unspec", "stream", "dgram"};
  std::string out = kVersions[static_cast<int>(header.version)];
  out += header.command == ProxyCommand::kLocal ? " LOCAL " : " PROXY ";
  out += kTransports[static_cast<int>(header.transport)];
  if (header.has_addresses) {
    out += " " + endpoint(header.source, header.source_len) + " -> " +
           endpoint(header.destination, header.destination_len);
  }
  const auto field = [&out](const char* name, std::string_view value) {
    if (!value.empty()) out += std::string(" ") + name + "=" + escaped(value);
  };
  field("authority", header.authority);
  field("alpn", header.alpn);
  field("unique_id", header.unique_id);
  field("netns", header.netns);
  if (header.ssl.present) {
    out += " ssl(client=" + std::to_string(header.ssl.client) +
           " verify=" + std::to_string(header.ssl.verify);
    field("version", header.ssl.version);
    field("cn", header.ssl.cn);
    field("cipher", header.ssl.cipher);
    field("sig_alg", header.ssl.sig_alg);
    field("key_alg", header.ssl.key_alg);
    out += ")";
  }
  if (header.crc32c_verified) out += " crc32c";
  return out;
}

std::string describe(const FeedResult& result) {
  static constexpr const char* kStatuses[] = {"need_more", "done", "invalid"};
  return std::string(kStatuses[static_cast<int>(result.status)]) +
         " consumed=" + std::to_string(result.consumed) + " error=" + result.error + " [" +
         result.header + "]";
}

}  // namespace popgate::proxy::testing
