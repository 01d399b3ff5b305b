// The OCI runtime config (runc's config.json) for one consumer container:
// the isolation policy (policy.h) plus what this run needs (rootfs, command,
// datasets, the output directory, seccomp, the MAC layer, the cgroup).
// Every control in docs/isolation.md that lives in the OCI config is written
// here and checked field by field in oci_spec_test.cc.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "executor/apparmor.h"
#include "executor/policy.h"

namespace cce::executor {

// Where the Landlock helper (cce-sandbox-init) appears inside the container.
inline constexpr const char* kSandboxInitPath = "/.cce/sandbox-init";

struct DatasetBind {
  std::string host_dir;        // absolute host path (a DecryptFS mount)
  std::string container_path;  // absolute, e.g. /data/NAME; bound read-only, noexec
};

struct RunSpec {
  std::string rootfs;             // absolute host path of the unpacked image
  std::vector<std::string> args;  // the command; args[0] non-empty
  std::vector<std::string> env;   // "NAME=value"
  std::string cwd = "/";
  std::string hostname = "cce-job";
  std::vector<DatasetBind> datasets;
  std::string output_host_dir;  // absolute host dir bound at /output (rw, nosuid, nodev, noexec)
  // The MAC layer the caller detected (DetectMacLayer). kLandlock: the helper
  // at sandbox_init_host_path is bound read-only at kSandboxInitPath and runs
  // first (`--ro / --rw /output --rw /tmp --rw /dev/{null,zero,full,shm} --
  // args...`). kAppArmor:
  // process.apparmorProfile = apparmor_profile (loaded by the caller).
  // Anything else is refused: no container runs without a MAC layer.
  MacLayer mac = MacLayer::kUnknown;
  std::string sandbox_init_host_path;
  std::string apparmor_profile;
  nlohmann::json seccomp;    // OCI linux.seccomp (BuildSeccompProfile); required
  std::string cgroups_path;  // linux.cgroupsPath, absolute, e.g. /cce/workload/JOB
};

// Checks a RunSpec: absolute clean paths, args non-empty, env entries
// NAME=value, hostname [A-Za-z0-9.-], dataset paths not "/" and not equal to
// or under /proc /sys /dev /tmp /output /.cce, no duplicates or nesting.
// Errors: kInvalidArgument "run spec: FIELD: why" (e.g. "datasets[1].container_path").
Status ValidateRunSpec(const RunSpec& spec);

// Renders config.json for runc (OCI runtime-spec 1.0.2) from a valid policy
// and run spec: user namespace mappings, non-root user, no capabilities in any
// set, noNewPrivileges, rlimits, read-only root, every namespace new, masked
// and read-only paths, the mounts (/proc, /dev, /dev/shm, /dev/mqueue, /sys
// read-only, /tmp tmpfs, datasets, /output, the Landlock helper), cgroup
// resources (memory = memory+swap, pids, CPU quota, all devices denied but
// runc's defaults), oomScoreAdj, seccomp, no sysctl, no extra devices.
// Errors: kInvalidArgument (policy or run spec invalid), kFailedPrecondition
// (the MAC layer is unknown, none, or SELinux without Landlock).
StatusOr<nlohmann::json> RenderRuntimeConfig(const IsolationPolicy& policy, const RunSpec& spec);

}  // namespace cce::executor
