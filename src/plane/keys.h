// Secret key files of the plane (signing key, master key): one line
// "<label> <hex>\n", mode 0600, owned by the plane's user. Loading refuses
// looser permissions; key bytes only ever live in SecretBytes.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::plane {

Status WriteSecretKeyFile(const std::string& path, std::string_view label,
                          const crypto::SecretBytes& key);
StatusOr<crypto::SecretBytes> ReadSecretKeyFile(const std::string& path, std::string_view label,
                                                size_t key_size);

// The Ed25519 signing key (job credentials, rental records, audit checkpoints).
Status CreateSigningKey(const std::string& path);
StatusOr<crypto::Ed25519PrivateKey> LoadSigningKey(const std::string& path);

}  // namespace cce::plane
