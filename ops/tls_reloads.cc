#include "ops/tls_reloads.h"

#include <chrono>
#include <string_view>
#include <utility>

#include "server/base/log.h"

namespace popgate::ops {
namespace {

// The files part of a TlsConfig: "chain:key ..." pairs (validated when the
// configuration was loaded), the SNI directory, the ticket keys.
tls::TlsConfig tls_files(const Config& config) {
  tls::TlsConfig t;
  std::string_view pairs(config.tls_certificates);
  while (!pairs.empty()) {
    const size_t space = pairs.find(' ');
    const std::string_view pair = pairs.substr(0, space);
    pairs = space == std::string_view::npos ? std::string_view{} : pairs.substr(space + 1);
    if (pair.empty()) continue;
    const size_t colon = pair.find(':');
    t.default_certificates.push_back(
        {std::string(pair.substr(0, colon)), std::string(pair.substr(colon + 1))});
  }
  t.sni_directory = config.tls_sni_directory;
  t.ticket_key_file = config.tls_ticket_key_file;
  return t;
}

// Every PostgreSQL cluster's: database.dsn first, then database.clusters.
std::vector<CertificateDatabase> certificate_databases(const Config& config) {
  std::vector<CertificateDatabase> out;
  std::vector<std::string> dsns{config.dsn};
  for (const DatabaseCluster& c : config.clusters) dsns.push_back(c.dsn);
  for (std::string& dsn : dsns) {
    CertificateDatabase db;
    db.dsn = std::move(dsn);
    db.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
    db.query_timeout = std::chrono::milliseconds(config.query_timeout_ms);
    db.application_name = "popgate/tls";
    out.push_back(std::move(db));
  }
  return out;
}

// Cluster i's part of a signature joined by read_database ("" if none).
constexpr char kSignatureJoin = '\n';
std::string signature_part(const std::string& joined, size_t i) {
  size_t begin = 0;
  for (; i > 0; --i) {
    begin = joined.find(kSignatureJoin, begin);
    if (begin == std::string::npos) return "";
    ++begin;
  }
  const size_t end = joined.find(kSignatureJoin, begin);
  return joined.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// One cluster's certificates, or nullopt with *error when it failed.
std::optional<TenantCertificates> read_one_database(const CertificateDatabase& db, std::string* error) {
  try {
    return read_tenant_certificates(db);
  } catch (const std::exception& e) {
    std::string why;
    for (const char c : std::string_view(e.what())) {
      if (c == '\n' || c == '\r' || c == '\t') {
        if (!why.empty() && why.back() != ' ') why += ' ';
      } else {
        why += c;
      }
    }
    while (!why.empty() && why.back() == ' ') why.pop_back();
    *error = "database certificates: " + why;
    return std::nullopt;
  }
}

// The certificates of every cluster, with their signatures joined in
// cluster order; or nullopt with *error when a database failed (all or
// nothing: a partial set would drop the certificates of a cluster).
std::optional<TenantCertificates> read_database(const Config& config, std::string* error) {
  const std::vector<CertificateDatabase> databases = certificate_databases(config);
  TenantCertificates all;
  for (size_t i = 0; i < databases.size(); ++i) {
    std::optional<TenantCertificates> one = read_one_database(databases[i], error);
    if (!one) {
      if (databases.size() > 1) {
        *error = "cluster " + (i == 0 ? std::string(kDefaultCluster) : config.clusters[i - 1].name) + ": " + *error;
      }
      return std::nullopt;
    }
    for (tls::CertificatePem& c : one->certificates) all.certificates.push_back(std::move(c));
    all.signature += (i == 0 ? "" : std::string(1, kSignatureJoin)) + one->signature;
  }
  return all;
}

size_t database_count(const tls::TlsContext& context) {
  size_t n = 0;
  for (const tls::CertificateInfo& c : context.certificates()) {
    n += c.source_file.starts_with("db:") ? 1 : 0;
  }
  return n;
}

}  // namespace

TlsReloads::TlsReloads(const Config& config) : config_(config) {}

TlsReloads::~TlsReloads() { stop_watching(); }

std::shared_ptr<const tls::TlsContext> TlsReloads::current() const {
  std::lock_guard lock(current_mu_);
  return current_;
}

std::shared_ptr<const tls::TlsContext> TlsReloads::load(const Config& config,
                                                        TenantCertificates* database,
                                                        bool log_each, std::string* error) {
  tls::TlsConfig t = tls_files(config);
  // Lent, not copied: `database` wipes the keys when it goes.
  if (database != nullptr) t.database_certificates.swap(database->certificates);
  auto context = tls::TlsContext::load(t, error);
  if (database != nullptr) t.database_certificates.swap(database->certificates);
  if (!context) return nullptr;
  for (const std::string& w : context->warnings()) {
    POPGATE_LOG(kWarn, "tls_warning").str("warning", w);
  }
  if (log_each) {
    for (const tls::CertificateInfo& c : context->certificates()) {
      POPGATE_LOG(kInfo, "tls_certificate")
          .str("file", c.source_file)
          .str("key", c.key_type)
          .str("subject", c.subject)
          .num("not_after", c.not_after_s)
          .boolean("default", c.is_default);
    }
  }
  return context;
}

void TlsReloads::apply(std::shared_ptr<const tls::TlsContext> context) {
  for (shard::Shard* sh : shards_) sh->set_tls_context(context);
  std::lock_guard lock(current_mu_);
  current_ = std::move(context);
}

bool TlsReloads::load_initial(std::string* error) {
  std::lock_guard lock(reload_mu_);
  if (config_.tls_certificates.empty()) return true;
  std::string why;
  std::optional<TenantCertificates> database = read_database(config_, &why);
  if (!database) {
    POPGATE_LOG(kError, "tls_reload_failed")
        .str("reason", why + "; serving the certificates of the files until it answers");
  }
  auto context = load(config_, database ? &*database : nullptr, true, error);
  if (!context) return false;
  initial_signature_ = database ? database->signature : "";
  std::lock_guard current(current_mu_);
  current_ = std::move(context);
  return true;
}

void TlsReloads::start_watching(std::vector<shard::Shard*> shards) {
  std::lock_guard lock(reload_mu_);
  shards_ = std::move(shards);
  if (config_.tls_certificates.empty() || !watchers_.empty()) return;
  std::vector<CertificateDatabase> databases = certificate_databases(config_);
  for (size_t i = 0; i < databases.size(); ++i) {
    watchers_.push_back(std::make_unique<TenantCertificateWatcher>(
        std::move(databases[i]), std::chrono::milliseconds(config_.tls_database_poll_ms),
        signature_part(initial_signature_, i), [this, i] { return reload_from_database(i); }));
  }
}

void TlsReloads::stop_watching() {
  std::vector<std::unique_ptr<TenantCertificateWatcher>> watchers;
  {
    std::lock_guard lock(reload_mu_);
    watchers = std::move(watchers_);
    watchers_.clear();
  }
  watchers.clear();  // outside the lock: a reload under way needs it
  std::lock_guard lock(reload_mu_);
  shards_.clear();
}

void TlsReloads::set_loaded(const std::string& joined) {
  for (size_t i = 0; i < watchers_.size(); ++i) watchers_[i]->set_loaded(signature_part(joined, i));
}

std::optional<std::string> TlsReloads::reload_from_database(size_t cluster) {
  std::lock_guard lock(reload_mu_);
  std::string error;
  std::optional<TenantCertificates> database = read_database(config_, &error);
  if (!database) {
    POPGATE_LOG(kError, "tls_reload_failed").str("reason", error);
    return std::nullopt;
  }
  auto context = load(config_, &*database, false, &error);
  if (!context) {
    POPGATE_LOG(kError, "tls_reload_failed").str("reason", error);
    return std::nullopt;
  }
  POPGATE_LOG(kInfo, "tls_reloaded")
      .str("trigger", "database")
      .unum("certificates", context->certificates().size())
      .unum("database_certificates", database_count(*context))
      .unum("sni_names", context->sni_names());
  apply(std::move(context));
  // The other clusters' watchers need not load this again.
  set_loaded(database->signature);
  return signature_part(database->signature, cluster);
}

TlsReloads::Outcome TlsReloads::reload(const Config& fresh) {
  std::lock_guard lock(reload_mu_);
  for (const auto& watcher : watchers_) {
    watcher->set_poll_interval(std::chrono::milliseconds(fresh.tls_database_poll_ms));
  }
  if (fresh.tls_certificates.empty()) return Outcome::kTlsOff;
  std::string error;
  std::optional<TenantCertificates> database = read_database(fresh, &error);
  if (!database) {
    POPGATE_LOG(kError, "tls_reload_failed")
        .str("reason", error + "; the certificates in use stay");
    return Outcome::kDatabaseFailed;
  }
  auto context = load(fresh, &*database, true, &error);
  if (!context) {
    POPGATE_LOG(kError, "tls_reload_failed").str("reason", error);
    return Outcome::kFilesFailed;
  }
  apply(std::move(context));
  // The files only: the database settings need a restart.
  config_.tls_certificates = fresh.tls_certificates;
  config_.tls_sni_directory = fresh.tls_sni_directory;
  config_.tls_ticket_key_file = fresh.tls_ticket_key_file;
  set_loaded(database->signature);
  return Outcome::kApplied;
}

}  // namespace popgate::ops
