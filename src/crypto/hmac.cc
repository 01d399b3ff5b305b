// HmacSha256 (crypto.h). OpenSSL's EVP_MAC "HMAC" keys the MAC and is the
// reference; per message, the MAC runs from two SHA-256 states (the key's
// inner and outer blocks, hashed by OpenSSL's SHA-256) copied by value,
// because OpenSSL 3.0's EVP_MAC re-initialisation allocates per message
// (measured: 1.8-2.4x the per-message cost, > 10 % on the Output Gate's
// fingerprint path). Create proves the states against OpenSSL's HMAC for the
// key before any MAC is returned, so the two cannot disagree silently.
// HkdfSha256 runs on the same keyed states: OpenSSL 3.0's HKDF fetches the
// KDF, the MAC and the digest by name on every call (3.2 us against 0.5 us
// per derivation here, paid for every file DecryptFS opens); its result is
// checked against OpenSSL's HKDF once per process before any key is derived.
#define OPENSSL_SUPPRESS_DEPRECATED  // SHA256_CTX: the keyed states are copied per message
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "crypto/crypto.h"
#include "crypto/openssl_util.h"

namespace cce::crypto {
namespace {

using internal::Free;
using internal::OpensslInternal;
using MacPtr = std::unique_ptr<EVP_MAC, Free<EVP_MAC_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Free<EVP_MAC_CTX_free>>;
using KdfPtr = std::unique_ptr<EVP_KDF, Free<EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, Free<EVP_KDF_CTX_free>>;

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

// The SHA-256 states after the key's inner (key ^ 0x36..) and outer
// (key ^ 0x5c..) blocks (RFC 2104), into states[0] and states[1]. `block`
// is scratch of SHA256_CBLOCK bytes, wiped by the caller.
Status KeyStates(ByteSpan key, uint8_t* block, SHA256_CTX states[2]) {
  std::memset(block, 0, SHA256_CBLOCK);
  if (key.size() > SHA256_CBLOCK) {  // longer keys are hashed first
    if (SHA256(key.data(), key.size(), block) == nullptr) Fatal("HMAC-SHA256 key hash");
  } else if (!key.empty()) {
    std::memcpy(block, key.data(), key.size());
  }
  const uint8_t xors[2] = {0x36, 0x5c};
  for (int s = 0; s < 2; ++s) {
    // The pad is built in place: block ^ xor, then block restored.
    for (size_t i = 0; i < SHA256_CBLOCK; ++i) block[i] ^= xors[s];
    const bool ok =
        SHA256_Init(&states[s]) == 1 && SHA256_Update(&states[s], block, SHA256_CBLOCK) == 1;
    for (size_t i = 0; i < SHA256_CBLOCK; ++i) block[i] ^= xors[s];
    if (!ok) return OpensslInternal("HMAC-SHA256: SHA-256 of the key block");
  }
  return Status::Ok();
}

// HMAC over the concatenation of `parts` with keyed states; `ctx` is scratch.
void MacWith(const SHA256_CTX states[2], std::initializer_list<ByteSpan> parts, SHA256_CTX* ctx,
             uint8_t out[SHA256_DIGEST_LENGTH]) {
  *ctx = states[0];
  for (ByteSpan p : parts) {
    if (SHA256_Update(ctx, p.data(), p.size()) != 1) Fatal("HMAC-SHA256 inner hash");
  }
  if (SHA256_Final(out, ctx) != 1) Fatal("HMAC-SHA256 inner hash");
  *ctx = states[1];
  if (SHA256_Update(ctx, out, SHA256_DIGEST_LENGTH) != 1 || SHA256_Final(out, ctx) != 1) {
    Fatal("HMAC-SHA256 outer hash");
  }
}

// HKDF-SHA256 by OpenSSL's EVP_KDF "HKDF": the reference HkdfSha256 is
// checked against.
Status OpensslHkdf(ByteSpan ikm, ByteSpan salt, ByteSpan info, std::span<uint8_t> out) {
  KdfPtr kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr));
  if (!kdf) return OpensslInternal("HKDF-SHA256: EVP_KDF_fetch");
  KdfCtxPtr kctx(EVP_KDF_CTX_new(kdf.get()));
  if (!kctx) return OpensslInternal("HKDF-SHA256: EVP_KDF_CTX_new");
  // OSSL_PARAM holds non-const pointers but OpenSSL only reads these.
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<uint8_t*>(ikm.data()), ikm.size());
  // An absent salt is HashLen zero bytes (RFC 5869 2.2), as when omitted.
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<uint8_t*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  if (EVP_KDF_derive(kctx.get(), out.data(), out.size(), params) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return OpensslInternal("HKDF-SHA256: derive");
  }
  return Status::Ok();
}

// Per-thread scratch for HkdfSha256 in locked memory (the keyed states and
// the PRK are as secret as the input key), wiped after every use.
struct HkdfScratch {
  static constexpr size_t kBytes =
      2 * sizeof(SHA256_CTX) + sizeof(SHA256_CTX) + SHA256_CBLOCK + 2 * SHA256_DIGEST_LENGTH;
  SecretBytes mem = SecretBytes(kBytes);
  SHA256_CTX* states() { return reinterpret_cast<SHA256_CTX*>(mem.data()); }
  SHA256_CTX* ctx() { return states() + 2; }
  uint8_t* block() { return reinterpret_cast<uint8_t*>(states() + 3); }
  uint8_t* prk() { return block() + SHA256_CBLOCK; }
  uint8_t* t() { return prk() + SHA256_DIGEST_LENGTH; }
};

Status HkdfWithStates(ByteSpan ikm, ByteSpan salt, ByteSpan info, std::span<uint8_t> out) {
  thread_local HkdfScratch scratch;
  if (scratch.mem.size() != HkdfScratch::kBytes) return Internal("HKDF-SHA256: allocation");
  struct Wipe {
    HkdfScratch& s;
    ~Wipe() { OPENSSL_cleanse(s.mem.data(), s.mem.size()); }
  } wipe{scratch};
  static const uint8_t kZeroSalt[SHA256_DIGEST_LENGTH] = {};
  // Extract: PRK = HMAC(salt, IKM); an absent salt is HashLen zeros.
  RETURN_IF_ERROR(
      KeyStates(salt.empty() ? ByteSpan(kZeroSalt) : salt, scratch.block(), scratch.states()));
  MacWith(scratch.states(), {ikm}, scratch.ctx(), scratch.prk());
  // Expand: T(i) = HMAC(PRK, T(i-1) || info || i).
  RETURN_IF_ERROR(
      KeyStates(ByteSpan(scratch.prk(), SHA256_DIGEST_LENGTH), scratch.block(), scratch.states()));
  size_t done = 0;
  for (uint8_t i = 1; done < out.size(); ++i) {
    const ByteSpan previous(scratch.t(), i == 1 ? 0 : SHA256_DIGEST_LENGTH);
    MacWith(scratch.states(), {previous, info, ByteSpan(&i, 1)}, scratch.ctx(), scratch.t());
    const size_t n = std::min<size_t>(SHA256_DIGEST_LENGTH, out.size() - done);
    std::memcpy(out.data() + done, scratch.t(), n);
    done += n;
  }
  return Status::Ok();
}

// Once per process, before any key is derived: HkdfWithStates must give
// OpenSSL's HKDF (a salt, info and two output blocks; no salt, no info).
void CheckHkdfAgainstOpenssl() {
  static const bool agree = [] {
    static const char kIkm[] = "cce4long HKDF-SHA256 self-check input keying material";
    static const char kSalt[] = "salt";
    static const char kInfo[] = "info";
    for (int c = 0; c < 2; ++c) {
      const ByteSpan salt = c == 0 ? AsBytes(std::string_view(kSalt)) : ByteSpan();
      const ByteSpan info = c == 0 ? AsBytes(std::string_view(kInfo)) : ByteSpan();
      uint8_t want[42] = {};
      uint8_t got[42] = {};
      if (!OpensslHkdf(AsBytes(std::string_view(kIkm)), salt, info, want).ok() ||
          !HkdfWithStates(AsBytes(std::string_view(kIkm)), salt, info, got).ok() ||
          std::memcmp(want, got, sizeof want) != 0) {
        return false;
      }
    }
    return true;
  }();
  if (!agree) Fatal("HKDF-SHA256 self-check against OpenSSL's HKDF");
}

}  // namespace

Status HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, std::span<uint8_t> out) {
  constexpr size_t kMaxOut = size_t{255} * SHA256_DIGEST_LENGTH;  // RFC 5869 2.3: L <= 255*HashLen
  if (out.empty()) return InvalidArgument("HKDF-SHA256: output length must be at least 1 byte");
  if (out.size() > kMaxOut) {
    return InvalidArgument("HKDF-SHA256: output length " + std::to_string(out.size()) +
                           " exceeds the RFC 5869 limit of " + std::to_string(kMaxOut) + " bytes");
  }
  CheckHkdfAgainstOpenssl();
  Status st = HkdfWithStates(ikm, salt, info, out);
  if (!st.ok()) OPENSSL_cleanse(out.data(), out.size());
  return st;
}

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
  RETURN_IF_ERROR(KeyStates(key, block.data(), reinterpret_cast<SHA256_CTX*>(impl->states.data())));
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
  SHA256_CTX ctx;
  Sha256Digest out{};
  MacWith(impl_->inner(), {AsBytes(a), AsBytes(b)}, &ctx, out.data());  // inner, outer adjacent
  OPENSSL_cleanse(&ctx, sizeof ctx);
  return out;
}

}  // namespace cce::crypto
