#include "cce_agent_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

#include "agent/job_runner.h"
#include "agent/kbs_client.h"
#include "agent/plane_agent_client.h"
#include "agent/quote_provider.h"
#include "agent/sim_quote.h"
#include "attest/quote.h"
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
       {"credential-file", "FILE", "read the Job Credential from FILE (- for stdin)"},
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
  } else if (*f.Get("credential-file") == "-") {
    ASSIGN_OR_RETURN(text, ReadAll(0, kMaxCredentialBytes, "--credential-file - (stdin)"));
  } else {
    auto read = ReadFile(*f.Get("credential-file"), kMaxCredentialBytes);
    if (!read.ok()) {  // an input file that cannot be read is bad input (exit 2)
      return InvalidArgument("--credential-file: " + read.status().message());
    }
    text = std::move(*read);
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (text.empty()) {
    return InvalidArgument(
        "the Job Credential is empty (" +
        (by_fd ? "--credential-fd " + *f.Get("credential-fd")
               : "--credential-file " + *f.Get("credential-file")) +
        "); on a plane with provisioner none, `cce-plane job credential --data-dir DIR JOB` "
        "prints one");
  }
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

// Flag --NAME, "json" or "text" (`fallback` when absent): true for json.
// Errors: kInvalidArgument "--NAME: expected FALLBACK or OTHER, got 'VALUE'".
StatusOr<bool> JsonOrText(const cli::ParsedFlags& flags, const std::string& name,
                          const std::string& fallback) {
  const std::string format = flags.Get(name).value_or(fallback);
  if (format != "json" && format != "text") {
    const std::string other = fallback == "json" ? "text" : "json";
    return InvalidArgument("--" + name + ": expected " + fallback + " or " + other + ", got '" +
                           format + "'");
  }
  return format == "json";
}

int RunVerb(const cli::Args& args) {
  int exit = 0;
  auto flags = cli::ParseArgs(kProgram, RunParser(), args, 0, &exit);
  if (!flags) return exit;
  auto json_log = JsonOrText(*flags, "log-format", "json");
  if (!json_log.ok()) return cli::ReportError(kProgram, json_log.status());
  EventLog log(*json_log);
  Status s = Run(*flags, log);
  if (s.ok()) return kExitOk;
  log.Emit("error", "failed", {{"error", s.ToString()}});
  return cli::ReportError(kProgram, s);
}

// ---- `cce-agent attest`: steps 1-3 of `run` by hand (docs/agent.md) --------

constexpr char kConfigfsTsmRoot[] = "/sys/kernel/config/tsm/report";

cli::FlagParser AttestParser() {
  return cli::FlagParser(
      "cce-agent attest --simulate --sim-dir DIR --plane URL --ca FILE\n"
      "                       (--credential-file FILE|- | --credential-fd N) [--plane-name NAME]\n"
      "                       [--output text|json]",
      "A developer's check of the key broker: with a Job Credential, does what a job's VM\n"
      "does first (docs/attestation.md section 11): auth (credential -> nonce), attest (a\n"
      "fresh TEE key and a quote whose REPORTDATA is SHA-512(nonce || key) -> session),\n"
      "then fetches the job and each dataset's key, and prints what it got at each step:\n"
      "the nonce, the quote (size, measurements, SIMULATED or not), the session (its\n"
      "SHA-256, never the token) and each key's SHA-256 fingerprint (never the key). The\n"
      "keys are then wiped and the job is reported FAILED (it was not run: the credential\n"
      "is single use). Without --simulate it needs a TDX guest (configfs-tsm).\n"
      "The credential comes from a file, stdin (--credential-file -) or a descriptor,\n"
      "never argv or the environment. Get one for a job waiting in PROVISIONING with\n"
      "`cce-plane job credential --data-dir DIR JOB` (plane provisioner none).\n"
      "Exit codes: 0 every key was released; 1 a step failed (no TDX without --simulate,\n"
      "plane unreachable, job in the wrong state); 2 bad flags or input (no credential);\n"
      "3 the plane refused (credential, quote, rental) or a release failed authentication.",
      {{"simulate", "",
        "quote with the development chain of a plane made by `cce-plane init --simulated-tee` "
        "(needs --sim-dir); such quotes prove nothing about this machine"},
       {"sim-dir", "DIR", "with --simulate: the plane's simulated TEE, DATA_DIR/attestation/sim"},
       {"plane", "URL", "the plane: https://HOST:PORT, or unix:PATH for its agent socket"},
       {"plane-name", "NAME",
        "with unix:PATH, the name the plane's certificate is checked against (default "
        "localhost)"},
       {"ca", "FILE", "the plane's CA certificate (PEM)"},
       {"credential-fd", "N", "read the Job Credential from file descriptor N (then close it)"},
       {"credential-file", "FILE", "read the Job Credential from FILE (- for stdin)"},
       {"output", "FORMAT", "text (default) or json (one object per line, on stdout)"}});
}

std::string IsoTime(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "?";
  char ts[32];
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  (void)std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return ts;
}

// Records the REPORTDATA asked for and the quote made, so the command can
// show the quote even when the plane refuses it.
class RecordingQuoteProvider : public agent::QuoteProvider {
 public:
  explicit RecordingQuoteProvider(agent::QuoteProvider& inner) : inner_(inner) {}
  std::string name() const override { return inner_.name(); }
  bool simulated() const override { return inner_.simulated(); }
  StatusOr<crypto::Bytes> GetQuote(const agent::ReportData& report_data) override {
    auto q = inner_.GetQuote(report_data);
    if (q.ok()) quote_ = *q;
    return q;
  }
  const std::optional<crypto::Bytes>& quote() const { return quote_; }

 private:
  agent::QuoteProvider& inner_;
  std::optional<crypto::Bytes> quote_;
};

// One step: a JSON object per line with --output json, else a labelled line.
class StepPrinter {
 public:
  explicit StepPrinter(bool json_output) : json_(json_output) {}
  bool json_output() const { return json_; }
  void Print(const std::string& step, const json& fields, const std::string& text) const {
    std::string line;
    if (json_) {
      json j = {{"step", step}};
      for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = it.value();
      line = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    } else {
      std::string label = step;
      label.resize(std::max<size_t>(label.size(), 9), ' ');
      line = label + " " + text + "\n";
    }
    (void)WriteFull(
        1, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(line.data()), line.size()));
  }

 private:
  bool json_;
};

// The quote as the plane will see it: parsed here only to show it.
void PrintQuote(const StepPrinter& out, const agent::QuoteProvider& provider,
                const crypto::Bytes& quote) {
  auto parsed = attest::ParseQuote(quote);
  const std::string kind = provider.simulated() ? "SIMULATED" : "TDX";
  if (!parsed.ok()) {
    out.Print("quote",
              {{"provider", provider.name()},
               {"simulated", provider.simulated()},
               {"bytes", quote.size()},
               {"parse_error", parsed.status().message()}},
              kind + "  " + std::to_string(quote.size()) + " bytes  (cannot parse: " +
                  parsed.status().message() + ")");
    return;
  }
  const attest::TdReportBody& b = parsed->body;
  json rtmr = json::array();
  for (const auto& r : b.rtmr) rtmr.push_back(crypto::ToHex(r));
  const bool debug = (b.TdAttributes() & attest::kTdAttributeDebug) != 0;
  const std::string report_data = crypto::ToHex(b.report_data);
  std::string text = kind + "  " + std::to_string(quote.size()) + " bytes  TDX quote v" +
                     std::to_string(parsed->header.version) + "  provider " + provider.name() +
                     (debug ? "  DEBUG TD" : "") + "\n";
  text += "          MRTD        " + crypto::ToHex(b.mr_td) + "\n";
  for (size_t i = 0; i < b.rtmr.size(); ++i) {
    text += "          RTMR" + std::to_string(i) + "       " + crypto::ToHex(b.rtmr[i]) + "\n";
  }
  text += "          MRSEAM      " + crypto::ToHex(b.mr_seam) + "\n";
  text += "          REPORTDATA  " + report_data + "\n";
  text += "                      = SHA-512(nonce || TEE public key)";
  out.Print("quote",
            {{"provider", provider.name()},
             {"simulated", provider.simulated()},
             {"bytes", quote.size()},
             {"version", parsed->header.version},
             {"mr_td", crypto::ToHex(b.mr_td)},
             {"rtmr", rtmr},
             {"mr_seam", crypto::ToHex(b.mr_seam)},
             {"td_attributes", crypto::ToHex(b.td_attributes)},
             {"debug", debug},
             {"report_data", report_data},
             {"report_data_is", "SHA-512(nonce || TEE public key)"}},
            text);
}

StatusOr<agent::KbsEndpoint> EndpointFrom(const cli::ParsedFlags& f) {
  agent::KbsEndpoint e;
  auto plane = f.Get("plane");
  auto ca = f.Get("ca");
  if (!plane || plane->empty())
    return InvalidArgument("--plane: required (https://HOST:PORT or unix:PATH)");
  if (!ca || ca->empty()) return InvalidArgument("--ca: required (the plane's CA certificate)");
  if (plane->rfind("unix:", 0) == 0) {
    e.unix_socket = plane->substr(5);
    if (e.unix_socket.empty() || e.unix_socket[0] != '/') {
      return InvalidArgument("--plane: expected unix:/ABSOLUTE/PATH");
    }
    e.plane_url = "https://" + f.Get("plane-name").value_or("localhost");
  } else if (plane->rfind("https://", 0) == 0) {
    e.plane_url = *plane;
  } else {
    return InvalidArgument("--plane: expected https://HOST:PORT or unix:PATH, got '" + *plane +
                           "'");
  }
  e.ca_file = *ca;
  return e;
}

Status Attest(const cli::ParsedFlags& f, const StepPrinter& out) {
  ASSIGN_OR_RETURN(agent::KbsEndpoint plane, EndpointFrom(f));
  // The TEE first: without TDX and without --simulate nothing else is read
  // (not even the credential on stdin).
  std::unique_ptr<agent::QuoteProvider> tee;
  if (f.Has("simulate")) {
    auto dir = f.Get("sim-dir");
    if (!dir || dir->empty()) {
      return InvalidArgument(
          "--simulate: --sim-dir DIR is required (the plane's DATA_DIR/attestation/sim, made by "
          "`cce-plane init --simulated-tee`)");
    }
    if (access(dir->c_str(), F_OK) != 0) {
      return InvalidArgument("--sim-dir " + *dir +
                             ": no such directory (a plane initialized with `cce-plane init "
                             "--simulated-tee` has it at DATA_DIR/attestation/sim)");
    }
    tee = agent::MakeSimulatedQuoteProvider(*dir);
    (void)std::fprintf(stderr,
                       "cce-agent: warning: SIMULATED TEE: quotes are signed by the development "
                       "key in %s, not by TDX; they prove nothing about this machine\n",
                       dir->c_str());
  } else {
    if (f.Has("sim-dir")) return InvalidArgument("--sim-dir: only with --simulate");
    if (access(kConfigfsTsmRoot, F_OK) != 0) {
      return FailedPrecondition(
          std::string("no TDX here: ") + kConfigfsTsmRoot +
          " does not exist (not a TDX guest, or a kernel without configfs-tsm). On a "
          "development machine add --simulate --sim-dir DATA_DIR/attestation/sim, against a "
          "plane initialized with `cce-plane init --simulated-tee`");
    }
    tee = agent::MakeConfigfsTsmProvider(kConfigfsTsmRoot);
  }
  ASSIGN_OR_RETURN(std::string credential, ReadCredential(f));

  RecordingQuoteProvider quotes(*tee);
  auto attested = agent::AttestTee(plane, credential, quotes);
  if (!attested.ok()) {
    // Refused at step 2: the quote is still worth seeing.
    if (quotes.quote()) PrintQuote(out, quotes, *quotes.quote());
    return attested.status();
  }
  agent::KbsSession& session = *attested;
  out.Print("auth",
            {{"job", session.job_id},
             {"nonce", session.nonce},
             {"nonce_expires_at", session.nonce_expires_at}},
            "job " + session.job_id + "  nonce " + session.nonce + "  (expires " +
                IsoTime(session.nonce_expires_at) + ")");
  if (!quotes.quote()) return Internal("kbs attest: no quote was made");
  PrintQuote(out, quotes, *quotes.quote());
  const std::string session_sha256 = crypto::ToHex(crypto::Sha256(crypto::AsBytes(session.session)));
  out.Print("attested",
            {{"job", session.job_id},
             {"session_sha256", session_sha256},
             {"expires_at", session.expires_at},
             {"simulated_tee", session.simulated_tee},
             {"tcb_status", session.tcb_status}},
            "session sha256:" + session_sha256 + "  (key release until " +
                IsoTime(session.expires_at) + ")  tee " +
                (session.simulated_tee ? "SIMULATED" : "TDX") + "  tcb " +
                (session.tcb_status.empty() ? "?" : session.tcb_status) + "  job " +
                session.job_id + " is ATTESTED");

  ASSIGN_OR_RETURN(agent::PlaneAgentClient agent_api,
                   agent::PlaneAgentClient::Create(plane, session.session));
  // From here the job is ATTESTED and this command is its only agent: tell
  // the plane how it ends (FAILED: it was not run), whatever happens.
  auto close_job = [&](const std::string& reason) {
    Status told = agent_api.ReportFailed(reason);
    if (!told.ok()) {
      (void)std::fprintf(stderr, "cce-agent: warning: could not report job %s FAILED: %s\n",
                         session.job_id.c_str(), told.ToString().c_str());
      return;
    }
    out.Print("closed", {{"job", session.job_id}, {"state", "FAILED"}, {"reason", reason}},
              "job " + session.job_id + " reported FAILED: " + reason);
  };
  Status fetched = [&]() -> Status {
    ASSIGN_OR_RETURN(api::AgentJob job, agent_api.FetchJob());
    if (job.job_id != session.job_id) {
      return PermissionDenied("plane: the job document is for " + job.job_id + ", not " +
                              session.job_id);
    }
    std::vector<std::string> names;
    for (const auto& d : job.datasets) names.push_back(d.name);
    std::string listed;
    for (const auto& n : names) listed += (listed.empty() ? "" : ", ") + n;
    out.Print("job", {{"job", job.job_id}, {"image", job.image_digest}, {"datasets", names}},
              "image " + job.image_digest + "  datasets " + (listed.empty() ? "-" : listed));
    ASSIGN_OR_RETURN(agent::DatasetKeys keys, agent::ReleaseDatasetKeys(plane, session, names));
    for (const auto& name : names) {
      auto k = keys.keys.find(name);
      if (k == keys.keys.end()) return Internal("kbs resource " + name + ": no key returned");
      const agent::DatasetPin& pin = keys.pins[name];
      // The fingerprint only: the key itself is never printed.
      const std::string fp = crypto::ToHex(crypto::Sha256(k->second.span()));
      out.Print("key",
                {{"dataset", name},
                 {"key_sha256", fp},
                 {"key_bytes", k->second.size()},
                 {"dataset_id", pin.dataset_id},
                 {"min_version", pin.min_version}},
                name + "  key sha256:" + fp + "  (" + std::to_string(k->second.size()) +
                    " bytes, JWE to the TEE key)  dataset id " +
                    (pin.dataset_id.empty() ? "-" : pin.dataset_id) + "  min version " +
                    std::to_string(pin.min_version));
    }
    keys.keys.clear();  // wiped now, not at exit
    return Status::Ok();
  }();
  if (!fetched.ok()) {
    close_job("cce-agent attest: " + fetched.ToString());
    return fetched;
  }
  close_job(
      "cce-agent attest: a developer check of the key broker; keys fetched, fingerprinted and "
      "wiped; the job was not run");
  return Status::Ok();
}

int AttestVerb(const cli::Args& args) {
  int exit = 0;
  auto flags = cli::ParseArgs(kProgram, AttestParser(), args, 0, &exit);
  if (!flags) return exit;
  auto json_output = JsonOrText(*flags, "output", "text");
  if (!json_output.ok()) return cli::ReportError(kProgram, json_output.status());
  StepPrinter out(*json_output);
  Status s = Attest(*flags, out);
  if (s.ok()) return kExitOk;
  // With --output json, ReportError also prints the error as one JSON object
  // on stdout ({"error": {"code", "exit", "message"}}).
  return cli::ReportError(kProgram, s);
}

}  // namespace

const cli::CommandTable& AgentCommandTable() {
  static const cli::CommandTable kTable{
      kProgram,
      "The in-VM agent of a Privacy Mode job (docs/agent.md). The provisioner starts it;\n"
      "run it by hand only against a plane initialized with --simulated-tee.",
      {{{"run"}, "run the VM's one job: attest, mount, sandbox, submit", RunVerb},
       {{"attest"},
        "a developer's check: auth, attest, fetch the keys; print each step (--simulate)",
        AttestVerb}},
      "Exit codes (run): 0 the output was submitted; 1 a step failed (the plane was told);\n"
      "2 bad flags; 3 the data or the image failed authentication. `attest --help` has its own.",
      "0.1.0"};
  return kTable;
}

}  // namespace cce::cmd
