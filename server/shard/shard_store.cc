// The shard's side of storage, the KDF pool, the auth helpers and the abuse
// limits: session requests become PgClient calls, KDF jobs or quick local
// computations (SCRAM, bearer tokens, APOP), and their answers become
// session inputs. Limits that need the user (sessions per user and tenant,
// logins per tenant) are applied when the lookup answers.
#include <algorithm>
#include <chrono>

#include "server/auth/apop.h"
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
    case storage::Status::kOverQuota: return pop3::StoreStatus::kPermanent;  // not a POP3 outcome
  }
  return pop3::StoreStatus::kTemporary;
}

int64_t unix_seconds() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

uint64_t Shard::tag_of(const Connection& c) noexcept {
  return (uint64_t{c.slot} << 32) | c.generation;
}

uint64_t Shard::shard_tag(ShardTag t) noexcept { return kShardTagBit | static_cast<uint32_t>(t); }

storage::LockHolder Shard::holder(const Connection& c) const noexcept {
  return storage::LockHolder{opts_.instance_id, c.session_id, c.peer_text(),
                             listeners_[c.listener].options.name};
}

// True when none of the UIDLs the last session left behind is in the new
// listing (while it has messages): the maildrop's UIDLs changed, and every
// client will download everything again. Kept UIDLs are the newest, so the
// search runs from the end; it looks at most kUidlCheckMessagesMax.
bool Shard::uidls_changed(const storage::MaildropListing& listing, std::string_view previous) noexcept {
  if (previous.empty() || listing.message_ids.empty()) return false;
  const size_t n = listing.message_ids.size();
  const size_t first = n > kUidlCheckMessagesMax ? n - kUidlCheckMessagesMax : 0;
  while (!previous.empty()) {
    const size_t space = previous.find(' ');
    const std::string_view uidl = previous.substr(0, space);
    previous = space == std::string_view::npos ? std::string_view{} : previous.substr(space + 1);
    for (size_t i = n; i > first; --i) {
      const uint32_t begin = i - 1 == 0 ? 0 : listing.uidl_ends[i - 2];
      if (std::string_view(listing.uidl_arena).substr(begin, listing.uidl_ends[i - 1] - begin) == uidl) {
        return false;  // one survived: nothing wholesale happened
      }
    }
  }
  return true;
}

// ---- Requests -------------------------------------------------------------------------

void Shard::submit_request(Connection& c, const pop3::Request& r) noexcept {
  pop3::Session& s = *c.session;
  switch (r.kind) {
    case pop3::RequestKind::kNone:
      return;
    case pop3::RequestKind::kLookupUser:
      ++c.store_inflight;
      c.cluster = cluster_of_login(r.login);  // every later request of the session goes there
      pg(c).lookup_user(tag_of(c), r.login, now_);
      return;
    case pop3::RequestKind::kVerifyPassword: {
      // A frequent poller's password was proven a moment ago: skip the KDF.
      if (!r.password_hash.empty() && opts_.verify_cache_entries > 0 &&
          verify_cache_.hit(r.password_hash, r.password, now_)) {
        counters_.verify_cache_hits.add();
        s.handle_password_checked(pop3::PasswordCheck::kMatch, now_);
        return;
      }
      // Unknown users verify against a dummy hash: same cost, same answer.
      const std::string_view hash = r.password_hash.empty() ? std::string_view(auth::dummy_hash())
                                                            : r.password_hash;
      if (!kdf_.submit(outbox_, tag_of(c), hash, r.password)) {
        counters_.kdf_rejected.add();
        s.handle_password_checked(pop3::PasswordCheck::kUnavailable, now_);
        return;
      }
      c.verify = r;  // its views stay valid until the answer; for the cache
      ++c.store_inflight;
      return;
    }
    case pop3::RequestKind::kOpenMaildrop:
      ++c.store_inflight;
      pg(c).open_maildrop(tag_of(c), r.tenant_id, r.user_id, holder(c), now_);
      return;
    case pop3::RequestKind::kFetchBody:
      if (claim_prefetch(c, r)) return;
      fetch_body(c, tag_of(c), r);
      return;
    case pop3::RequestKind::kCommitUpdate:
      ++c.store_inflight;
      pg(c).commit_update(tag_of(c), r.tenant_id, r.user_id, holder(c), r.message_ids, r.hide,
                          storage::SessionEnd{r.retrieved_ids, r.kept_uidls}, now_);
      return;
    case pop3::RequestKind::kScramStart:
    case pop3::RequestKind::kScramChallenge:
    case pop3::RequestKind::kScramFinish:
    case pop3::RequestKind::kVerifyBearer:
    case pop3::RequestKind::kVerifyApop:
      submit_auth_step(c, r);
      return;
  }
}

void Shard::fetch_body(Connection& c, uint64_t tag, const pop3::Request& r) noexcept {
  ++c.store_inflight;
  pg(c).fetch_body(tag, r.tenant_id, r.user_id, r.message_id, r.offset, r.length, now_);
}

// Steps that take microseconds (HMACs, a public-key signature check, an
// MD5), answered on the spot; only the password KDF goes to the pool.
void Shard::submit_auth_step(Connection& c, const pop3::Request& r) noexcept {
  pop3::Session& s = *c.session;
  switch (r.kind) {
    case pop3::RequestKind::kScramStart: {
      c.scram = std::make_unique<auth::ScramServer>();
      const auth::ScramError e = c.scram->handle_client_first(r.data);
      // No proxy authorization: the authzid, if any, must be the user.
      const bool ok = e == auth::ScramError::kNone &&
                      (c.scram->authzid().empty() || c.scram->authzid() == c.scram->username());
      s.handle_auth_step(ok ? pop3::AuthStep::kOk : pop3::AuthStep::kFailed,
                         ok ? c.scram->username() : std::string_view{}, now_);
      return;
    }
    case pop3::RequestKind::kScramChallenge: {
      const std::string_view first = c.scram ? c.scram->server_first_from_stored(r.data) : std::string_view{};
      s.handle_auth_step(first.empty() ? pop3::AuthStep::kFailed : pop3::AuthStep::kOk, first, now_);
      return;
    }
    case pop3::RequestKind::kScramFinish: {
      const bool ok = c.scram && c.scram->handle_client_final(r.data, nullptr) == auth::ScramError::kNone;
      s.handle_auth_step(ok ? pop3::AuthStep::kOk : pop3::AuthStep::kFailed,
                         ok ? c.scram->server_final_message() : std::string_view{}, now_);
      c.scram.reset();
      return;
    }
    case pop3::RequestKind::kVerifyBearer: {
      if (opts_.oauth == nullptr) {
        s.handle_auth_step(pop3::AuthStep::kUnavailable, {}, now_);
        return;
      }
      const auth::BearerMechanism m = r.mechanism == pop3::kMechXoauth2 ? auth::BearerMechanism::kXoauth2
                                                                          : auth::BearerMechanism::kOAuthBearer;
      const auth::OAuthVerdict v = opts_.oauth->authenticate(m, r.data, unix_seconds());
      if (v.status == auth::OAuthStatus::kOk) {
        s.handle_auth_step(pop3::AuthStep::kOk, v.user.view(), now_);
        return;
      }
      counters_.bearer_failures.add();
      POPGATE_LOG(kInfo, "bearer_refused").str("peer", c.peer_text()).str("reason", auth::oauth_status_name(v.status));
      s.handle_auth_step(pop3::AuthStep::kFailed, opts_.oauth->failure_json(m), now_);
      return;
    }
    case pop3::RequestKind::kVerifyApop: {
      const bool ok = auth::apop_matches(r.banner, r.secret, r.data);
      s.handle_auth_step(ok ? pop3::AuthStep::kOk : pop3::AuthStep::kFailed, {}, now_);
      return;
    }
    default:
      return;
  }
}

// ---- Storage answers ---------------------------------------------------------------------

bool Shard::drain_storage() noexcept {
  bool any = false;
  for (const auto& client : pgs_) {
    while (client->poll_completion(completion_)) {
      any = true;
      counters_.storage_completions.add();
      if (completion_.tag & kShardTagBit) {
        dispatch_shard_completion(completion_);
      } else {
        dispatch_completion(completion_);
      }
      completion_.body.reset();
    }
  }
  return any;
}

// The user is known: limits that need the user or tenant apply now, before
// any credential is checked (they protect the KDF pool too).
void Shard::deliver_user(Connection& c, const storage::UserRecord& user) noexcept {
  pop3::Session& s = *c.session;
  c.tenant_sessions_max = user.policy.sessions_max;
  c.tenant_logins_per_minute = user.policy.logins_per_minute;
  const SharedLimits& lim = opts_.limits;
  // Ids are per cluster: keys and metric slots carry the cluster too.
  const int64_t tenant_id = storage::scoped_id(c.cluster, user.tenant_id);
  const limits::TenantKey tenant{tenant_id};
  if (lim.tenant_logins != nullptr) {
    const uint32_t per_minute = user.policy.logins_per_minute > 0
                                    ? static_cast<uint32_t>(user.policy.logins_per_minute)
                                    : threshold(&LimitThresholds::logins_per_tenant_per_minute);
    // A burst of a sixth of a minute's quota: smooth, but not stingy.
    const uint32_t burst = std::max<uint32_t>(1, per_minute / 6);
    const limits::RateDecision d = lim.tenant_logins->allow(tenant, now_, per_minute, burst);
    if (d != limits::RateDecision::kAllowed) {
      (d == limits::RateDecision::kTableFull ? counters_.limit_table_full : counters_.limit_tenant_logins).add();
      s.handle_login_refused(pop3::RespCode::kSysTemp, "too many logins for this domain; try again later",
                             now_);
      return;
    }
  }
  if (lim.sessions_per_tenant != nullptr && !c.tenant_counted) {
    const uint32_t max = user.policy.sessions_max > 0 ? static_cast<uint32_t>(user.policy.sessions_max)
                                                      : threshold(&LimitThresholds::sessions_per_tenant_max);
    const limits::Acquire a = lim.sessions_per_tenant->try_acquire(tenant, max);
    if (a != limits::Acquire::kAcquired) {
      (a == limits::Acquire::kTableFull ? counters_.limit_table_full : counters_.limit_sessions_per_tenant).add();
      s.handle_login_refused(pop3::RespCode::kSysTemp, "too many sessions for this domain; try again later",
                             now_);
      return;
    }
    c.tenant_counted = tenant;
  }
  const limits::UserKey user_key{tenant_id, user.user_id};
  if (lim.sessions_per_user != nullptr && c.user_counted != user_key) {
    if (c.user_counted) {
      lim.sessions_per_user->release(*c.user_counted);  // a second login on this connection
      c.user_counted.reset();
    }
    const limits::Acquire a = lim.sessions_per_user->try_acquire(user_key, threshold(&LimitThresholds::sessions_per_user_max));
    if (a != limits::Acquire::kAcquired) {
      (a == limits::Acquire::kTableFull ? counters_.limit_table_full : counters_.limit_sessions_per_user).add();
      s.handle_login_refused(pop3::RespCode::kInUse, "too many sessions for this user", now_);
      return;
    }
    c.user_counted = user_key;
  }
  pop3::UserInfo info;
  info.tenant_id = user.tenant_id;
  info.user_id = user.user_id;
  info.password_hash = user.password_hash;
  info.scram_credential = user.scram_sha256;
  info.apop_secret = user.apop_secret;
  info.since_last_login_s = user.since_last_login_s;
  info.login_delay_s = user.policy.login_delay_s;
  info.expire_days = user.policy.expire_days;
  info.require_tls = user.policy.require_tls;
  info.mechanisms = pop3::parse_mechanism_list(user.policy.mechanisms);
  info.hide_deleted = user.policy.hide_deleted;
  c.set_domain(user.domain);
  c.tenant_slot = tenants_.slot_for(tenant_id, user.domain);
  s.handle_user_found(info, now_);
}

void Shard::dispatch_completion(storage::Completion& done) noexcept {
  Connection* c = table_.find(static_cast<uint32_t>((done.tag >> 32) & net::kSlotMask),
                              static_cast<uint32_t>(done.tag));
  if (c == nullptr) return;  // cannot happen: slots wait for their requests
  --c->store_inflight;
  observe_latency(done);
  if ((done.tag & kPrefetchTagBit) != 0 && !prefetch_done(*c, done)) {
    // Kept for later, handed to the session that asked for it meanwhile, or
    // dropped; a failure the session waits for is handed over below.
    if (c->closing) {
      maybe_finish_close(*c);
    } else {
      pump(*c);
    }
    return;
  }
  if (c->phase == Phase::kLmtp) {
    dispatch_lmtp_completion(*c, done);
    return;
  }
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
        deliver_user(*c, done.user);
      } else {
        s.handle_user_lookup_failed(status, now_);
      }
      break;
    case storage::RequestKind::kOpenMaildrop: {
      if (status == pop3::StoreStatus::kOk && uidls_changed(done.listing, done.previous_uidls)) {
        counters_.uidl_set_changed.add();
        POPGATE_LOG(kWarn, "uidl_set_changed")
            .str("domain", c->domain_text())
            .str("user", s.login())
            .unum("messages", done.listing.message_ids.size())
            .str("why", "none of the UIDLs the last session left is listed: clients will download everything again");
      }
      pop3::Snapshot snap;
      snap.message_ids = std::move(done.listing.message_ids);
      snap.sizes = std::move(done.listing.sizes);
      snap.uidl_ends = std::move(done.listing.uidl_ends);
      snap.uidl_arena = std::move(done.listing.uidl_arena);
      s.handle_maildrop_opened(status, std::move(snap), now_);
      if (s.logged_in() && c->tenant_slot != UINT32_MAX && !c->tenant_session_counted) {
        TenantSeries& t = tenants_.at(c->tenant_slot);
        t.logins_ok.add();
        t.sessions.add();
        c->tenant_session_counted = true;
      }
      if (status == pop3::StoreStatus::kOk && c->address_key && opts_.limits.login_failures != nullptr) {
        opts_.limits.login_failures->record_success(*c->address_key);
      }
      break;
    }
    case storage::RequestKind::kFetchBody:
      deliver_body(*c, status, std::shared_ptr<pg_result>(std::move(done.body)), done.body_bytes);
      break;
    case storage::RequestKind::kFetchBodies:  // a read-ahead the session waited for, failed
      deliver_body(*c, status == pop3::StoreStatus::kOk ? pop3::StoreStatus::kTemporary : status, nullptr, {});
      break;
    case storage::RequestKind::kCommitUpdate:
      s.handle_update_committed(status, done.affected, now_);
      break;
    case storage::RequestKind::kReleaseMaildrop:
    case storage::RequestKind::kRenewLeases:
    case storage::RequestKind::kDeliver:
      break;
  }
  if (c->closing) {
    maybe_finish_close(*c);
  } else {
    pump(*c);
  }
}

void Shard::observe_latency(const storage::Completion& done) noexcept {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  if (done.submitted == TimePoint{}) return;
  counters_.pg_seconds[static_cast<size_t>(done.kind)].observe_duration(
      duration_cast<microseconds>(now_ - done.submitted));
  if (done.kind == storage::RequestKind::kOpenMaildrop && done.status == storage::Status::kOk &&
      done.first_result != TimePoint{}) {
    counters_.lock_wait_seconds.observe_duration(duration_cast<microseconds>(done.first_result - done.submitted));
    counters_.snapshot_seconds.observe_duration(duration_cast<microseconds>(now_ - done.first_result));
  }
}

void Shard::dispatch_shard_completion(const storage::Completion& done) noexcept {
  --shard_requests_inflight_;
  observe_latency(done);
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
      if (!done.kicked.empty()) kick_sessions(done.kicked);
      if (!done.lost.empty()) end_lock_lost(done.lost);
    } else {
      counters_.lease_renewal_failures.add();
      POPGATE_LOG(kWarn, "lease_renewal_failed").str("error", done.error);
    }
  }
}

void Shard::release_lock(Connection& c) noexcept {
  ++shard_requests_inflight_;
  c.session->collect_end(end_retrieved_, end_kept_);
  pg(c).release_maildrop(shard_tag(ShardTag::kRelease), c.session->tenant_id(), c.session->user_id(),
                         holder(c), storage::SessionEnd{end_retrieved_, end_kept_}, now_);
}

// Runs `act` on each open POP3 session whose id renewal listed; pumps the
// ones it acted on (act returns true) so that what they were told goes out.
template <class Act>
void Shard::for_each_listed_session(const std::vector<int64_t>& ids, Act act) noexcept {
  table_.for_each_active([&](Connection& c) {
    if (c.closing || c.lingering || c.phase != Phase::kSession) return;
    if (std::find(ids.begin(), ids.end(), c.session_id) == ids.end()) return;
    if (act(c)) pump(c);
  });
}

// An administrator asked (popgate-admin kick) to end these sessions; they
// are told so and closed without UPDATE at the next renewal (lease/3).
void Shard::kick_sessions(const std::vector<int64_t>& ids) noexcept {
  for_each_listed_session(ids, [&](Connection& c) {
    POPGATE_LOG(kInfo, "session_kicked").str("peer", c.peer_text()).str("user", c.session->login());
    c.session->handle_kick(now_);
    return true;
  });
}

// Renewal found these sessions' lock rows gone. One that still believes it
// holds its maildrop ends without UPDATE: another session may have it now.
// (One whose QUIT already deleted the row has ended or is answering QUIT;
// an UPDATE under way checks the lock itself and deletes nothing without.)
void Shard::end_lock_lost(const std::vector<int64_t>& ids) noexcept {
  for_each_listed_session(ids, [&](Connection& c) {
    if (!c.session->holds_maildrop() || c.session->state() != pop3::Session::State::kTransaction) {
      return false;
    }
    POPGATE_LOG(kWarn, "maildrop_lock_lost").str("peer", c.peer_text()).str("user", c.session->login());
    c.session->handle_lock_lost(now_);
    return true;
  });
}

// Each cluster renews (and reports kicks and lost locks for) the sessions
// whose locks it holds.
void Shard::renew_leases() noexcept {
  for (uint8_t cluster = 0; cluster < pgs_.size(); ++cluster) {
    renew_ids_.clear();
    table_.for_each_active([this, cluster](Connection& c) {
      if (c.session && c.cluster == cluster && c.session->holds_maildrop()) renew_ids_.push_back(c.session_id);
    });
    if (renew_ids_.empty()) continue;
    ++shard_requests_inflight_;
    pgs_[cluster]->renew_leases(shard_tag(ShardTag::kRenew), opts_.instance_id, renew_ids_, now_);
  }
}

// ---- Limits --------------------------------------------------------------------------

// Every failed login, whatever the mechanism: the delay before its answer
// grows per client address, and an address that keeps failing is cut off.
void Shard::on_auth_failure(Connection& c) noexcept {
  if (c.tenant_slot != UINT32_MAX) tenants_.at(c.tenant_slot).logins_failed.add();
  // The user and tenant session slots were taken when the user was looked
  // up, to bound the checks in flight. A failed check must not keep them:
  // else anyone could hold a user's sessions_per_user_max slots (or a
  // tenant's) with wrong passwords and lock the owner out. A retry on this
  // connection takes them again.
  const SharedLimits& lim = opts_.limits;
  if (c.user_counted && lim.sessions_per_user != nullptr) lim.sessions_per_user->release(*c.user_counted);
  if (c.tenant_counted && lim.sessions_per_tenant != nullptr) lim.sessions_per_tenant->release(*c.tenant_counted);
  c.user_counted.reset();
  c.tenant_counted.reset();
  if (!c.address_key || opts_.limits.login_failures == nullptr) return;
  const limits::LoginFailureState st = opts_.limits.login_failures->record_failure(*c.address_key, now_);
  const bool cut_off = st.failures >= threshold(&LimitThresholds::failures_per_address_max);
  if (cut_off) {
    counters_.limit_address_cut_off.add();
    POPGATE_LOG(kWarn, "address_cut_off").str("peer", c.peer_text()).unum("failures", st.failures);
  }
  c.session->set_auth_failure_delay(st.delay, cut_off);
}

void Shard::release_limits(Connection& c) noexcept {
  const SharedLimits& lim = opts_.limits;
  if (c.address_counted && lim.connections_per_address != nullptr) {
    lim.connections_per_address->release(*c.address_key);
  }
  if (c.user_counted && lim.sessions_per_user != nullptr) lim.sessions_per_user->release(*c.user_counted);
  if (c.tenant_counted && lim.sessions_per_tenant != nullptr) lim.sessions_per_tenant->release(*c.tenant_counted);
  c.address_counted = false;
  c.user_counted.reset();
  c.tenant_counted.reset();
}

// ---- KDF answers ---------------------------------------------------------------------

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
        // Remember it (keyed by the stored hash: a new password misses).
        if (opts_.verify_cache_entries > 0 && !c->verify.password_hash.empty()) {
          verify_cache_.insert(c->verify.password_hash, c->verify.password, now_);
        }
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
    c->verify = pop3::Request{};
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
