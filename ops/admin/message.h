// The form popgate stores messages in: every line ends with CRLF, including
// the last. Pure, streaming, no database.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace popgate::admin {

// The largest message `deliver` accepts, in octets after normalisation. It is
// storage's cap: sizes travel as 32-bit signed lengths (libpq parameters, the
// listing's sizes). PostgreSQL's own bytea limit (1 GiB) may bite first.
inline constexpr uint64_t kDeliverMessageBytesMax = (uint64_t{1} << 31) - 1;

// Rewrites line endings to CRLF as input arrives in arbitrary pieces: a lone
// LF or a lone CR becomes CRLF, an existing CRLF stays. finish() then makes
// sure the message ends with CRLF. Other octets, NUL included, pass through.
class CrlfNormalizer {
 public:
  // Appends the normalised form of `in` to `out`.
  void feed(std::string_view in, std::string& out);
  // Ends the message: appends CRLF unless `out` already ends a line. An
  // empty message stays empty.
  void finish(std::string& out);

 private:
  bool after_cr_ = false;   // the last octet fed was a CR (already written as CRLF)
  bool line_open_ = false;  // octets written since the last CRLF
};

// The whole-message convenience form.
[[nodiscard]] std::string normalize_crlf(std::string_view message);

}  // namespace popgate::admin
