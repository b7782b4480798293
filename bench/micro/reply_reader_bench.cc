// The load generator's reply verification (bench/common/reply_reader.h):
// a RETR of a 1 MiB dataset message, stuffed as a server sends it, checked
// in 64 KiB reads. popgate-bench must verify far faster than any server
// sends, or it would be the bottleneck it reports on.
#include <benchmark/benchmark.h>

#include <string>

#include "bench/common/dataset.h"
#include "bench/common/reply_reader.h"

namespace {

using namespace popgate::bench;

constexpr size_t kReadBytes = 64 * 1024;

std::string retr_reply(Group group) {
  const std::string text = make_message(group_spec(group, DatasetSize::kFull), 0, 0);
  std::string out = "+OK " + std::to_string(text.size()) + " octets\r\n";
  bool line_start = true;
  for (const char ch : text) {
    if (line_start && ch == '.') out += '.';
    out += ch;
    line_start = ch == '\n';
  }
  return out + ".\r\n";
}

void BM_VerifyRetr(benchmark::State& state) {
  const std::string reply = retr_reply(static_cast<Group>(state.range(0)));
  ReplyReader reader;
  for (auto _ : state) {
    reader.expect(ReplyReader::Shape::kMessage);
    std::string_view in = reply;
    while (!in.empty()) {
      size_t used = 0;
      const auto st = reader.feed(in.substr(0, kReadBytes), &used);
      in.remove_prefix(used);
      if (st != ReplyReader::Status::kNeedMore) break;
    }
    if (!reader.trailer_ok()) state.SkipWithError("trailer mismatch");
  }
  state.SetBytesProcessed(int64_t(state.iterations() * reply.size()));
}
BENCHMARK(BM_VerifyRetr)->Arg(int(Group::kSmall))->Arg(int(Group::kBig));

}  // namespace
