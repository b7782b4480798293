// popgate-bench-pgread: what PostgreSQL alone can hand a plain libpq client
// for the same messages popgate serves: the baseline of the retr_big target
// ("at least 80% of the rate at which PostgreSQL alone hands the same bytes
// to a plain libpq client").
//
// N connections, one thread each, one query in flight per connection, each
// reading every message of a dataset group in turn (bench/common/dataset.h),
// with binary results. Two ways:
//   whole:  SELECT body                       (a plain client)
//   chunks: SELECT substring(body FROM o FOR n) per session.body_chunk_bytes
//           (popgate's own access pattern, prepared, as storage/ does it)
// Prints human text and one JSON line.
#include <libpq-fe.h>

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/dataset.h"
#include "bench/common/proc_stats.h"

namespace {

using namespace popgate::bench;
using Clock = std::chrono::steady_clock;

struct Message {
  std::string tenant_id;
  std::string user_id;
  std::string message_id;
  uint64_t size = 0;
};

PGconn* connect_or_die(const std::string& dsn) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::cerr << "popgate-bench-pgread: " << PQerrorMessage(c);
    std::exit(1);
  }
  // Reads the bench tenant's rows as an operator: row-level security (schema v6).
  PQclear(PQexec(c, "SET popgate.all_tenants = on"));
  return c;
}

std::vector<Message> list_messages(const std::string& dsn, const GroupSpec& spec) {
  PGconn* c = connect_or_die(dsn);
  const std::string like = std::string(spec.name) + "-%";
  const std::string domain(kBenchDomain);
  const char* values[2] = {like.c_str(), domain.c_str()};
  PGresult* r = PQexecParams(
      c,
      "SELECT m.tenant_id, m.user_id, m.message_id, m.size_bytes FROM popgate.messages m"
      " JOIN popgate.users u USING (tenant_id, user_id) JOIN popgate.tenants t USING (tenant_id)"
      " WHERE u.local_part LIKE $1 AND t.domain = $2 ORDER BY m.user_id, m.message_id",
      2, nullptr, values, nullptr, nullptr, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::cerr << "popgate-bench-pgread: " << PQresultErrorMessage(r);
    std::exit(1);
  }
  std::vector<Message> out;
  for (int i = 0; i < PQntuples(r); ++i) {
    out.push_back(Message{PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                          std::strtoull(PQgetvalue(r, i, 3), nullptr, 10)});
  }
  PQclear(r);
  PQfinish(c);
  return out;
}

struct Totals {
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> queries{0};
  std::atomic<uint64_t> errors{0};
};

void reader(const std::string& dsn, const std::vector<Message>& all, size_t first, size_t step,
            bool chunks, uint32_t chunk_bytes, const std::atomic<bool>& stop, Totals& t) {
  PGconn* c = connect_or_die(dsn);
  const char* sql = chunks ? "SELECT substring(body FROM $4 FOR $5) FROM popgate.messages"
                             " WHERE tenant_id = $1 AND user_id = $2 AND message_id = $3"
                           : "SELECT body FROM popgate.messages"
                             " WHERE tenant_id = $1 AND user_id = $2 AND message_id = $3";
  PGresult* p = PQprepare(c, "q", sql, chunks ? 5 : 3, nullptr);
  PQclear(p);
  for (size_t i = first; !stop.load(std::memory_order_relaxed); i += step) {
    const Message& m = all[i % all.size()];
    uint64_t got = 0;
    for (uint64_t off = 0; off < m.size && !stop.load(std::memory_order_relaxed);) {
      const uint64_t want = chunks ? std::min<uint64_t>(chunk_bytes, m.size - off) : m.size;
      const std::string from = std::to_string(off + 1);
      const std::string len = std::to_string(want);
      const char* values[5] = {m.tenant_id.c_str(), m.user_id.c_str(), m.message_id.c_str(),
                               from.c_str(), len.c_str()};
      PGresult* r = PQexecPrepared(c, "q", chunks ? 5 : 3, values, nullptr, nullptr, 1);
      t.queries.fetch_add(1, std::memory_order_relaxed);
      if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        t.errors.fetch_add(1, std::memory_order_relaxed);
        PQclear(r);
        break;
      }
      const auto n = uint64_t(PQgetlength(r, 0, 0));
      PQclear(r);
      got += n;
      off += n;
      t.bytes.fetch_add(n, std::memory_order_relaxed);
      if (!chunks || n == 0) break;
    }
    if (got == m.size) t.messages.fetch_add(1, std::memory_order_relaxed);
  }
  PQfinish(c);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"popgate-bench-pgread: PostgreSQL alone serving message bodies to libpq"};
  std::string dsn;
  std::string dataset = "full";
  std::string group = "big";
  std::string mode = "whole";
  unsigned connections = 8;
  uint32_t chunk_bytes = 256 * 1024;  // session.body_chunk_bytes default
  double seconds = 5;
  pid_t db_pid = 0;
  app.add_option("--dsn", dsn, "libpq connection string")->required();
  app.add_option("--dataset", dataset, "full, quick or smoke");
  app.add_option("--group", group, "dataset group whose messages to read");
  app.add_option("--mode", mode, "whole (SELECT body) or chunks (substring per chunk)")
      ->check(CLI::IsMember({"whole", "chunks"}));
  app.add_option("--connections", connections, "connections (one thread and one query in flight each)");
  app.add_option("--chunk-bytes", chunk_bytes, "chunks mode: octets per query");
  app.add_option("--duration-s", seconds, "measuring window")->check(CLI::Range(0.1, 600.0));
  app.add_option("--db-pid", db_pid, "postmaster pid: report PostgreSQL's CPU");
  CLI11_PARSE(app, argc, argv);
  const auto size = dataset_size_from_name(dataset);
  const auto g = group_from_name(group);
  if (!size || !g) {
    std::cerr << "popgate-bench-pgread: bad --dataset or --group\n";
    return 2;
  }
  const std::vector<Message> all = list_messages(dsn, group_spec(*g, *size));
  if (all.empty()) {
    std::cerr << "popgate-bench-pgread: no messages in group " << group << "\n";
    return 1;
  }
  Totals t;
  std::atomic<bool> stop{false};
  const double db0 = db_pid > 0 ? tree_cpu(db_pid).seconds : 0;
  const double me0 = self_cpu_seconds();
  std::vector<std::thread> threads;
  const size_t stride = std::max<size_t>(1, all.size() / connections);
  for (unsigned i = 0; i < connections; ++i) {
    threads.emplace_back(reader, std::cref(dsn), std::cref(all), size_t(i) * stride,
                         size_t(1), mode == "chunks", chunk_bytes, std::cref(stop), std::ref(t));
  }
  // Warm: let every connection prepare and start.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const uint64_t b0 = t.bytes.load();
  const uint64_t m0 = t.messages.load();
  const uint64_t q0 = t.queries.load();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t b1 = t.bytes.load();
  const uint64_t m1 = t.messages.load();
  const uint64_t q1 = t.queries.load();
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  const double db1 = db_pid > 0 ? tree_cpu(db_pid).seconds : 0;
  const double me1 = self_cpu_seconds();
  stop = true;
  for (auto& th : threads) th.join();
  const double mbps = double(b1 - b0) / 1e6 / dt;
  std::printf("pgread %s, group %s, %u connections: %.1f MB/s, %.1f messages/s, %.1f queries/s, "
              "client %.2f cores, postgres %.2f cores, errors %llu\n",
              mode.c_str(), group.c_str(), connections, mbps, double(m1 - m0) / dt,
              double(q1 - q0) / dt, (me1 - me0) / dt, (db1 - db0) / dt,
              static_cast<unsigned long long>(t.errors.load()));
  std::printf(
      "{\"tool\":\"popgate-bench-pgread\",\"mode\":\"%s\",\"group\":\"%s\",\"connections\":%u,"
      "\"chunk_bytes\":%u,\"window_s\":%.3f,\"mb_per_s\":%.3f,\"messages_per_s\":%.2f,"
      "\"queries_per_s\":%.2f,\"cpu_s\":{\"client\":%.3f,\"db\":%.3f},\"errors\":%llu}\n",
      mode.c_str(), group.c_str(), connections, chunk_bytes, dt, mbps, double(m1 - m0) / dt,
      double(q1 - q0) / dt, me1 - me0, db1 - db0, static_cast<unsigned long long>(t.errors.load()));
  return t.errors.load() == 0 ? 0 : 1;
}
