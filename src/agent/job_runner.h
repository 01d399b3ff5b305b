// The agent's one job, start to finish (docs/agent.md): inside the job's
// (confidential) VM, with the Job Credential the provisioner handed over:
//   1. attest: nonce -> quote over SHA-512(nonce || ephemeral key) -> session
//   2. fetch the job (spec, pinned image digest, datasets) from the plane over
//      that session, never from the host
//   3. fetch the dataset keys (JWE to the ephemeral key, locked memory) and
//      mount each dataset with cce-decryptfs, pinned to the released id/version
//   4. fetch the image by its pinned digest and report RUNNING
//   5. run the container through the executor (the `cce sandbox run` path)
//   6. unmount, wipe the keys, pack /output + stdout/stderr + result.json into
//      a bundle, sign it with the ephemeral key and stream it to the plane
// Any failure after attestation is reported (FAILED with the reason) before
// the agent exits; everything it mounted or started is torn down on every path.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/kbs_client.h"
#include "agent/quote_provider.h"
#include "base/status.h"
#include "executor/policy.h"
#include "executor/sandbox.h"

namespace cce::agent {

struct AgentConfig {
  KbsEndpoint plane;
  std::string credential;  // the Job Credential (a signed token): never logged
  QuoteProvider* quotes = nullptr;
  // A directory the agent owns for this job (the provisioner's tmpfs): the
  // dataset mount points, the fetched image, the sandbox scratch and the
  // bundle live below it, so no plaintext reaches a disk.
  std::string work_dir;
  std::string decryptfs_binary;           // cce-decryptfs
  executor::SandboxHost sandbox_host;     // runc, seccomp profile, sandbox-init
  executor::IsolationPolicy base_policy;  // the job's resources are applied on top
  // Progress events for the log (step name + details); may be empty.
  std::function<void(const std::string& step, const nlohmann::json& details)> progress;
};

struct AgentOutcome {
  std::string job_id;
  bool output_submitted = false;
  executor::SandboxResult sandbox;  // when the container ran
  std::string bundle_digest;
  uint64_t bundle_size = 0;
};

// Runs the job. OK once the output is submitted, whatever the container's
// own exit status (that is in the bundle's result.json). An error says which
// step failed; the plane was told (unless the failure was reaching it).
StatusOr<AgentOutcome> RunJob(const AgentConfig& config);

}  // namespace cce::agent
