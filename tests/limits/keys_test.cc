// Keys, the keyed hash, and the striped table under every limit table
// (checked against a plain map, with and without eviction).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <map>
#include <random>
#include <set>

#include "server/limits/keys.h"
#include "server/limits/siphash.h"
#include "server/limits/striped_table.h"
#include "tests/limits/limits_test_support.h"

namespace popgate::limits {
namespace {

using testing::test_hasher;

std::optional<AddressKey> key_of(const char* text, unsigned prefix = kIpv6ClientPrefixBits) {
  sockaddr_in sin{};
  sockaddr_in6 sin6{};
  if (inet_pton(AF_INET, text, &sin.sin_addr) == 1) {
    sin.sin_family = AF_INET;
    return address_key(reinterpret_cast<const sockaddr*>(&sin), prefix);
  }
  EXPECT_EQ(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1) << text;
  sin6.sin6_family = AF_INET6;
  return address_key(reinterpret_cast<const sockaddr*>(&sin6), prefix);
}

AddressKey bytes_of(const char* ipv6) {
  AddressKey key;
  EXPECT_EQ(inet_pton(AF_INET6, ipv6, key.bytes.data()), 1) << ipv6;
  return key;
}

TEST(SipHashTest, ReferenceVectors) {
  // Key 00..0f; the paper's appendix A example and the first vector.
  const uint64_t k0 = 0x0706050403020100ULL;
  const uint64_t k1 = 0x0f0e0d0c0b0a0908ULL;
  uint8_t message[15];
  for (uint8_t i = 0; i < sizeof(message); ++i) message[i] = i;
  EXPECT_EQ(siphash24(k0, k1, message, 15), 0xa129ca6149be45e5ULL);
  EXPECT_EQ(siphash24(k0, k1, message, 0), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(siphash24(k0, k1, message, 8), 0x93f5f5799a932462ULL);
}

TEST(AddressKeyTest, Ipv4IsMapped) {
  EXPECT_EQ(key_of("192.0.2.1"), bytes_of("::ffff:192.0.2.1"));
  EXPECT_EQ(key_of("::ffff:192.0.2.1"), bytes_of("::ffff:192.0.2.1"));
  EXPECT_EQ(key_of("192.0.2.1"), key_of("::ffff:192.0.2.1"));
  EXPECT_NE(key_of("192.0.2.1"), key_of("192.0.2.2"));
}

TEST(AddressKeyTest, Ipv6IsCutToItsPrefix) {
  EXPECT_EQ(key_of("2001:db8:1:2:aaaa::1"), bytes_of("2001:db8:1:2::"));
  EXPECT_EQ(key_of("2001:db8:1:2:aaaa::1"), key_of("2001:db8:1:2:bbbb::2"));
  EXPECT_NE(key_of("2001:db8:1:2::1"), key_of("2001:db8:1:3::1"));
  EXPECT_EQ(key_of("2001:db8:1:2::1", 128), bytes_of("2001:db8:1:2::1"));
  EXPECT_EQ(key_of("2001:db8:1:2::1", 200), bytes_of("2001:db8:1:2::1"));
  EXPECT_EQ(key_of("2001:db8:1:2::1", 48), bytes_of("2001:db8:1::"));
  EXPECT_EQ(key_of("2001:db8:ffff::1", 33), bytes_of("2001:db8:8000::"));
  EXPECT_EQ(key_of("2001:db8::1", 0), bytes_of("::"));
  // Mapped IPv4 keeps every bit whatever the IPv6 prefix.
  EXPECT_EQ(key_of("::ffff:192.0.2.1", 64), bytes_of("::ffff:192.0.2.1"));
}

TEST(AddressKeyTest, NonInetHasNoKey) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  EXPECT_FALSE(address_key(reinterpret_cast<const sockaddr*>(&sun)).has_value());
  EXPECT_FALSE(address_key(nullptr).has_value());
}

TEST(KeyHasherTest, DeterministicPerSecretAndDifferentAcrossSecrets) {
  const KeyHasher a = test_hasher();
  const KeyHasher b(1, 2);
  const UserKey user{7, 42};
  EXPECT_EQ(a(user), test_hasher()(user));
  EXPECT_NE(a(user), b(user));
  EXPECT_NE(a(UserKey{7, 42}), a(UserKey{42, 7}));
  EXPECT_NE(a(TenantKey{1}), a(TenantKey{2}));
  // Two random secrets differ (2^-128 chance of a false failure).
  EXPECT_NE(KeyHasher::random()(user), KeyHasher::random()(user));
}

struct Value {
  int64_t v = 0;
};
using Table = StripedTable<TenantKey, Value>;

// Random inserts, updates and erases against std::map, with many keys per
// stripe so probe clusters wrap and backward shifts move entries.
TEST(StripedTableTest, AgreesWithAMapWithoutEviction) {
  Table table(1, test_hasher());  // smallest stripes: full quickly
  std::map<int64_t, int64_t> model;
  std::mt19937_64 rng(12345);
  const auto never = [](const Value&) noexcept -> uint64_t { return 0; };
  uint64_t full = 0;
  for (int op = 0; op < 200'000; ++op) {
    const TenantKey key{static_cast<int64_t>(rng() % 3000)};
    const int64_t value = static_cast<int64_t>(rng());
    if (rng() % 3 == 0) {
      table.with_key(key, [](auto& locked) noexcept { locked.erase(); });
      model.erase(key.tenant_id);
    } else {
      const bool stored = table.with_key(key, [&](auto& locked) noexcept {
        bool inserted = false;
        Value* slot = locked.find_or_insert(never, &inserted);
        if (slot == nullptr) return false;
        slot->v = value;
        return true;
      });
      if (stored) {
        model[key.tenant_id] = value;
      } else {
        ++full;
        EXPECT_EQ(model.count(key.tenant_id), 0u);
      }
    }
    if (op % 5000 == 0) {
      ASSERT_EQ(table.size(), model.size());
      for (const auto& [id, v] : model) {
        const int64_t found = table.with_key(TenantKey{id}, [](auto& locked) noexcept {
          const Value* slot = locked.find();
          return slot != nullptr ? slot->v : -1;
        });
        ASSERT_EQ(found, v) << "key " << id << " at op " << op;
      }
    }
  }
  EXPECT_GT(full, 0u) << "the test meant to fill stripes";
  EXPECT_EQ(table.counters().table_full, full);
  EXPECT_EQ(table.counters().evictions, 0u);
  EXPECT_LE(table.size(), Table::kStripes * table.stripe_entries_max());
}

// With eviction: the victim is the highest-scoring entry near the key, and
// exactly one entry goes.
TEST(StripedTableTest, EvictsExactlyOneVictimWhenFull) {
  Table table(1, test_hasher());
  const std::vector<TenantKey> keys = testing::keys_in_stripe<TenantKey>(
      table, 5, table.stripe_entries_max() + 200,
      [](uint32_t i) { return TenantKey{static_cast<int64_t>(i)}; });
  std::set<int64_t> present;
  const auto by_value = [](const Value& other) noexcept -> uint64_t {
    return static_cast<uint64_t>(other.v);
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    const size_t before = table.size();
    const bool stored = table.with_key(keys[i], [&](auto& locked) noexcept {
      bool inserted = false;
      Value* slot = locked.find_or_insert(by_value, &inserted);
      if (slot == nullptr) return false;
      slot->v = static_cast<int64_t>(i) + 1;  // older entries score lower
      return inserted;
    });
    if (!stored) continue;  // nothing in its window was evictable
    present.insert(keys[i].tenant_id);
    if (before == table.stripe_entries_max()) {
      ASSERT_EQ(table.size(), before);
      size_t missing = 0;
      for (const int64_t id : std::set<int64_t>(present)) {
        const bool found = table.with_key(
            TenantKey{id}, [](auto& locked) noexcept { return locked.find() != nullptr; });
        if (!found) {
          ++missing;
          present.erase(id);
        }
      }
      ASSERT_EQ(missing, 1u) << "insert " << i;
    }
  }
  EXPECT_EQ(table.size(), table.stripe_entries_max());
  EXPECT_GT(table.counters().evictions, 0u);
}

TEST(StripedTableTest, RejectsZeroCapacity) {
  EXPECT_THROW(Table(0, test_hasher()), std::invalid_argument);
}

}  // namespace
}  // namespace popgate::limits
