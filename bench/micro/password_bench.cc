// Password verification with and without the cache (server/auth): a full
// {ARGON2ID} check at popgate's default cost (what every login costs without
// the cache, and what Dovecot pays on every login), against a VerifyCache
// hit (what a frequent poller costs once remembered).
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "server/auth/password.h"
#include "server/auth/verify_cache.h"

namespace {

using popgate::auth::VerifyCache;

constexpr std::string_view kPassword = "bench-Passw0rd";
constexpr size_t kCacheEntries = 10'000;  // auth.verify_cache_entries default
constexpr auto kCacheTtl = std::chrono::minutes(5);

const std::string& stored_hash() {
  static const std::string hash = popgate::auth::hash_password(kPassword);
  return hash;
}

void BM_VerifyArgon2id(benchmark::State& state) {
  const std::string& hash = stored_hash();
  for (auto _ : state) {
    benchmark::DoNotOptimize(popgate::auth::verify_password(hash, kPassword));
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_VerifyArgon2id)->Unit(benchmark::kMillisecond);

// A cache as full as the default size, hitting one of its entries.
void BM_VerifyCacheHit(benchmark::State& state) {
  VerifyCache cache(kCacheEntries, kCacheTtl);
  const auto now = VerifyCache::Clock::now();
  std::string hash = stored_hash();
  for (size_t i = 0; i + 1 < kCacheEntries; ++i) {
    cache.insert(hash + std::to_string(i), kPassword, now);
  }
  cache.insert(hash, kPassword, now);
  for (auto _ : state) benchmark::DoNotOptimize(cache.hit(hash, kPassword, now));
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_VerifyCacheHit);

void BM_VerifyCacheMiss(benchmark::State& state) {
  VerifyCache cache(kCacheEntries, kCacheTtl);
  const auto now = VerifyCache::Clock::now();
  const std::string& hash = stored_hash();
  for (auto _ : state) benchmark::DoNotOptimize(cache.hit(hash, "wrong", now));
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_VerifyCacheMiss);

}  // namespace
