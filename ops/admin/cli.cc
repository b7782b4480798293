#include "ops/admin/cli.h"

#include <functional>
#include <optional>

#include "ops/admin/deliver.h"
#include "ops/admin/maildrop.h"
#include "ops/admin/migrate.h"
#include "ops/admin/tenants.h"
#include "ops/admin/users.h"

namespace popgate::admin {
namespace {

std::optional<std::string> if_given(const CLI::Option* opt, const std::string& value) {
  return opt->count() > 0 ? std::optional<std::string>(value) : std::nullopt;
}

// `sub` runs `make()`'s handler when chosen; make() runs after parsing.
void on_chosen(CLI::App* sub, Invocation& inv, std::function<Handler()> make) {
  sub->callback([&inv, make = std::move(make)] { inv.handler = make(); });
}

// --password P | --password-stdin, on `sub`; returns the --password option.
CLI::Option* add_password_options(CLI::App* sub, CommandArgs& a) {
  auto* given = sub->add_option("--password", a.password,
                                "the password (visible in ps; prefer --password-stdin)");
  auto* from_stdin = sub->add_flag("--password-stdin", a.password_stdin,
                                   "read the password from the first line of stdin");
  given->excludes(from_stdin);
  return given;
}

void add_migrate(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* sub = app.add_subcommand("migrate", "apply missing schema migrations");
  sub->add_flag("--check", a.check,
                "only report: exit 0 if up to date, 1 if behind or ahead of this build");
  on_chosen(sub, inv, [&a]() -> Handler {
    return [&a](Context& c) { return a.check ? migrate_check(c) : migrate(c); };
  });
}

void add_tenant(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* tenant = app.add_subcommand("tenant", "manage tenants (mail domains)");
  tenant->require_subcommand(1);
  auto* add = tenant->add_subcommand("add", "add a tenant");
  add->add_option("domain", a.domain, "its DNS domain, e.g. example.com")->required();
  on_chosen(add, inv,
            [&a]() -> Handler { return [&a](Context& c) { return tenant_add(c, a.domain); }; });
  auto* list = tenant->add_subcommand("list", "list tenants with users, messages and bytes");
  on_chosen(list, inv, []() -> Handler { return [](Context& c) { return tenant_list(c); }; });
}

void add_user_add(CLI::App* user, Invocation& inv, CommandArgs& a) {
  auto* add = user->add_subcommand("add", "add a user (generates a password unless given)");
  add->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  auto* password = add_password_options(add, a);
  auto* quota = add->add_option("--quota", a.quota, "quota in bytes (stored; not enforced)");
  on_chosen(add, inv, [&a, password, quota]() -> Handler {
    PasswordSource source{if_given(password, a.password), a.password_stdin};
    return [&a, source, q = if_given(quota, a.quota)](Context& c) {
      return user_add(c, a.address, source, q);
    };
  });
}

void add_user(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* user = app.add_subcommand("user", "manage users (mailboxes)");
  user->require_subcommand(1);
  add_user_add(user, inv, a);
  auto* passwd = user->add_subcommand("passwd", "set a user's password");
  passwd->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  auto* password = add_password_options(passwd, a);
  on_chosen(passwd, inv, [&a, password]() -> Handler {
    PasswordSource source{if_given(password, a.password), a.password_stdin};
    return [&a, source](Context& c) { return user_passwd(c, a.address, source); };
  });
  auto* del = user->add_subcommand("del", "delete a user and all of its messages");
  del->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  on_chosen(del, inv,
            [&a]() -> Handler { return [&a](Context& c) { return user_del(c, a.address); }; });
  auto* list = user->add_subcommand("list", "list users, of one tenant or of all");
  auto* domain = list->add_option("domain", a.domain, "only this tenant");
  on_chosen(list, inv, [&a, domain]() -> Handler {
    return [d = if_given(domain, a.domain)](Context& c) { return user_list(c, d); };
  });
}

void add_deliver(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* sub = app.add_subcommand("deliver", "store one message (CRLF-normalised) in a maildrop");
  sub->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  sub->add_option("file", a.file, "the message; '-' or nothing reads stdin");
  auto* uidl = sub->add_option("--uidl", a.uidl, "its UIDL (default: a random one)");
  on_chosen(sub, inv, [&a, uidl]() -> Handler {
    return [&a, u = if_given(uidl, a.uidl)](Context& c) {
      return deliver(c, DeliverArgs{a.address, a.file, u});
    };
  });
}

void add_maildrop(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* maildrop = app.add_subcommand("maildrop", "inspect maildrops");
  maildrop->require_subcommand(1);
  auto* list = maildrop->add_subcommand("list", "list a user's messages");
  list->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  on_chosen(list, inv,
            [&a]() -> Handler { return [&a](Context& c) { return maildrop_list(c, a.address); }; });
}

}  // namespace

void build_cli(CLI::App& app, Invocation& inv) {
  CommandArgs& args = inv.args;
  app.add_option("--dsn", inv.dsn, "libpq connection string, e.g. 'host=... dbname=popgate'")
      ->envname("POPGATE_DATABASE_DSN");
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok; 1 user error (unknown tenant, duplicate user, unreadable file, bad "
      "value; migrate --check: not up to date); 2 usage; 3 database error; 4 internal error.");
  add_migrate(app, inv, args);
  add_tenant(app, inv, args);
  add_user(app, inv, args);
  add_deliver(app, inv, args);
  add_maildrop(app, inv, args);
}

}  // namespace popgate::admin
