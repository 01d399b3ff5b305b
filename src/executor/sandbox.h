// sandbox: run one untrusted container under the isolation policy, the one
// code path that both `cce sandbox run` and cce-agent use (docs/isolation.md,
// "cce sandbox run"). It unpacks the image, renders the OCI runtime config
// (seccomp, Landlock or AppArmor, cgroup limits), runs it with runc and copies
// /output out; everything it set up is torn down before it returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "executor/image_unpack.h"  // ImageRef, UnpackLimits
#include "executor/output_copy.h"   // OutputManifest
#include "executor/policy.h"        // IsolationPolicy

namespace cce::executor {

// A host directory shown read-only (bind, ro, nosuid, nodev, noexec) inside
// the container. name: [A-Za-z0-9._-]{1,64}, unique per request.
// container_path: absolute, normalised, not "/", not under /proc, /sys, /dev,
// /output, /tmp or /.cce; empty means "/data/<name>". host_dir: an existing
// directory (for the agent, a cce-decryptfs mount).
struct DataMount {
  std::string name;
  std::string host_dir;
  std::string container_path;
};

// Where the host-side tools live. Defaults suit an installed cce and the
// build tree: empty paths are resolved when RunSandbox starts (below).
struct SandboxHost {
  // The runc binary; empty: "runc" searched on PATH.
  std::string runc_path;
  // runc's --root (its state directory); created mode 0700 if missing.
  std::string runc_root = "/run/cce/runc";
  // Docker's seccomp profile (data/seccomp/docker-default.json); empty: the
  // copy shipped next to the binaries (share/cce/seccomp/docker-default.json
  // beside bin/, then the source tree's data/seccomp/).
  std::string seccomp_profile;
  // The static Landlock helper; empty: cce-sandbox-init in the directory of
  // the running executable. Only needed when the MAC layer is Landlock.
  std::string sandbox_init;
  // Used to load the generated AppArmor profile when AppArmor is the MAC layer.
  std::string apparmor_parser = "apparmor_parser";
};

struct SandboxRequest {
  // The image: oci:, oci-archive:, docker-archive: are unpacked (digests
  // verified) into work_dir/rootfs; dir:ROOTFS is used through a read-only
  // overlay so the directory is never modified.
  ImageRef image;
  // Non-empty: the image's manifest must have this digest ("sha256:<hex>"),
  // else kDataLoss. The agent passes the digest the plane recorded. Ignored
  // for dir: images (they have no manifest).
  std::string expected_manifest_digest;
  UnpackLimits unpack_limits;
  // argv in the container; empty: the image's entrypoint + cmd (error
  // kInvalidArgument naming "command" if both are empty). argv[0] is searched
  // on the container's PATH.
  std::vector<std::string> command;
  // KEY=VALUE entries added to the image's env (later entries win; PATH
  // defaults to the usual one if neither sets it). Never put secrets here.
  std::vector<std::string> env;
  std::vector<DataMount> data;
  // Host directory receiving the results: absolute, not inside work_dir,
  // created mode 0700 if missing (its parent must exist), else it must be an
  // empty directory (kFailedPrecondition). Layout after a run:
  //   files/...      the container's /output, regular files and dirs only
  //   stdout.txt     the container's stdout, at most policy's stdout cap
  //   stderr.txt     the same for stderr
  //   manifest.json  {"files":[{"path","size","sha256"}...] covering every
  //                  file above with paths relative to output_dir,
  //                  "skipped":[...], "stdout_truncated", "stderr_truncated",
  //                  "exit_code", "signal", "timed_out", "oom_killed",
  //                  "image_manifest_digest"}
  std::string output_dir;
  // Memory, pids, cpus, timeout, /output and /tmp caps, stdout/stderr caps,
  // uid/gid mapping ... (policy.h). Validated again here.
  IsolationPolicy policy;
  // Scratch directory: an existing, root-owned directory that others may
  // traverse (the mapped container uid must reach work_dir/rootfs). RunSandbox
  // creates rootfs/, bundle/ and output/ (a tmpfs capped at the policy's
  // /output size, so /output's plaintext stays in memory) below it and removes
  // them again; work_dir itself is left in place. Refused if any exists.
  std::string work_dir;
  // Names the container ("cce-<job_id>") and the workload cgroup
  // ("/cce/workload/<job_id>"). [a-z0-9][a-z0-9_-]{0,63}.
  std::string job_id;
  // Optional: when this fd becomes readable (or hits EOF) the container is
  // killed as on timeout and the result says `cancelled`. -1: none. Not owned.
  int cancel_fd = -1;
};

struct SandboxResult {
  int exit_code = -1;       // the workload's exit status when it exited, else -1
  int signal = 0;           // the signal that killed it, else 0
  bool timed_out = false;   // policy timeout hit; the container was SIGKILLed
  bool cancelled = false;   // cancel_fd fired; the container was SIGKILLed
  bool oom_killed = false;  // the workload cgroup's memory limit killed a process
  OutputManifest output;    // files copied from /output into output_dir/files
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  uint64_t stdout_bytes = 0;  // bytes kept in stdout.txt
  uint64_t stderr_bytes = 0;
  std::string image_manifest_digest;  // "sha256:<hex>"; empty for dir: images
  double seconds = 0;                 // wall time of the container run alone
};

// Runs the request to completion. A container that fails, crashes, is killed
// or times out is NOT an error: the result says what happened and its output
// and stdout/stderr are still copied. Errors are setup failures only:
//   kInvalidArgument    a request or policy field is wrong (the message names it)
//   kNotFound           runc, the seccomp profile, sandbox-init or a data dir missing
//   kDataLoss           the image failed verification (digest mismatch, tampering)
//   kFailedPrecondition output_dir not empty, work_dir entries already exist,
//                       an ancestor of work_dir not o+x, not root, a container
//                       of that job_id exists, no AppArmor/Landlock on the host
//   kResourceExhausted  an unpack or output limit was exceeded
//   kIo / kInternal     an OS call or runc itself failed
// Cleanup runs on every path (umount the /output tmpfs and the overlay,
// `runc delete --force`, remove rootfs/bundle/output, destroy the workload
// cgroup); a cleanup failure after an otherwise good run is returned as kIo.
// Requires root (CAP_SYS_ADMIN) on the host. Not thread-safe per job_id.
StatusOr<SandboxResult> RunSandbox(const SandboxRequest& request, const SandboxHost& host = {});

// The process exit code `cce sandbox run` uses for a finished run, following
// coreutils timeout and shells: 124 timed out (or cancelled), 128+signal when
// killed by a signal, else the container's own exit code.
int SandboxExitCode(const SandboxResult& result);

// Best-effort cleanup of a sandbox a crashed process left behind: kills and
// deletes the container, destroys the workload cgroup and unmounts/removes
// work_dir's rootfs/, bundle/ and output/. Idempotent; returns the first error.
Status CleanupSandbox(const std::string& work_dir, const std::string& job_id,
                      const SandboxHost& host = {});

}  // namespace cce::executor
