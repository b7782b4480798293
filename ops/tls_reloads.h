// The gateway's TLS context and every way it is replaced while running:
// SIGHUP (the files and the database certificates) and the database
// watcher (tls.database_poll_ms). Loads run one at a time and each reads
// both sources, so whichever runs last has loaded the newest of each. A new
// context goes to every shard (for new connections; running ones keep
// theirs) and becomes current() for the metrics. A load that fails keeps
// the context in use and logs tls_reload_failed.
//
// Blocking (files, PostgreSQL): the main thread and the watcher's thread
// only, never a shard thread. TLS is on exactly when tls.certificates is
// set; database certificates only add SNI names.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ops/config.h"
#include "ops/tenant_certificates.h"
#include "server/shard/shard.h"
#include "server/tls/tls_context.h"

namespace popgate::ops {

class TlsReloads {
 public:
  explicit TlsReloads(const Config& config);
  ~TlsReloads();  // stops the watcher
  TlsReloads(const TlsReloads&) = delete;
  TlsReloads& operator=(const TlsReloads&) = delete;

  // Startup: the files and the database certificates, a line logged per
  // certificate. False with *error when tls.certificates is set but the
  // files cannot be loaded. A database that cannot be read is logged and
  // the files' certificates serve until the watcher loads the rest.
  [[nodiscard]] bool load_initial(std::string* error);

  // The context in use; null when TLS is off. Any thread.
  [[nodiscard]] std::shared_ptr<const tls::TlsContext> current() const;

  // Once the shards run: they get every later context, and the watcher
  // starts (TLS on only). `shards` must outlive stop_watching().
  void start_watching(std::vector<shard::Shard*> shards);
  // Before the shards go away.
  void stop_watching();

  enum class Outcome {
    kApplied,         // a new context is in every shard
    kTlsOff,          // no tls.certificates: nothing to load
    kDatabaseFailed,  // the database could not be read: the old context stays
    kFilesFailed,     // the files could not be loaded: the old context stays
  };
  // SIGHUP, with the configuration just read. The caller has checked that
  // it does not turn TLS on or off (that needs a restart). Also applies
  // tls.database_poll_ms to the watcher.
  Outcome reload(const Config& fresh);

 private:
  // Watcher `cluster`'s reload: the signature it loaded of that cluster,
  // or nullopt. Tells the other watchers what their clusters loaded.
  std::optional<std::string> reload_from_database(size_t cluster);
  // Hands each watcher its cluster's part of a joined signature.
  void set_loaded(const std::string& joined);
  // Loads `config`'s files plus `database`; logs the warnings, and a line
  // per certificate when `log_each`.
  std::shared_ptr<const tls::TlsContext> load(const Config& config, TenantCertificates* database,
                                              bool log_each, std::string* error);
  void apply(std::shared_ptr<const tls::TlsContext> context);

  mutable std::mutex current_mu_;  // guards current_ (the metrics read it)
  std::shared_ptr<const tls::TlsContext> current_;

  std::mutex reload_mu_;  // one load at a time; guards the two below
  Config config_;         // its tls.* files, dsn and timeouts are what loads use
  std::vector<shard::Shard*> shards_;
  std::string initial_signature_;  // what load_initial() read, for the watcher
  // One per PostgreSQL cluster (database.dsn, then database.clusters):
  // each cluster holds its own tenants' certificates.
  std::vector<std::unique_ptr<TenantCertificateWatcher>> watchers_;  // last: stopped first
};

}  // namespace popgate::ops
