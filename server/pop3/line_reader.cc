#include "server/pop3/line_reader.h"

#include <cstring>

namespace popgate::pop3 {

void LineReader::reset() noexcept {
  len_ = 0;
  discarding_ = false;
  discarded_ = 0;
  line_ = {};
}

LineReader::Step LineReader::next(std::string_view in) noexcept {
  line_ = {};
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
    if (len_ + in.size() > buf_.size()) {
      // Too long already; say so once and drop the rest of this line.
      discarding_ = true;
      discarded_ = len_ + in.size();
      len_ = 0;
      if (discarded_ > kInputDiscardBytesMax) return {Event::kFlood, in.size()};
      return {Event::kTooLong, in.size()};
    }
    std::memcpy(buf_.data() + len_, in.data(), in.size());
    len_ += in.size();
    return {Event::kNeedMore, in.size()};
  }
  return finish_line(in.substr(0, lf), lf + 1);
}

LineReader::Step LineReader::finish_line(std::string_view head, size_t consumed) noexcept {
  const size_t total = len_ + head.size();
  std::string_view line;
  if (total > buf_.size()) {
    len_ = 0;
    // The same verdict whichever way the bytes were split: a line this long
    // would have tripped the discard budget had it come in pieces.
    return {total > kInputDiscardBytesMax ? Event::kFlood : Event::kTooLong, consumed};
  }
  if (len_ == 0) {
    line = head;  // zero copy: the whole line is in the caller's bytes
  } else {
    std::memcpy(buf_.data() + len_, head.data(), head.size());
    line = std::string_view(buf_.data(), total);
    len_ = 0;
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kCommandLineBytesMax) return {Event::kTooLong, consumed};
  if (line.find('\0') != std::string_view::npos) return {Event::kNul, consumed};
  line_ = line;
  return {Event::kLine, consumed};
}

}  // namespace popgate::pop3
