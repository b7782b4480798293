// Where an imported message's UIDL comes from, besides Dovecot's uidlist:
// an "X-UIDL:" header, an operator's map, or, failing those, one made from
// the message itself. Pure, no filesystem or database.
//
// Made-up UIDLs are deterministic (a hash of the normalised message and how
// many identical messages came before it in the same mailbox), so an import
// that is run again recognises what it stored the first time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace popgate::admin {

// The first header field called `name` (case-insensitive) in the message's
// header section (up to the first empty line), unfolded, with surrounding
// spaces and tabs removed. nullopt when there is none.
[[nodiscard]] std::optional<std::string> find_header(std::string_view message,
                                                     std::string_view name);

// 24 lowercase hex digits: the first 96 bits of SHA-256 over the message,
// then "-N" for the N-th identical message (N >= 2).
[[nodiscard]] std::string content_uidl(std::string_view message, uint64_t occurrence);

// --uidl-map: one "KEY<TAB>UIDL" a line; KEY is a file name (Maildir base
// name or full name, .eml file name) or a 1-based message number in import
// order. Empty lines and lines starting with '#' are skipped; CRLF is fine.
struct UidlMap {
  std::map<std::string, std::string> by_key;
};
struct UidlMapParse {
  UidlMap map;
  std::string problem;  // "" or "line N: why" (no TAB, empty key or UIDL, duplicate key)
};
[[nodiscard]] UidlMapParse parse_uidl_map(std::string_view text);

}  // namespace popgate::admin
