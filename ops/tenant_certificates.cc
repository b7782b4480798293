#include "ops/tenant_certificates.h"

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include <pqxx/pqxx>
#include <stdexcept>

#include "server/base/log.h"

namespace popgate::ops {
namespace {

// A row count, the newest change (microseconds) and a hash over every row's
// key and change time: a replace, an add plus a delete, or a tenant deleted
// with its certificates all move at least one of them. Reads no PEM column.
constexpr const char* kSignatureSql =
    "SELECT count(*)::text || '/' ||"
    " coalesce((extract(epoch FROM max(updated_at)) * 1000000)::bigint, 0)::text || '/' ||"
    " coalesce(sum(hashtextextended(tenant_id::text || '/' || name || '/' ||"
    " (extract(epoch FROM updated_at) * 1000000)::bigint::text, 0)), 0)::text"
    " FROM popgate.tenant_certificates";

constexpr const char* kCertificatesSql =
    "SELECT t.domain, c.name, c.chain_pem, c.key_pem FROM popgate.tenant_certificates c"
    " JOIN popgate.tenants t USING (tenant_id) ORDER BY t.domain, c.name";

// libpq's conninfo escaping: single quotes, with ' and \ escaped.
std::string quoted(std::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// `dsn` (keywords or a URI) as keywords, with connect_timeout (unless the
// dsn sets one) and application_name. libpqxx 6 connects with
// PQconnectdb(), which cannot add keywords to a URI.
std::string conninfo(const CertificateDatabase& db) {
  char* problem = nullptr;
  PQconninfoOption* options = PQconninfoParse(db.dsn.c_str(), &problem);
  if (options == nullptr) {
    std::string why = problem != nullptr ? problem : "out of memory";
    PQfreemem(problem);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    throw pqxx::broken_connection("bad database.dsn: " + why);
  }
  std::string out;
  bool has_timeout = false;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::string_view(o->keyword) == "application_name") continue;
    has_timeout = has_timeout || std::string_view(o->keyword) == "connect_timeout";
    out += std::string(o->keyword) + "=" + quoted(o->val) + " ";
  }
  PQconninfoFree(options);
  if (!has_timeout) {
    // libpq counts whole seconds, and takes 1 as 2.
    const auto seconds = std::max<int64_t>(
        2, std::chrono::ceil<std::chrono::seconds>(db.connect_timeout).count());
    out += "connect_timeout=" + std::to_string(seconds) + " ";
  }
  return out + "application_name=" + quoted(db.application_name);
}

std::unique_ptr<pqxx::connection> connect(const CertificateDatabase& db) {
  auto c = std::make_unique<pqxx::connection>(conninfo(db));
  pqxx::nontransaction tx(*c, "tls_settings");
  tx.exec("SET statement_timeout = " + std::to_string(db.query_timeout.count()));
  // Every tenant's certificates: cross-tenant under row-level security.
  tx.exec("SET popgate.all_tenants = on");
  return c;
}

// The one-line form of a libpq message.
std::string one_line(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (!space) {
      out += c;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

TenantCertificates::~TenantCertificates() {
  for (tls::CertificatePem& c : certificates) OPENSSL_cleanse(c.key_pem.data(), c.key_pem.size());
}

TenantCertificates read_tenant_certificates(const CertificateDatabase& db) {
  auto c = connect(db);
  // One snapshot: the signature is exactly that of the rows read.
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(*c, "tls_certificates");
  TenantCertificates out;
  out.signature = tx.exec1(kSignatureSql)[0].as<std::string>();
  const pqxx::result rows = tx.exec(kCertificatesSql);
  out.certificates.reserve(rows.size());
  for (const auto& r : rows) {
    tls::CertificatePem pem;
    pem.domain = r[0].as<std::string>();
    pem.source = "db:" + pem.domain + "/" + r[1].as<std::string>();
    pem.chain_pem = r[2].as<std::string>();
    pem.key_pem = r[3].as<std::string>();
    out.certificates.push_back(std::move(pem));
  }
  tx.commit();
  return out;
}

struct TenantCertificateWatcher::Connection {
  std::unique_ptr<pqxx::connection> db;
};

TenantCertificateWatcher::TenantCertificateWatcher(CertificateDatabase db,
                                                   std::chrono::milliseconds poll_interval,
                                                   std::string loaded, Reload reload)
    : db_(std::move(db)),
      reload_(std::move(reload)),
      poll_interval_(poll_interval),
      loaded_(std::move(loaded)),
      connection_(std::make_unique<Connection>()),
      thread_([this] { run(); }) {}

TenantCertificateWatcher::~TenantCertificateWatcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void TenantCertificateWatcher::set_loaded(std::string signature) {
  std::lock_guard lock(mu_);
  loaded_ = std::move(signature);
}

void TenantCertificateWatcher::set_poll_interval(std::chrono::milliseconds poll_interval) {
  {
    std::lock_guard lock(mu_);
    poll_interval_ = poll_interval;
  }
  wake_.notify_all();
}

std::optional<std::string> TenantCertificateWatcher::poll_signature() {
  try {
    if (!connection_->db) connection_->db = connect(db_);
    pqxx::read_transaction tx(*connection_->db, "tls_signature");
    std::string signature = tx.exec1(kSignatureSql)[0].as<std::string>();
    if (unreachable_) {
      POPGATE_LOG(kInfo, "tls_database_reachable");
    }
    unreachable_ = false;
    return signature;
  } catch (const std::exception& e) {
    connection_->db.reset();  // made again at the next poll
    if (!unreachable_) {
      POPGATE_LOG(kWarn, "tls_database_unreachable").str("reason", one_line(e.what()));
    }
    unreachable_ = true;
    return std::nullopt;
  }
}

void TenantCertificateWatcher::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    // A zero interval waits for a new one (or the stop).
    const auto interval = poll_interval_;
    if (interval.count() == 0) {
      wake_.wait(lock, [&] { return stop_ || poll_interval_.count() != 0; });
    } else {
      wake_.wait_for(lock, interval, [&] { return stop_ || poll_interval_ != interval; });
    }
    if (stop_) return;
    if (poll_interval_ != interval) continue;  // a new interval: wait that long first
    lock.unlock();
    const std::optional<std::string> signature = poll_signature();
    lock.lock();
    if (stop_) return;
    if (!signature || *signature == loaded_) continue;
    lock.unlock();
    std::optional<std::string> now_loaded = reload_();
    lock.lock();
    if (now_loaded) loaded_ = std::move(*now_loaded);
  }
}

}  // namespace popgate::ops
