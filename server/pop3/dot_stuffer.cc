#include "server/pop3/dot_stuffer.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace popgate::pop3 {
namespace {

// Index of the first '\n' in p[0, n) that is followed by '.' inside the
// range, or n. RETR's hot loop: a large message is mostly lines that need
// no stuffing, and finding each line end with memchr and copying line by
// line cost 29% of popgate's CPU on 1 MiB RETRs (bench/RESULTS.md,
// Profiles). No library scans for a two-octet pattern this fast: glibc 2.36's
// memmem walks a two-octet needle one octet at a time. SSE2 is part of
// x86-64; other targets take memmem.
size_t find_lf_dot(const char* p, size_t n) noexcept {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i dot = _mm_set1_epi8('.');
  for (; i + 17 <= n; i += 16) {
    const __m128i here = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
    const int hits = _mm_movemask_epi8(
        _mm_and_si128(_mm_cmpeq_epi8(here, lf), _mm_cmpeq_epi8(next, dot)));
    if (hits != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(hits)));
  }
#endif
  if (n - i < 2) return n;
  const void* hit = memmem(p + i, n - i, "\n.", 2);
  return hit ? static_cast<size_t>(static_cast<const char*>(hit) - p) : n;
}

}  // namespace

void DotStuffer::reset(uint64_t body_lines) noexcept {
  limit_lines_ = body_lines != kAllLines;
  body_lines_left_ = body_lines;
  in_header_ = true;
  line_start_ = true;
  done_ = false;
  line_bytes_ = 0;
  line_first_ = 0;
}

void DotStuffer::end_line() noexcept {
  const bool empty = line_bytes_ == 1 || (line_bytes_ == 2 && line_first_ == '\r');
  line_start_ = true;
  line_bytes_ = 0;
  if (in_header_) {
    if (empty) {
      in_header_ = false;  // the blank line is sent; the body starts
      if (body_lines_left_ == 0) done_ = true;
    }
    return;
  }
  if (body_lines_left_ > 0) --body_lines_left_;
  if (body_lines_left_ == 0) done_ = true;
}

// TOP (line counting); RETR takes encode_all.
DotStuffer::Step DotStuffer::encode(std::string_view in, char* out, size_t out_space) noexcept {
  if (!limit_lines_) return encode_all(in, out, out_space);
  Step step;
  while (step.consumed < in.size() && !done_) {
    if (line_start_) {
      if (in[step.consumed] == '.') {
        if (step.produced == out_space) break;
        out[step.produced++] = '.';
      }
      line_start_ = false;
      line_first_ = in[step.consumed];
    }
    const size_t room = out_space - step.produced;
    if (room == 0) break;
    const size_t avail = std::min(in.size() - step.consumed, room);
    const char* from = in.data() + step.consumed;
    const void* lf = std::memchr(from, '\n', avail);
    const size_t run = lf ? static_cast<size_t>(static_cast<const char*>(lf) - from) + 1 : avail;
    std::memcpy(out + step.produced, from, run);
    step.produced += run;
    step.consumed += run;
    line_bytes_ = line_bytes_ > UINT32_MAX - run ? UINT32_MAX
                                                  : line_bytes_ + static_cast<uint32_t>(run);
    if (lf) end_line();
  }
  step.done = done_;
  return step;
}

// RETR: no line counting, so only a line that starts with '.' needs
// attention; everything between two of them is one copy.
DotStuffer::Step DotStuffer::encode_all(std::string_view in, char* out, size_t out_space) noexcept {
  Step step;
  while (step.consumed < in.size()) {
    if (line_start_) {
      if (in[step.consumed] == '.') {
        if (step.produced == out_space) break;
        out[step.produced++] = '.';
      }
      line_start_ = false;
    }
    const size_t avail = std::min(in.size() - step.consumed, out_space - step.produced);
    if (avail == 0) break;
    const char* from = in.data() + step.consumed;
    const size_t lf = find_lf_dot(from, avail);
    // Through that line end (the next line starts with '.'), or all of it.
    const size_t run = lf < avail ? lf + 1 : avail;
    std::memcpy(out + step.produced, from, run);
    step.produced += run;
    step.consumed += run;
    line_start_ = from[run - 1] == '\n';
  }
  return step;
}

size_t DotStuffer::finish(char* out) noexcept {
  size_t n = 0;
  if (!line_start_) {
    out[n++] = '\r';
    out[n++] = '\n';
    line_start_ = true;
  }
  out[n++] = '.';
  out[n++] = '\r';
  out[n++] = '\n';
  return n;
}

bool dot_unstuff(std::string_view stuffed, std::string& out) {
  out.clear();
  size_t pos = 0;
  while (pos < stuffed.size()) {
    size_t lf = stuffed.find('\n', pos);
    if (lf == std::string_view::npos) return false;  // no terminator
    std::string_view line = stuffed.substr(pos, lf + 1 - pos);
    if (line == ".\r\n") return lf + 1 == stuffed.size();
    if (line[0] == '.') {
      if (line.size() < 2 || line[1] != '.') return false;  // unstuffed dot
      line.remove_prefix(1);
    }
    out.append(line);
    pos = lf + 1;
  }
  return false;
}

}  // namespace popgate::pop3
