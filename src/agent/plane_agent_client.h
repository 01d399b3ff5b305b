// The agent's side of the plane's agent routes (docs/attestation.md, "Agent
// routes"; docs/api.yaml /api/v1/agent/...): with the key broker session
// from FetchDatasetKeys it reports the job's progress, fetches the job's
// pinned image (manifest and blobs, each checked against its digest) and
// streams the output bundle, signed with the TEE's ephemeral key, to the
// plane. Memory stays bounded: blobs and the bundle move in pieces.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/kbs_client.h"
#include "api/wire.h"
#include "base/status.h"
#include "crypto/jwe.h"

namespace cce::agent {

class PlaneAgentClient {
 public:
  // `session` is DatasetKeys::session. Errors: kInvalidArgument for a bad
  // endpoint (URL, CA file).
  static StatusOr<PlaneAgentClient> Create(const KbsEndpoint& plane, std::string session);
  PlaneAgentClient(PlaneAgentClient&&) noexcept;
  PlaneAgentClient& operator=(PlaneAgentClient&&) noexcept;
  ~PlaneAgentClient();

  // Every call below returns the plane's message on a refusal:
  // kUnauthenticated/kPermissionDenied (401/403), kFailedPrecondition (409:
  // the job is not in a state that allows the call), kInvalidArgument (400),
  // kNotFound (404), kResourceExhausted (413/429), kUnavailable (the plane
  // cannot be reached, or 5xx).

  // What to run (GET /api/v1/agent/job): the spec as stored, the pinned
  // image digest, the deadline, each dataset's mount path and location.
  StatusOr<api::AgentJob> FetchJob();

  // ATTESTED -> RUNNING (call once the datasets are mounted).
  Status ReportRunning();
  // -> FAILED with "agent: <reason>" (the plane keeps at most 512 bytes,
  // non-printable bytes replaced). Never put secrets in `reason`.
  Status ReportFailed(std::string_view reason);

  // The job's pinned image manifest, byte for byte; verified here to hash
  // to the digest the plane names in its Docker-Content-Digest header
  // (kDataLoss if not), which is the digest the job pinned at submission
  // (also in the job credential's image_digest).
  StatusOr<std::string> FetchManifest();
  // The manifest digest of the last FetchManifest ("" before one).
  const std::string& manifest_digest() const;

  // Streams blob `digest` ("sha256:<hex>": one of the manifest's config or
  // layer digests) into `out_fd` (written from its current offset, not
  // closed), hashing as it goes: a body that does not hash to `digest` is
  // kDataLoss (the caller must discard what was written).
  Status FetchBlob(const std::string& digest, int out_fd);

  // Streams `size` bytes of the bundle from `bundle_fd` (read with pread
  // from offset 0, twice: once to hash, once to send) to PUT
  // /api/v1/agent/output with X-Cce-Bundle-Digest and X-Cce-Bundle-Signature
  // (tee_key's ECDSA P-256 signature over api::OutputSigningInput(job_id,
  // digest)). The file must not change meanwhile: if its bytes differ on
  // the second pass the upload is aborted (kDataLoss) and the plane records
  // nothing. On success the job is OUTPUT_SUBMITTED; returns the bundle's
  // digest ("sha256:<hex>"), as signed and recorded.
  StatusOr<std::string> SubmitOutput(int bundle_fd, uint64_t size,
                                     const crypto::EphemeralKey& tee_key,
                                     const std::string& job_id);

 private:
  struct Impl;
  explicit PlaneAgentClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cce::agent
