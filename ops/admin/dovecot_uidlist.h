// Dovecot's Maildir `dovecot-uidlist`: which IMAP UID each message file has,
// the mailbox's UIDVALIDITY, and per-message extensions such as the POP3
// UIDL Dovecot served ('P') and the POP3 order ('O'). Pure: the caller reads
// the file. Must not know: the filesystem or the database.
//
// Version 3 (Dovecot 1.1 and later):
//   header: 3 V<uidvalidity> N<nextuid> G<guid> [<key><value> ...]
//   entry:  <uid> [<key><value> ...] :<filename>
// Version 1 (Dovecot 1.0, Courier's courierimapuiddb):
//   header: 1 <uidvalidity> <nextuid>
//   entry:  <uid> <filename>
// The filename is the last one Dovecot knew; its flags part (":2,S") may be
// out of date, so messages are matched on maildir_base_name().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace popgate::admin {

struct UidlistEntry {
  uint32_t uid = 0;
  std::string filename;  // as recorded, flags and all
  // 'P': the UIDL Dovecot served (pop3_save_uidl); wins over the format.
  // Empty means the base file name (Dovecot writes "P" alone for that).
  std::optional<std::string> pop3_uidl;
  std::optional<uint64_t> pop3_order;  // 'O': POP3 listing position
};

struct Uidlist {
  int version = 0;  // 1 or 3
  uint32_t uid_validity = 0;
  uint32_t next_uid = 0;
  std::string guid;                   // version 3 'G'; may be empty
  std::vector<UidlistEntry> entries;  // as in the file
};

struct UidlistParse {
  Uidlist uidlist;
  std::string problem;  // "" when fine, else "line N: why"
};

// Parses a whole dovecot-uidlist. Blank lines are ignored; a line without
// its final newline (a file cut short) is accepted. Duplicate UIDs, UIDs of
// 0, bad numbers and unknown versions are problems.
[[nodiscard]] UidlistParse parse_uidlist(std::string_view text);

// The base of a Maildir file name: everything before the first ':' (the
// ":2,<flags>" info part), e.g. "1700000000.M1P2.host,S=12".
[[nodiscard]] std::string_view maildir_base_name(std::string_view filename);

// Entries in the order Dovecot's POP3 server lists them: those with a POP3
// order first, by that order, then the others by UID.
[[nodiscard]] std::vector<UidlistEntry> pop3_listing_order(std::vector<UidlistEntry> entries);

}  // namespace popgate::admin
