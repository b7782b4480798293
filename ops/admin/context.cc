#include "ops/admin/context.h"

#include <utility>

namespace popgate::admin {

Context::Context(std::string dsn, std::ostream& out, std::istream& in, std::ostream& err)
    : dsn_(std::move(dsn)), out_(out), in_(in), err_(err) {}

Context::~Context() = default;

pqxx::connection_base& Context::db() {
  if (!db_) db_ = std::make_unique<pqxx::connection>(dsn_);
  return *db_;
}

}  // namespace popgate::admin
