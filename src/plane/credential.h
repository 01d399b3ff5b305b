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
#include "store/store.h"

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

// How a minted credential's expiry is set.
enum class CredentialExpiry {
  // now + ttl_seconds (the engine's: it fails a job past its deadline itself).
  kTtl,
  // min(now + ttl_seconds, job.deadline): a credential issued by hand never
  // outlives its job (`cce-plane job credential`).
  kTtlWithinDeadline,
};

// A freshly minted credential: its claims, the signed token, and the store
// row recording it (same id, job and times as the claims).
struct MintedCredential {
  JobCredentialClaims claims;
  std::string token;
  store::JobCredential row;
};

// Mints `job`'s Job Credential for its consumer `consumer_name`: a random id
// ("cred-" + 32 hex), the job's datasets and pinned image digest, issued at
// `now`, expiring as `expiry` says, signed with `key`. Stores nothing: the
// caller records `row` (with its own audit record) and hands out `token`.
// Errors: kInvalidArgument (ttl_seconds <= 0), kFailedPrecondition
// ("job ID is past its deadline": with kTtlWithinDeadline, now >= job.deadline),
// plus crypto::RandomBytes's and SignJobCredential's.
StatusOr<MintedCredential> MintJobCredential(const store::Job& job,
                                             const std::string& consumer_name, int64_t now,
                                             int64_t ttl_seconds, CredentialExpiry expiry,
                                             const crypto::Ed25519PrivateKey& key);

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
