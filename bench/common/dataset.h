// The benchmark dataset: users and messages, fixed by a name and an index so
// that popgate (PostgreSQL), Dovecot (Maildir), the in-memory reference
// responder and the load generator all agree on them without sharing files.
//
// Every message is CRLF text of an exact size. Its last line is a trailer,
//   X-Bench-CRC32C: xxxxxxxx
// the CRC-32C of every octet before that line, so the load generator checks
// the content of each RETR, not only its length. Bodies contain lines that
// start with '.', a line that is only '.', and empty lines, so byte-stuffing
// is exercised on every message.
// Must not know: sockets, PostgreSQL, Dovecot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace popgate::bench {

// Every bench user is <group>-<index, 5 digits>@kBenchDomain with this password.
inline constexpr std::string_view kBenchDomain = "bench.test";
inline constexpr std::string_view kBenchPassword = "bench-Passw0rd";

// Bumped whenever the groups or the message text change, so that cached
// Maildirs (popgate-bench-data's stamps) are rewritten.
inline constexpr int kDatasetVersion = 2;

inline constexpr std::string_view kTrailerPrefix = "X-Bench-CRC32C: ";
inline constexpr size_t kTrailerBytes = kTrailerPrefix.size() + 8 + 2;  // hex + CRLF
// Smallest message make_message() produces: headers, one line, trailer.
inline constexpr uint32_t kMessageBytesMin = 512;

// One group of users per kind of maildrop a scenario needs.
enum class Group : uint8_t {
  kPoll,      // login, login_tls, poll: many users, a few mixed-size messages
  kList,      // list: 10,000 messages each
  kListHuge,  // list --once: 100,000 messages
  kSmall,     // retr_small: 20 KB messages
  kBig,       // retr_big: 1 MiB messages
  kHuge,      // retr_big: 25 MiB messages
  kIdle,      // idle: one small message each
};
inline constexpr size_t kGroupCount = 7;

// How much data: the full comparison, the quick harness run, the CI smoke.
enum class DatasetSize : uint8_t { kFull, kQuick, kSmoke };

struct GroupSpec {
  Group group = Group::kPoll;
  std::string_view name;  // login prefix
  uint32_t users = 0;
  uint32_t messages_per_user = 0;
  uint32_t size_min = 0;  // octets, exact CRLF form
  uint32_t size_max = 0;  // equal to size_min: every message has that size
};

[[nodiscard]] const GroupSpec& group_spec(Group group, DatasetSize size) noexcept;
[[nodiscard]] std::optional<Group> group_from_name(std::string_view name) noexcept;
[[nodiscard]] std::optional<DatasetSize> dataset_size_from_name(std::string_view name) noexcept;
[[nodiscard]] std::string_view dataset_size_name(DatasetSize size) noexcept;

// "poll-00012@bench.test" (user_index is 0-based).
[[nodiscard]] std::string login_name(const GroupSpec& spec, uint32_t user_index);
// "poll-00012": the login without the domain.
[[nodiscard]] std::string local_part(const GroupSpec& spec, uint32_t user_index);

// Size of message `index` (0-based, delivery order) of a user.
[[nodiscard]] uint32_t message_size(const GroupSpec& spec, uint32_t user_index,
                                    uint32_t index) noexcept;
// The message itself: exactly message_size() octets of CRLF text ending in
// the trailer.
[[nodiscard]] std::string make_message(const GroupSpec& spec, uint32_t user_index,
                                       uint32_t index);
// A Maildir file name that sorts (by Dovecot's rules: leading timestamp) in
// delivery order and carries the size, so Dovecot needs no stat() for it.
[[nodiscard]] std::string maildir_file_name(uint32_t index, uint32_t size);

// Whether `last_line` (without CRLF) is a trailer matching `crc_before`, the
// CRC-32C (final form) of everything before that line.
[[nodiscard]] bool trailer_matches(std::string_view last_line, uint32_t crc_before) noexcept;

}  // namespace popgate::bench
