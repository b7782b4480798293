// Failure translation for the storage module: SQLSTATE codes and libpq
// messages become a Status and a short, secret-free reason string. This is
// the only place that knows which SQLSTATEs are worth retrying.
// Must not know: connections, requests, sessions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "storage/pg_client.h"

namespace popgate::storage {

// Longest Completion::error we produce, in bytes. Reasons are for logs: the
// first line of a server or libpq message is enough and stays bounded.
inline constexpr std::size_t kErrorBytesMax = 160;

// kTemporary for failures that a retry (on another connection, or later) can
// cure: connection exceptions (class 08), serialization failure and deadlock
// (40001, 40P01), insufficient resources (class 53), operator intervention
// 57014 (statement_timeout / cancel) and 57P01..57P03 (shutdown, crash,
// cannot connect now), lock not available (55P03). kPermanent otherwise.
// An empty code means libpq itself failed (lost connection, out of memory on
// the client), which is kTemporary.
[[nodiscard]] Status classify_sqlstate(std::string_view sqlstate) noexcept;

// out = prefix + the first line of message, cut to kErrorBytesMax. Server
// messages name objects, never parameter values we send (ids, hashes, bodies).
void assign_error(std::string& out, std::string_view prefix, std::string_view message) noexcept;

}  // namespace popgate::storage
