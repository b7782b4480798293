// popgate-bench-data: materialises the benchmark dataset (bench/common/
// dataset.h) for the servers under test.
//
//   popgate-bench-data maildir --dataset D --out DIR [--groups a,b]
//       One Maildir per user: DIR/<login>/Maildir/{cur,new,tmp}, messages in
//       cur/ named so that Dovecot numbers them in delivery order. A stamp
//       file per group makes a second run a no-op.
//   popgate-bench-data load --dataset D --dsn DSN [--groups a,b]
//       Stores every message in popgate's database, in delivery order, in
//       the shape `popgate-admin deliver` gives them (CRLF body, size_bytes
//       = octet_length(body), uidl = popgate.new_uidl()), batched in one
//       INSERT per user and batch. The users must exist.
//   popgate-bench-data users --dataset D [--groups a,b]
//       Prints the logins, one a line.
#include <libpq-fe.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/common/dataset.h"

namespace popgate::bench {
namespace {

// One INSERT carries at most this many octets or messages.
constexpr size_t kBatchBytesMax = 32u << 20;
constexpr size_t kBatchMessagesMax = 2000;
constexpr uint32_t kByteaOid = 17;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<Group> parse_groups(const std::string& list) {
  std::vector<Group> out;
  if (list.empty()) {
    for (size_t i = 0; i < kGroupCount; ++i) out.push_back(Group(i));
    return out;
  }
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto g = group_from_name(item);
    if (!g) throw Failure("unknown group '" + item + "'");
    out.push_back(*g);
  }
  return out;
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    throw Failure("mkdir " + path + ": " + std::strerror(errno));
  }
}

void write_maildirs(DatasetSize size, const std::vector<Group>& groups, const std::string& out) {
  make_dir(out);
  for (const Group g : groups) {
    const GroupSpec& spec = group_spec(g, size);
    // The group's shape is in the name: a dataset whose sizes changed is
    // written again rather than served stale.
    const std::string stamp = out + "/.complete-" + std::string(spec.name) + "-" +
                              std::string(dataset_size_name(size)) + "-" +
                              std::to_string(spec.users) + "x" +
                              std::to_string(spec.messages_per_user) + "-v" +
                              std::to_string(kDatasetVersion);
    if (::access(stamp.c_str(), F_OK) == 0) continue;
    for (uint32_t u = 0; u < spec.users; ++u) {
      const std::string home = out + "/" + login_name(spec, u);
      // From scratch: no message or Dovecot index of an older dataset.
      std::filesystem::remove_all(home);
      make_dir(home);
      make_dir(home + "/Maildir");
      for (const char* sub : {"/cur", "/new", "/tmp"}) make_dir(home + "/Maildir" + sub);
      for (uint32_t i = 0; i < spec.messages_per_user; ++i) {
        const std::string text = make_message(spec, u, i);
        const std::string path =
            home + "/Maildir/cur/" + maildir_file_name(i, uint32_t(text.size()));
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f.write(text.data(), std::streamsize(text.size()));
        if (!f) throw Failure("cannot write " + path);
      }
    }
    std::ofstream(stamp) << "done\n";
    std::cerr << "maildir: group " << spec.name << ": " << spec.users << " users x "
              << spec.messages_per_user << " messages\n";
  }
}

void put_u32(std::string& b, uint32_t v) {
  const uint32_t n = htonl(v);
  b.append(reinterpret_cast<const char*>(&n), 4);
}

// PostgreSQL's binary array format: a one-dimensional bytea[].
std::string bytea_array(const std::vector<std::string>& items) {
  size_t total = 20;
  for (const auto& s : items) total += 4 + s.size();
  std::string b;
  b.reserve(total);
  put_u32(b, 1);          // dimensions
  put_u32(b, 0);          // no NULLs
  put_u32(b, kByteaOid);  // element type
  put_u32(b, uint32_t(items.size()));
  put_u32(b, 1);          // lower bound
  for (const auto& s : items) {
    put_u32(b, uint32_t(s.size()));
    b += s;
  }
  return b;
}

class Db {
 public:
  explicit Db(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) throw Failure(std::string("connect: ") + PQerrorMessage(conn_));
    // Loads every tenant's rows: cross-tenant under row-level security (schema v6).
    PQclear(PQexec(conn_, "SET popgate.all_tenants = on"));
  }
  ~Db() { PQfinish(conn_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  PGresult* exec(const char* sql, int n, const char* const* values, const int* lengths,
                 const int* formats) {
    PGresult* r = PQexecParams(conn_, sql, n, nullptr, values, lengths, formats, 0);
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      const std::string why = PQresultErrorMessage(r);
      PQclear(r);
      throw Failure(why);
    }
    return r;
  }
  void run(const char* sql) { PQclear(exec(sql, 0, nullptr, nullptr, nullptr)); }

 private:
  PGconn* conn_;
};

void load_messages(DatasetSize size, const std::vector<Group>& groups, const std::string& dsn) {
  Db db(dsn);
  constexpr const char* kInsert =
      "INSERT INTO popgate.messages (tenant_id, user_id, uidl, size_bytes, body)"
      " SELECT u.tenant_id, u.user_id, popgate.new_uidl(), octet_length(m.body), m.body"
      " FROM popgate.users u JOIN popgate.tenants t ON t.tenant_id = u.tenant_id,"
      " unnest($2::bytea[]) WITH ORDINALITY AS m(body, n)"
      " WHERE t.domain = $3 AND u.local_part = $1 ORDER BY m.n";
  for (const Group g : groups) {
    const GroupSpec& spec = group_spec(g, size);
    uint64_t stored = 0;
    for (uint32_t u = 0; u < spec.users; ++u) {
      const std::string local = local_part(spec, u);
      db.run("BEGIN");
      {
        const std::string domain(kBenchDomain);
        const char* v2[2] = {local.c_str(), domain.c_str()};
        PGresult* r = db.exec(
            "SELECT count(*) FROM popgate.messages m JOIN popgate.users u USING (tenant_id, user_id)"
            " JOIN popgate.tenants t USING (tenant_id) WHERE u.local_part = $1 AND t.domain = $2",
            2, v2, nullptr, nullptr);
        const long have = std::strtol(PQgetvalue(r, 0, 0), nullptr, 10);
        PQclear(r);
        if (have != 0) {  // loaded before (or by someone else): leave it
          db.run("COMMIT");
          continue;
        }
      }
      std::vector<std::string> batch;
      size_t batch_bytes = 0;
      const auto flush = [&] {
        if (batch.empty()) return;
        const std::string array = bytea_array(batch);
        const std::string domain(kBenchDomain);
        const char* values[3] = {local.c_str(), array.data(), domain.c_str()};
        const int lengths[3] = {0, int(array.size()), 0};
        const int formats[3] = {0, 1, 0};
        PGresult* r = db.exec(kInsert, 3, values, lengths, formats);
        const long n = std::strtol(PQcmdTuples(r), nullptr, 10);
        PQclear(r);
        if (n != long(batch.size())) {
          throw Failure("user " + login_name(spec, u) + " does not exist (create the users first)");
        }
        stored += batch.size();
        batch.clear();
        batch_bytes = 0;
      };
      for (uint32_t i = 0; i < spec.messages_per_user; ++i) {
        batch.push_back(make_message(spec, u, i));
        batch_bytes += batch.back().size();
        if (batch_bytes >= kBatchBytesMax || batch.size() >= kBatchMessagesMax) flush();
      }
      flush();
      db.run("COMMIT");
    }
    std::cerr << "load: group " << spec.name << ": " << stored << " messages stored\n";
  }
}

}  // namespace
}  // namespace popgate::bench

int main(int argc, char** argv) {
  using namespace popgate::bench;
  CLI::App app{"popgate-bench-data: the benchmark dataset as Maildirs or in popgate's database"};
  app.require_subcommand(1);
  std::string dataset = "full";
  std::string groups;
  std::string out;
  std::string dsn;
  auto* maildir = app.add_subcommand("maildir", "write one Maildir per user");
  auto* load = app.add_subcommand("load", "store the messages in popgate's database");
  auto* users = app.add_subcommand("users", "print the logins");
  for (auto* sub : {maildir, load, users}) {
    sub->add_option("--dataset", dataset, "full, quick or smoke");
    sub->add_option("--groups", groups, "comma-separated groups (default: all)");
  }
  maildir->add_option("--out", out, "directory")->required();
  load->add_option("--dsn", dsn, "libpq connection string")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    const auto size = dataset_size_from_name(dataset);
    if (!size) throw Failure("--dataset: full, quick or smoke");
    const std::vector<Group> list = parse_groups(groups);
    if (maildir->parsed()) write_maildirs(*size, list, out);
    if (load->parsed()) load_messages(*size, list, dsn);
    if (users->parsed()) {
      for (const Group g : list) {
        const GroupSpec& spec = group_spec(g, *size);
        for (uint32_t u = 0; u < spec.users; ++u) std::cout << login_name(spec, u) << "\n";
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "popgate-bench-data: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
