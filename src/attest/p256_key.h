// p256_key: a P-256 public key imported once into OpenSSL for repeated
// ECDSA-SHA256 verification. Importing a point (EVP_PKEY_fromdata) builds an
// EC group and checks the point, which costs about as much as a quarter of a
// verification; a verifier sees the same PCK leaf key in every quote of a
// platform and the same attestation key in every quote of a TD boot, so
// imported keys are kept in a bounded cache keyed by the point's bytes.
// Only parsing is cached: every signature is verified.
#pragma once

#include <memory>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::attest {

class P256PublicKey {
 public:
  // A 65-byte uncompressed point (0x04 || X || Y) on P-256. Errors
  // (kInvalidArgument): another size or prefix, a point not on the curve.
  static StatusOr<std::shared_ptr<const P256PublicKey>> Import(crypto::ByteSpan point);
  // Import through a process-wide cache keyed by the exact point bytes
  // (bounded: at most kCacheEntries keys, then it starts over; thread-safe).
  // Failures are not cached.
  static StatusOr<std::shared_ptr<const P256PublicKey>> ImportCached(crypto::ByteSpan point);
  static constexpr size_t kCacheEntries = 1024;
  static size_t CachedForTesting();  // keys in the cache now

  ~P256PublicKey();
  P256PublicKey(const P256PublicKey&) = delete;
  P256PublicKey& operator=(const P256PublicKey&) = delete;

  // ECDSA P-256 with SHA-256 over message, signature as 64 bytes r || s
  // (big-endian, as in TDX quotes). true: valid; false: well-formed but does
  // not verify (r or s zero or >= n included); error (kInvalidArgument): a
  // signature that is not 64 bytes. Thread-safe (the key is only read).
  StatusOr<bool> VerifyRawRs(crypto::ByteSpan message, crypto::ByteSpan signature) const;

 private:
  struct Impl;
  explicit P256PublicKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cce::attest
