#include "server/lmtp/command_reader.h"

#include <cstring>

namespace popgate::lmtp {

CommandReader::Step CommandReader::next(std::string_view in) noexcept {
  line_ = {};
  const size_t lf = in.find('\n');
  if (discarding_) {
    const size_t take = lf == std::string_view::npos ? in.size() : lf + 1;
    discarded_ += take;
    if (discarded_ > kInputDiscardBytesMax) {
      discarding_ = false;
      discarded_ = 0;
      return {Event::kFlood, take};
    }
    if (lf == std::string_view::npos) return {Event::kNeedMore, take};
    discarding_ = false;
    discarded_ = 0;
    return {Event::kTooLong, take};
  }
  if (lf == std::string_view::npos) {
    if (len_ + in.size() > buf_.size()) {
      // Too long already; say so at its LF (or when it becomes a flood).
      discarding_ = true;
      discarded_ = len_ + in.size();
      len_ = 0;
      if (discarded_ > kInputDiscardBytesMax) {
        discarding_ = false;
        discarded_ = 0;
        return {Event::kFlood, in.size()};
      }
      return {Event::kNeedMore, in.size()};
    }
    std::memcpy(buf_.data() + len_, in.data(), in.size());
    len_ += in.size();
    return {Event::kNeedMore, in.size()};
  }
  const std::string_view head = in.substr(0, lf);
  const size_t total = len_ + head.size();
  std::string_view line;
  if (total > buf_.size()) {
    len_ = 0;
    // +1: the LF, as counted had the line come in pieces.
    return {total + 1 > kInputDiscardBytesMax ? Event::kFlood : Event::kTooLong, lf + 1};
  }
  if (len_ == 0) {
    line = head;  // zero copy: the whole line is in the caller's bytes
  } else {
    std::memcpy(buf_.data() + len_, head.data(), head.size());
    line = std::string_view(buf_.data(), total);
    len_ = 0;
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kCommandLineBytesMax) return {Event::kTooLong, lf + 1};
  if (line.find('\0') != std::string_view::npos) return {Event::kNul, lf + 1};
  line_ = line;
  return {Event::kLine, lf + 1};
}

}  // namespace popgate::lmtp
