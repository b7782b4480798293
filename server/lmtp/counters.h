// Per-shard LMTP counters. Written by exactly one thread (the shard that owns
// the sessions), read by the metrics scraper: relaxed atomics (pop3::Counter),
// no locks. Summed across shards at scrape time.
// Must not know: how they are exported.
#pragma once

#include <array>

#include "server/lmtp/command.h"
#include "server/pop3/counters.h"  // pop3::Counter

namespace popgate::lmtp {

using pop3::Counter;

struct Counters {
  // Commands by verb, and how many of them were answered 4xx or 5xx.
  std::array<Counter, kVerbCount> commands{};
  std::array<Counter, kVerbCount> command_errors{};

  Counter sessions_opened;
  Counter sessions_closed;

  // Limits (limits.h); each bump is one hit.
  Counter line_too_long;          // kCommandLineBytesMax: 500 5.5.2
  Counter nul_in_line;            // NUL octet in a command line: 500 5.5.2
  Counter input_flood;            // kInputDiscardBytesMax: 421, closed
  Counter bad_commands;           // every 500, 501 and 503
  Counter bad_command_limit;      // kBadCommandsMax reached: 421, closed
  Counter idle_timeout;           // idle between commands: 421, closed
  Counter data_idle_timeout;      // idle during DATA: 421, closed
  Counter recipient_limit;        // kRecipientsMax: 452 4.5.3
  Counter size_declared_too_big;  // MAIL ... SIZE= over the limit: 552 5.3.4
  Counter size_exceeded;          // message over the limit: 552 5.3.4 per recipient
  Counter data_line_over_rfc;     // data lines over kDataLineBytesRfc (accepted)
  Counter data_line_too_long;     // messages with a line over kDataLineBytesMax: refused
  Counter data_overrun;           // kDataOverrunBytesMax: 552 5.3.4, closed
  Counter smtputf8_required;      // non-ASCII address without SMTPUTF8: 553 5.6.7
  Counter stalled;                // output did not move for an idle period: cut

  // Transactions.
  Counter transactions;           // MAIL accepted
  Counter recipients_accepted;    // RCPT 250
  Counter recipients_unknown;     // RCPT 550 5.1.1
  Counter recipients_temporary;   // RCPT 451: directory unavailable
  Counter messages_received;      // terminating dot reached, message within limits
  Counter message_bytes;          // their normalised sizes (without Return-Path)

  // Per recipient, after the dot.
  Counter delivered;              // 250
  Counter delivered_bytes;        // stored octets (with Return-Path)
  Counter over_quota;             // 552 5.2.2 / 452 4.2.2
  Counter recipient_gone;         // 550 5.1.1: removed between RCPT and delivery
  Counter delivery_temporary;     // 451 4.3.0: store unavailable
  Counter shutdown_closes;        // sessions ended by server shutdown
};

}  // namespace popgate::lmtp
