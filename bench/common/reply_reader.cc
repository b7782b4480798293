#include "bench/common/reply_reader.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "bench/common/crc32c.h"
#include "bench/common/dataset.h"

namespace popgate::bench {
namespace {

// Decimal digits only, no sign, fits in 63 bits; -1 otherwise.
int64_t parse_decimal(std::string_view s) noexcept {
  if (s.empty() || s.size() > 18) return -1;
  int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

void ReplyReader::expect(Shape shape, std::vector<uint32_t>* sizes, std::string* capture,
                         const std::string* reference) noexcept {
  shape_ = shape;
  phase_ = Phase::kStatusLine;
  ok_ = false;
  sizes_ = sizes;
  if (sizes_ != nullptr) sizes_->clear();
  capture_ = capture;
  if (capture_ != nullptr) capture_->clear();
  reference_ = reference;
  reference_at_ = 0;
  status_len_ = 0;
  line_len_ = 0;
  entries_ = 0;
  sizes_sum_ = 0;
  dot_ = Dot::kNone;
  line_start_ = true;
  prev_cr_ = false;
  crc_ = kCrc32cInit;
  crc_line_start_ = kCrc32cInit;
  crc_prev_line_start_ = kCrc32cInit;
  text_line_len_ = 0;
  prev_line_len_ = 0;
  body_octets_ = 0;
  wire_body_octets_ = 0;
  trailer_ok_ = false;
  violation_ = {};
}

ReplyReader::Status ReplyReader::fail(std::string_view why) noexcept {
  phase_ = Phase::kViolation;
  violation_ = why;
  return Status::kViolation;
}

int64_t ReplyReader::status_octets() const noexcept {
  // "+OK 1234 octets" (RFC 1939's examples; popgate and Dovecot both say it).
  const std::string_view s = status_line();
  if (s.size() < 5 || s.substr(0, 4) != "+OK ") return -1;
  const std::string_view rest = s.substr(4);
  const size_t sp = rest.find(' ');
  if (sp == std::string_view::npos || rest.substr(sp) != " octets") return -1;
  return parse_decimal(rest.substr(0, sp));
}

ReplyReader::Status ReplyReader::feed(std::string_view in, size_t* consumed) noexcept {
  size_t used = 0;
  Status st = Status::kNeedMore;
  while (used < in.size()) {
    size_t n = 0;
    switch (phase_) {
      case Phase::kStatusLine: st = feed_status(in.substr(used), &n); break;
      case Phase::kListing: st = feed_listing(in.substr(used), &n); break;
      case Phase::kBody: st = feed_body(in.substr(used), &n); break;
      case Phase::kDone: *consumed = used; return Status::kDone;
      case Phase::kViolation: *consumed = used; return Status::kViolation;
    }
    used += n;
    if (st != Status::kNeedMore) break;
  }
  *consumed = used;
  if (phase_ == Phase::kDone) return Status::kDone;
  if (phase_ == Phase::kViolation) return Status::kViolation;
  return Status::kNeedMore;
}

ReplyReader::Status ReplyReader::feed_status(std::string_view in, size_t* used) noexcept {
  const void* lf = std::memchr(in.data(), '\n', in.size());
  const size_t take = lf == nullptr ? in.size()
                                    : size_t(static_cast<const char*>(lf) - in.data()) + 1;
  if (status_len_ + take > status_.size()) {
    *used = take;
    return fail("status line longer than 512 octets");
  }
  std::memcpy(status_.data() + status_len_, in.data(), take);
  status_len_ += take;
  *used = take;
  if (lf == nullptr) return Status::kNeedMore;
  return finish_status();
}

ReplyReader::Status ReplyReader::finish_status() noexcept {
  if (status_len_ < 2 || status_[status_len_ - 2] != '\r') {
    return fail("status line not ended by CRLF");
  }
  status_len_ -= 2;
  const std::string_view s = status_line();
  const auto starts = [&](std::string_view p) {
    return s.substr(0, p.size()) == p && (s.size() == p.size() || s[p.size()] == ' ');
  };
  if (starts("+OK")) {
    ok_ = true;
  } else if (starts("-ERR")) {
    ok_ = false;
  } else {
    return fail("status line is neither +OK nor -ERR");
  }
  if (!ok_ || shape_ == Shape::kStatus) {
    phase_ = Phase::kDone;
    return Status::kDone;
  }
  phase_ = shape_ == Shape::kMessage ? Phase::kBody : Phase::kListing;
  return Status::kNeedMore;
}

ReplyReader::Status ReplyReader::feed_reference(std::string_view in, size_t* used) noexcept {
  const size_t take = std::min(in.size(), reference_->size() - reference_at_);
  *used = take;
  if (std::memcmp(in.data(), reference_->data() + reference_at_, take) != 0) {
    return fail("listing differs from the same listing earlier in the session");
  }
  reference_at_ += take;
  if (reference_at_ < reference_->size()) return Status::kNeedMore;
  phase_ = Phase::kDone;
  return Status::kDone;
}

ReplyReader::Status ReplyReader::feed_listing(std::string_view in, size_t* used) noexcept {
  if (reference_ != nullptr) return feed_reference(in, used);
  size_t i = 0;
  Status st = Status::kNeedMore;
  while (i < in.size() && st == Status::kNeedMore) {
    const void* lf = std::memchr(in.data() + i, '\n', in.size() - i);
    if (lf == nullptr) {  // a partial line: keep it for the next read
      const size_t rest = in.size() - i;
      if (line_len_ + rest > line_.size()) {
        st = fail("listing line longer than 512 octets");
        break;
      }
      std::memcpy(line_.data() + line_len_, in.data() + i, rest);
      line_len_ += rest;
      i = in.size();
      break;
    }
    const size_t end = size_t(static_cast<const char*>(lf) - in.data()) + 1;
    if (line_len_ == 0) {
      st = finish_listing_line(in.substr(i, end - i));  // parsed in place
    } else {
      if (line_len_ + end - i > line_.size()) {
        st = fail("listing line longer than 512 octets");
        break;
      }
      std::memcpy(line_.data() + line_len_, in.data() + i, end - i);
      const std::string_view joined(line_.data(), line_len_ + end - i);
      line_len_ = 0;
      st = finish_listing_line(joined);
    }
    i = end;
  }
  if (capture_ != nullptr) capture_->append(in.data(), i);
  *used = i;
  return st;
}

// `line` includes its CRLF.
ReplyReader::Status ReplyReader::finish_listing_line(std::string_view line) noexcept {
  if (line.size() < 2 || line[line.size() - 2] != '\r') return fail("listing line not ended by CRLF");
  line.remove_suffix(2);
  if (line.size() == 1 && line[0] == '.') {
    phase_ = Phase::kDone;
    return Status::kDone;
  }
  if (!line.empty() && line[0] == '.') {
    if (line.size() < 2 || line[1] != '.') return fail("listing line starts with a lone '.'");
    line.remove_prefix(1);
  }
  ++entries_;
  if (shape_ == Shape::kLines) return Status::kNeedMore;
  // "msn SP value": the msn must be the next number.
  size_t k = 0;
  uint64_t msn = 0;
  while (k < line.size() && k < 10 && line[k] >= '0' && line[k] <= '9') {
    msn = msn * 10 + uint64_t(line[k] - '0');
    ++k;
  }
  if (k == 0 || k >= line.size() || line[k] != ' ') return fail("listing line without 'msn SP value'");
  if (msn != entries_) return fail("listing msn out of sequence");
  const std::string_view value = line.substr(k + 1);
  if (shape_ == Shape::kList) {
    // RFC 1939 allows more information after the size.
    const size_t end = value.find(' ');
    const int64_t size = parse_decimal(value.substr(0, end));
    if (size < 0 || size > int64_t(UINT32_MAX)) return fail("LIST size is not a number");
    sizes_sum_ += uint64_t(size);
    if (sizes_ != nullptr) sizes_->push_back(uint32_t(size));
    return Status::kNeedMore;
  }
  if (value.empty() || value.size() > kUidBytesMax) return fail("UIDL unique-id length not 1-70");
  for (const char c : value) {
    if (c < 0x21 || c > 0x7E) return fail("UIDL unique-id has an octet outside 0x21-0x7E");
  }
  return Status::kNeedMore;
}

void ReplyReader::begin_text_line() noexcept {
  crc_line_start_ = crc_;
  text_line_len_ = 0;
  line_start_ = false;
}

void ReplyReader::hash(std::string_view bytes) noexcept {
  crc_ = crc32c_update(crc_, bytes);
  body_octets_ += bytes.size();
}

// The line that ends at in[lf] (an LF) is complete, and so is every line
// before it from `from` on: hash them and keep the last one.
void ReplyReader::complete_through(std::string_view in, size_t from, size_t lf) noexcept {
  size_t start = from;
  if (lf > from) {
    if (const void* q = memrchr(in.data() + from, '\n', lf - from)) {
      start = size_t(static_cast<const char*>(q) - in.data()) + 1;
      hash(in.substr(from, start - from));
      crc_line_start_ = crc_;
      text_line_len_ = 0;
    }
  }
  const std::string_view last = in.substr(start, lf + 1 - start);
  hash(last);
  if (text_line_len_ < kHeadBytes) {
    const size_t copy = std::min(kHeadBytes - text_line_len_, last.size());
    std::memcpy(head_.data() + text_line_len_, last.data(), copy);
  }
  text_line_len_ += last.size();
  crc_prev_line_start_ = crc_line_start_;
  prev_line_len_ = text_line_len_;
  std::memcpy(prev_head_.data(), head_.data(), std::min(prev_line_len_, kHeadBytes));
  crc_line_start_ = crc_;
  text_line_len_ = 0;
}

// in[from, end) is the start of a line whose end is in a later read.
void ReplyReader::partial_line(std::string_view in, size_t from) noexcept {
  const std::string_view part = in.substr(from);
  hash(part);
  if (text_line_len_ < kHeadBytes) {
    const size_t copy = std::min(kHeadBytes - text_line_len_, part.size());
    std::memcpy(head_.data() + text_line_len_, part.data(), copy);
  }
  text_line_len_ += part.size();
}

namespace {

struct Scan {
  size_t dot_line_lf = std::string_view::npos;  // an LF followed by '.'
  bool bare_lf = false;                          // an LF without CR before it
};

// Scans in[from, end) for the first LF that is followed by '.' inside `in`,
// checking that each LF on the way follows a CR. The octet before `from`
// is a CR when `cr_before` (it may be in an earlier read).
Scan scan_text(std::string_view in, size_t from, bool cr_before) noexcept {
  Scan r;
  const char* p = in.data();
  const size_t n = in.size();
  size_t i = from;
  const auto scalar = [&](size_t j) {
    if (p[j] != '\n') return false;
    const bool cr = j > from ? p[j - 1] == '\r' : cr_before;
    if (!cr) r.bare_lf = true;
    return j + 1 < n && p[j + 1] == '.';
  };
  if (i < n && i == from) {  // the first octet may need the previous read's
    if (scalar(i)) {
      r.dot_line_lf = i;
      return r;
    }
    ++i;
  }
#if defined(__SSE2__)
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i dot = _mm_set1_epi8('.');
  const __m128i cr = _mm_set1_epi8('\r');
  while (i + 17 <= n) {  // needs p[i-1] .. p[i+16]
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
    const __m128i prev = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i - 1));
    const __m128i is_lf = _mm_cmpeq_epi8(a, lf);
    if (_mm_movemask_epi8(is_lf) != 0) {
      const auto m_dot = uint32_t(_mm_movemask_epi8(_mm_and_si128(is_lf, _mm_cmpeq_epi8(next, dot))));
      const auto m_bad = uint32_t(_mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(prev, cr), is_lf)));
      uint32_t upto = 0xFFFFU;
      if (m_dot != 0) {
        const unsigned k = unsigned(__builtin_ctz(m_dot));
        upto = (2U << k) - 1;
        r.dot_line_lf = i + k;
      }
      if ((m_bad & upto) != 0) r.bare_lf = true;
      if (m_dot != 0) return r;
    }
    i += 16;
  }
#endif
  for (; i < n; ++i) {
    if (scalar(i)) {
      r.dot_line_lf = i;
      return r;
    }
  }
  return r;
}

}  // namespace

ReplyReader::Status ReplyReader::feed_body(std::string_view in, size_t* used) noexcept {
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    if (line_start_) {
      const char c = in[i];
      if (dot_ == Dot::kNone) {
        if (c == '.') {
          dot_ = Dot::kDot;
          ++i;
          continue;
        }
        begin_text_line();
      } else if (dot_ == Dot::kDot) {
        if (c == '\r') {
          dot_ = Dot::kDotCr;
          ++i;
          continue;
        }
        if (c != '.') {
          *used = i;
          return fail("message line starts with an unstuffed '.'");
        }
        dot_ = Dot::kNone;
        begin_text_line();  // content starts at this second '.'
      } else {
        if (c != '\n') {
          *used = i;
          return fail("'.' CR in message text not followed by LF");
        }
        ++i;
        *used = i;
        wire_body_octets_ += i;
        return finish_body();
      }
    }
    const bool cr_before = i > 0 ? in[i - 1] == '\r' : prev_cr_;
    const Scan scan = scan_text(in, i, cr_before);
    if (scan.bare_lf) {
      *used = n;
      return fail("message line ended by a bare LF");
    }
    if (scan.dot_line_lf != std::string_view::npos) {
      complete_through(in, i, scan.dot_line_lf);
      i = scan.dot_line_lf + 1;
      line_start_ = true;
      continue;
    }
    // No line in the rest of this read starts with '.'.
    const void* last = memrchr(in.data() + i, '\n', n - i);
    if (last != nullptr) {
      const size_t lf = size_t(static_cast<const char*>(last) - in.data());
      complete_through(in, i, lf);
      i = lf + 1;
      line_start_ = i == n;
      if (!line_start_) partial_line(in, i);
    } else {
      partial_line(in, i);
    }
    i = n;
  }
  prev_cr_ = n > 0 && in[n - 1] == '\r';
  wire_body_octets_ += n;
  *used = n;
  return Status::kNeedMore;
}

ReplyReader::Status ReplyReader::finish_body() noexcept {
  phase_ = Phase::kDone;
  if (prev_line_len_ >= 2 && prev_line_len_ <= kHeadBytes) {
    const std::string_view last(prev_head_.data(), prev_line_len_ - 2);
    trailer_ok_ = trailer_matches(last, crc32c_final(crc_prev_line_start_));
  }
  return Status::kDone;
}

}  // namespace popgate::bench
