#include "ops/admin/context.h"

#include <utility>

namespace popgate::admin {

Context::Context(std::string dsn, std::ostream& out, std::istream& in)
    : dsn_(std::move(dsn)), out_(out), in_(in) {}

Context::~Context() = default;

pqxx::connection_base& Context::db() {
  if (!db_) db_ = std::make_unique<pqxx::connection>(dsn_);
  return *db_;
}

}  // namespace popgate::admin
