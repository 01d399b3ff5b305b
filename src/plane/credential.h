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

// Key broker sessions: what POST /kbs/v0/attest returns once a quote is
// accepted. Bound to the job, its credential, its datasets and the TEE's
// ephemeral public key (its JWK): dataset keys are released only
// wrapped to that key. Format: "cce-kbs-v1." payload "." signature, signed
// like a credential. Short-lived (docs/attestation.md, "Key broker").
struct KbsSessionClaims {
  std::string job_id;
  std::string credential_id;
  std::vector<std::string> datasets;
  std::string tee_public_jwk;  // the TEE's ephemeral key (JWK, RFC 7638 member order)
  int64_t issued_at = 0;
  int64_t expires_at = 0;
  bool simulated_tee = false;

  friend bool operator==(const KbsSessionClaims&, const KbsSessionClaims&) = default;
};

StatusOr<std::string> SignKbsSession(const KbsSessionClaims& claims,
                                     const crypto::Ed25519PrivateKey& key);
// What a session is presented for. Key release honours expires_at; the
// agent routes (AgentReports) accept a session until the job's deadline
// instead, which the caller checks (docs/attestation.md, "Agent routes").
enum class SessionUse { kKeyRelease, kAgent };
// Checks format, signature and (kKeyRelease) now < expires_at; always
// now >= issued_at. Errors are kPermissionDenied with the reason.
StatusOr<KbsSessionClaims> VerifyKbsSession(std::string_view token,
                                            crypto::ByteSpan plane_public_key, int64_t now,
                                            SessionUse use = SessionUse::kKeyRelease);

// Both Verify functions check signatures with crypto::Ed25519VerifyMemoized
// and Sign* signs with SignRemembered: a token signed or verified before in
// this process skips only the Ed25519 check; format, claims and time are
// checked on every call.

}  // namespace cce::plane
