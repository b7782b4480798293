#include "ops/admin/legacy_uidl.h"

#include <openssl/evp.h>

#include <stdexcept>

#include "ops/admin/names.h"

namespace popgate::admin {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// Splits off the next line (without "\n" and "\r\n").
std::string_view take_line(std::string_view& text) {
  const size_t end = text.find('\n');
  std::string_view line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

bool folded(std::string_view line) {
  return !line.empty() && (line.front() == ' ' || line.front() == '\t');
}

}  // namespace

std::optional<std::string> find_header(std::string_view message, std::string_view name) {
  const std::string wanted = lowercase_ascii(name);
  while (!message.empty()) {
    const std::string_view line = take_line(message);
    if (line.empty()) return std::nullopt;  // end of the header section
    const size_t colon = line.find(':');
    if (folded(line) || colon == std::string_view::npos) continue;
    if (lowercase_ascii(trim(line.substr(0, colon))) != wanted) continue;
    std::string value(trim(line.substr(colon + 1)));
    while (!message.empty()) {
      std::string_view rest = message;
      const std::string_view next = take_line(rest);
      if (!folded(next)) break;
      message = rest;
      value += " ";
      value += trim(next);
    }
    return std::string(trim(value));
  }
  return std::nullopt;
}

std::string content_uidl(std::string_view message, uint64_t occurrence) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_bytes = 0;
  if (EVP_Digest(message.data(), message.size(), digest, &digest_bytes, EVP_sha256(), nullptr) !=
      1) {
    throw std::runtime_error("EVP_Digest(SHA-256) failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < 12; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  if (occurrence >= 2) out += "-" + std::to_string(occurrence);
  return out;
}

UidlMapParse parse_uidl_map(std::string_view text) {
  UidlMapParse out;
  size_t line_number = 0;
  while (!text.empty()) {
    const std::string_view line = take_line(text);
    ++line_number;
    if (line.empty() || line.front() == '#') continue;
    const size_t tab = line.find('\t');
    std::string problem;
    if (tab == std::string_view::npos) {
      problem = "expected KEY<TAB>UIDL";
    } else if (tab == 0) {
      problem = "empty key";
    } else if (tab + 1 == line.size()) {
      problem = "empty UIDL";
    } else if (!out.map.by_key
                    .emplace(std::string(line.substr(0, tab)), std::string(line.substr(tab + 1)))
                    .second) {
      problem = "key '" + std::string(line.substr(0, tab)) + "' appears twice";
    }
    if (!problem.empty()) {
      out.problem = "line " + std::to_string(line_number) + ": " + problem;
      return out;
    }
  }
  return out;
}

}  // namespace popgate::admin
