// Protocol limits of the LMTP core, each with its unit. Every limit that ends
// or refuses something has a counter in counters.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace popgate::lmtp {

// Longest command line, not counting the CRLF (RFC 5321 4.5.3.1.4: 512
// octets including it). A longer line gets 500 5.5.2 and counts as bad.
inline constexpr size_t kCommandLineBytesMax = 510;
// Once a command line is too long, its remainder is discarded up to the next
// LF. A client that sends more than this without any LF is flooding: 421 and
// closed.
inline constexpr size_t kInputDiscardBytesMax = 64 * 1024;
// Unknown, malformed or out-of-order commands (500, 501, 503) tolerated per
// session; the next one closes it with 421.
inline constexpr uint32_t kBadCommandsMax = 10;
// Accepted recipients per message (RFC 5321 4.5.3.1.8 asks for at least 100).
// More get 452 4.5.3; the client sends them in another transaction.
inline constexpr uint32_t kRecipientsMax = 100;
// A path including its angle brackets (RFC 5321 4.5.3.1.3), so an address
// is at most kPathBytesMax - 2 octets.
inline constexpr size_t kPathBytesMax = 256;
inline constexpr size_t kAddressBytesMax = kPathBytesMax - 2;
// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF.
// Longer lines are accepted (and counted) up to kDataLineBytesMax, the line
// length including its line end; a message with a longer line is refused
// for every recipient (554 5.6.0).
inline constexpr size_t kDataLineBytesRfc = 1000;
inline constexpr size_t kDataLineBytesMax = 64 * 1024;
// Octets a DATA phase may take in beyond the message size limit while it
// looks for the terminating dot of a message it already refused; past that
// the session answers every recipient 552 5.3.4 and closes.
inline constexpr uint64_t kDataOverrunBytesMax = 64 * 1024 * 1024;
// The storage cap on a message (sizes travel as 32-bit signed lengths),
// less room for the Return-Path line. message_bytes_max is clamped to it.
inline constexpr uint64_t kMessageBytesCap = (uint64_t{1} << 31) - 1 - (kPathBytesMax + 16);
// What the body is reserved to when MAIL gave no SIZE (it grows by doubling,
// never past the size limit).
inline constexpr size_t kBodyReserveDefaultBytes = 64 * 1024;
// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including CRLF.
inline constexpr size_t kReplyLineBytesMax = 512;
// Output room kept free before a command is read, and before each reply
// after the final dot: one reply (every reply, LHLO's included, fits in
// kReplyLineBytesMax) and a closing 421 after it (a limit, a shutdown). The
// shard's output blocks must be at least this big.
inline constexpr size_t kCommandReplyBytesMax = 2 * kReplyLineBytesMax;
// The host name shown in the greeting, LHLO and 221/421 replies; longer
// names are cut.
inline constexpr size_t kHostnameBytesMax = 255;

}  // namespace popgate::lmtp
