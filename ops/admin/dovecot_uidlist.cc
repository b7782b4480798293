#include "ops/admin/dovecot_uidlist.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace popgate::admin {
namespace {

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const char* first = text.data();
  const char* last = first + text.size();
  const auto [end, ec] = std::from_chars(first, last, out);
  return first != last && ec == std::errc{} && end == last;
}

std::string at_line(size_t line, const std::string& why) {
  return "line " + std::to_string(line) + ": " + why;
}

// Splits on single spaces; empty words (double spaces) are dropped.
std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at < line.size()) {
    const size_t end = std::min(line.find(' ', at), line.size());
    if (end > at) out.push_back(line.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::string parse_header(std::string_view line, Uidlist& u) {
  const auto w = words(line);
  if (w.empty()) return "empty header";
  if (w[0] == "1") {
    u.version = 1;
    if (w.size() < 3 || !parse_number(w[1], u.uid_validity) || !parse_number(w[2], u.next_uid)) {
      return "version 1 header must be '1 <uidvalidity> <nextuid>'";
    }
    return "";
  }
  if (w[0] != "3") {
    return "unsupported dovecot-uidlist version '" + std::string(w[0]) + "' (known: 1, 3)";
  }
  u.version = 3;
  bool have_validity = false;
  for (size_t i = 1; i < w.size(); ++i) {
    const char key = w[i][0];
    const std::string_view value = w[i].substr(1);
    if (key == 'V') have_validity = parse_number(value, u.uid_validity);
    if (key == 'N' && !parse_number(value, u.next_uid)) return "bad N (next UID) in the header";
    if (key == 'G') u.guid = std::string(value);
  }
  if (!have_validity) return "the header has no valid V (UIDVALIDITY)";
  return "";
}

// "<uid> [<key><value> ...] :<filename>", or for version 1 "<uid> <filename>".
std::string parse_entry(std::string_view line, int version, UidlistEntry& e) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || !parse_number(line.substr(0, space), e.uid) ||
      e.uid == 0) {
    return "expected '<uid> ... <filename>'";
  }
  std::string_view rest = line.substr(space + 1);
  if (version == 1) {
    e.filename = std::string(rest);
    return e.filename.empty() ? "empty file name" : "";
  }
  const size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon + 1 == rest.size()) {
    return "expected ':<filename>' at the end";
  }
  e.filename = std::string(rest.substr(colon + 1));
  for (const auto ext : words(rest.substr(0, colon))) {
    const std::string_view value = ext.substr(1);
    if (ext[0] == 'P') e.pop3_uidl = std::string(value);
    if (ext[0] == 'O') {
      uint64_t order = 0;
      if (!parse_number(value, order)) return "bad O (POP3 order) '" + std::string(value) + "'";
      e.pop3_order = order;
    }
  }
  return "";
}

}  // namespace

UidlistParse parse_uidlist(std::string_view text) {
  UidlistParse out;
  std::set<uint32_t> uids;
  size_t line_number = 0;
  bool have_header = false;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (!have_header) {
      have_header = true;
      out.problem = parse_header(line, out.uidlist);
    } else {
      UidlistEntry entry;
      out.problem = parse_entry(line, out.uidlist.version, entry);
      if (out.problem.empty() && !uids.insert(entry.uid).second) {
        out.problem = "UID " + std::to_string(entry.uid) + " appears twice";
      }
      out.uidlist.entries.push_back(std::move(entry));
    }
    if (!out.problem.empty()) {
      out.problem = at_line(line_number, out.problem);
      return out;
    }
  }
  if (!have_header) out.problem = "empty file";
  return out;
}

std::string_view maildir_base_name(std::string_view filename) {
  return filename.substr(0, filename.find(':'));
}

std::vector<UidlistEntry> pop3_listing_order(std::vector<UidlistEntry> entries) {
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const uint64_t order_a = a.pop3_order.value_or(UINT64_MAX);
    const uint64_t order_b = b.pop3_order.value_or(UINT64_MAX);
    return order_a != order_b ? order_a < order_b : a.uid < b.uid;
  });
  return entries;
}

}  // namespace popgate::admin
