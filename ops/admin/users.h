// `popgate-admin user add|passwd|del|list|apop`: mailboxes, "local@domain".
// Passwords are hashed here (popgate::auth::hash_password, argon2id) and
// only the hash is stored, with a SCRAM-SHA-256 credential derived from the
// same password (users.scram_sha256); a generated password is printed once.
// A Dovecot hash can be imported instead (--hash): it is stored as is.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ops/admin/context.h"

namespace popgate::admin {

// Where the new password comes from: --password P, --password-stdin (one
// line), --hash '{SCHEME}...' (imported as is), or none: generated and
// printed.
struct PasswordSource {
  std::optional<std::string> given;
  bool from_stdin = false;
  std::optional<std::string> hash;
};

// What `user apop` does: set the secret (given or read from stdin) or clear it.
struct ApopSecretSource {
  std::optional<std::string> given;
  bool from_stdin = false;
  bool clear = false;
};

[[nodiscard]] int user_add(Context& ctx, std::string_view address, const PasswordSource& password,
                           const std::optional<std::string>& quota_bytes);
[[nodiscard]] int user_passwd(Context& ctx, std::string_view address,
                              const PasswordSource& password);
// Deletes the user and, by cascade, its messages and lock.
[[nodiscard]] int user_del(Context& ctx, std::string_view address);
// All users, or those of one tenant (UserError when it does not exist).
[[nodiscard]] int user_list(Context& ctx, const std::optional<std::string>& domain);
// Sets or clears users.apop_secret, a plaintext-equivalent shared secret.
[[nodiscard]] int user_apop(Context& ctx, std::string_view address, const ApopSecretSource& source);

// 16 characters of base64url from 12 random octets (96 bits).
[[nodiscard]] std::string generate_password();

}  // namespace popgate::admin
