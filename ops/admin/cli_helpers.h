// Pieces shared by the files that declare popgate-admin's commands
// (cli.cc, cli_operations.cc). Internal to the command line.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>

#include "ops/admin/cli.h"
#include "ops/admin/users.h"

namespace popgate::admin {

inline std::optional<std::string> if_given(const CLI::Option* opt, const std::string& value) {
  return opt->count() > 0 ? std::optional<std::string>(value) : std::nullopt;
}

// `sub` runs `make()`'s handler when chosen; make() runs after parsing.
inline void on_chosen(CLI::App* sub, Invocation& inv, std::function<Handler()> make) {
  sub->callback([&inv, make = std::move(make)] { inv.handler = make(); });
}

struct PasswordOptions {
  CLI::Option* password;
  CLI::Option* hash;
};

// --password P | --password-stdin | --hash H, on `sub`.
PasswordOptions add_password_options(CLI::App* sub, CommandArgs& a);
PasswordSource password_source(const PasswordOptions& o, const CommandArgs& a);

// The commands of cli_operations.cc: import, who, kick, expire.
void add_operations(CLI::App& app, Invocation& inv, CommandArgs& a);

}  // namespace popgate::admin
