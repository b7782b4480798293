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

CertificateDatabase certificate_database(const Config& config) {
  CertificateDatabase db;
  db.dsn = config.dsn;
  db.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
  db.query_timeout = std::chrono::milliseconds(config.query_timeout_ms);
  db.application_name = "popgate/tls";
  return db;
}

// The certificates, or nullopt with *error when the database failed.
std::optional<TenantCertificates> read_database(const Config& config, std::string* error) {
  try {
    return read_tenant_certificates(certificate_database(config));
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
  if (config_.tls_certificates.empty() || watcher_) return;
  watcher_ = std::make_unique<TenantCertificateWatcher>(
      certificate_database(config_), std::chrono::milliseconds(config_.tls_database_poll_ms),
      initial_signature_, [this] { return reload_from_database(); });
}

void TlsReloads::stop_watching() {
  std::unique_ptr<TenantCertificateWatcher> watcher;
  {
    std::lock_guard lock(reload_mu_);
    watcher = std::move(watcher_);
  }
  watcher.reset();  // outside the lock: a reload under way needs it
  std::lock_guard lock(reload_mu_);
  shards_.clear();
}

std::optional<std::string> TlsReloads::reload_from_database() {
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
  return database->signature;
}

TlsReloads::Outcome TlsReloads::reload(const Config& fresh) {
  std::lock_guard lock(reload_mu_);
  if (watcher_) {
    watcher_->set_poll_interval(std::chrono::milliseconds(fresh.tls_database_poll_ms));
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
  if (watcher_) watcher_->set_loaded(database->signature);
  return Outcome::kApplied;
}

}  // namespace popgate::ops
