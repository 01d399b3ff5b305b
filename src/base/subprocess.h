// Child processes: fork + execve with exactly the file descriptors and the
// environment the caller names, nothing inherited by accident (every other
// descriptor is closed in the child, the environment is empty unless given).
// Used to start runc, cce-decryptfs and cce-agent. Secrets go to a child
// through a descriptor (a pipe), never through argv or the environment.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace cce {

struct ExitStatus {
  int code = -1;   // the exit code when the child exited, else -1
  int signal = 0;  // the signal that killed it, else 0
  bool exited() const { return signal == 0 && code >= 0; }
  bool success() const { return code == 0 && signal == 0; }
  // Shell convention: the exit code, or 128 + the signal.
  int ShellCode() const { return signal != 0 ? 128 + signal : code; }
  // "exit code 3" / "killed by signal 9 (SIGKILL)".
  std::string ToString() const;
};

struct SpawnOptions {
  // argv[0] is the program: an absolute path, or a name searched in PATH of
  // the PARENT's environment (resolved before fork).
  std::vector<std::string> argv = {};
  // The child's complete environment ("NAME=value"); empty by default.
  std::vector<std::string> env = {};
  // {child_fd, parent_fd}: parent_fd is duplicated onto child_fd in the
  // child. 0, 1 and 2 are /dev/null unless given. Every other descriptor is
  // closed before execve.
  std::vector<std::pair<int, int>> fds = {};
  std::string cwd = {};      // empty: the parent's
  bool new_session = false;  // setsid(): own session and process group
  // The child gets SIGKILL when the parent thread that spawned it dies
  // (PR_SET_PDEATHSIG); for helpers that must not outlive their owner.
  bool die_with_parent = false;
};

class Subprocess {
 public:
  // kInvalidArgument for an empty argv or a program not found; kIo when the
  // fork fails; an execve failure in the child is reported here too (the
  // child writes its errno to a close-on-exec pipe), naming the program.
  static StatusOr<Subprocess> Spawn(const SpawnOptions& options);

  Subprocess(Subprocess&& o) noexcept : pid_(std::exchange(o.pid_, -1)), group_(o.group_) {}
  Subprocess& operator=(Subprocess&& o) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // A child never waited for is killed (SIGKILL) and reaped: no zombies.
  ~Subprocess();

  pid_t pid() const { return pid_; }
  // Waits for the child to end and reaps it.
  StatusOr<ExitStatus> Wait();
  // Waits at most `timeout`; nullopt if it is still running.
  StatusOr<std::optional<ExitStatus>> WaitFor(std::chrono::milliseconds timeout);
  // Sends `sig` to the child (to its process group with new_session).
  Status Signal(int sig);
  // Gives up ownership without waiting (the caller reaps the pid).
  pid_t Release() { return std::exchange(pid_, -1); }

 private:
  explicit Subprocess(pid_t pid, bool group) : pid_(pid), group_(group) {}
  pid_t pid_ = -1;
  bool group_ = false;
};

// Runs argv to completion and returns its status and up to max_output bytes
// of stdout+stderr (for short tool runs such as apparmor_parser or runc delete).
struct RunResult {
  ExitStatus status;
  std::string output;
};
StatusOr<RunResult> RunAndCapture(const SpawnOptions& options, size_t max_output = 64 << 10);

}  // namespace cce
