// Randomized mutations of valid headers. The parser must never crash or
// read outside what it was given (run under ASan: every piece fed lives in a
// heap block of exactly its size), and however the input is cut it must
// reach the same verdict. The seed is printed; replay one with
// POPGATE_TEST_SEED=<seed>. POPGATE_TEST_ITERATIONS overrides the count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "server/proxy/proxy_protocol.h"
#include "tests/proxy/proxy_test_support.h"

namespace popgate::proxy {
namespace {

using testing::describe;
using testing::FeedResult;
using testing::ssl_value;
using testing::tlv;
using testing::V2Builder;

constexpr int kIterationsDefault = 20000;

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

std::vector<std::string> corpus() {
  V2Builder tcp4;
  tcp4.inet4("192.0.2.1", "198.51.100.2", 40000, 110);
  V2Builder tcp6;
  tcp6.family_protocol = 0x21;
  tcp6.inet6("2001:db8::1", "2001:db8::2", 1, 2);
  V2Builder unix_stream;
  unix_stream.family_protocol = 0x31;
  unix_stream.unix_paths("/a", "/b");
  V2Builder rich = tcp4;
  rich.add_tlv(0x01, "pop3")
      .add_tlv(0x02, "mail.example.com")
      .add_tlv(0x05, "id")
      .add_tlv(0x20, ssl_value(7, 0, tlv(0x21, "TLSv1.3") + tlv(0x22, "cn") + tlv(0x25, "k")))
      .add_tlv(0x30, "ns")
      .add_tlv(0x04, "pad");
  rich.with_crc = true;
  V2Builder local;
  local.version_command = 0x20;
  local.family_protocol = 0x00;
  return {
      "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
      "PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 65535 0\r\n",
      "PROXY UNKNOWN\r\n",
      "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
      tcp4.build(),
      tcp6.build(),
      unix_stream.build(),
      rich.build(),
      local.build(),
  };
}

void mutate(std::mt19937_64& rng, std::string* input) {
  const auto pick = [&rng](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); };
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    switch (rng() % 7) {
      case 0:  // flip a bit
        if (!input->empty()) (*input)[pick(input->size())] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // set a byte to something interesting
        if (!input->empty()) {
          static constexpr char kInteresting[] = {'\0', '\r', '\n', ' ', ':', '.', '0',
                                                  '9',  'f',  '\x7f', '\xff', '\x20', '\x21'};
          (*input)[pick(input->size())] = kInteresting[pick(sizeof(kInteresting))];
        }
        break;
      case 2:  // truncate
        input->resize(pick(input->size() + 1));
        break;
      case 3:  // insert a random byte
        input->insert(pick(input->size() + 1), 1, static_cast<char>(rng()));
        break;
      case 4:  // erase a byte
        if (!input->empty()) input->erase(pick(input->size()), 1);
        break;
      case 5:  // duplicate a slice
        if (!input->empty()) {
          const size_t at = pick(input->size());
          input->insert(pick(input->size() + 1), input->substr(at, 1 + pick(16)));
        }
        break;
      default:  // random bytes behind (what follows the header)
        for (size_t n = pick(32); n > 0; --n) input->push_back(static_cast<char>(rng()));
        break;
    }
  }
}

std::vector<size_t> random_cuts(std::mt19937_64& rng, size_t size) {
  std::vector<size_t> cuts;
  if (size < 2) return cuts;
  for (size_t n = rng() % 6; n > 0; --n) cuts.push_back(1 + rng() % (size - 1));
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

TEST(ProxyMutationTest, NeverCrashesAndAgreesWithItselfHoweverCut) {
  const uint64_t seed = env_or("POPGATE_TEST_SEED", std::random_device{}());
  const uint64_t iterations = env_or("POPGATE_TEST_ITERATIONS", kIterationsDefault);
  std::printf("proxy mutation seed: %llu (replay with POPGATE_TEST_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::vector<std::string> base = corpus();
  size_t done = 0;
  size_t invalid = 0;
  for (uint64_t i = 0; i < iterations; ++i) {
    std::string input = base[rng() % base.size()];
    mutate(rng, &input);
    const FeedResult whole = testing::feed_whole(input);
    const FeedResult cut = testing::feed_pieces(input, random_cuts(rng, input.size()));
    ASSERT_EQ(cut, whole) << "seed " << seed << " iteration " << i << ": " << describe(whole)
                          << " vs " << describe(cut);
    if (i % 16 == 0) {
      ASSERT_EQ(testing::feed_bytewise(input), whole) << "iteration " << i;
    }
    ASSERT_LE(whole.consumed, input.size());
    if (whole.status == ProxyParser::Status::kDone) {
      ++done;
      ASSERT_LE(whole.consumed, kProxyV2HeaderBytesMax);
    } else if (whole.status == ProxyParser::Status::kInvalid) {
      ++invalid;
      ASSERT_NE(whole.error, "none");
    }
  }
  std::printf("proxy mutation: %llu inputs, %zu done, %zu invalid\n",
              static_cast<unsigned long long>(iterations), done, invalid);
}

// Random bytes behind a valid signature reach the deeper states.
TEST(ProxyMutationTest, RandomBodiesBehindSignatures) {
  const uint64_t seed = env_or("POPGATE_TEST_SEED", std::random_device{}());
  std::printf("proxy random-body seed: %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const std::string v2_head = testing::bytes("\r\n\r\n\0\r\nQUIT\n", 12);
  const uint64_t iterations = env_or("POPGATE_TEST_ITERATIONS", kIterationsDefault) / 4;
  for (uint64_t i = 0; i < iterations; ++i) {
    std::string input = (rng() % 2 == 0) ? std::string("PROXY ") : v2_head;
    if (input[0] == '\r') {
      input.push_back(static_cast<char>(0x20 | (rng() % 2)));
      static constexpr char kFamilies[] = {0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32};
      input.push_back(kFamilies[rng() % sizeof(kFamilies)]);
      const size_t length = rng() % 300;
      input.push_back(static_cast<char>(length >> 8));
      input.push_back(static_cast<char>(length & 0xff));
    }
    for (size_t n = rng() % 320; n > 0; --n) input.push_back(static_cast<char>(rng()));
    const FeedResult whole = testing::feed_whole(input);
    ASSERT_EQ(testing::feed_pieces(input, random_cuts(rng, input.size())), whole)
        << "seed " << seed << " iteration " << i;
  }
}

}  // namespace
}  // namespace popgate::proxy
