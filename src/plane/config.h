// The plane's configuration file (DATA_DIR/plane.yaml, documented in
// docs/plane.md). Relative paths are relative to the data directory.
// Unknown keys are errors, as everywhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace cce::plane {

struct PlaneConfig {
  std::string data_dir;  // set by the loader, not read from the file
  std::string listen = "127.0.0.1:8443";
  std::string tls_cert_file = "tls/server.crt";
  std::string tls_key_file = "tls/server.key";
  std::string tls_ca_file = "tls/ca.crt";
  std::string signing_key_file = "keys/signing.key";
  std::string master_key_backend = "file";  // "file"; "pkcs11" is designed, not built
  std::string master_key_file = "keys/master.key";
  std::string database_backend = "sqlite";
  std::string database_path = "plane.db";
  std::string log_format = "json";  // "json" (JSON lines) or "text"
  std::string log_level = "info";   // "debug", "info", "warn", "error"
  int64_t max_body_bytes = int64_t{1} << 20;
  int64_t http_threads = 16;       // worker threads running requests (I/O is event-driven)
  int64_t max_connections = 4096;  // ~16 KiB each when idle or slow: bounds memory
  int64_t max_connections_per_address = 2000;
  int64_t max_concurrent_downloads = 8;  // output downloads streaming at once (limits.)
  // The largest output bundle an agent may submit (limits.max_output_bytes).
  int64_t max_output_bytes = int64_t{1} << 30;
  int64_t credential_ttl_seconds = 3600;
  int64_t audit_checkpoint_every = 100;
  // Every signed checkpoint (audit and rental chains) is also appended here,
  // outside the database (absolute, or relative to data_dir). Point it at
  // another disk or an append-only mount, and copy it off the machine.
  std::string audit_checkpoint_file = "checkpoints.log";
  // "none": jobs wait in PROVISIONING for an agent; "local": the agent in
  // fresh namespaces standing in for a VM (docs/provisioners.md; needs root);
  // "fake": an in-process stand-in for the agent, for tests and demos only
  // (logged loudly at start).
  std::string provisioner_backend = "none";
  // provisioner.local.*: empty agent_path: cce-agent next to cce-plane.
  std::string local_agent_path;
  std::string local_work_root = "/run/cce/jobs";  // absolute
  int64_t local_tmpfs_mib = 2048;
  int64_t local_memory_mib = 4096;  // the platform cgroup (agent, DecryptFS, runc)
  int64_t local_pids_max = 4096;
  // The plane's Unix socket for agents (TLS, same API and limits as
  // `listen`), served with provisioner.backend local; mode 0600.
  std::string agent_socket = "agent.sock";
  // Key broker (docs/attestation.md): the quote policy (absent file: the
  // default policy, UpToDate only, no simulation), the collateral cache that
  // `cce-plane collateral import` fills, and the simulated TEE's root
  // certificate (created by `cce-plane init --simulated-tee`; used only when
  // the policy sets allow_simulated).
  std::string attestation_policy_file = "attestation/policy.yaml";
  std::string attestation_collateral_dir = "attestation/collateral";
  std::string attestation_simulation_root_file = "attestation/sim/root.crt";
  int64_t kbs_nonce_ttl_seconds = 60;
  int64_t kbs_session_ttl_seconds = 300;
  // Unused, unexpired nonces one job credential may hold at once.
  int64_t kbs_max_nonces_per_credential = 8;
  // The only directories under which a file:// dataset location may lie
  // (absolute, or relative to data_dir; resolved by LoadConfig). Empty:
  // file:// locations are refused.
  std::vector<std::string> dataset_allowed_roots = {"datasets"};
  // A registered dataset's manifest.cce larger than this is refused.
  int64_t dataset_max_manifest_bytes = int64_t{64} << 20;

  // Bytes of image blobs (manifests, configs, layers) one user may store.
  int64_t image_quota_bytes = int64_t{20} << 30;

  // Review of held outputs (docs/review.md): approvals by distinct reviewers
  // that release a held output (1 or 2); one rejection always rejects.
  int64_t review_required_approvals = 1;

  // The Output Gate's policy (docs/gate.md; absolute, or relative to
  // data_dir). Empty: the documented defaults.
  std::string gate_policy_file;

  // Resolves a configured path against data_dir.
  std::string Path(const std::string& configured) const;
};

StatusOr<PlaneConfig> LoadConfig(const std::string& data_dir);
// The documented file written by `cce-plane init` (comments included).
std::string RenderConfig(const PlaneConfig& config);
// "HOST:PORT" -> host, port; errors name the value.
Status ParseListen(const std::string& listen, std::string* host, int* port);

}  // namespace cce::plane
