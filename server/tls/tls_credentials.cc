#include "server/tls/tls_credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <system_error>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace popgate::tls {

TlsContext::TicketKeys::~TicketKeys() {
  OPENSSL_cleanse(keys.data(), keys.size() * sizeof(TicketKey));
}

void free_x509_stack(STACK_OF(X509) * chain) noexcept { sk_X509_pop_free(chain, X509_free); }

namespace {

using BioPtr = std::unique_ptr<BIO, OpensslDeleter<BIO_free>>;

// Keys must not be encrypted: a password prompt at reload would hang.
int refuse_password(char*, int, int, void*) { return -1; }

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

BioPtr memory_bio(const std::string& content) {
  return BioPtr(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
}

// True when the last error is only "no more PEM blocks of that kind".
bool at_end_of_pem() {
  const unsigned long e = ERR_peek_last_error();
  return e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
}

bool read_certificates(const std::string& path, const std::string& content, X509Ptr* leaf,
                       ChainPtr* chain, std::string* error) {
  BioPtr bio = memory_bio(content);
  chain->reset(sk_X509_new_null());
  if (!bio || !*chain) {
    *error = path + ": out of memory";
    return false;
  }
  ERR_clear_error();
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, refuse_password, nullptr)) {
    if (!*leaf) {
      leaf->reset(cert);
    } else if (sk_X509_push(chain->get(), cert) == 0) {
      X509_free(cert);
      *error = path + ": out of memory";
      return false;
    }
  }
  if (!at_end_of_pem()) {
    *error = path + ": bad certificate PEM: " + take_openssl_error();
    return false;
  }
  ERR_clear_error();
  if (!*leaf) {
    *error = path + ": no certificate found (expected PEM \"BEGIN CERTIFICATE\")";
    return false;
  }
  return true;
}

bool read_private_key(const std::string& path, const std::string& content, PkeyPtr* key,
                      std::string* error) {
  BioPtr bio = memory_bio(content);
  if (!bio) {
    *error = path + ": out of memory";
    return false;
  }
  ERR_clear_error();
  key->reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_password, nullptr));
  if (!*key) {
    const std::string reason = at_end_of_pem() ? "" : ": " + take_openssl_error();
    ERR_clear_error();
    *error = path + ": no usable private key (expected unencrypted PEM)" + reason;
    return false;
  }
  return true;
}

std::string key_type_of(EVP_PKEY* key) {
  const int id = EVP_PKEY_get_base_id(key);
  switch (id) {
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t length = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                         &length) != 1) {
        return "ECDSA";
      }
      const char* nist = EC_curve_nid2nist(OBJ_sn2nid(group));
      return std::string("ECDSA ") + (nist != nullptr ? nist : group);
    }
    case EVP_PKEY_RSA:
      return "RSA " + std::to_string(EVP_PKEY_get_bits(key));
    case EVP_PKEY_RSA_PSS:
      return "RSA-PSS " + std::to_string(EVP_PKEY_get_bits(key));
    case EVP_PKEY_ED25519:
      return "Ed25519";
    case EVP_PKEY_ED448:
      return "Ed448";
    default: {
      const char* name = OBJ_nid2sn(id);
      return name != nullptr ? name : "unknown";
    }
  }
}

std::string string_of(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// SAN DNS names; the subject CN only when there is none (RFC 6125 6.4.4).
std::vector<std::string> names_of(X509* cert) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* san = sk_GENERAL_NAME_value(sans, i);
      if (san->type != GEN_DNS) continue;
      std::string name = lowercase(string_of(san->d.dNSName));
      if (!name.empty() && name.find('\0') == std::string::npos) names.push_back(std::move(name));
    }
    GENERAL_NAMES_free(sans);
  }
  ERR_clear_error();  // no SAN extension is not an error
  if (!names.empty()) return names;
  const X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index >= 0) {
    const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, cn);
    if (length > 0) {
      std::string name = lowercase(std::string(reinterpret_cast<char*>(utf8),
                                               static_cast<size_t>(length)));
      if (name.find('\0') == std::string::npos) names.push_back(std::move(name));
    }
    OPENSSL_free(utf8);
  }
  ERR_clear_error();
  return names;
}

std::string subject_of(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return length > 0 ? std::string(data, static_cast<size_t>(length)) : std::string();
}

int64_t unix_seconds(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out.empty() ? "no names" : out;
}

// Base64 with whitespace ignored, or false if `text` is not that.
bool decode_base64(std::string_view text, std::string* out) {
  std::string compact;
  for (const char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    const bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
    if (!alphabet) return false;
    compact += c;
  }
  if (compact.empty() || compact.size() % 4 != 0) return false;
  out->assign(compact.size() / 4 * 3, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                                     reinterpret_cast<const unsigned char*>(compact.data()),
                                     static_cast<int>(compact.size()));
  if (length < 0) return false;
  // EVP_DecodeBlock counts the padding as decoded zero bytes.
  size_t padding = 0;
  for (size_t i = compact.size(); i > 0 && compact[i - 1] == '='; --i) ++padding;
  if (padding > 2) return false;
  out->resize(static_cast<size_t>(length) - padding);
  return true;
}

}  // namespace

std::string take_openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return {};
  if (const char* reason = ERR_reason_error_string(e)) return reason;
  char text[256];
  ERR_error_string_n(e, text, sizeof text);
  return text;
}

std::string format_utc(int64_t unix_s) {
  const time_t t = static_cast<time_t>(unix_s);
  struct tm tm = {};
  gmtime_r(&t, &tm);
  char text[32];
  const size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(text, n);
}

bool read_credential_file(const std::string& path, std::string* content, uint32_t* mode,
                          std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = path + ": cannot open: " + std::system_category().message(errno);
    return false;
  }
  struct stat st = {};
  bool ok = ::fstat(fd, &st) == 0;
  if (!ok) {
    *error = path + ": cannot stat: " + std::system_category().message(errno);
  } else if (!S_ISREG(st.st_mode)) {
    *error = path + ": not a regular file";
    ok = false;
  } else if (static_cast<uint64_t>(st.st_size) > kCredentialFileBytesMax) {
    *error = path + ": larger than " + std::to_string(kCredentialFileBytesMax) + " bytes";
    ok = false;
  }
  if (ok) {
    *mode = st.st_mode;
    content->resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < content->size()) {
      const ssize_t n = ::read(fd, content->data() + done, content->size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        *error = path + ": read failed: " +
                 (n == 0 ? std::string("file shrank") : std::system_category().message(errno));
        ok = false;
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  return ok;
}

bool parse_certificate(const std::string& chain_label, const std::string& chain_pem,
                       const std::string& key_label, const std::string& key_pem, bool is_default,
                       int64_t now_s, LoadedCertificate* out, std::vector<std::string>* warnings,
                       std::string* error) {
  if (!read_certificates(chain_label, chain_pem, &out->leaf, &out->chain, error)) return false;
  if (!read_private_key(key_label, key_pem, &out->key, error)) return false;
  if (X509_check_private_key(out->leaf.get(), out->key.get()) != 1) {
    ERR_clear_error();
    *error = key_label + ": private key does not match the certificate" +
             (key_label == chain_label ? std::string() : " in " + chain_label);
    return false;
  }
  out->key_slot = EVP_PKEY_get_base_id(out->key.get());
  describe_leaf(out->leaf.get(), out->key.get(), chain_label, &out->info);
  out->info.is_default = is_default;

  const CertificateInfo& info = out->info;
  if (info.not_after_s < now_s) {
    warnings->push_back(chain_label + ": certificate for " + join(info.names) + " expired at " +
                        format_utc(info.not_after_s));
  } else if (info.not_before_s > now_s) {
    warnings->push_back(chain_label + ": certificate for " + join(info.names) +
                        " is not valid before " + format_utc(info.not_before_s));
  }
  ERR_clear_error();
  return true;
}

void describe_leaf(X509* leaf, EVP_PKEY* key, const std::string& source, CertificateInfo* info) {
  info->names = names_of(leaf);
  info->key_type = key_type_of(key);
  info->subject = subject_of(leaf);
  info->not_before_s = unix_seconds(X509_get0_notBefore(leaf));
  info->not_after_s = unix_seconds(X509_get0_notAfter(leaf));
  info->source_file = source;
}

bool read_certificate_chain(const std::string& label, const std::string& chain_pem, X509Ptr* leaf,
                            ChainPtr* chain, std::string* error) {
  return read_certificates(label, chain_pem, leaf, chain, error);
}

bool load_certificate(const std::string& chain_path, const std::string& key_path,
                      bool is_default, int64_t now_s, LoadedCertificate* out,
                      std::vector<std::string>* warnings, std::string* error) {
  std::string chain_pem;
  uint32_t chain_mode = 0;
  if (!read_credential_file(chain_path, &chain_pem, &chain_mode, error)) return false;

  std::string key_pem;
  uint32_t key_mode = chain_mode;
  if (key_path != chain_path && !read_credential_file(key_path, &key_pem, &key_mode, error)) {
    return false;
  }
  const bool ok = parse_certificate(chain_path, chain_pem, key_path,
                                    key_path == chain_path ? chain_pem : key_pem, is_default,
                                    now_s, out, warnings, error);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (key_path == chain_path) OPENSSL_cleanse(chain_pem.data(), chain_pem.size());
  if (!ok) return false;
  if ((key_mode & S_IROTH) != 0) {
    warnings->push_back(key_path + ": private key is readable by others");
  }
  return true;
}

bool load_ticket_keys(const std::string& path, TlsContext::TicketKeys* out,
                      std::vector<std::string>* warnings, std::string* error) {
  std::string content;
  uint32_t mode = 0;
  if (!read_credential_file(path, &content, &mode, error)) return false;
  // Base64 first: raw random bytes are never all base64 characters in
  // practice, while a base64 text of whole keys is never a multiple of 80
  // bytes that decodes to garbage.
  std::string decoded;
  const std::string* bytes = &content;
  if (decode_base64(content, &decoded) && !decoded.empty() && decoded.size() % 80 == 0) {
    bytes = &decoded;
  }
  const size_t size = bytes->size();
  std::string problem;
  if (size == 0 || size % sizeof(TicketKey) != 0) {
    problem = "expected 80 bytes per ticket key, raw or base64 (got " + std::to_string(size) +
              " bytes)";
  } else if (size / sizeof(TicketKey) > kTicketKeysMax) {
    problem = "more than " + std::to_string(kTicketKeysMax) + " ticket keys";
  } else {
    out->keys.resize(size / sizeof(TicketKey));
    std::copy(bytes->begin(), bytes->end(), reinterpret_cast<char*>(out->keys.data()));
    for (size_t i = 0; i < out->keys.size() && problem.empty(); ++i) {
      for (size_t j = 0; j < i && problem.empty(); ++j) {
        if (out->keys[i].name == out->keys[j].name) {
          problem = "ticket keys " + std::to_string(j + 1) + " and " + std::to_string(i + 1) +
                    " have the same name (first 16 bytes)";
        }
      }
    }
  }
  OPENSSL_cleanse(content.data(), content.size());
  OPENSSL_cleanse(decoded.data(), decoded.size());
  if (!problem.empty()) {
    OPENSSL_cleanse(out->keys.data(), out->keys.size() * sizeof(TicketKey));
    out->keys.clear();
    *error = path + ": " + problem;
    return false;
  }
  if ((mode & S_IROTH) != 0) warnings->push_back(path + ": ticket key file is readable by others");
  return true;
}

bool make_random_ticket_keys(TlsContext::TicketKeys* out) {
  out->keys.resize(1);
  return RAND_bytes(reinterpret_cast<unsigned char*>(out->keys.data()),
                    static_cast<int>(sizeof(TicketKey))) == 1;
}

}  // namespace popgate::tls
