// The command parser: pop3::parse_command_line on the lines clients send,
// and LineReader turning a byte stream into lines, whole and in small
// pieces (as a slow network delivers them).
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <vector>

#include "server/pop3/command.h"
#include "server/pop3/line_reader.h"

namespace {

using popgate::pop3::LineReader;

const std::vector<std::string_view> kLines = {
    "USER alice@example.org", "PASS correct horse battery staple", "STAT", "LIST", "UIDL",
    "LIST 17", "RETR 1", "RETR 1234", "DELE 99", "TOP 12 0", "NOOP", "uidl 5", "QUIT",
    "CAPA", "AUTH PLAIN", "XYZZY frobnicate"};

void BM_ParseCommandLine(benchmark::State& state) {
  size_t i = 0;
  for (auto _ : state) {
    const auto cmd = popgate::pop3::parse_command_line(kLines[i]);
    benchmark::DoNotOptimize(cmd);
    i = (i + 1) % kLines.size();
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_ParseCommandLine);

void BM_ParseNumber(benchmark::State& state) {
  const std::string_view numbers[] = {"1", "17", "1234", "99999", "4294967295"};
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(popgate::pop3::parse_number(numbers[i]));
    i = (i + 1) % 5;
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_ParseNumber);

std::string command_stream() {
  std::string s;
  for (int r = 0; r < 64; ++r) {
    for (const auto line : kLines) {
      if (line.substr(0, 4) == "AUTH") continue;  // SASL lines switch modes
      s += line;
      s += "\r\n";
    }
  }
  return s;
}

// Arg: bytes per read (0 = the whole stream at once).
void BM_LineReader(benchmark::State& state) {
  const std::string stream = command_stream();
  const auto piece = size_t(state.range(0));
  for (auto _ : state) {
    LineReader reader;
    size_t lines = 0;
    for (size_t off = 0; off < stream.size();) {
      const size_t len = piece == 0 ? stream.size() - off : std::min(piece, stream.size() - off);
      std::string_view in(stream.data() + off, len);
      while (!in.empty()) {
        const LineReader::Step step = reader.next(in);
        in.remove_prefix(step.consumed);
        if (step.event == LineReader::Event::kLine) ++lines;
        if (step.consumed == 0) break;
      }
      off += len;
    }
    benchmark::DoNotOptimize(lines);
  }
  state.SetBytesProcessed(int64_t(state.iterations() * stream.size()));
}
BENCHMARK(BM_LineReader)->Arg(0)->Arg(7)->Arg(1);

}  // namespace
