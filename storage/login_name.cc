#include "storage/login_name.h"

#include "storage/pg_codec.h"

namespace popgate::storage {
namespace {

char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Control characters and space never occur in a deliverable address.
bool has_control(std::string_view s) noexcept {
  for (const char c : s) {
    const auto b = static_cast<uint8_t>(c);
    if (b <= 0x20U || b == 0x7fU) return true;
  }
  return false;
}

void copy_lower(std::string_view from, char* to) noexcept {
  for (std::size_t i = 0; i < from.size(); ++i) to[i] = ascii_lower(from[i]);
}

}  // namespace

bool parse_login(std::string_view login, std::string_view default_domain,
                 LoginName& out) noexcept {
  std::string_view local = login;
  std::string_view domain = default_domain;
  if (const std::size_t at = login.rfind('@'); at != std::string_view::npos) {
    local = login.substr(0, at);
    domain = login.substr(at + 1);
  }
  if (local.empty() || domain.empty()) return false;
  // The name as a whole, "local@domain", must fit the limit.
  if (local.size() + 1 + domain.size() > kLoginBytesMax) return false;
  if (has_control(local) || has_control(domain)) return false;
  if (!is_valid_utf8(local) || !is_valid_utf8(domain)) return false;
  copy_lower(local, out.bytes.data());
  copy_lower(domain, out.bytes.data() + local.size());
  out.local_bytes = static_cast<uint16_t>(local.size());
  out.domain_bytes = static_cast<uint16_t>(domain.size());
  return true;
}

}  // namespace popgate::storage
