// StatusServer: the operator's HTTP port (CivetWeb, its own threads; never
// a shard thread):
//   GET /metrics        Prometheus text format
//   GET /healthz/live   200 while the process serves its HTTP port at all
//   GET /healthz/ready  200 when ready() says so, else 503 with the reason
//   GET /log/level      the current log level
//   PUT /log/level      body "debug" | "info" | "warn" | "error": sets it
//                       (only when log_level_endpoint is on)
//
// Bind it to an internal address: it has no authentication.
//
// Must not know: shards, PostgreSQL, signals. Everything comes in as hooks.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace popgate::ops {

struct StatusHooks {
  std::function<std::string()> metrics;
  // Empty string: ready. Otherwise the reason it is not.
  std::function<std::string()> not_ready_reason;
  bool log_level_endpoint = true;
};

class StatusServer {
 public:
  // `address` is "host:port" (numeric host; port 0 picks one). nullptr and
  // *error set when it cannot listen.
  static std::unique_ptr<StatusServer> start(const std::string& address, StatusHooks hooks,
                                             std::string* error);
  ~StatusServer();  // stops the HTTP threads
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // "host:port" actually bound.
  [[nodiscard]] const std::string& bound_address() const noexcept { return bound_; }

 private:
  struct Impl;
  explicit StatusServer(std::unique_ptr<Impl> impl, std::string bound);
  std::unique_ptr<Impl> impl_;
  std::string bound_;
};

}  // namespace popgate::ops
