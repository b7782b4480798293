// Session: one POP3 conversation, sans I/O. RFC 1939 with CAPA, RESP-CODES,
// AUTH-RESP-CODE, PIPELINING, LOGIN-DELAY and EXPIRE (RFC 2449, 3206), SASL
// AUTH (RFC 5034), STLS (RFC 2595), UTF8 (RFC 6856) and APOP.
//
// Bytes, store replies and `now` go in; reply bytes, at most one request at a
// time, a deadline and "close" come out. It never reads a clock, a socket or a
// database, and never does cryptography: password checks, SCRAM steps, bearer
// tokens and APOP digests are requests answered from outside. So every path
// runs in unit tests as a transcript against a fake store and a fake clock.
//
// Flow control: the session takes input only while it can act on it (no
// request outstanding, no multi-line reply still streaming, room for a status
// line). handle_input() returns how much it used; the caller keeps the rest
// and offers it again later. Multi-line replies are produced into one fixed
// output block as it drains, so a session never buffers a whole listing or
// message.
//
// Must not know: sockets, rings, TLS, SQL, threads, crypto.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/pop3/command.h"
#include "server/pop3/counters.h"
#include "server/pop3/dot_stuffer.h"
#include "server/pop3/limits.h"
#include "server/pop3/line_reader.h"
#include "server/pop3/output_buffer.h"
#include "server/pop3/replies.h"

namespace popgate::pop3 {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// Ways to log in. A bit set names the enabled ones.
enum Mechanism : uint32_t {
  kMechUser = 1U << 0,  // USER/PASS
  kMechApop = 1U << 1,
  kMechPlain = 1U << 2,
  kMechLogin = 1U << 3,
  kMechScramSha256 = 1U << 4,
  kMechOauthBearer = 1U << 5,
  kMechXoauth2 = 1U << 6,
};
inline constexpr uint32_t kMechAll = (1U << 7) - 1;
// "USER", "APOP", "PLAIN", "LOGIN", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2".
[[nodiscard]] std::string_view mechanism_name(Mechanism m) noexcept;
// Position of a mechanism in the list above (0..6), for counter arrays; and back.
[[nodiscard]] size_t mechanism_index(Mechanism m) noexcept;
[[nodiscard]] Mechanism mechanism_at(size_t index) noexcept;
// Case-insensitive; 0 when unknown.
[[nodiscard]] Mechanism mechanism_from_name(std::string_view name) noexcept;
// A space-separated list (as tenants store it); unknown names are ignored;
// an empty list means 0.
[[nodiscard]] uint32_t parse_mechanism_list(std::string_view list) noexcept;

struct SessionConfig {
  // Autologout before login; may be short (a minute by default).
  std::chrono::milliseconds login_idle_timeout{60'000};
  // Autologout after login; never below kIdleTimeoutMin (RFC 1939).
  std::chrono::milliseconds idle_timeout{kIdleTimeoutMin};
  // A failed login is answered only after this delay (the shard may pass a
  // longer one per client address).
  std::chrono::milliseconds auth_failure_delay{1'000};
  // How long a closing session may take to flush its last reply.
  std::chrono::milliseconds close_linger{5'000};
  // Octets of a message body asked of the store at a time.
  uint32_t body_chunk_bytes = 256 * 1024;
  // Enabled ways to log in (Mechanism bits); tenants may narrow them.
  uint32_t mechanisms = kMechUser | kMechPlain | kMechLogin | kMechScramSha256;
  // USER/PASS, PLAIN and LOGIN on an unencrypted connection of this
  // listener. Bearer tokens are never accepted in clear.
  bool allow_cleartext_login = true;
  // STLS is offered (a plain listener with TLS configured).
  bool tls_available = false;
  // APOP is offered: the greeting carries a timestamp banner.
  bool apop = false;
  // CAPA before login (USER suffix: the tenant's value applies after login).
  int64_t capa_login_delay_s = 0;
  int64_t capa_expire_days = -1;  // -1 = NEVER
  // "IMPLEMENTATION <text>" in CAPA; empty hides it.
  std::string implementation = "popgate";
};

// The maildrop as fixed at login: numbering, sizes and UIDLs hold for the
// whole session. Structure of arrays, in message_id order; msn i+1 is index i.
struct Snapshot {
  std::vector<int64_t> message_ids;
  std::vector<uint32_t> sizes;      // octets, CRLF form, before stuffing
  std::vector<uint32_t> uidl_ends;  // UIDL i is arena[ends[i-1] (or 0), ends[i])
  std::string uidl_arena;

  [[nodiscard]] size_t count() const noexcept { return message_ids.size(); }
  [[nodiscard]] std::string_view uidl(size_t index) const noexcept {
    const uint32_t begin = index == 0 ? 0 : uidl_ends[index - 1];
    return std::string_view(uidl_arena).substr(begin, uidl_ends[index] - begin);
  }
};

// What a user lookup found. Views are read during the call only.
struct UserInfo {
  int64_t tenant_id = 0;
  int64_t user_id = 0;
  std::string_view password_hash;
  std::string_view scram_credential;  // empty: none
  std::string_view apop_secret;       // empty: no APOP for this user
  int64_t since_last_login_s = -1;    // -1: never
  int64_t login_delay_s = 0;          // tenant policy
  int64_t expire_days = -1;           // -1 = NEVER
  bool require_tls = false;
  uint32_t mechanisms = 0;            // Mechanism bits; 0 = all enabled
  bool hide_deleted = false;          // delete mode 'hide'
};

// What one session did, for its logout log line.
struct SessionStats {
  uint32_t commands = 0;
  uint32_t retr = 0;
  uint64_t retr_bytes = 0;
  uint32_t top = 0;
  uint32_t dele = 0;
};

// The newest UIDLs a session leaves in the maildrop, for the UIDL-change
// detector; a sample, not a list.
inline constexpr size_t kKeptUidlsMax = 8;

enum class RequestKind : uint8_t {
  kNone,
  kLookupUser,      // login
  kVerifyPassword,  // password_hash (empty: unknown user), password
  kOpenMaildrop,    // tenant_id, user_id: lock + snapshot
  kFetchBody,       // tenant_id, user_id, message_id, offset, length
  kCommitUpdate,    // tenant_id, user_id, message_ids, hide, retrieved_ids,
                    // kept_uidls: delete (or hide) + record + unlock
  kScramStart,      // data = client-first-message -> step kOk + user name
  kScramChallenge,  // data = credential ('' unknown user) -> kOk + server-first
  kScramFinish,     // data = client-final-message -> kOk + server-final
  kVerifyBearer,    // mechanism, data = client response -> kOk + user name,
                    // or kFailed + error text to send as a challenge
  kVerifyApop,      // banner, data = digest, secret -> kOk / kFailed
};

// Views point into the session and stay valid until the matching handle_*
// call. Exactly one reply is expected for each request.
struct Request {
  RequestKind kind = RequestKind::kNone;
  std::string_view login;
  std::string_view password;
  std::string_view password_hash;
  std::string_view data;     // SASL / APOP payload
  std::string_view banner;   // APOP
  std::string_view secret;   // APOP
  Mechanism mechanism = kMechUser;
  int64_t tenant_id = 0;
  int64_t user_id = 0;
  int64_t message_id = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  std::span<const int64_t> message_ids;
  std::span<const int64_t> retrieved_ids;
  std::string_view kept_uidls;  // space-separated
  bool hide = false;
};

enum class PasswordCheck : uint8_t { kMatch, kMismatch, kUnavailable };
enum class AuthStep : uint8_t { kOk, kFailed, kUnavailable };

// How a session ended, for the logout log line and counters.
enum class EndReason : uint8_t {
  kOpen,           // not ended
  kQuit,           // QUIT (after UPDATE, if in TRANSACTION)
  kPeerClosed,     // EOF or reset before QUIT: no UPDATE
  kAutologout,     // idle timeout
  kBadCommands,    // kBadCommandsMax
  kAuthFailures,   // kAuthFailuresMax
  kFlood,          // kInputDiscardBytesMax
  kShutdown,       // server stopping
  kStreamAborted,  // body fetch failed mid-reply
  kStalled,        // peer stopped reading
  kRefused,        // refused before the greeting (a limit)
  kTlsFailed,      // the TLS layer failed
  kKicked,         // an administrator ended it
  kLockLost,       // its maildrop lock row vanished (failover, manual delete)
};
inline constexpr size_t kEndReasons = static_cast<size_t>(EndReason::kLockLost) + 1;
[[nodiscard]] std::string_view end_reason_name(EndReason reason) noexcept;

enum class CloseMode : uint8_t {
  kOpen,        // keep going
  kAfterFlush,  // send what is pending, then close
  kNow,         // close without flushing (stalled peer, broken stream)
};

class Session {
 public:
  // RFC 1939 states; kDone once UPDATE has committed.
  enum class State : uint8_t { kAuthorization, kTransaction, kUpdate, kDone };

  Session(const SessionConfig& config, BufferPool& pool, Counters& counters);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // ---- Start (exactly one of these first) ------------------------------
  // Writes the greeting. `secure`: the connection is already encrypted
  // (implicit TLS, or TLS ended at a trusted proxy). `apop_banner` is the
  // RFC 1939 timestamp ("<...>") when APOP is offered.
  void start(TimePoint now, bool secure, std::string_view apop_banner = {});
  // Answers -ERR with `code` and closes (a connection limit, say).
  void refuse(RespCode code, std::string_view text, TimePoint now);

  // ---- Inputs ----------------------------------------------------------
  // Network bytes (plaintext). Returns how many were used; offer the rest
  // again once wants_input() is true. After STLS, the rest of the bytes
  // received with it are consumed and dropped: they must never run as
  // commands (plaintext injection, RFC 2595 / CVE-2011-0411).
  [[nodiscard]] size_t handle_input(std::string_view bytes, TimePoint now);
  // The peer sent EOF (or the connection failed): no UPDATE.
  void handle_peer_closed(TimePoint now) noexcept;
  // Call when now >= deadline().
  void handle_timer(TimePoint now);
  // `bytes` from the front of pending_output() were sent.
  void handle_output_sent(size_t bytes, TimePoint now);
  // The server is stopping: end without UPDATE. A multi-line reply under
  // way is finished first, then -ERR [SYS/TEMP]; an UPDATE under way too.
  void handle_shutdown(TimePoint now);
  // An administrator ended this session (popgate-admin kick): as for a
  // shutdown, no UPDATE.
  void handle_kick(TimePoint now);
  // Lease renewal found this session's lock row gone: another session may
  // already have the maildrop, so this one ends as for a kick, without
  // UPDATE (an UPDATE under way finishes: it checks the lock itself).
  void handle_lock_lost(TimePoint now);
  // The TLS handshake that STLS asked for completed: the conversation
  // starts over (RFC 2595 section 4: forget what was said in clear).
  void handle_tls_started(TimePoint now);

  // Replies to request(), one per request.
  void handle_user_found(const UserInfo& user, TimePoint now);
  void handle_user_lookup_failed(StoreStatus status, TimePoint now);
  void handle_password_checked(PasswordCheck result, TimePoint now);
  void handle_auth_step(AuthStep result, std::string_view data, TimePoint now);
  void handle_maildrop_opened(StoreStatus status, Snapshot&& snapshot, TimePoint now);
  // Instead of the next login step: a limit (sessions, login rate) says no.
  // Valid while a login request is outstanding.
  void handle_login_refused(RespCode code, std::string_view text, TimePoint now);
  // A login just failed (any mechanism): true once per failure. The caller
  // may then set how long the answer is held back (per client address) and
  // whether the connection ends after it (an abusive address).
  [[nodiscard]] bool take_auth_failure() noexcept;
  void set_auth_failure_delay(std::chrono::milliseconds delay, bool close_after) noexcept;
  // A piece of the body asked for, starting at the requested offset. Returns
  // how much was used; offer the rest again once wants_body_bytes() is true.
  // An empty kOk piece means the body ended early (a broken store).
  [[nodiscard]] size_t handle_body_chunk(StoreStatus status, std::string_view bytes,
                                         TimePoint now);
  void handle_update_committed(StoreStatus status, uint64_t deleted, TimePoint now);

  // ---- Outputs ---------------------------------------------------------
  [[nodiscard]] std::string_view pending_output() const noexcept { return out_.pending(); }
  // Marks pending_output() as handed to the kernel: it will not move.
  void begin_send() noexcept { out_.begin_send(); }
  [[nodiscard]] bool sending() const noexcept { return out_.sending(); }
  // A new request, once; nullptr when there is none.
  [[nodiscard]] const Request* take_request() noexcept;
  [[nodiscard]] TimePoint deadline() const noexcept;
  [[nodiscard]] bool wants_input() const noexcept;
  [[nodiscard]] bool wants_body_bytes() const noexcept;
  // The body fetch this session will most likely ask for next, so that the
  // shard may start it early (read-ahead), as a kFetchBody request equal to
  // the one request_body_chunk() would issue: once all of a RETR's body was
  // asked for, the whole of the next undeleted message in the direction the
  // client RETRs in, when it is at most `message_bytes_max` octets (and one
  // chunk). False when there is none (a body still being fetched, TOP,
  // outside TRANSACTION, no RETR yet, the last message). Never a further
  // chunk of a large body: that would double the memory a big RETR holds.
  [[nodiscard]] bool predict_fetch(uint32_t message_bytes_max, Request* out) const noexcept;
  // The same for the next several messages, in the order the client will
  // likely ask for them: the ids and sizes of up to ids.size() whole
  // undeleted messages (each fetched as offset 0, length its size, for
  // tenant_id() and user_id()) of at most `message_bytes_max` octets each
  // and `batch_bytes_max` together, stopping before the first larger one.
  // Empty messages are skipped (a RETR of one fetches nothing). `sizes` is
  // as long as `ids`. Returns how many it wrote.
  [[nodiscard]] size_t predict_fetches(uint32_t message_bytes_max, uint64_t batch_bytes_max,
                                       std::span<int64_t> ids, std::span<uint32_t> sizes) const noexcept;
  // STLS was accepted: once pending_output() is sent, drop any input still
  // held and start the TLS handshake; then call handle_tls_started().
  [[nodiscard]] bool wants_tls() const noexcept { return stls_ == Stls::kAccepted; }
  [[nodiscard]] CloseMode close_mode() const noexcept { return close_; }
  [[nodiscard]] EndReason end_reason() const noexcept { return end_; }
  // The maildrop lock is (or may still be) held: whoever ends the session
  // must release it.
  [[nodiscard]] bool holds_maildrop() const noexcept { return holds_maildrop_; }
  [[nodiscard]] int64_t tenant_id() const noexcept { return tenant_id_; }
  [[nodiscard]] int64_t user_id() const noexcept { return user_id_; }
  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] bool in_transaction() const noexcept { return state_ == State::kTransaction; }
  // The maildrop was opened at some point (TRANSACTION, UPDATE or after).
  [[nodiscard]] bool logged_in() const noexcept { return state_ != State::kAuthorization; }
  [[nodiscard]] bool secure() const noexcept { return secure_; }
  // A failed login's answer is being held back.
  [[nodiscard]] bool delaying() const noexcept { return pending_ == Pending::kAuthDelay; }
  // The mechanism of the login under way or done.
  [[nodiscard]] Mechanism mechanism() const noexcept { return mechanism_; }
  [[nodiscard]] const SessionStats& stats() const noexcept { return stats_; }
  // For a session ending without UPDATE: the messages it retrieved and the
  // kept-UIDL sample (what UPDATE records too).
  void collect_end(std::vector<int64_t>& retrieved, std::string& kept_uidls) const;

  // For tests and logs.
  [[nodiscard]] std::string_view login() const noexcept { return {user_.data(), user_len_}; }
  [[nodiscard]] uint32_t bad_commands() const noexcept { return bad_commands_; }

 private:
  enum class Pending : uint8_t {
    kNone, kLookupUser, kVerifyPassword, kAuthStep, kOpenMaildrop, kFetchBody, kCommit, kAuthDelay,
  };
  enum class Stream : uint8_t { kNone, kList, kUidl, kBody, kBodyFinish };
  // Which client line a SASL exchange waits for.
  enum class Sasl : uint8_t {
    kNone,
    kPlainResponse,   // PLAIN without an initial response
    kLoginUser,       // LOGIN: user name
    kLoginPassword,   // LOGIN: password
    kScramFirst,      // SCRAM without an initial response
    kScramFinal,      // SCRAM client-final-message
    kScramAck,        // empty response after the server-final message
    kBearerResponse,  // OAUTHBEARER / XOAUTH2 without an initial response
    kBearerErrorAck,  // dummy response after a bearer error challenge
  };
  enum class Stls : uint8_t { kNone, kAccepted };

  using Handler = void (Session::*)(std::string_view args, TimePoint now);
  struct CommandSpec {
    Verb verb;
    uint8_t states;  // bit per State
    Handler handler;
  };
  static const std::array<CommandSpec, kVerbCount - 1> kCommands;

  // session.cc: dispatch, replies, limits, timers
  void dispatch(std::string_view line, TimePoint now);
  void handle_line_event(LineReader::Event event, TimePoint now);
  bool ready_for_command() const noexcept;
  void reply(std::string_view line);
  void reply_ok(std::string_view text);
  void reply_err(std::string_view text);
  void reply_err(RespCode code, std::string_view text);
  void command_failed(Verb verb, RespCode code, std::string_view text);
  void bad_command(std::string_view text);
  void close_after_flush(TimePoint now, EndReason reason) noexcept;
  void close_now(EndReason reason) noexcept;
  void touch(TimePoint now) noexcept;
  void issue(const Request& request, Pending pending) noexcept;
  void expect(Pending pending) noexcept;
  void handle_shutdown_reply(TimePoint now);
  void end_by_server(TimePoint now, std::string_view text, EndReason reason);

  // session_auth.cc: USER, PASS, APOP, QUIT, CAPA, NOOP, STLS, UTF8 and the
  // login sequence shared by every mechanism
  void cmd_user(std::string_view args, TimePoint now);
  void cmd_pass(std::string_view args, TimePoint now);
  void cmd_apop(std::string_view args, TimePoint now);
  void cmd_quit(std::string_view args, TimePoint now);
  void cmd_capa(std::string_view args, TimePoint now);
  void cmd_noop(std::string_view args, TimePoint now);
  void cmd_stls(std::string_view args, TimePoint now);
  void cmd_utf8(std::string_view args, TimePoint now);
  [[nodiscard]] bool mechanism_offered(Mechanism m) const noexcept;
  [[nodiscard]] bool cleartext_ok() const noexcept { return secure_ || config_.allow_cleartext_login; }
  [[nodiscard]] bool accept_login_name(std::string_view name, Verb verb);
  [[nodiscard]] bool set_credentials(std::string_view login, std::string_view password, Verb verb);
  void begin_password_login(Mechanism m);
  void open_after_authentication(TimePoint now);
  void fail_login(TimePoint now);
  void finish_auth_failure(TimePoint now);
  void login_refused(RespCode code, std::string_view text);
  void wipe_password() noexcept;

  // session_sasl.cc: AUTH and its continuation lines
  void cmd_auth(std::string_view args, TimePoint now);
  void handle_sasl_line(std::string_view line, TimePoint now);
  void sasl_response(std::string_view decoded, TimePoint now);
  void sasl_challenge(std::string_view raw);
  void sasl_plain(std::string_view message, TimePoint now);
  void sasl_abort(std::string_view text);
  void end_sasl() noexcept;

  // session_listing.cc: the TRANSACTION commands and streaming
  void cmd_stat(std::string_view args, TimePoint now);
  void cmd_list(std::string_view args, TimePoint now);
  void cmd_uidl(std::string_view args, TimePoint now);
  void cmd_retr(std::string_view args, TimePoint now);
  void cmd_top(std::string_view args, TimePoint now);
  void cmd_dele(std::string_view args, TimePoint now);
  void cmd_rset(std::string_view args, TimePoint now);
  bool parse_msn(std::string_view arg, size_t* index);
  bool single_msn_arg(std::string_view args, bool* present, size_t* index);
  void start_body(size_t index, uint64_t top_lines, TimePoint now);
  void request_body_chunk() noexcept;
  void continue_stream(TimePoint now);
  void finish_body(TimePoint now);
  void count_auth(AuthOutcome o) noexcept;
  // After a shutdown or kick arrived mid-reply: once the reply is complete,
  // say -ERR [SYS/TEMP] and close.
  void end_after_reply(TimePoint now);
  void observe_command(DurationHistogram& h, TimePoint now) noexcept;
  void reply_maildrop_summary();
  [[nodiscard]] bool is_deleted(size_t index) const noexcept {
    return (deleted_[index / 64] >> (index % 64)) & 1U;
  }

  const SessionConfig& config_;
  Counters& counters_;
  OutputBuffer out_;
  LineReader reader_;

  State state_ = State::kAuthorization;
  Pending pending_ = Pending::kNone;
  Stream stream_ = Stream::kNone;
  Sasl sasl_ = Sasl::kNone;
  Stls stls_ = Stls::kNone;
  CloseMode close_ = CloseMode::kOpen;
  EndReason end_ = EndReason::kOpen;
  Mechanism mechanism_ = kMechUser;
  Verb current_verb_ = Verb::kUnknown;  // of the line being handled
  bool started_ = false;
  bool request_ready_ = false;
  bool holds_maildrop_ = false;
  bool shutting_down_ = false;
  bool unknown_user_ = false;
  bool secure_ = false;
  bool utf8_ = false;
  bool auth_failed_ = false;        // for take_auth_failure()
  bool close_after_failure_ = false;
  uint32_t bad_commands_ = 0;
  uint32_t auth_failures_ = 0;

  TimePoint last_now_;  // of the last input, for closes started without a clock
  TimePoint idle_deadline_;
  TimePoint delay_until_;
  TimePoint failed_at_;
  TimePoint command_started_;  // of the command whose reply is being produced
  TimePoint login_started_;
  TimePoint linger_deadline_;
  Request request_;

  std::array<char, kLoginBytesMax> user_{};
  size_t user_len_ = 0;
  std::array<char, kPasswordBytesMax> pass_{};
  size_t pass_len_ = 0;
  std::string password_hash_;  // or the APOP secret, while it is checked
  std::string apop_banner_;
  std::string sasl_text_;      // decoded SASL data, challenges; wiped after
  std::string_view end_text_ = "server shutting down";  // a server-side end's reply
  EndReason end_reason_pending_ = EndReason::kShutdown;

  // The tenant's policy, from the lookup; CAPA reports it after login.
  int64_t login_delay_s_ = 0;
  int64_t expire_days_ = -1;
  int64_t since_last_login_s_ = -1;
  bool policy_require_tls_ = false;
  bool policy_hide_deleted_ = false;
  uint32_t policy_mechanisms_ = 0;
  RequestKind step_ = RequestKind::kNone;  // the outstanding kAuthStep request

  int64_t tenant_id_ = 0;
  int64_t user_id_ = 0;
  Snapshot snapshot_;
  std::vector<uint64_t> deleted_;    // bit per message
  std::vector<uint64_t> retrieved_;  // bit per message: RETR sent it whole
  size_t deleted_count_ = 0;
  uint64_t deleted_bytes_ = 0;
  uint64_t total_bytes_ = 0;
  std::vector<int64_t> commit_ids_;
  std::vector<int64_t> retrieved_ids_;
  std::string kept_uidls_;
  SessionStats stats_;

  // Streaming state (LIST/UIDL cursor, or the body being sent).
  size_t cursor_ = 0;
  size_t body_index_ = 0;
  uint64_t body_offset_ = 0;   // octets of the body consumed so far
  uint64_t body_fetched_ = 0;  // octets of the body asked for so far
  bool body_started_ = false;  // the +OK line went out
  bool body_is_top_ = false;
  bool retr_descending_ = false;  // the last RETR was of an earlier message
  DotStuffer stuffer_;
};

}  // namespace popgate::pop3
