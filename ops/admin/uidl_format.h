// Dovecot's `pop3_uidl_format`: how Dovecot made the UIDLs its POP3 server
// served for a Maildir message, so an import can make the same ones. Pure.
//
// Supported, as in Dovecot's var_expand():
//   %u  %{uid}          the message's IMAP UID (decimal)
//   %v  %{uidvalidity}  the mailbox's UIDVALIDITY (decimal)
//   %f  %{filename}     the Maildir file's base name (before ":2,")
//   %m  %{md5}          MD5 of the message file as stored, 32 lowercase hex
//                       digits (Dovecot's own %m hashes mbox headers only;
//                       for Maildir it exists for other migration sources)
//   %%                  a literal '%'
// with an optional width ("%08u": pad with '0' to 8; "%8u" or "%2.8u":
// offset.width substring) and modifiers X (decimal to hex, lowercase, as
// Dovecot prints it), L (lowercase), U (uppercase) before the variable.
// Dovecot's default, "%08Xu%08Xv", gives "00000001" + "6b092beb".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace popgate::admin {

inline constexpr std::string_view kDovecotDefaultUidlFormat = "%08Xu%08Xv";

struct UidlVariables {
  uint32_t uid = 0;
  uint32_t uid_validity = 0;
  std::string_view filename_base;
  std::string_view md5_hex;  // needed only when the format uses %m
};

// "" when the format is usable, else why not (unknown variable or
// modifier, a '%' at the end, no variable at all).
[[nodiscard]] std::string uidl_format_problem(std::string_view format);
// True when the format uses %m (the message must be read to expand it).
[[nodiscard]] bool uidl_format_uses_md5(std::string_view format);
// Expands a format that uidl_format_problem() accepted.
[[nodiscard]] std::string expand_uidl_format(std::string_view format, const UidlVariables& vars);

}  // namespace popgate::admin
