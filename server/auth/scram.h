// SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, without channel binding:
// we never offer SCRAM-SHA-256-PLUS, so a client asking for it ("p=") is
// refused and one saying "y" (it could have, we could not) is accepted.
//
// Credentials use Dovecot's text form, so `doveadm pw -s SCRAM-SHA-256`
// output imports as is:
//   {SCRAM-SHA-256}iterations,base64(salt),base64(StoredKey),base64(ServerKey)
//
// ScramServer is the per-login state machine. The POP3 core does the SASL
// framing (base64 lines, '*' cancel) and hands the decoded messages through
// the shard:
//
//   ScramServer scram;                                  // one per login attempt
//   if (scram.handle_client_first(msg) != ScramError::kNone) -> fail
//   ... look up scram.username() ...
//   reply = scram.server_first_from_stored(user.scram_sha256);  // "" column: unknown
//   if (scram.handle_client_final(msg2, nullptr) == ScramError::kNone)
//       send scram.server_final_message(), then the user is authenticated
//
// An unknown user (or one without a SCRAM credential) gets a server-first
// with a salt derived from a process secret and the user name, stable for
// the process, and then fails with kInvalidProof like a wrong password: the
// exchange does not tell whether the user exists.
//
// The exchange itself is cheap (a few HMACs; the client does the PBKDF2),
// noexcept and allocation-free: the shard may run it on its own thread.
// Usernames are compared as sent: no SASLprep (as Dovecot).
// Must not know: sessions, storage, the POP3 framing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "server/auth/fixed_string.h"

namespace popgate::auth {

inline constexpr uint32_t kScramIterationsDefault = 4096;  // RFC 7677 minimum
inline constexpr size_t kScramSaltBytesDefault = 16;
inline constexpr size_t kScramSaltBytesMaxStored = 64;
inline constexpr size_t kScramKeyBytes = 32;
// Limits on what a client may send, chosen so that every reply fits in one
// RFC 2449 reply line (512 octets) once base64-encoded.
inline constexpr size_t kScramMessageBytesMax = 1024;  // decoded client message
inline constexpr size_t kScramNameBytesMax = 255;      // decoded user / authzid
inline constexpr size_t kScramClientNonceBytesMax = 128;
inline constexpr size_t kScramServerNonceBytesMax = 64;
inline constexpr size_t kScramServerNonceRandomBytes = 18;  // 24 base64 characters

struct ScramCredential {
  uint32_t iterations = 0;
  std::array<uint8_t, kScramSaltBytesMaxStored> salt{};
  size_t salt_bytes = 0;
  std::array<uint8_t, kScramKeyBytes> stored_key{};
  std::array<uint8_t, kScramKeyBytes> server_key{};

  [[nodiscard]] std::span<const uint8_t> salt_view() const noexcept {
    return {salt.data(), salt_bytes};
  }
};

// "{SCRAM-SHA-256}i,salt,StoredKey,ServerKey" (scheme name case-insensitive).
// nullopt when malformed, when the salt is empty or longer than 64 octets, or
// when the iteration count is 0 or above kPbkdf2IterationsMax.
[[nodiscard]] std::optional<ScramCredential> parse_scram_credential(std::string_view text) noexcept;
// The same text form.
[[nodiscard]] std::string format_scram_credential(const ScramCredential& credential);
// Derives SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations)
// and from it the keys. An empty `salt` means 16 random octets. Throws
// std::invalid_argument for iterations out of range or a salt over 64
// octets, std::runtime_error when randomness or OpenSSL fails. For ops
// commands (slow by design: the PBKDF2).
[[nodiscard]] ScramCredential derive_scram_credential(std::string_view password,
                                                      uint32_t iterations = kScramIterationsDefault,
                                                      std::span<const uint8_t> salt = {});
[[nodiscard]] std::string make_scram_credential(std::string_view password,
                                                uint32_t iterations = kScramIterationsDefault,
                                                std::span<const uint8_t> salt = {});

// Outcomes, named after RFC 5802's server-error-value where one fits.
enum class ScramError : uint8_t {
  kNone,
  kInvalidEncoding,             // not SCRAM syntax, or over the size limits
  kExtensionsNotSupported,      // a mandatory extension ("m=")
  kChannelBindingNotSupported,  // "p=": the client wants -PLUS, which we do not offer
  kChannelBindingsDontMatch,    // "c=" is not the base64 of the gs2 header sent first
  kInvalidUsernameEncoding,     // bad saslname (n= or a=): '=' escapes, controls, empty
  kInvalidProof,                // wrong password, or no such user / no credential
  kOtherError,                  // nonce mismatch, called out of order, OpenSSL failure
};
// The RFC token, e.g. "invalid-proof" ("" for kNone).
[[nodiscard]] std::string_view scram_error_name(ScramError error) noexcept;

// Where server nonces come from. Tests inject fixed text.
class ScramNonceSource {
 public:
  virtual ~ScramNonceSource() = default;
  // Writes 1..out.size() characters in 0x21..0x7E except ',' and returns
  // how many; 0 when it cannot (the exchange then fails with kOtherError).
  [[nodiscard]] virtual size_t fill_nonce(std::span<char> out) noexcept = 0;
};
// base64 of 18 octets from OpenSSL's CSPRNG. Stateless, thread-safe.
[[nodiscard]] ScramNonceSource& system_scram_nonce_source() noexcept;

struct ScramServerOptions {
  ScramNonceSource* nonces = nullptr;      // nullptr: system_scram_nonce_source()
  std::span<const uint8_t> fake_salt_key;  // empty: process_secret(); must outlive the server
  // What unknown users are told; match the iterations your real users have.
  uint32_t fake_iterations = kScramIterationsDefault;
};

class ScramServer {
 public:
  explicit ScramServer(const ScramServerOptions& options = {}) noexcept;
  ~ScramServer();  // wipes keys and messages
  ScramServer(const ScramServer&) = delete;
  ScramServer& operator=(const ScramServer&) = delete;

  // Step 1: the client-first-message. On kNone, username() and authzid()
  // are set (decoded from saslname).
  [[nodiscard]] ScramError handle_client_first(std::string_view message) noexcept;
  [[nodiscard]] std::string_view username() const noexcept { return username_.view(); }
  [[nodiscard]] std::string_view authzid() const noexcept { return authzid_.view(); }  // "" = none

  // Step 2: returns the server-first-message to send, valid until the next
  // call on this object; "" when called out of order or no nonce could be
  // made (the exchange has failed then).
  [[nodiscard]] std::string_view server_first(const ScramCredential& credential) noexcept;
  [[nodiscard]] std::string_view server_first_unknown_user() noexcept;
  // users.scram_sha256 as stored: empty or unparsable means unknown user.
  [[nodiscard]] std::string_view server_first_from_stored(std::string_view stored) noexcept;

  // Step 3: the client-final-message. kNone means authenticated; then
  // server_final_message() is "v=..." to send. On failure it is
  // "e=<error>", which a server may send before -ERR (RFC 5802 section 7).
  // `server_final`, when not null, gets a copy (and may allocate).
  [[nodiscard]] ScramError handle_client_final(std::string_view message,
                                               std::string* server_final) noexcept;
  [[nodiscard]] std::string_view server_final_message() const noexcept {
    return server_final_.view();
  }

 private:
  enum class State : uint8_t {
    kWaitClientFirst,
    kWaitCredential,
    kWaitClientFinal,
    kDone,
    kFailed
  };

  ScramError fail(ScramError error) noexcept;
  std::string_view start(bool known_user) noexcept;
  ScramError check_client_final(std::string_view message) noexcept;
  ScramError check_proof(std::string_view without_proof, std::span<const uint8_t> proof) noexcept;
  void set_fake_credential() noexcept;

  ScramNonceSource* nonces_;
  std::span<const uint8_t> fake_salt_key_;
  uint32_t fake_iterations_;
  State state_ = State::kWaitClientFirst;
  bool known_user_ = false;
  ScramCredential credential_;
  FixedString<kScramMessageBytesMax> gs2_header_;
  FixedString<kScramMessageBytesMax> client_first_bare_;
  FixedString<kScramClientNonceBytesMax + kScramServerNonceBytesMax> nonce_;
  FixedString<kScramNameBytesMax> username_;
  FixedString<kScramNameBytesMax> authzid_;
  FixedString<512> server_first_;
  FixedString<128> server_final_;
};

}  // namespace popgate::auth
