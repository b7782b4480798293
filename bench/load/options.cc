#include "bench/load/options.h"

#include <algorithm>
#include <arpa/inet.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>

namespace popgate::bench {
namespace {

const std::map<std::string, Scenario> kScenarios = {
    {"login", Scenario::kLogin},        {"login_tls", Scenario::kLoginTls},
    {"poll", Scenario::kPoll},          {"list", Scenario::kList},
    {"retr_small", Scenario::kRetrSmall}, {"retr_big", Scenario::kRetrBig},
    {"idle", Scenario::kIdle},
};

// Defaults per scenario: enough sessions in flight to keep both cores of
// the server busy, never more than the group has users (maildrop locks).
struct Defaults {
  Group group;
  uint32_t connections;
};
Defaults defaults_for(Scenario s) {
  switch (s) {
    case Scenario::kLogin: return {Group::kPoll, 64};
    case Scenario::kLoginTls: return {Group::kPoll, 64};
    case Scenario::kPoll: return {Group::kPoll, 64};
    case Scenario::kList: return {Group::kList, 4};
    case Scenario::kRetrSmall: return {Group::kSmall, 32};
    case Scenario::kRetrBig: return {Group::kBig, 8};
    case Scenario::kIdle: return {Group::kIdle, 0};
  }
  return {Group::kPoll, 64};
}

// "127.0.0.1-8" (last octet range) or a single address.
std::vector<in_addr> parse_addrs(const std::vector<std::string>& specs) {
  std::vector<in_addr> out;
  for (const std::string& spec : specs) {
    const size_t dash = spec.find('-');
    const std::string first = spec.substr(0, dash);
    in_addr a{};
    if (::inet_pton(AF_INET, first.c_str(), &a) != 1) {
      throw CLI::ValidationError("--source-addrs", "not an IPv4 address: " + first);
    }
    if (dash == std::string::npos) {
      out.push_back(a);
      continue;
    }
    const uint32_t base = ntohl(a.s_addr);
    const auto last = uint32_t(std::stoul(spec.substr(dash + 1)));
    if (last < (base & 0xFFU) || last > 254) {
      throw CLI::ValidationError("--source-addrs", "bad range: " + spec);
    }
    for (uint32_t o = base & 0xFFU; o <= last; ++o) {
      in_addr x{};
      x.s_addr = htonl((base & ~0xFFU) | o);
      out.push_back(x);
    }
  }
  return out;
}

}  // namespace

std::string_view scenario_name(Scenario s) noexcept {
  switch (s) {
    case Scenario::kLogin: return "login";
    case Scenario::kLoginTls: return "login_tls";
    case Scenario::kPoll: return "poll";
    case Scenario::kList: return "list";
    case Scenario::kRetrSmall: return "retr_small";
    case Scenario::kRetrBig: return "retr_big";
    case Scenario::kIdle: return "idle";
  }
  return "?";
}

Options parse_options(int argc, char** argv) {
  Options o;
  CLI::App app{"popgate-bench: POP3 load generator that verifies every reply"};
  std::string scenario = "login";
  std::string dataset = "full";
  std::string group;
  std::string idle_steps;
  std::vector<std::string> addrs;
  std::vector<std::string> watch;
  app.add_option("--scenario", scenario, "login login_tls poll list retr_small retr_big idle")
      ->check(CLI::IsMember([] {
        std::vector<std::string> names;
        for (const auto& [name, value] : kScenarios) names.push_back(name);
        return names;
      }()));
  app.add_option("--target", o.target, "label for the report (popgate, dovecot, ref)");
  app.add_option("--host", o.host, "server address (IPv4)");
  app.add_option("--port", o.port, "plain POP3 port");
  app.add_option("--tls-port", o.tls_port, "implicit-TLS POP3 port");
  app.add_flag("--tls", o.tls, "use implicit TLS (login_tls and poll always do)");
  app.add_flag("--tls-resume", o.tls_resume, "resume TLS sessions (tickets) across a connection's sessions");
  app.add_option("--tls-server-name", o.tls_server_name, "SNI to send");
  app.add_option("--dataset", dataset, "full, quick or smoke (bench/common/dataset.h)");
  app.add_option("--group", group, "user group (default: the scenario's; retr_big: big or huge)");
  app.add_option("--users", o.users_max, "use at most this many users of the group");
  app.add_option("--first-user", o.first_user,
                 "start at this user of the group (several generator processes on disjoint maildrops)");
  app.add_option("--password", o.password, "every bench user's password");
  app.add_option("--threads", o.threads, "generator threads (default: online CPUs)");
  app.add_option("--connections", o.connections, "sessions in flight (default per scenario)");
  app.add_option("--duration-s", o.duration_s, "measuring window")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--max-sessions", o.max_sessions, "end the window after this many sessions");
  app.add_option("--command-timeout-ms", o.command_timeout_ms, "a reply must complete within this");
  app.add_option("--connect-timeout-ms", o.connect_timeout_ms, "connect + TLS handshake bound");
  app.add_flag("--once", o.once, "list: LIST and UIDL once per session, then hold; report memory");
  app.add_flag("--list-only", o.list_only, "list: repeat LIST alone (default: LIST, UIDL, LIST, ...)");
  app.add_option("--idle-steps", idle_steps, "idle: session counts, e.g. 1000,10000,50000");
  app.add_option("--idle-noop", o.idle_noop, "idle: NOOP every session before QUIT (default true)");
  app.add_option("--idle-hold-s", o.idle_hold_s,
                 "idle: hold the last step's sessions this long before NOOP and QUIT (several "
                 "generators holding at once)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--stall-after-bytes", o.stall_after_bytes, "retr: stop reading each RETR after this much");
  app.add_option("--stall-ms", o.stall_ms, "retr: how long to stop reading");
  app.add_option("--source-addrs", addrs, "source addresses, e.g. 127.0.0.1-16 (past the ephemeral port limit)");
  app.add_option("--watch", watch, "LABEL=PID: report CPU and memory of that process tree (repeatable)");
  app.add_option("--server-pid", [&](const std::vector<std::string>& v) {
    for (const auto& s : v) watch.push_back("server=" + s);
    return true;
  }, "shorthand for --watch server=PID");
  app.add_flag("--sample-memory", o.sample_memory, "track the watched trees' peak memory during the window");
  app.add_option("--json", o.json_path, "also write the JSON line to this file");
  app.add_flag("--quiet", o.quiet, "print only the JSON line");
  try {
    app.parse(argc, argv);
    o.scenario = kScenarios.at(scenario);
    const auto size = dataset_size_from_name(dataset);
    if (!size) throw CLI::ValidationError("--dataset", "full, quick or smoke");
    o.dataset = *size;
    const Defaults d = defaults_for(o.scenario);
    o.group = d.group;
    if (!group.empty()) {
      const auto g = group_from_name(group);
      if (!g) throw CLI::ValidationError("--group", "unknown group " + group);
      o.group = *g;
    }
    if (o.connections == 0) o.connections = d.connections;
    if (!idle_steps.empty()) {
      std::stringstream in(idle_steps);
      std::string item;
      while (std::getline(in, item, ',')) o.idle_steps.push_back(uint32_t(std::stoul(item)));
    }
    if (o.scenario == Scenario::kIdle && o.idle_steps.empty()) o.idle_steps = {1000};
    if (o.scenario == Scenario::kIdle) o.connections = o.idle_steps.back();
    o.source_addrs = parse_addrs(addrs);
    for (const std::string& w : watch) {
      const size_t eq = w.find('=');
      if (eq == std::string::npos) throw CLI::ValidationError("--watch", "LABEL=PID");
      o.watch.emplace_back(w.substr(0, eq), pid_t(std::stol(w.substr(eq + 1))));
    }
    if (o.threads == 0) o.threads = uint32_t(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  } catch (const std::exception& e) {
    std::cerr << "popgate-bench: " << e.what() << "\n";
    std::exit(2);
  }
  return o;
}

uint32_t usable_users(const Options& o) noexcept {
  const uint32_t group = group_spec(o.group, o.dataset).users;
  const uint32_t available = group > o.first_user ? group - o.first_user : 0;
  return o.users_max == 0 ? available : std::min(o.users_max, available);
}

}  // namespace popgate::bench
