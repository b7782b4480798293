#include "ops/admin/context.h"

#include <pqxx/nontransaction>
#include <utility>

namespace popgate::admin {

Context::Context(std::string dsn, std::ostream& out, std::istream& in, std::ostream& err)
    : dsn_(std::move(dsn)), out_(out), in_(in), err_(err) {}

Context::~Context() = default;

pqxx::connection_base& Context::db() {
  if (!db_) {
    db_ = std::make_unique<pqxx::connection>(dsn_);
    // The admin tool is cross-tenant by nature: row-level security (schema
    // v6) shows a session every tenant's rows only when it says so.
    pqxx::nontransaction tx(*db_, "all_tenants");
    tx.exec("SET popgate.all_tenants = on");
  }
  return *db_;
}

}  // namespace popgate::admin
