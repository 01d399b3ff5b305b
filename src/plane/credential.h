// Job Credentials: what the plane hands a job's (confidential) VM so it can
// ask the key broker for its datasets' keys. An Ed25519-signed token naming
// the job, consumer, datasets, pinned image digest, issue and expiry time.
// Single use is enforced by the store (Store::MarkCredentialUsed) when the
// key broker accepts it. Format (docs/plane.md, "Job credentials"):
//   "cce-cred-v1." base64url(payload JSON) "." base64url(signature)
// where the signature covers the ASCII bytes "cce-cred-v1." + payload part.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::plane {

struct JobCredentialClaims {
  std::string credential_id;  // "cred-" + 32 hex
  std::string job_id;
  std::string consumer;
  std::vector<std::string> datasets;
  std::string image_digest;
  int64_t issued_at = 0;
  int64_t expires_at = 0;  // valid while now < expires_at
  bool simulated_tee = false;

  friend bool operator==(const JobCredentialClaims&, const JobCredentialClaims&) = default;
};

StatusOr<std::string> SignJobCredential(const JobCredentialClaims& claims,
                                        const crypto::Ed25519PrivateKey& key);
// Checks format, signature (against the plane's public key) and time window;
// fails closed with the reason. Does not check single use (the store does).
StatusOr<JobCredentialClaims> VerifyJobCredential(std::string_view token,
                                                  crypto::ByteSpan plane_public_key, int64_t now);

}  // namespace cce::plane
