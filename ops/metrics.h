// Metrics export: at scrape time, reads every shard's single-writer
// counters (relaxed loads; no lock a shard ever takes) and the process-wide
// figures, sums them, and renders Prometheus families.
//
// Cardinality is bounded by construction: labels are listeners, commands,
// mechanisms, outcomes, states, request kinds and shards — all fixed at
// startup — plus tenants, at most `tenant_labels_max` of them and an "other"
// series. Never a user.
//
// Must not know: HTTP (status_server does that), configuration files.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "server/shard/shard.h"

namespace popgate::ops {

struct BuildInfo {
  std::string version;
  std::string commit;
  std::string compiler;
  std::string build_type;
};
[[nodiscard]] BuildInfo build_info();

struct MetricsSources {
  std::vector<const shard::Shard*> shards;  // outlive the exporter
  std::vector<std::string> listeners;       // names, by listener index
  uint32_t tenant_labels_max = 100;         // across the process
  int64_t start_time_s = 0;                 // Unix time the process started
  // PostgreSQL cluster names, by index ("default" first). With more than
  // one, the popgate_pg_* series (but the latency histogram) carry a
  // `cluster` label; with one they stay unlabelled.
  std::vector<std::string> clusters{"default"};
  // Optional: figures owned by main.
  std::function<uint32_t()> kdf_queued;
  std::function<bool()> draining;
  std::function<bool()> ready;
  // TLS certificates in use: (file, not_after Unix seconds).
  std::function<std::vector<std::pair<std::string, int64_t>>()> certificates;
};

// Thread-safe: scrapes may come from several HTTP threads at once.
class MetricsExporter {
 public:
  explicit MetricsExporter(MetricsSources sources);
  [[nodiscard]] std::vector<prometheus::MetricFamily> collect();
  // Text exposition format 0.0.4.
  [[nodiscard]] std::string render();

 private:
  const MetricsSources src_;
  std::mutex mu_;  // guards admitted_tenants_; never taken by a shard
  std::set<std::string> admitted_tenants_;
};

}  // namespace popgate::ops
