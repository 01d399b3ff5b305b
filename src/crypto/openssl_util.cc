#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED

#include "crypto/openssl_util.h"

#include <openssl/err.h>

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

}  // namespace cce::crypto::internal
