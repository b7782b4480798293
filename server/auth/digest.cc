#include "server/auth/digest.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <memory>

namespace popgate::auth {
namespace {

const EVP_MD* md_of(HashAlg alg) noexcept {
  switch (alg) {
    case HashAlg::kMd5:
      return EVP_md5();
    case HashAlg::kSha1:
      return EVP_sha1();
    case HashAlg::kSha256:
      return EVP_sha256();
    case HashAlg::kSha384:
      return EVP_sha384();
    case HashAlg::kSha512:
      return EVP_sha512();
  }
  return nullptr;
}

const char* md_name(HashAlg alg) noexcept {
  switch (alg) {
    case HashAlg::kMd5:
      return "MD5";
    case HashAlg::kSha1:
      return "SHA1";
    case HashAlg::kSha256:
      return "SHA2-256";
    case HashAlg::kSha384:
      return "SHA2-384";
    case HashAlg::kSha512:
      return "SHA2-512";
  }
  return "";
}

// Fetched once per process (thread-safe static init): fetching per call
// takes a global lock in OpenSSL 3.
EVP_MAC* hmac_algorithm() noexcept {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const noexcept { EVP_MAC_CTX_free(c); }
};

}  // namespace

bool digest(HashAlg alg, std::initializer_list<std::string_view> parts,
            std::span<uint8_t> out) noexcept {
  if (out.size() < digest_bytes(alg)) return false;
  const std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), md_of(alg), nullptr) != 1) return false;
  for (const std::string_view part : parts) {
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) return false;
  }
  unsigned int len = 0;
  return EVP_DigestFinal_ex(ctx.get(), out.data(), &len) == 1 && len == digest_bytes(alg);
}

bool hmac(HashAlg alg, std::string_view key, std::initializer_list<std::string_view> parts,
          std::span<uint8_t> out) noexcept {
  if (out.size() < digest_bytes(alg) || hmac_algorithm() == nullptr) return false;
  const std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(hmac_algorithm()));
  if (!ctx) return false;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(md_name(alg)), 0),
      OSSL_PARAM_construct_end()};
  // An empty key is legal HMAC; OpenSSL wants a non-null pointer for it.
  static const unsigned char kEmpty = 0;
  const auto* key_bytes =
      key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  if (EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) != 1) return false;
  for (const std::string_view part : parts) {
    if (EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(part.data()),
                       part.size()) != 1) {
      return false;
    }
  }
  size_t len = 0;
  return EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) == 1 && len == digest_bytes(alg);
}

bool pbkdf2_hmac(HashAlg alg, std::string_view password, std::string_view salt, uint32_t iterations,
                 std::span<uint8_t> out) noexcept {
  constexpr size_t kIntMax = 0x7fffffff;
  if (iterations == 0 || iterations > kIntMax || password.size() > kIntMax ||
      salt.size() > kIntMax || out.size() > kIntMax) {
    return false;
  }
  // OpenSSL wants non-null pointers even for empty inputs.
  static const char kEmpty = 0;
  const char* pass = password.empty() ? &kEmpty : password.data();
  const char* salt_bytes = salt.empty() ? &kEmpty : salt.data();
  return PKCS5_PBKDF2_HMAC(pass, static_cast<int>(password.size()),
                           reinterpret_cast<const unsigned char*>(salt_bytes),
                           static_cast<int>(salt.size()), static_cast<int>(iterations), md_of(alg),
                           static_cast<int>(out.size()), out.data()) == 1;
}

}  // namespace popgate::auth
