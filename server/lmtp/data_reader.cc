#include "server/lmtp/data_reader.h"

#include <algorithm>

#include "server/lmtp/limits.h"

namespace popgate::lmtp {

void wipe(std::string& s) noexcept {
  // volatile: the compiler may not drop a store to memory it thinks is dead.
  volatile char* p = s.data();
  for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
  s.clear();
}

void wipe_and_release(std::string& s) noexcept {
  wipe(s);
  std::string().swap(s);
}

void DataReader::start(std::string* body, uint64_t body_bytes_max, uint64_t raw_bytes_max) noexcept {
  body_ = body;
  prefix_bytes_ = body->size();
  body_bytes_max_ = body_bytes_max;
  raw_bytes_max_ = raw_bytes_max;
  body_bytes_ = 0;
  raw_ = 0;
  line_start_ = 0;
  lines_over_rfc_ = 0;
  state_ = State::kLineStart;
  line_flagged_ = false;
  too_big_ = false;
  line_too_long_ = false;
}

void DataReader::refuse_body() noexcept {
  body_bytes_ = 0;
  wipe_and_release(*body_);
}

void DataReader::reserve_for(size_t n) noexcept {
  const size_t need = body_->size() + n;
  if (need <= body_->capacity()) return;
  // Doubling, capped at the limit. A fresh string gets exactly the capacity
  // asked for (reserve() on a used one may double past the cap).
  const size_t cap = prefix_bytes_ + static_cast<size_t>(body_bytes_max_);
  const size_t want = std::min(std::max(need, body_->capacity() * 2), cap);
  std::string grown;
  grown.reserve(want);
  grown.append(*body_);
  wipe(*body_);
  body_->swap(grown);
}

void DataReader::emit(const char* p, size_t n) noexcept {
  if (n == 0 || refused()) return;
  if (body_bytes_ + n > body_bytes_max_) {
    too_big_ = true;
    refuse_body();
    return;
  }
  body_bytes_ += n;
  reserve_for(n);
  body_->append(p, n);
}

void DataReader::end_line(uint64_t raw_after_lf) noexcept {
  const uint64_t length = raw_after_lf - line_start_;
  line_start_ = raw_after_lf;
  if (length > kDataLineBytesRfc) ++lines_over_rfc_;
  if (length > kDataLineBytesMax && !line_flagged_) {
    line_too_long_ = true;
    refuse_body();
  }
  line_flagged_ = false;
}

void DataReader::check_partial_line(uint64_t raw_now) noexcept {
  // Without its LF the line is already too long: stop keeping it now, not
  // at its end (the verdict is the same).
  if (!line_flagged_ && raw_now - line_start_ > kDataLineBytesMax) {
    line_flagged_ = true;
    if (!refused()) refuse_body();
    line_too_long_ = true;
  }
}

size_t DataReader::feed_text(std::string_view in, size_t i) noexcept {
  // The run up to the next line end is copied in one piece.
  size_t j = i;
  while (j < in.size() && in[j] != '\n' && in[j] != '\r') ++j;
  emit(in.data() + i, j - i);
  if (j == in.size()) return j;
  emit("\r\n", 2);  // for a LF, and for a CR whether or not a LF follows
  if (in[j] == '\n') {
    end_line(raw_ + j + 1);
    state_ = State::kLineStart;
  } else {
    state_ = State::kCr;
  }
  return j + 1;
}

DataReader::Step DataReader::feed(std::string_view in) noexcept {
  if (raw_ >= raw_bytes_max_) return {in.empty() ? Event::kNeedMore : Event::kOverrun, 0};
  const bool clipped = in.size() > raw_bytes_max_ - raw_;
  if (clipped) in = in.substr(0, static_cast<size_t>(raw_bytes_max_ - raw_));
  static constexpr char kCrlf[] = "\r\n";
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    switch (state_) {
      case State::kLineStart:
        if (c == '.') {
          state_ = State::kDot;
          ++i;
        } else {
          state_ = State::kText;
        }
        continue;
      case State::kDot:
        if (c == '\n') {
          raw_ += i + 1;
          state_ = State::kLineStart;
          return {Event::kEnd, i + 1};
        }
        if (c == '\r') {
          state_ = State::kDotCr;
          ++i;
        } else {
          state_ = State::kText;  // the stuffing dot is dropped
        }
        continue;
      case State::kDotCr:
        if (c == '\n') {
          raw_ += i + 1;
          state_ = State::kLineStart;
          return {Event::kEnd, i + 1};
        }
        emit(kCrlf, 2);  // ".\r" + other: a stuffing dot, then a lone CR
        state_ = State::kText;
        continue;
      case State::kCr:
        if (c == '\n') {
          ++i;
          end_line(raw_ + i);
          state_ = State::kLineStart;
        } else {
          state_ = State::kText;
        }
        continue;
      case State::kText:
        i = feed_text(in, i);
        continue;
    }
  }
  raw_ += i;
  check_partial_line(raw_);
  return {clipped ? Event::kOverrun : Event::kNeedMore, i};
}

}  // namespace popgate::lmtp
