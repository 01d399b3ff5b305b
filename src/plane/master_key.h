// The plane's master key: seals secrets at rest (dataset keys handed to the
// key broker, job outputs) so the database and output store hold only
// ciphertext. An interface so a PKCS#11 HSM backend can replace the file
// backend without touching callers (docs/plane.md, "Master key").
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::plane {

class MasterKey {
 public:
  virtual ~MasterKey() = default;
  // AES-256-GCM under the master key with a random nonce. `context` is bound
  // as associated data (e.g. "dataset-key:claims"): a sealed value moved to
  // another context does not open. Format: 0x01 || nonce(12) || ct || tag.
  virtual StatusOr<crypto::Bytes> Seal(crypto::ByteSpan plaintext, std::string_view context) = 0;
  virtual StatusOr<crypto::SecretBytes> Open(crypto::ByteSpan sealed, std::string_view context) = 0;
  virtual std::string backend() const = 0;
  // A 32-byte key for `purpose` derived from the master key (file backend:
  // HKDF-SHA256), the same for the same master key and purpose: for values
  // the plane re-derives after a restart instead of storing them (Explore
  // sessions' Jupyter tokens: purpose "explore-jupyter").
  virtual StatusOr<crypto::SecretBytes> DeriveKey(std::string_view purpose) = 0;
};

// File backend: the key file holds 32 random bytes (hex, one line), mode
// 0600, owned by the plane's user; Load refuses looser permissions.
Status CreateFileMasterKey(const std::string& path);
StatusOr<std::unique_ptr<MasterKey>> LoadFileMasterKey(const std::string& path);

}  // namespace cce::plane
