#include "bench/load/report.h"

#include <cstdio>
#include <sstream>

namespace popgate::bench {
namespace {

// v with `decimals` digits after the point.
std::string fmt(int decimals, double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7F) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

double rate(uint64_t n, double s) { return s > 0 ? double(n) / s : 0; }
double us(uint64_t ns) { return double(ns) / 1000.0; }

std::string latency_json(const Histogram& h) {
  std::ostringstream o;
  o << "{\"count\":" << h.count() << ",\"p50\":" << fmt(1, us(h.quantile(0.5)))
    << ",\"p99\":" << fmt(1, us(h.quantile(0.99)))
    << ",\"p999\":" << fmt(1, us(h.quantile(0.999)))
    << ",\"max\":" << fmt(1, us(h.max())) << ",\"mean\":" << fmt(1, h.mean() / 1000.0)
    << "}";
  return o.str();
}

}  // namespace

std::string Report::text() const {
  const Options& o = *options;
  std::ostringstream t;
  t << "popgate-bench " << scenario_name(o.scenario) << " against " << o.target << " ("
    << o.host << ":" << (o.uses_tls() ? o.tls_port : o.port) << (o.uses_tls() ? ", TLS" : "")
    << (o.tls_resume ? ", resumption" : "") << "), group " << group_spec(o.group, o.dataset).name
    << ", " << o.threads << " threads, " << o.connections << " connections\n";
  t << "  window " << fmt(2, window_s) << " s (run " << fmt(2, run_s) << " s)\n";
  t << "  sessions   " << window.sessions << "  (" << fmt(1, rate(window.sessions, window_s))
    << "/s)\n";
  t << "  commands   " << window.commands << "  (" << fmt(1, rate(window.commands, window_s))
    << "/s)\n";
  if (window.message_octets > 0) {
    t << "  message data " << fmt(1, double(window.message_octets) / 1e6) << " MB  ("
      << fmt(1, double(window.message_octets) / 1e6 / window_s) << " MB/s)\n";
  }
  t << "  latency (ms)        p50       p99      p999       max     count\n";
  const auto row = [&](std::string_view name, const Histogram& h) {
    if (h.count() == 0) return;
    char b[160];
    std::snprintf(b, sizeof b, "    %-12s %9.3f %9.3f %9.3f %9.3f %9llu\n", std::string(name).c_str(),
                  double(h.quantile(0.5)) / 1e6, double(h.quantile(0.99)) / 1e6,
                  double(h.quantile(0.999)) / 1e6, double(h.max()) / 1e6,
                  static_cast<unsigned long long>(h.count()));
    t << b;
  };
  row("session", window.session);
  for (size_t i = 0; i < kCmdCount; ++i) row(cmd_name(Cmd(i)), window.latency[i]);
  t << "  verified   " << total.retr_verified << " RETR (length, octets, CRC), "
    << total.listings_verified << " LIST/UIDL listings, " << total.commands << " replies\n";
  if (total.tls_handshakes > 0) {
    t << "  tls        " << total.tls_handshakes << " handshakes, " << total.tls_resumed
      << " resumed\n";
  }
  t << "  errors     ";
  if (total.errors_total() == 0) {
    t << "none\n";
  } else {
    for (size_t i = 0; i < kErrorKindCount; ++i) {
      if (total.errors[i] > 0) t << error_kind_name(ErrorKind(i)) << "=" << total.errors[i] << " ";
    }
    t << "\n";
    for (const std::string& s : error_samples) t << "    e.g. " << s << "\n";
  }
  t << "  cpu (cores) generator " << fmt(2, window_s > 0 ? generator_cpu_s / window_s : 0);
  for (const WatchedCpu& c : cpu) {
    t << ", " << c.label << " " << (c.ok ? fmt(2, window_s > 0 ? c.seconds / window_s : 0) : "?");
  }
  t << "\n";
  for (const MemoryPoint& m : memory) {
    t << "  memory " << m.watched << " " << m.label;
    if (m.sessions > 0) t << " @" << m.sessions << " sessions";
    t << ": pss " << m.memory.pss_kib << " KiB, rss " << m.memory.rss_kib << " KiB ("
      << m.memory.processes << " processes)\n";
  }
  return t.str();
}

std::string Report::json() const {
  const Options& o = *options;
  std::ostringstream j;
  j << "{\"tool\":\"popgate-bench\",\"scenario\":" << json_string(scenario_name(o.scenario))
    << ",\"target\":" << json_string(o.target) << ",\"tls\":" << (o.uses_tls() ? "true" : "false")
    << ",\"tls_resume\":" << (o.tls_resume ? "true" : "false")
    << ",\"group\":" << json_string(group_spec(o.group, o.dataset).name)
    << ",\"dataset\":" << json_string(dataset_size_name(o.dataset))
    << ",\"once\":" << (o.once ? "true" : "false") << ",\"threads\":" << o.threads
    << ",\"connections\":" << o.connections << ",\"window_s\":" << fmt(3, window_s)
    << ",\"run_s\":" << fmt(3, run_s) << ",\"sessions\":" << window.sessions
    << ",\"sessions_per_s\":" << fmt(2, rate(window.sessions, window_s))
    << ",\"commands\":" << window.commands
    << ",\"commands_per_s\":" << fmt(2, rate(window.commands, window_s))
    << ",\"message_bytes\":" << window.message_octets
    << ",\"mb_per_s\":" << fmt(3, window_s > 0 ? double(window.message_octets) / 1e6 / window_s : 0)
    << ",\"latency_us\":{\"session\":" << latency_json(window.session);
  for (size_t i = 0; i < kCmdCount; ++i) {
    if (window.latency[i].count() == 0) continue;
    j << "," << json_string(cmd_name(Cmd(i))) << ":" << latency_json(window.latency[i]);
  }
  j << "},\"verified\":{\"retr\":" << total.retr_verified
    << ",\"listings\":" << total.listings_verified << ",\"replies\":" << total.commands
    << ",\"sessions\":" << total.sessions << "}";
  j << ",\"tls_stats\":{\"handshakes\":" << total.tls_handshakes
    << ",\"resumed\":" << total.tls_resumed << "}";
  j << ",\"errors\":{\"total\":" << total.errors_total();
  for (size_t i = 0; i < kErrorKindCount; ++i) {
    j << "," << json_string(error_kind_name(ErrorKind(i))) << ":" << total.errors[i];
  }
  j << ",\"samples\":[";
  for (size_t i = 0; i < error_samples.size(); ++i) {
    j << (i ? "," : "") << json_string(error_samples[i]);
  }
  j << "]},\"cpu_s\":{\"generator\":" << fmt(3, generator_cpu_s);
  for (const WatchedCpu& c : cpu) {
    j << "," << json_string(c.label) << ":" << (c.ok ? fmt(3, c.seconds) : "null");
  }
  j << "},\"memory\":[";
  for (size_t i = 0; i < memory.size(); ++i) {
    const MemoryPoint& m = memory[i];
    j << (i ? "," : "") << "{\"watched\":" << json_string(m.watched)
      << ",\"label\":" << json_string(m.label) << ",\"sessions\":" << m.sessions
      << ",\"pss_kib\":" << m.memory.pss_kib << ",\"rss_kib\":" << m.memory.rss_kib
      << ",\"processes\":" << m.memory.processes << "}";
  }
  j << "],\"sessions_held\":" << sessions_held << ",\"ok\":" << (ok() ? "true" : "false") << "}";
  return j.str();
}

}  // namespace popgate::bench
