#include "ops/status_server.h"

#include <CivetServer.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "server/base/log.h"

namespace popgate::ops {
namespace {

// CivetWeb worker threads: scrapes and probes are rare and short.
constexpr const char* kHttpThreads = "4";
// A client that sends nothing for this long is dropped.
constexpr const char* kRequestTimeoutMs = "10000";
// PUT /log/level bodies are one word.
constexpr long long kLogLevelBodyBytesMax = 32;

void respond(mg_connection* conn, int status, std::string_view content_type, std::string_view body) {
  const char* reason = status == 200 ? "OK" : status == 503 ? "Service Unavailable" : status == 400 ? "Bad Request"
                                          : status == 403 ? "Forbidden" : "Error";
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            status, reason, static_cast<int>(content_type.size()), content_type.data(), body.size());
  mg_write(conn, body.data(), body.size());
}

class MetricsHandler : public CivetHandler {
 public:
  explicit MetricsHandler(const StatusHooks& hooks) : hooks_(hooks) {}
  bool handleGet(CivetServer*, mg_connection* conn) override {
    respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", hooks_.metrics ? hooks_.metrics() : "");
    return true;
  }

 private:
  const StatusHooks& hooks_;
};

class LiveHandler : public CivetHandler {
 public:
  bool handleGet(CivetServer*, mg_connection* conn) override {
    respond(conn, 200, "text/plain", "live\n");
    return true;
  }
};

class ReadyHandler : public CivetHandler {
 public:
  explicit ReadyHandler(const StatusHooks& hooks) : hooks_(hooks) {}
  bool handleGet(CivetServer*, mg_connection* conn) override {
    const std::string why = hooks_.not_ready_reason ? hooks_.not_ready_reason() : std::string();
    if (why.empty()) {
      respond(conn, 200, "text/plain", "ready\n");
    } else {
      respond(conn, 503, "text/plain", "not ready: " + why + "\n");
    }
    return true;
  }

 private:
  const StatusHooks& hooks_;
};

class LogLevelHandler : public CivetHandler {
 public:
  explicit LogLevelHandler(const StatusHooks& hooks) : hooks_(hooks) {}
  bool handleGet(CivetServer*, mg_connection* conn) override {
    respond(conn, 200, "text/plain", std::string(log::level_name(log::level())) + "\n");
    return true;
  }
  bool handlePut(CivetServer*, mg_connection* conn) override {
    if (!hooks_.log_level_endpoint) {
      respond(conn, 403, "text/plain", "log level changes are off (metrics.log_level_endpoint)\n");
      return true;
    }
    const mg_request_info* info = mg_get_request_info(conn);
    if (info->content_length < 0 || info->content_length > kLogLevelBodyBytesMax) {
      respond(conn, 400, "text/plain", "body must be one of: debug info warn error\n");
      return true;
    }
    char buf[kLogLevelBodyBytesMax + 1] = {};
    int got = 0;
    while (got < info->content_length) {
      const int n = mg_read(conn, buf + got, static_cast<size_t>(info->content_length - got));
      if (n <= 0) break;
      got += n;
    }
    std::string_view text(buf, static_cast<size_t>(got));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
      text.remove_suffix(1);
    }
    log::Level level{};
    if (!log::parse_level(text, &level)) {
      respond(conn, 400, "text/plain", "body must be one of: debug info warn error\n");
      return true;
    }
    const log::Level before = log::level();
    log::set_level(level);
    POPGATE_LOG(kWarn, "log_level_changed").str("from", log::level_name(before)).str("to", log::level_name(level));
    respond(conn, 200, "text/plain", std::string(log::level_name(level)) + "\n");
    return true;
  }

 private:
  const StatusHooks& hooks_;
};

}  // namespace

struct StatusServer::Impl {
  explicit Impl(StatusHooks h) : hooks(std::move(h)), metrics(hooks), ready(hooks), log_level(hooks) {}
  StatusHooks hooks;
  MetricsHandler metrics;
  LiveHandler live;
  ReadyHandler ready;
  LogLevelHandler log_level;
  std::unique_ptr<CivetServer> server;  // last: stops before the handlers go
};

std::unique_ptr<StatusServer> StatusServer::start(const std::string& address, StatusHooks hooks,
                                                  std::string* error) {
  auto impl = std::make_unique<Impl>(std::move(hooks));
  const std::vector<std::string> options = {
      "listening_ports", address,           "num_threads",      kHttpThreads,
      "request_timeout_ms", kRequestTimeoutMs, "enable_keep_alive", "no",
  };
  try {
    impl->server = std::make_unique<CivetServer>(options);
  } catch (const CivetException& e) {
    *error = std::string("cannot listen on ") + address + ": " + e.what();
    return nullptr;
  }
  if (impl->server->getContext() == nullptr) {
    *error = "cannot listen on " + address;
    return nullptr;
  }
  impl->server->addHandler("/metrics", impl->metrics);
  impl->server->addHandler("/healthz/live", impl->live);
  impl->server->addHandler("/healthz/ready", impl->ready);
  impl->server->addHandler("/log/level", impl->log_level);
  const std::vector<int> ports = impl->server->getListeningPorts();
  std::string host = address.substr(0, address.rfind(':'));
  const std::string bound = host + ":" + (ports.empty() ? std::string("?") : std::to_string(ports.front()));
  return std::unique_ptr<StatusServer>(new StatusServer(std::move(impl), bound));
}

StatusServer::StatusServer(std::unique_ptr<Impl> impl, std::string bound)
    : impl_(std::move(impl)), bound_(std::move(bound)) {}

StatusServer::~StatusServer() {
  if (impl_ && impl_->server) impl_->server->close();
}

}  // namespace popgate::ops
