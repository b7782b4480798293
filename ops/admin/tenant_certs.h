// `popgate-admin tenant cert set|list|del`: the TLS certificates a tenant
// serves for its own names, in popgate.tenant_certificates (schema v5). The
// gateways notice changes within tls.database_poll_ms and choose them by SNI
// like the files of tls.sni_directory.
//
// `set` checks before it stores: the chain parses, the key matches its
// leaf, the certificate has not expired, and every name it serves (SAN DNS,
// or the CN without them) is the tenant's domain or under it, and not under
// another tenant's more specific domain: a tenant cannot claim another's
// names. Chain and key are stored as canonical PEM (the key unencrypted:
// the table holds private keys). `list` never reads a key.
//
// The checks on names are pure functions, for tests.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ops/admin/context.h"

namespace popgate::admin {

// A certificate's name within its tenant: 1..64 of [a-z0-9._-], starting
// with a letter or digit (e.g. "pop", "ecdsa-2026").
inline constexpr size_t kCertificateNameBytesMax = 64;

// The name lowercased, or UserError naming the problem.
[[nodiscard]] std::string require_certificate_name(std::string_view name);

// Why `names` (as the certificate serves them) may not be stored for the
// tenant `domain`, one line per refused name; empty when all may.
// `more_specific` holds the other tenants' domains that are under `domain`
// (their names are theirs, even under ours).
[[nodiscard]] std::vector<std::string> certificate_name_problems(
    const std::vector<std::string>& names, std::string_view domain,
    const std::vector<std::string>& more_specific);

struct CertSetArgs {
  std::string domain;
  std::string name;
  std::string chain_file;               // PEM: leaf, intermediates; may hold the key
  std::optional<std::string> key_file;  // PEM private key; default: in chain_file
};

[[nodiscard]] int tenant_cert_set(Context& ctx, const CertSetArgs& args);
// DOMAIN NAME NAMES KEY NOT_AFTER UPDATED, of one tenant or of all.
[[nodiscard]] int tenant_cert_list(Context& ctx, const std::optional<std::string>& domain);
[[nodiscard]] int tenant_cert_del(Context& ctx, std::string_view domain, std::string_view name);

}  // namespace popgate::admin
