// The PROXY protocol parser (server/proxy): a v1 line, and v2 headers as
// HAProxy sends them (IPv4, with and without TLVs and CRC32C), whole and
// split in two reads.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

#include "server/proxy/proxy_protocol.h"

namespace {

using popgate::proxy::ProxyParser;

std::string v1() { return "PROXY TCP4 203.0.113.7 192.0.2.1 51234 995\r\n"; }

void put16(std::string& s, uint16_t v) {
  s.push_back(char(v >> 8));
  s.push_back(char(v & 0xFF));
}

std::string tlv(uint8_t type, std::string_view value) {
  std::string s(1, char(type));
  put16(s, uint16_t(value.size()));
  s += value;
  return s;
}

// v2, PROXY, TCP over IPv4, with optional authority, unique ID and SSL TLVs.
std::string v2(bool tlvs) {
  std::string body;
  in_addr src{};
  in_addr dst{};
  ::inet_pton(AF_INET, "203.0.113.7", &src);
  ::inet_pton(AF_INET, "192.0.2.1", &dst);
  body.append(reinterpret_cast<const char*>(&src), 4);
  body.append(reinterpret_cast<const char*>(&dst), 4);
  put16(body, 51234);
  put16(body, 995);
  if (tlvs) {
    body += tlv(0x02, "pop.tenant-a.test");                   // authority
    body += tlv(0x05, std::string(32, 'u'));                  // unique id
    std::string ssl(1, char(0x01));                           // client: SSL
    ssl.append(4, '\0');                                      // verify: ok
    ssl += tlv(0x21, "TLSv1.3");                              // version
    ssl += tlv(0x23, "TLS_AES_128_GCM_SHA256");               // cipher
    body += tlv(0x20, ssl);
  }
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h.push_back(char(0x21));  // v2, PROXY
  h.push_back(char(0x11));  // AF_INET, STREAM
  put16(h, uint16_t(body.size()));
  return h + body;
}

void feed(benchmark::State& state, const std::string& header, size_t split) {
  ProxyParser parser;
  for (auto _ : state) {
    parser.reset();
    size_t consumed = 0;
    if (split > 0 && split < header.size()) {
      (void)parser.feed(std::string_view(header).substr(0, split), &consumed);
      benchmark::DoNotOptimize(parser.feed(std::string_view(header).substr(split), &consumed));
    } else {
      benchmark::DoNotOptimize(parser.feed(header, &consumed));
    }
    benchmark::DoNotOptimize(parser.header());
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
  state.SetBytesProcessed(int64_t(state.iterations() * header.size()));
}

void BM_ProxyV1(benchmark::State& state) { feed(state, v1(), 0); }
void BM_ProxyV2Plain(benchmark::State& state) { feed(state, v2(false), 0); }
void BM_ProxyV2Tlvs(benchmark::State& state) { feed(state, v2(true), 0); }
void BM_ProxyV2TlvsSplit(benchmark::State& state) { feed(state, v2(true), 20); }
BENCHMARK(BM_ProxyV1);
BENCHMARK(BM_ProxyV2Plain);
BENCHMARK(BM_ProxyV2Tlvs);
BENCHMARK(BM_ProxyV2TlvsSplit);

}  // namespace
