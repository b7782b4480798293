#include "ops/admin/cli.h"

#include <functional>
#include <optional>

#include "ops/admin/cli_helpers.h"
#include "ops/admin/deliver.h"
#include "ops/admin/maildrop.h"
#include "ops/admin/migrate.h"
#include "ops/admin/stats.h"
#include "ops/admin/tenant_certs.h"
#include "ops/admin/tenant_policy.h"
#include "ops/admin/tenants.h"
#include "ops/admin/user_state.h"
#include "ops/admin/users.h"

namespace popgate::admin {

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

namespace {

void add_migrate(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* sub = app.add_subcommand("migrate", "apply missing schema migrations");
  sub->add_flag("--check", a.check,
                "only report: exit 0 if up to date, 1 if behind or ahead of this build");
  on_chosen(sub, inv, [&a]() -> Handler {
    return [&a](Context& c) { return a.check ? migrate_check(c) : migrate(c); };
  });
}

// The options of `tenant set`; unset ones keep the database's value.
struct PolicyOptions {
  CLI::Option* delay;
  CLI::Option* expire;
  CLI::Option* tls;
  CLI::Option* sessions;
  CLI::Option* logins;
  CLI::Option* mechanisms;
  CLI::Option* delete_mode;
  CLI::Option* retention;
};

TenantPolicyArgs policy_args(const PolicyOptions& o, const CommandArgs& a) {
  return {if_given(o.delay, a.login_delay),        if_given(o.expire, a.expire_days),
          if_given(o.tls, a.require_tls),          if_given(o.sessions, a.sessions_max),
          if_given(o.logins, a.logins_per_minute), if_given(o.mechanisms, a.mechanisms),
          if_given(o.delete_mode, a.delete_mode), if_given(o.retention, a.retention_days)};
}

void add_tenant_set(CLI::App* tenant, Invocation& inv, CommandArgs& a) {
  auto* set = tenant->add_subcommand(
      "set", "change a tenant's login policy (read at every login; no restart needed)");
  set->add_option("domain", a.domain, "the tenant")->required();
  PolicyOptions o{};
  o.delay = set->add_option("--login-delay", a.login_delay,
                            "SECONDS: least time between two logins of a user (RFC 2449 "
                            "LOGIN-DELAY); 0 for none");
  o.expire = set->add_option("--expire-days", a.expire_days,
                             "N|never: days a retrieved message is kept (RFC 2449 EXPIRE; "
                             "enforced by 'popgate-admin expire')");
  o.tls = set->add_option("--require-tls", a.require_tls,
                          "yes|no: refuse this tenant's logins on unencrypted connections");
  o.sessions = set->add_option("--sessions-max", a.sessions_max,
                               "N|default: concurrent sessions of this tenant per instance");
  o.logins = set->add_option("--logins-per-minute", a.logins_per_minute,
                             "N|default: logins of this tenant per minute per instance");
  o.mechanisms = set->add_option(
      "--mechanisms", a.mechanisms,
      "\"NAME ...\"|all: the ways to log in this tenant allows, of USER PLAIN LOGIN "
      "SCRAM-SHA-256 OAUTHBEARER XOAUTH2 APOP (those the listener enables; all: every one)");
  o.delete_mode = set->add_option(
      "--delete-mode", a.delete_mode,
      "delete|hide: what DELE then QUIT does; hide keeps the messages (never listed again) "
      "until 'popgate-admin expire' removes them");
  o.retention = set->add_option(
      "--retention-days", a.retention_days,
      "N|never: days a message is kept after delivery, retrieved or not (enforced by "
      "'popgate-admin expire')");
  on_chosen(set, inv, [&a, o]() -> Handler {
    return [&a, args = policy_args(o, a)](Context& c) { return tenant_set(c, a.domain, args); };
  });
}

void add_tenant_cert(CLI::App* tenant, Invocation& inv, CommandArgs& a) {
  auto* cert = tenant->add_subcommand(
      "cert",
      "TLS certificates a tenant serves for its own names, chosen by SNI (the gateways pick "
      "up changes within tls.database_poll_ms). The database then holds private keys");
  cert->require_subcommand(1);
  auto* set = cert->add_subcommand(
      "set",
      "store (or replace) a certificate; refused unless its key matches and every name it "
      "serves is the tenant's domain or under it");
  set->add_option("domain", a.domain, "the tenant")->required();
  set->add_option("name", a.cert_name, "the certificate's name within the tenant, e.g. pop")
      ->required();
  set->add_option("--chain", a.chain_file,
                  "PEM file: the certificate, then its intermediates (and the private key, "
                  "unless --key)")
      ->required();
  auto* key = set->add_option("--key", a.key_file, "PEM file with the unencrypted private key");
  on_chosen(set, inv, [&a, key]() -> Handler {
    CertSetArgs args{a.domain, a.cert_name, a.chain_file, if_given(key, a.key_file)};
    return [args](Context& c) { return tenant_cert_set(c, args); };
  });
  auto* list = cert->add_subcommand(
      "list", "certificates with their names, key type and expiry (never the key)");
  auto* domain = list->add_option("domain", a.domain, "only this tenant");
  on_chosen(list, inv, [&a, domain]() -> Handler {
    return [d = if_given(domain, a.domain)](Context& c) { return tenant_cert_list(c, d); };
  });
  auto* del = cert->add_subcommand("del", "delete a certificate");
  del->add_option("domain", a.domain, "the tenant")->required();
  del->add_option("name", a.cert_name, "the certificate's name")->required();
  on_chosen(del, inv, [&a]() -> Handler {
    return [&a](Context& c) { return tenant_cert_del(c, a.domain, a.cert_name); };
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
  auto* del = tenant->add_subcommand("del", "delete a tenant (refused while it has users)");
  del->add_option("domain", a.domain, "the tenant")->required();
  del->add_flag("--force", a.force, "delete its users and all their messages too");
  on_chosen(del, inv, [&a]() -> Handler {
    return [&a](Context& c) { return tenant_del(c, a.domain, a.force); };
  });
  add_tenant_cert(tenant, inv, a);
  auto* stats = tenant->add_subcommand(
      "stats", "users, sessions online, messages, bytes, retrieved and hidden, per tenant");
  auto* domain = stats->add_option("domain", a.domain, "only this tenant");
  on_chosen(stats, inv, [&a, domain]() -> Handler {
    return [d = if_given(domain, a.domain)](Context& c) { return tenant_stats(c, d); };
  });
}

void add_user_add(CLI::App* user, Invocation& inv, CommandArgs& a) {
  auto* add = user->add_subcommand("add", "add a user (generates a password unless given)");
  add->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  const PasswordOptions password = add_password_options(add, a);
  auto* quota = add->add_option(
      "--quota", a.quota,
      "quota in bytes (deliveries and imports beyond it are refused; 'user quota' takes K/M/G)");
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

void add_user_state(CLI::App* user, Invocation& inv, CommandArgs& a) {
  auto* quota = user->add_subcommand("quota", "set or remove a user's quota");
  quota->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  quota
      ->add_option("bytes", a.quota,
                   "BYTES with an optional K, M, G or T suffix (1K = 1024), or 'none'")
      ->required();
  on_chosen(quota, inv, [&a]() -> Handler {
    return [&a](Context& c) { return user_quota(c, a.address, a.quota); };
  });
  auto* show =
      user->add_subcommand("show", "a user's quota, use, last login, credentials and session");
  show->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  on_chosen(show, inv,
            [&a]() -> Handler { return [&a](Context& c) { return user_show(c, a.address); }; });
  auto* enable = user->add_subcommand("enable", "let a user log in again");
  enable->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  on_chosen(enable, inv, [&a]() -> Handler {
    return [&a](Context& c) { return user_set_enabled(c, a.address, true, false); };
  });
  auto* disable = user->add_subcommand("disable", "refuse a user's logins (keeps its mail)");
  disable->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  disable->add_flag("--kick", a.kick, "also end its open session, if any");
  on_chosen(disable, inv, [&a]() -> Handler {
    return [&a](Context& c) { return user_set_enabled(c, a.address, false, a.kick); };
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
  add_user_state(user, inv, a);
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
  auto* stats = maildrop->add_subcommand(
      "stats", "a maildrop's messages, bytes, quota, retrieved, hidden and session");
  stats->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  on_chosen(stats, inv, [&a]() -> Handler {
    return [&a](Context& c) { return maildrop_stats(c, a.address); };
  });
}

}  // namespace

void build_cli(CLI::App& app, Invocation& inv) {
  CommandArgs& args = inv.args;
  app.add_option("--dsn", inv.dsn, "libpq connection string, e.g. 'host=... dbname=popgate'")
      ->envname("POPGATE_DATABASE_DSN");
  app.add_option("--config", inv.config_file,
                 "the gateway's TOML file: database.dsn, [database.clusters.*] and [database.tenants] "
                 "(per-tenant commands go to the tenant's cluster, the others to every cluster)")
      ->envname("POPGATE_CONFIG");
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok; 1 user error (unknown tenant, duplicate user, unreadable file, bad "
      "value, over quota; migrate --check: not up to date; kick --wait: still online); 2 usage; "
      "3 database error; 4 internal error.");
  add_migrate(app, inv, args);
  add_tenant(app, inv, args);
  add_user(app, inv, args);
  add_deliver(app, inv, args);
  add_maildrop(app, inv, args);
  add_operations(app, inv, args);
}

}  // namespace popgate::admin
