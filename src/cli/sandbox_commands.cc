// `cce sandbox run`: runs a command in the job sandbox on this machine, with
// the exact code path and isolation policy cce-agent uses (executor/sandbox.h),
// so a consumer can try an algorithm locally and we can test the sandbox
// directly. docs/cli.md and docs/isolation.md ("cce sandbox run").
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "cli/cli.h"
#include "cli/command.h"
#include "cli/progress.h"
#include "executor/policy.h"
#include "executor/sandbox.h"

namespace cce::cli {
namespace {

using nlohmann::json;

// SIGINT/SIGTERM/SIGHUP while the container runs: write a byte to this pipe,
// which is the sandbox's cancel_fd, so the container is killed and every
// mount, cgroup and directory is still cleaned up before we exit.
int g_cancel_write_fd = -1;

extern "C" void OnCancelSignal(int) {
  int saved = errno;
  if (g_cancel_write_fd >= 0) (void)!write(g_cancel_write_fd, "x", 1);
  errno = saved;
}

class CancelOnSignals {
 public:
  static StatusOr<CancelOnSignals> Install() {
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus("pipe2", errno);
    CancelOnSignals c(p[0], p[1]);
    g_cancel_write_fd = p[1];
    struct sigaction sa {};
    sa.sa_handler = OnCancelSignal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction old {};
      if (sigaction(sig, &sa, &old) != 0) return ErrnoStatus("sigaction", errno);
      c.saved_[sig] = old;
    }
    return c;
  }
  CancelOnSignals(CancelOnSignals&& o) noexcept
      : read_(std::move(o.read_)), write_(std::move(o.write_)), saved_(std::move(o.saved_)) {
    o.saved_.clear();
  }
  ~CancelOnSignals() {
    for (auto& [sig, old] : saved_) sigaction(sig, &old, nullptr);
    if (!saved_.empty()) g_cancel_write_fd = -1;
  }
  int fd() const { return read_.get(); }

 private:
  CancelOnSignals(int r, int w) : read_(r), write_(w) {}
  UniqueFd read_, write_;
  std::map<int, struct sigaction> saved_;
};

// NAME=VALUE -> {NAME, VALUE}; errors name the flag.
StatusOr<std::pair<std::string, std::string>> SplitPair(const std::string& v,
                                                        const std::string& flag) {
  size_t eq = v.find('=');
  if (eq == 0 || eq == std::string::npos || eq + 1 == v.size()) {
    return InvalidArgument(flag + ": '" + v + "': expected NAME=VALUE");
  }
  return std::make_pair(v.substr(0, eq), v.substr(eq + 1));
}

StatusOr<std::string> Absolute(const std::string& path, const std::string& flag) {
  if (path.empty()) return InvalidArgument(flag + ": empty path");
  std::string abs = path;
  if (path[0] != '/') {
    char* cwd = getcwd(nullptr, 0);
    if (cwd == nullptr) return ErrnoStatus(flag + ": getcwd", errno);
    abs = std::string(cwd) + "/" + path;
    free(cwd);
  }
  // `--data claims=./claims` (README.md): the run spec takes only normal
  // absolute paths, so '.', '..' and doubled or trailing '/' go here.
  abs = std::filesystem::path(abs).lexically_normal().string();
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  return abs;
}

std::string RandomJobId() {
  uint8_t b[6] = {};
  if (getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) {
    return "sbx-" + std::to_string(getpid());
  }
  static const char kHex[] = "0123456789abcdef";
  std::string id = "sbx-";
  for (uint8_t x : b) {
    id += kHex[x >> 4];
    id += kHex[x & 15];
  }
  return id;
}

// A private scratch directory: 0711, so the container's mapped user may pass
// through it to the root filesystem but not list it.
StatusOr<std::string> MakeWorkDir() {
  const char* tmp = getenv("TMPDIR");
  std::string base = tmp != nullptr && tmp[0] == '/' ? tmp : "/var/tmp";
  std::string tmpl = base + "/cce-sandbox-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("mkdtemp " + tmpl, errno);
  if (chmod(tmpl.c_str(), 0711) != 0) return ErrnoStatus("chmod " + tmpl, errno);
  return tmpl;
}

StatusOr<executor::IsolationPolicy> PolicyFromFlags(const ParsedFlags& f) {
  executor::IsolationPolicy policy;
  if (auto file = f.Get("policy")) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(*file, executor::kMaxPolicyBytes));
    ASSIGN_OR_RETURN(policy, executor::LoadIsolationPolicy(text, *file));
  }
  ASSIGN_OR_RETURN(auto timeout, f.GetUint("timeout", 1, 7 * 24 * 3600));
  if (timeout) policy.timeout_seconds = static_cast<int64_t>(*timeout);
  ASSIGN_OR_RETURN(auto memory, f.GetUint("memory", 16, uint64_t{1} << 30));
  if (memory) policy.memory_mib = *memory;
  ASSIGN_OR_RETURN(auto pids, f.GetUint("pids", 8, 1 << 22));
  if (pids) policy.pids_max = static_cast<int64_t>(*pids);
  if (auto cpus = f.Get("cpus")) {
    char* end = nullptr;
    errno = 0;
    double v = strtod(cpus->c_str(), &end);
    if (cpus->empty() || *end != '\0' || errno != 0 || !std::isfinite(v) || v < 0.01 || v > 1024) {
      return InvalidArgument("--cpus: '" + *cpus + "': expected a number of CPUs in [0.01, 1024]");
    }
    policy.cpus = v;
  }
  RETURN_IF_ERROR(executor::ValidateIsolationPolicy(policy));
  return policy;
}

json ResultJson(const executor::SandboxResult& r, const std::string& output_dir) {
  return {{"exit_code", r.exit_code},
          {"signal", r.signal},
          {"timed_out", r.timed_out},
          {"cancelled", r.cancelled},
          {"oom_killed", r.oom_killed},
          {"seconds", r.seconds},
          {"output_dir", output_dir},
          {"files", r.output.files.size()},
          {"output_bytes", r.output.total_bytes},
          {"skipped", r.output.skipped},
          {"stdout_bytes", r.stdout_bytes},
          {"stderr_bytes", r.stderr_bytes},
          {"stdout_truncated", r.stdout_truncated},
          {"stderr_truncated", r.stderr_truncated},
          {"image_manifest_digest", r.image_manifest_digest},
          {"process_exit_code", executor::SandboxExitCode(r)}};
}

std::string Outcome(const executor::SandboxResult& r) {
  if (r.timed_out) return "timed out (killed)";
  if (r.cancelled) return "cancelled (killed)";
  std::string s = r.signal != 0 ? "killed by signal " + std::to_string(r.signal)
                                : "exit code " + std::to_string(r.exit_code);
  if (r.oom_killed) s += ", memory limit hit (OOM kill)";
  return s;
}

int SandboxRun(const Args& args) {
  FlagParser p(
      "cce sandbox run --image IMAGE --output DIR [options] -- COMMAND [ARGS...]",
      "Runs COMMAND in the job sandbox on this machine: the same code path and isolation\n"
      "policy cce-agent uses for a job (docs/isolation.md). IMAGE is oci:PATH[:TAG],\n"
      "oci-archive:PATH[:TAG], docker-archive:PATH[:TAG] or dir:ROOTFS. Without COMMAND the\n"
      "image's entrypoint and cmd run. The container sees each --data directory read-only\n"
      "at /data/NAME (or its --mount-path), writes only /output and /tmp, has no network\n"
      "but loopback, and runs as an unprivileged user. Afterwards DIR holds files/ (what\n"
      "it wrote to /output), stdout.txt, stderr.txt and manifest.json (SHA-256 of each).\n"
      "Exit code: the container's; 128+N when killed by signal N; 124 on timeout; 1 or 2\n"
      "when the sandbox could not be set up. Needs root.",
      {{"image", "IMAGE", "the container image (see above)"},
       {"output", "DIR", "where results go (created; must be empty if it exists)"},
       {"data", "NAME=HOST_DIR", "a host directory shown read-only at /data/NAME", true},
       {"mount-path", "NAME=PATH", "where --data NAME appears instead of /data/NAME", true},
       {"env", "NAME=VALUE", "an environment variable for COMMAND (never a secret)", true},
       {"timeout", "SECONDS", "kill the container after this long (policy default 3600)"},
       {"memory", "MIB", "memory limit, no swap (policy default 2048)"},
       {"cpus", "N", "CPU limit, e.g. 1.5 (policy default 1)"},
       {"pids", "N", "process/thread limit (policy default 512)"},
       {"policy", "FILE", "an isolation policy YAML file (docs/isolation.md)"},
       {"work-dir", "DIR", "scratch directory (default: a new one in $TMPDIR or /var/tmp)"},
       {"job-id", "ID", "names the container and its cgroup (default: random)"},
       {"expect-digest", "sha256:HEX", "refuse the image unless its manifest has this digest"},
       {"output-format", "FORMAT", "text (default) or json: the result summary on stdout"}});
  int exit = 0;
  auto f = ParseOrExit(p, args, kAnyArgCount, &exit);
  if (!f) return exit;
  auto run = [&]() -> StatusOr<int> {
    bool json_out = false;
    if (auto o = f->Get("output-format")) {
      if (*o == "json") {
        json_out = true;
      } else if (*o != "text") {
        return InvalidArgument("--output-format: '" + *o + "': expected 'text' or 'json'");
      }
    }
    executor::SandboxRequest req;
    auto image = f->Get("image");
    if (!image) return InvalidArgument("--image IMAGE is required");
    ASSIGN_OR_RETURN(req.image, executor::ParseImageRef(*image));
    if (req.image.kind == executor::ImageRef::Kind::kDir) {
      ASSIGN_OR_RETURN(req.image.path, Absolute(req.image.path, "--image"));
    }
    auto output = f->Get("output");
    if (!output) return InvalidArgument("--output DIR is required");
    ASSIGN_OR_RETURN(req.output_dir, Absolute(*output, "--output"));
    req.command = f->positional();
    req.expected_manifest_digest = f->Get("expect-digest").value_or("");

    std::map<std::string, std::string> mount_paths;
    for (const std::string& v : f->All("mount-path")) {
      ASSIGN_OR_RETURN(auto kv, SplitPair(v, "--mount-path"));
      if (!mount_paths.emplace(kv.first, kv.second).second) {
        return InvalidArgument("--mount-path: '" + kv.first + "' given twice");
      }
    }
    for (const std::string& v : f->All("data")) {
      ASSIGN_OR_RETURN(auto kv, SplitPair(v, "--data"));
      executor::DataMount d;
      d.name = kv.first;
      ASSIGN_OR_RETURN(d.host_dir, Absolute(kv.second, "--data " + kv.first));
      if (auto it = mount_paths.find(d.name); it != mount_paths.end()) {
        d.container_path = it->second;
        mount_paths.erase(it);
      }
      req.data.push_back(std::move(d));
    }
    if (!mount_paths.empty()) {
      return InvalidArgument("--mount-path: '" + mount_paths.begin()->first +
                             "' names no --data directory");
    }
    for (const std::string& v : f->All("env")) {
      ASSIGN_OR_RETURN(auto kv, SplitPair(v, "--env"));
      req.env.push_back(kv.first + "=" + kv.second);
    }
    ASSIGN_OR_RETURN(req.policy, PolicyFromFlags(*f));
    req.job_id = f->Get("job-id").value_or(RandomJobId());

    std::string made_work_dir;
    if (auto w = f->Get("work-dir")) {
      ASSIGN_OR_RETURN(req.work_dir, Absolute(*w, "--work-dir"));
    } else {
      if (geteuid() != 0) return FailedPrecondition("cce sandbox run must run as root");
      ASSIGN_OR_RETURN(made_work_dir, MakeWorkDir());
      req.work_dir = made_work_dir;
    }
    ASSIGN_OR_RETURN(CancelOnSignals cancel, CancelOnSignals::Install());
    req.cancel_fd = cancel.fd();
    StatusOr<executor::SandboxResult> result = executor::RunSandbox(req);
    if (!made_work_dir.empty()) rmdir(made_work_dir.c_str());  // emptied by RunSandbox
    if (!result.ok()) return result.status();
    if (json_out) {
      std::cout << ResultJson(*result, req.output_dir).dump() << "\n";
    } else {
      std::cout << "sandbox: " << Outcome(*result) << " after " << HumanDuration(result->seconds)
                << "; "
                << result->output.files.size() << " file(s), " << result->output.total_bytes
                << " bytes in " << req.output_dir << "/files";
      if (!result->output.skipped.empty()) {
        std::cout << " (" << result->output.skipped.size() << " skipped)";
      }
      std::cout << "; stdout " << result->stdout_bytes << " B"
                << (result->stdout_truncated ? " (truncated)" : "") << ", stderr "
                << result->stderr_bytes << " B" << (result->stderr_truncated ? " (truncated)" : "")
                << "\n";
    }
    return executor::SandboxExitCode(*result);
  };
  StatusOr<int> code = run();
  if (!code.ok()) return Fail(code.status());
  return *code;
}

}  // namespace

std::vector<Command> SandboxCommands() {
  return {{{"sandbox", "run"}, "run a command in the job sandbox on this machine", SandboxRun}};
}

}  // namespace cce::cli
