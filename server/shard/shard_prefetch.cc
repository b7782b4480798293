// Read-ahead of small message bodies. At one query in flight per session,
// each RETR of a small message costs the client a full PostgreSQL round
// trip while the socket idles, and costs PostgreSQL a whole statement,
// whose fixed cost is most of what it spends on a 20 KB body (bench/:
// eight bodies per statement serve about six times the messages per second
// of one per statement). So once a session has asked for all of a body,
// the shard fetches the next few small messages it will most likely want
// (pop3::Session::predict_fetches: in the order the client RETRs in) in one
// statement, and keeps the rows on the connection; each RETR that asks for
// exactly the next of them is answered from there.
//
// Bounds: one batch per connection, of at most kPrefetchMessagesMax whole
// messages of at most kPrefetchMessageBytesMax octets each and
// kPrefetchBatchBytesMax together (the size of one body chunk of a large
// RETR); never a further chunk of a large body (a 25 MiB RETR keeps
// holding one chunk). It is not a cache: nothing outlives the session, and
// every message read ahead is one the session has not fetched yet. When
// the client goes elsewhere, the rest of the batch is dropped.
#include "server/shard/shard.h"

namespace popgate::shard {

namespace {
// The largest message fetched whole before the client asks for it.
constexpr uint32_t kPrefetchMessageBytesMax = 64 * 1024;
// The most octets of bodies one batch holds.
constexpr uint64_t kPrefetchBatchBytesMax = 256 * 1024;
}  // namespace

void Shard::start_prefetch(Connection& c) noexcept {
  if (c.prefetch != Connection::Prefetch::kNone || c.closing || c.lingering || !c.session) return;
  // (Free while prefetch is kNone: the prediction goes straight there.)
  const size_t n = c.session->predict_fetches(kPrefetchMessageBytesMax, kPrefetchBatchBytesMax,
                                              c.prefetch_ids, c.prefetch_sizes);
  if (n == 0) return;
  c.prefetch = Connection::Prefetch::kInFlight;
  c.prefetch_claimed = false;
  c.prefetch_stale = false;
  c.prefetch_count = static_cast<uint8_t>(n);
  c.prefetch_next = 0;
  counters_.body_prefetches.add();
  ++c.store_inflight;
  pg(c).fetch_bodies(tag_of(c) | kPrefetchTagBit, c.session->tenant_id(), c.session->user_id(),
                     std::span<const int64_t>(c.prefetch_ids.data(), n), now_);
}

// True when `r` is answered by the read-ahead (now, or when it arrives).
bool Shard::claim_prefetch(Connection& c, const pop3::Request& r) noexcept {
  if (c.prefetch == Connection::Prefetch::kNone || c.prefetch_claimed) return false;
  const size_t i = c.prefetch_next;
  bool same = i < c.prefetch_count && r.message_id == c.prefetch_ids[i] && r.offset == 0 &&
              r.length == c.prefetch_sizes[i] && c.body_rest.empty();
  std::string_view bytes;
  if (same && c.prefetch == Connection::Prefetch::kReady) {
    // A message gone since the listing is not among the rows: the session
    // then asks PostgreSQL itself and meets the answer there.
    same = storage::fetched_body(c.prefetch_rows.get(), r.message_id, &bytes) && bytes.size() == r.length;
  }
  if (!same) {
    // The client went elsewhere: a batch that arrived goes now, one in
    // flight when it arrives (prefetch_done).
    drop_prefetch(c);
    return false;
  }
  counters_.body_prefetch_hits.add();
  if (c.prefetch == Connection::Prefetch::kInFlight) {
    c.prefetch_claimed = true;
    return true;
  }
  take_prefetched(c);
  return true;
}

// Hands the session the next message of a batch that arrived.
void Shard::take_prefetched(Connection& c) noexcept {
  const int64_t id = c.prefetch_ids[c.prefetch_next];
  const uint32_t size = c.prefetch_sizes[c.prefetch_next];
  std::shared_ptr<pg_result> rows = c.prefetch_rows;
  if (++c.prefetch_next == c.prefetch_count) {
    c.prefetch = Connection::Prefetch::kNone;
    c.prefetch_rows.reset();
  }
  std::string_view bytes;
  if (storage::fetched_body(rows.get(), id, &bytes) && bytes.size() == size) {
    deliver_body(c, pop3::StoreStatus::kOk, std::move(rows), bytes);
  } else {
    // Claimed while in flight, and the message has gone meanwhile: what
    // PostgreSQL would have said to the session's own fetch.
    deliver_body(c, pop3::StoreStatus::kNotFound, nullptr, {});
  }
}

// A batch arrived. Returns true when the session is waiting for it and it
// failed: the caller hands the failure over like that of any body fetch.
// Otherwise it is kept (and its first message handed over if the session
// is waiting), or dropped when it is stale or the connection is going.
bool Shard::prefetch_done(Connection& c, storage::Completion& done) noexcept {
  const bool usable = c.prefetch == Connection::Prefetch::kInFlight && !c.prefetch_stale &&
                      !c.closing && !c.lingering && done.status == storage::Status::kOk;
  if (c.prefetch_claimed) {
    c.prefetch_claimed = false;
    if (!usable) {
      c.prefetch = Connection::Prefetch::kNone;
      return !c.closing && !c.lingering;
    }
    c.prefetch = Connection::Prefetch::kReady;
    c.prefetch_rows = std::shared_ptr<pg_result>(std::move(done.body));
    take_prefetched(c);
    return false;
  }
  if (!usable) {
    // Only successes are kept: after a failure the session asks again and
    // meets the error itself.
    counters_.body_prefetch_wasted.add(c.prefetch_count - c.prefetch_next);
    c.prefetch = Connection::Prefetch::kNone;
    return false;
  }
  c.prefetch = Connection::Prefetch::kReady;
  c.prefetch_rows = std::shared_ptr<pg_result>(std::move(done.body));
  return false;
}

void Shard::drop_prefetch(Connection& c) noexcept {
  if (c.prefetch == Connection::Prefetch::kReady) {
    counters_.body_prefetch_wasted.add(c.prefetch_count - c.prefetch_next);
    c.prefetch = Connection::Prefetch::kNone;
  } else if (c.prefetch == Connection::Prefetch::kInFlight) {
    // It stays marked: its completion finds it stale and drops it.
    c.prefetch_stale = true;
  }
  c.prefetch_claimed = false;
  c.prefetch_rows.reset();
}

// A body chunk for the session (from PostgreSQL or the read-ahead); what it
// cannot take yet waits on the connection (feed_body), with the result that
// holds it.
void Shard::deliver_body(Connection& c, pop3::StoreStatus status, std::shared_ptr<pg_result> body,
                         std::string_view bytes) noexcept {
  const size_t used = c.session->handle_body_chunk(status, bytes, now_);
  if (used < bytes.size()) {
    c.body = std::move(body);
    c.body_rest = bytes.substr(used);
  }
}

}  // namespace popgate::shard
