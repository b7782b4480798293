// Certificates held in memory, as popgate-admin handles them before and
// after storing them in popgate.tenant_certificates: checking one (parse,
// key matches, names) and writing it back in one canonical PEM form, and
// describing a stored chain without touching its key. The gateway loads
// them through TlsConfig::database_certificates; this is for the tools.
//
// Must not know: the database, files, tenants (callers apply the domain
// rule with name_in_domain()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/tls/tls_context.h"

namespace popgate::tls {

// A certificate that parsed and whose key matches, re-encoded.
struct CheckedCertificate {
  CertificateInfo info;   // source_file = the CertificatePem's source
  std::string chain_pem;  // the leaf, then the intermediates, PEM, nothing else
  std::string key_pem;    // the private key, unencrypted PKCS#8 PEM
  CheckedCertificate() = default;
  ~CheckedCertificate();  // wipes key_pem
  CheckedCertificate(const CheckedCertificate&) = delete;
  CheckedCertificate& operator=(const CheckedCertificate&) = delete;
};

// Parses pem.chain_pem and the key (pem.key_pem, or the key in chain_pem
// when that is empty), checks that the key matches the leaf and fills *out.
// On failure returns false with *error, one line starting "SOURCE: " (or
// "KEY_SOURCE: " for a problem with a separate key; empty: pem.source).
// Warnings: the certificate is expired or not yet valid at now_s.
// pem.domain is not applied here.
[[nodiscard]] bool check_certificate_pem(const CertificatePem& pem, const std::string& key_source,
                                         int64_t now_s, CheckedCertificate* out,
                                         std::vector<std::string>* warnings, std::string* error);

// "2001-01-01T00:00:00Z"
[[nodiscard]] std::string utc_text(int64_t unix_s);

// Describes the leaf of `chain_pem` (its key type from its public key).
[[nodiscard]] bool describe_certificate_chain(const std::string& source,
                                              const std::string& chain_pem,
                                              CertificateInfo* out, std::string* error);

}  // namespace popgate::tls
