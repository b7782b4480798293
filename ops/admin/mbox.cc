#include "ops/admin/mbox.h"

namespace popgate::admin {
namespace {

constexpr std::string_view kFrom = "From ";

bool blank(std::string_view line) { return line == "\n" || line == "\r\n"; }

std::string_view without_line_end(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// How many '>' to drop from the start of `line` (0 or 1).
size_t quoting_to_drop(std::string_view line, MboxVariant variant) {
  size_t quotes = 0;
  while (quotes < line.size() && line[quotes] == '>') ++quotes;
  if (quotes == 0 || line.substr(quotes, kFrom.size()) != kFrom) return 0;
  return variant == MboxVariant::kMboxrd || quotes == 1 ? 1 : 0;
}

}  // namespace

void MboxSplitter::feed(std::string_view data) {
  while (!data.empty() && problem_.empty()) {
    const size_t end = data.find('\n');
    if (end == std::string_view::npos) {
      partial_.append(data);
      if (partial_.size() > message_bytes_max_) {
        problem_ = "message " + std::to_string(started_) + " has a line longer than " +
                   std::to_string(message_bytes_max_) + " octets";
      }
      return;
    }
    if (partial_.empty()) {
      handle_line(data.substr(0, end + 1));
    } else {
      partial_.append(data.substr(0, end + 1));
      handle_line(partial_);
      partial_.clear();
    }
    data.remove_prefix(end + 1);
  }
}

void MboxSplitter::finish() {
  if (!problem_.empty()) return;
  if (!partial_.empty()) {
    handle_line(partial_);
    partial_.clear();
  }
  if (in_message_) end_message();
}

bool MboxSplitter::next(MboxMessage& out) {
  if (ready_.empty()) return false;
  out = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

void MboxSplitter::handle_line(std::string_view line) {
  if (!problem_.empty()) return;
  if (previous_blank_ && line.starts_with(kFrom)) {
    if (in_message_) end_message();
    in_message_ = true;
    ++started_;
    current_.envelope = std::string(without_line_end(line.substr(kFrom.size())));
    previous_blank_ = false;
    return;
  }
  if (!in_message_) {
    if (blank(line)) return;  // empty lines before the first message
    problem_ = "not an mbox: the first line is not a 'From ' line";
    return;
  }
  previous_blank_ = blank(line);
  append(line.substr(quoting_to_drop(line, variant_)));
}

void MboxSplitter::append(std::string_view line) {
  if (current_.body.size() + line.size() > message_bytes_max_) {
    problem_ = "message " + std::to_string(started_) + " is larger than " +
               std::to_string(message_bytes_max_) + " octets";
    return;
  }
  current_.body.append(line);
}

// The empty line before the next "From " (or at the end of the file)
// separates messages; it is not part of this one.
void MboxSplitter::end_message() {
  std::string& body = current_.body;
  if (body.ends_with("\r\n\r\n") || body == "\r\n") {
    body.resize(body.size() - 2);
  } else if (body.ends_with("\n\n") || body == "\n") {
    body.pop_back();
  }
  ready_.push_back(std::move(current_));
  current_ = MboxMessage{};
  in_message_ = false;
  previous_blank_ = true;
}

}  // namespace popgate::admin
