// The tenants' TLS certificates in popgate.tenant_certificates, for the
// gateway: reading them all (at startup and SIGHUP), and a watcher thread
// that notices when they change so the gateway can load them without a
// restart.
//
// Blocking (libpqxx); runs on the main thread or on the watcher's own
// thread, never on a shard thread. Must not know: shards or how a new
// TlsContext is handed to them (the caller's reload function does that).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/tls/tls_context.h"

namespace popgate::ops {

// Every certificate, read in one snapshot together with the change
// signature of that snapshot.
struct TenantCertificates {
  // Moves whenever a certificate is added, replaced or deleted (a row
  // count, the newest updated_at and a hash over every row's key and
  // updated_at). Compared for equality only.
  std::string signature;
  // Ordered by tenant domain, then name. source "db:DOMAIN/NAME", domain
  // the tenant's (TlsContext serves only names within it).
  std::vector<tls::CertificatePem> certificates;

  TenantCertificates() = default;
  ~TenantCertificates();  // wipes the private keys
  TenantCertificates(TenantCertificates&&) = default;
  TenantCertificates& operator=(TenantCertificates&&) = default;
};

// Connection settings for the blocking reads: `dsn` (keywords or URI), with
// connect_timeout and application_name added, and statement_timeout set on
// every connection made.
struct CertificateDatabase {
  std::string dsn;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds query_timeout{10'000};
  std::string application_name = "popgate/tls";
};

// Connects, reads, disconnects. Throws std::exception (libpqxx errors, with
// libpq's message) when the database cannot be reached or read.
[[nodiscard]] TenantCertificates read_tenant_certificates(const CertificateDatabase& db);

// Polls the change signature every `poll_interval` on its own thread, with
// one connection it keeps (and makes again after a failure). When the
// signature differs from the last one loaded, it calls `reload`, which
// reads and applies the certificates and returns the signature it loaded,
// or nullopt when that failed (the next poll tries again). A failed poll is
// logged once per outage (tls_database_unreachable) and retried.
class TenantCertificateWatcher {
 public:
  using Reload = std::function<std::optional<std::string>()>;

  // `loaded`: the signature of what is in use ("" = unknown: the first
  // successful poll reloads). A zero poll_interval polls nothing until
  // set_poll_interval() gives it one.
  TenantCertificateWatcher(CertificateDatabase db, std::chrono::milliseconds poll_interval,
                           std::string loaded, Reload reload);
  ~TenantCertificateWatcher();  // stops the thread; waits for a poll under way
  TenantCertificateWatcher(const TenantCertificateWatcher&) = delete;
  TenantCertificateWatcher& operator=(const TenantCertificateWatcher&) = delete;

  // What SIGHUP loaded, so the next poll does not load it again.
  void set_loaded(std::string signature);
  // SIGHUP: a new tls.database_poll_ms (0: stop polling).
  void set_poll_interval(std::chrono::milliseconds poll_interval);

 private:
  void run();
  // One poll: the signature, or nullopt when the database failed.
  std::optional<std::string> poll_signature();

  const CertificateDatabase db_;
  const Reload reload_;
  std::mutex mu_;  // guards the three below
  std::condition_variable wake_;
  std::chrono::milliseconds poll_interval_;
  std::string loaded_;
  bool stop_ = false;
  struct Connection;  // the watcher's libpqxx connection, only on its thread
  std::unique_ptr<Connection> connection_;
  bool unreachable_ = false;  // logged this outage already
  std::thread thread_;        // last: starts once everything above is set
};

}  // namespace popgate::ops
