// The dot-stuffing encoder, in GB/s: real message text (the benchmark
// dataset's, with lines that start with '.') encoded into a 16 KiB output
// block, the size of a session's output buffer, as RETR does.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "bench/common/dataset.h"
#include "server/pop3/dot_stuffer.h"

namespace {

using popgate::bench::DatasetSize;
using popgate::bench::Group;
using popgate::pop3::DotStuffer;

constexpr size_t kOutputBlockBytes = 16 * 1024;  // session.output_buffer_bytes default

// Arg: which group's message (Big: 1 MiB, Small: 20 KB).
void BM_DotStuff(benchmark::State& state) {
  const auto group = static_cast<Group>(state.range(0));
  const std::string text =
      popgate::bench::make_message(popgate::bench::group_spec(group, DatasetSize::kFull), 0, 0);
  std::vector<char> out(kOutputBlockBytes + DotStuffer::kFinishBytesMax);
  for (auto _ : state) {
    DotStuffer stuffer;
    stuffer.reset();
    std::string_view in = text;
    size_t produced = 0;
    while (!in.empty()) {
      const DotStuffer::Step step = stuffer.encode(in, out.data(), kOutputBlockBytes);
      in.remove_prefix(step.consumed);
      produced += step.produced;
    }
    produced += stuffer.finish(out.data());
    benchmark::DoNotOptimize(produced);
  }
  state.SetBytesProcessed(int64_t(state.iterations() * text.size()));
}
BENCHMARK(BM_DotStuff)->Arg(int(Group::kSmall))->Arg(int(Group::kBig));

// Worst case: every line starts with '.'.
void BM_DotStuffAllDots(benchmark::State& state) {
  std::string text;
  while (text.size() < (1U << 20)) text += ".a line that starts with a dot, 60 octets long\r\n";
  std::vector<char> out(kOutputBlockBytes + DotStuffer::kFinishBytesMax);
  for (auto _ : state) {
    DotStuffer stuffer;
    stuffer.reset();
    std::string_view in = text;
    while (!in.empty()) in.remove_prefix(stuffer.encode(in, out.data(), kOutputBlockBytes).consumed);
    benchmark::DoNotOptimize(stuffer.finish(out.data()));
  }
  state.SetBytesProcessed(int64_t(state.iterations() * text.size()));
}
BENCHMARK(BM_DotStuffAllDots);

// A plain copy of the same bytes: what stuffing costs over memcpy.
void BM_MemcpyBaseline(benchmark::State& state) {
  const std::string text = popgate::bench::make_message(
      popgate::bench::group_spec(Group::kBig, DatasetSize::kFull), 0, 0);
  std::vector<char> out(kOutputBlockBytes);
  for (auto _ : state) {
    for (size_t off = 0; off < text.size(); off += kOutputBlockBytes) {
      const size_t n = std::min(kOutputBlockBytes, text.size() - off);
      std::memcpy(out.data(), text.data() + off, n);
      benchmark::ClobberMemory();
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations() * text.size()));
}
BENCHMARK(BM_MemcpyBaseline);

}  // namespace
