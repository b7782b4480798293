#include "ops/admin/cli.h"

#include <functional>
#include <optional>

#include "ops/admin/deliver.h"
#include "ops/admin/maildrop.h"
#include "ops/admin/migrate.h"
#include "ops/admin/tenant_policy.h"
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

struct PasswordOptions {
  CLI::Option* password;
  CLI::Option* hash;
};

// --password P | --password-stdin | --hash H, on `sub`.
PasswordOptions add_password_options(CLI::App* sub, CommandArgs& a) {
  auto* given = sub->add_option("--password", a.password,
                                "the password (visible in ps; prefer --password-stdin)");
  auto* from_stdin = sub->add_flag("--password-stdin", a.password_stdin,
                                   "read the password from the first line of stdin");
  auto* hash = sub->add_option(
      "--hash", a.hash,
      "import a Dovecot password hash as is, e.g. '{SHA512-CRYPT}$6$...' (see "
      "'doveadm pw -l'; refused if popgate cannot verify it). Unless the hash is itself "
      "{SCRAM-SHA-256}, the user has no SCRAM-SHA-256 credential: SCRAM-SHA-256 logins fail "
      "until the password is set again with --password or --password-stdin");
  given->excludes(from_stdin);
  hash->excludes(given);
  hash->excludes(from_stdin);
  return {given, hash};
}

PasswordSource password_source(const PasswordOptions& o, const CommandArgs& a) {
  return {if_given(o.password, a.password), a.password_stdin, if_given(o.hash, a.hash)};
}

void add_migrate(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* sub = app.add_subcommand("migrate", "apply missing schema migrations");
  sub->add_flag("--check", a.check,
                "only report: exit 0 if up to date, 1 if behind or ahead of this build");
  on_chosen(sub, inv, [&a]() -> Handler {
    return [&a](Context& c) { return a.check ? migrate_check(c) : migrate(c); };
  });
}

void add_tenant_set(CLI::App* tenant, Invocation& inv, CommandArgs& a) {
  auto* set = tenant->add_subcommand(
      "set", "change a tenant's login policy (read at every login; no restart needed)");
  set->add_option("domain", a.domain, "the tenant")->required();
  auto* delay = set->add_option("--login-delay", a.login_delay,
                                "SECONDS: least time between two logins of a user (RFC 2449 "
                                "LOGIN-DELAY); 0 for none");
  auto* expire = set->add_option(
      "--expire-days", a.expire_days,
      "N|never: days a retrieved message may be kept (RFC 2449 EXPIRE; advertised only)");
  auto* tls = set->add_option("--require-tls", a.require_tls,
                              "yes|no: refuse this tenant's logins on unencrypted connections");
  auto* sessions = set->add_option("--sessions-max", a.sessions_max,
                                   "N|default: concurrent sessions of this tenant per instance");
  auto* logins = set->add_option("--logins-per-minute", a.logins_per_minute,
                                 "N|default: logins of this tenant per minute per instance");
  auto* mechanisms = set->add_option(
      "--mechanisms", a.mechanisms,
      "\"NAME ...\"|all: the ways to log in this tenant allows, of USER PLAIN LOGIN "
      "SCRAM-SHA-256 OAUTHBEARER XOAUTH2 APOP (those the listener enables; all: every one)");
  on_chosen(set, inv, [&a, delay, expire, tls, sessions, logins, mechanisms]() -> Handler {
    TenantPolicyArgs args{
        if_given(delay, a.login_delay),        if_given(expire, a.expire_days),
        if_given(tls, a.require_tls),          if_given(sessions, a.sessions_max),
        if_given(logins, a.logins_per_minute), if_given(mechanisms, a.mechanisms)};
    return [&a, args](Context& c) { return tenant_set(c, a.domain, args); };
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
  add_tenant_set(tenant, inv, a);
  auto* show = tenant->add_subcommand("show", "print a tenant's login policy");
  show->add_option("domain", a.domain, "the tenant")->required();
  on_chosen(show, inv,
            [&a]() -> Handler { return [&a](Context& c) { return tenant_show(c, a.domain); }; });
}

void add_user_add(CLI::App* user, Invocation& inv, CommandArgs& a) {
  auto* add = user->add_subcommand("add", "add a user (generates a password unless given)");
  add->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  const PasswordOptions password = add_password_options(add, a);
  auto* quota = add->add_option("--quota", a.quota, "quota in bytes (stored; not enforced)");
  on_chosen(add, inv, [&a, password, quota]() -> Handler {
    PasswordSource source = password_source(password, a);
    return [&a, source, q = if_given(quota, a.quota)](Context& c) {
      return user_add(c, a.address, source, q);
    };
  });
}

void add_user_apop(CLI::App* user, Invocation& inv, CommandArgs& a) {
  auto* apop = user->add_subcommand(
      "apop",
      "set or clear a user's APOP secret. APOP (RFC 1939) needs the secret itself on the "
      "server: it is stored in plain text and is as good as a password to anyone who reads "
      "the database. Use a secret different from the login password");
  apop->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  auto* given =
      apop->add_option("--secret", a.secret, "the secret (visible in ps; prefer --secret-stdin)");
  auto* from_stdin = apop->add_flag("--secret-stdin", a.secret_stdin,
                                    "read the secret from the first line of stdin");
  auto* clear = apop->add_flag("--clear", a.clear, "remove the secret: no APOP for this user");
  given->excludes(from_stdin);
  given->excludes(clear);
  from_stdin->excludes(clear);
  on_chosen(apop, inv, [&a, given]() -> Handler {
    if (given->count() == 0 && !a.secret_stdin && !a.clear) {
      throw CLI::RequiredError("one of --secret, --secret-stdin, --clear");
    }
    ApopSecretSource source{if_given(given, a.secret), a.secret_stdin, a.clear};
    return [&a, source](Context& c) { return user_apop(c, a.address, source); };
  });
}

void add_user(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* user = app.add_subcommand("user", "manage users (mailboxes)");
  user->require_subcommand(1);
  add_user_add(user, inv, a);
  auto* passwd = user->add_subcommand("passwd", "set a user's password");
  passwd->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  const PasswordOptions password = add_password_options(passwd, a);
  on_chosen(passwd, inv, [&a, password]() -> Handler {
    PasswordSource source = password_source(password, a);
    return [&a, source](Context& c) { return user_passwd(c, a.address, source); };
  });
  auto* del = user->add_subcommand("del", "delete a user and all of its messages");
  del->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  on_chosen(del, inv,
            [&a]() -> Handler { return [&a](Context& c) { return user_del(c, a.address); }; });
  add_user_apop(user, inv, a);
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
