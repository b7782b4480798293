// The SQL popgate runs on the data path: each prepared statement's name,
// text and parameter types; which statements each request kind pipelines
// before its Sync; how parameters are encoded; and how each statement's
// result is folded into a Completion.
//
// Every statement returns its columns in binary format (int8 as 8 bytes
// big-endian, text and bytea as raw bytes), so nothing is parsed from text
// and a body chunk reaches the caller without a copy or a hex decode.
// Must not know: connections, epoll, queues.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "storage/pg_client.h"

namespace popgate::storage {

enum class StatementId : uint8_t {
  kLookupUser,
  kLockMaildrop,
  kListMaildrop,
  kFetchBody,
  kCommitUpdate,
  kReleaseMaildrop,
  kRenewLeases,
  kDeliver,
  // The first statement of every plan: declares, for the transaction of
  // the request only, the tenant whose rows it may see (row-level
  // security, migration 0006). By tenant id ($1), by domain ($1, before a
  // login knows its tenant), or cross-tenant (lease renewal, which is keyed
  // on its own instance).
  kScopeTenant,
  kScopeDomain,
  kScopeAllTenants,
  kFetchBodies,
  kCommitWithoutDeletions,
};
inline constexpr std::size_t kStatementCount = 13;

// Most parameters of any statement.
inline constexpr std::size_t kParamsMax = 8;

struct StatementDef {
  const char* name;  // prepared statement name, "popgate_*"
  const char* sql;
  int param_count;
  std::array<unsigned, kParamsMax> param_types;  // type OIDs
};

[[nodiscard]] const StatementDef& statement_def(StatementId id) noexcept;

// The statements a request runs, in order, as one pipeline segment (one Sync,
// so one implicit transaction).
struct StatementPlan {
  std::array<StatementId, 3> ids;
  uint8_t count;
};
[[nodiscard]] StatementPlan statement_plan(RequestKind kind) noexcept;

// kCommitUpdate with nothing to delete or hide (most QUITs): the same end
// of session, lock released only while still held, retrievals and kept
// UIDLs recorded, without the DELETE on messages, whose statement-level
// trigger (used_bytes, migration 0004) runs even when it deletes nothing.
[[nodiscard]] StatementPlan commit_without_deletions_plan() noexcept;

// The row-level security scope that opens every plan (not a data statement).
[[nodiscard]] constexpr bool is_scope_statement(StatementId id) noexcept {
  return id == StatementId::kScopeTenant || id == StatementId::kScopeDomain ||
         id == StatementId::kScopeAllTenants;
}

// Statements whose rows libpq hands over one at a time (single-row mode):
// the maildrop listing, whose result can hold 100,000 rows and more. In the
// default mode libpq buffers the whole result twice (its input buffer, then
// the PGresult) before the first row can be decoded, several times the
// snapshot built from it; row by row, the snapshot is the only copy.
[[nodiscard]] constexpr bool is_row_by_row_statement(StatementId id) noexcept {
  return id == StatementId::kListMaildrop;
}

// The most rows a listing reserves room for from the lock statement's count
// (a hint: more rows still fit, by growing).
inline constexpr uint64_t kListingHintMax = 10'000'000;

// Bytes of parameter data kept inside a request: room for every int8/int4
// parameter plus the longest text (a 255-octet login or a 64-byte instance id).
// Also room for kKeptUidlsMax UIDLs of 70 octets (the kept-UIDL sample).
inline constexpr std::size_t kParamInlineBytesMax = 1024;

// One request's parameters, shared by all statements of its plan (a
// statement uses the first param_count of them). Lives inside a pooled
// request, so after warm-up encoding allocates nothing (spill keeps its
// capacity).
class ParamBlock {
 public:
  void clear() noexcept;
  void add_int8(int64_t value) noexcept;
  void add_int4(int32_t value) noexcept;
  // Binary-format text: raw bytes with a length, no terminator needed.
  // Returns false (nothing added) when the inline space is exhausted.
  [[nodiscard]] bool add_text(std::string_view text) noexcept;
  // Text-format bigint[] literal "{1,2,3}" (at most kArraysMax per request).
  void add_int8_array(std::span<const int64_t> ids) noexcept;
  // Binary bytes that stay in the caller's memory (a message body): the
  // caller keeps them alive until the request completes.
  void add_borrowed_bytes(std::string_view bytes) noexcept;
  static constexpr std::size_t kArraysMax = 2;

  // Pointers for PQsendQueryPrepared, valid until the block changes.
  struct View {
    std::array<const char*, kParamsMax> values;
    std::array<int, kParamsMax> lengths;
    std::array<int, kParamsMax> formats;
  };
  void view(View& out) const noexcept;
  [[nodiscard]] std::size_t count() const noexcept { return count_; }

 private:
  static constexpr uint16_t kSpilled = UINT16_MAX;    // offset marker: in spills_
  static constexpr uint16_t kBorrowed = UINT16_MAX - 1;  // offset marker: borrowed_

  std::array<char, kParamInlineBytesMax> inline_{};
  std::array<uint16_t, kParamsMax> offsets_{};
  std::array<int, kParamsMax> lengths_{};
  std::array<int, kParamsMax> formats_{};
  std::size_t count_ = 0;
  std::size_t used_ = 0;
  std::array<std::string, kArraysMax> spills_;
  std::array<uint8_t, kParamsMax> spill_of_{};  // which spill a kSpilled param uses
  std::size_t spills_used_ = 0;
  std::string_view borrowed_;
};

// Folds one statement's result into `c`. The first failure decides c.status;
// results of later statements in the same request are then ignored, as are
// they once a statement found kNotFound or kInUse. `res` may be a pipeline-
// aborted marker, or one row of a row-by-row statement (PGRES_SINGLE_TUPLE;
// the statement's zero-row PGRES_TUPLES_OK ends it). Returns true when `c`
// took ownership of `res` (fetch_body keeps it so body_bytes can point into
// it); otherwise the caller frees it.
[[nodiscard]] bool apply_statement_result(StatementId id, pg_result* res,
                                          Completion& c) noexcept;

// Clears the payload and records a failure (status must not be kOk).
void fail_completion(Completion& c, Status status, std::string_view prefix,
                     std::string_view message) noexcept;

}  // namespace popgate::storage
