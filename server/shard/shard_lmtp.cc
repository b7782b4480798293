// LMTP delivery connections (listeners with protocol = lmtp): the MTA hands
// messages over, each recipient is looked up and each message stored through
// the shard's PgClient, one request at a time per connection. No PROXY, TLS
// or logins: the port belongs on a private network.
//
//   socket -> lmtp::Session::handle_input ; Session output -> socket
//   kLookupRecipient -> PgClient::lookup_user ; kDeliver -> PgClient::deliver
#include <unistd.h>

#include "server/base/log.h"
#include "server/shard/shard.h"

namespace popgate::shard {

using net::Op;

namespace {
constexpr int kPumpRoundsMax = 64;  // as for POP3: a bug guard, not a budget
}  // namespace

void Shard::start_lmtp(Connection& c) noexcept {
  const ListenerState& l = listeners_[c.listener];
  c.phase = Phase::kLmtp;
  c.lmtp.emplace(l.options.lmtp_session, out_pool_, counters_.lmtp);
  if (stopping_) {
    c.lmtp->refuse("shutting down", now_);
  } else {
    c.lmtp->start(now_);
  }
  pump(c);
}

bool Shard::feed_lmtp(Connection& c) noexcept {
  lmtp::Session& s = *c.lmtp;
  if (c.in_buffer < 0 || !s.wants_input()) return false;
  const std::string_view bytes = received(c);
  const size_t used = s.handle_input(bytes, now_);
  advance_input(c, used);
  return used > 0;
}

void Shard::pump_lmtp(Connection& c) noexcept {
  lmtp::Session& s = *c.lmtp;
  for (int round = 0; round < kPumpRoundsMax; ++round) {
    if (c.closing || c.lingering) return;
    if (const lmtp::Request* r = s.take_request()) {
      submit_lmtp_request(c, *r);
      continue;
    }
    if (!feed_lmtp(c)) break;
  }
  if (c.closing || c.lingering) return;
  flush_output(c);
  if (c.closing) return;
  const lmtp::CloseMode mode = s.close_mode();
  if (mode == lmtp::CloseMode::kNow) {
    begin_close(c);
    return;
  }
  if (mode == lmtp::CloseMode::kAfterFlush) {
    // A delivery taken before the peer left is still answered (and its
    // slot kept: begin_close waits for store_inflight).
    if (s.pending_output().empty() && !c.send_inflight && !s.awaiting_reply()) begin_linger(c);
    return;
  }
  if (!c.recv_armed && c.in_buffer < 0 && s.wants_input()) arm_recv(c);
}

void Shard::submit_lmtp_request(Connection& c, const lmtp::Request& r) noexcept {
  switch (r.kind) {
    case lmtp::RequestKind::kNone:
      return;
    case lmtp::RequestKind::kLookupRecipient:
      ++c.store_inflight;
      c.cluster = cluster_of_login(r.address);  // scopes the recipient's ids when found
      pg(c).lookup_user(tag_of(c), r.address, now_);
      return;
    case lmtp::RequestKind::kDeliver:
      // r.body lives in the session until handle_delivered/_failed.
      ++c.store_inflight;
      // The recipient's cluster rides in its scoped tenant id.
      pgs_[storage::cluster_of_scoped(r.tenant_id)]->deliver(tag_of(c), storage::unscoped_id(r.tenant_id),
                                                             r.user_id, r.body, now_);
      return;
  }
}

void Shard::dispatch_lmtp_completion(Connection& c, const storage::Completion& done) noexcept {
  lmtp::Session& s = *c.lmtp;
  if (done.status == storage::Status::kTemporary || done.status == storage::Status::kPermanent) {
    POPGATE_LOG(kWarn, "storage_error")
        .str("peer", c.peer_text())
        .str("listener", listeners_[c.listener].options.name)
        .str("status", storage::to_string(done.status))
        .str("error", done.error);
  }
  switch (done.kind) {
    case storage::RequestKind::kLookupUser:
      if (done.status == storage::Status::kOk) {
        s.handle_recipient_found(storage::scoped_id(c.cluster, done.user.tenant_id), done.user.user_id, now_);
      } else if (done.status == storage::Status::kNotFound) {
        s.handle_recipient_not_found(now_);
      } else {
        s.handle_recipient_failed(now_);
      }
      break;
    case storage::RequestKind::kDeliver:
      switch (done.status) {
        case storage::Status::kOk:
          s.handle_delivered(done.uidl, now_);
          break;
        case storage::Status::kOverQuota:
          s.handle_delivery_failed(lmtp::DeliveryFailure::kOverQuota, now_);
          break;
        case storage::Status::kNotFound:
          s.handle_delivery_failed(lmtp::DeliveryFailure::kGone, now_);
          break;
        default:
          s.handle_delivery_failed(lmtp::DeliveryFailure::kTemporary, now_);
          break;
      }
      break;
    default:
      break;  // LMTP issues no other kind
  }
  if (c.closing) {
    maybe_finish_close(c);
  } else {
    pump(c);
  }
}

void Shard::log_lmtp_end(const Connection& c) noexcept {
  const lmtp::Session& s = *c.lmtp;
  const lmtp::SessionStats& st = s.stats();
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(now_ - c.opened_at);
  POPGATE_LOG(kInfo, "lmtp_session_end")
      .str("listener", listeners_[c.listener].options.name)
      .str("peer", c.peer_text())
      .str("end", lmtp::end_reason_name(s.end_reason()))
      .num("duration_ms", duration.count())
      .unum("commands", st.commands)
      .unum("messages", st.messages)
      .unum("recipients", st.recipients)
      .unum("delivered", st.delivered)
      .unum("failed", st.failed)
      .unum("delivered_bytes", st.delivered_bytes)
      .unum("bytes_in", c.bytes_in)
      .unum("bytes_out", c.bytes_out)
      .unum("shard", opts_.index);
}

}  // namespace popgate::shard
