// The local provisioner (docs/provisioners.md). One watcher thread per job
// waits for the agent (pidfd) while copying its output to the job's capped
// log file, then tears everything down. The child between fork and exec
// only makes system calls on memory prepared before the fork: the plane is
// multi-threaded, so nothing there may allocate or take a lock.
#include "plane/local_provisioner.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "executor/cgroups.h"

namespace cce::plane {
namespace {

using store::JobState;

constexpr char kPlatformCgroup[] = "cce/platform/";
constexpr char kWorkloadCgroup[] = "cce/workload/";
constexpr char kAgentCa[] = "/run/cce/ca.crt";
// The fresh /run of the job's mount namespace only holds the plane's socket,
// its CA and what the agent's tools (runc) put there.
constexpr char kRunTmpfsOptions[] = "mode=0755,size=64m";
constexpr int kCredentialFd = 3;
// A job credential is a compact JWS of a few hundred bytes; a pipe holds 64 KiB.
constexpr size_t kMaxCredentialBytes = 16 * 1024;
// How long Destroy waits for an agent that submitted its output to exit by
// itself before killing it.
constexpr std::chrono::milliseconds kExitGrace{3000};

// glibc 2.36's <sys/pidfd.h> lacks extern "C"; the system calls directly.
int PidfdOpen(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}
int PidfdKill(int pidfd) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0));
}

bool ValidJobId(const std::string& id) {
  if (id.empty() || id.size() > 64 || id.front() == '.' || id.front() == '-') return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// "a/b/c" -> "/a", "/a/b", "/a/b/c" (for mkdir -p without allocating).
std::vector<std::string> Prefixes(const std::string& path) {
  std::vector<std::string> out;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') out.push_back(path.substr(0, i));
  }
  return out;
}

Status MkdirAll(const std::string& path, mode_t mode) {
  for (const std::string& p : Prefixes(path)) {
    if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + p, errno);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) return FailedPrecondition(path + ": not a directory");
  return Status::Ok();
}

std::string ExitText(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return "killed by signal " +
           (name != nullptr ? std::string("SIG") + name : std::to_string(WTERMSIG(status)));
  }
  return "status " + std::to_string(status);
}

// What the child reports on its error pipe when a setup step fails.
struct ChildError {
  int step = 0;
  int err = 0;
};

// Steps of the child's setup, for the error message.
enum ChildStep : int {
  kStepSync = 1,
  kStepSession,
  kStepUnshare,
  kStepPrivate,
  kStepProc,
  kStepRunTmpfs,
  kStepRunCce,
  kStepSocketFile,
  kStepSocketBind,
  kStepCaFile,
  kStepCaBind,
  kStepWorkDir,
  kStepWorkTmpfs,
  kStepLoopback,
  kStepFds,
  kStepChdir,
  kStepExec,
};

const char* StepName(int step) {
  switch (step) {
    case kStepSync: return "wait for cgroup placement";
    case kStepSession: return "setsid";
    case kStepUnshare: return "unshare(CLONE_NEWNS|CLONE_NEWNET)";
    case kStepPrivate: return "make / MS_REC|MS_PRIVATE";
    case kStepProc: return "mount /proc for the new PID namespace";
    case kStepRunTmpfs: return "mount tmpfs on /run";
    case kStepRunCce: return "mkdir /run/cce";
    case kStepSocketFile: return "create /run/cce/plane.sock";
    case kStepSocketBind: return "bind-mount the plane socket";
    case kStepCaFile: return "create /run/cce/ca.crt";
    case kStepCaBind: return "bind-mount the plane CA";
    case kStepWorkDir: return "mkdir the work directory";
    case kStepWorkTmpfs: return "mount the work directory's tmpfs";
    case kStepLoopback: return "bring up lo";
    case kStepFds: return "set up fds";
    case kStepChdir: return "chdir to the work directory";
    case kStepExec: return "execve the agent";
    default: return "setup";
  }
}

// Everything the child needs, prepared before fork.
struct ChildPlan {
  int sync_fd = -1;
  int error_fd = -1;
  int credential_fd = -1;
  int log_fd = -1;
  int null_fd = -1;
  std::string socket_path;             // the plane's agent socket on the host
  std::string ca_path;                 // the plane's CA on the host
  std::vector<std::string> work_dirs;  // mkdir -p prefixes of the work dir
  std::string work_dir;
  std::string work_tmpfs_options;
  std::vector<std::string> args;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

[[noreturn]] void ChildFail(int error_fd, int step) {
  ChildError e{step, errno};
  (void)!::write(error_fd, &e, sizeof(e));
  ::_exit(127);
}

// Moves fd above the descriptors the agent gets (0..3), keeping it open.
int Lift(int fd, int error_fd) {
  const int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, 16);
  if (lifted < 0) ChildFail(error_fd, kStepFds);
  return lifted;
}

// "/proc/self/fd/<fd>" into buf, without allocating.
const char* FdPath(char (&buf)[32], int fd) {
  static constexpr char kPrefix[] = "/proc/self/fd/";
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + fd % 10);
    fd /= 10;
  } while (fd > 0 && n < 11);
  size_t at = 0;
  for (char c : std::string_view(kPrefix)) buf[at++] = c;
  while (n > 0) buf[at++] = digits[--n];
  buf[at] = '\0';
  return buf;
}

[[noreturn]] void RunChild(const ChildPlan& p) {
  const int error_fd = Lift(p.error_fd, p.error_fd);
  char go = 0;
  if (::read(p.sync_fd, &go, 1) != 1) ChildFail(error_fd, kStepSync);
  if (::setsid() < 0) ChildFail(error_fd, kStepSession);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  if (::unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) ChildFail(error_fd, kStepUnshare);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    ChildFail(error_fd, kStepPrivate);
  }
  // The new PID namespace's own /proc: the agent and runc see their pids.
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    ChildFail(error_fd, kStepProc);
  }
  // Held by O_PATH descriptors opened in this namespace (a bind mount's
  // source must be), before /run is covered: either may lie under /run.
  const int socket_src = ::open(p.socket_path.c_str(), O_PATH | O_CLOEXEC);
  if (socket_src < 0) ChildFail(error_fd, kStepSocketBind);
  const int ca_src = ::open(p.ca_path.c_str(), O_PATH | O_CLOEXEC);
  if (ca_src < 0) ChildFail(error_fd, kStepCaBind);
  char src_path[32];
  // A fresh /run: the host's sockets there (container runtimes, D-Bus, other
  // jobs' state) are out of sight; only the plane's socket is put back.
  if (::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, kRunTmpfsOptions) != 0) {
    ChildFail(error_fd, kStepRunTmpfs);
  }
  if (::mkdir("/run/cce", 0755) != 0) ChildFail(error_fd, kStepRunCce);
  int f = ::open(kAgentPlaneSocket, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (f < 0) ChildFail(error_fd, kStepSocketFile);
  ::close(f);
  if (::mount(FdPath(src_path, socket_src), kAgentPlaneSocket, nullptr, MS_BIND, nullptr) != 0) {
    ChildFail(error_fd, kStepSocketBind);
  }
  f = ::open(kAgentCa, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (f < 0) ChildFail(error_fd, kStepCaFile);
  ::close(f);
  if (::mount(FdPath(src_path, ca_src), kAgentCa, nullptr, MS_BIND, nullptr) != 0 ||
      ::mount(nullptr, kAgentCa, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    ChildFail(error_fd, kStepCaBind);
  }
  // 0711: the consumer's container runs as an unprivileged mapped uid that
  // must traverse (never list) these to reach its root filesystem below the
  // work directory; they exist only in this job's fresh /run.
  for (const std::string& d : p.work_dirs) {
    if (::mkdir(d.c_str(), 0711) != 0 && errno != EEXIST) ChildFail(error_fd, kStepWorkDir);
  }
  if (::mount("tmpfs", p.work_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              p.work_tmpfs_options.c_str()) != 0) {
    ChildFail(error_fd, kStepWorkTmpfs);
  }
  {  // The new network namespace's only interface, down until now.
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) ChildFail(error_fd, kStepLoopback);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) ChildFail(error_fd, kStepLoopback);
    ::close(s);
  }
  const int cred = Lift(p.credential_fd, error_fd);
  const int log = Lift(p.log_fd, error_fd);
  const int null = Lift(p.null_fd, error_fd);
  if (::dup2(null, 0) < 0 || ::dup2(log, 1) < 0 || ::dup2(log, 2) < 0 ||
      ::dup2(cred, kCredentialFd) < 0) {
    ChildFail(error_fd, kStepFds);
  }
  // Nothing else of the plane's reaches the agent (the error pipe closes on
  // exec by itself).
  for (int fd : {cred, log, null, socket_src, ca_src}) ::close(fd);
  if (::close_range(kCredentialFd + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    ChildFail(error_fd, kStepFds);
  }
  if (::chdir(p.work_dir.c_str()) != 0) ChildFail(error_fd, kStepChdir);
  ::execve(p.argv[0], p.argv.data(), p.envp.data());
  ChildFail(error_fd, kStepExec);
}

class LocalProvisioner : public Provisioner {
 public:
  LocalProvisioner(LocalProvisionerOptions options, store::Store& db, const Clock& clock,
                   Logger& log)
      : options_(std::move(options)), db_(db), clock_(clock), log_(log) {}

  ~LocalProvisioner() override {
    // Stopping the plane ends its agents (their socket is going away); the
    // jobs stay as they are and the next start fails them (Resume).
    shutting_down_ = true;
    for (const std::string& id : Active()) Destroy(id);
  }

  std::string name() const override { return "local"; }

  Status Provision(const store::Job& job, const std::string& credential) override;
  Status Resume(const store::Job& job) override;
  void Destroy(const std::string& job_id) override;
  std::vector<std::string> Active() const override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::string> out;
    for (const auto& [id, inst] : instances_) out.push_back(id);
    return out;
  }

 private:
  struct Instance {
    std::string job_id;
    pid_t pid = -1;
    UniqueFd pidfd;
    UniqueFd log_pipe;  // read end
    UniqueFd log_file;
    std::atomic<bool> destroy_requested{false};
    std::thread watcher;
    std::mutex join_mu;  // one joiner at a time
  };

  std::string WorkDir(const std::string& id) const { return options_.work_root + "/" + id; }

  void Watch(Instance* inst);
  void PumpLog(Instance& inst, int timeout_ms, bool until_eof);
  void FailIfStillRunning(const std::string& job_id, const std::string& reason);
  // Kills both cgroups, unmounts and removes the work dir on the host. Best
  // effort; every failure is logged.
  void TearDown(const std::string& job_id);
  store::AuditRecord Audit(const std::string& action, const std::string& job_id,
                           const std::string& reason) const {
    store::AuditRecord a;
    a.at = clock_.NowUnix();
    a.actor = "provisioner:local";
    a.action = action;
    a.object = "job:" + job_id;
    a.decision = store::AuditDecision::kDeny;
    a.details_json = nlohmann::json{{"reason", reason}}.dump();
    return a;
  }

  const LocalProvisionerOptions options_;
  store::Store& db_;
  const Clock& clock_;
  Logger& log_;
  std::atomic<bool> shutting_down_{false};
  mutable std::mutex mu_;  // guards instances_
  std::map<std::string, std::shared_ptr<Instance>> instances_;
};

Status LocalProvisioner::Provision(const store::Job& job, const std::string& credential) {
  const std::string& id = job.id;
  if (!ValidJobId(id)) return InvalidArgument("job id '" + id + "': not usable in a path");
  {
    std::lock_guard<std::mutex> l(mu_);
    if (instances_.count(id) != 0) return FailedPrecondition(id + ": already has an agent");
  }
  const std::string where = "local provisioner: " + id;
  // It is written into the pipe before the agent runs, so it must fit.
  if (credential.empty() || credential.size() > kMaxCredentialBytes) {
    return InvalidArgument(where + ": credential of " + std::to_string(credential.size()) +
                           " bytes (expected 1.." + std::to_string(kMaxCredentialBytes) + ")");
  }
  // Leftovers of an earlier attempt (none expected) go first.
  TearDown(id);
  ASSIGN_OR_RETURN(
      executor::Cgroup platform,
      executor::Cgroup::Create(kPlatformCgroup + id, executor::CgroupLimits{
                                                         .memory_bytes = options_.memory_bytes,
                                                         .pids_max = options_.pids_max,
                                                         .cpus = 0,
                                                     }));
  auto undo = [&](Status s) {
    TearDown(id);
    return s.WithContext(where);
  };
  Status dirs = MkdirAll(WorkDir(id), 0700);
  if (!dirs.ok()) return undo(dirs);
  dirs = MkdirAll(options_.log_dir, 0700);
  if (!dirs.ok()) return undo(dirs);

  auto inst = std::make_shared<Instance>();
  inst->job_id = id;
  const std::string log_path = options_.log_dir + "/" + id + ".log";
  inst->log_file.reset(
      ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!inst->log_file.valid()) return undo(ErrnoStatus(log_path, errno));

  int p[2];
  auto make_pipe = [&](UniqueFd& r, UniqueFd& w) -> Status {
    if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
    r.reset(p[0]);
    w.reset(p[1]);
    return Status::Ok();
  };
  UniqueFd cred_r, cred_w, log_w, sync_r, sync_w, err_r, err_w;
  for (auto [r, w] : {std::pair{&cred_r, &cred_w}, std::pair{&inst->log_pipe, &log_w},
                      std::pair{&sync_r, &sync_w}, std::pair{&err_r, &err_w}}) {
    Status s = make_pipe(*r, *w);
    if (!s.ok()) return undo(s);
  }
  // The credential waits in the pipe and the write end is closed, so the
  // agent reads it to EOF.
  Status wrote = WriteFull(
      cred_w.get(), {reinterpret_cast<const uint8_t*>(credential.data()), credential.size()});
  cred_w.reset();
  if (!wrote.ok()) return undo(wrote);

  ChildPlan plan;
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  // Checked here for a clear error; the child opens them again in its
  // namespace.
  struct stat st {};
  if (::stat(options_.agent_socket.c_str(), &st) != 0) {
    return undo(ErrnoStatus("plane agent socket " + options_.agent_socket, errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return undo(
        FailedPrecondition("plane agent socket " + options_.agent_socket + ": not a socket"));
  }
  if (::access(options_.ca_file.c_str(), R_OK) != 0) {
    return undo(ErrnoStatus("plane CA " + options_.ca_file, errno));
  }
  if (!null_fd.valid()) return undo(ErrnoStatus("/dev/null", errno));
  plan.sync_fd = sync_r.get();
  plan.error_fd = err_w.get();
  plan.credential_fd = cred_r.get();
  plan.log_fd = log_w.get();
  plan.null_fd = null_fd.get();
  plan.socket_path = options_.agent_socket;
  plan.ca_path = options_.ca_file;
  plan.work_dir = WorkDir(id);
  plan.work_dirs = Prefixes(plan.work_dir);
  plan.work_tmpfs_options = "mode=0711,size=" + std::to_string(options_.tmpfs_mib) + "m";
  plan.args = {options_.agent_path,
               "run",
               "--credential-fd",
               std::to_string(kCredentialFd),
               "--plane",
               std::string("unix:") + kAgentPlaneSocket,
               "--ca",
               kAgentCa,
               "--work-dir",
               plan.work_dir,
               "--job",
               id};
  plan.args.insert(plan.args.end(), options_.extra_agent_args.begin(),
                   options_.extra_agent_args.end());
  for (std::string& a : plan.args) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  static char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  static char kLang[] = "LANG=C.UTF-8";
  plan.envp = {kPath, kLang, nullptr};

  // fork() into a new PID namespace (clone without CLONE_VM returns in the
  // child like fork). The agent is its init: when it dies the kernel kills
  // and reaps everything left in it, so no orphan waits on the host's init
  // (which keeps a v1 cgroup busy until it reaps it).
  const pid_t pid = static_cast<pid_t>(
      ::syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (pid < 0) return undo(ErrnoStatus("clone(CLONE_NEWPID)", errno));
  if (pid == 0) RunChild(plan);
  inst->pid = pid;
  inst->pidfd.reset(PidfdOpen(pid));
  // The child waits on the sync pipe until it is in its cgroup, so nothing it
  // runs is ever outside it.
  Status placed = platform.AddProcess(pid);
  if (placed.ok() && !inst->pidfd.valid()) placed = ErrnoStatus("pidfd_open", errno);
  if (!placed.ok()) {
    ::kill(pid, SIGKILL);
    (void)::waitpid(pid, nullptr, 0);
    return undo(placed);
  }
  const char go = 1;
  (void)!::write(sync_w.get(), &go, 1);
  sync_w.reset();
  err_w.reset();
  cred_r.reset();
  log_w.reset();
  ChildError ce;
  ssize_t n;
  do {
    n = ::read(err_r.get(), &ce, sizeof(ce));
  } while (n < 0 && errno == EINTR);
  if (n != 0) {  // the child failed before exec (or the pipe did)
    int status = 0;
    (void)::waitpid(pid, &status, 0);
    const std::string why = n == static_cast<ssize_t>(sizeof(ce))
                                ? std::string(StepName(ce.step)) + ": " + std::strerror(ce.err)
                                : "setup failed (" + ExitText(status) + ")";
    return undo(Unavailable("agent " + options_.agent_path + ": " + why));
  }
  log_.Info("provisioner.agent_start", {{"job", id},
                                        {"pid", std::to_string(pid)},
                                        {"cgroup", kPlatformCgroup + id},
                                        {"log", log_path}});
  {
    std::lock_guard<std::mutex> l(mu_);
    Instance* raw = inst.get();
    inst->watcher = std::thread([this, raw] { Watch(raw); });
    instances_[id] = std::move(inst);
  }
  return Status::Ok();
}

void LocalProvisioner::PumpLog(Instance& inst, int timeout_ms, bool until_eof) {
  // Copies what the agent wrote, up to the cap; past it, reads and drops.
  // A drain to EOF stops after a few seconds whatever still writes.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  std::vector<uint8_t> buf(16 * 1024);
  for (;;) {
    if (!inst.log_pipe.valid() || std::chrono::steady_clock::now() > give_up) return;
    pollfd pfd{inst.log_pipe.get(), POLLIN, 0};
    const int r = ::poll(&pfd, 1, timeout_ms);
    if (r == 0) return;
    if (r < 0) {
      if (errno == EINTR) continue;
      return;
    }
    const ssize_t n = ::read(inst.log_pipe.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      inst.log_pipe.reset();
      return;
    }
    struct stat st {};
    const int64_t written = ::fstat(inst.log_file.get(), &st) == 0 ? st.st_size : 0;
    const int64_t room = std::max<int64_t>(0, options_.log_max_bytes - written);
    if (room > 0) {
      const size_t k = static_cast<size_t>(std::min<int64_t>(room, n));
      (void)WriteFull(inst.log_file.get(), {buf.data(), k});
      if (static_cast<int64_t>(k) < n) {
        static constexpr char kCut[] = "\n[cce-plane: log truncated at the size cap]\n";
        (void)WriteFull(inst.log_file.get(),
                        {reinterpret_cast<const uint8_t*>(kCut), sizeof(kCut) - 1});
      }
    }
    if (!until_eof) return;
  }
}

void LocalProvisioner::Watch(Instance* inst) {
  int status = 0;
  for (;;) {
    pollfd fds[2] = {{inst->pidfd.get(), POLLIN, 0},
                     {inst->log_pipe.valid() ? inst->log_pipe.get() : -1, POLLIN, 0}};
    const int r = ::poll(fds, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (fds[1].revents != 0) PumpLog(*inst, 0, /*until_eof=*/false);
    if (fds[0].revents != 0) break;
  }
  while (::waitpid(inst->pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string exit_text = ExitText(status);
  log_.Info("provisioner.agent_exit", {{"job", inst->job_id}, {"status", exit_text}});
  if (!inst->destroy_requested && !shutting_down_) {
    FailIfStillRunning(inst->job_id, "agent exited: " + exit_text);
  }
  TearDown(inst->job_id);
  // Everything that could hold the log pipe is dead now.
  PumpLog(*inst, 1000, /*until_eof=*/true);
  inst->log_pipe.reset();
  (void)::fsync(inst->log_file.get());
  inst->log_file.reset();
}

// The job fails only if the agent left it mid-way without an output (an
// agent that submitted its output moved the job on, or will have it gated).
void LocalProvisioner::FailIfStillRunning(const std::string& job_id, const std::string& reason) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto job = db_.GetJob(job_id);
    if (!job.ok()) {
      log_.Error("provisioner.fail_job", {{"job", job_id}, {"error", job.status().message()}});
      return;
    }
    if (job->state != JobState::kProvisioning && job->state != JobState::kAttested &&
        job->state != JobState::kRunning) {
      return;
    }
    auto out = db_.GetOutput(job_id);
    if (out.ok()) return;
    auto moved = db_.TransitionJob(job_id, job->state, JobState::kFailed, reason,
                                   Audit("job.fail", job_id, reason));
    if (moved.ok()) return;
    if (moved.status().code() != StatusCode::kFailedPrecondition) {
      log_.Error("provisioner.fail_job", {{"job", job_id}, {"error", moved.status().message()}});
      return;
    }
    // Someone else moved the job meanwhile: look again.
  }
}

void LocalProvisioner::TearDown(const std::string& job_id) {
  for (const std::string& path : {kPlatformCgroup + job_id, kWorkloadCgroup + job_id}) {
    auto cg = executor::Cgroup::Adopt(path);
    Status s = cg.ok() ? cg->Destroy() : cg.status();
    if (!s.ok()) log_.Error("provisioner.cgroup", {{"job", job_id}, {"error", s.message()}});
  }
  // The tmpfs and the FUSE mounts lived in the job's mount namespace, gone
  // with its last process; these find something only if a mount leaked into
  // the host's namespace (they must not), and detach it.
  const std::string dir = WorkDir(job_id);
  for (int i = 0; i < 64 && ::umount2(dir.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0; ++i) {
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    log_.Error("provisioner.workdir",
               {{"job", job_id}, {"error", ErrnoStatus(dir, errno).message()}});
  }
}

void LocalProvisioner::Destroy(const std::string& job_id) {
  std::shared_ptr<Instance> inst;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = instances_.find(job_id);
    if (it == instances_.end()) return;
    inst = it->second;
  }
  // An agent whose output the plane has stored is on its way out (it logs
  // "submitted" and exits): let it finish its last words for up to
  // kExitGrace before the kill, so its log is whole. Any other job (cancelled,
  // failed, past its deadline) is killed at once.
  if (inst->pidfd.valid() && db_.GetOutput(job_id).ok()) {
    pollfd p{inst->pidfd.get(), POLLIN, 0};
    (void)::poll(&p, 1, static_cast<int>(kExitGrace.count()));
  }
  {
    std::lock_guard<std::mutex> j(inst->join_mu);
    inst->destroy_requested = true;
    // The agent and all it started (DecryptFS, runc); the watcher then sees
    // the exit and tears down the rest.
    auto cg = executor::Cgroup::Adopt(kPlatformCgroup + job_id);
    Status killed = cg.ok() ? cg->KillAll() : cg.status();
    if (!killed.ok()) {
      log_.Error("provisioner.destroy", {{"job", job_id}, {"error", killed.message()}});
      (void)PidfdKill(inst->pidfd.get());
    }
    if (inst->watcher.joinable()) inst->watcher.join();
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = instances_.find(job_id);
    if (it != instances_.end() && it->second == inst) instances_.erase(it);
  }
  log_.Info("provisioner.destroyed", {{"job", job_id}});
}

Status LocalProvisioner::Resume(const store::Job& job) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (instances_.count(job.id) != 0) return Status::Ok();  // ours, running
  }
  if (!ValidJobId(job.id)) return InvalidArgument("job id '" + job.id + "': not usable in a path");
  // The agent of the previous run lost its connection to the plane (and its
  // credential is single use): it is killed and the job fails. A second
  // agent is never started.
  TearDown(job.id);
  const std::string reason = "plane restarted while the job ran (" +
                             std::string(store::JobStateName(job.state)) +
                             "); the local provisioner cannot reattach to an agent";
  auto moved = db_.TransitionJob(job.id, job.state, JobState::kFailed, reason,
                                 Audit("job.fail", job.id, reason));
  if (!moved.ok() && moved.status().code() != StatusCode::kFailedPrecondition) {
    return moved.status();
  }
  return Status::Ok();
}

Status CheckAbsolute(const std::string& field, const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return InvalidArgument(field + ": '" + path + "': expected an absolute path");
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgument(field + ": control character in the path");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<Provisioner>> MakeLocalProvisioner(LocalProvisionerOptions options,
                                                            store::Store& db, const Clock& clock,
                                                            Logger& log) {
  RETURN_IF_ERROR(CheckAbsolute("provisioner.local.agent_path", options.agent_path));
  RETURN_IF_ERROR(CheckAbsolute("provisioner.local.work_root", options.work_root));
  RETURN_IF_ERROR(CheckAbsolute("agent_socket", options.agent_socket));
  RETURN_IF_ERROR(CheckAbsolute("tls.ca_file", options.ca_file));
  RETURN_IF_ERROR(CheckAbsolute("log_dir", options.log_dir));
  if (options.work_root.size() < 2 || options.work_root.back() == '/') {
    return InvalidArgument("provisioner.local.work_root: '" + options.work_root +
                           "': expected a directory path without a trailing '/'");
  }
  if (options.tmpfs_mib < 16) {
    return InvalidArgument("provisioner.local.tmpfs_mib: at least 16");
  }
  if (::access(options.agent_path.c_str(), X_OK) != 0) {
    return InvalidArgument("provisioner.local.agent_path: " + options.agent_path + ": " +
                           std::strerror(errno) + " (build cce-agent, or set the path)");
  }
  if (::geteuid() != 0) {
    return FailedPrecondition(
        "provisioner.backend: local needs root (network and mount namespaces, tmpfs mounts, "
        "cgroups)");
  }
  auto roots = executor::DetectCgroupRoots();
  if (!roots.ok()) {
    return FailedPrecondition("provisioner.backend: local needs cgroups: " +
                              roots.status().message());
  }
  return std::unique_ptr<Provisioner>(
      std::make_unique<LocalProvisioner>(std::move(options), db, clock, log));
}

}  // namespace cce::plane
