// Private to src/crypto: RAII for OpenSSL handles and OpenSSL error
// reporting, shared by crypto.cc and x509.cc.
#pragma once

#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cce::crypto::internal {

template <auto Fn>
struct Free {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};

using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Free<EVP_PKEY_CTX_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Free<OSSL_PARAM_BLD_free>>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, Free<OSSL_PARAM_free>>;

// Drains this thread's OpenSSL error queue into one line. Always drains, so a
// failure never leaks stale errors into a later, unrelated call on the same
// (FUSE worker) thread.
std::string DrainOpensslErrors();
// "what: <drained OpenSSL errors>" with the given code.
Status OpensslFailure(StatusCode code, std::string_view what);
inline Status OpensslInternal(std::string_view what) {
  return OpensslFailure(StatusCode::kInternal, what);
}
inline Status OpensslInvalid(std::string_view what) {
  return OpensslFailure(StatusCode::kInvalidArgument, what);
}
// SHA-256, SHA-384 and SHA-512 fetched once per process and never freed.
// OpenSSL 3.0 looks the implementation behind EVP_sha256() up again (a
// locked search by name) on every digest, sign or verify it is given to;
// a fetched EVP_MD skips that. Falls back to EVP_sha256() etc. if the fetch
// fails, so never null.
const EVP_MD* Sha256Md();
const EVP_MD* Sha384Md();
const EVP_MD* Sha512Md();
// AES-256-GCM fetched once per process, for the same reason (every
// EVP_EncryptInit_ex given EVP_aes_256_gcm() looks it up again).
const EVP_CIPHER* Aes256GcmCipher();

// A P-256 key holding only the domain parameters, made once per process and
// never modified (so threads share it): copying its group is much cheaper
// than building the group from its name, which OpenSSL 3.0 does for every
// EVP_PKEY_fromdata and every keygen by group name. Null if OpenSSL failed.
const EVP_PKEY* P256Params();

// A P-256 public key from its 65-byte uncompressed encoding 0x04||X||Y:
// coordinates < p and the point on the curve (the decode), not infinity
// (EVP_PKEY_public_check_quick). No order check: P-256 has cofactor 1, so
// every curve point but infinity has order n. kInvalidArgument starting
// with `what` when refused; the caller checks the length and 0x04 first.
StatusOr<PkeyPtr> P256PublicFromPoint(const uint8_t* point, size_t size, std::string_view what);

inline std::string Sz(size_t n) {
  return std::to_string(n);
}

}  // namespace cce::crypto::internal
