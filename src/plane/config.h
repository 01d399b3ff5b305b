// The plane's configuration file (DATA_DIR/plane.yaml, documented in
// docs/plane.md). Relative paths are relative to the data directory.
// Unknown keys are errors, as everywhere.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace cce::plane {

// A curated base image for script jobs (plane.yaml jobs.script_bases,
// docs/explore/script-jobs.md): `cce job submit --script` runs
// command + ["<workdir>/<script>"] + args on `image` plus one layer holding
// the script.
struct ScriptBase {
  std::string name;                   // [a-z0-9-]{1,63}, unique
  std::string image;                  // a public image: library/NAME:TAG, NAME:TAG or sha256:<hex>
  std::vector<std::string> command;   // non-empty, e.g. ["/usr/bin/python3"]
  std::string workdir = "/job";       // absolute; where the script is placed and run
};

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
  // Unused nonces the plane holds at once over all credentials (memory).
  int64_t kbs_max_nonces = 16384;
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

  // Curated base images for script jobs (jobs.script_bases); empty: script
  // jobs are refused (no base).
  std::vector<ScriptBase> script_bases;

  // Explore sessions (explore.*, docs/explore/sessions.md): where their
  // Jupyter servers run ("local": runc on this host; "kubernetes"; "none":
  // sessions are refused), their idle timeout (default and cap), how many
  // one consumer may have live, how often the culler looks, and the plane's
  // URL as sessions and browsers reach it (empty: https://<listen>).
  std::string explore_backend = "local";
  int64_t explore_idle_timeout_seconds = 30 * 60;
  int64_t explore_max_idle_timeout_seconds = 8 * 3600;
  int64_t explore_max_sessions_per_user = 2;
  int64_t explore_cull_interval_seconds = 30;
  std::string explore_plane_url;
  int64_t explore_memory_mib = 2048;  // per session
  int64_t explore_cpus = 1;           // per session
  // The most bytes one published dataset sample may hold (Samples; docs/explore/samples.md).
  int64_t explore_max_sample_bytes = int64_t{1} << 30;
  // explore.local.* (the local backend's keys) and explore.kubernetes.*
  // (the kubernetes backend's keys) follow here.
  // explore.local.* (explore/local_backend.h, docs/explore/local.md): the
  // runc binary and its state dir, the sessions' tmpfs work dirs, the first
  // host uid of session users (uid = uid_base + user id), the directory
  // holding the SDK package cce4long/ (mounted at /opt/cce4long; empty: not
  // mounted), and how long Jupyter may take to answer.
  std::string explore_local_runc = "runc";
  std::string explore_local_runc_root = "/run/cce/explore/runc";
  std::string explore_local_work_root = "/run/cce/explore";
  int64_t explore_local_uid_base = 200000;
  std::string explore_local_sdk_dir;
  int64_t explore_local_start_timeout_seconds = 60;
  // explore.kubernetes.* (explore/kubernetes_backend.h, docs/explore/kubernetes.md):
  // credentials (a kubeconfig and its context; empty: the in-cluster service
  // account), an API server URL override, the sessions' namespace (empty:
  // the kubeconfig context's or the plane pod's), the Jupyter image and the
  // sample fetcher's (empty: the same), a ConfigMap holding the SDK, a
  // RuntimeClass, where the plane's pods are (ingress from them, egress to
  // their API port), more CIDRs to deny, pod resource requests, and the
  // timeout of one API request.
  std::string explore_kubernetes_kubeconfig;
  std::string explore_kubernetes_context;
  std::string explore_kubernetes_api_server;
  std::string explore_kubernetes_namespace;
  std::string explore_kubernetes_image = "quay.io/jupyter/base-notebook:2024-12-02";
  std::string explore_kubernetes_fetcher_image;
  std::string explore_kubernetes_sdk_config_map;
  std::string explore_kubernetes_runtime_class;
  std::string explore_kubernetes_plane_namespace;
  std::vector<std::pair<std::string, std::string>> explore_kubernetes_plane_pod_labels;
  int64_t explore_kubernetes_plane_api_port = 8443;
  std::vector<std::string> explore_kubernetes_extra_denied_cidrs;
  std::string explore_kubernetes_cpu_request = "100m";
  std::string explore_kubernetes_memory_request = "256Mi";
  int64_t explore_kubernetes_request_timeout_seconds = 30;

  // The rentals ledger (ledger.*, docs/ledger.md): "embedded" (signed
  // rental records in the plane's store) or "ethereum" (the RentalMarket
  // contract at `ledger_contract` on chain `ledger_chain_id`, read over
  // JSON-RPC at `ledger_rpc`; only events with `ledger_confirmations`
  // confirmations count; indexed every `ledger_poll_seconds` from
  // `ledger_start_block`, the deployment block). `cce-plane ledger deploy`
  // writes these keys. rpc_ca_file (absolute, or relative to data_dir):
  // CAs trusted for an https RPC URL instead of the system store.
  std::string ledger_backend = "embedded";
  std::string ledger_rpc;
  int64_t ledger_chain_id = 0;
  std::string ledger_contract;  // "0x" + 40 hex (EIP-55 checked when mixed case)
  int64_t ledger_start_block = 0;
  int64_t ledger_confirmations = 12;
  int64_t ledger_poll_seconds = 5;
  std::string ledger_rpc_ca_file;

  // Resolves a configured path against data_dir.
  std::string Path(const std::string& configured) const;
};

StatusOr<PlaneConfig> LoadConfig(const std::string& data_dir);
// The documented file written by `cce-plane init` (comments included).
std::string RenderConfig(const PlaneConfig& config);
// "HOST:PORT" -> host, port; errors name the value.
Status ParseListen(const std::string& listen, std::string* host, int* port);

}  // namespace cce::plane
