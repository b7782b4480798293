#include "ops/admin/tenant_certs.h"

#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <ostream>
#include <pqxx/pqxx>

#include "ops/admin/lookup.h"
#include "ops/admin/table.h"
#include "server/tls/certificate_pem.h"
#include "server/tls/tls_context.h"

namespace popgate::admin {
namespace {

// A chain or key file larger than the gateway would read from its own
// files is refused here too.
constexpr size_t kCertificateFileBytesMax = tls::kCredentialFileBytesMax;

// The whole file, wiped when it goes (it may hold a private key).
class SecretText {
 public:
  explicit SecretText(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UserError("cannot open '" + path + "': " + std::strerror(errno));
    char chunk[16384];
    while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
      text_.append(chunk, size_t(in.gcount()));
      if (text_.size() > kCertificateFileBytesMax) {
        throw UserError("'" + path + "' is larger than " +
                        std::to_string(kCertificateFileBytesMax) + " bytes");
      }
    }
    OPENSSL_cleanse(chunk, sizeof chunk);
    if (in.bad()) throw UserError("cannot read '" + path + "': " + std::strerror(errno));
  }
  ~SecretText() { OPENSSL_cleanse(text_.data(), text_.size()); }
  SecretText(const SecretText&) = delete;
  SecretText& operator=(const SecretText&) = delete;
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;
};

std::string joined(const std::vector<std::string>& names, const char* separator) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : separator) + n;
  return out;
}

// Tenant domains under `domain` (its subdomains that are tenants of their own).
std::vector<std::string> more_specific_tenants(pqxx::transaction_base& tx,
                                               const std::string& domain) {
  std::vector<std::string> out;
  // Domains are [a-z0-9.-] only (names.h), so LIKE has nothing to escape.
  for (const auto& r : tx.exec_params(
           "SELECT domain FROM popgate.tenants WHERE domain LIKE '%.' || $1 ORDER BY domain",
           domain)) {
    out.push_back(r[0].c_str());
  }
  return out;
}

// True when a host the wildcard "*.base" matches (one label more than base)
// falls within `tenant`.
bool wildcard_reaches(std::string_view base, std::string_view tenant) {
  if (tls::name_in_domain(base, tenant)) return true;  // base itself is within it
  // tenant = LABEL "." base: the wildcard matches tenant's own name.
  return tenant.size() > base.size() + 1 && tenant.ends_with(base) &&
         tenant[tenant.size() - base.size() - 1] == '.' &&
         tenant.substr(0, tenant.size() - base.size() - 1).find('.') == std::string_view::npos;
}

}  // namespace

std::string require_certificate_name(std::string_view text) {
  const std::string name = lowercase_ascii(text);
  const auto good = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  };
  bool ok = !name.empty() && name.size() <= kCertificateNameBytesMax && good(name[0]) &&
            name[0] != '.' && name[0] != '_' && name[0] != '-';
  for (const char c : name) ok = ok && good(c);
  if (!ok) {
    throw UserError("certificate name '" + std::string(text) + "' must be 1 to " +
                    std::to_string(kCertificateNameBytesMax) +
                    " of a-z 0-9 . _ -, starting with a letter or digit");
  }
  return name;
}

std::vector<std::string> certificate_name_problems(const std::vector<std::string>& names,
                                                   std::string_view domain,
                                                   const std::vector<std::string>& more_specific) {
  std::vector<std::string> problems;
  for (const std::string& name : names) {
    const std::string wildcard = tls::wildcard_problem(name);
    if (!wildcard.empty()) {
      problems.push_back("name '" + name + "': " + wildcard);
      continue;
    }
    if (!tls::name_in_domain(name, domain)) {
      problems.push_back("name '" + name + "' is neither " + std::string(domain) +
                         " nor under it");
      continue;
    }
    const bool is_wildcard = name.starts_with("*.");
    const std::string_view base = is_wildcard ? std::string_view(name).substr(2) : name;
    for (const std::string& other : more_specific) {
      const bool theirs =
          is_wildcard ? wildcard_reaches(base, other) : tls::name_in_domain(name, other);
      if (theirs) {
        problems.push_back("name '" + name + "' belongs to tenant " + other);
        break;
      }
    }
  }
  return problems;
}

int tenant_cert_set(Context& ctx, const CertSetArgs& args) {
  const std::string domain = require_domain(args.domain);
  const std::string name = require_certificate_name(args.name);
  const SecretText chain(args.chain_file);
  std::optional<SecretText> key;
  if (args.key_file) key.emplace(*args.key_file);

  tls::CertificatePem pem;
  pem.source = args.chain_file;
  pem.chain_pem = chain.text();
  if (key) pem.key_pem = key->text();
  tls::CheckedCertificate checked;
  std::vector<std::string> warnings;
  std::string error;
  const bool ok = tls::check_certificate_pem(pem, args.key_file.value_or(""),
                                             int64_t(std::time(nullptr)), &checked, &warnings,
                                             &error);
  OPENSSL_cleanse(pem.chain_pem.data(), pem.chain_pem.size());
  OPENSSL_cleanse(pem.key_pem.data(), pem.key_pem.size());
  if (!ok) throw UserError(error);
  const tls::CertificateInfo& info = checked.info;
  if (info.not_after_s < int64_t(std::time(nullptr))) {
    throw UserError(args.chain_file + ": the certificate expired at " +
                    tls::utc_text(info.not_after_s) + "; not stored");
  }
  if (info.names.empty()) {
    throw UserError(args.chain_file +
                    ": the certificate has no DNS name (subjectAltName or CN) to serve");
  }

  pqxx::work tx(ctx.db(), "tenant_cert_set");
  const int64_t tenant_id = find_tenant(tx, domain);
  const std::vector<std::string> problems =
      certificate_name_problems(info.names, domain, more_specific_tenants(tx, domain));
  if (!problems.empty()) {
    throw UserError(args.chain_file + ": not stored for tenant " + domain + ": " +
                    joined(problems, "; "));
  }
  const auto row = tx.exec_params1(
      "INSERT INTO popgate.tenant_certificates (tenant_id, name, chain_pem, key_pem)"
      " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, name) DO UPDATE SET"
      " chain_pem = EXCLUDED.chain_pem, key_pem = EXCLUDED.key_pem,"
      // Always later than before, even if the clock went back: the
      // gateways' change signature moves.
      " updated_at = greatest(now(), popgate.tenant_certificates.updated_at"
      " + interval '1 microsecond')"
      " RETURNING (xmax = 0)",
      tenant_id, name, checked.chain_pem, checked.key_pem);
  tx.commit();
  for (const std::string& w : warnings) ctx.err() << "warning: " << w << "\n";
  ctx.out() << (row[0].as<bool>() ? "stored" : "replaced") << " certificate " << name
            << " of tenant " << domain << ": " << joined(info.names, ", ") << " ("
            << info.key_type << "), expires " << tls::utc_text(info.not_after_s) << "\n";
  return kExitOk;
}

int tenant_cert_list(Context& ctx, const std::optional<std::string>& text) {
  pqxx::read_transaction tx(ctx.db(), "tenant_cert_list");
  std::string domain;
  if (text) {
    domain = require_domain(*text);
    (void)find_tenant(tx, domain);
  }
  // Never the key.
  const auto rows = tx.exec_params(
      "SELECT t.domain, c.name, c.chain_pem, " + sql_utc("c.updated_at") +
          " FROM popgate.tenant_certificates c JOIN popgate.tenants t USING (tenant_id)"
          " WHERE $1 = '' OR t.domain = $1 ORDER BY t.domain, c.name",
      domain);
  std::vector<TableRow> table{{"DOMAIN", "NAME", "NAMES", "KEY", "NOT_AFTER", "UPDATED"}};
  for (const auto& r : rows) {
    tls::CertificateInfo info;
    std::string error;
    const std::string source = std::string("db:") + r[0].c_str() + "/" + r[1].c_str();
    if (tls::describe_certificate_chain(source, r[2].c_str(), &info, &error)) {
      std::string key_type = info.key_type;
      for (char& c : key_type) c = c == ' ' ? '-' : c;  // one column
      table.push_back({r[0].c_str(), r[1].c_str(), joined(info.names, ","), key_type,
                       tls::utc_text(info.not_after_s), r[3].c_str()});
    } else {
      ctx.err() << "warning: " << error << "\n";
      table.push_back({r[0].c_str(), r[1].c_str(), "unreadable", "-", "-", r[3].c_str()});
    }
  }
  print_table(ctx.out(), table);
  return kExitOk;
}

int tenant_cert_del(Context& ctx, std::string_view text, std::string_view name_text) {
  const std::string domain = require_domain(text);
  const std::string name = require_certificate_name(name_text);
  pqxx::work tx(ctx.db(), "tenant_cert_del");
  const int64_t tenant_id = find_tenant(tx, domain);
  const auto gone = tx.exec_params(
      "DELETE FROM popgate.tenant_certificates WHERE tenant_id = $1 AND name = $2 RETURNING 1",
      tenant_id, name);
  if (gone.empty()) {
    throw UserError("tenant " + domain + " has no certificate '" + name +
                    "' (see: popgate-admin tenant cert list " + domain + ")");
  }
  tx.commit();
  ctx.out() << "deleted certificate " << name << " of tenant " << domain << "\n";
  return kExitOk;
}

}  // namespace popgate::admin
