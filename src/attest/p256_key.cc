#include "attest/p256_key.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>
#include <map>
#include <mutex>
#include <string>

namespace cce::attest {
namespace {

constexpr size_t kPointSize = 65;
constexpr size_t kRawSignatureSize = 64;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamsFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};

std::string OpensslErrors() {
  std::string out;
  unsigned long e = 0;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error" : out;
}

// One DER INTEGER from a 32-byte big-endian unsigned value: minimal, with a
// leading zero byte when the top bit is set.
void PutInteger(const uint8_t* v, std::array<uint8_t, 72>& out, size_t& n) {
  size_t skip = 0;
  while (skip < 31 && v[skip] == 0) ++skip;
  const bool pad = (v[skip] & 0x80) != 0;
  out[n++] = 0x02;
  out[n++] = static_cast<uint8_t>(32 - skip + (pad ? 1 : 0));
  if (pad) out[n++] = 0;
  for (size_t i = skip; i < 32; ++i) out[n++] = v[i];
}

struct CacheState {
  std::mutex mu;
  std::map<std::array<uint8_t, kPointSize>, std::shared_ptr<const P256PublicKey>> keys;
};

CacheState& Cache() {
  static CacheState* state = new CacheState();  // never destroyed: used until exit
  return *state;
}

}  // namespace

struct P256PublicKey::Impl {
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey;
};

P256PublicKey::P256PublicKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
P256PublicKey::~P256PublicKey() = default;

StatusOr<std::shared_ptr<const P256PublicKey>> P256PublicKey::Import(crypto::ByteSpan point) {
  if (point.size() != kPointSize || point[0] != 0x04) {
    return InvalidArgument(
        "ECDSA P-256: public key must be a 65-byte uncompressed point "
        "(0x04||X||Y), got " +
        std::to_string(point.size()) + " bytes");
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return Internal("ECDSA P-256: building key parameters: " + OpensslErrors());
  }
  std::unique_ptr<OSSL_PARAM, ParamsFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return Internal("ECDSA P-256: EVP_PKEY_fromdata_init: " + OpensslErrors());
  }
  // The import decodes the point and rejects coordinates >= p and points not
  // on the curve.
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return InvalidArgument("ECDSA P-256: public key is not a valid curve point: " +
                           OpensslErrors());
  }
  auto impl = std::make_unique<Impl>();
  impl->pkey.reset(raw);
  return std::shared_ptr<const P256PublicKey>(new P256PublicKey(std::move(impl)));
}

StatusOr<std::shared_ptr<const P256PublicKey>> P256PublicKey::ImportCached(crypto::ByteSpan point) {
  if (point.size() != kPointSize) return Import(point);  // the error
  std::array<uint8_t, kPointSize> id{};
  std::copy(point.begin(), point.end(), id.begin());
  CacheState& cache = Cache();
  {
    std::lock_guard<std::mutex> l(cache.mu);
    auto it = cache.keys.find(id);
    if (it != cache.keys.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const P256PublicKey> key, Import(point));
  std::lock_guard<std::mutex> l(cache.mu);
  if (cache.keys.size() >= kCacheEntries) cache.keys.clear();  // bounded; refilled by use
  cache.keys.emplace(id, key);
  return key;
}

size_t P256PublicKey::CachedForTesting() {
  CacheState& cache = Cache();
  std::lock_guard<std::mutex> l(cache.mu);
  return cache.keys.size();
}

StatusOr<bool> P256PublicKey::VerifyRawRs(crypto::ByteSpan message,
                                          crypto::ByteSpan signature) const {
  if (signature.size() != kRawSignatureSize) {
    return InvalidArgument("ECDSA P-256: raw r||s signature must be 64 bytes, got " +
                           std::to_string(signature.size()));
  }
  std::array<uint8_t, 72> der{};
  size_t n = 2;
  PutInteger(signature.data(), der, n);
  PutInteger(signature.data() + 32, der, n);
  der[0] = 0x30;
  der[1] = static_cast<uint8_t>(n - 2);
  const crypto::Sha256Digest digest = crypto::Sha256(message);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->pkey.get(), nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) {
    return Internal("ECDSA P-256: EVP_PKEY_verify_init: " + OpensslErrors());
  }
  const int rc = EVP_PKEY_verify(ctx.get(), der.data(), n, digest.data(), digest.size());
  if (rc == 1) return true;
  if (rc == 0) {
    ERR_clear_error();  // a wrong signature is an answer, not an error
    return false;
  }
  return Internal("ECDSA P-256: EVP_PKEY_verify: " + OpensslErrors());
}

}  // namespace cce::attest
