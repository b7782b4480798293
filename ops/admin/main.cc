// popgate-admin: schema migrations, tenants, users and deliveries, straight
// against PostgreSQL (libpqxx, blocking). See `popgate-admin --help`.
#include <iostream>
#include <pqxx/except>
#include <string>
#include <string_view>

#include "ops/admin/cli.h"
#include "ops/admin/context.h"

namespace {

using namespace popgate::admin;

// libpq messages span lines ("...failed: Connection refused\n\tIs the
// server running..."); one line reads better after our prefix.
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

int fail(int code, const std::string& message) {
  std::cerr << "popgate-admin: " << message << "\n";
  return code;
}

int run(const Invocation& inv) {
  try {
    Context ctx(inv.dsn, std::cout, std::cin, std::cerr);
    return inv.handler(ctx);
  } catch (const UserError& e) {
    return fail(kExitUser, e.what());
  } catch (const pqxx::broken_connection& e) {
    return fail(kExitDatabase, "cannot reach the database: " + one_line(e.what()));
  } catch (const pqxx::sql_error& e) {
    return fail(kExitDatabase,
                "database error (SQLSTATE " + e.sqlstate() + "): " + one_line(e.what()));
  } catch (const pqxx::failure& e) {
    return fail(kExitDatabase, "database error: " + one_line(e.what()));
  } catch (const std::exception& e) {
    return fail(kExitInternal, std::string("internal error: ") + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"popgate-admin: manage popgate's schema, tenants, users and maildrops"};
  Invocation inv;
  build_cli(app, inv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (inv.dsn.empty()) {
    return fail(kExitUsage, "no database: pass --dsn CONNINFO or set POPGATE_DATABASE_DSN");
  }
  return run(inv);
}
