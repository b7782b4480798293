#include "bench/load/metrics.h"

namespace popgate::bench {

std::string_view cmd_name(Cmd c) noexcept {
  switch (c) {
    case Cmd::kGreeting: return "greeting";
    case Cmd::kUser: return "USER";
    case Cmd::kPass: return "PASS";
    case Cmd::kStat: return "STAT";
    case Cmd::kList: return "LIST";
    case Cmd::kListOne: return "LIST_n";
    case Cmd::kUidl: return "UIDL";
    case Cmd::kRetr: return "RETR";
    case Cmd::kNoop: return "NOOP";
    case Cmd::kQuit: return "QUIT";
  }
  return "?";
}

std::string_view error_kind_name(ErrorKind k) noexcept {
  switch (k) {
    case ErrorKind::kConnect: return "connect";
    case ErrorKind::kTls: return "tls";
    case ErrorKind::kErrReply: return "err_reply";
    case ErrorKind::kVerify: return "verify";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kClosed: return "closed";
    case ErrorKind::kUnsolicited: return "unsolicited";
    case ErrorKind::kAbandoned: return "abandoned";
  }
  return "?";
}

void Metrics::merge(const Metrics& o) noexcept {
  sessions += o.sessions;
  commands += o.commands;
  message_octets += o.message_octets;
  retr_verified += o.retr_verified;
  listings_verified += o.listings_verified;
  tls_handshakes += o.tls_handshakes;
  tls_resumed += o.tls_resumed;
  for (size_t i = 0; i < kErrorKindCount; ++i) errors[i] += o.errors[i];
  for (size_t i = 0; i < kCmdCount; ++i) latency[i].merge(o.latency[i]);
  session.merge(o.session);
}

}  // namespace popgate::bench
