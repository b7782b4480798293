#include "server/pop3/replies.h"

#include <algorithm>
#include <cstring>

namespace popgate::pop3 {

RespCode code_for(StoreStatus status) noexcept {
  switch (status) {
    case StoreStatus::kInUse:
      return RespCode::kInUse;
    case StoreStatus::kPermanent:
      return RespCode::kSysPerm;
    case StoreStatus::kTemporary:
    case StoreStatus::kNotFound:  // vanished under us: try again later
      return RespCode::kSysTemp;
    case StoreStatus::kOk:
      break;
  }
  return RespCode::kNone;
}

std::string_view response_code(RespCode code) noexcept {
  switch (code) {
    case RespCode::kInUse:
      return "[IN-USE] ";
    case RespCode::kLoginDelay:
      return "[LOGIN-DELAY] ";
    case RespCode::kSysTemp:
      return "[SYS/TEMP] ";
    case RespCode::kSysPerm:
      return "[SYS/PERM] ";
    case RespCode::kAuth:
      return "[AUTH] ";
    case RespCode::kUtf8:
      return "[UTF8] ";
    case RespCode::kNone:
      break;
  }
  return "";
}

LineBuilder& LineBuilder::add(std::string_view text) noexcept {
  const size_t n = std::min(text.size(), kTextMax - len_);
  std::memcpy(buf_.data() + len_, text.data(), n);
  len_ += n;
  return *this;
}

LineBuilder& LineBuilder::add(uint64_t number) noexcept {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, number);
  (void)ec;  // 20 digits always suffice for 64 bits
  return add(std::string_view(digits, static_cast<size_t>(end - digits)));
}

std::string_view LineBuilder::finish() noexcept {
  buf_[len_] = '\r';
  buf_[len_ + 1] = '\n';
  return {buf_.data(), len_ + 2};
}

}  // namespace popgate::pop3
