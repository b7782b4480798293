// Fuzz target: the PROXY protocol v1/v2 parser (server/proxy/), fed whole,
// in pieces cut where the input says and, for short inputs, one octet at a
// time; each piece in a heap block of exactly its size (so ASan sees any
// read past it, and any view kept into it once it is freed).
//
// Input: [cut seed: 4] bytes...
// Checks: every way of cutting gives the same status, reason, consumed
// count and header; a finished header ends exactly where the wire says
// (CRLF for v1, 16 + length for v2) and consumes nothing after it; the
// addresses are of a family the shard can use, with its length; the TLV
// views point into the parser, never into the caller's bytes; once
// finished, the parser takes nothing more and repeats its verdict; reset()
// makes it as new.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "server/proxy/proxy_protocol.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/proxy/proxy_test_support.h"

namespace {

using popgate::proxy::ProxyHeader;
using popgate::proxy::ProxyParser;
using popgate::proxy::ProxyVersion;
using Status = popgate::proxy::ProxyParser::Status;

bool inside(const ProxyParser& parser, std::string_view view) {
  if (view.empty()) return true;
  const auto* begin = reinterpret_cast<const char*>(&parser);
  const auto* end = begin + sizeof(parser);
  return view.data() >= begin && view.data() + view.size() <= end;
}

socklen_t length_of(sa_family_t family) {
  switch (family) {
    case AF_INET: return sizeof(sockaddr_in);
    case AF_INET6: return sizeof(sockaddr_in6);
    case AF_UNIX: return sizeof(sockaddr_un);
    default: return 0;
  }
}

void check_header(const ProxyParser& parser, std::string_view input, size_t consumed) {
  const ProxyHeader& h = parser.header();
  POPGATE_FUZZ_CHECK(consumed <= input.size(), "consumed past the input");
  POPGATE_FUZZ_CHECK(h.version != ProxyVersion::kNone, "done without a version");
  if (h.version == ProxyVersion::kV1) {
    POPGATE_FUZZ_CHECK(consumed >= 2 && consumed <= popgate::proxy::kProxyV1LineBytesMax,
                       "v1 line length out of range");
    POPGATE_FUZZ_CHECK(input.substr(consumed - 2, 2) == "\r\n", "v1 header does not end at CRLF");
    POPGATE_FUZZ_CHECK(input.substr(0, consumed - 2).find('\n') == std::string_view::npos,
                       "v1 header spans an LF");
  } else {
    POPGATE_FUZZ_CHECK(input.size() >= popgate::proxy::kProxyV2FixedBytes, "v2 done too early");
    const size_t length = static_cast<size_t>(static_cast<uint8_t>(input[14])) << 8 |
                          static_cast<uint8_t>(input[15]);
    POPGATE_FUZZ_CHECK(consumed == popgate::proxy::kProxyV2FixedBytes + length,
                       "v2 header does not end where its length says");
  }
  if (h.has_addresses) {
    POPGATE_FUZZ_CHECK(length_of(h.source.ss_family) != 0 &&
                           h.source.ss_family == h.destination.ss_family,
                       "unusable address family");
    POPGATE_FUZZ_CHECK(h.source_len == length_of(h.source.ss_family) &&
                           h.destination_len == length_of(h.destination.ss_family),
                       "address length does not fit its family");
  }
  for (std::string_view v : {h.authority, h.alpn, h.unique_id, h.netns, h.ssl.version, h.ssl.cn,
                             h.ssl.cipher, h.ssl.sig_alg, h.ssl.key_alg}) {
    POPGATE_FUZZ_CHECK(inside(parser, v), "a header view points outside the parser");
  }
  POPGATE_FUZZ_CHECK(h.unique_id.size() <= popgate::proxy::kProxyV2UniqueIdBytesMax,
                     "unique ID over its limit");
}

// One parser through the whole input (pieces as cut), then the checks of
// the finished state. Returns the status.
Status run_parser(ProxyParser& parser, std::string_view input, const std::vector<size_t>& cuts) {
  Status status = Status::kNeedMore;
  size_t consumed_total = 0;
  for (std::string_view piece : popgate::fuzz::pieces(input, cuts)) {
    std::string copy(piece);  // the caller's buffer changes after each call
    size_t consumed = 0;
    status = parser.feed(copy, &consumed);
    if (status == Status::kNeedMore) {
      POPGATE_FUZZ_CHECK(consumed == piece.size(), "kNeedMore left bytes unconsumed");
      POPGATE_FUZZ_CHECK(parser.buffered() <= popgate::proxy::kProxyV2HeaderBytesMax,
                         "buffered past the header limit");
    }
    if (status == Status::kDone) POPGATE_FUZZ_CHECK(consumed <= piece.size(), "consumed too much");
    consumed_total += consumed;
    if (status != Status::kNeedMore) break;
  }
  if (status == Status::kDone) check_header(parser, input, consumed_total);
  if (status == Status::kInvalid) {
    POPGATE_FUZZ_CHECK(parser.error_code() != popgate::proxy::ProxyError::kNone,
                       "kInvalid without a reason");
  } else {
    POPGATE_FUZZ_CHECK(parser.error_code() == popgate::proxy::ProxyError::kNone,
                       "a reason without kInvalid");
  }
  if (status != Status::kNeedMore) {
    size_t more = 99;
    POPGATE_FUZZ_CHECK(parser.feed("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", &more) == status,
                       "a finished parser changed its verdict");
    POPGATE_FUZZ_CHECK(more == 0, "a finished parser took more bytes");
  }
  return status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using popgate::proxy::testing::describe;
  using popgate::proxy::testing::feed_pieces;
  popgate::fuzz::FuzzInput in(data, size);
  const uint32_t seed = in.u32();
  const std::string_view input = in.rest();
  const std::vector<size_t> cuts = popgate::fuzz::derived_cuts(input.size(), seed);

  const auto whole = feed_pieces(input, {});
  const auto cut = feed_pieces(input, cuts);
  if (!(whole == cut)) {
    std::fprintf(stderr, "whole: %s\ncut:   %s\n", describe(whole).c_str(), describe(cut).c_str());
  }
  POPGATE_FUZZ_CHECK(whole == cut, "cutting the input changed the result");
  if (input.size() <= 256) {
    std::vector<size_t> every;
    for (size_t i = 1; i < input.size(); ++i) every.push_back(i);
    const auto bytewise = feed_pieces(input, every);
    if (!(whole == bytewise)) {
      std::fprintf(stderr, "whole:    %s\nbytewise: %s\n", describe(whole).c_str(),
                   describe(bytewise).c_str());
    }
    POPGATE_FUZZ_CHECK(whole == bytewise, "feeding one octet at a time changed the result");
  }

  static ProxyParser parser;  // reused: reset() must make it as new
  parser.reset();
  const Status status = run_parser(parser, input, cuts);
  POPGATE_FUZZ_CHECK(status == whole.status, "a reused parser disagrees with a new one");
  if (status == Status::kDone) {
    POPGATE_FUZZ_CHECK(describe(parser.header()) == whole.header, "a reused parser's header differs");
  }
  return 0;
}
