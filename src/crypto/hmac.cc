// HmacSha256 (crypto.h). OpenSSL's EVP_MAC "HMAC" keys the MAC and is the
// reference; per message, the MAC runs from two SHA-256 states (the key's
// inner and outer blocks, hashed by OpenSSL's SHA-256) copied by value,
// because OpenSSL 3.0's EVP_MAC re-initialisation allocates per message
// (measured: 1.8-2.4x the per-message cost, > 10 % on the Output Gate's
// fingerprint path). Create proves the states against OpenSSL's HMAC for the
// key before any MAC is returned, so the two cannot disagree silently.
#define OPENSSL_SUPPRESS_DEPRECATED  // SHA256_CTX: the keyed states are copied per message
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "crypto/crypto.h"
#include "crypto/openssl_util.h"

namespace cce::crypto {
namespace {

using internal::Free;
using internal::OpensslInternal;
using MacPtr = std::unique_ptr<EVP_MAC, Free<EVP_MAC_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Free<EVP_MAC_CTX_free>>;

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "cce: fatal: %s failed\n", what);
  std::abort();
}

// HMAC-SHA256(key, msg) by OpenSSL's EVP_MAC, start to end.
Status OpensslHmac(ByteSpan key, ByteSpan msg, Sha256Digest* out) {
  MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return OpensslInternal("HMAC-SHA256: EVP_MAC_fetch");
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return OpensslInternal("HMAC-SHA256: EVP_MAC_CTX_new");
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  // An empty key must still be a key (a null pointer means "no new key").
  static const uint8_t kNoKey = 0;
  size_t len = 0;
  if (EVP_MAC_init(ctx.get(), key.empty() ? &kNoKey : key.data(), key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), msg.data(), msg.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out->data(), &len, out->size()) != 1 || len != out->size()) {
    return OpensslInternal("HMAC-SHA256: EVP_MAC with the key");
  }
  return Status::Ok();
}

}  // namespace

struct HmacSha256::Impl {
  // SHA-256 states after the key's inner (key ^ 0x36..) and outer
  // (key ^ 0x5c..) blocks, in locked memory.
  SecretBytes states = SecretBytes(2 * sizeof(SHA256_CTX));
  const SHA256_CTX* inner() const { return reinterpret_cast<const SHA256_CTX*>(states.data()); }
  const SHA256_CTX* outer() const { return inner() + 1; }
};

HmacSha256::HmacSha256(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HmacSha256::HmacSha256(HmacSha256&&) noexcept = default;
HmacSha256& HmacSha256::operator=(HmacSha256&&) noexcept = default;
HmacSha256::~HmacSha256() = default;

StatusOr<HmacSha256> HmacSha256::Create(ByteSpan key) {
  auto impl = std::make_unique<Impl>();
  if (impl->states.size() != 2 * sizeof(SHA256_CTX)) return Internal("HMAC-SHA256: allocation");
  SecretBytes block(SHA256_CBLOCK);  // the key, hashed first if longer than a block (RFC 2104)
  if (key.size() > SHA256_CBLOCK) {
    if (SHA256(key.data(), key.size(), block.data()) == nullptr) Fatal("HMAC-SHA256 key hash");
  } else if (!key.empty()) {
    std::memcpy(block.data(), key.data(), key.size());
  }
  SecretBytes pad(SHA256_CBLOCK);
  SHA256_CTX* states = reinterpret_cast<SHA256_CTX*>(impl->states.data());
  const uint8_t xors[2] = {0x36, 0x5c};
  for (int s = 0; s < 2; ++s) {
    for (size_t i = 0; i < SHA256_CBLOCK; ++i) pad.data()[i] = block.data()[i] ^ xors[s];
    if (SHA256_Init(&states[s]) != 1 || SHA256_Update(&states[s], pad.data(), pad.size()) != 1) {
      return OpensslInternal("HMAC-SHA256: SHA-256 of the key block");
    }
  }
  HmacSha256 mac(std::move(impl));
  // The states must give OpenSSL's HMAC for this key (an empty message and
  // one longer than a block), or nothing is MACed with them.
  static const char kProbe[] =
      "cce4long HMAC-SHA256 self-check: a message longer than one SHA-256 block, 64 bytes";
  for (std::string_view probe : {std::string_view(), std::string_view(kProbe)}) {
    Sha256Digest want{};
    RETURN_IF_ERROR(OpensslHmac(key, AsBytes(probe), &want));
    if (mac.Mac(probe) != want) {
      return Internal("HMAC-SHA256: precomputed key states disagree with OpenSSL's HMAC");
    }
  }
  return mac;
}

Sha256Digest HmacSha256::Mac(ByteSpan msg) const {
  return Mac(std::string_view(reinterpret_cast<const char*>(msg.data()), msg.size()));
}

Sha256Digest HmacSha256::Mac(std::string_view a, std::string_view b) const {
  if (!impl_) Fatal("HMAC-SHA256 on a moved-from object");
  SHA256_CTX ctx = *impl_->inner();
  Sha256Digest out{};
  if (SHA256_Update(&ctx, a.data(), a.size()) != 1 ||
      SHA256_Update(&ctx, b.data(), b.size()) != 1 || SHA256_Final(out.data(), &ctx) != 1) {
    Fatal("HMAC-SHA256 inner hash");
  }
  ctx = *impl_->outer();
  if (SHA256_Update(&ctx, out.data(), out.size()) != 1 || SHA256_Final(out.data(), &ctx) != 1) {
    Fatal("HMAC-SHA256 outer hash");
  }
  OPENSSL_cleanse(&ctx, sizeof ctx);
  return out;
}

}  // namespace cce::crypto
