// plane: the Privacy Plane server (cce-plane). This header is what the
// cce-plane main calls: set up a data directory, add users, serve the HTTPS
// API. docs/plane.md describes the data directory and configuration;
// docs/api.yaml the HTTP API.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "store/store.h"

namespace cce::plane {

struct InitOptions {
  std::string data_dir;  // must not exist, or be an empty directory
  std::string listen = "127.0.0.1:8443";
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ip_addresses = {"127.0.0.1", "::1"};
  std::string operator_name = "operator";
  // Development only, for machines without TDX: also create a simulated TEE
  // (attest::CreateSimulatedTee) in attestation/sim/, cache its collateral,
  // and write attestation/policy.yaml with allow_simulated: true. The key
  // broker then accepts quotes from machines that are NOT TDX VMs.
  bool simulated_tee = false;
};

struct InitResult {
  std::string data_dir;
  std::string config_file;
  std::string ca_file;
  std::string token;              // the operator's API token: shown once, stored only as a hash
  std::string simulated_tee_dir;  // set with InitOptions::simulated_tee
};

// Creates the data directory atomically (staged, then renamed into place):
// documented config, CA and server TLS certificate, Ed25519 signing key,
// master key (0600), the database, and the first operator with a token; with
// simulated_tee also the simulated TEE, its cached collateral and a policy
// allowing simulation (docs/attestation.md, "Simulated TEE").
StatusOr<InitResult> InitPlane(const InitOptions& options, const Clock& clock);

// Adds a user to the plane at data_dir (safe while the server runs) and
// returns their new API token.
StatusOr<std::string> AddUser(const std::string& data_dir, const std::string& name,
                              store::Role role, const Clock& clock);

// `cce-plane job credential` (docs/agent.md, "By hand"): for a job waiting in
// PROVISIONING on a plane whose provisioner is `none` (so no VM holds a
// credential for it), issues and records a fresh single-use Job Credential,
// audited as `credential.issue` by the operator, valid until the job's
// deadline at most (credential_ttl_seconds), and returns it. The key broker
// treats it like the engine's: it is used once, and attesting moves the job
// PROVISIONING -> ATTESTED by compare-and-set, so at most one agent gets the
// keys. Errors: kNotFound (no such job), kFailedPrecondition (the job is not
// in PROVISIONING, or the provisioner is not `none`: its own agent has the
// credential), plus config, key and store errors.
StatusOr<std::string> IssueJobCredential(const std::string& data_dir, const std::string& job_id,
                                         const Clock& clock);

// API tokens: "cce_" + 64 hex digits from 32 random bytes. Only SHA-256 of a
// token is stored.
StatusOr<std::string> NewApiToken();
crypto::Sha256Digest HashApiToken(std::string_view token);

struct ServeOptions {
  std::string data_dir;
  std::string listen_override;  // empty: from the config file
  // Set to true (e.g. by a SIGTERM handler) to shut down gracefully.
  const std::atomic<bool>* stop = nullptr;
  // Called once the listening socket is bound, with the actual port.
  std::function<void(int port)> on_listening;
};

// `cce-plane collateral import`: checks a TDX collateral set (dcap-qvl JSON
// file or PCS directory) against Intel's root (and the simulated TEE's root,
// if the data directory has one) and adds it to the key broker's cache,
// replacing the set for the same FMSPC. Returns the FMSPC (hex).
StatusOr<std::string> ImportCollateral(const std::string& data_dir, const std::string& source);

// `cce-plane collateral fetch`: downloads the TDX collateral for one FMSPC
// from Intel PCS (default) or a PCCS (`pccs_url` set), into a temporary
// directory, then imports it as above. The API key is read from a file
// (never argv); `ca_bundle` replaces the system TLS trust store when set.
struct FetchCollateralOptions {
  std::string fmspc_hex;
  std::string pccs_url;      // empty: Intel PCS
  std::string api_key_file;  // optional (Intel PCS subscription key)
  std::string ca_bundle;     // optional
};
StatusOr<std::string> FetchCollateral(const std::string& data_dir,
                                      const FetchCollateralOptions& options);

// Serves until *stop becomes true, then drains in-flight requests and exits.
Status Serve(const ServeOptions& options, const Clock& clock);

}  // namespace cce::plane
