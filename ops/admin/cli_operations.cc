// The operations commands: import, who, kick, expire.
#include <optional>

#include "ops/admin/cli_helpers.h"
#include "ops/admin/expire.h"
#include "ops/admin/import.h"
#include "ops/admin/sessions.h"

namespace popgate::admin {
namespace {

struct ImportOptions {
  CLI::Option* maildir;
  CLI::Option* mbox;
  CLI::Option* eml_dir;
  CLI::Option* uidl_format;
  CLI::Option* uidl_map;
  PasswordOptions password;
};

ImportArgs import_args(const ImportOptions& o, const CommandArgs& a) {
  const int sources = int(o.maildir->count() + o.mbox->count() + o.eml_dir->count());
  if (sources != 1) throw CLI::RequiredError("exactly one of --maildir, --mbox, --eml-dir");
  ImportArgs args;
  args.address = a.address;
  if (o.maildir->count() > 0) {
    args.format = ImportFormat::kMaildir;
    args.path = a.maildir;
  } else if (o.mbox->count() > 0) {
    args.format = ImportFormat::kMbox;
    args.path = a.mbox;
  } else {
    args.format = ImportFormat::kEmlDir;
    args.path = a.eml_dir;
  }
  if (o.uidl_format->count() > 0) args.uidl_format = a.uidl_format;
  args.uidl_map_path = if_given(o.uidl_map, a.uidl_map);
  args.mbox_variant = a.mbox_variant == "mboxo" ? MboxVariant::kMboxo : MboxVariant::kMboxrd;
  args.create_user = a.create_user;
  args.password = password_source(o.password, a);
  args.ignore_quota = a.ignore_quota;
  if (a.batch != 0) args.batch_messages = a.batch;
  if (a.progress_every != 0) args.progress_every = a.progress_every;
  return args;
}

void add_import(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* sub = app.add_subcommand(
      "import",
      "move a mailbox (Dovecot Maildir, mbox, or .eml files) into a maildrop, keeping the "
      "UIDLs the old server served; run it again to resume: what is there is skipped");
  sub->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  ImportOptions o{};
  o.maildir = sub->add_option("--maildir", a.maildir,
                              "a Maildir (cur/, new/, dovecot-uidlist), in Dovecot's POP3 order");
  o.mbox = sub->add_option("--mbox", a.mbox, "an mbox file; UIDLs from X-UIDL headers");
  o.eml_dir = sub->add_option("--eml-dir", a.eml_dir,
                              "a directory with one message a file, imported by file name; "
                              "UIDLs from X-UIDL headers");
  o.maildir->excludes(o.mbox)->excludes(o.eml_dir);
  o.mbox->excludes(o.eml_dir);
  o.uidl_format = sub->add_option("--uidl-format", a.uidl_format,
                                  "Dovecot's pop3_uidl_format on the old server (default "
                                  "%08Xu%08Xv; variables %u %v %f %m)")
                      ->needs(o.maildir);
  o.uidl_map = sub->add_option("--uidl-map", a.uidl_map,
                               "FILE of 'KEY<TAB>UIDL' lines (KEY: file name or message "
                               "number from 1); overrides every other UIDL");
  sub->add_option("--mbox-variant", a.mbox_variant,
                  "mboxrd (default: '>From ' lines lose one '>') or mboxo (only '>From ')")
      ->check(CLI::IsMember({"mboxrd", "mboxo"}))
      ->needs(o.mbox);
  auto* create = sub->add_flag("--create-user", a.create_user,
                               "create the user if missing (password generated unless given)");
  o.password = add_password_options(sub, a);
  o.password.password->needs(create);
  o.password.hash->needs(create);
  sub->add_flag("--ignore-quota", a.ignore_quota, "store everything whatever the user's quota");
  sub->add_option("--batch", a.batch, "messages per transaction (default 500; also 64 MiB)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--progress-every", a.progress_every,
                  "a progress line on stderr every N messages (default 1000) and every 5 s")
      ->check(CLI::PositiveNumber);
  on_chosen(sub, inv, [&a, o]() -> Handler {
    if (a.password_stdin && !a.create_user) {
      throw CLI::ValidationError("--password-stdin", "needs --create-user");
    }
    ImportArgs args = import_args(o, a);
    return [args](Context& c) { return import_mailbox(c, args); };
  });
}

void add_sessions(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* who_cmd = app.add_subcommand("who", "sessions online on every instance");
  auto* domain = who_cmd->add_option("domain", a.domain, "only this tenant");
  on_chosen(who_cmd, inv, [&a, domain]() -> Handler {
    return [d = if_given(domain, a.domain)](Context& c) { return who(c, d); };
  });
  auto* kick_cmd = app.add_subcommand(
      "kick", "end a user's session: its instance ends it (no UPDATE) at its next lease renewal");
  kick_cmd->add_option("address", a.address, "LOCAL@DOMAIN")->required();
  auto* wait =
      kick_cmd
          ->add_option("--wait", a.wait_s, "SECONDS to wait for the session to end (exit 1 if not)")
          ->check(CLI::NonNegativeNumber);
  on_chosen(kick_cmd, inv, [&a, wait]() -> Handler {
    const std::optional<int> wait_s = wait->count() > 0 ? std::optional(a.wait_s) : std::nullopt;
    return [&a, wait_s](Context& c) { return kick(c, a.address, wait_s); };
  });
}

void add_expire(CLI::App& app, Invocation& inv, CommandArgs& a) {
  auto* sub = app.add_subcommand(
      "expire",
      "delete messages retrieved more than the tenant's expire-days ago, and messages "
      "delivered more than its retention-days ago (cron-safe; never touches a maildrop in "
      "use)");
  auto* domain = sub->add_option("domain", a.domain, "only this tenant");
  sub->add_flag("--dry-run", a.dry_run, "only count what would be deleted");
  sub->add_option("--batch", a.batch, "messages deleted per transaction (default 1000)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--progress-every", a.progress_every,
                  "a progress line on stderr every N messages (default 10000) and every 5 s")
      ->check(CLI::PositiveNumber);
  on_chosen(sub, inv, [&a, domain]() -> Handler {
    ExpireArgs args;
    args.domain = if_given(domain, a.domain);
    args.dry_run = a.dry_run;
    if (a.batch != 0) args.batch = a.batch;
    if (a.progress_every != 0) args.progress_every = a.progress_every;
    return [args](Context& c) { return expire(c, args); };
  });
}

}  // namespace

void add_operations(CLI::App& app, Invocation& inv, CommandArgs& a) {
  add_import(app, inv, a);
  add_sessions(app, inv, a);
  add_expire(app, inv, a);
}

}  // namespace popgate::admin
