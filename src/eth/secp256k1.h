// secp256k1 ECDSA as Ethereum uses it, over libsecp256k1: RFC 6979
// deterministic low-s signatures with a recovery id, public-key recovery, and
// the address of a key. The private key lives in locked, wiped memory and is
// never printed or put into an error message.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/status.h"
#include "crypto/crypto.h"
#include "eth/eth.h"

namespace cce::eth {

struct Signature {
  std::array<uint8_t, 32> r{};
  std::array<uint8_t, 32> s{};
  uint8_t recovery_id = 0;  // 0 or 1 (the parity of R's y coordinate)

  // r || s || (v_base + recovery_id): v_base 27 for personal_sign, 0 for raw.
  std::array<uint8_t, 65> Rsv(uint8_t v_base = 27) const;
};

// A secp256k1 private key (32 bytes, 0 < k < n). Move-only.
class PrivateKey {
 public:
  // Errors: kInvalidArgument if key32 is not 32 bytes, is zero, or is >= the
  // curve order n (the message never contains the key).
  static StatusOr<PrivateKey> FromBytes(crypto::ByteSpan key32);

  // Reads a key file: one line "0x" + 64 hex digits ("0x" optional, one
  // trailing newline allowed). The file must be a regular file with no
  // group/other permission bits.
  // Errors: kPermissionDenied "PATH: mode 0644 ..." naming the mode;
  // kInvalidArgument "PATH: ..." for a wrong size/format/value (never the
  // contents); kNotFound / kIo when it cannot be opened or read.
  static StatusOr<PrivateKey> ReadFile(const std::string& path);

  // A fresh key from the CSPRNG. Errors: kInternal if the RNG fails.
  static StatusOr<PrivateKey> Generate();

  PrivateKey(PrivateKey&&) noexcept = default;
  PrivateKey& operator=(PrivateKey&&) noexcept = default;
  PrivateKey(const PrivateKey&) = delete;
  PrivateKey& operator=(const PrivateKey&) = delete;

  Address address() const;

  // 64-byte uncompressed public key X || Y (no 0x04 prefix).
  std::array<uint8_t, 64> PublicKey() const;

  // Signs a 32-byte digest: RFC 6979 nonce, s normalized to the low half.
  // Errors: kInternal if libsecp256k1 fails (practically never).
  StatusOr<Signature> Sign(const Hash32& digest) const;

 private:
  PrivateKey(crypto::SecretBytes key, Address address, std::array<uint8_t, 64> pub);
  crypto::SecretBytes key_;
  Address address_;
  std::array<uint8_t, 64> public_key_{};
};

// The address whose key signed `digest`, from r || s || v (65 bytes).
// v may be 0, 1, 27 or 28. Errors: kInvalidArgument for a wrong length, a v
// outside those, r or s zero or >= n, s in the high half (malleable,
// EIP-2), or no recoverable key.
StatusOr<Address> RecoverAddress(const Hash32& digest, crypto::ByteSpan rsv65);

// keccak256(X || Y)[12:]. uncompressed64 must be 64 bytes (X || Y); other
// sizes return the zero address (callers pass a fixed-size key).
Address AddressOfPublicKey(crypto::ByteSpan uncompressed64);

}  // namespace cce::eth
