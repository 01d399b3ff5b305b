// The isolation policy: every control that confines a consumer's container,
// in one struct with safe defaults. RenderRuntimeConfig (oci_spec.h) turns it
// into runc's config.json; docs/isolation.md maps each field to where it is
// enforced and the test that proves it. Mandatory controls (read-only rootfs,
// no capabilities, every namespace, no_new_privileges, a non-root user, the
// masked and read-only /proc and /sys paths) have a field so the policy says
// them out loud, but no value that weakens them is accepted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cce::executor {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr size_t kMaxPolicyBytes = size_t{64} << 10;  // larger input is refused unread

// The namespaces every container gets, all new (none shared with the host).
const std::vector<std::string>& MandatoryNamespaces();  // pid ipc uts mount cgroup network user
// runc's own defaults plus what we add (kernel memory and keys, firmware, LSM and debug files).
const std::vector<std::string>& MandatoryMaskedPaths();
const std::vector<std::string>& MandatoryReadonlyPaths();

struct IsolationPolicy {
  // User namespace: container ids [0, id_map_size) map to host ids
  // [host_id_base, host_id_base + id_map_size). The host range never includes
  // host root and never overlaps ordinary host users (>= 65536).
  uint32_t host_id_base = 100000;
  uint32_t id_map_size = 65536;
  // The container's user (container-side ids); never 0.
  uint32_t uid = 1000;
  uint32_t gid = 1000;

  bool readonly_rootfs = true;                                  // must stay true
  std::vector<std::string> capabilities;                        // must stay empty (all five sets)
  std::vector<std::string> namespaces = MandatoryNamespaces();  // must contain all of them
  bool network_loopback_only = true;  // new netns with only lo; must stay true
  bool no_new_privileges = true;      // must stay true

  // rlimits. RLIMIT_CORE is always 0; RLIMIT_FSIZE is output_max_bytes (no
  // single file can be larger than the output cap); processes are limited by
  // the pids cgroup (pids_max), not RLIMIT_NPROC, which counts per host uid.
  uint64_t rlimit_nofile = 1024;
  uint64_t rlimit_memlock_bytes = uint64_t{64} << 10;

  std::vector<std::string> masked_paths = MandatoryMaskedPaths();      // superset of mandatory
  std::vector<std::string> readonly_paths = MandatoryReadonlyPaths();  // superset of mandatory

  // /tmp: a tmpfs of at most tmp_max_bytes (nosuid, nodev). Executing files
  // from /tmp is allowed by default (tmp_exec): the consumer chooses the whole
  // image, so a binary written to /tmp can do nothing a binary in the image
  // could not, and JIT/compile caches (torch.compile, numba) need it.
  uint64_t tmp_max_bytes = 256 * kMiB;
  bool tmp_exec = true;
  uint64_t shm_max_bytes = 64 * kMiB;  // /dev/shm tmpfs (nosuid, nodev, noexec)
  // /output: the only persistent writable place (bind of a host tmpfs of this
  // size, nosuid, nodev, noexec); also RLIMIT_FSIZE.
  uint64_t output_max_bytes = 1024 * kMiB;

  // cgroup limits.
  uint64_t memory_mib = 2048;  // memory and memory+swap: no swap
  int64_t pids_max = 512;
  double cpus = 1.0;  // CFS quota = cpus * period

  int64_t timeout_seconds = 3600;
  uint64_t max_stdout_bytes = 1 * kMiB;
  uint64_t max_stderr_bytes = 1 * kMiB;
  // Syscall names denied (EPERM) on top of the tightened Docker profile (seccomp.h).
  std::vector<std::string> seccomp_extra_denies;
  // The container is the first the kernel's OOM killer picks, before the agent.
  int oom_score_adj = 1000;
};

// Checks every field: ranges, and that no mandatory control is weakened
// (capabilities non-empty, a missing namespace or masked path, uid 0, ...).
// Errors: kInvalidArgument, message "policy: FIELD: why".
Status ValidateIsolationPolicy(const IsolationPolicy& policy);

// Parses a policy file (YAML, docs/isolation.md "Policy file"); unset fields
// keep their defaults. Strict: unknown or repeated fields, wrong types and
// values out of range are errors, and so is any value that weakens a
// mandatory control (`capabilities: [CAP_SYS_ADMIN]` is refused, naming the
// field and why). masked_paths / readonly_paths / seccomp.extra_denies add to
// the defaults; they cannot remove one. Input over kMaxPolicyBytes is refused.
// Errors: kInvalidArgument "SOURCE:LINE:COL: FIELD: why" (SOURCE = source_name).
StatusOr<IsolationPolicy> LoadIsolationPolicy(std::string_view yaml_text,
                                              std::string_view source_name = "policy.yaml");

}  // namespace cce::executor
