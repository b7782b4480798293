// Turning what the user typed into database ids, with errors that name what
// was not found. Shared by the tenant, user, deliver and maildrop commands.
#pragma once

#include <cstdint>
#include <pqxx/transaction_base>
#include <string>
#include <string_view>

#include "ops/admin/names.h"

namespace popgate::admin {

struct UserRef {
  int64_t tenant_id = 0;
  int64_t user_id = 0;
  std::string login;  // "local@domain", lowercased
};

// Lowercased and checked; throws UserError naming the problem.
[[nodiscard]] std::string require_domain(std::string_view text);
[[nodiscard]] Address require_address(std::string_view text);

// Throw UserError when the tenant (or user) does not exist.
[[nodiscard]] int64_t find_tenant(pqxx::transaction_base& tx, const std::string& domain);
[[nodiscard]] UserRef find_user(pqxx::transaction_base& tx, const Address& address);

}  // namespace popgate::admin
