// The mailboxes `popgate-admin import` reads: a Dovecot Maildir (with its
// dovecot-uidlist), an mbox file, or a directory of .eml files. Each yields
// its messages in the mailbox's own order, with the UIDL the old server
// served when the mailbox says so. Must not know: the database, UIDL maps
// or UIDL validation (import.cc decides what to store).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ops/admin/mbox.h"

namespace popgate::admin {

struct SourceItem {
  uint64_t index = 0;  // 1-based position in import order
  std::string name;    // for messages to the operator: "cur/<file>", "<file>", "message 3"
  std::vector<std::string> keys;           // --uidl-map keys besides the index (file names)
  std::optional<std::string> legacy_uidl;  // the old server's UIDL as found, not yet checked
  bool uidl_from_body = false;             // legacy_uidl is known only after load()
  bool loaded = false;
  std::string body;               // after load(): CRLF-normalised, as `deliver` stores it
  int64_t received_epoch_s = -1;  // arrival time when the mailbox records it; -1: unknown
};

class MessageSource {
 public:
  virtual ~MessageSource() = default;
  // The next message, without its body unless the source must read it
  // anyway (mbox); false at the end. Throws UserError when the mailbox is
  // unreadable or malformed.
  virtual bool next(SourceItem& item) = 0;
  // Reads the body of the message next() returned, and fills in
  // legacy_uidl when it comes from the body (X-UIDL, a %m format).
  virtual void load(SourceItem& item) = 0;
  // Messages in total when known up front (Maildir, .eml directory).
  [[nodiscard]] virtual std::optional<uint64_t> size_hint() const = 0;
};

// A Maildir: cur/ and new/ (at least one), and normally dovecot-uidlist.
// Listed messages come in Dovecot's POP3 order with its 'P' UIDL or
// `uidl_format` expanded; files it does not list follow, by name, without
// a legacy UIDL. Notes what it finds (no uidlist, unlisted files) on `notes`.
[[nodiscard]] std::unique_ptr<MessageSource> open_maildir(const std::string& dir,
                                                          const std::string& uidl_format,
                                                          std::ostream& notes);
// An mbox; legacy UIDLs from X-UIDL headers.
[[nodiscard]] std::unique_ptr<MessageSource> open_mbox(const std::string& path,
                                                       MboxVariant variant);
// Every regular file in `dir` not starting with '.', by name; legacy UIDLs
// from X-UIDL headers.
[[nodiscard]] std::unique_ptr<MessageSource> open_eml_dir(const std::string& dir);

// A whole small file (dovecot-uidlist, a UIDL map); UserError when unreadable.
[[nodiscard]] std::string read_small_file(const std::string& path);

// The time in an mbox envelope ("sender Thu Nov 27 07:04:55 2026"), as UTC
// seconds since the epoch; -1 when it has none we can read.
[[nodiscard]] int64_t mbox_envelope_time(const std::string& envelope);

}  // namespace popgate::admin
