// TlsContext: the certificates, SNI index, ticket keys and protocol settings
// that every server-side TLS connection starts from. Immutable once loaded;
// one instance is shared (read-only, thread-safe) by all shards and by every
// TlsStream made from it.
//
// Reload = load() a new context and hand it to new connections. A TlsStream
// holds a shared_ptr to the context it started with, so live connections
// keep working on the old one until they close; nothing OpenSSL calls back
// into outlives the context that registered it.
//
// Must not know: sockets, rings, sessions, logging. load() blocks on the file
// system and is for startup or a reload thread, never a shard thread.
//
// Protocol: TLS 1.2 and 1.3 only; TLS 1.2 with ECDHE and AEAD suites only;
// key exchange over X25519, P-256 or P-384; the server's cipher order wins;
// security level 2 (RSA keys >= 2048 bits); no compression, no
// renegotiation, no 0-RTT early data, no server-side session cache
// (resumption is by stateless tickets only, one per handshake).
//
// SNI directory layout (TlsConfig::sni_directory). Every regular file (or
// symlink to one) not starting with '.' is read, in name order:
//   NAME.pem            the private key, then the leaf certificate, then its
//                       chain, all PEM, in one file (blocks in any order:
//                       the first CERTIFICATE is the leaf);
//   NAME.crt + NAME.key the leaf then its chain; the private key.
// NAME is free-form: the names a certificate serves come from its
// subjectAltName DNS entries (its subject CN only when it has no DNS SAN),
// lowercased. A name may be a wildcard "*.example.org", which matches
// exactly one extra label ("a.example.org", not "example.org" nor
// "a.b.example.org"). A client's SNI picks, in order: the certificates with
// that exact name, those with a matching wildcard, the defaults. One name
// may be served by several certificates of different key types (an ECDSA
// and an RSA one, in two files); the client's capabilities then choose. Two
// certificates of the same key type for one name: the later not_after wins
// and a warning says so. A lone NAME.crt or NAME.key, an unreadable file or
// a key that does not match its certificate fails the load. Files with
// other extensions are ignored. Keys must not be encrypted.
//
// Database certificates (TlsConfig::database_certificates, the tenants'
// rows of popgate.tenant_certificates) join the same index after the
// directory, by the same rules: names from SAN DNS (or CN), wildcards, one
// certificate per key type and name, the later not_after wins (a tie keeps
// the earlier one: defaults, then files, then database certificates in
// order). Two more rules keep tenants apart: a database certificate serves
// only names that are its tenant's domain or under it (others are skipped
// with a warning), and when two database certificates of different tenants
// claim one name, the tenant with the more specific domain keeps it. A
// database certificate that cannot be used (bad PEM, key does not match) is
// skipped with a warning instead of failing the load, so that one tenant's
// row cannot stop every other certificate from loading.
//
// Ticket key file (TlsConfig::ticket_key_file), to share resumption across
// processes and hosts: one or more 80-byte keys, each
//   bytes  0..15  key name (sent in the clear in every ticket, identifies it)
//   bytes 16..47  HMAC-SHA256 key
//   bytes 48..79  AES-256-CBC key
// (the layout nginx's ssl_session_ticket_key uses), stored either raw
// (file size a multiple of 80) or base64 of those bytes (whitespace and line
// breaks ignored), e.g. `openssl rand 80 > ticket.key` or
// `openssl rand -base64 80 > ticket.key`. The first key encrypts new
// tickets; the others only decrypt (a ticket under one is accepted and
// replaced), so rotation is: prepend a new key, reload everywhere, later
// drop the old one. Without a file, one random key is made per process on
// first use and kept across reloads, so a reload does not end resumption.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX, kept out of this header

namespace popgate::tls {

// OpenSSL cipher strings. TLS 1.2: forward secrecy (ECDHE) and AEAD only,
// ECDSA before RSA and AES-GCM before ChaCha20 (with ChaCha20 first for a
// client that lists it first, i.e. one without AES hardware).
inline constexpr std::string_view kDefaultCiphersTls12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr std::string_view kDefaultCiphersuitesTls13 =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// RFC 8446 caps a TLS 1.3 ticket's lifetime at 7 days; we apply it to 1.2 too.
inline constexpr uint32_t kTicketLifetimeSecondsMax = 7 * 24 * 3600;
// Ticket keys in one ticket_key_file.
inline constexpr size_t kTicketKeysMax = 8;
// A certificate, key or ticket key file larger than this is refused (a
// misconfigured path to a device or a log must not be read to the end).
inline constexpr size_t kCredentialFileBytesMax = 1024 * 1024;

struct CertificateFiles {
  std::string chain_file;  // PEM: leaf first, then intermediates
  std::string key_file;    // PEM private key; empty: read it from chain_file
};

// A certificate held in memory instead of files (a row of
// popgate.tenant_certificates).
struct CertificatePem {
  std::string source;     // names it in warnings, logs and metrics: "db:example.org/pop"
  std::string chain_pem;  // the leaf, then its intermediates
  std::string key_pem;    // the unencrypted private key; empty: it is in chain_pem
  // The tenant's domain: only names equal to it or under it are served.
  // Empty: any name (no tenant).
  std::string domain;
};

struct TlsConfig {
  // One or more, at most one per key type: typically an ECDSA P-256 and an
  // RSA one, served from one context so the client's capabilities pick.
  std::vector<CertificateFiles> default_certificates;
  std::string sni_directory;    // optional; layout above
  // Indexed by SNI like the directory's files, after them; rules above.
  std::vector<CertificatePem> database_certificates;
  std::string ticket_key_file;  // optional; format above
  // How long a ticket resumes, in seconds; 0 turns tickets (and with them
  // resumption) off. At most kTicketLifetimeSecondsMax.
  uint32_t ticket_lifetime_s = 7200;
  // OpenSSL syntax; empty means the default.
  std::string ciphers_tls12{kDefaultCiphersTls12};
  std::string ciphersuites_tls13{kDefaultCiphersuitesTls13};
};

// One loaded certificate, for logs, metrics and expiry alerts.
struct CertificateInfo {
  std::vector<std::string> names;  // as indexed for SNI: SAN DNS (or CN), lowercase
  std::string key_type;            // "ECDSA P-256", "RSA 2048", "Ed25519", ...
  std::string subject;             // one line, RFC 2253
  int64_t not_before_s = 0;        // unix seconds
  int64_t not_after_s = 0;         // unix seconds
  std::string source_file;         // the chain (or .pem) file, or CertificatePem::source
  bool is_default = false;         // from default_certificates, not sni_directory
};

// True when `name` (lowercase, possibly a wildcard "*.x") is `domain` or a
// name under it: "example.org", "pop.example.org" and "*.example.org" are
// under "example.org"; "badexample.org" and "*.org" are not.
[[nodiscard]] bool name_in_domain(std::string_view name, std::string_view domain) noexcept;
// "" when `name` can be indexed for SNI; otherwise why not (a '*' anywhere
// but as the whole first label "*.", followed by at least one label).
[[nodiscard]] std::string wildcard_problem(std::string_view name);

class TlsContext {
 public:
  // Reads and checks every file. On failure returns nullptr and sets *error
  // to one line naming the file and the problem (missing or unreadable,
  // no certificate in it, key does not match, unsupported key, bad ticket
  // key file, bad cipher string). Problems that do not stop serving, such as
  // an expired certificate, are warnings(). Blocking; not for shard threads.
  [[nodiscard]] static std::shared_ptr<const TlsContext> load(const TlsConfig& config,
                                                              std::string* error);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Defaults first (in config order), then the SNI directory in name order,
  // then the database certificates that could be used, in config order.
  [[nodiscard]] const std::vector<CertificateInfo>& certificates() const noexcept {
    return certificates_;
  }
  // One line each, naming the file (or database source): expired or not yet
  // valid certificates, SNI names shadowed by another certificate, a
  // world-readable key file, a database certificate or name not used.
  [[nodiscard]] const std::vector<std::string>& warnings() const noexcept { return warnings_; }

  // Number of distinct SNI names and wildcards indexed (for logs and tests).
  [[nodiscard]] size_t sni_names() const noexcept { return exact_.size() + wildcard_.size(); }

  // The SSL_CTX a new connection starts from. For TlsStream.
  [[nodiscard]] ssl_ctx_st* default_ssl_ctx() const noexcept { return default_ctx_; }
  // What the SNI callback switches to for `host_name` (already lowercase,
  // no trailing dot): exact, then wildcard, else nullptr (stay on default).
  [[nodiscard]] ssl_ctx_st* ssl_ctx_for_name(std::string_view host_name) const noexcept;

  struct TicketKeys;  // defined in tls_context.cc

 private:
  struct NameEntry {
    std::string name;  // exact name, or for a wildcard the part after "*."
    ssl_ctx_st* ctx;
  };
  class Loader;
  TlsContext() = default;

  ssl_ctx_st* default_ctx_ = nullptr;   // owned
  std::vector<ssl_ctx_st*> sni_ctxs_;   // owned
  std::vector<NameEntry> exact_;        // sorted by name
  std::vector<NameEntry> wildcard_;     // sorted by name
  std::shared_ptr<const TicketKeys> ticket_keys_;  // registered in every SSL_CTX
  std::vector<CertificateInfo> certificates_;
  std::vector<std::string> warnings_;
};

}  // namespace popgate::tls
