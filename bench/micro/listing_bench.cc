// LIST and UIDL formatting: a pop3::Session logged in on a big Snapshot
// (10,000 and 100,000 messages, as in the `list` scenario), driven without
// sockets the way tests/pop3/session_alloc_test.cc does it: feed the
// command, drain pending_output() as if the kernel took it all.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "server/pop3/session.h"

namespace {

using namespace popgate::pop3;

constexpr size_t kOutputBlockBytes = 16 * 1024;  // session.output_buffer_bytes default

class LoggedIn {
 public:
  explicit LoggedIn(size_t messages) : pool_(kOutputBlockBytes), session_(config_, pool_, counters_) {
    messages_ = messages;
    session_.start(now_, false);
    run("USER a@x\r\nPASS secret\r\n");
  }

  // Feeds `input`, answers requests, drains every reply. Returns octets out.
  uint64_t run(std::string_view input) {
    uint64_t out = 0;
    size_t used = 0;
    for (;;) {
      bool progress = false;
      if (used < input.size() && session_.wants_input()) {
        const size_t n = session_.handle_input(input.substr(used), now_);
        used += n;
        progress = n > 0;
      }
      if (const Request* r = session_.take_request()) {
        answer(*r);
        progress = true;
      }
      const std::string_view pending = session_.pending_output();
      if (!pending.empty()) {
        session_.begin_send();
        out += pending.size();
        session_.handle_output_sent(pending.size(), now_);
        progress = true;
      }
      if (!progress) return out;
    }
  }

 private:
  void answer(const Request& r) {
    switch (r.kind) {
      case RequestKind::kLookupUser: {
        UserInfo info;
        info.tenant_id = 1;
        info.user_id = 1;
        info.password_hash = "{PLAIN}secret";
        session_.handle_user_found(info, now_);
        return;
      }
      case RequestKind::kVerifyPassword:
        session_.handle_password_checked(PasswordCheck::kMatch, now_);
        return;
      case RequestKind::kOpenMaildrop: {
        Snapshot snap;
        char uidl[32];
        for (size_t i = 0; i < messages_; ++i) {
          snap.message_ids.push_back(int64_t(1000 + i));
          snap.sizes.push_back(uint32_t(600 + (i * 7919) % 2400));
          std::snprintf(uidl, sizeof uidl, "%016llx", static_cast<unsigned long long>(i * 0x9E3779B97F4A7C15ULL));
          snap.uidl_arena += uidl;
          snap.uidl_ends.push_back(uint32_t(snap.uidl_arena.size()));
        }
        session_.handle_maildrop_opened(StoreStatus::kOk, std::move(snap), now_);
        return;
      }
      default:
        return;  // LIST and UIDL need nothing else
    }
  }

  SessionConfig config_;
  BufferPool pool_;
  Counters counters_;
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
  Session session_;
  size_t messages_ = 0;
};

// Arg: messages in the maildrop.
void BM_List(benchmark::State& state) {
  LoggedIn s(size_t(state.range(0)));
  uint64_t bytes = 0;
  for (auto _ : state) bytes += s.run("LIST\r\n");
  state.SetItemsProcessed(int64_t(state.iterations()));
  state.SetBytesProcessed(int64_t(bytes));
  state.counters["entries/s"] = benchmark::Counter(double(state.iterations()) * double(state.range(0)),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_List)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMicrosecond);

void BM_Uidl(benchmark::State& state) {
  LoggedIn s(size_t(state.range(0)));
  uint64_t bytes = 0;
  for (auto _ : state) bytes += s.run("UIDL\r\n");
  state.SetItemsProcessed(int64_t(state.iterations()));
  state.SetBytesProcessed(int64_t(bytes));
  state.counters["entries/s"] = benchmark::Counter(double(state.iterations()) * double(state.range(0)),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Uidl)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMicrosecond);

// A command answered from the snapshot in one line: the per-command floor.
void BM_Stat(benchmark::State& state) {
  LoggedIn s(10'000);
  for (auto _ : state) benchmark::DoNotOptimize(s.run("STAT\r\n"));
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_Stat);

}  // namespace
