#include "base/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "base/fd.h"

namespace cce {
namespace {

// PATH search in the parent, so the child only calls execve.
StatusOr<std::string> ResolveProgram(const std::string& name) {
  if (name.empty()) return InvalidArgument("spawn: empty program name");
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return InvalidArgument("spawn: program '" + name + "' not found in PATH");
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

ExitStatus FromWaitStatus(int ws) {
  ExitStatus s;
  if (WIFEXITED(ws)) s.code = WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) s.signal = WTERMSIG(ws);
  return s;
}

[[noreturn]] void FailInChild(int err_fd) {
  int e = errno;
  (void)!write(err_fd, &e, sizeof e);
  _exit(127);
}

// In the child, after fork: only async-signal-safe calls. Reports errno on
// err_fd and exits 127 on any failure.
[[noreturn]] void ChildExec(const char* program, char* const* argv, char* const* envp,
                            const std::vector<std::pair<int, int>>& fds, int devnull,
                            const char* cwd, bool new_session, bool die_with_parent, pid_t parent,
                            int err_fd) {
  auto fail = [err_fd]() { FailInChild(err_fd); };
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  }
  if (new_session && setsid() < 0) fail();
  if (die_with_parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail();
    if (getppid() != parent) _exit(127);  // the parent is already gone
  }
  // Move every source fd above the highest target first, so a dup2 onto a
  // target never clobbers a source still needed.
  int high = 3;
  for (const auto& [child_fd, parent_fd] : fds) high = std::max(high, child_fd + 1);
  high = std::max(high, err_fd + 1);
  std::vector<std::pair<int, int>>::size_type n = fds.size();
  int moved[64];
  if (n > 64) _exit(127);
  for (size_t i = 0; i < n; ++i) {
    moved[i] = fcntl(fds[i].second, F_DUPFD_CLOEXEC, high + 64);
    if (moved[i] < 0) fail();
  }
  bool given[3] = {false, false, false};
  for (size_t i = 0; i < n; ++i) {
    if (dup2(moved[i], fds[i].first) < 0) fail();
    if (fds[i].first < 3) given[fds[i].first] = true;
  }
  for (int fd = 0; fd < 3; ++fd) {
    if (!given[fd] && dup2(devnull, fd) < 0) fail();
  }
  // Close everything that is not a target, except err_fd (close-on-exec).
  int max_target = 2;
  for (const auto& p : fds) max_target = std::max(max_target, p.first);
  for (int fd = 3; fd <= max_target; ++fd) {
    bool keep = fd == err_fd;
    for (const auto& p : fds) keep = keep || p.first == fd;
    if (!keep) close(fd);
  }
  if (err_fd > max_target) {
    if (syscall(SYS_close_range, max_target + 1, err_fd - 1, 0) != 0 && errno != EINVAL) fail();
    if (syscall(SYS_close_range, err_fd + 1, ~0U, 0) != 0) fail();
  } else if (syscall(SYS_close_range, max_target + 1, ~0U, 0) != 0) {
    fail();
  }
  if (cwd != nullptr && chdir(cwd) != 0) fail();
  execve(program, argv, envp);
  FailInChild(err_fd);
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" + SignalName(signal) + ")";
  return "exit code " + std::to_string(code);
}

StatusOr<Subprocess> Subprocess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return InvalidArgument("spawn: empty argv");
  ASSIGN_OR_RETURN(std::string program, ResolveProgram(options.argv[0]));
  for (const auto& [child_fd, parent_fd] : options.fds) {
    if (child_fd < 0 || parent_fd < 0) return InvalidArgument("spawn: negative descriptor");
  }
  std::vector<char*> argv;
  for (const std::string& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.valid()) return ErrnoStatus("open /dev/null", errno);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  UniqueFd err_read(p[0]), err_write(p[1]);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return ErrnoStatus("fork " + program, errno);
  if (pid == 0) {
    ChildExec(program.c_str(), argv.data(), envp.data(), options.fds, devnull.get(),
              options.cwd.empty() ? nullptr : options.cwd.c_str(), options.new_session,
              options.die_with_parent, parent, err_write.get());
  }
  err_write.reset();
  Subprocess child(pid, options.new_session);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(err_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof child_errno) {
    (void)child.Wait();
    return ErrnoStatus("execute " + program, child_errno);
  }
  return child;
}

Subprocess& Subprocess::operator=(Subprocess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      (void)Wait();
    }
    pid_ = std::exchange(o.pid_, -1);
    group_ = o.group_;
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(group_ ? -pid_ : pid_, SIGKILL);
    (void)Wait();
  }
}

StatusOr<ExitStatus> Subprocess::Wait() {
  if (pid_ <= 0) return FailedPrecondition("wait: no child");
  int ws = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &ws, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoStatus("waitpid", errno);
  pid_ = -1;
  return FromWaitStatus(ws);
}

StatusOr<std::optional<ExitStatus>> Subprocess::WaitFor(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return FailedPrecondition("wait: no child");
  // A pidfd would avoid polling; waitid(WNOHANG) in short steps is simple and
  // portable to every kernel we run on.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto step = std::chrono::milliseconds(1);
  for (;;) {
    int ws = 0;
    pid_t r = waitpid(pid_, &ws, WNOHANG);
    if (r < 0 && errno != EINTR) return ErrnoStatus("waitpid", errno);
    if (r == pid_) {
      pid_ = -1;
      return std::optional<ExitStatus>(FromWaitStatus(ws));
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::optional<ExitStatus>();
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(step, deadline - now));
    step = std::min(step * 2, std::chrono::milliseconds(50));
  }
}

Status Subprocess::Signal(int sig) {
  if (pid_ <= 0) return FailedPrecondition("signal: no child");
  if (kill(group_ ? -pid_ : pid_, sig) != 0) return ErrnoStatus("kill", errno);
  return Status::Ok();
}

StatusOr<RunResult> RunAndCapture(const SpawnOptions& options, size_t max_output) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  UniqueFd read_end(p[0]), write_end(p[1]);
  SpawnOptions o = options;
  o.fds.push_back({1, write_end.get()});
  o.fds.push_back({2, write_end.get()});
  ASSIGN_OR_RETURN(Subprocess child, Subprocess::Spawn(o));
  write_end.reset();
  RunResult result;
  char buf[4096];
  for (;;) {
    ssize_t n = read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size_t room = max_output - std::min(max_output, result.output.size());
    result.output.append(buf, std::min(static_cast<size_t>(n), room));
  }
  ASSIGN_OR_RETURN(result.status, child.Wait());
  return result;
}

}  // namespace cce
