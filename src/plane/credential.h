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
// wrapped to that key. Format: "cce-kbs-v2." base64url(payload) "."
// base64url(HMAC-SHA256 over what precedes the last "."), under
// KbsSessionMac. Only the plane makes and checks sessions, so a MAC does
// what a signature did at a fraction of its cost (v1 was Ed25519-signed).
// Short-lived (docs/attestation.md, "Key broker").
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

// The key sessions are authenticated with: HMAC-SHA256 under 32 bytes
// derived (HKDF-SHA256, info "cce4long kbs session mac v1") from the
// plane's signing key, so sessions survive a restart of the plane and
// nobody without the signing key can make or check one. Aborts the process
// on an OpenSSL failure, as crypto::HmacSha256 does.
crypto::HmacSha256 KbsSessionMac(const crypto::Ed25519PrivateKey& signing_key);

StatusOr<std::string> SignKbsSession(const KbsSessionClaims& claims, const crypto::HmacSha256& mac);
// What a session is presented for. Key release honours expires_at; the
// agent routes (AgentReports) accept a session until the job's deadline
// instead, which the caller checks (docs/attestation.md, "Agent routes").
enum class SessionUse { kKeyRelease, kAgent };
// Checks format, MAC (in constant time) and (kKeyRelease) now < expires_at;
// always now >= issued_at. Errors are kPermissionDenied with the reason.
StatusOr<KbsSessionClaims> VerifyKbsSession(std::string_view token, const crypto::HmacSha256& mac,
                                            int64_t now, SessionUse use = SessionUse::kKeyRelease);

// VerifyJobCredential checks signatures with crypto::Ed25519VerifyMemoized
// and SignJobCredential signs with SignRemembered: a credential signed or
// verified before in this process skips only the Ed25519 check; format,
// claims and time are checked on every call.

}  // namespace cce::plane
