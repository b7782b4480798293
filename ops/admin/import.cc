#include "ops/admin/import.h"

#include <map>
#include <memory>
#include <ostream>
#include <pqxx/pqxx>
#include <set>
#include <unordered_set>

#include "ops/admin/import_sources.h"
#include "ops/admin/legacy_uidl.h"
#include "ops/admin/lookup.h"
#include "ops/admin/names.h"
#include "ops/admin/progress.h"
#include "ops/admin/units.h"

namespace popgate::admin {
namespace {

constexpr const char* kInsertStatement = "popgate_admin_import";

// ---- where things come from ----

UidlMap load_uidl_map(const std::optional<std::string>& path) {
  if (!path) return {};
  UidlMapParse parsed = parse_uidl_map(read_small_file(*path));
  if (!parsed.problem.empty()) throw UserError("--uidl-map '" + *path + "': " + parsed.problem);
  return std::move(parsed.map);
}

std::unique_ptr<MessageSource> open_source(const ImportArgs& args, std::ostream& notes) {
  switch (args.format) {
    case ImportFormat::kMaildir:
      if (auto problem = uidl_format_problem(args.uidl_format); !problem.empty()) {
        throw UserError("--uidl-format: " + problem);
      }
      return open_maildir(args.path, args.uidl_format, notes);
    case ImportFormat::kMbox:
      return open_mbox(args.path, args.mbox_variant);
    case ImportFormat::kEmlDir:
      return open_eml_dir(args.path);
  }
  throw std::logic_error("unknown import format");
}

UserRef find_user_now(Context& ctx, const Address& address) {
  pqxx::read_transaction tx(ctx.db(), "import_user");
  return find_user(tx, address);
}

// The user, created first when asked and missing.
UserRef ensure_user(Context& ctx, const Address& address, const ImportArgs& args) {
  if (args.create_user) {
    try {
      return find_user_now(ctx, address);
    } catch (const UserError&) {
      (void)user_add(ctx, address.login(), args.password, std::nullopt);
    }
  }
  return find_user_now(ctx, address);
}

std::unordered_set<std::string> existing_uidls(Context& ctx, const UserRef& user) {
  pqxx::read_transaction tx(ctx.db(), "import_existing");
  std::unordered_set<std::string> uidls;
  for (const auto& row :
       tx.exec_params("SELECT uidl FROM popgate.messages WHERE tenant_id = $1 AND user_id = $2",
                      user.tenant_id, user.user_id)) {
    uidls.emplace(row[0].c_str());
  }
  return uidls;
}

// ---- choosing UIDLs ----

struct Choice {
  std::string uidl;
  std::string replaced_because;  // "" unless a legacy UIDL was refused
};

// Decides every message's UIDL from the map, the mailbox and the message,
// never from the database, so that a re-run decides the same way.
class UidlChooser {
 public:
  explicit UidlChooser(UidlMap map) : map_(std::move(map)) {}

  // Loads the body only when the UIDL depends on it.
  Choice choose(MessageSource& source, SourceItem& item) {
    std::optional<std::string> legacy = mapped(item);
    if (!legacy) {
      if (item.uidl_from_body) source.load(item);
      legacy = item.legacy_uidl;
    }
    Choice choice;
    if (legacy) {
      if (auto problem = uidl_problem(*legacy); !problem.empty()) {
        choice.replaced_because = problem;
      } else if (seen_.contains(*legacy)) {
        choice.replaced_because = "UIDL '" + *legacy + "' is used by an earlier message";
      } else {
        choice.uidl = *legacy;
      }
    }
    if (choice.uidl.empty()) {
      source.load(item);
      choice.uidl = made_up(item.body);
    }
    seen_.insert(choice.uidl);
    return choice;
  }

  // Map keys that matched no message.
  [[nodiscard]] std::vector<std::string> unused_keys() const {
    std::vector<std::string> unused;
    for (const auto& [key, uidl] : map_.by_key) {
      if (!used_keys_.contains(key)) unused.push_back(key);
    }
    return unused;
  }

 private:
  std::optional<std::string> mapped(const SourceItem& item) {
    for (const auto& key : item.keys) {
      if (auto it = map_.by_key.find(key); it != map_.by_key.end()) {
        used_keys_.insert(key);
        return it->second;
      }
    }
    const std::string number = std::to_string(item.index);
    if (auto it = map_.by_key.find(number); it != map_.by_key.end()) {
      used_keys_.insert(number);
      return it->second;
    }
    return std::nullopt;
  }

  std::string made_up(const std::string& body) {
    const std::string first = content_uidl(body, 1);
    uint64_t& occurrence = occurrences_[first];
    for (;;) {
      const std::string uidl = content_uidl(body, ++occurrence);
      if (!seen_.contains(uidl)) return uidl;
    }
  }

  UidlMap map_;
  std::set<std::string> used_keys_;
  std::unordered_set<std::string> seen_;
  std::map<std::string, uint64_t> occurrences_;
};

// ---- storing ----

enum class Stored { kYes, kAlreadyThere, kOverQuota };

// Inserts messages in transactions of a bounded size, holding the user row
// (FOR UPDATE, as deliveries do) so the quota check cannot race them.
class BatchWriter {
 public:
  BatchWriter(pqxx::connection_base& db, const UserRef& user, const ImportArgs& args)
      : db_(db), user_(user), args_(args) {
    db_.prepare(kInsertStatement,
                "INSERT INTO popgate.messages"
                " (tenant_id, user_id, uidl, size_bytes, body, received_at)"
                " VALUES ($1, $2, $3, $4, $5,"
                " CASE WHEN $6::bigint < 0 THEN now() ELSE to_timestamp($6::bigint) END)"
                " ON CONFLICT (tenant_id, user_id, uidl) DO NOTHING RETURNING message_id");
  }

  Stored store(const SourceItem& item, const std::string& uidl) {
    if (!tx_) begin();
    const auto size = int64_t(item.body.size());
    if (quota_ && !args_.ignore_quota && used_ + size > *quota_) return Stored::kOverQuota;
    const pqxx::binarystring body(item.body.data(), item.body.size());
    const auto rows = tx_->exec_prepared(kInsertStatement, user_.tenant_id, user_.user_id, uidl,
                                         size, body, item.received_epoch_s);
    if (rows.empty()) return Stored::kAlreadyThere;  // stored meanwhile by someone else
    used_ += size;
    ++batch_messages_;
    batch_bytes_ += uint64_t(size);
    if (batch_messages_ >= args_.batch_messages || batch_bytes_ >= kImportBatchBytes) commit();
    return Stored::kYes;
  }

  void commit() {
    if (!tx_) return;
    tx_->commit();
    tx_.reset();
  }

  [[nodiscard]] std::optional<int64_t> quota() const noexcept { return quota_; }
  [[nodiscard]] int64_t used() const noexcept { return used_; }

 private:
  void begin() {
    tx_ = std::make_unique<pqxx::work>(db_, "import");
    const auto rows = tx_->exec_params(
        "SELECT quota_bytes, used_bytes FROM popgate.users"
        " WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
        user_.tenant_id, user_.user_id);
    if (rows.empty()) throw UserError("user '" + user_.login + "' was deleted during the import");
    quota_ = rows[0][0].is_null() ? std::nullopt : std::optional(rows[0][0].as<int64_t>());
    used_ = rows[0][1].as<int64_t>();
    batch_messages_ = 0;
    batch_bytes_ = 0;
  }

  pqxx::connection_base& db_;
  const UserRef& user_;
  const ImportArgs& args_;
  std::unique_ptr<pqxx::work> tx_;
  std::optional<int64_t> quota_;
  int64_t used_ = 0;
  uint64_t batch_messages_ = 0;
  uint64_t batch_bytes_ = 0;
};

struct Counts {
  uint64_t imported = 0;
  uint64_t skipped = 0;
  uint64_t replaced = 0;
  uint64_t empty = 0;
  uint64_t imported_bytes = 0;
};

std::string summary(const Counts& c) {
  std::string text = "imported " + std::to_string(c.imported) + ", skipped " +
                     std::to_string(c.skipped) + " (already there), replaced-uidl " +
                     std::to_string(c.replaced);
  if (c.empty != 0) text += ", empty " + std::to_string(c.empty) + " (not stored)";
  return text;
}

class Importer {
 public:
  Importer(Context& ctx, const UserRef& user, const ImportArgs& args, UidlMap map,
           std::unordered_set<std::string> existing)
      : ctx_(ctx),
        chooser_(std::move(map)),
        existing_(std::move(existing)),
        writer_(ctx.db(), user, args),
        progress_(ctx.err(), "import", args.progress_every, args.progress_interval,
                  Progress::Clock::now()) {}

  // One message; false when the quota stops the import.
  bool handle(MessageSource& source, SourceItem& item) {
    const Choice choice = chooser_.choose(source, item);
    if (existing_.contains(choice.uidl)) return counted(counts_.skipped, item);
    source.load(item);
    if (item.body.empty()) {
      ctx_.err() << "import: " << item.name << " is empty; not stored\n";
      return counted(counts_.empty, item);
    }
    switch (writer_.store(item, choice.uidl)) {
      case Stored::kOverQuota:
        over_quota_ = item.name + " (" + format_bytes(item.body.size()) + ")";
        return false;
      case Stored::kAlreadyThere:
        return counted(counts_.skipped, item);
      case Stored::kYes:
        break;
    }
    existing_.insert(choice.uidl);
    counts_.imported_bytes += item.body.size();
    if (!choice.replaced_because.empty()) {
      ++counts_.replaced;
      ctx_.err() << "import: " << item.name << ": " << choice.replaced_because
                 << "; stored with UIDL " << choice.uidl << "\n";
    }
    return counted(counts_.imported, item);
  }

  // Commits the last batch and reports; throws UserError when the quota
  // stopped the import.
  void finish(const std::string& login) {
    writer_.commit();
    for (const auto& key : chooser_.unused_keys()) {
      ctx_.err() << "import: note: --uidl-map key '" << key << "' matched no message\n";
    }
    ctx_.out() << summary(counts_) << " into " << login << "\n";
    if (over_quota_.empty()) return;
    throw UserError("over quota: " + over_quota_ + " does not fit in the quota of " + login + " (" +
                    format_bytes(uint64_t(writer_.quota().value_or(0))) + ", " +
                    format_bytes(uint64_t(writer_.used())) +
                    " used); raise it (popgate-admin user quota) or pass --ignore-quota, then "
                    "run the import again: it resumes where it stopped");
  }

 private:
  bool counted(uint64_t& counter, const SourceItem& item) {
    ++counter;
    const std::string detail = "(" + std::to_string(counts_.imported) + " imported, " +
                               std::to_string(counts_.skipped) + " skipped)";
    progress_.add(1, item.body.size(), Progress::Clock::now(), detail);
    return true;
  }

  Context& ctx_;
  UidlChooser chooser_;
  std::unordered_set<std::string> existing_;
  BatchWriter writer_;
  Progress progress_;
  Counts counts_;
  std::string over_quota_;
};

}  // namespace

int import_mailbox(Context& ctx, const ImportArgs& args) {
  const Address address = require_address(args.address);
  if (args.batch_messages == 0) throw UserError("--batch must be at least 1");
  UidlMap map = load_uidl_map(args.uidl_map_path);
  const std::unique_ptr<MessageSource> source = open_source(args, ctx.err());
  const UserRef user = ensure_user(ctx, address, args);
  Importer importer(ctx, user, args, std::move(map), existing_uidls(ctx, user));
  SourceItem item;
  while (source->next(item)) {
    if (!importer.handle(*source, item)) break;
  }
  importer.finish(user.login);
  return kExitOk;
}

}  // namespace popgate::admin
