// Protocol limits of the POP3 core, each with its unit. Every limit that ends
// or refuses something has a counter in counters.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace popgate::pop3 {

// Longest command line accepted, not counting the CRLF (RFC 2449 section 4
// asks for at least 255 octets). A longer line gets -ERR and counts as bad.
inline constexpr size_t kCommandLineBytesMax = 255;
// Longest line during a SASL exchange, and of an AUTH command carrying an
// initial response (RFC 5034 section 4 lets them exceed the command limit:
// an OAuth bearer token is often 1-2 KiB, base64 adds a third).
inline constexpr size_t kSaslLineBytesMax = 16 * 1024;
// Once a line is too long, its remainder is discarded up to the next LF. A
// client that sends more than this without any LF is flooding: closed.
inline constexpr size_t kInputDiscardBytesMax = 64 * 1024;
// Unknown, malformed or out-of-state commands tolerated per session; the
// next one closes the session.
inline constexpr uint32_t kBadCommandsMax = 10;
// Failed logins tolerated per session before it is closed.
inline constexpr uint32_t kAuthFailuresMax = 3;
// RFC 2449: a status line is at most 512 octets including CRLF.
inline constexpr size_t kReplyLineBytesMax = 512;
// RFC 1939: a unique-id is 1 to 70 characters in 0x21..0x7E.
inline constexpr size_t kUidlBytesMax = 70;
// RFC 1939 section 3: the autologout timer after login is at least 10 minutes.
inline constexpr std::chrono::milliseconds kIdleTimeoutMin{10 * 60 * 1000};
// Longest login name and password kept for the login (they arrive on one
// command line, so the line limit bounds them anyway).
inline constexpr size_t kLoginBytesMax = kCommandLineBytesMax;
inline constexpr size_t kPasswordBytesMax = kCommandLineBytesMax;

}  // namespace popgate::pop3
