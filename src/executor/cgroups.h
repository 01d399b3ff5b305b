// cgroups: one logical control group spread over every hierarchy we use, so
// platform processes (cce/platform/<id>) and workloads (cce/workload/<id>)
// live apart, each workload with its own memory, pids and cpu limits, and
// everything is killed and removed afterwards. Works on cgroup v2 and on
// v1/hybrid hosts (on hybrid, the controller-less unified mount is ignored
// and the v1 controller hierarchies are used). docs/isolation.md.
//
// Errors: kInvalidArgument (a malformed cgroup path or limit), kNotFound
// (no cgroup filesystem, or a hierarchy this code needs is missing),
// kIo (a cgroupfs read/write/mkdir/rmdir failed; the message names the file),
// kUnavailable (KillAll: processes still present after the deadline).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cce::executor {

enum class CgroupMode { kV1, kV2, kHybrid };
std::string_view CgroupModeName(CgroupMode mode);  // "v1", "v2", "hybrid"

// Looks at /sys/fs/cgroup (statfs): cgroup2 -> kV2; a tmpfs of v1 hierarchies
// with a cgroup2 "unified" mount -> kHybrid; without it -> kV1.
StatusOr<CgroupMode> DetectCgroupMode();

// Where the hierarchies are. Injectable so tests can point at a fake tree.
struct CgroupRoots {
  CgroupMode mode = CgroupMode::kV2;
  // kV2: the cgroup2 root ("/sys/fs/cgroup"). kHybrid: the controller-less
  // cgroup2 mount ("/sys/fs/cgroup/unified"), only swept by KillAll/Destroy
  // (runc makes a directory there too). Unused on kV1.
  std::string unified;
  // kV1/kHybrid: hierarchy name -> root ("memory" -> "/sys/fs/cgroup/memory").
  // Names that share a mount ("cpu", "cpuacct") map to the same root. Create
  // and AddProcess use cpu, cpuacct, memory, pids and freezer (those present);
  // KillAll and Destroy sweep every hierarchy listed (blkio, devices, cpuset,
  // systemd, ... where runc also makes directories).
  std::map<std::string, std::string> v1;
};
// The real roots under /sys/fs/cgroup. kNotFound when no cgroupfs is mounted.
StatusOr<CgroupRoots> DetectCgroupRoots();

struct CgroupLimits {
  int64_t memory_bytes = 0;  // 0: no limit. Swap is disallowed when limited.
  int64_t pids_max = 0;      // 0: no limit
  double cpus = 0;           // 0: no limit; 1.5 = one and a half CPUs (CFS quota)
};

class Cgroup {
 public:
  // `path` is relative to each hierarchy root, '/'-separated, no "." or ".."
  // or empty components, e.g. "cce/platform/job-123" or "cce/workload/job-123"
  // (one leading '/' is accepted and ignored, so runc's cgroupsPath works).
  // mkdir -p in every hierarchy; an existing leaf is reused (limits rewritten).
  // Writes the limits (v1: memory.limit_in_bytes, memory.memsw.limit_in_bytes
  // when present, memory.swappiness=0, pids.max, cpu.cfs_period_us +
  // cpu.cfs_quota_us; v2: controllers enabled in every ancestor's
  // cgroup.subtree_control, then memory.max, memory.swap.max=0, pids.max,
  // cpu.max). A limit that cannot be written is an error (fail closed), and
  // the directories made by this call are removed again.
  static StatusOr<Cgroup> Create(const std::string& path, const CgroupLimits& limits);
  static StatusOr<Cgroup> Create(const std::string& path, const CgroupLimits& limits,
                                 const CgroupRoots& roots);

  // A handle on an existing (or already removed) cgroup, for cleanup after a
  // restart or of a cgroup runc created. Validates `path` only.
  static StatusOr<Cgroup> Adopt(const std::string& path);
  static StatusOr<Cgroup> Adopt(const std::string& path, const CgroupRoots& roots);

  // Moves `pid` (all its threads) into this cgroup in every hierarchy.
  Status AddProcess(pid_t pid);

  // The pids in this cgroup and its children (union over every hierarchy).
  // Empty when the cgroup does not exist.
  std::vector<pid_t> Processes() const;

  // Kills every process in the cgroup and its descendants and waits (up to
  // 10 s) until they are gone. v2: cgroup.kill (falls back to a SIGKILL loop
  // on kernels without it); v1: freeze (when the freezer hierarchy exists),
  // SIGKILL every pid, thaw, repeat until empty. OK if the cgroup is absent.
  Status KillAll();

  // KillAll, then rmdir the leaf and its child cgroups (deepest first) in
  // every hierarchy. Ancestors ("cce/workload") stay. Idempotent.
  Status Destroy();

  // The normalized relative path ("cce/workload/job-123").
  const std::string& path() const { return path_; }
  // The leaf directories, one per hierarchy Create uses (tests, diagnostics).
  std::vector<std::string> Dirs() const;

 private:
  std::vector<std::string> AllDirs() const;  // one per swept hierarchy
  Cgroup(std::string path, CgroupRoots roots) : path_(std::move(path)), roots_(std::move(roots)) {}

  std::string path_;
  CgroupRoots roots_;
};

}  // namespace cce::executor
