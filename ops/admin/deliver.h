// `popgate-admin deliver LOCAL@DOMAIN [FILE|-] [--uidl UIDL]`: stores one
// RFC 5322 message in a maildrop, the way an MDA would.
//
// The message is read whole (stdin for "" or "-"), its line endings
// normalised to CRLF (message.h), and inserted with its exact size and a
// UIDL: the given one, or popgate.new_uidl() (retried on the unlikely
// collision). Empty input and messages over kDeliverMessageBytesMax are
// refused. Quotas are not enforced here.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "ops/admin/context.h"

namespace popgate::admin {

struct DeliverArgs {
  std::string address;
  std::string file;  // "" or "-": standard input
  std::optional<std::string> uidl;
};

[[nodiscard]] int deliver(Context& ctx, const DeliverArgs& args);

// Reads fd to its end through a CrlfNormalizer. `name` is for errors.
// Throws UserError on read errors, empty input, or a message over the cap.
// `on_raw`, when given, sees every octet read, before normalisation (the
// importer hashes files with it).
[[nodiscard]] std::string read_message(
    int fd, const std::string& name, const std::function<void(std::string_view)>& on_raw = nullptr);

// The same rules for a message already in memory (an mbox part).
[[nodiscard]] std::string normalize_message(std::string_view raw, const std::string& name);

}  // namespace popgate::admin
