#include "executor/runc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "base/fd.h"
#include "base/subprocess.h"
#include "executor/cgroups.h"

namespace cce::executor {
namespace {

using Clock = std::chrono::steady_clock;

// runc and its children see this environment and nothing else: no token,
// no key path, no proxy setting of ours reaches the container runtime.
const std::vector<std::string> kRuncEnv = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};

// After `runc kill ID KILL`, how long runc gets to reap the container before
// runc itself and every process of the cgroup are SIGKILLed.
constexpr std::chrono::milliseconds kKillGrace{10000};
// `runc kill` fails while the container is still being created: retry.
constexpr std::chrono::milliseconds kKillRetry{200};
// After runc exits, how long the pipes may stay open (a process that kept a
// copy of stdout would have died with the PID namespace; this only bounds it).
constexpr std::chrono::milliseconds kDrainGrace{2000};

StatusOr<std::string> FindOnPath(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) != 0) {
      return NotFound("runc: '" + name + "' is not an executable file: " + strerror(errno));
    }
    return name;
  }
  const char* env = getenv("PATH");
  std::string dirs =
      env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty() || dir[0] != '/') continue;  // never a relative PATH entry
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return NotFound("runc: '" + name + "' not found on PATH (install Debian's runc package)");
}

Status MakeDirs0700(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return InvalidArgument("runc: state root '" + path + "' must be an absolute path");
  }
  size_t pos = 1;
  while (true) {
    size_t next = path.find('/', pos);
    std::string prefix = path.substr(0, next);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("runc: mkdir " + prefix, errno);
    }
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return ErrnoStatus("runc: stat " + path, errno);
  if (!S_ISDIR(st.st_mode))
    return FailedPrecondition("runc: state root " + path + " is not a directory");
  if (st.st_uid != geteuid()) {
    return FailedPrecondition("runc: state root " + path + " is owned by uid " +
                              std::to_string(st.st_uid) + ", not by us");
  }
  if (chmod(path.c_str(), 0700) != 0) return ErrnoStatus("runc: chmod 0700 " + path, errno);
  return Status::Ok();
}

// The message of the last error-level entry of runc's JSON log, or "".
std::string LastLoggedError(const std::string& log) {
  std::string last;
  std::stringstream ss(log);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.find("\"level\":\"error\"") == std::string::npos &&
        line.find("\"level\":\"fatal\"") == std::string::npos) {
      continue;
    }
    size_t m = line.find("\"msg\":\"");
    last = m == std::string::npos ? line : line.substr(m + 7);
    if (!last.empty() && last.back() == '}') last.pop_back();
    if (!last.empty() && last.back() == '"') last.pop_back();
  }
  return last;
}

// One output stream of the container, drained into its sink.
struct Stream {
  UniqueFd pipe;
  CappedSink* sink = nullptr;
  Status error;

  // Reads once; returns false at EOF (or on a read error: the stream ends).
  bool ReadOnce() {
    std::array<uint8_t, 64 << 10> buf{};
    ssize_t n = read(pipe.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) return true;
      if (error.ok()) error = ErrnoStatus("runc: read container output", errno);
      return false;
    }
    if (n == 0) return false;
    if (error.ok()) {
      error = sink->Write(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    }
    return true;
  }
};

// Reads "KEY N" from a cgroup file ("oom_kill 3"); nullopt when absent.
std::optional<uint64_t> ReadCounter(const std::string& file, std::string_view key) {
  StatusOr<std::string> text = ReadFile(file, 1 << 16);
  if (!text.ok()) return std::nullopt;
  std::stringstream ss(*text);
  std::string k;
  uint64_t v = 0;
  while (ss >> k >> v) {
    if (k == key) return v;
  }
  return std::nullopt;
}

// Whether the memory limit of `cgroup_path` killed anything: oom_kill in
// memory.oom_control (v1) or memory.events (v2).
bool OomKilled(const std::string& cgroup_path) {
  StatusOr<CgroupRoots> roots = DetectCgroupRoots();
  if (!roots.ok()) return false;
  std::string rel = cgroup_path;
  if (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  std::optional<uint64_t> kills;
  if (roots->mode == CgroupMode::kV2) {
    kills = ReadCounter(roots->unified + "/" + rel + "/memory.events", "oom_kill");
  } else if (auto it = roots->v1.find("memory"); it != roots->v1.end()) {
    kills = ReadCounter(it->second + "/" + rel + "/memory.oom_control", "oom_kill");
  }
  return kills.value_or(0) > 0;
}

}  // namespace

bool ValidContainerId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) return false;
  }
  return true;
}

StatusOr<Runc> Runc::Create(const std::string& binary, const std::string& state_root) {
  ASSIGN_OR_RETURN(std::string path, FindOnPath(binary.empty() ? "runc" : binary));
  RETURN_IF_ERROR(MakeDirs0700(state_root));
  return Runc(path, state_root);
}

StatusOr<std::pair<int, std::string>> Runc::RunTool(const std::vector<std::string>& args) const {
  SpawnOptions opts;
  opts.argv = {binary_, "--root", state_root_};
  opts.argv.insert(opts.argv.end(), args.begin(), args.end());
  opts.env = kRuncEnv;
  ASSIGN_OR_RETURN(RunResult r, RunAndCapture(opts));
  return std::make_pair(r.status.ShellCode(), std::move(r.output));
}

StatusOr<bool> Runc::Exists(const std::string& container_id) const {
  if (!ValidContainerId(container_id)) {
    return InvalidArgument("runc: invalid container id '" + container_id + "'");
  }
  struct stat st {};
  std::string dir = state_root_ + "/" + container_id;
  if (lstat(dir.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return ErrnoStatus("runc: stat " + dir, errno);
}

Status Runc::Kill(const std::string& container_id, const std::string& signal) const {
  if (!ValidContainerId(container_id)) {
    return InvalidArgument("runc: invalid container id '" + container_id + "'");
  }
  ASSIGN_OR_RETURN(auto r, RunTool({"kill", container_id, signal}));
  if (r.first != 0) return Internal("runc kill " + container_id + ": " + r.second);
  return Status::Ok();
}

Status Runc::Delete(const std::string& container_id) const {
  ASSIGN_OR_RETURN(bool exists, Exists(container_id));
  if (!exists) return Status::Ok();
  ASSIGN_OR_RETURN(auto r, RunTool({"delete", "--force", container_id}));
  ASSIGN_OR_RETURN(exists, Exists(container_id));
  if (r.first != 0 || exists) {
    return Internal("runc delete --force " + container_id + ": " + r.second);
  }
  return Status::Ok();
}

StatusOr<RuncResult> Runc::Run(const RuncRunRequest& req) const {
  if (!ValidContainerId(req.container_id)) {
    return InvalidArgument("runc: container_id '" + req.container_id +
                           "' must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
  }
  if (req.bundle_dir.empty() || req.bundle_dir[0] != '/') {
    return InvalidArgument("runc: bundle_dir '" + req.bundle_dir + "' must be an absolute path");
  }
  if (req.stdout_sink == nullptr || req.stderr_sink == nullptr) {
    return InvalidArgument("runc: stdout_sink and stderr_sink are required");
  }
  ASSIGN_OR_RETURN(bool exists, Exists(req.container_id));
  if (exists) {
    return FailedPrecondition("runc: a container '" + req.container_id + "' already exists in " +
                              state_root_ + " (a leftover: `runc delete --force` it)");
  }

  // runc's own diagnostics go to a JSON log file in the bundle, read back to
  // tell runc's failures from the workload's. (runc also prints a fatal
  // error on its stderr, the container's stderr: only when no workload ran.)
  const std::string log_path = req.bundle_dir + "/runc.log";
  if (unlink(log_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("runc: unlink " + log_path, errno);
  }

  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.valid()) return ErrnoStatus("runc: open /dev/null", errno);
  std::array<Stream, 2> streams;
  std::array<UniqueFd, 2> write_ends;
  for (int i = 0; i < 2; ++i) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("runc: pipe2", errno);
    streams[i].pipe.reset(p[0]);
    write_ends[i].reset(p[1]);
    if (fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) return ErrnoStatus("runc: fcntl", errno);
  }
  streams[0].sink = req.stdout_sink;
  streams[1].sink = req.stderr_sink;

  SpawnOptions opts;
  opts.argv = {binary_, "--root", state_root_, "--log",    log_path,       "--log-format",
               "json",  "run",    "--keep",    "--bundle", req.bundle_dir, req.container_id};
  opts.env = kRuncEnv;
  opts.fds = {{0, devnull.get()}, {1, write_ends[0].get()}, {2, write_ends[1].get()}};
  // No die_with_parent: PR_SET_PDEATHSIG fires when the spawning THREAD
  // exits, and runc killed mid-run would leave the container unsupervised.

  RuncResult result;
  const Clock::time_point start = Clock::now();
  StatusOr<Subprocess> spawned = Subprocess::Spawn(opts);
  if (!spawned.ok()) return spawned.status();
  Subprocess child = std::move(*spawned);
  write_ends[0].reset();
  write_ends[1].reset();
  devnull.reset();

  // From here on the container may exist: whatever happens, delete it.
  struct Cleanup {
    const Runc* runc;
    const RuncRunRequest* req;
    ~Cleanup() {
      (void)runc->Delete(req->container_id);
      if (!req->cgroup_path.empty()) {
        if (StatusOr<Cgroup> cg = Cgroup::Adopt(req->cgroup_path); cg.ok()) (void)cg->Destroy();
      }
    }
  } cleanup{this, &req};

  // glibc 2.36 declares pidfd_open without C linkage: use the syscall.
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, child.pid(), 0)));
  if (!pidfd.valid()) return ErrnoStatus("runc: pidfd_open", errno);

  std::optional<Clock::time_point> deadline;
  if (req.timeout.count() > 0) deadline = start + req.timeout;
  std::optional<Clock::time_point> kill_sent;  // when we first asked runc to kill
  Clock::time_point next_kill_try{};
  std::optional<Clock::time_point> runc_exited;
  std::optional<ExitStatus> runc_status;
  bool stream_open[2] = {true, true};
  bool cancel_watched = req.cancel_fd >= 0;
  bool hard_killed = false;

  auto request_kill = [&](Clock::time_point now) {
    if (!kill_sent) kill_sent = now;
    next_kill_try = now + kKillRetry;
    (void)Kill(req.container_id, "KILL");  // fails while the container is being created
  };

  while (true) {
    Clock::time_point now = Clock::now();
    if (runc_exited &&
        ((!stream_open[0] && !stream_open[1]) || now - *runc_exited >= kDrainGrace)) {
      break;
    }
    if (!runc_exited) {
      if (deadline && now >= *deadline && !result.timed_out && !result.cancelled) {
        result.timed_out = true;
        request_kill(now);
      } else if (kill_sent && now >= next_kill_try) {
        request_kill(now);
      }
      if (kill_sent && !hard_killed && now - *kill_sent >= kKillGrace) {
        // runc did not reap the container in time: kill runc and the cgroup.
        hard_killed = true;
        (void)child.Signal(SIGKILL);
        if (!req.cgroup_path.empty()) {
          if (StatusOr<Cgroup> cg = Cgroup::Adopt(req.cgroup_path); cg.ok()) (void)cg->KillAll();
        }
      }
    }

    std::vector<pollfd> fds;
    int idx[2] = {-1, -1};
    for (int i = 0; i < 2; ++i) {
      if (!stream_open[i]) continue;
      idx[i] = static_cast<int>(fds.size());
      fds.push_back({streams[i].pipe.get(), POLLIN, 0});
    }
    int cancel_idx = -1;
    int pid_idx = -1;
    if (cancel_watched && !runc_exited) {
      cancel_idx = static_cast<int>(fds.size());
      fds.push_back({req.cancel_fd, POLLIN, 0});
    }
    if (!runc_exited) {
      pid_idx = static_cast<int>(fds.size());
      fds.push_back({pidfd.get(), POLLIN, 0});
    }
    // Wake for the next deadline of any kind.
    Clock::time_point wake = now + std::chrono::seconds(1);
    if (deadline && !result.timed_out) wake = std::min(wake, *deadline);
    if (kill_sent) wake = std::min(wake, next_kill_try);
    if (runc_exited) wake = std::min(wake, *runc_exited + kDrainGrace);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
    int rc = poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(ms, 0) + 1));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("runc: poll", errno);
    }
    for (int i = 0; i < 2; ++i) {
      if (idx[i] >= 0 && fds[idx[i]].revents != 0) stream_open[i] = streams[i].ReadOnce();
    }
    if (cancel_idx >= 0 && fds[cancel_idx].revents != 0) {
      cancel_watched = false;
      if (!result.timed_out) {
        result.cancelled = true;
        request_kill(Clock::now());
      }
    }
    if (pid_idx >= 0 && fds[pid_idx].revents != 0) {
      ASSIGN_OR_RETURN(ExitStatus st, child.Wait());
      runc_status = st;
      runc_exited = Clock::now();
      result.seconds = std::chrono::duration<double>(*runc_exited - start).count();
    }
  }

  for (int i = 0; i < 2; ++i) RETURN_IF_ERROR(streams[i].error);
  result.stdout_bytes = req.stdout_sink->written();
  result.stdout_truncated = req.stdout_sink->truncated();
  result.stderr_bytes = req.stderr_sink->written();
  result.stderr_truncated = req.stderr_sink->truncated();

  StatusOr<std::string> log = ReadFile(log_path, 1 << 20);
  std::string logged_error = log.ok() ? LastLoggedError(*log) : "";
  (void)unlink(log_path.c_str());

  if (runc_status->signal != 0) {
    // Only our hard kill ends runc itself by a signal.
    result.signal = SIGKILL;
  } else if (runc_status->code > 128 && runc_status->code <= 128 + 64) {
    result.signal = runc_status->code - 128;
  } else {
    result.exit_code = runc_status->code;
  }
  // runc's own failure (bad config, mount error, exec not found) exits
  // non-zero and logs an error; a workload's failure logs nothing.
  if (!logged_error.empty() && runc_status->code != 0 && !result.timed_out && !result.cancelled) {
    return Internal("runc run " + req.container_id + ": " + logged_error);
  }
  if (!req.cgroup_path.empty()) result.oom_killed = OomKilled(req.cgroup_path);
  return result;
}

Status Runc::RunDetached(const std::string& bundle_dir, const std::string& container_id,
                         int stdio_fd) const {
  if (!ValidContainerId(container_id)) {
    return InvalidArgument("runc: container_id '" + container_id +
                           "' must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
  }
  if (bundle_dir.empty() || bundle_dir[0] != '/') {
    return InvalidArgument("runc: bundle_dir '" + bundle_dir + "' must be an absolute path");
  }
  if (stdio_fd < 0) return InvalidArgument("runc: stdio_fd is required");
  ASSIGN_OR_RETURN(bool exists, Exists(container_id));
  if (exists) {
    return FailedPrecondition("runc: a container '" + container_id + "' already exists in " +
                              state_root_);
  }
  const std::string log_path = bundle_dir + "/runc.log";
  if (unlink(log_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("runc: unlink " + log_path, errno);
  }
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.valid()) return ErrnoStatus("runc: open /dev/null", errno);
  SpawnOptions opts;
  opts.argv = {binary_, "--root", state_root_, "--log",    log_path,   "--log-format",
               "json",  "run",    "--detach",  "--bundle", bundle_dir, container_id};
  opts.env = kRuncEnv;
  opts.fds = {{0, devnull.get()}, {1, stdio_fd}, {2, stdio_fd}};
  ASSIGN_OR_RETURN(Subprocess child, Subprocess::Spawn(opts));
  ASSIGN_OR_RETURN(ExitStatus st, child.Wait());
  if (st.success()) return Status::Ok();
  StatusOr<std::string> log = ReadFile(log_path, 1 << 20);
  std::string logged_error = log.ok() ? LastLoggedError(*log) : "";
  (void)Delete(container_id);
  return Internal("runc run --detach " + container_id + ": " + st.ToString() +
                  (logged_error.empty() ? "" : ": " + logged_error));
}

StatusOr<std::optional<Runc::State>> Runc::GetState(const std::string& container_id) const {
  ASSIGN_OR_RETURN(bool exists, Exists(container_id));
  if (!exists) return std::optional<State>();
  SpawnOptions opts;
  opts.argv = {binary_, "--root", state_root_, "state", container_id};
  opts.env = kRuncEnv;
  ASSIGN_OR_RETURN(RunResult r, RunAndCapture(opts));
  if (!r.status.success()) {
    // Deleted between the two looks: not an error.
    ASSIGN_OR_RETURN(exists, Exists(container_id));
    if (!exists) return std::optional<State>();
    return Internal("runc state " + container_id + ": " + r.status.ToString() + ": " +
                    r.output.substr(0, 1024));
  }
  // stdout and stderr are captured together: the state is the JSON object.
  size_t open = r.output.find('{');
  size_t close = r.output.rfind('}');
  nlohmann::json j;
  if (open != std::string::npos && close != std::string::npos && close > open) {
    j = nlohmann::json::parse(r.output.substr(open, close - open + 1), nullptr, false);
  }
  if (!j.is_object() || !j.contains("status") || !j["status"].is_string()) {
    return Internal("runc state " + container_id +
                    ": no state JSON in: " + r.output.substr(0, 1024));
  }
  State state;
  state.status = j["status"].get<std::string>();
  if (j.contains("pid") && j["pid"].is_number_integer()) {
    state.pid = static_cast<pid_t>(j["pid"].get<int64_t>());
  }
  return std::optional<State>(std::move(state));
}

}  // namespace cce::executor
