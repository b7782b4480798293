#include "server/tls/tls_context.h"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "server/tls/tls_credentials.h"

namespace popgate::tls {
namespace {

// Sessions resume only into a context with the same id context, so every
// SSL_CTX of every process sharing a ticket key file uses this one.
constexpr unsigned char kSessionIdContext[] = "popgate-pop3";
// Key exchange groups, in preference order. No finite-field groups: TLS 1.2
// is ECDHE-only anyway, and this keeps key shares small.
constexpr char kGroups[] = "X25519:P-256:P-384";
// RFC 1035: a host name is at most 253 characters (without the final dot).
constexpr size_t kHostNameBytesMax = 253;
// Tickets per full or resumed handshake. POP3 clients hold one connection
// per maildrop (the maildrop is locked), so one ticket is enough.
constexpr size_t kTicketsPerHandshake = 1;

using SslCtxPtr = std::unique_ptr<SSL_CTX, OpensslDeleter<SSL_CTX_free>>;

// Where each SSL_CTX keeps its TicketKeys (a pointer owned by the context).
int ticket_keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// AES-256-CBC, fetched once: an implicit fetch per ticket costs a lookup
// under a lock on every handshake.
const EVP_CIPHER* ticket_cipher() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher;
}

// Random keys made once per process and kept across reloads, so a reload
// without a ticket key file does not end resumption.
std::shared_ptr<const TlsContext::TicketKeys> process_ticket_keys() {
  static std::mutex mu;
  static std::shared_ptr<const TlsContext::TicketKeys> keys;
  std::lock_guard<std::mutex> lock(mu);
  if (!keys) {
    auto fresh = std::make_shared<TlsContext::TicketKeys>();
    if (!make_random_ticket_keys(fresh.get())) return nullptr;
    keys = std::move(fresh);
  }
  return keys;
}

bool set_ticket_mac_key(EVP_MAC_CTX* mac, const TicketKey& key) noexcept {
  static char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                        const_cast<unsigned char*>(key.hmac_key.data()),
                                        key.hmac_key.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  return EVP_MAC_CTX_set_params(mac, params) == 1;
}

// OpenSSL's ticket hook (both TLS 1.2 and 1.3). OpenSSL calls the one of the
// context the connection started on; the keys are the same in every SSL_CTX
// of a TlsContext. Returns 2 = ok and issue a fresh ticket, 0 = unknown key
// (full handshake), -1 = error. Every resumption gets a fresh ticket, not
// only those under an older key: TLS 1.3 clients use a ticket once (RFC 8446
// C.4; OpenSSL's and NSS's clients do), and OpenSSL sends no ticket after a
// resumption unless told to renew, so such a client would fall back to a
// full handshake every other connection (measured: 50% resumed, bench/).
int ticket_key_callback(SSL* ssl, unsigned char* key_name, unsigned char* iv,
                        EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) noexcept {
  const auto* keys = static_cast<const TlsContext::TicketKeys*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_keys_index()));
  const EVP_CIPHER* aes = ticket_cipher();
  if (keys == nullptr || keys->keys.empty() || aes == nullptr) return -1;
  const size_t iv_bytes = static_cast<size_t>(EVP_CIPHER_get_iv_length(aes));
  if (encrypt == 1) {
    const TicketKey& key = keys->keys.front();
    if (RAND_bytes(iv, static_cast<int>(iv_bytes)) != 1) return -1;
    std::memcpy(key_name, key.name.data(), key.name.size());
    if (EVP_EncryptInit_ex(cipher, aes, nullptr, key.aes_key.data(), iv) != 1) return -1;
    return set_ticket_mac_key(mac, key) ? 1 : -1;
  }
  for (size_t i = 0; i < keys->keys.size(); ++i) {
    const TicketKey& key = keys->keys[i];
    if (std::memcmp(key_name, key.name.data(), key.name.size()) != 0) continue;
    if (EVP_DecryptInit_ex(cipher, aes, nullptr, key.aes_key.data(), iv) != 1) return -1;
    if (!set_ticket_mac_key(mac, key)) return -1;
    return 2;
  }
  return 0;
}

// Picks the SSL_CTX for the client's SNI. Runs during ClientHello on the
// connection's shard thread; `arg` is the TlsContext, which outlives the
// connection because the TlsStream holds a reference to it.
int servername_callback(SSL* ssl, int* alert, void* arg) noexcept {
  const char* sent = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sent == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the defaults
  size_t length = std::strlen(sent);
  if (length > 0 && sent[length - 1] == '.') --length;
  if (length == 0 || length > kHostNameBytesMax) return SSL_TLSEXT_ERR_OK;
  char name[kHostNameBytesMax];
  for (size_t i = 0; i < length; ++i) {
    const char c = sent[i];
    name[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const auto* context = static_cast<const TlsContext*>(arg);
  SSL_CTX* chosen = context->ssl_ctx_for_name(std::string_view(name, length));
  if (chosen != nullptr && SSL_set_SSL_CTX(ssl, chosen) == nullptr) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

class TlsContext::Loader {
 public:
  Loader(const TlsConfig& config, TlsContext& out) : config_(config), out_(out) {}

  bool run(std::string* error) {
    if (config_.default_certificates.empty()) {
      *error = "tls: no default certificate configured";
      return false;
    }
    if (config_.ticket_lifetime_s > kTicketLifetimeSecondsMax) {
      *error = "tls: ticket_lifetime_s " + std::to_string(config_.ticket_lifetime_s) +
               " is over the maximum of " + std::to_string(kTicketLifetimeSecondsMax);
      return false;
    }
    return load_ticket_keys_(error) && load_defaults(error) && load_sni_directory(error) &&
           load_database_certificates() && build_sni_index(error);
  }

 private:
  struct SniCertificate {
    LoadedCertificate cert;
    std::string domain;  // a database certificate's tenant; "" for files
  };

  bool load_ticket_keys_(std::string* error) {
    if (config_.ticket_key_file.empty()) {
      out_.ticket_keys_ = process_ticket_keys();
      if (!out_.ticket_keys_) {
        *error = "tls: no randomness for ticket keys: " + take_openssl_error();
        return false;
      }
      return true;
    }
    auto keys = std::make_shared<TicketKeys>();
    if (!load_ticket_keys(config_.ticket_key_file, keys.get(), &out_.warnings_, error)) {
      return false;
    }
    out_.ticket_keys_ = std::move(keys);
    return true;
  }

  // A context with every protocol setting; certificates come after.
  SslCtxPtr new_ssl_ctx(std::string* error) {
    ERR_clear_error();
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
      *error = "tls: SSL_CTX_new failed: " + take_openssl_error();
      return nullptr;
    }
    SSL_CTX* c = ctx.get();
    const bool tickets = config_.ticket_lifetime_s > 0;
    SSL_CTX_set_security_level(c, 2);  // >= 112-bit keys: RSA >= 2048, no SHA-1 signatures
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    if (tickets) {
      SSL_CTX_clear_options(c, SSL_OP_NO_TICKET);
    } else {
      SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    }
    // RELEASE_BUFFERS: an idle connection holds no 16 KiB record buffers.
    // NO_AUTO_CHAIN: send exactly the configured chain instead of trying to
    // build one from an (empty) store on every handshake. The write modes
    // only matter if a BIO refused bytes, which TlsStream's never does.
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN |
                            SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Stateless tickets only: no per-session memory on the server.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof kSessionIdContext - 1) != 1 ||
        SSL_CTX_set1_groups_list(c, kGroups) != 1 ||
        SSL_CTX_set_num_tickets(c, tickets ? kTicketsPerHandshake : 0) != 1 ||
        SSL_CTX_set_tlsext_ticket_key_evp_cb(c, ticket_key_callback) != 1 ||
        SSL_CTX_set_ex_data(c, ticket_keys_index(), const_cast<TicketKeys*>(out_.ticket_keys_.get())) != 1) {
      *error = "tls: cannot configure SSL_CTX: " + take_openssl_error();
      return nullptr;
    }
    SSL_CTX_set_timeout(c, static_cast<long>(config_.ticket_lifetime_s));
    const std::string& ciphers12 = config_.ciphers_tls12.empty()
                                       ? std::string(kDefaultCiphersTls12)
                                       : config_.ciphers_tls12;
    if (SSL_CTX_set_cipher_list(c, ciphers12.c_str()) != 1) {
      *error = "tls: ciphers_tls12 \"" + ciphers12 + "\": " + take_openssl_error();
      return nullptr;
    }
    const std::string& suites13 = config_.ciphersuites_tls13.empty()
                                      ? std::string(kDefaultCiphersuitesTls13)
                                      : config_.ciphersuites_tls13;
    if (SSL_CTX_set_ciphersuites(c, suites13.c_str()) != 1) {
      *error = "tls: ciphersuites_tls13 \"" + suites13 + "\": " + take_openssl_error();
      return nullptr;
    }
    return ctx;
  }

  bool use_certificate(SSL_CTX* ctx, const LoadedCertificate& cert, std::string* error) {
    ERR_clear_error();
    if (SSL_CTX_use_cert_and_key(ctx, cert.leaf.get(), cert.key.get(), cert.chain.get(), 1) != 1) {
      *error = cert.info.source_file + ": certificate not usable (" + cert.info.key_type +
               "): " + take_openssl_error();
      return false;
    }
    return true;
  }

  bool load_defaults(std::string* error) {
    SslCtxPtr ctx = new_ssl_ctx(error);
    if (!ctx) return false;
    std::map<int, std::string> slot_files;  // key slot -> file using it
    for (const CertificateFiles& files : config_.default_certificates) {
      LoadedCertificate cert;
      const std::string& key_file = files.key_file.empty() ? files.chain_file : files.key_file;
      if (!load_certificate(files.chain_file, key_file, true, now_s_, &cert, &out_.warnings_,
                            error)) {
        return false;
      }
      const auto [it, fresh] = slot_files.emplace(cert.key_slot, files.chain_file);
      if (!fresh) {
        *error = files.chain_file + ": a second default certificate with key type " +
                 cert.info.key_type + " (the first is " + it->second +
                 "); configure at most one per key type";
        return false;
      }
      if (!use_certificate(ctx.get(), cert, error)) return false;
      out_.certificates_.push_back(cert.info);
    }
    // SSL_CTX_set_tlsext_servername_callback() without its C-style cast.
    SSL_CTX_callback_ctrl(ctx.get(), SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(servername_callback));
    SSL_CTX_set_tlsext_servername_arg(ctx.get(), &out_);
    out_.default_ctx_ = ctx.release();
    return true;
  }

  bool load_sni_directory(std::string* error) {
    if (config_.sni_directory.empty()) return true;
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::directory_iterator it(config_.sni_directory, ec);
    if (ec) {
      *error = config_.sni_directory + ": cannot list: " + ec.message();
      return false;
    }
    std::vector<std::string> files;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name.front() == '.') continue;
      if (!it->is_regular_file(ec)) continue;  // follows symlinks
      files.push_back(name);
    }
    if (ec) {
      *error = config_.sni_directory + ": cannot list: " + ec.message();
      return false;
    }
    std::sort(files.begin(), files.end());
    const auto has = [&](const std::string& f) {
      return std::binary_search(files.begin(), files.end(), f);
    };
    const std::string dir = (fs::path(config_.sni_directory) / "").string();
    for (const std::string& f : files) {
      const fs::path path(f);
      const std::string stem = path.stem().string();
      const std::string ext = path.extension().string();
      std::string chain_file;
      std::string key_file;
      if (ext == ".pem") {
        chain_file = key_file = dir + f;
      } else if (ext == ".crt") {
        if (!has(stem + ".key")) {
          *error = dir + f + ": no matching " + stem + ".key";
          return false;
        }
        chain_file = dir + f;
        key_file = dir + stem + ".key";
      } else if (ext == ".key") {
        if (!has(stem + ".crt")) {
          *error = dir + f + ": no matching " + stem + ".crt";
          return false;
        }
        continue;  // loaded with its .crt
      } else {
        continue;
      }
      LoadedCertificate cert;
      if (!load_certificate(chain_file, key_file, false, now_s_, &cert, &out_.warnings_, error)) {
        return false;
      }
      if (cert.info.names.empty()) {
        out_.warnings_.push_back(chain_file + ": no DNS name in the certificate; not used");
      }
      out_.certificates_.push_back(cert.info);
      sni_certs_.push_back(SniCertificate{std::move(cert), ""});
    }
    return true;
  }

  // Never fails the load: a certificate that cannot be used is a warning.
  bool load_database_certificates() {
    for (const CertificatePem& pem : config_.database_certificates) {
      LoadedCertificate cert;
      std::string problem;
      const std::string& key_pem = pem.key_pem.empty() ? pem.chain_pem : pem.key_pem;
      if (!parse_certificate(pem.source, pem.chain_pem, pem.source, key_pem, false, now_s_, &cert,
                             &out_.warnings_, &problem)) {
        out_.warnings_.push_back(problem + "; not used");
        continue;
      }
      if (cert.info.names.empty()) {
        out_.warnings_.push_back(pem.source + ": no DNS name in the certificate; not used");
      }
      out_.certificates_.push_back(cert.info);
      sni_certs_.push_back(SniCertificate{std::move(cert), pem.domain});
    }
    return true;
  }

  // The names a certificate may be indexed under: well-formed, and for a
  // database certificate within its tenant's domain. Warns about the rest.
  std::vector<std::string> usable_names(const SniCertificate& sni) {
    std::vector<std::string> names;
    for (const std::string& name : sni.cert.info.names) {
      const std::string problem = wildcard_problem(name);
      if (!problem.empty()) {
        out_.warnings_.push_back(sni.cert.info.source_file + ": name \"" + name + "\": " +
                                 problem + "; name not used");
      } else if (!sni.domain.empty() && !name_in_domain(name, sni.domain)) {
        out_.warnings_.push_back(sni.cert.info.source_file + ": name \"" + name +
                                 "\" is not under the tenant's domain " + sni.domain +
                                 "; name not used");
      } else {
        names.push_back(name);
      }
    }
    return names;
  }

  // name -> one certificate per key slot -> one SSL_CTX per distinct set.
  bool build_sni_index(std::string* error) {
    std::vector<std::vector<std::string>> names(sni_certs_.size());
    // For a name database certificates of several tenants claim, the most
    // specific tenant domain, which alone keeps it.
    std::map<std::string, std::string> owner;
    for (size_t i = 0; i < sni_certs_.size(); ++i) {
      names[i] = usable_names(sni_certs_[i]);
      const std::string& domain = sni_certs_[i].domain;
      if (domain.empty()) continue;
      for (const std::string& name : names[i]) {
        std::string& current = owner[name];
        if (current.size() < domain.size()) current = domain;
      }
    }
    std::map<std::string, std::map<int, size_t>> chosen;
    for (size_t i = 0; i < sni_certs_.size(); ++i) {
      const SniCertificate& sni = sni_certs_[i];
      const LoadedCertificate& cert = sni.cert;
      for (const std::string& name : names[i]) {
        if (!sni.domain.empty() && owner[name] != sni.domain) {
          out_.warnings_.push_back(cert.info.source_file + ": " + name +
                                   " is left to the certificates of tenant " + owner[name] +
                                   ", whose domain is more specific; name not used");
          continue;
        }
        auto [it, fresh] = chosen[name].emplace(cert.key_slot, i);
        if (fresh) continue;
        const LoadedCertificate& other = sni_certs_[it->second].cert;
        const bool newer = cert.info.not_after_s > other.info.not_after_s;
        const LoadedCertificate& winner = newer ? cert : other;
        const LoadedCertificate& loser = newer ? other : cert;
        out_.warnings_.push_back(loser.info.source_file + ": " + name + " (" +
                                 loser.info.key_type + ") is served from " +
                                 winner.info.source_file + " instead, which expires later");
        if (newer) it->second = i;
      }
    }
    std::map<std::vector<size_t>, SSL_CTX*> contexts;
    for (const auto& [name, slots] : chosen) {
      std::vector<size_t> set;
      for (const auto& [slot, index] : slots) set.push_back(index);
      SSL_CTX*& ctx = contexts[set];
      if (ctx == nullptr) {
        SslCtxPtr fresh = new_ssl_ctx(error);
        if (!fresh) return false;
        for (const size_t index : set) {
          if (!use_certificate(fresh.get(), sni_certs_[index].cert, error)) return false;
        }
        ctx = fresh.release();
        out_.sni_ctxs_.push_back(ctx);
      }
      if (name.starts_with("*.")) {
        out_.wildcard_.push_back(NameEntry{name.substr(2), ctx});
      } else {
        out_.exact_.push_back(NameEntry{name, ctx});
      }
    }
    const auto by_name = [](const NameEntry& a, const NameEntry& b) { return a.name < b.name; };
    std::sort(out_.exact_.begin(), out_.exact_.end(), by_name);
    std::sort(out_.wildcard_.begin(), out_.wildcard_.end(), by_name);
    return true;
  }

  const TlsConfig& config_;
  TlsContext& out_;
  const int64_t now_s_ = static_cast<int64_t>(std::time(nullptr));
  std::vector<SniCertificate> sni_certs_;
};

bool name_in_domain(std::string_view name, std::string_view domain) noexcept {
  if (domain.empty() || name.size() < domain.size()) return false;
  if (name == domain) return true;
  return name.size() > domain.size() + 1 && name.ends_with(domain) &&
         name[name.size() - domain.size() - 1] == '.';
}

std::string wildcard_problem(std::string_view name) {
  const size_t star = name.find('*');
  if (star == std::string_view::npos) return {};
  if (star != 0 || name.size() < 3 || name[1] != '.' ||
      name.find('*', 1) != std::string_view::npos) {
    return "only a whole first label \"*.\" may be a wildcard";
  }
  return {};
}

std::shared_ptr<const TlsContext> TlsContext::load(const TlsConfig& config, std::string* error) {
  try {
    std::shared_ptr<TlsContext> context(new TlsContext());
    std::string problem;
    if (!Loader(config, *context).run(&problem)) {
      *error = std::move(problem);
      ERR_clear_error();
      return nullptr;
    }
    ERR_clear_error();
    return context;
  } catch (const std::exception& e) {
    *error = std::string("tls: loading failed: ") + e.what();
    ERR_clear_error();
    return nullptr;
  }
}

TlsContext::~TlsContext() {
  SSL_CTX_free(default_ctx_);
  for (SSL_CTX* ctx : sni_ctxs_) SSL_CTX_free(ctx);
}

ssl_ctx_st* TlsContext::ssl_ctx_for_name(std::string_view host_name) const noexcept {
  const auto find = [](const std::vector<NameEntry>& entries, std::string_view name) -> SSL_CTX* {
    const auto it = std::lower_bound(
        entries.begin(), entries.end(), name,
        [](const NameEntry& e, std::string_view n) { return std::string_view(e.name) < n; });
    return it != entries.end() && it->name == name ? it->ctx : nullptr;
  };
  if (SSL_CTX* ctx = find(exact_, host_name)) return ctx;
  const size_t dot = host_name.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == host_name.size()) return nullptr;
  return find(wildcard_, host_name.substr(dot + 1));
}

}  // namespace popgate::tls
