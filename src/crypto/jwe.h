// jwe: JSON Web Encryption (RFC 7516, compact serialization) with exactly one
// algorithm pair, "ECDH-ES+A256KW" key agreement with AES key wrap and
// "A256GCM" content encryption (RFC 7518 4.6, 4.4, 5.3), on P-256 or X25519
// (RFC 8037). The key broker wraps a dataset key to a TEE's ephemeral key with
// it; the TEE side decrypts. Format and checks: docs/jwe.md.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::crypto {

inline constexpr std::string_view kJweAlg = "ECDH-ES+A256KW";
inline constexpr std::string_view kJweEnc = "A256GCM";
// JweDecrypt refuses longer input: the JWEs here carry keys, not bulk data.
inline constexpr size_t kJweMaxCompactSize = size_t{1} << 20;

// A recipient's (or an "epk") public key: P-256 as an EC JWK {kty:"EC",
// crv:"P-256", x, y} or X25519 as an OKP JWK {kty:"OKP", crv:"X25519", x}.
// Every instance holds a validated key: a P-256 point on the curve, an X25519
// u-coordinate that is not of low order.
class JwkPublicKey {
 public:
  // Strict: JSON object without duplicate members; kty/crv exactly as above;
  // x (and y) unpadded canonical base64url of exactly 32 bytes; no "d"
  // (private key); optional "kid" (string), "use" ("enc"), "alg" (kJweAlg),
  // "key_ops" (only "deriveKey"/"deriveBits"), "ext" (bool); anything else is
  // refused. Errors name the member.
  static StatusOr<JwkPublicKey> FromJwk(std::string_view json);
  // P-256: 65-byte uncompressed SEC1 point 0x04||X||Y; X25519: 32 raw bytes.
  // Same validation as FromJwk.
  static StatusOr<JwkPublicKey> FromPublicBytes(EcdhCurve curve, ByteSpan public_key);

  EcdhCurve curve() const { return curve_; }
  // The encoding FromPublicBytes takes.
  ByteSpan public_bytes() const { return public_; }
  // The RFC 7638 form: required members only, sorted, no whitespace, e.g.
  // {"crv":"P-256","kty":"EC","x":"...","y":"..."}.
  std::string ToJwk() const;
  // RFC 7638 JWK SHA-256 thumbprint, base64url (43 characters).
  std::string Thumbprint() const;

  // EcdsaP256VerifySha256 with this key; false for an X25519 key.
  bool VerifyEcdsaSha256(ByteSpan message, ByteSpan signature) const {
    return curve_ == EcdhCurve::kP256 && EcdsaP256VerifySha256(public_, message, signature);
  }

  friend bool operator==(const JwkPublicKey& a, const JwkPublicKey& b) {
    return a.curve_ == b.curve_ && a.public_ == b.public_;
  }

 private:
  JwkPublicKey(EcdhCurve curve, Bytes public_key) : curve_(curve), public_(std::move(public_key)) {}
  EcdhCurve curve_;
  Bytes public_;
};

// Parameters the sender may add to the protected header. Empty = omitted.
// apu/apv (raw bytes, base64url in the header) enter the Concat KDF as
// PartyUInfo/PartyVInfo, so they are bound to the wrapped key.
struct JweOptions {
  std::string kid;
  Bytes apu;
  Bytes apv;
};

class EphemeralKey;

// Encrypts plaintext to `to` with a fresh ephemeral key, CEK and IV. Returns
// BASE64URL(header) "." BASE64URL(wrapped CEK) "." BASE64URL(IV) "."
// BASE64URL(ciphertext) "." BASE64URL(tag); the header is
// {"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{...}[,"kid","apu","apv"]}.
StatusOr<std::string> JweEncrypt(const JwkPublicKey& to, ByteSpan plaintext,
                                 const JweOptions& opts = {});

// Decrypts a compact JWE made for `key`. Fails closed with an error naming
// the part ("JWE protected header", "JWE encrypted key", "JWE IV",
// "JWE ciphertext", "JWE tag"): kInvalidArgument for a malformed or
// unsupported JWE (alg/enc other than the above, "zip", "crit", unknown
// header members, epk not a valid point of the key's curve), kDataLoss when
// the key unwrap or the GCM tag does not verify (tampering or wrong key).
// If header_out is given it receives the authenticated kid/apu/apv.
StatusOr<SecretBytes> JweDecrypt(const EphemeralKey& key, std::string_view compact,
                                 JweOptions* header_out = nullptr);

// The receiver's key pair: generated inside the TEE, its public half sent
// to the key broker, its private half never leaves the object (OpenSSL key
// object; derived secrets are held in SecretBytes and wiped).
class EphemeralKey {
 public:
  static StatusOr<EphemeralKey> Generate(EcdhCurve curve);
  // Wraps an existing key (known-answer tests use fixed private keys).
  static StatusOr<EphemeralKey> FromEcdhKey(EcdhPrivateKey key);

  EcdhCurve curve() const { return public_.curve(); }
  const JwkPublicKey& public_key() const { return public_; }
  std::string PublicJwk() const { return public_.ToJwk(); }
  // ECDSA P-256 / SHA-256, P1363 r||s (EcdsaP256SignSha256); P-256 keys only.
  StatusOr<std::array<uint8_t, kEcdsaP256SignatureSize>> SignEcdsaSha256(ByteSpan message) const {
    return EcdsaP256SignSha256(private_, message);
  }

 private:
  EphemeralKey(EcdhPrivateKey key, JwkPublicKey pub)
      : private_(std::move(key)), public_(std::move(pub)) {}
  friend StatusOr<SecretBytes> JweDecrypt(const EphemeralKey& key, std::string_view compact,
                                          JweOptions* header_out);
  EcdhPrivateKey private_;
  JwkPublicKey public_;
};

// ---- building blocks, exposed for known-answer tests ----------------------

// base64url without padding (RFC 7515 section 2). Decode rejects '=',
// characters outside the URL-safe alphabet, a length of 1 mod 4 and
// non-zero unused trailing bits (non-canonical encodings).
std::string Base64UrlEncode(ByteSpan bytes);
StatusOr<Bytes> Base64UrlDecode(std::string_view text);

// RFC 7518 4.6.2 Concat KDF (NIST SP 800-56A single-step, SHA-256) with
// OtherInfo = len||algorithm_id || len||apu || len||apv || bits(out), no
// SuppPrivInfo. Writes out.size() bytes (1..1024).
Status ConcatKdfSha256(ByteSpan z, std::string_view algorithm_id, ByteSpan apu, ByteSpan apv,
                       std::span<uint8_t> out);

// RFC 3394 AES key wrap with a 256-bit KEK and the default IV A6A6A6A6A6A6A6A6.
// key: a multiple of 8 bytes, at least 16. Unwrap returns kDataLoss when the
// integrity check fails.
StatusOr<Bytes> Aes256KeyWrap(ByteSpan kek, ByteSpan key);
StatusOr<SecretBytes> Aes256KeyUnwrap(ByteSpan kek, ByteSpan wrapped);

}  // namespace cce::crypto
