// Private to src/crypto: RAII for OpenSSL handles and OpenSSL error
// reporting, shared by crypto.cc and x509.cc.
#pragma once

#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

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
inline std::string Sz(size_t n) {
  return std::to_string(n);
}

}  // namespace cce::crypto::internal
