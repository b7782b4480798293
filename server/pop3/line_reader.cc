#include "server/pop3/line_reader.h"

#include <cstring>

namespace popgate::pop3 {
namespace {

bool starts_with_auth(std::string_view a, std::string_view b) noexcept {
  static constexpr char kAuth[] = "AUTH ";
  for (size_t i = 0; i < 5; ++i) {
    char c = 0;
    if (i < a.size()) {
      c = a[i];
    } else if (i - a.size() < b.size()) {
      c = b[i - a.size()];
    } else {
      return false;
    }
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != kAuth[i]) return false;
  }
  return true;
}

}  // namespace

void LineReader::reset() noexcept {
  len_ = 0;
  discarding_ = false;
  in_long_ = false;
  discarded_ = 0;
  line_ = {};
  long_.clear();
  long_.shrink_to_fit();  // an idle session keeps no long-line memory
}

bool LineReader::long_allowed(std::string_view more) const noexcept {
  if (sasl_mode_) return true;
  const std::string_view head = in_long_ ? std::string_view(long_) : std::string_view(buf_.data(), len_);
  return starts_with_auth(head, more);
}

LineReader::Step LineReader::start_discarding(size_t bytes, size_t consumed) noexcept {
  discarding_ = true;
  discarded_ = bytes;
  len_ = 0;
  in_long_ = false;
  long_.clear();
  if (discarded_ > kInputDiscardBytesMax) return {Event::kFlood, consumed};
  return {Event::kTooLong, consumed};
}

LineReader::Step LineReader::next(std::string_view in) noexcept {
  line_ = {};
  if (!in_long_ && !long_.empty()) long_.clear();  // the last long line was handed out
  const size_t lf = in.find('\n');
  if (discarding_) {
    if (lf == std::string_view::npos) {
      discarded_ += in.size();
      if (discarded_ > kInputDiscardBytesMax) return {Event::kFlood, in.size()};
      return {Event::kNeedMore, in.size()};
    }
    discarded_ += lf + 1;
    discarding_ = false;
    const bool flood = discarded_ > kInputDiscardBytesMax;
    discarded_ = 0;
    return {flood ? Event::kFlood : Event::kNeedMore, lf + 1};
  }
  if (lf == std::string_view::npos) {
    const size_t held = in_long_ ? long_.size() : len_;
    if (held + in.size() > buf_.size()) {
      // Beyond a command line: a SASL line may go on, anything else is cut.
      if (!long_allowed(in) || held + in.size() > kSaslLineBytesMax + 1) {
        return start_discarding(held + in.size(), in.size());
      }
      if (!in_long_) {
        long_.assign(buf_.data(), len_);
        len_ = 0;
        in_long_ = true;
      }
      long_.append(in);
      return {Event::kNeedMore, in.size()};
    }
    std::memcpy(buf_.data() + len_, in.data(), in.size());
    len_ += in.size();
    return {Event::kNeedMore, in.size()};
  }
  const std::string_view head = in.substr(0, lf);
  if (in_long_) return finish_long_line(head, lf + 1);
  return finish_line(head, lf + 1);
}

LineReader::Step LineReader::finish_long_line(std::string_view head, size_t consumed) noexcept {
  in_long_ = false;
  if (long_.size() + head.size() > kSaslLineBytesMax + 1) {
    const size_t total = long_.size() + head.size();
    long_.clear();
    return {total > kInputDiscardBytesMax ? Event::kFlood : Event::kTooLong, consumed};
  }
  long_.append(head);
  std::string_view line(long_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find('\0') != std::string_view::npos) return {Event::kNul, consumed};
  line_ = line;  // valid until the next call, which clears long_ first
  return {Event::kLine, consumed};
}

LineReader::Step LineReader::finish_line(std::string_view head, size_t consumed) noexcept {
  const size_t total = len_ + head.size();
  std::string_view line;
  if (total > buf_.size()) {
    if (long_allowed(head) && total <= kSaslLineBytesMax + 1) {
      if (len_ == 0) {
        line = head;  // zero copy, as for short lines
      } else {
        long_.assign(buf_.data(), len_);
        len_ = 0;
        in_long_ = true;
        return finish_long_line(head, consumed);
      }
    } else {
      len_ = 0;
      // The same verdict whichever way the bytes were split: a line this
      // long would have tripped the discard budget had it come in pieces.
      return {total > kInputDiscardBytesMax ? Event::kFlood : Event::kTooLong, consumed};
    }
  } else if (len_ == 0) {
    line = head;  // zero copy: the whole line is in the caller's bytes
  } else {
    std::memcpy(buf_.data() + len_, head.data(), head.size());
    line = std::string_view(buf_.data(), total);
    len_ = 0;
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t limit =
      sasl_mode_ || starts_with_auth(line, {}) ? kSaslLineBytesMax : kCommandLineBytesMax;
  if (line.size() > limit) return {Event::kTooLong, consumed};
  if (line.find('\0') != std::string_view::npos) return {Event::kNul, consumed};
  line_ = line;
  return {Event::kLine, consumed};
}

}  // namespace popgate::pop3
