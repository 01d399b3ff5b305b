// runc: drives Debian's `runc` binary for one container at a time: `runc run`
// in the foreground with stdin from /dev/null and stdout/stderr drained into
// capped files, a timeout and a cancel fd that end in `runc kill ID KILL`, and
// `runc delete --force` afterwards whatever happened. The sandbox (sandbox.h)
// builds the bundle; this file only runs it. docs/isolation.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "executor/capture.h"

namespace cce::executor {

struct RuncRunRequest {
  std::string bundle_dir;    // holds config.json (and usually rootfs/)
  std::string container_id;  // [A-Za-z0-9][A-Za-z0-9_.-]{0,127}
  // Where the container's stdout/stderr go (not owned; capture.h): each
  // pipe is drained to EOF, the sink keeps what fits under its cap and counts
  // the rest, so the container never blocks on a full pipe.
  CappedSink* stdout_sink = nullptr;
  CappedSink* stderr_sink = nullptr;
  // 0: no timeout. Measured from the start of `runc run`.
  std::chrono::milliseconds timeout{0};
  // Readable or EOF: kill the container (result.cancelled). -1: none. Not owned.
  int cancel_fd = -1;
  // The config's linux.cgroupsPath ("/cce/workload/<id>"); read after the
  // container stops to tell whether the memory limit killed a process.
  // Empty: oom_killed is never set.
  std::string cgroup_path;
};

struct RuncResult {
  // runc reports a workload killed by signal N as exit status 128+N, so a
  // workload that exits 128+N itself reads as killed by N (as in shells).
  int exit_code = -1;  // the workload's exit status, -1 when killed by a signal
  int signal = 0;      // the signal that ended it, else 0
  bool timed_out = false;
  bool cancelled = false;
  bool oom_killed = false;  // memory.oom_control oom_kill (v1) / memory.events oom_kill (v2) > 0
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  uint64_t stdout_bytes = 0;  // bytes kept by stdout_sink
  uint64_t stderr_bytes = 0;
  double seconds = 0;
};

class Runc {
 public:
  // binary: path of runc, or a bare name searched on PATH ("runc").
  // state_root: runc --root; created (mkdir -p) mode 0700 and chmod 0700.
  // Errors: kNotFound (binary not found or not executable), kIo.
  static StatusOr<Runc> Create(const std::string& binary, const std::string& state_root);

  // Runs the container to completion: `runc --root R run --keep --bundle B ID`
  // spawned with a fixed environment (PATH only: nothing of ours leaks into
  // runc or the container) and every fd above 2 closed. On timeout or cancel:
  // `runc kill ID KILL`, and after 10 s more, SIGKILL to runc and every
  // process in the cgroup. Always ends with `runc delete --force ID`, so the
  // state dir entry and runc's cgroup are gone when this returns.
  // A workload that fails is not an error; errors: kInvalidArgument (request
  // fields), kFailedPrecondition (a container of that id exists), kInternal
  // (runc failed to start the container: the message carries runc's log),
  // kIo (spawn/pipe/poll failed).
  StatusOr<RuncResult> Run(const RuncRunRequest& request) const;

  // `runc kill ID SIGNAL` / `runc delete --force ID`. Delete of an unknown id
  // is OK (idempotent). Errors: kIo / kInternal with runc's stderr.
  Status Kill(const std::string& container_id, const std::string& signal) const;
  Status Delete(const std::string& container_id) const;
  // True when runc has state for the id (its dir under state_root exists).
  StatusOr<bool> Exists(const std::string& container_id) const;

  // Added for Explore sessions (src/explore/local_backend.cc): a container
  // that outlives the call. `runc run --detach --bundle B ID` with stdin from
  // /dev/null and stdout+stderr both on `stdio_fd` (runc hands that fd
  // straight to the container's process: pass a file on a size-capped tmpfs,
  // not a pipe, so the process never blocks or dies with the caller). Returns
  // when the process runs. On failure the container is deleted again.
  // Errors: kInvalidArgument (id, bundle_dir or stdio_fd), kFailedPrecondition
  // (a container of that id exists), kInternal (runc refused: its logged
  // error), kIo (spawn failed).
  Status RunDetached(const std::string& bundle_dir, const std::string& container_id,
                     int stdio_fd) const;
  // `runc state ID`: "created", "running", "paused" or "stopped", and the
  // container's init pid (0 when stopped). nullopt: runc has no such container.
  struct State {
    std::string status;
    pid_t pid = 0;
  };
  // Errors: kInvalidArgument (id), kInternal (runc failed or printed no
  // state JSON), kIo.
  StatusOr<std::optional<State>> GetState(const std::string& container_id) const;

  const std::string& binary() const { return binary_; }
  const std::string& state_root() const { return state_root_; }

 private:
  Runc(std::string binary, std::string state_root)
      : binary_(std::move(binary)), state_root_(std::move(state_root)) {}
  // Runs runc with `args` (after --root), waits; returns its exit status and
  // up to 64 KiB of its combined stdout+stderr.
  StatusOr<std::pair<int, std::string>> RunTool(const std::vector<std::string>& args) const;

  std::string binary_;
  std::string state_root_;
};

// True when `id` is a valid container id ([A-Za-z0-9][A-Za-z0-9_.-]{0,127}).
bool ValidContainerId(const std::string& id);

}  // namespace cce::executor
