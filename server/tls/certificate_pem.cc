#include "server/tls/certificate_pem.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "server/tls/tls_credentials.h"

namespace popgate::tls {
namespace {

using BioPtr = std::unique_ptr<BIO, OpensslDeleter<BIO_free>>;

// What a memory BIO holds, or false.
bool take_bio(BIO* bio, std::string* out) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  if (length <= 0 || data == nullptr) return false;
  out->assign(data, static_cast<size_t>(length));
  return true;
}

bool write_chain(const LoadedCertificate& cert, std::string* out) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert.leaf.get()) != 1) return false;
  for (int i = 0; i < sk_X509_num(cert.chain.get()); ++i) {
    if (PEM_write_bio_X509(bio.get(), sk_X509_value(cert.chain.get(), i)) != 1) return false;
  }
  return take_bio(bio.get(), out);
}

bool write_key(const LoadedCertificate& cert, std::string* out) {
  // A secure-heap BIO would be nicer; the buffer is cleared before it goes.
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return false;
  bool ok = PEM_write_bio_PrivateKey(bio.get(), cert.key.get(), nullptr, nullptr, 0, nullptr,
                                     nullptr) == 1 &&
            take_bio(bio.get(), out);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  if (length > 0 && data != nullptr) OPENSSL_cleanse(data, static_cast<size_t>(length));
  return ok;
}

}  // namespace

CheckedCertificate::~CheckedCertificate() { OPENSSL_cleanse(key_pem.data(), key_pem.size()); }

std::string utc_text(int64_t unix_s) { return format_utc(unix_s); }

bool check_certificate_pem(const CertificatePem& pem, const std::string& key_source, int64_t now_s,
                           CheckedCertificate* out, std::vector<std::string>* warnings,
                           std::string* error) {
  LoadedCertificate cert;
  const bool separate = !pem.key_pem.empty();
  const bool ok = parse_certificate(
      pem.source, pem.chain_pem, separate && !key_source.empty() ? key_source : pem.source,
      separate ? pem.key_pem : pem.chain_pem, false, now_s, &cert, warnings, error);
  if (!ok) {
    ERR_clear_error();
    return false;
  }
  out->info = cert.info;
  if (!write_chain(cert, &out->chain_pem) || !write_key(cert, &out->key_pem)) {
    *error = pem.source + ": cannot encode the certificate: " + take_openssl_error();
    return false;
  }
  ERR_clear_error();
  return true;
}

bool describe_certificate_chain(const std::string& source, const std::string& chain_pem,
                                CertificateInfo* out, std::string* error) {
  X509Ptr leaf;
  ChainPtr chain;
  if (!read_certificate_chain(source, chain_pem, &leaf, &chain, error)) {
    ERR_clear_error();
    return false;
  }
  EVP_PKEY* key = X509_get0_pubkey(leaf.get());
  if (key == nullptr) {
    *error = source + ": the certificate's public key cannot be read: " + take_openssl_error();
    return false;
  }
  describe_leaf(leaf.get(), key, source, out);
  ERR_clear_error();
  return true;
}

}  // namespace popgate::tls
