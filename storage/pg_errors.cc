#include "storage/pg_errors.h"

#include <algorithm>

namespace popgate::storage {
namespace {

constexpr std::size_t kSqlstateBytes = 5;

}  // namespace

Status classify_sqlstate(std::string_view sqlstate) noexcept {
  if (sqlstate.empty()) return Status::kTemporary;
  if (sqlstate.size() != kSqlstateBytes) return Status::kPermanent;
  const std::string_view cls = sqlstate.substr(0, 2);
  if (cls == "08" || cls == "53") return Status::kTemporary;
  if (sqlstate == "40001" || sqlstate == "40P01") return Status::kTemporary;
  if (sqlstate == "57014" || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03") {
    return Status::kTemporary;
  }
  if (sqlstate == "55P03") return Status::kTemporary;
  return Status::kPermanent;
}

void assign_error(std::string& out, std::string_view prefix, std::string_view message) noexcept {
  const std::size_t line_end = std::min(message.find_first_of("\r\n"), message.size());
  message = message.substr(0, line_end);
  out.clear();
  out.reserve(kErrorBytesMax);
  out.append(prefix.substr(0, kErrorBytesMax));
  out.append(message.substr(0, kErrorBytesMax - out.size()));
}

}  // namespace popgate::storage
