// The popgate-admin command line (CLI11): every command, its options, and the
// handler it runs, declared in one place. Handlers share one signature.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "ops/admin/context.h"

namespace popgate::admin {

using Handler = std::function<int(Context&)>;

// Values of the chosen command's arguments; only one command runs.
struct CommandArgs {
  bool check = false;
  std::string domain;
  std::string address;
  std::string password;
  bool password_stdin = false;
  std::string quota;
  std::string file = "-";
  std::string uidl;
  std::string hash;
  std::string secret;
  bool secret_stdin = false;
  bool clear = false;
  std::string login_delay;
  std::string expire_days;
  std::string require_tls;
  std::string sessions_max;
  std::string logins_per_minute;
  std::string mechanisms;
  std::string delete_mode;
  std::string retention_days;
  // tenant cert
  std::string cert_name;
  std::string chain_file;
  std::string key_file;
  bool force = false;
  bool kick = false;
  int wait_s = 0;
  // import
  std::string maildir;
  std::string mbox;
  std::string eml_dir;
  std::string uidl_format;
  std::string uidl_map;
  std::string mbox_variant = "mboxrd";
  bool create_user = false;
  bool ignore_quota = false;
  uint64_t batch = 0;           // 0: the command's default
  uint64_t progress_every = 0;  // 0: the command's default
  // expire
  bool dry_run = false;
};

// Filled in by parsing: the database and the chosen command's handler, which
// refers to `args`.
struct Invocation {
  std::string dsn;  // --dsn or POPGATE_DATABASE_DSN
  // --config or POPGATE_CONFIG: the gateway's TOML, for its clusters and
  // tenant map (and database.dsn unless --dsn is given).
  std::string config_file;
  CommandArgs args;
  Handler handler;
};

// Declares everything on `app`; parsing fills `inv`. `inv` must outlive app.
void build_cli(CLI::App& app, Invocation& inv);

}  // namespace popgate::admin
