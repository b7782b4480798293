// Read-ahead of small message bodies. At one query in flight per session,
// each RETR of a small message costs the client a full PostgreSQL round
// trip while the socket idles (retr_small). So once a session has asked for
// all of a body, the shard asks PostgreSQL for the message the session will
// most likely want next (pop3::Session::predict_fetch: the next small
// message in the order the client RETRs in) and keeps the answer on the
// connection until the session asks for exactly that fetch.
//
// Bounds: one read-ahead per connection, of a whole message of at most
// kPrefetchMessageBytesMax octets; never a further chunk of a large body
// (a 25 MiB RETR keeps holding one chunk). It is not a cache: nothing
// outlives the session, and every read-ahead is of a message the session
// has not fetched yet.
#include "server/shard/shard.h"

namespace popgate::shard {

namespace {
// The largest message fetched whole before the client asks for it.
constexpr uint32_t kPrefetchMessageBytesMax = 64 * 1024;
}  // namespace

void Shard::start_prefetch(Connection& c) noexcept {
  if (c.prefetch != Connection::Prefetch::kNone || c.closing || c.lingering || !c.session) return;
  pop3::Request r;
  if (!c.session->predict_fetch(kPrefetchMessageBytesMax, &r)) return;
  c.prefetch = Connection::Prefetch::kInFlight;
  c.prefetch_claimed = false;
  c.prefetch_message_id = r.message_id;
  c.prefetch_offset = r.offset;
  c.prefetch_length = r.length;
  counters_.body_prefetches.add();
  fetch_body(c, tag_of(c) | kPrefetchTagBit, r);
}

// True when `r` is answered by the read-ahead (now, or when it arrives).
bool Shard::claim_prefetch(Connection& c, const pop3::Request& r) noexcept {
  if (c.prefetch == Connection::Prefetch::kNone || c.prefetch_claimed) return false;
  const bool same = r.message_id == c.prefetch_message_id && r.offset == c.prefetch_offset &&
                    r.length == c.prefetch_length;
  if (!same || !c.body_rest.empty()) {
    // The client went elsewhere: a finished read-ahead goes now, one in
    // flight when it arrives (prefetch_done).
    if (c.prefetch == Connection::Prefetch::kReady) {
      drop_prefetch(c);
    } else {
      c.prefetch_length = 0;  // stale: matches nothing, dropped on arrival
    }
    return false;
  }
  counters_.body_prefetch_hits.add();
  if (c.prefetch == Connection::Prefetch::kInFlight) {
    c.prefetch_claimed = true;
    return true;
  }
  storage::ResultHandle body = std::move(c.prefetch_body);
  const std::string_view bytes = c.prefetch_bytes;
  c.prefetch = Connection::Prefetch::kNone;
  c.prefetch_bytes = {};
  deliver_body(c, pop3::StoreStatus::kOk, body, bytes);
  return true;
}

// A read-ahead arrived. Returns true when the session is waiting for it
// (the caller hands it over as a body chunk); otherwise it is kept, or
// dropped when it is stale or the connection is going.
bool Shard::prefetch_done(Connection& c, storage::Completion& done) noexcept {
  if (c.prefetch_claimed) {
    c.prefetch = Connection::Prefetch::kNone;
    c.prefetch_claimed = false;
    return true;
  }
  // Only successes are kept: after a failure the session asks again and
  // meets the error itself.
  const bool wanted = c.prefetch == Connection::Prefetch::kInFlight && c.prefetch_length != 0 &&
                      !c.closing && !c.lingering && done.status == storage::Status::kOk;
  if (!wanted) {
    counters_.body_prefetch_wasted.add();
    c.prefetch = Connection::Prefetch::kNone;
    return false;
  }
  c.prefetch = Connection::Prefetch::kReady;
  c.prefetch_body = std::move(done.body);
  c.prefetch_bytes = done.body_bytes;
  return false;
}

void Shard::drop_prefetch(Connection& c) noexcept {
  if (c.prefetch == Connection::Prefetch::kReady) counters_.body_prefetch_wasted.add();
  // One in flight stays marked: its completion finds it unclaimed and drops it.
  if (c.prefetch != Connection::Prefetch::kInFlight) c.prefetch = Connection::Prefetch::kNone;
  c.prefetch_claimed = false;
  c.prefetch_body.reset();
  c.prefetch_bytes = {};
}

// A body chunk for the session (from PostgreSQL or the read-ahead); what it
// cannot take yet waits on the connection (feed_body).
void Shard::deliver_body(Connection& c, pop3::StoreStatus status, storage::ResultHandle& body,
                         std::string_view bytes) noexcept {
  const size_t used = c.session->handle_body_chunk(status, bytes, now_);
  if (used < bytes.size()) {
    c.body = std::move(body);
    c.body_rest = bytes.substr(used);
  }
}

}  // namespace popgate::shard
