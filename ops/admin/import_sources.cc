#include "ops/admin/import_sources.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <ostream>

#include "ops/admin/context.h"
#include "ops/admin/deliver.h"
#include "ops/admin/dovecot_uidlist.h"
#include "ops/admin/legacy_uidl.h"
#include "ops/admin/message.h"
#include "ops/admin/uidl_format.h"

namespace popgate::admin {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMboxReadBytes = 1 << 20;

class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw UserError("cannot open '" + path + "': " + std::strerror(errno));
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string read_small_file(const std::string& path) {
  const Fd fd(path);
  std::string text;
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UserError("cannot read '" + path + "': " + std::strerror(errno));
    if (n == 0) return text;
    text.append(chunk, size_t(n));
  }
}

namespace {

struct FileEntry {
  std::string relative;  // "cur/<name>", or "<name>" in an .eml directory
  std::string name;      // the file name alone
  int64_t mtime_s = -1;
};

// Regular files of `dir` whose names do not start with '.', by name.
std::vector<FileEntry> list_files(const fs::path& dir, const std::string& prefix) {
  std::vector<FileEntry> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with('.')) continue;
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    files.push_back(FileEntry{prefix + name, name, int64_t(st.st_mtime)});
  }
  if (ec) throw UserError("cannot list '" + dir.string() + "': " + ec.message());
  std::sort(files.begin(), files.end(),
            [](const FileEntry& a, const FileEntry& b) { return a.name < b.name; });
  return files;
}

// Reads a message file like `deliver`, optionally hashing its raw octets.
std::string read_file_message(const std::string& path, std::string* md5_hex) {
  const Fd fd(path);
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && st.st_size == 0) {
    if (md5_hex != nullptr) *md5_hex = "d41d8cd98f00b204e9800998ecf8427e";  // MD5("")
    return "";  // the importer skips empty messages, saying so
  }
  if (md5_hex == nullptr) return read_message(fd.get(), "'" + path + "'");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!md || EVP_DigestInit_ex(md.get(), EVP_md5(), nullptr) != 1) {
    throw std::runtime_error("MD5 is not available from OpenSSL");
  }
  std::string body = read_message(fd.get(), "'" + path + "'", [&](std::string_view raw) {
    EVP_DigestUpdate(md.get(), raw.data(), raw.size());
  });
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_bytes = 0;
  EVP_DigestFinal_ex(md.get(), digest, &digest_bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  md5_hex->clear();
  for (unsigned int i = 0; i < digest_bytes; ++i) {
    *md5_hex += kHex[digest[i] >> 4];
    *md5_hex += kHex[digest[i] & 0xf];
  }
  return body;
}

// ---- Maildir ----

struct MaildirMessage {
  FileEntry file;
  std::optional<UidlistEntry> listed;  // its dovecot-uidlist line, if any
};

class MaildirSource final : public MessageSource {
 public:
  MaildirSource(fs::path dir, std::string format, Uidlist uidlist,
                std::vector<MaildirMessage> messages)
      : dir_(std::move(dir)),
        format_(std::move(format)),
        uses_md5_(uidl_format_uses_md5(format_)),
        uidlist_(std::move(uidlist)),
        messages_(std::move(messages)) {}

  bool next(SourceItem& item) override {
    if (at_ == messages_.size()) return false;
    const MaildirMessage& m = messages_[at_++];
    item = SourceItem{};
    item.index = at_;
    item.name = m.file.relative;
    const std::string base(maildir_base_name(m.file.name));
    item.keys = {base, m.file.name};
    item.received_epoch_s = m.file.mtime_s;
    if (m.listed && m.listed->pop3_uidl) {
      // An empty 'P' is Dovecot's shorthand for "the base file name".
      item.legacy_uidl = m.listed->pop3_uidl->empty() ? base : *m.listed->pop3_uidl;
    } else if (m.listed && !uses_md5_) {
      item.legacy_uidl = expand(*m.listed, base, "");
    } else if (m.listed) {
      item.uidl_from_body = true;
    }
    return true;
  }

  void load(SourceItem& item) override {
    if (item.loaded) return;
    const MaildirMessage& m = messages_[item.index - 1];
    std::string md5;
    const bool want_md5 = item.uidl_from_body;
    item.body = read_file_message((dir_ / m.file.relative).string(), want_md5 ? &md5 : nullptr);
    item.loaded = true;
    if (want_md5) {
      item.legacy_uidl = expand(*m.listed, std::string(maildir_base_name(m.file.name)), md5);
    }
  }

  [[nodiscard]] std::optional<uint64_t> size_hint() const override { return messages_.size(); }

 private:
  std::string expand(const UidlistEntry& e, const std::string& base, const std::string& md5) {
    return expand_uidl_format(format_, UidlVariables{e.uid, uidlist_.uid_validity, base, md5});
  }

  fs::path dir_;
  std::string format_;
  bool uses_md5_;
  Uidlist uidlist_;
  std::vector<MaildirMessage> messages_;
  size_t at_ = 0;
};

// Files by base name; a base in both new/ and cur/ keeps the cur/ one.
std::map<std::string, FileEntry> maildir_files(const fs::path& dir, std::ostream& notes) {
  std::map<std::string, FileEntry> by_base;
  for (const char* sub : {"cur", "new"}) {
    if (!fs::is_directory(dir / sub)) continue;
    for (auto& f : list_files(dir / sub, std::string(sub) + "/")) {
      const std::string base(maildir_base_name(f.name));
      if (!by_base.emplace(base, f).second) {
        notes << "import: note: " << f.relative << " has the same base name as "
              << by_base[base].relative << "; importing only the latter\n";
      }
    }
  }
  return by_base;
}

Uidlist read_uidlist(const fs::path& dir, std::ostream& notes) {
  const fs::path path = dir / "dovecot-uidlist";
  if (!fs::exists(path)) {
    notes << "import: note: " << path.string()
          << " does not exist: no legacy UIDLs; every message gets a new one (clients will "
             "download everything again)\n";
    return Uidlist{};
  }
  const UidlistParse parsed = parse_uidlist(read_small_file(path.string()));
  if (!parsed.problem.empty()) throw UserError(path.string() + ": " + parsed.problem);
  return parsed.uidlist;
}

// Listed messages in POP3 order, then unlisted files by name.
std::vector<MaildirMessage> maildir_order(const Uidlist& uidlist,
                                          std::map<std::string, FileEntry> files,
                                          std::ostream& notes) {
  std::vector<MaildirMessage> order;
  for (auto& entry : pop3_listing_order(uidlist.entries)) {
    const auto it = files.find(std::string(maildir_base_name(entry.filename)));
    if (it == files.end()) continue;  // expunged; the uidlist is rewritten lazily
    order.push_back(MaildirMessage{std::move(it->second), std::move(entry)});
    files.erase(it);
  }
  std::vector<FileEntry> unlisted;
  for (auto& [base, file] : files) unlisted.push_back(std::move(file));
  std::sort(unlisted.begin(), unlisted.end(),
            [](const FileEntry& a, const FileEntry& b) { return a.name < b.name; });
  if (!unlisted.empty() && uidlist.version != 0) {
    notes << "import: note: " << unlisted.size()
          << " message file(s) are not in dovecot-uidlist (Dovecot never listed them); they "
             "come last, with new UIDLs\n";
  }
  for (auto& file : unlisted) order.push_back(MaildirMessage{std::move(file), std::nullopt});
  return order;
}

// ---- .eml directory ----

class EmlDirSource final : public MessageSource {
 public:
  EmlDirSource(fs::path dir, std::vector<FileEntry> files)
      : dir_(std::move(dir)), files_(std::move(files)) {}

  bool next(SourceItem& item) override {
    if (at_ == files_.size()) return false;
    const FileEntry& f = files_[at_++];
    item = SourceItem{};
    item.index = at_;
    item.name = f.name;
    item.keys = {f.name};
    item.uidl_from_body = true;
    item.received_epoch_s = f.mtime_s;
    return true;
  }

  void load(SourceItem& item) override {
    if (item.loaded) return;
    item.body = read_file_message((dir_ / files_[item.index - 1].relative).string(), nullptr);
    item.loaded = true;
    item.legacy_uidl = find_header(item.body, "X-UIDL");
  }

  [[nodiscard]] std::optional<uint64_t> size_hint() const override { return files_.size(); }

 private:
  fs::path dir_;
  std::vector<FileEntry> files_;
  size_t at_ = 0;
};

// ---- mbox ----

class MboxSource final : public MessageSource {
 public:
  MboxSource(const std::string& path, MboxVariant variant)
      : path_(path), fd_(path), splitter_(variant, kDeliverMessageBytesMax) {}

  bool next(SourceItem& item) override {
    MboxMessage m;
    while (!splitter_.next(m)) {
      if (eof_) return false;
      read_more();
    }
    item = SourceItem{};
    item.index = ++count_;
    item.name = "message " + std::to_string(count_);
    item.received_epoch_s = mbox_envelope_time(m.envelope);
    item.uidl_from_body = true;
    item.loaded = true;
    if (!m.body.empty()) item.body = normalize_message(m.body, item.name + " of '" + path_ + "'");
    item.legacy_uidl = find_header(item.body, "X-UIDL");
    return true;
  }

  void load(SourceItem&) override {}
  [[nodiscard]] std::optional<uint64_t> size_hint() const override { return std::nullopt; }

 private:
  void read_more() {
    std::string chunk(kMboxReadBytes, '\0');
    ssize_t n = 0;
    do {
      n = ::read(fd_.get(), chunk.data(), chunk.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw UserError("cannot read '" + path_ + "': " + std::strerror(errno));
    if (n == 0) {
      splitter_.finish();
      eof_ = true;
    } else {
      splitter_.feed(std::string_view(chunk.data(), size_t(n)));
    }
    if (!splitter_.problem().empty()) throw UserError("'" + path_ + "': " + splitter_.problem());
  }

  std::string path_;
  Fd fd_;
  MboxSplitter splitter_;
  bool eof_ = false;
  uint64_t count_ = 0;
};

}  // namespace

std::unique_ptr<MessageSource> open_maildir(const std::string& dir, const std::string& uidl_format,
                                            std::ostream& notes) {
  const fs::path root(dir);
  if (!fs::is_directory(root / "cur") && !fs::is_directory(root / "new")) {
    throw UserError("'" + dir + "' is not a Maildir: it has neither cur/ nor new/");
  }
  Uidlist uidlist = read_uidlist(root, notes);
  auto order = maildir_order(uidlist, maildir_files(root, notes), notes);
  return std::make_unique<MaildirSource>(root, uidl_format, std::move(uidlist), std::move(order));
}

std::unique_ptr<MessageSource> open_mbox(const std::string& path, MboxVariant variant) {
  if (fs::is_directory(path)) throw UserError("'" + path + "' is a directory, not an mbox file");
  return std::make_unique<MboxSource>(path, variant);
}

std::unique_ptr<MessageSource> open_eml_dir(const std::string& dir) {
  if (!fs::is_directory(dir)) throw UserError("'" + dir + "' is not a directory");
  return std::make_unique<EmlDirSource>(dir, list_files(dir, ""));
}

int64_t mbox_envelope_time(const std::string& envelope) {
  const size_t space = envelope.find(' ');
  if (space == std::string::npos) return -1;
  std::tm tm{};
  const char* end = ::strptime(envelope.c_str() + space + 1, "%a %b %d %H:%M:%S %Y", &tm);
  if (end == nullptr) return -1;
  const time_t t = ::timegm(&tm);
  return t < 0 ? -1 : int64_t(t);
}

}  // namespace popgate::admin
