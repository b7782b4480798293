#include "ops/admin/users.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <istream>
#include <limits>
#include <ostream>
#include <pqxx/pqxx>

#include "ops/admin/lookup.h"
#include "ops/admin/table.h"
#include "server/auth/password.h"
#include "server/auth/scram.h"

namespace popgate::admin {
namespace {

// Holds a password and wipes it when done.
class Secret {
 public:
  explicit Secret(std::string value) : value_(std::move(value)) {}
  ~Secret() { OPENSSL_cleanse(value_.data(), value_.size()); }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  [[nodiscard]] const std::string& get() const noexcept { return value_; }

 private:
  std::string value_;
};

std::string read_password_line(std::istream& in, const char* option = "--password-stdin") {
  std::string line;
  if (!std::getline(in, line) && line.empty()) {
    throw UserError(std::string(option) + ": nothing on standard input");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// The password to set and whether we made it up (then it is printed).
std::string choose_password(Context& ctx, const PasswordSource& source, bool& generated) {
  generated = false;
  std::string password;
  if (source.from_stdin) {
    password = read_password_line(ctx.in());
  } else if (source.given) {
    password = *source.given;
  } else {
    generated = true;
    return generate_password();
  }
  if (password.empty()) throw UserError("empty password");
  return password;
}

std::optional<int64_t> parse_quota(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  int64_t value = 0;
  const char* first = text->data();
  const char* last = first + text->size();
  const auto [end, ec] = std::from_chars(first, last, value);
  if (ec != std::errc{} || end != last || value < 0 || first == last) {
    throw UserError("--quota '" + *text + "' is not a number of bytes (0.." +
                    std::to_string(std::numeric_limits<int64_t>::max()) + ")");
  }
  return value;
}

void print_generated(Context& ctx, bool generated, const std::string& password) {
  if (generated) ctx.out() << "password: " << password << "\n";
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         lowercase_ascii(text.substr(0, prefix.size())) == lowercase_ascii(prefix);
}

constexpr std::string_view kScramPrefix = "{SCRAM-SHA-256}";

// What a user row gets: the password hash and, when there is one, the
// SCRAM-SHA-256 credential ("" stores NULL).
struct Credentials {
  std::string password_hash;
  std::string scram_sha256;
  std::string imported_scheme;  // "{SHA512-CRYPT}" when imported with --hash
};

Credentials imported(const std::string& hash) {
  switch (auth::check_password_hash(hash)) {
    case auth::HashCheck::kOk:
      break;
    case auth::HashCheck::kUnsupportedScheme:
      throw UserError(
          "--hash: not a password scheme popgate verifies (want '{SCHEME}...' with SCHEME one of "
          "ARGON2ID ARGON2I SHA512-CRYPT SHA256-CRYPT BLF-CRYPT MD5-CRYPT DES-CRYPT CRYPT SHA "
          "SHA1 SHA256 SHA512 SSHA SSHA256 SSHA512 PLAIN-MD5 LDAP-MD5 SMD5 MD5 PBKDF2 "
          "SCRAM-SHA-1 SCRAM-SHA-256 PLAIN CLEARTEXT CLEAR)");
    case auth::HashCheck::kMalformed:
      throw UserError("--hash: malformed, or its cost is above popgate's limits");
  }
  Credentials c{hash, "", ""};
  if (hash.starts_with('{')) c.imported_scheme = hash.substr(0, hash.find('}') + 1);
  if (starts_with_ci(hash, kScramPrefix)) {
    // The same text serves both columns; the column's CHECK wants the
    // scheme name in capitals.
    c.scram_sha256 = std::string(kScramPrefix) + hash.substr(kScramPrefix.size());
  }
  return c;
}

Credentials from_password(const std::string& password) {
  return {auth::hash_password(password), auth::make_scram_credential(password), ""};
}

void print_import_note(Context& ctx, const Credentials& c) {
  const std::string scheme = c.imported_scheme.empty() ? "bare argon2id" : c.imported_scheme;
  if (!c.scram_sha256.empty()) {
    ctx.out() << "imported a " << scheme << " hash (it also serves SCRAM-SHA-256)\n";
  } else {
    ctx.out() << "imported a " << scheme
              << " hash; SCRAM-SHA-256 logins fail for this user until the password is set "
                 "with 'popgate-admin user passwd'\n";
  }
}

}  // namespace

std::string generate_password() {
  std::array<unsigned char, 12> random{};
  if (RAND_bytes(random.data(), int(random.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (size_t i = 0; i < random.size(); i += 3) {
    const uint32_t bits = uint32_t(random[i]) << 16 | uint32_t(random[i + 1]) << 8 | random[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(bits >> shift) & 0x3f];
  }
  OPENSSL_cleanse(random.data(), random.size());
  return out;
}

int user_add(Context& ctx, std::string_view text, const PasswordSource& source,
             const std::optional<std::string>& quota_text) {
  const Address address = require_address(text);
  const std::optional<int64_t> quota = parse_quota(quota_text);
  bool generated = false;
  const Secret password(source.hash ? std::string() : choose_password(ctx, source, generated));
  const Credentials c = source.hash ? imported(*source.hash) : from_password(password.get());
  pqxx::work tx(ctx.db(), "user_add");
  const int64_t tenant_id = find_tenant(tx, address.domain);
  const auto rows = tx.exec_params(
      "INSERT INTO popgate.users (tenant_id, local_part, password_hash, scram_sha256, quota_bytes) "
      "VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, '')::bigint) "
      "ON CONFLICT (tenant_id, local_part) DO NOTHING RETURNING user_id",
      tenant_id, address.local_part, c.password_hash, c.scram_sha256,
      quota ? std::to_string(*quota) : std::string());
  if (rows.empty()) throw UserError("user '" + address.login() + "' already exists");
  tx.commit();
  ctx.out() << "added user " << address.login() << "\n";
  print_generated(ctx, generated, password.get());
  if (source.hash) print_import_note(ctx, c);
  return kExitOk;
}

int user_passwd(Context& ctx, std::string_view text, const PasswordSource& source) {
  const Address address = require_address(text);
  bool generated = false;
  const Secret password(source.hash ? std::string() : choose_password(ctx, source, generated));
  const Credentials c = source.hash ? imported(*source.hash) : from_password(password.get());
  pqxx::work tx(ctx.db(), "user_passwd");
  const UserRef user = find_user(tx, address);
  tx.exec_params(
      "UPDATE popgate.users SET password_hash = $3, scram_sha256 = NULLIF($4, '') "
      "WHERE tenant_id = $1 AND user_id = $2",
      user.tenant_id, user.user_id, c.password_hash, c.scram_sha256);
  tx.commit();
  ctx.out() << "changed the password of " << user.login << "\n";
  print_generated(ctx, generated, password.get());
  if (source.hash) print_import_note(ctx, c);
  return kExitOk;
}

int user_del(Context& ctx, std::string_view text) {
  const Address address = require_address(text);
  pqxx::work tx(ctx.db(), "user_del");
  const UserRef user = find_user(tx, address);
  const auto held = tx.exec_params1(
      "SELECT count(*), coalesce(sum(size_bytes), 0) FROM popgate.messages "
      "WHERE tenant_id = $1 AND user_id = $2",
      user.tenant_id, user.user_id);
  tx.exec_params("DELETE FROM popgate.users WHERE tenant_id = $1 AND user_id = $2", user.tenant_id,
                 user.user_id);
  tx.commit();
  ctx.out() << "deleted user " << user.login << " (" << held[0].c_str() << " messages, "
            << held[1].c_str() << " bytes)\n";
  return kExitOk;
}

int user_list(Context& ctx, const std::optional<std::string>& domain_text) {
  const std::string domain = domain_text ? require_domain(*domain_text) : std::string();
  pqxx::read_transaction tx(ctx.db(), "user_list");
  if (domain_text) (void)find_tenant(tx, domain);
  const auto rows = tx.exec_params(
      "SELECT u.local_part || '@' || t.domain, u.enabled, u.quota_bytes,"
      " count(m.message_id), coalesce(sum(m.size_bytes), 0) "
      "FROM popgate.users u JOIN popgate.tenants t USING (tenant_id) "
      "LEFT JOIN popgate.messages m ON m.tenant_id = u.tenant_id AND m.user_id = u.user_id "
      "WHERE $1 = '' OR t.domain = $1 "
      "GROUP BY u.tenant_id, u.user_id, t.domain ORDER BY t.domain, u.local_part",
      domain);
  std::vector<TableRow> table{{"LOGIN", "ENABLED", "QUOTA", "MESSAGES", "BYTES"}};
  for (const auto& row : rows) {
    table.push_back({row[0].c_str(), row[1].as<bool>() ? "yes" : "no",
                     row[2].is_null() ? "-" : row[2].c_str(), row[3].c_str(), row[4].c_str()});
  }
  print_table(ctx.out(), table);
  return kExitOk;
}

int user_apop(Context& ctx, std::string_view text, const ApopSecretSource& source) {
  const Address address = require_address(text);
  std::string secret;
  if (!source.clear) {
    secret = source.from_stdin ? read_password_line(ctx.in(), "--secret-stdin")
                               : source.given.value_or("");
    if (secret.empty()) throw UserError("empty APOP secret");
  }
  const Secret held(std::move(secret));
  pqxx::work tx(ctx.db(), "user_apop");
  const UserRef user = find_user(tx, address);
  tx.exec_params(
      "UPDATE popgate.users SET apop_secret = NULLIF($3, '') WHERE tenant_id = $1 AND user_id = $2",
      user.tenant_id, user.user_id, held.get());
  tx.commit();
  ctx.out() << (source.clear ? "cleared the APOP secret of " : "set the APOP secret of ")
            << user.login << "\n";
  return kExitOk;
}

}  // namespace popgate::admin
