// The shard's side of storage and the KDF pool: turning session requests
// into PgClient calls and KDF jobs, and their replies into session inputs.
#include <algorithm>

#include "server/base/log.h"
#include "server/shard/shard.h"

namespace popgate::shard {
namespace {

// Tag layout: bit 63 set for shard-level requests; otherwise slot in bits
// 32..55 and generation in bits 0..31, as in ring user_data.
constexpr uint64_t kShardTagBit = uint64_t{1} << 63;

pop3::StoreStatus to_pop3(storage::Status s) noexcept {
  switch (s) {
    case storage::Status::kOk: return pop3::StoreStatus::kOk;
    case storage::Status::kNotFound: return pop3::StoreStatus::kNotFound;
    case storage::Status::kInUse: return pop3::StoreStatus::kInUse;
    case storage::Status::kTemporary: return pop3::StoreStatus::kTemporary;
    case storage::Status::kPermanent: return pop3::StoreStatus::kPermanent;
  }
  return pop3::StoreStatus::kTemporary;
}

}  // namespace

uint64_t Shard::tag_of(const Connection& c) noexcept {
  return (uint64_t{c.slot} << 32) | c.generation;
}

uint64_t Shard::shard_tag(ShardTag t) noexcept { return kShardTagBit | static_cast<uint32_t>(t); }

storage::LockHolder Shard::holder(const Connection& c) const noexcept {
  return storage::LockHolder{opts_.instance_id, c.session_id};
}

void Shard::submit_request(Connection& c, const pop3::Request& r) noexcept {
  pop3::Session& s = *c.session;
  switch (r.kind) {
    case pop3::RequestKind::kNone:
      return;
    case pop3::RequestKind::kLookupUser:
      ++c.store_inflight;
      pg_->lookup_user(tag_of(c), r.login, now_);
      return;
    case pop3::RequestKind::kVerifyPassword: {
      // Unknown users verify against a dummy hash: same cost, same answer.
      const std::string_view hash = r.password_hash.empty() ? std::string_view(auth::dummy_hash())
                                                            : r.password_hash;
      if (!kdf_.submit(outbox_, tag_of(c), hash, r.password)) {
        counters_.kdf_rejected.add();
        s.handle_password_checked(pop3::PasswordCheck::kUnavailable, now_);
        return;
      }
      ++c.store_inflight;
      return;
    }
    case pop3::RequestKind::kOpenMaildrop:
      ++c.store_inflight;
      pg_->open_maildrop(tag_of(c), r.tenant_id, r.user_id, holder(c), now_);
      return;
    case pop3::RequestKind::kFetchBody:
      ++c.store_inflight;
      pg_->fetch_body(tag_of(c), r.tenant_id, r.user_id, r.message_id, r.offset, r.length, now_);
      return;
    case pop3::RequestKind::kCommitUpdate:
      ++c.store_inflight;
      pg_->commit_update(tag_of(c), r.tenant_id, r.user_id, holder(c), r.message_ids, now_);
      return;
  }
}

bool Shard::drain_storage() noexcept {
  bool any = false;
  while (pg_->poll_completion(completion_)) {
    any = true;
    counters_.storage_completions.add();
    if (completion_.tag & kShardTagBit) {
      dispatch_shard_completion(completion_);
    } else {
      dispatch_completion(completion_);
    }
    completion_.body.reset();
  }
  return any;
}

void Shard::dispatch_completion(storage::Completion& done) noexcept {
  Connection* c = table_.find(static_cast<uint32_t>((done.tag >> 32) & net::kSlotMask),
                              static_cast<uint32_t>(done.tag));
  if (c == nullptr) return;  // cannot happen: slots wait for their requests
  --c->store_inflight;
  pop3::Session& s = *c->session;
  const pop3::StoreStatus status = to_pop3(done.status);
  if (done.status == storage::Status::kTemporary || done.status == storage::Status::kPermanent) {
    POPGATE_LOG(kWarn, "storage_error")
        .str("peer", c->peer_text())
        .str("status", storage::to_string(done.status))
        .str("error", done.error);
  }
  switch (done.kind) {
    case storage::RequestKind::kLookupUser:
      if (status == pop3::StoreStatus::kOk) {
        s.handle_user_found(done.user.tenant_id, done.user.user_id, done.user.password_hash, now_);
      } else {
        s.handle_user_lookup_failed(status, now_);
      }
      break;
    case storage::RequestKind::kOpenMaildrop: {
      pop3::Snapshot snap;
      snap.message_ids = std::move(done.listing.message_ids);
      snap.sizes = std::move(done.listing.sizes);
      snap.uidl_ends = std::move(done.listing.uidl_ends);
      snap.uidl_arena = std::move(done.listing.uidl_arena);
      s.handle_maildrop_opened(status, std::move(snap), now_);
      break;
    }
    case storage::RequestKind::kFetchBody: {
      const size_t used = s.handle_body_chunk(status, done.body_bytes, now_);
      if (used < done.body_bytes.size()) {
        c->body = std::move(done.body);
        c->body_rest = done.body_bytes.substr(used);
      }
      break;
    }
    case storage::RequestKind::kCommitUpdate:
      s.handle_update_committed(status, done.affected, now_);
      break;
    case storage::RequestKind::kReleaseMaildrop:
    case storage::RequestKind::kRenewLeases:
      break;
  }
  if (c->closing) {
    maybe_finish_close(*c);
  } else {
    pump(*c);
  }
}

void Shard::dispatch_shard_completion(const storage::Completion& done) noexcept {
  --shard_requests_inflight_;
  const bool ok = done.status == storage::Status::kOk;
  if (done.kind == storage::RequestKind::kReleaseMaildrop) {
    if (ok) {
      counters_.lock_releases.add();
    } else {
      // The lock lapses by lease instead: nobody renews it any more.
      counters_.lock_release_failures.add();
      POPGATE_LOG(kWarn, "lock_release_failed").str("error", done.error);
    }
  } else if (done.kind == storage::RequestKind::kRenewLeases) {
    if (ok) {
      counters_.lease_renewals.add();
    } else {
      counters_.lease_renewal_failures.add();
      POPGATE_LOG(kWarn, "lease_renewal_failed").str("error", done.error);
    }
  }
}

void Shard::release_lock(Connection& c) noexcept {
  ++shard_requests_inflight_;
  pg_->release_maildrop(shard_tag(ShardTag::kRelease), c.session->tenant_id(), c.session->user_id(),
                        holder(c), now_);
}

void Shard::renew_leases() noexcept {
  renew_ids_.clear();
  table_.for_each_active([this](Connection& c) {
    if (c.session->holds_maildrop()) renew_ids_.push_back(c.session_id);
  });
  if (renew_ids_.empty()) return;
  ++shard_requests_inflight_;
  pg_->renew_leases(shard_tag(ShardTag::kRenew), opts_.instance_id, renew_ids_, now_);
}

bool Shard::drain_kdf() noexcept {
  outbox_.drain(kdf_results_);
  for (const auth::KdfResult& r : kdf_results_) {
    Connection* c = table_.find(static_cast<uint32_t>((r.tag >> 32) & net::kSlotMask),
                                static_cast<uint32_t>(r.tag));
    if (c == nullptr) continue;
    --c->store_inflight;
    pop3::PasswordCheck check = pop3::PasswordCheck::kMismatch;
    switch (r.result) {
      case auth::VerifyResult::kMatch:
        check = pop3::PasswordCheck::kMatch;
        break;
      case auth::VerifyResult::kMismatch:
        break;
      case auth::VerifyResult::kUnsupportedScheme:
      case auth::VerifyResult::kMalformed:
        // A data problem, not the user's: say so in the log (never the hash).
        POPGATE_LOG(kWarn, "password_hash_unusable")
            .str("user", c->session->login())
            .str("problem", r.result == auth::VerifyResult::kMalformed ? "malformed" : "unsupported_scheme");
        break;
    }
    c->session->handle_password_checked(check, now_);
    if (c->closing) {
      maybe_finish_close(*c);
    } else {
      pump(*c);
    }
  }
  return !kdf_results_.empty();
}

}  // namespace popgate::shard
