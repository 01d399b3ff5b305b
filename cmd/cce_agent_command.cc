#include "cce_agent_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "agent/job_runner.h"
#include "agent/quote_provider.h"
#include "agent/sim_quote.h"
#include "base/fd.h"
#include "executor/policy.h"

namespace cce::cmd {
namespace {

using nlohmann::json;
constexpr char kProgram[] = "cce-agent";
constexpr size_t kMaxCredentialBytes = 64 << 10;

cli::FlagParser RunParser() {
  return cli::FlagParser(
      "cce-agent run --plane URL --ca FILE (--credential-fd N | --credential-file FILE)\n"
      "                    --work-dir DIR [--job ID] [--tee configfs-tsm|simulated] [--sim-dir "
      "DIR]\n"
      "                    [--policy FILE] [--decryptfs PATH] [--runc PATH] [--log-format "
      "json|text]",
      "Runs one Privacy Mode job inside its VM: attests to the plane, fetches the job, the\n"
      "dataset keys and the image, mounts the datasets with cce-decryptfs, runs the\n"
      "consumer's container in the sandbox (the `cce sandbox run` path), then submits the\n"
      "signed output bundle. Every step is reported to the plane; on failure the job is\n"
      "FAILED with the reason. The credential is read from a descriptor or a file, never\n"
      "from argv or the environment. Progress goes to stderr as one JSON object per line.",
      {{"plane", "URL", "the plane: https://HOST:PORT, or unix:PATH for its agent socket"},
       {"plane-name", "NAME",
        "with unix:PATH, the name the plane's certificate is checked against (default "
        "localhost)"},
       {"ca", "FILE", "the plane's CA certificate (PEM)"},
       {"credential-fd", "N", "read the Job Credential from file descriptor N (then close it)"},
       {"credential-file", "FILE", "read the Job Credential from FILE"},
       {"job", "ID",
        "the job the provisioner made this VM for, as a label for the log (what runs is what "
        "the credential names)"},
       {"work-dir", "DIR", "an empty directory for this job, on tmpfs (mounts, image, output)"},
       {"tee", "KIND",
        "quote provider: configfs-tsm (a TDX guest, default) or simulated (a plane initialized "
        "with --simulated-tee; never a real TEE)"},
       {"sim-dir", "DIR", "with --tee simulated: the simulated TEE directory"},
       {"policy", "FILE", "isolation policy file (docs/isolation.md; default: built-in)"},
       {"decryptfs", "PATH", "the cce-decryptfs binary (default: next to cce-agent)"},
       {"runc", "PATH", "the runc binary (default: runc on PATH)"},
       {"log-format", "FORMAT", "json (default) or text"}});
}

std::string SelfDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

StatusOr<std::string> ReadCredential(const cli::ParsedFlags& f) {
  const bool by_fd = f.Has("credential-fd");
  if (by_fd == f.Has("credential-file")) {
    return InvalidArgument("expected exactly one of --credential-fd N or --credential-file FILE");
  }
  std::string text;
  if (by_fd) {
    ASSIGN_OR_RETURN(std::optional<uint64_t> n, f.GetUint("credential-fd", 0, 1 << 20));
    const int fd = static_cast<int>(*n);
    if (fcntl(fd, F_GETFD) < 0) {
      return InvalidArgument("--credential-fd " + std::to_string(fd) +
                             ": not an open file descriptor");
    }
    UniqueFd owned(fd);
    ASSIGN_OR_RETURN(text, ReadAll(fd, kMaxCredentialBytes, "--credential-fd"));
  } else {
    ASSIGN_OR_RETURN(text, ReadFile(*f.Get("credential-file"), kMaxCredentialBytes));
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (text.empty()) return InvalidArgument("the Job Credential is empty");
  return text;
}

class EventLog {
 public:
  explicit EventLog(bool json_format) : json_(json_format) {}
  void Emit(const std::string& level, const std::string& step, const json& details) const {
    char ts[32];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    (void)std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::string line;
    if (json_) {
      json j = {{"ts", ts}, {"level", level}, {"component", kProgram}, {"step", step}};
      for (auto it = details.begin(); it != details.end(); ++it) j[it.key()] = it.value();
      // dump() escapes control characters, so a hostile string cannot forge
      // a log line.
      line = j.dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      line = std::string(ts) + " " + level + " " + step + " " +
             details.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    line += '\n';
    (void)WriteFull(
        2, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(line.data()), line.size()));
  }

 private:
  bool json_;
};

Status Run(const cli::ParsedFlags& f, const EventLog& log) {
  agent::AgentConfig c;
  auto plane = f.Get("plane");
  auto ca = f.Get("ca");
  auto work = f.Get("work-dir");
  if (!plane || plane->empty())
    return InvalidArgument("--plane: required (https://HOST:PORT or unix:PATH)");
  if (!ca || ca->empty()) return InvalidArgument("--ca: required (the plane's CA certificate)");
  if (!work || work->empty()) return InvalidArgument("--work-dir: required");
  if (plane->rfind("unix:", 0) == 0) {
    c.plane.unix_socket = plane->substr(5);
    if (c.plane.unix_socket.empty() || c.plane.unix_socket[0] != '/') {
      return InvalidArgument("--plane: expected unix:/ABSOLUTE/PATH");
    }
    c.plane.plane_url = "https://" + f.Get("plane-name").value_or("localhost");
  } else if (plane->rfind("https://", 0) == 0) {
    c.plane.plane_url = *plane;
  } else {
    return InvalidArgument("--plane: expected https://HOST:PORT or unix:PATH, got '" + *plane +
                           "'");
  }
  c.plane.ca_file = *ca;
  c.work_dir = *work;
  if (auto p = f.Get("policy")) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(*p, executor::kMaxPolicyBytes + 1));
    ASSIGN_OR_RETURN(c.base_policy, executor::LoadIsolationPolicy(text, *p));
  }
  c.decryptfs_binary = f.Get("decryptfs").value_or(SelfDir() + "/cce-decryptfs");
  if (auto r = f.Get("runc")) c.sandbox_host.runc_path = *r;
  const std::string tee = f.Get("tee").value_or("configfs-tsm");
  std::unique_ptr<agent::QuoteProvider> quotes;
  if (tee == "configfs-tsm") {
    quotes = agent::MakeConfigfsTsmProvider();
  } else if (tee == "simulated") {
    auto dir = f.Get("sim-dir");
    if (!dir || dir->empty()) return InvalidArgument("--tee simulated: --sim-dir DIR is required");
    quotes = agent::MakeSimulatedQuoteProvider(*dir);
    log.Emit("warn", "simulated_tee",
             {{"message", "SIMULATED TEE: quotes are signed by a development key, not TDX"}});
  } else {
    return InvalidArgument("--tee: expected configfs-tsm or simulated, got '" + tee + "'");
  }
  c.quotes = quotes.get();
  ASSIGN_OR_RETURN(c.credential, ReadCredential(f));
  if (auto job = f.Get("job")) log.Emit("info", "start", {{"provisioned_for", *job}});
  c.progress = [&log](const std::string& step, const json& details) {
    log.Emit("info", step, details);
  };
  ASSIGN_OR_RETURN(agent::AgentOutcome out, agent::RunJob(c));
  log.Emit("info", "done",
           {{"job", out.job_id}, {"bundle", out.bundle_digest}, {"bytes", out.bundle_size}});
  return Status::Ok();
}

int RunVerb(const cli::Args& args) {
  int exit = 0;
  auto flags = cli::ParseArgs(kProgram, RunParser(), args, 0, &exit);
  if (!flags) return exit;
  const std::string format = flags->Get("log-format").value_or("json");
  if (format != "json" && format != "text") {
    return cli::ReportError(kProgram, InvalidArgument("--log-format: expected json or text"));
  }
  EventLog log(format == "json");
  Status s = Run(*flags, log);
  if (s.ok()) return kExitOk;
  log.Emit("error", "failed", {{"error", s.ToString()}});
  return cli::ReportError(kProgram, s);
}

}  // namespace

const cli::CommandTable& AgentCommandTable() {
  static const cli::CommandTable kTable{
      kProgram,
      "The in-VM agent of a Privacy Mode job (docs/agent.md). The provisioner starts it;\n"
      "run it by hand only against a plane initialized with --simulated-tee.",
      {{{"run"}, "run the VM's one job: attest, mount, sandbox, submit", RunVerb}},
      "Exit codes: 0 the output was submitted; 1 a step failed (the plane was told);\n"
      "2 bad flags; 3 the data or the image failed authentication.",
      "0.1.0"};
  return kTable;
}

}  // namespace cce::cmd
