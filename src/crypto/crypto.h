// crypto: the only place cce4long touches cryptographic primitives. Thin,
// typed wrappers over OpenSSL 3 (no home-made primitives): AES-256-GCM,
// HKDF-SHA256, HMAC-SHA256, SHA-2, Ed25519, ECDH (X25519, P-256), a CSPRNG, constant-time
// comparison, and SecretBytes for key material.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cce::crypto {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Key material, mlock'd (best effort: failures counted in MlockFailures(), as RLIMIT_MEMLOCK
// may be small), kept out of core dumps, wiped with OPENSSL_cleanse on destruction. Up to 64
// bytes: a slot in one locked region shared by small secrets (no system call each); larger:
// pages of their own. Not copyable; there is deliberately no operator<< or ToString.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);  // zero-filled
  static SecretBytes CopyOf(ByteSpan bytes);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<uint8_t> span() { return {data_, size_}; }
  ByteSpan span() const { return {data_, size_}; }

  static size_t MlockFailures();

 private:
  void Wipe();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// CSPRNG (OpenSSL RAND_bytes, seeded by the kernel).
Status RandomBytes(std::span<uint8_t> out);
StatusOr<SecretBytes> RandomSecret(size_t size);

// Compares in time independent of the contents (length may leak).
bool ConstantTimeEquals(ByteSpan a, ByteSpan b);

using Sha256Digest = std::array<uint8_t, 32>;
using Sha384Digest = std::array<uint8_t, 48>;
using Sha512Digest = std::array<uint8_t, 64>;
Sha256Digest Sha256(ByteSpan data);
Sha384Digest Sha384(ByteSpan data);
Sha512Digest Sha512(ByteSpan data);

// Incremental SHA-256.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(ByteSpan data);
  Sha256Digest Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// HMAC-SHA256 (RFC 2104) under one key. OpenSSL's EVP_MAC "HMAC" is the
// reference: Create checks the key's precomputed inner and outer SHA-256
// states (OpenSSL's SHA-256, in locked memory) against it, and each Mac then
// costs the message plus two compressions, without allocating. Mac is const
// and thread-safe.
class HmacSha256 {
 public:
  // Any key length (RFC 2104: keys longer than 64 bytes are hashed first).
  // Errors: kInternal if OpenSSL cannot fetch or key the MAC, or if the
  // precomputed states disagree with OpenSSL's HMAC for this key.
  static StatusOr<HmacSha256> Create(ByteSpan key);
  HmacSha256(HmacSha256&&) noexcept;
  HmacSha256& operator=(HmacSha256&&) noexcept;
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  ~HmacSha256();

  // HMAC(key, msg). Aborts the process on an OpenSSL failure or on a
  // moved-from object: a MAC is never replaced by an unkeyed value.
  Sha256Digest Mac(ByteSpan msg) const;
  // HMAC(key, a || b), without concatenating.
  Sha256Digest Mac(std::string_view a, std::string_view b = {}) const;

 private:
  struct Impl;
  explicit HmacSha256(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// HKDF-SHA256 (RFC 5869) extract-and-expand into out (at most 255*32 bytes).
Status HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, std::span<uint8_t> out);

// AES-256-GCM with a 96-bit nonce and 128-bit tag. One object holds one key
// schedule and is not thread-safe: give each thread its own (cheap to make).
class Aes256Gcm {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;

  static StatusOr<Aes256Gcm> Create(ByteSpan key);
  Aes256Gcm(Aes256Gcm&&) noexcept;
  Aes256Gcm& operator=(Aes256Gcm&&) noexcept;
  ~Aes256Gcm();

  // out must hold plaintext.size() + kTagSize bytes: ciphertext then tag.
  // out may alias plaintext exactly (in-place).
  Status Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, std::span<uint8_t> out);
  // sealed is ciphertext||tag; out must hold sealed.size() - kTagSize bytes.
  // Returns kDataLoss if the tag does not verify; out is then zeroed.
  Status Open(ByteSpan nonce, ByteSpan aad, ByteSpan sealed, std::span<uint8_t> out);

 private:
  struct Impl;
  explicit Aes256Gcm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Ed25519 (RFC 8032, pure).
class Ed25519PrivateKey {
 public:
  static constexpr size_t kSeedSize = 32;
  static constexpr size_t kPublicKeySize = 32;
  static constexpr size_t kSignatureSize = 64;

  static StatusOr<Ed25519PrivateKey> Generate();
  static StatusOr<Ed25519PrivateKey> FromSeed(ByteSpan seed);
  Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept;
  Ed25519PrivateKey& operator=(Ed25519PrivateKey&&) noexcept;
  ~Ed25519PrivateKey();

  std::array<uint8_t, kPublicKeySize> PublicKey() const;
  StatusOr<SecretBytes> Seed() const;
  StatusOr<std::array<uint8_t, kSignatureSize>> Sign(ByteSpan message) const;
  // Sign, and remember the signature as Ed25519VerifyMemoized does one that
  // verified, so this process never spends a verification on it.
  StatusOr<std::array<uint8_t, kSignatureSize>> SignRemembered(ByteSpan message) const;

 private:
  struct Impl;
  explicit Ed25519PrivateKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};
// Returns true only for a valid signature by public_key over message.
bool Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature);
// Ed25519Verify for hot paths that check the same signature again and again
// (a token at every request, a rental row at every key release). Remembers
// the signatures that verified (and those SignRemembered made) in a
// process-wide set of SHA-256(public key || signature || message), at most
// kEd25519MemoEntries (emptied when full). Verification is a pure function of
// the three inputs, so a hit answers exactly as a fresh check; a failure is
// never remembered. Thread-safe.
inline constexpr size_t kEd25519MemoEntries = 4096;
bool Ed25519VerifyMemoized(ByteSpan public_key, ByteSpan message, ByteSpan signature);
size_t Ed25519MemoSizeForTest();
void Ed25519MemoClearForTest();

// Ephemeral-static ECDH. Public keys: X25519 raw 32 bytes; P-256 uncompressed
// SEC1 point (65 bytes, 0x04||X||Y).
enum class EcdhCurve { kX25519, kP256 };

class EcdhPrivateKey {
 public:
  static StatusOr<EcdhPrivateKey> Generate(EcdhCurve curve);
  // X25519: 32-byte raw scalar. P-256: 32-byte big-endian scalar.
  static StatusOr<EcdhPrivateKey> FromPrivateBytes(EcdhCurve curve, ByteSpan priv);
  EcdhPrivateKey(EcdhPrivateKey&&) noexcept;
  EcdhPrivateKey& operator=(EcdhPrivateKey&&) noexcept;
  ~EcdhPrivateKey();

  EcdhCurve curve() const { return curve_; }
  StatusOr<Bytes> PublicKey() const;
  // Raw shared secret (X coordinate for P-256). Rejects invalid peer points
  // and the all-zero X25519 output.
  StatusOr<SecretBytes> DeriveSharedSecret(ByteSpan peer_public) const;

 private:
  friend StatusOr<std::array<uint8_t, 64>> EcdsaP256SignSha256(const EcdhPrivateKey& key,
                                                               ByteSpan message);
  struct Impl;
  EcdhPrivateKey(EcdhCurve curve, std::unique_ptr<Impl> impl);
  EcdhCurve curve_;
  std::unique_ptr<Impl> impl_;
};

// ECDSA over P-256 with SHA-256 (FIPS 186-4), signatures in the IEEE P1363
// encoding r||s (64 bytes, each big-endian, zero-padded), as JWS ES256 uses.
// The key is an ECDH P-256 key (joint use: docs/attestation.md, "Output
// bundle signature"). kInvalidArgument for an X25519 key.
inline constexpr size_t kEcdsaP256SignatureSize = 64;
StatusOr<std::array<uint8_t, kEcdsaP256SignatureSize>> EcdsaP256SignSha256(
    const EcdhPrivateKey& key, ByteSpan message);
// True only for a valid signature by `public_key` (65-byte uncompressed SEC1
// point) over `message`: anything else (wrong size, r or s zero or >= n, a
// point off the curve) is false.
bool EcdsaP256VerifySha256(ByteSpan public_key, ByteSpan message, ByteSpan signature);

// Hex helpers (lower case). FromHex rejects odd length and non-hex digits.
std::string ToHex(ByteSpan bytes);
StatusOr<Bytes> FromHex(std::string_view hex);
// As FromHex, decoding straight into locked memory (for keys in text files).
StatusOr<SecretBytes> SecretFromHex(std::string_view hex);

}  // namespace cce::crypto
