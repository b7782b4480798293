#include "ops/admin/message.h"

namespace popgate::admin {

void CrlfNormalizer::feed(std::string_view in, std::string& out) {
  size_t i = 0;
  if (after_cr_ && !in.empty()) {
    if (in.front() == '\n') i = 1;  // the LF of a CRLF split across pieces
    after_cr_ = false;
  }
  while (i < in.size()) {
    const size_t end = in.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      out.append(in.substr(i));
      line_open_ = true;
      return;
    }
    out.append(in.substr(i, end - i));
    out.append("\r\n");
    line_open_ = false;
    i = end + 1;
    if (in[end] == '\r') {
      if (i == in.size()) {
        after_cr_ = true;
      } else if (in[i] == '\n') {
        ++i;
      }
    }
  }
}

void CrlfNormalizer::finish(std::string& out) {
  if (line_open_) out.append("\r\n");
  line_open_ = false;
  after_cr_ = false;
}

std::string normalize_crlf(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 16 + 2);
  CrlfNormalizer normalizer;
  normalizer.feed(message, out);
  normalizer.finish(out);
  return out;
}

}  // namespace popgate::admin
