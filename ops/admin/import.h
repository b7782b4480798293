// `popgate-admin import LOGIN (--maildir DIR | --mbox FILE | --eml-dir DIR)`:
// moves a mailbox from another server into a maildrop, keeping the UIDLs
// the old server served so that POP3 clients download nothing twice.
//
// Messages are stored like `deliver` stores them (CRLF-normalised, exact
// size) in the mailbox's order, in transactions of `batch_messages` or
// kImportBatchBytes, whichever fills first. Each message's UIDL is, in
// order of preference: the --uidl-map entry for its file name or number;
// the old server's (Dovecot's uidlist, an X-UIDL header); else one made
// from the message (legacy_uidl.h). A legacy UIDL that is not 1..70
// printable ASCII octets, or that an earlier message already has, is
// replaced by a made-up one, reported and counted.
//
// Idempotent: a message whose UIDL the maildrop already has is skipped, so
// running the import again after an interruption resumes it. The user's
// quota holds (unless ignore_quota): the import stops at the first message
// that does not fit, keeping what it stored, and fails with kExitUser.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "ops/admin/context.h"
#include "ops/admin/mbox.h"
#include "ops/admin/uidl_format.h"
#include "ops/admin/users.h"

namespace popgate::admin {

inline constexpr uint64_t kImportBatchBytes = uint64_t{64} << 20;

enum class ImportFormat { kMaildir, kMbox, kEmlDir };

struct ImportArgs {
  std::string address;
  ImportFormat format = ImportFormat::kMaildir;
  std::string path;
  std::string uidl_format = std::string(kDovecotDefaultUidlFormat);  // Maildir only
  std::optional<std::string> uidl_map_path;
  MboxVariant mbox_variant = MboxVariant::kMboxrd;
  bool create_user = false;
  PasswordSource password;  // with create_user
  bool ignore_quota = false;
  uint64_t batch_messages = 500;
  uint64_t progress_every = 1000;  // messages; 0: by time only
  std::chrono::milliseconds progress_interval{5000};
};

[[nodiscard]] int import_mailbox(Context& ctx, const ImportArgs& args);

}  // namespace popgate::admin
