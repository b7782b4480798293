// The popgate-admin command line (CLI11): every command, its options, and the
// handler it runs, declared in one place. Handlers share one signature.
#pragma once

#include <CLI/CLI.hpp>
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
};

// Filled in by parsing: the database and the chosen command's handler, which
// refers to `args`.
struct Invocation {
  std::string dsn;  // --dsn or POPGATE_DATABASE_DSN
  CommandArgs args;
  Handler handler;
};

// Declares everything on `app`; parsing fills `inv`. `inv` must outlive app.
void build_cli(CLI::App& app, Invocation& inv);

}  // namespace popgate::admin
