// popgate-admin: schema migrations, tenants, users and deliveries, straight
// against PostgreSQL (libpqxx, blocking). See `popgate-admin --help`.
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <pqxx/except>
#include <string>
#include <string_view>
#include <vector>

#include "ops/admin/cli.h"
#include "ops/admin/context.h"
#include "ops/config.h"

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

int run(const Invocation& inv, const std::string& dsn) {
  try {
    Context ctx(dsn, std::cout, std::cin, std::cerr);
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

// The tenant a command is about: the domain of its address, or its domain
// argument (lowercase); empty for commands about every tenant.
std::string target_domain(const CommandArgs& a) {
  std::string d = a.domain;
  if (!a.address.empty()) {
    const size_t at = a.address.rfind('@');
    d = at == std::string::npos ? std::string() : a.address.substr(at + 1);
  }
  for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return d;
}

// The clusters as the gateway sees them (popgate's own configuration
// loader: the same file, POPGATE_* variables and validation), with --dsn
// overriding database.dsn.
std::optional<popgate::ops::ClusterSet> load_clusters(const Invocation& inv, std::string* error) {
  std::vector<std::string> args{"popgate"};
  if (!inv.config_file.empty()) args.insert(args.end(), {"--config", inv.config_file});
  if (!inv.dsn.empty()) args.insert(args.end(), {"--dsn", inv.dsn});
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  bool exit_now = false;
  const auto config = popgate::ops::load_config(static_cast<int>(argv.size()), argv.data(), error, &exit_now);
  if (!config) return std::nullopt;
  return popgate::ops::cluster_set(config->dsn, config->clusters, config->tenant_clusters);
}

// A tenant's command runs on its cluster; the others on every cluster in
// turn (with a heading each when there are several), and the exit code is
// the first failure's.
int route(const Invocation& inv, const popgate::ops::ClusterSet& set) {
  const std::string domain = target_domain(inv.args);
  if (!domain.empty() || set.clusters.size() == 1) {
    return run(inv, set.clusters[set.routes.cluster_of_domain(domain)].dsn);
  }
  int rc = kExitOk;
  for (const popgate::ops::DatabaseCluster& c : set.clusters) {
    std::cout << "== cluster " << c.name << " ==\n" << std::flush;
    const int one = run(inv, c.dsn);
    if (one != kExitOk) {
      std::cerr << "popgate-admin: cluster " << c.name << " failed (exit " << one << ")\n";
      if (rc == kExitOk) rc = one;
    }
  }
  return rc;
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
  if (inv.dsn.empty() && inv.config_file.empty() && std::getenv("POPGATE_DATABASE_DSN") == nullptr) {
    return fail(kExitUsage, "no database: pass --dsn CONNINFO or --config FILE, or set POPGATE_DATABASE_DSN");
  }
  std::string error;
  const auto clusters = load_clusters(inv, &error);
  if (!clusters) return fail(kExitUsage, "configuration: " + error);
  return route(inv, *clusters);
}
