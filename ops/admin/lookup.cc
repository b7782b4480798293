#include "ops/admin/lookup.h"

#include "ops/admin/context.h"

namespace popgate::admin {

std::string require_domain(std::string_view text) {
  std::string domain = lowercase_ascii(text);
  if (auto problem = domain_problem(domain); !problem.empty()) throw UserError(problem);
  return domain;
}

Address require_address(std::string_view text) {
  Address address = parse_address(text);
  if (!address.problem.empty()) throw UserError(address.problem);
  return address;
}

int64_t find_tenant(pqxx::transaction_base& tx, const std::string& domain) {
  const auto rows =
      tx.exec_params("SELECT tenant_id FROM popgate.tenants WHERE domain = $1", domain);
  if (rows.empty()) {
    throw UserError("unknown tenant '" + domain + "' (add it with: popgate-admin tenant add " +
                    domain + ")");
  }
  return rows[0][0].as<int64_t>();
}

UserRef find_user(pqxx::transaction_base& tx, const Address& address) {
  const int64_t tenant_id = find_tenant(tx, address.domain);
  const auto rows =
      tx.exec_params("SELECT user_id FROM popgate.users WHERE tenant_id = $1 AND local_part = $2",
                     tenant_id, address.local_part);
  if (rows.empty()) throw UserError("no user '" + address.login() + "'");
  return UserRef{tenant_id, rows[0][0].as<int64_t>(), address.login()};
}

}  // namespace popgate::admin
