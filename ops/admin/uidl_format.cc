#include "ops/admin/uidl_format.h"

#include <charconv>
#include <cstdio>
#include <optional>

namespace popgate::admin {
namespace {

enum class Variable { kUid, kUidValidity, kFilename, kMd5, kPercent };

// One "%..." directive.
struct Directive {
  bool zero_pad = false;
  size_t offset = 0;
  size_t width = 0;  // 0: whole value
  bool hex = false;
  bool lower = false;
  bool upper = false;
  Variable variable = Variable::kPercent;
  size_t length = 0;  // octets of the directive, '%' included
};

size_t read_digits(std::string_view text, size_t at, size_t& value) {
  size_t end = at;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
  std::from_chars(text.data() + at, text.data() + end, value);
  return end;
}

std::optional<Variable> variable_named(std::string_view name) {
  if (name == "u" || name == "uid") return Variable::kUid;
  if (name == "v" || name == "uidvalidity") return Variable::kUidValidity;
  if (name == "f" || name == "filename") return Variable::kFilename;
  if (name == "m" || name == "md5") return Variable::kMd5;
  return std::nullopt;
}

// Parses the directive at format[at] == '%'; "" or why it is unusable.
std::string parse_directive(std::string_view format, size_t at, Directive& d) {
  size_t i = at + 1;
  if (i < format.size() && format[i] == '%') {
    d.length = 2;
    return "";
  }
  d.zero_pad = i < format.size() && format[i] == '0';
  i = read_digits(format, i, d.width);
  if (i < format.size() && format[i] == '.') {
    d.offset = d.width;
    i = read_digits(format, i + 1, d.width);
    d.zero_pad = false;
  }
  for (; i < format.size(); ++i) {
    const char c = format[i];
    bool* modifier = c == 'X' ? &d.hex : c == 'L' ? &d.lower : c == 'U' ? &d.upper : nullptr;
    if (modifier == nullptr) break;
    *modifier = true;
  }
  if (i == format.size()) return "'%' without a variable at the end";
  std::string_view name = format.substr(i, 1);
  if (format[i] == '{') {
    const size_t close = format.find('}', i);
    if (close == std::string_view::npos) return "'%{' without '}'";
    name = format.substr(i + 1, close - i - 1);
    i = close;
  }
  const auto variable = variable_named(name);
  if (!variable) {
    return "unknown variable '" + std::string(name) +
           "' (known: %u %v %f %m, %{uid} %{uidvalidity} %{filename} %{md5})";
  }
  d.variable = *variable;
  d.length = i + 1 - at;
  return "";
}

std::string hex_of_decimal(const std::string& decimal) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(decimal.data(), decimal.data() + decimal.size(), value);
  if (ec != std::errc{} || end != decimal.data() + decimal.size()) return decimal;
  char text[24];
  std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(value));
  return text;
}

std::string value_of(const Directive& d, const UidlVariables& vars) {
  switch (d.variable) {
    case Variable::kUid:
      return std::to_string(vars.uid);
    case Variable::kUidValidity:
      return std::to_string(vars.uid_validity);
    case Variable::kFilename:
      return std::string(vars.filename_base);
    case Variable::kMd5:
      return std::string(vars.md5_hex);
    case Variable::kPercent:
      return "%";
  }
  return "";
}

std::string apply(const Directive& d, std::string value) {
  if (d.hex) value = hex_of_decimal(value);
  for (char& c : value) {
    if (d.lower && c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (d.upper && c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  }
  if (d.zero_pad) {
    if (value.size() < d.width) value.insert(0, d.width - value.size(), '0');
    return value;
  }
  if (d.width == 0 && d.offset == 0) return value;
  if (d.offset >= value.size()) return "";
  return value.substr(d.offset, d.width == 0 ? std::string::npos : d.width);
}

}  // namespace

std::string uidl_format_problem(std::string_view format) {
  if (format.empty()) return "empty UIDL format";
  bool any_variable = false;
  for (size_t at = 0; at < format.size();) {
    if (format[at] != '%') {
      ++at;
      continue;
    }
    Directive d;
    if (auto problem = parse_directive(format, at, d); !problem.empty()) {
      return "UIDL format '" + std::string(format) + "': " + problem;
    }
    any_variable = any_variable || d.variable != Variable::kPercent;
    at += d.length;
  }
  if (!any_variable) {
    return "UIDL format '" + std::string(format) + "' uses no variable: every UIDL would be equal";
  }
  return "";
}

bool uidl_format_uses_md5(std::string_view format) {
  for (size_t at = 0; at < format.size();) {
    Directive d;
    if (format[at] != '%' || !parse_directive(format, at, d).empty()) {
      ++at;
      continue;
    }
    if (d.variable == Variable::kMd5) return true;
    at += d.length;
  }
  return false;
}

std::string expand_uidl_format(std::string_view format, const UidlVariables& vars) {
  std::string out;
  for (size_t at = 0; at < format.size();) {
    Directive d;
    if (format[at] != '%' || !parse_directive(format, at, d).empty()) {
      out += format[at++];
      continue;
    }
    out += apply(d, value_of(d, vars));
    at += d.length;
  }
  return out;
}

}  // namespace popgate::admin
