// Reading what a TlsContext is made of: certificate chains, private keys and
// ticket key files, each checked and described with the file's name in every
// error. Internal to server/tls (TlsContext::load is the public way in).
//
// Blocking file I/O; startup or reload thread only. Errors are one line,
// "PATH: problem"; the caller adds nothing.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "server/tls/tls_context.h"

namespace popgate::tls {

// A ticket key, in the order of the 80-byte record in a ticket key file.
struct TicketKey {
  std::array<unsigned char, 16> name;
  std::array<unsigned char, 32> hmac_key;
  std::array<unsigned char, 32> aes_key;
};
static_assert(sizeof(TicketKey) == 80, "the file record is the struct");

struct TlsContext::TicketKeys {
  std::vector<TicketKey> keys;  // keys[0] encrypts; all decrypt. Never empty.
  ~TicketKeys();                // wipes the key bytes
};

template <auto Free>
struct OpensslDeleter {
  template <typename T>
  void operator()(T* p) const noexcept { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, OpensslDeleter<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY_free>>;

void free_x509_stack(STACK_OF(X509) * chain) noexcept;
using ChainPtr = std::unique_ptr<STACK_OF(X509), OpensslDeleter<free_x509_stack>>;

// A certificate with its key, parsed, matched and described.
struct LoadedCertificate {
  X509Ptr leaf;
  ChainPtr chain;  // intermediates, possibly empty, never null
  PkeyPtr key;
  int key_slot = 0;  // EVP_PKEY base id: one certificate per slot per SSL_CTX
  CertificateInfo info;
};

// The whole file, or false with *error set ("PATH: cannot open: ...").
// *mode receives st_mode. Refuses files over kCredentialFileBytesMax.
[[nodiscard]] bool read_credential_file(const std::string& path, std::string* content,
                                        uint32_t* mode, std::string* error);

// Parses the certificates in `chain_path` (first = leaf) and the private key
// in `key_path` (which may be the same file), checks they match and fills in
// info. Appends a warning when the certificate is expired or not yet valid
// (relative to now_s) or the key file is readable by others.
[[nodiscard]] bool load_certificate(const std::string& chain_path, const std::string& key_path,
                                    bool is_default, int64_t now_s, LoadedCertificate* out,
                                    std::vector<std::string>* warnings, std::string* error);

// The same from memory: `chain_pem` (first CERTIFICATE = leaf) and the
// private key in `key_pem` (may be chain_pem itself). The labels name the
// two in errors and warnings; info.source_file is chain_label.
[[nodiscard]] bool parse_certificate(const std::string& chain_label, const std::string& chain_pem,
                                     const std::string& key_label, const std::string& key_pem,
                                     bool is_default, int64_t now_s, LoadedCertificate* out,
                                     std::vector<std::string>* warnings, std::string* error);

// Only the certificates of `chain_pem` (no key), or false with *error
// naming `label`.
[[nodiscard]] bool read_certificate_chain(const std::string& label, const std::string& chain_pem,
                                          X509Ptr* leaf, ChainPtr* chain, std::string* error);

// Fills names, key type (of `key`, which may be the leaf's public key),
// subject, validity and source_file = `source`.
void describe_leaf(X509* leaf, EVP_PKEY* key, const std::string& source, CertificateInfo* info);

// Reads a ticket key file (format in tls_context.h).
[[nodiscard]] bool load_ticket_keys(const std::string& path, TlsContext::TicketKeys* out,
                                    std::vector<std::string>* warnings, std::string* error);

// Fresh random keys (one key) or false when the system has no randomness.
[[nodiscard]] bool make_random_ticket_keys(TlsContext::TicketKeys* out);

// "2001-01-01T00:00:00Z"
[[nodiscard]] std::string format_utc(int64_t unix_s);

// The reason of the oldest error on this thread's OpenSSL queue ("" if
// none), and clears the queue.
[[nodiscard]] std::string take_openssl_error();

}  // namespace popgate::tls
