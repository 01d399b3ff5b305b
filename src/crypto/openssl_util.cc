#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED

#include "crypto/openssl_util.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

namespace cce::crypto::internal {

std::string DrainOpensslErrors() {
  std::string out;
  int kept = 0;
  while (unsigned long e = ERR_get_error()) {
    if (kept++ >= 4) continue;  // keep messages short; still drain the rest
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string("no OpenSSL error reported") : out;
}

Status OpensslFailure(StatusCode code, std::string_view what) {
  std::string m(what);
  m += ": ";
  m += DrainOpensslErrors();
  return {code, std::move(m)};
}

namespace {

const EVP_MD* FetchOnce(const char* name, const EVP_MD* fallback) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) {
    ERR_clear_error();
    return fallback;
  }
  return md;
}

}  // namespace

const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = FetchOnce("SHA2-256", EVP_sha256());
  return md;
}
const EVP_MD* Sha384Md() {
  static const EVP_MD* const md = FetchOnce("SHA2-384", EVP_sha384());
  return md;
}
const EVP_MD* Sha512Md() {
  static const EVP_MD* const md = FetchOnce("SHA2-512", EVP_sha512());
  return md;
}

const EVP_CIPHER* Aes256GcmCipher() {
  static const EVP_CIPHER* const cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (c == nullptr) ERR_clear_error();
    return c != nullptr ? static_cast<const EVP_CIPHER*>(c) : EVP_aes_256_gcm();
  }();
  return cipher;
}

const EVP_PKEY* P256Params() {
  static EVP_PKEY* const params = [] {
    EVP_PKEY* out = nullptr;
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    if (!ctx || EVP_PKEY_paramgen_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_group_name(ctx.get(), SN_X9_62_prime256v1) != 1 ||
        EVP_PKEY_paramgen(ctx.get(), &out) != 1) {
      ERR_clear_error();
      return static_cast<EVP_PKEY*>(nullptr);
    }
    return out;
  }();
  return params;
}

StatusOr<PkeyPtr> P256PublicFromPoint(const uint8_t* point, size_t size, std::string_view what) {
  const EVP_PKEY* params = P256Params();
  if (params == nullptr) return OpensslInternal("P-256: making the domain parameters");
  PkeyPtr key(EVP_PKEY_dup(const_cast<EVP_PKEY*>(params)));
  if (!key) return OpensslInternal("P-256: EVP_PKEY_dup");
  // The decode refuses coordinates >= p and points off the curve.
  if (EVP_PKEY_set1_encoded_public_key(key.get(), point, size) != 1) {
    return OpensslFailure(StatusCode::kInvalidArgument, what);
  }
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check_quick(check.get()) != 1) {
    return OpensslFailure(StatusCode::kInvalidArgument, what);
  }
  return key;
}

}  // namespace cce::crypto::internal
