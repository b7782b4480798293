// Fuzz target: the dot-stuffing encoder (server/pop3/dot_stuffer.h) for
// arbitrary bodies (bare CR or LF, NUL, lines of '.', no final line end),
// fed in arbitrary chunks into arbitrarily small output windows.
//
// Input: [mode] [input-cut seed: 4] [output-window seed: 4] body...
//   mode 0xff: RETR (all lines); otherwise TOP with mode % 8 body lines.
// Checks: the chunked encoding equals the one-shot encoding; every call with
// room makes progress; dot_unstuff() of the result gives back the body
// (RETR) or exactly TOP's part of it (header, blank line, n lines), plus the
// CRLF finish() adds when that text does not end with a line end.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/pop3/dot_stuffer.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using popgate::pop3::DotStuffer;

// What TOP `lines` (or RETR, for kAllLines) sends of `body`, before the
// terminator: the header up to and including the first empty line ("\n" or
// "\r\n"), then at most `lines` lines. Written independently of the encoder.
std::string reference_text(std::string_view body, uint64_t lines) {
  if (lines == DotStuffer::kAllLines) return std::string(body);
  std::string out;
  bool in_header = true;
  size_t pos = 0;
  uint64_t left = lines;
  while (pos < body.size()) {
    if (!in_header && left == 0) break;
    const size_t lf = body.find('\n', pos);
    const size_t end = lf == std::string_view::npos ? body.size() : lf + 1;
    const std::string_view line = body.substr(pos, end - pos);
    out.append(line);
    pos = end;
    if (lf == std::string_view::npos) break;
    if (in_header) {
      if (line == "\n" || line == "\r\n") in_header = false;
    } else {
      --left;
    }
  }
  return out;
}

// Encodes `body` cut at `cuts` into windows of sizes drawn from `windows`.
// Returns the stuffed reply body including the terminator.
std::string encode_chunked(DotStuffer& stuffer, std::string_view body, uint64_t lines,
                           const std::vector<size_t>& cuts, uint32_t window_seed) {
  stuffer.reset(lines);
  popgate::fuzz::Xorshift windows(window_seed);
  const uint32_t window_max = 1 + window_seed % 64;
  std::string out;
  char buf[4096];
  bool done = false;
  for (std::string_view piece : popgate::fuzz::pieces(body, cuts)) {
    while (!piece.empty() && !done) {
      const size_t space = (window_seed & 0x80000000U) != 0 && windows.below(8) == 0
                               ? sizeof(buf)
                               : 1 + windows.below(window_max);
      const DotStuffer::Step step = stuffer.encode(piece, buf, space);
      POPGATE_FUZZ_CHECK(step.consumed <= piece.size(), "consumed more than offered");
      POPGATE_FUZZ_CHECK(step.produced <= space, "wrote past the window");
      POPGATE_FUZZ_CHECK(step.consumed > 0 || step.produced > 0 || step.done,
                         "no progress with room and input");
      POPGATE_FUZZ_CHECK(step.done == stuffer.done(), "step.done disagrees with done()");
      out.append(buf, step.produced);
      piece.remove_prefix(step.consumed);
      done = step.done;
    }
    if (done) break;
  }
  char tail[DotStuffer::kFinishBytesMax];
  const size_t n = stuffer.finish(tail);
  POPGATE_FUZZ_CHECK(n <= DotStuffer::kFinishBytesMax, "finish() overran its bound");
  out.append(tail, n);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  popgate::fuzz::FuzzInput in(data, size);
  const uint8_t mode = in.byte();
  const uint32_t cut_seed = in.u32();
  const uint32_t window_seed = in.u32();
  const std::string_view body = in.rest();
  const uint64_t lines = mode == 0xff ? DotStuffer::kAllLines : mode % 8;

  DotStuffer stuffer;
  const std::string chunked =
      encode_chunked(stuffer, body, lines, popgate::fuzz::derived_cuts(body.size(), cut_seed),
                     window_seed);
  // The same object after reset(), whole input, roomy windows.
  const std::string whole = encode_chunked(stuffer, body, lines, {}, 0x80000000U | 4095U);
  POPGATE_FUZZ_CHECK(chunked == whole, "chunking changed the encoding");

  std::string expected = reference_text(body, lines);
  if (!expected.empty() && expected.back() != '\n') expected += "\r\n";
  std::string unstuffed;
  POPGATE_FUZZ_CHECK(popgate::pop3::dot_unstuff(chunked, unstuffed),
                     "encoder output is not a well-formed multi-line body");
  POPGATE_FUZZ_CHECK(unstuffed == expected, "round trip lost or changed octets");
  return 0;
}
