// The `local` provisioner: the stand-in for a fresh confidential VM on a
// machine without TDX (docs/provisioners.md). Per job, cce-agent runs as root
// and as init of a new PID namespace, in a new network namespace holding only
// `lo` (the plane is reachable only through its Unix socket, bind-mounted at
// /run/cce/plane.sock), a private mount namespace with a fresh /run and a
// size-capped tmpfs work directory, and the platform cgroup
// cce/platform/<job>. The job credential reaches it
// through a pipe on fd 3, never argv, env or disk. When the agent exits, or
// the engine destroys the job, everything goes: processes (platform and
// workload cgroups), mounts, the work directory, the namespaces.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "plane/log.h"
#include "plane/provisioner.h"
#include "store/store.h"

namespace cce::plane {

struct LocalProvisionerOptions {
  std::string agent_path;    // absolute path of cce-agent (or a stand-in)
  std::string agent_socket;  // the plane's Unix socket on the host
  std::string ca_file;       // the plane's CA, passed to the agent as --ca
  // Each job's work directory is work_root/<job>, a tmpfs of tmpfs_mib MiB
  // mounted inside the job's mount namespace only.
  std::string work_root = "/run/cce/jobs";
  int64_t tmpfs_mib = 2048;
  // The agent's stdout and stderr go to log_dir/<job>.log (0600), at most
  // log_max_bytes (then one truncation line; the rest is read and dropped).
  std::string log_dir;
  int64_t log_max_bytes = int64_t{8} << 20;
  // Limits of the platform cgroup (the agent, its DecryptFS and runc
  // processes); 0: none.
  int64_t memory_bytes = int64_t{4} << 30;
  int64_t pids_max = 4096;
  // Appended to the agent's command line (e.g. --tee simulated --sim-dir
  // DIR on a plane with a simulated TEE). Never secrets: argv is visible.
  std::vector<std::string> extra_agent_args = {};
};

// Checks the options (absolute paths, the agent executable, root, the
// cgroup filesystem) and makes the provisioner. It writes job transitions
// (an agent that exited early, a plane restart) to `db` with an audit
// record, as the engine does. Errors name the option
// ("provisioner.local.agent_path: ...") with kInvalidArgument, or
// kFailedPrecondition when the host cannot run it (not root, no cgroups).
StatusOr<std::unique_ptr<Provisioner>> MakeLocalProvisioner(LocalProvisionerOptions options,
                                                            store::Store& db, const Clock& clock,
                                                            Logger& log);

// Where the agent finds the plane, inside its mount namespace.
inline constexpr char kAgentPlaneSocket[] = "/run/cce/plane.sock";

}  // namespace cce::plane
