#include "bench/common/dataset.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "bench/common/crc32c.h"

namespace popgate::bench {
namespace {

// Sizes of the groups. Full: what bench/compare.py measures; the issue's
// targets fix list (10,000 and 100,000), retr_small (20 KB), retr_big
// (1 MiB, 25 MiB) and idle (50,000). Quick: the same shapes, fewer users
// (and 20,000 messages instead of 100,000: a harness smoke, not a result).
// Smoke: a few messages per group for the CI test (no 25 MiB, no 10,000).
// RETR maildrops are big (8 MiB of 20 KB messages, 32 MiB of 1 MiB ones) so
// that a session's one argon2id login is small next to its RETRs: the
// scenario measures message streaming, not logins.
constexpr uint32_t kSmallBytes = 20 * 1024;
constexpr uint32_t kBigBytes = 1024 * 1024;
constexpr uint32_t kHugeBytes = 25 * 1024 * 1024;

constexpr std::array<GroupSpec, kGroupCount> kFull{{
    {Group::kPoll, "poll", 1000, 8, 2 * 1024, 40 * 1024},
    {Group::kList, "list", 4, 10'000, 600, 3000},
    {Group::kListHuge, "listhuge", 1, 100'000, 512, 700},
    {Group::kSmall, "small", 48, 400, kSmallBytes, kSmallBytes},
    {Group::kBig, "big", 16, 32, kBigBytes, kBigBytes},
    {Group::kHuge, "huge", 2, 2, kHugeBytes, kHugeBytes},
    {Group::kIdle, "idle", 50'000, 1, 1024, 1024},
}};
constexpr std::array<GroupSpec, kGroupCount> kQuick{{
    {Group::kPoll, "poll", 64, 8, 2 * 1024, 40 * 1024},
    {Group::kList, "list", 2, 10'000, 600, 3000},
    {Group::kListHuge, "listhuge", 1, 20'000, 512, 700},
    {Group::kSmall, "small", 16, 100, kSmallBytes, kSmallBytes},
    {Group::kBig, "big", 4, 8, kBigBytes, kBigBytes},
    {Group::kHuge, "huge", 1, 1, kHugeBytes, kHugeBytes},
    {Group::kIdle, "idle", 2'000, 1, 1024, 1024},
}};
constexpr std::array<GroupSpec, kGroupCount> kSmoke{{
    {Group::kPoll, "poll", 8, 4, 2 * 1024, 8 * 1024},
    {Group::kList, "list", 1, 40, 600, 3000},
    {Group::kListHuge, "listhuge", 1, 60, 512, 700},
    {Group::kSmall, "small", 4, 3, kSmallBytes, kSmallBytes},
    {Group::kBig, "big", 1, 1, kBigBytes, kBigBytes},
    {Group::kHuge, "huge", 0, 0, kHugeBytes, kHugeBytes},
    {Group::kIdle, "idle", 16, 1, 1024, 1024},
}};

// Maildir timestamps start here and grow by one second per message.
constexpr uint64_t kMaildirEpoch = 1'700'000'000;
// Body lines: up to this many characters before CRLF (RFC 5322's 78 limit).
constexpr uint32_t kLineCharsMax = 76;

// splitmix64: tiny, fast and good enough to make text.
struct Rng {
  uint64_t state;
  uint64_t next() noexcept {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

uint64_t seed_of(const GroupSpec& spec, uint32_t user, uint32_t index) noexcept {
  return (uint64_t(spec.group) << 56) ^ (uint64_t(user) << 32) ^ index ^ 0x5EED5EED00000000ULL;
}

constexpr std::string_view kAlphabet =
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 ,;:-";

void append_line_chars(std::string& out, Rng& rng, uint32_t chars) {
  uint64_t bits = 0;
  uint32_t left = 0;
  for (uint32_t i = 0; i < chars; ++i) {
    if (left == 0) {
      bits = rng.next();
      left = 8;
    }
    out.push_back(kAlphabet[(bits & 0xFFU) % kAlphabet.size()]);
    bits >>= 8;
    --left;
  }
}

// One body line of `chars` characters plus CRLF; the first character is
// chosen so that stuffing cases come up often.
void append_body_line(std::string& out, Rng& rng, uint32_t chars) {
  if (chars > 0) {
    const uint64_t pick = rng.next() % 16;
    if (pick == 0) {
      out.push_back('.');  // ".text": stuffed to "..text"
      --chars;
    } else if (pick == 1 && chars == 1) {
      out.push_back('.');  // "." alone: stuffed to "..", not the terminator
      chars = 0;
    } else if (pick == 2 && chars >= 2) {
      out.append("..");
      chars -= 2;
    }
  }
  append_line_chars(out, rng, chars);
  out.append("\r\n");
}

}  // namespace

const GroupSpec& group_spec(Group group, DatasetSize size) noexcept {
  const auto i = static_cast<size_t>(group);
  switch (size) {
    case DatasetSize::kQuick: return kQuick[i];
    case DatasetSize::kSmoke: return kSmoke[i];
    case DatasetSize::kFull: break;
  }
  return kFull[i];
}

std::optional<Group> group_from_name(std::string_view name) noexcept {
  for (const GroupSpec& g : kFull) {
    if (g.name == name) return g.group;
  }
  return std::nullopt;
}

std::optional<DatasetSize> dataset_size_from_name(std::string_view name) noexcept {
  if (name == "full") return DatasetSize::kFull;
  if (name == "quick") return DatasetSize::kQuick;
  if (name == "smoke") return DatasetSize::kSmoke;
  return std::nullopt;
}

std::string_view dataset_size_name(DatasetSize size) noexcept {
  switch (size) {
    case DatasetSize::kQuick: return "quick";
    case DatasetSize::kSmoke: return "smoke";
    case DatasetSize::kFull: break;
  }
  return "full";
}

std::string local_part(const GroupSpec& spec, uint32_t user_index) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%05u", user_index);
  std::string out(spec.name);
  out += '-';
  out += digits;
  return out;
}

std::string login_name(const GroupSpec& spec, uint32_t user_index) {
  std::string out = local_part(spec, user_index);
  out += '@';
  out += kBenchDomain;
  return out;
}

uint32_t message_size(const GroupSpec& spec, uint32_t user_index, uint32_t index) noexcept {
  if (spec.size_max <= spec.size_min) return spec.size_min;
  Rng rng{seed_of(spec, user_index, index) ^ 0x51AE51AEULL};
  return spec.size_min + uint32_t(rng.next() % (spec.size_max - spec.size_min + 1));
}

std::string make_message(const GroupSpec& spec, uint32_t user_index, uint32_t index) {
  const uint32_t size = std::max(message_size(spec, user_index, index), kMessageBytesMin);
  std::string out;
  out.reserve(size);
  const std::string login = login_name(spec, user_index);
  char subject[96];
  std::snprintf(subject, sizeof subject, "Subject: bench %.*s user %u message %u\r\n",
                int(spec.name.size()), spec.name.data(), user_index, index);
  out += "Return-Path: <sender@bench.test>\r\n";
  out += "From: Bench Sender <sender@bench.test>\r\n";
  out += "To: <" + login + ">\r\n";
  out += subject;
  char message_id[96];
  std::snprintf(message_id, sizeof message_id, "Message-ID: <%.*s.%u.%u@bench.test>\r\n",
                int(spec.name.size()), spec.name.data(), user_index, index);
  out += message_id;
  out += "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=us-ascii\r\n";
  out += "\r\n";

  Rng rng{seed_of(spec, user_index, index)};
  // Octets left for body lines before the trailer. Never leave exactly one:
  // no line is one octet long.
  size_t left = size - out.size() - kTrailerBytes;
  while (left > 0) {
    uint32_t chars = uint32_t(rng.next() % (kLineCharsMax + 1));
    if (left <= kLineCharsMax + 2) {
      chars = uint32_t(left - 2);
    } else if (left - (chars + 2) == 1) {
      ++chars;
    }
    append_body_line(out, rng, chars);
    left -= chars + 2;
  }
  const uint32_t crc = crc32c(out);
  char trailer[kTrailerBytes + 1];
  std::snprintf(trailer, sizeof trailer, "%.*s%08x\r\n", int(kTrailerPrefix.size()),
                kTrailerPrefix.data(), crc);
  out += trailer;
  return out;
}

std::string maildir_file_name(uint32_t index, uint32_t size) {
  char name[96];
  std::snprintf(name, sizeof name, "%llu.M%uP1.bench,S=%u,W=%u:2,",
                static_cast<unsigned long long>(kMaildirEpoch + index), index, size, size);
  return name;
}

bool trailer_matches(std::string_view last_line, uint32_t crc_before) noexcept {
  if (last_line.size() != kTrailerPrefix.size() + 8) return false;
  if (last_line.substr(0, kTrailerPrefix.size()) != kTrailerPrefix) return false;
  char want[9];
  std::snprintf(want, sizeof want, "%08x", crc_before);
  return last_line.substr(kTrailerPrefix.size()) == std::string_view(want, 8);
}

}  // namespace popgate::bench
