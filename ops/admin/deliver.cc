#include "ops/admin/deliver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <pqxx/pqxx>
#include <vector>

#include "ops/admin/lookup.h"
#include "ops/admin/message.h"
#include "ops/admin/names.h"

namespace popgate::admin {
namespace {

constexpr size_t kReadChunkBytes = 1 << 20;
constexpr int kGeneratedUidlAttempts = 5;

// Closes the descriptor unless it is stdin.
class InputFile {
 public:
  explicit InputFile(const std::string& path)
      : name_(path.empty() || path == "-" ? "standard input" : "'" + path + "'"),
        fd_(path.empty() || path == "-" ? STDIN_FILENO
                                        : ::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw UserError("cannot open " + name_ + ": " + std::strerror(errno));
  }
  ~InputFile() {
    if (fd_ != STDIN_FILENO) ::close(fd_);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  int fd_;
};

std::string too_big(const std::string& name) {
  return "message from " + name + " is larger than " + std::to_string(kDeliverMessageBytesMax) +
         " octets (kDeliverMessageBytesMax)";
}

// Room for a regular file's contents plus a little for added CRs.
size_t size_hint(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  const auto bytes = uint64_t(st.st_size);
  return size_t(std::min<uint64_t>(bytes + bytes / 32 + 2, kDeliverMessageBytesMax));
}

struct Stored {
  std::string message_id;
  std::string uidl;
};

Stored insert_once(pqxx::connection_base& db, const Address& address,
                   const pqxx::binarystring& body, const std::string& uidl) {
  pqxx::work tx(db, "deliver");
  const UserRef user = find_user(tx, address);
  const auto row = tx.exec_params1(
      "INSERT INTO popgate.messages (tenant_id, user_id, uidl, size_bytes, body) "
      "VALUES ($1, $2, coalesce(NULLIF($3::text, ''), popgate.new_uidl()), $4, $5) "
      "RETURNING message_id, uidl",
      user.tenant_id, user.user_id, uidl, uint64_t(body.size()), body);
  tx.commit();
  return Stored{row[0].c_str(), row[1].c_str()};
}

Stored insert_message(pqxx::connection_base& db, const Address& address,
                      const pqxx::binarystring& body, const std::optional<std::string>& uidl) {
  for (int attempt = 1;; ++attempt) {
    try {
      return insert_once(db, address, body, uidl.value_or(""));
    } catch (const pqxx::unique_violation&) {
      if (uidl) {
        throw UserError("UIDL '" + *uidl + "' is already used in the maildrop of " +
                        address.login());
      }
      if (attempt == kGeneratedUidlAttempts) throw;  // not luck: report it
    }
  }
}

}  // namespace

std::string read_message(int fd, const std::string& name,
                         const std::function<void(std::string_view)>& on_raw) {
  std::string out;
  out.reserve(size_hint(fd));
  std::vector<char> chunk(kReadChunkBytes);
  CrlfNormalizer normalizer;
  uint64_t raw_bytes = 0;
  for (;;) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UserError("cannot read " + name + ": " + std::strerror(errno));
    if (n == 0) break;
    raw_bytes += uint64_t(n);
    if (on_raw) on_raw(std::string_view(chunk.data(), size_t(n)));
    normalizer.feed(std::string_view(chunk.data(), size_t(n)), out);
    if (out.size() > kDeliverMessageBytesMax) throw UserError(too_big(name));
  }
  if (raw_bytes == 0) throw UserError("empty message from " + name);
  normalizer.finish(out);
  if (out.size() > kDeliverMessageBytesMax) throw UserError(too_big(name));
  return out;
}

std::string normalize_message(std::string_view raw, const std::string& name) {
  if (raw.empty()) throw UserError("empty message from " + name);
  std::string out = normalize_crlf(raw);
  if (out.size() > kDeliverMessageBytesMax) throw UserError(too_big(name));
  return out;
}

int deliver(Context& ctx, const DeliverArgs& args) {
  const Address address = require_address(args.address);
  if (args.uidl) {
    if (auto problem = uidl_problem(*args.uidl); !problem.empty()) throw UserError(problem);
  }
  std::string message;
  {
    const InputFile input(args.file);
    message = read_message(input.fd(), input.name());
  }
  const pqxx::binarystring body(message.data(), message.size());
  std::string().swap(message);  // one copy in memory is enough
  const Stored stored = insert_message(ctx.db(), address, body, args.uidl);
  ctx.out() << "delivered to " << address.login() << ": message_id=" << stored.message_id
            << " size=" << body.size() << " uidl=" << stored.uidl << "\n";
  return kExitOk;
}

}  // namespace popgate::admin
