#include "ops/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "ops/build_info.h"
#include "server/lmtp/command.h"
#include "server/pop3/command.h"
#include "server/pop3/session.h"
#include "server/proxy/proxy_protocol.h"
#include "storage/pg_client.h"

namespace popgate::ops {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

constexpr double kMicrosecond = 1e-6;
constexpr double kKibibyte = 1024;

// A histogram summed over shards, still in the shards' units.
struct HistogramSum {
  std::vector<uint64_t> buckets;  // not cumulative; the last is +Inf
  uint64_t sum = 0;

  template <const auto& Bounds>
  void add(const pop3::FixedHistogram<Bounds>& h) {
    using H = pop3::FixedHistogram<Bounds>;
    if (buckets.empty()) buckets.assign(H::kBuckets, 0);
    for (size_t i = 0; i < H::kBuckets; ++i) buckets[i] += h.bucket(i);
    sum += h.sum();
  }
};

class Builder {
 public:
  MetricFamily& family(std::string name, std::string help, MetricType type) {
    families_.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
    return families_.back();
  }
  // One family with one unlabelled value.
  void single(std::string name, std::string help, MetricType type, double v) {
    value(family(std::move(name), std::move(help), type), {}, v);
  }
  static void value(MetricFamily& f, Labels labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter) {
      m.counter.value = v;
    } else {
      m.gauge.value = v;
    }
    f.metric.push_back(std::move(m));
  }
  // `bounds` in the histogram's units; `scale` converts them (and the sum)
  // to the exported unit.
  template <size_t N>
  static void histogram(MetricFamily& f, Labels labels, const std::array<uint64_t, N>& bounds,
                        const HistogramSum& h, double scale) {
    ClientMetric m;
    m.label = std::move(labels);
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= N; ++i) {
      cumulative += h.buckets.empty() ? 0 : h.buckets[i];
      const double bound = i < N ? static_cast<double>(bounds[i]) * scale
                                 : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back({cumulative, bound});
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(h.sum) * scale;
    f.metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> take() {
    return std::vector<MetricFamily>(std::make_move_iterator(families_.begin()),
                                     std::make_move_iterator(families_.end()));
  }

 private:
  std::deque<MetricFamily> families_;  // family() hands out references: must not move
};

// Sums one cluster's PostgreSQL figure over all shards.
double cluster_total(const MetricsSources& src, size_t cluster, pop3::Gauge shard::PgClusterCounters::*field) {
  double n = 0;
  for (const shard::Shard* s : src.shards) {
    const auto& clusters = s->counters().pg_clusters;
    if (cluster < clusters.size()) n += static_cast<double>((clusters[cluster].*field).value());
  }
  return n;
}

// The PostgreSQL clients' figures, by cluster when there are several (the
// label's values are bounded by the configuration).
void pg_clusters(Builder& b, const MetricsSources& src) {
  using K = shard::PgClusterCounters;
  const size_t n = std::max<size_t>(src.clusters.size(), 1);
  auto labels = [&src, n](size_t i, Labels more) {
    if (n > 1) more.push_back({"cluster", src.clusters[i]});
    return more;
  };
  const struct {
    const char* name;
    const char* help;
    MetricType type;
    pop3::Gauge K::*field;
  } plain[] = {
      {"popgate_pg_connections_up", "PostgreSQL connections established (all shards).", MetricType::Gauge,
       &K::connections_up},
      {"popgate_pg_requests_in_flight", "PostgreSQL requests sent and not yet answered.", MetricType::Gauge,
       &K::in_flight},
      {"popgate_pg_requests_queued", "PostgreSQL requests waiting for a connection.", MetricType::Gauge, &K::queued},
      {"popgate_pg_requests_total", "PostgreSQL requests submitted.", MetricType::Counter, &K::requests},
      {"popgate_pg_reconnects_total", "PostgreSQL connection attempts after a connection's first.",
       MetricType::Counter, &K::reconnects},
  };
  for (const auto& m : plain) {
    auto& f = b.family(m.name, m.help, m.type);
    for (size_t i = 0; i < n; ++i) Builder::value(f, labels(i, {}), cluster_total(src, i, m.field));
  }
  auto& err = b.family("popgate_pg_errors_total", "PostgreSQL failures, by class.", MetricType::Counter);
  const std::pair<const char*, pop3::Gauge K::*> classes[] = {
      {"temporary", &K::errors_temporary}, {"permanent", &K::errors_permanent},
      {"stuck_connection", &K::timeouts},  {"overloaded", &K::overloaded},
      {"deadline", &K::deadline_expired},  {"connect", &K::connect_failures}};
  for (size_t i = 0; i < n; ++i) {
    for (const auto& [name, member] : classes) {
      Builder::value(err, labels(i, {{"class", name}}), cluster_total(src, i, member));
    }
  }
}

// Sums one counter field over all shards.
template <typename Get>
double total(const MetricsSources& src, Get get) {
  double n = 0;
  for (const shard::Shard* s : src.shards) n += static_cast<double>(get(s->counters()));
  return n;
}

template <typename Get>
HistogramSum histogram_total(const MetricsSources& src, Get get) {
  HistogramSum h;
  for (const shard::Shard* s : src.shards) h.add(get(s->counters()));
  return h;
}

void connections(Builder& b, const MetricsSources& src) {
  auto& accepted = b.family("popgate_connections_accepted_total", "Connections accepted, by listener.",
                            MetricType::Counter);
  auto& rejected = b.family("popgate_connections_rejected_total",
                            "Connections closed at accept (connections_per_shard_max, or stopping), by listener.",
                            MetricType::Counter);
  auto& closed = b.family("popgate_connections_closed_total", "Connections closed, by listener.",
                          MetricType::Counter);
  auto& active = b.family("popgate_connections_active", "Open connections, by listener.", MetricType::Gauge);
  for (size_t i = 0; i < src.listeners.size(); ++i) {
    const Labels l{{"listener", src.listeners[i]}};
    Builder::value(accepted, l, total(src, [i](const auto& c) { return c.listeners[i].accepted.value(); }));
    Builder::value(rejected, l, total(src, [i](const auto& c) { return c.listeners[i].rejected.value(); }));
    Builder::value(closed, l, total(src, [i](const auto& c) { return c.listeners[i].closed.value(); }));
    Builder::value(active, l, total(src, [i](const auto& c) { return c.listeners[i].active.value(); }));
  }
  auto& states = b.family("popgate_connections",
                          "Open connections by what they are doing (sampled every 250 ms).", MetricType::Gauge);
  for (size_t i = 0; i < shard::kConnStates; ++i) {
    Builder::value(states, {{"state", std::string(shard::conn_state_name(static_cast<shard::ConnState>(i)))}},
                   total(src, [i](const auto& c) { return c.connections_by_state[i].value(); }));
  }
  auto& ends = b.family("popgate_sessions_ended_total", "Sessions ended, by how they ended.",
                        MetricType::Counter);
  for (size_t i = 1; i < pop3::kEndReasons; ++i) {  // 0 is "open": not an end
    Builder::value(ends, {{"reason", std::string(pop3::end_reason_name(static_cast<pop3::EndReason>(i)))}},
                   total(src, [i](const auto& c) { return c.session_ends[i].value(); }));
  }
  b.single("popgate_accept_errors_total", "accept() failures (descriptor or memory exhaustion pauses accepting).",
           MetricType::Counter, total(src, [](const auto& c) { return c.accept_errors.value(); }));
  b.single("popgate_bytes_received_total", "Bytes received from clients (ciphertext with TLS).",
           MetricType::Counter, total(src, [](const auto& c) { return c.bytes_received.value(); }));
  b.single("popgate_bytes_sent_total", "Bytes sent to clients (ciphertext with TLS).", MetricType::Counter,
           total(src, [](const auto& c) { return c.bytes_sent.value(); }));
}

void commands(Builder& b, const MetricsSources& src) {
  auto& f = b.family("popgate_commands_total", "POP3 commands, by command and result (ok or err).",
                     MetricType::Counter);
  for (size_t v = 0; v < pop3::kVerbCount; ++v) {
    const double all = total(src, [v](const auto& c) { return c.pop3.commands[v].value(); });
    const double err = total(src, [v](const auto& c) { return c.pop3.command_errors[v].value(); });
    const std::string name = v == 0 ? "unknown" : std::string(pop3::verb_name(static_cast<pop3::Verb>(v)));
    Builder::value(f, {{"command", name}, {"result", "ok"}}, all - err);
    Builder::value(f, {{"command", name}, {"result", "err"}}, err);
  }
  auto& d = b.family("popgate_command_duration_seconds",
                     "From the command to the last byte of its reply handed to the socket (listings and "
                     "bodies include the time the client takes to read them).",
                     MetricType::Histogram);
  const std::pair<const char*, pop3::DurationHistogram pop3::Counters::*> timed[] = {
      {"LIST", &pop3::Counters::list_seconds},
      {"UIDL", &pop3::Counters::uidl_seconds},
      {"RETR", &pop3::Counters::retr_seconds},
      {"TOP", &pop3::Counters::top_seconds}};
  for (const auto& [name, member] : timed) {
    Builder::histogram(d, {{"command", name}}, pop3::kDurationBoundsUs,
                       histogram_total(src, [m = member](const auto& c) -> const auto& { return c.pop3.*m; }),
                       kMicrosecond);
  }
  Builder::histogram(b.family("popgate_login_duration_seconds",
                              "From the first credential to +OK on the maildrop (lookup, password check, lock "
                              "and snapshot).",
                              MetricType::Histogram),
                     {}, pop3::kDurationBoundsUs,
                     histogram_total(src, [](const auto& c) -> const auto& { return c.pop3.login_seconds; }),
                     kMicrosecond);
  const std::pair<const char*, pop3::Counter pop3::Counters::*> data[] = {
      {"popgate_retr_messages_total", &pop3::Counters::retr_messages},
      {"popgate_retr_bytes_total", &pop3::Counters::retr_bytes},
      {"popgate_top_messages_total", &pop3::Counters::top_messages},
      {"popgate_dele_marked_total", &pop3::Counters::dele_marked},
      {"popgate_update_commits_total", &pop3::Counters::update_commits},
      {"popgate_update_messages_deleted_total", &pop3::Counters::update_messages_deleted},
      {"popgate_update_failures_total", &pop3::Counters::update_failures},
      {"popgate_stream_aborts_total", &pop3::Counters::stream_aborts},
      {"popgate_stls_total", &pop3::Counters::stls_started},
      {"popgate_utf8_enabled_total", &pop3::Counters::utf8_enabled},
      {"popgate_sessions_opened_total", &pop3::Counters::sessions_opened}};
  static constexpr const char* kHelp[] = {
      "Messages sent whole by RETR.",
      "Message octets sent by RETR, before byte-stuffing.",
      "TOP replies sent.",
      "Messages marked deleted by DELE.",
      "QUITs in TRANSACTION whose UPDATE committed.",
      "Messages removed (or hidden) by committed UPDATEs.",
      "QUITs whose UPDATE failed: nothing was deleted.",
      "RETR/TOP replies cut because the body could not be read: connection closed.",
      "STLS upgrades started.",
      "Sessions that enabled UTF8.",
      "POP3 sessions started (greeting sent)."};
  for (size_t i = 0; i < std::size(data); ++i) {
    const auto member = data[i].second;
    b.single(data[i].first, kHelp[i], MetricType::Counter,
             total(src, [member](const auto& c) { return (c.pop3.*member).value(); }));
  }
}

void auth(Builder& b, const MetricsSources& src) {
  auto& f = b.family("popgate_auth_total", "Login attempts, by mechanism and outcome.", MetricType::Counter);
  for (size_t m = 0; m < pop3::Counters::kMechanisms; ++m) {
    for (size_t o = 0; o < pop3::kAuthOutcomes; ++o) {
      Builder::value(f,
                     {{"mechanism", std::string(pop3::mechanism_name(pop3::mechanism_at(m)))},
                      {"outcome", std::string(pop3::auth_outcome_name(static_cast<pop3::AuthOutcome>(o)))}},
                     total(src, [m, o](const auto& c) { return c.pop3.auth[m][o].value(); }));
    }
  }
  b.single("popgate_maildrop_in_use_total", "Logins refused with [IN-USE]: the maildrop is locked elsewhere.",
           MetricType::Counter,
           total(src, [](const auto& c) { return c.pop3.auth_total(pop3::AuthOutcome::kInUse); }));
  b.single("popgate_verify_cache_hits_total", "Password checks answered from the verified-credential cache.",
           MetricType::Counter, total(src, [](const auto& c) { return c.verify_cache_hits.value(); }));
  b.single("popgate_bearer_failures_total", "OAuth bearer tokens refused.", MetricType::Counter,
           total(src, [](const auto& c) { return c.bearer_failures.value(); }));
  if (src.kdf_queued) {
    b.single("popgate_kdf_queue_depth", "Password hashes waiting for a KDF worker.", MetricType::Gauge,
             src.kdf_queued());
  }
}

void tls_and_proxy(Builder& b, const MetricsSources& src) {
  auto& hs = b.family("popgate_tls_handshakes_total", "Completed TLS handshakes, by protocol version.",
                      MetricType::Counter);
  Builder::value(hs, {{"version", "TLSv1.2"}}, total(src, [](const auto& c) { return c.tls_handshakes_tls12.value(); }));
  Builder::value(hs, {{"version", "TLSv1.3"}}, total(src, [](const auto& c) { return c.tls_handshakes_tls13.value(); }));
  b.single("popgate_tls_resumptions_total", "TLS handshakes that resumed a session (ticket).", MetricType::Counter,
           total(src, [](const auto& c) { return c.tls_resumed.value(); }));
  auto& fail = b.family("popgate_tls_failures_total", "TLS connections that failed, by reason.",
                        MetricType::Counter);
  Builder::value(fail, {{"reason", "error"}}, total(src, [](const auto& c) { return c.tls_failures.value(); }));
  Builder::value(fail, {{"reason", "handshake_timeout"}},
                 total(src, [](const auto& c) { return c.tls_handshake_timeouts.value(); }));
  auto& px = b.family("popgate_proxy_header_errors_total", "PROXY protocol headers refused, by error.",
                      MetricType::Counter);
  for (size_t e = 1; e < static_cast<size_t>(proxy::ProxyError::kCount); ++e) {
    Builder::value(px, {{"error", std::string(proxy::proxy_error_name(static_cast<proxy::ProxyError>(e)))}},
                   total(src, [e](const auto& c) { return c.proxy_errors[e].value(); }));
  }
  Builder::value(px, {{"error", "untrusted_peer"}}, total(src, [](const auto& c) { return c.proxy_untrusted.value(); }));
  Builder::value(px, {{"error", "timeout"}}, total(src, [](const auto& c) { return c.proxy_timeouts.value(); }));
  b.single("popgate_proxy_local_total", "PROXY v2 LOCAL connections (load-balancer health checks).",
           MetricType::Counter, total(src, [](const auto& c) { return c.proxy_local.value(); }));
  if (src.certificates) {
    auto& cert = b.family("popgate_tls_certificate_expiry_timestamp_seconds",
                          "notAfter of each TLS certificate in use, Unix time.", MetricType::Gauge);
    for (const auto& [file, not_after] : src.certificates()) {
      Builder::value(cert, {{"file", file}}, static_cast<double>(not_after));
    }
  }
}

void maildrops_and_storage(Builder& b, const MetricsSources& src) {
  Builder::histogram(b.family("popgate_maildrop_lock_wait_seconds",
                              "Maildrop opens: from the request to the lock being taken (queueing included).",
                              MetricType::Histogram),
                     {}, pop3::kDurationBoundsUs,
                     histogram_total(src, [](const auto& c) -> const auto& { return c.lock_wait_seconds; }),
                     kMicrosecond);
  Builder::histogram(b.family("popgate_maildrop_snapshot_seconds",
                              "Maildrop opens: from the lock to the snapshot (listing) in hand.",
                              MetricType::Histogram),
                     {}, pop3::kDurationBoundsUs,
                     histogram_total(src, [](const auto& c) -> const auto& { return c.snapshot_seconds; }),
                     kMicrosecond);
  Builder::histogram(b.family("popgate_maildrop_messages", "Messages in the maildrop at login.",
                              MetricType::Histogram),
                     {}, pop3::kMessageCountBounds,
                     histogram_total(src, [](const auto& c) -> const auto& { return c.pop3.maildrop_messages; }),
                     1);
  Builder::histogram(b.family("popgate_maildrop_bytes", "Maildrop size at login (KiB resolution).",
                              MetricType::Histogram),
                     {}, pop3::kMaildropKibBounds,
                     histogram_total(src, [](const auto& c) -> const auto& { return c.pop3.maildrop_kib; }),
                     kKibibyte);
  b.single("popgate_uidl_set_changed_total",
           "Logins where none of the UIDLs the previous session left was listed: clients re-download everything.",
           MetricType::Counter, total(src, [](const auto& c) { return c.uidl_set_changed.value(); }));
  auto& ahead = b.family("popgate_body_readahead_total",
                         "Read-ahead of small message bodies: statements started (batches), and messages "
                         "in them a session then asked for (hit) or that were dropped unused (wasted).",
                         MetricType::Counter);
  Builder::value(ahead, {{"result", "batch"}},
                 static_cast<double>(total(src, [](const auto& c) { return c.body_prefetches.value(); })));
  Builder::value(ahead, {{"result", "hit"}},
                 static_cast<double>(total(src, [](const auto& c) { return c.body_prefetch_hits.value(); })));
  Builder::value(ahead, {{"result", "wasted"}},
                 static_cast<double>(total(src, [](const auto& c) { return c.body_prefetch_wasted.value(); })));
  auto& lat = b.family("popgate_pg_request_duration_seconds",
                       "PostgreSQL requests, submit to completion (queueing included), by kind.",
                       MetricType::Histogram);
  for (size_t k = 0; k < storage::kRequestKinds; ++k) {
    Builder::histogram(lat, {{"kind", std::string(storage::to_string(static_cast<storage::RequestKind>(k)))}},
                       pop3::kDurationBoundsUs,
                       histogram_total(src, [k](const auto& c) -> const auto& { return c.pg_seconds[k]; }),
                       kMicrosecond);
  }
  pg_clusters(b, src);
  auto& locks = b.family("popgate_lock_operations_total", "Maildrop lock releases and lease renewals, by result.",
                         MetricType::Counter);
  Builder::value(locks, {{"operation", "release"}, {"result", "ok"}}, total(src, [](const auto& c) { return c.lock_releases.value(); }));
  Builder::value(locks, {{"operation", "release"}, {"result", "failed"}},
                 total(src, [](const auto& c) { return c.lock_release_failures.value(); }));
  Builder::value(locks, {{"operation", "renew"}, {"result", "ok"}}, total(src, [](const auto& c) { return c.lease_renewals.value(); }));
  Builder::value(locks, {{"operation", "renew"}, {"result", "failed"}},
                 total(src, [](const auto& c) { return c.lease_renewal_failures.value(); }));
}

void limits(Builder& b, const MetricsSources& src) {
  auto& f = b.family("popgate_limit_hits_total", "Times a limit was hit, by limit.", MetricType::Counter);
  auto add = [&](const char* name, auto get) { Builder::value(f, {{"limit", name}}, total(src, get)); };
  add("command_line_bytes", [](const auto& c) { return c.pop3.line_too_long.value(); });
  add("nul_in_line", [](const auto& c) { return c.pop3.nul_in_line.value(); });
  add("input_flood", [](const auto& c) { return c.pop3.input_flood.value(); });
  add("bad_commands", [](const auto& c) { return c.pop3.bad_command_limit.value(); });
  add("auth_failures_per_session", [](const auto& c) { return c.pop3.auth_failure_limit.value(); });
  add("login_idle_timeout", [](const auto& c) { return c.pop3.autologout_login.value(); });
  add("idle_timeout", [](const auto& c) { return c.pop3.autologout.value(); });
  add("connections_per_shard", [](const auto& c) { return c.connections_rejected.value(); });
  add("connections_per_address", [](const auto& c) { return c.limit_connections_per_address.value(); });
  add("sessions_per_user", [](const auto& c) { return c.limit_sessions_per_user.value(); });
  add("sessions_per_tenant", [](const auto& c) { return c.limit_sessions_per_tenant.value(); });
  add("logins_per_tenant_per_minute", [](const auto& c) { return c.limit_tenant_logins.value(); });
  add("failures_per_address", [](const auto& c) { return c.limit_address_cut_off.value(); });
  add("limit_table_full", [](const auto& c) { return c.limit_table_full.value(); });
  add("kdf_queue", [](const auto& c) { return c.kdf_rejected.value(); });
  add("recv_buffers", [](const auto& c) { return c.recv_no_buffers.value(); });
  add("linger_timeout", [](const auto& c) { return c.linger_timeouts.value(); });
  add("pg_queue", [](const auto& c) {
    int64_t n = 0;
    for (const auto& k : c.pg_clusters) n += k.overloaded.value();
    return n;
  });
  add("lmtp_command_line_bytes", [](const auto& c) { return c.lmtp.line_too_long.value(); });
  add("lmtp_input_flood", [](const auto& c) { return c.lmtp.input_flood.value(); });
  add("lmtp_bad_commands", [](const auto& c) { return c.lmtp.bad_command_limit.value(); });
  add("lmtp_idle_timeout", [](const auto& c) { return c.lmtp.idle_timeout.value(); });
  add("lmtp_data_idle_timeout", [](const auto& c) { return c.lmtp.data_idle_timeout.value(); });
  add("lmtp_recipients", [](const auto& c) { return c.lmtp.recipient_limit.value(); });
  add("lmtp_message_bytes", [](const auto& c) { return c.lmtp.size_declared_too_big.value() + c.lmtp.size_exceeded.value(); });
  add("lmtp_data_line_bytes", [](const auto& c) { return c.lmtp.data_line_too_long.value(); });
  add("lmtp_data_overrun", [](const auto& c) { return c.lmtp.data_overrun.value(); });
  add("lmtp_stalled", [](const auto& c) { return c.lmtp.stalled.value(); });
  b.single("popgate_bad_commands_total", "Commands refused as malformed or unknown.", MetricType::Counter,
           total(src, [](const auto& c) { return c.pop3.bad_commands.value(); }));
}

void lmtp_delivery(Builder& b, const MetricsSources& src) {
  b.single("popgate_lmtp_sessions_total", "LMTP connections greeted.", MetricType::Counter,
           total(src, [](const auto& c) { return c.lmtp.sessions_opened.value(); }));
  auto& cmd = b.family("popgate_lmtp_commands_total", "LMTP commands, by command and result (ok, or err: 4xx/5xx).",
                       MetricType::Counter);
  for (size_t v = 0; v < lmtp::kVerbCount; ++v) {
    const double all = total(src, [v](const auto& c) { return c.lmtp.commands[v].value(); });
    const double err = total(src, [v](const auto& c) { return c.lmtp.command_errors[v].value(); });
    const std::string name(lmtp::verb_name(static_cast<lmtp::Verb>(v)));
    Builder::value(cmd, {{"command", name}, {"result", "ok"}}, all - err);
    Builder::value(cmd, {{"command", name}, {"result", "err"}}, err);
  }
  auto& rcpt = b.family("popgate_lmtp_recipients_total", "RCPT answers, by result.", MetricType::Counter);
  Builder::value(rcpt, {{"result", "accepted"}}, total(src, [](const auto& c) { return c.lmtp.recipients_accepted.value(); }));
  Builder::value(rcpt, {{"result", "unknown"}}, total(src, [](const auto& c) { return c.lmtp.recipients_unknown.value(); }));
  Builder::value(rcpt, {{"result", "temporary"}}, total(src, [](const auto& c) { return c.lmtp.recipients_temporary.value(); }));
  auto& del = b.family("popgate_lmtp_deliveries_total", "Per-recipient answers after DATA, by result.",
                       MetricType::Counter);
  Builder::value(del, {{"result", "delivered"}}, total(src, [](const auto& c) { return c.lmtp.delivered.value(); }));
  Builder::value(del, {{"result", "over_quota"}}, total(src, [](const auto& c) { return c.lmtp.over_quota.value(); }));
  Builder::value(del, {{"result", "gone"}}, total(src, [](const auto& c) { return c.lmtp.recipient_gone.value(); }));
  Builder::value(del, {{"result", "temporary"}}, total(src, [](const auto& c) { return c.lmtp.delivery_temporary.value(); }));
  Builder::value(del, {{"result", "too_big"}}, total(src, [](const auto& c) { return c.lmtp.size_exceeded.value(); }));
  b.single("popgate_lmtp_delivered_bytes_total", "Octets stored by LMTP deliveries (per recipient).",
           MetricType::Counter, total(src, [](const auto& c) { return c.lmtp.delivered_bytes.value(); }));
  b.single("popgate_lmtp_messages_total", "Messages received whole over LMTP (within limits).", MetricType::Counter,
           total(src, [](const auto& c) { return c.lmtp.messages_received.value(); }));
}

void event_loops(Builder& b, const MetricsSources& src) {
  auto& wake = b.family("popgate_loop_wakeups_total", "Event-loop wakeups, by shard.", MetricType::Counter);
  auto& comp = b.family("popgate_loop_completions_total", "io_uring completions handled, by shard.",
                        MetricType::Counter);
  auto& per = b.family("popgate_loop_completions_per_wakeup", "Completions handled per wakeup, by shard.",
                       MetricType::Histogram);
  auto& batch = b.family("popgate_ring_submit_batch", "SQEs handed to the kernel per submit, by shard.",
                         MetricType::Histogram);
  auto& active = b.family("popgate_shard_connections_active", "Open connections, by shard.", MetricType::Gauge);
  for (const shard::Shard* s : src.shards) {
    const shard::ShardCounters& c = s->counters();
    const Labels l{{"shard", std::to_string(s->index())}};
    Builder::value(wake, l, static_cast<double>(c.loop_wakeups.value()));
    Builder::value(comp, l, static_cast<double>(c.loop_completions.value()));
    HistogramSum h;
    h.add(c.completions_per_wakeup);
    Builder::histogram(per, l, pop3::kBatchBounds, h, 1);
    HistogramSum sb;
    sb.add(c.submit_batch);
    Builder::histogram(batch, l, pop3::kBatchBounds, sb, 1);
    Builder::value(active, l, static_cast<double>(c.connections_active.load(std::memory_order_relaxed)));
  }
}

// Per-tenant series: summed by name over shards. The exporter admits names
// in the order it first sees them until `tenant_labels_max`; a name once
// admitted keeps its series, everything else is "other". Shards only ever
// add names, so no series moves into "other" later and every counter,
// "other" included, only goes up.
void tenants(Builder& b, const MetricsSources& src, std::set<std::string>& admitted) {
  struct Sums {
    double ok = 0, failed = 0, retr = 0, sent = 0, sessions = 0;
    void add(const Sums& x) {
      ok += x.ok;
      failed += x.failed;
      retr += x.retr;
      sent += x.sent;
      sessions += x.sessions;
    }
  };
  std::map<std::string, Sums> by_name;
  Sums other;
  for (const shard::Shard* s : src.shards) {
    const shard::TenantMetrics& t = s->tenant_metrics();
    for (uint32_t i = 0; i < t.slots(); ++i) {
      const shard::TenantSeries& ts = t.at(i);
      const std::string* name = ts.name.load(std::memory_order_acquire);
      Sums x;
      x.ok = static_cast<double>(ts.logins_ok.value());
      x.failed = static_cast<double>(ts.logins_failed.value());
      x.retr = static_cast<double>(ts.retr_bytes.value());
      x.sent = static_cast<double>(ts.bytes_sent.value());
      x.sessions = static_cast<double>(ts.sessions.value());
      if (name != nullptr && (admitted.count(*name) != 0 || admitted.size() < src.tenant_labels_max)) {
        admitted.insert(*name);
        by_name[*name].add(x);
      } else {
        other.add(x);
      }
    }
  }
  by_name["other"].add(other);
  auto& logins = b.family("popgate_tenant_logins_total",
                          "Logins by tenant (bounded: metrics.tenant_labels_max, then \"other\") and result.",
                          MetricType::Counter);
  auto& sessions = b.family("popgate_tenant_sessions", "Logged-in sessions by tenant.", MetricType::Gauge);
  auto& retr = b.family("popgate_tenant_retr_bytes_total",
                        "Message octets sent by RETR, by tenant (added when the session ends).",
                        MetricType::Counter);
  auto& sent = b.family("popgate_tenant_bytes_sent_total", "Bytes sent, by tenant (added when the session ends).",
                        MetricType::Counter);
  for (const auto& [name, x] : by_name) {
    Builder::value(logins, {{"tenant", name}, {"result", "ok"}}, x.ok);
    Builder::value(logins, {{"tenant", name}, {"result", "failed"}}, x.failed);
    Builder::value(sessions, {{"tenant", name}}, x.sessions);
    Builder::value(retr, {{"tenant", name}}, x.retr);
    Builder::value(sent, {{"tenant", name}}, x.sent);
  }
}

}  // namespace

BuildInfo build_info() {
  return BuildInfo{kBuildVersion, kBuildCommit, kBuildCompiler, kBuildType};
}

MetricsExporter::MetricsExporter(MetricsSources sources) : src_(std::move(sources)) {}

std::vector<MetricFamily> MetricsExporter::collect() {
  const MetricsSources& src = src_;
  Builder b;
  const BuildInfo info = build_info();
  Builder::value(b.family("popgate_build_info", "Version and build of this binary (always 1).", MetricType::Gauge),
                 {{"version", info.version}, {"commit", info.commit}, {"compiler", info.compiler},
                  {"build_type", info.build_type}},
                 1);
  b.single("popgate_start_time_seconds", "When this process started, Unix time.", MetricType::Gauge,
           static_cast<double>(src.start_time_s));
  b.single("popgate_shards", "Shard threads.", MetricType::Gauge, static_cast<double>(src.shards.size()));
  if (src.ready) b.single("popgate_ready", "1 when /healthz/ready answers 200.", MetricType::Gauge, src.ready() ? 1 : 0);
  if (src.draining) {
    b.single("popgate_draining", "1 after SIGTERM, while sessions finish.", MetricType::Gauge, src.draining() ? 1 : 0);
  }
  connections(b, src);
  commands(b, src);
  auth(b, src);
  tls_and_proxy(b, src);
  maildrops_and_storage(b, src);
  limits(b, src);
  lmtp_delivery(b, src);
  event_loops(b, src);
  {
    std::lock_guard lock(mu_);
    tenants(b, src, admitted_tenants_);
  }
  return b.take();
}

std::string MetricsExporter::render() {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, collect());
  return out.str();
}

}  // namespace popgate::ops
