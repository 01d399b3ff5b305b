// `cce job submit|validate|bases|status|list|cancel|download`: Privacy Mode jobs on the
// plane (docs/cli.md, docs/api.yaml).
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "api/wire.h"
#include "base/fd.h"
#include "cli/cli.h"
#include "cli/command.h"
#include "cli/plane_client.h"
#include "cli/plane_verb.h"
#include "cli/table.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "jobspec/jobspec.h"
#include "store/job_state.h"

namespace cce::cli {
namespace {

using nlohmann::json;

constexpr size_t kMaxSpecBytes = size_t{1} << 20;

// A state this CLI does not know (a newer plane's) is not an end state: the
// watch goes on until the plane reports one it knows.
bool IsEndState(const std::string& state) {
  auto s = store::ParseJobState(state);
  return s.ok() && store::IsFinalState(*s);
}

// "SUBMITTED, AUTHORIZED, ..." for messages about a state flag.
std::string JobStateNames() {
  std::string out;
  for (store::JobState st : store::kAllJobStates) {
    out += (out.empty() ? "" : ", ") + std::string(store::JobStateName(st));
  }
  return out;
}

// --until / --state: a state name as the plane spells it.
Status CheckStateFlag(const std::string& flag, const std::string& value) {
  if (store::ParseJobState(value).ok()) return Status::Ok();
  std::string upper = value.substr(0, 40);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const std::string hint =
      store::ParseJobState(upper).ok() ? "states are upper case: " + upper + "; " : "";
  return InvalidArgument("--" + flag + ": unknown state '" + value.substr(0, 40) + "' (" + hint +
                         "expected one of " + JobStateNames() + ")");
}

StatusOr<std::string> ReadSpec(const std::string& path) {
  if (path == "-") return ReadAll(STDIN_FILENO, kMaxSpecBytes, "job spec on stdin");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    return InvalidArgument(path + ": no such file (-f names the job spec, YAML or JSON)");
  }
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return InvalidArgument(path + ": is a directory, not a job spec file");
  }
  return ReadFile(path, kMaxSpecBytes);
}

// Key files start with a fixed label: "cce4long-<kind>-v<N> <hex>" (dataset
// keys, docs/format.md §2; the plane's master and signing keys) or a PEM
// private-key armor line. A job spec never does, so such a file was named by
// mistake: refuse it before a byte leaves, and never quote its contents.
Status RefuseKeyFile(std::string_view spec, const std::string& file) {
  size_t start = spec.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // UTF-8 BOM
  while (start < spec.size() && (spec[start] == ' ' || spec[start] == '\t' || spec[start] == '\n' ||
                                 spec[start] == '\r')) {
    ++start;
  }
  const std::string_view text = spec.substr(start);
  const std::string_view first_line = text.substr(0, text.find('\n'));
  const bool cce_key = text.starts_with("cce4long-");
  const bool pem_key = text.starts_with("-----BEGIN ") &&
                       first_line.find("PRIVATE KEY-----") != std::string_view::npos;
  if (!cce_key && !pem_key) return Status::Ok();
  return InvalidArgument(file + ": this is a " +
                         (cce_key ? std::string("cce4long key file") : "PEM private key") +
                         ", not a job spec; refusing to send it (nothing was sent)");
}

// The name a spec's messages give it: the file as the user named it, "stdin" for '-'.
std::string SpecSourceName(const std::string& file) {
  return file == "-" ? std::string("stdin") : file;
}

// Reads FILE (or stdin), refuses a key file, and checks the spec against every rule of
// docs/jobspec.md, offline: kInvalidArgument listing each error as FILE:LINE:COL: FIELD:
// MESSAGE. `text` gets the bytes read.
StatusOr<JobSpec> CheckSpecFile(const std::string& file, std::string* text) {
  ASSIGN_OR_RETURN(*text, ReadSpec(file));
  RETURN_IF_ERROR(RefuseKeyFile(*text, file));
  return ParseJobSpec(*text, SpecSourceName(file));
}

// The spec's name for the plane's messages (X-Cce-Spec-Name, docs/api.yaml): sent only when
// it is short printable ASCII; otherwise the plane calls it "spec".
std::vector<std::pair<std::string, std::string>> SpecNameHeader(const std::string& file) {
  const std::string name = SpecSourceName(file);
  const bool printable =
      !name.empty() && name.size() <= 255 &&
      std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (!printable) return {};
  return {{std::string(api::kJobSpecNameHeader), name}};
}

// The script-job flags, only with --script.
const std::vector<std::string> kScriptOnlyFlags = {"base", "dataset",    "arg",    "name",
                                                   "cpus", "memory-mib", "timeout"};

StatusOr<int64_t> ParseTimeout(const std::string& text) {
  auto bad = [&] {
    return InvalidArgument("--timeout: '" + text +
                           "': expected a duration such as 90s, 30m, 2h or 1d (or seconds)");
  };
  if (text.empty()) return bad();
  int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: break;
  }
  if (text.back() < '0' || text.back() > '9') {
    if (std::string_view("smhd").find(text.back()) == std::string_view::npos) return bad();
    digits.pop_back();
  }
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  const int64_t n = std::stoll(digits) * unit;
  if (n <= 0) return bad();
  return n;
}

StatusOr<double> ParseCpus(const std::string& text) {
  // At most 3 decimals, like spec.resources.cpus (docs/jobspec.md).
  const size_t dot = text.find('.');
  const bool ok =
      !text.empty() && text.size() <= 12 &&
      text.find_first_not_of("0123456789.") == std::string::npos &&
      text.find('.', dot == std::string::npos ? text.size() : dot + 1) == std::string::npos &&
      (dot == std::string::npos ||
       (dot > 0 && text.size() - dot - 1 <= 3 && text.size() - dot - 1 >= 1));
  if (!ok || std::stod(text) <= 0) {
    return InvalidArgument("--cpus: '" + text +
                           "': expected a positive number with at most 3 decimals (0.5, 2)");
  }
  return std::stod(text);
}

std::string Base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// The POST /api/v1/jobs/script body from the flags (docs/explore/script-jobs.md).
StatusOr<json> ScriptJobBody(const ParsedFlags& f, const std::string& script_path) {
  auto base = f.Get("base");
  if (!base) return InvalidArgument("--base NAME is required with --script (cce job bases)");
  if (f.All("dataset").empty()) {
    return InvalidArgument("--dataset NAME[:MOUNT] is required with --script (at least one)");
  }
  // The plane allows 1 MiB; read one byte more to say so clearly.
  ASSIGN_OR_RETURN(std::string content, ReadFile(script_path, (size_t{1} << 20) + 1));
  if (content.size() > (size_t{1} << 20)) {
    return InvalidArgument(script_path +
                           ": larger than 1 MiB, the most a script job's script may be");
  }
  RETURN_IF_ERROR(RefuseKeyFile(content, script_path));
  api::ScriptJobRequest r;
  r.base = *base;
  r.name = f.Get("name").value_or("");
  r.script.name = std::filesystem::path(script_path).filename().string();
  r.script.content_base64 = Base64(content);
  for (const std::string& d : f.All("dataset")) {
    const size_t colon = d.find(':');
    if (colon == 0) return InvalidArgument("--dataset '" + d + "': expected NAME[:MOUNT]");
    r.datasets.push_back(
        {d.substr(0, colon), colon == std::string::npos ? "" : d.substr(colon + 1)});
  }
  r.args = f.All("arg");
  api::ScriptJobResources res;
  if (auto cpus = f.Get("cpus")) {
    ASSIGN_OR_RETURN(res.cpus, ParseCpus(*cpus));
  }
  ASSIGN_OR_RETURN(auto mem, f.GetUint("memory-mib", 1, uint64_t{1} << 40));
  if (mem) res.memory_mib = static_cast<int64_t>(*mem);
  if (auto t = f.Get("timeout")) {
    ASSIGN_OR_RETURN(res.timeout_seconds, ParseTimeout(*t));
  }
  if (res.cpus || res.memory_mib || res.timeout_seconds) r.resources = res;
  return api::ToJson(r);
}

int JobSubmit(const Args& args) {
  FlagParser p(
      "cce job submit (-f FILE | --script FILE --base NAME --dataset NAME[:MOUNT]...) [--arg X]... "
      "[--name N] [--cpus N] [--memory-mib N] [--timeout 30m] [--idempotency-key KEY] "
      "[--output json]",
      "Submits a Privacy Mode job (docs/jobspec.md) and prints its id alone on\n"
      "stdout. The request carries an Idempotency-Key (random unless given) and is\n"
      "retried with the same key when the plane cannot be reached, so a retried\n"
      "submit never creates two jobs. FILE '-' reads the spec from stdin.\n"
      "With --script, the plane runs FILE (at most 1 MiB) on the curated base image\n"
      "NAME (cce job bases) as <base command> /job/<FILE's name> <args>, each dataset\n"
      "read-only at MOUNT (default /data/NAME) (docs/explore/script-jobs.md).",
      {{"file", "FILE", "job spec, YAML or JSON", false, 'f'},
       {"script", "FILE", "a script to run on a curated base image (instead of -f)"},
       {"base", "NAME", "the curated base image (with --script)"},
       {"dataset", "NAME[:MOUNT]", "a rented dataset and where it is mounted (with --script)",
        true},
       {"arg", "X", "an argument after the script (with --script; repeatable)", true},
       {"name", "N", "the job's name (with --script; default: from the script's name)"},
       {"cpus", "N", "CPUs, at most 3 decimals (with --script; default 1)"},
       {"memory-mib", "N", "memory limit in MiB (with --script; default 1024)"},
       {"timeout", "DURATION", "run time limit: 90s, 30m, 2h, 1d (with --script; default 1h)"},
       {"idempotency-key", "KEY",
        "reuse a key to make a repeated submit return the first job (at most 128 "
        "printable characters)"},
       kOutputFlag});
  return WithPlane(
      p, args, 0, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        auto file = f.Get("file");
        auto script = f.Get("script");
        if (file && script) {
          return InvalidArgument(
              "-f FILE and --script FILE are exclusive: submit a job spec or a script, not both");
        }
        if (!file && !script) {
          return InvalidArgument("-f FILE (a job spec) or --script FILE (with --base) is required");
        }
        std::string body;
        std::string path = "/api/v1/jobs";
        std::string content_type = "application/json";
        if (file) {
          for (const std::string& flag : kScriptOnlyFlags) {
            if (f.Has(flag)) return InvalidArgument("--" + flag + " is only for --script FILE");
          }
          // Checked here first, so the messages name the file as the user gave it and an
          // invalid spec never leaves this machine.
          RETURN_IF_ERROR(CheckSpecFile(*file, &body).status());
          if (file->ends_with(".yaml") || file->ends_with(".yml"))
            content_type = "application/yaml";
        } else {
          ASSIGN_OR_RETURN(json request, ScriptJobBody(f, *script));
          body = request.dump();
          path = "/api/v1/jobs/script";
        }
        const std::string& source = file ? *file : *script;
        std::string key;
        if (auto k = f.Get("idempotency-key")) {
          key = *k;
          if (key.empty() || key.size() > 128) {
            return InvalidArgument("--idempotency-key: " + std::to_string(key.size()) +
                                   " characters; expected 1..128");
          }
          for (size_t i = 0; i < key.size(); ++i) {
            const auto ch = static_cast<unsigned char>(key[i]);
            if (ch <= 0x20 || ch >= 0x7f) {
              return InvalidArgument(
                  "--idempotency-key: " +
                  std::string(ch == ' ' ? "a space" : "a control or non-ASCII byte") +
                  " at character " + std::to_string(i + 1) +
                  "; expected printable characters without spaces (e.g. cohort-2026-11)");
            }
          }
        } else {
          std::array<uint8_t, 16> b{};
          RETURN_IF_ERROR(crypto::RandomBytes(b));
          key = "cce-" + crypto::ToHex(b);
        }
        StatusOr<json> r = Status(StatusCode::kUnavailable, "not sent");
        for (int attempt = 0; attempt < 4; ++attempt) {
          if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
          std::vector<std::pair<std::string, std::string>> headers;
          if (file) headers = SpecNameHeader(*file);
          headers.push_back({"Idempotency-Key", key});
          r = c.PostRaw(path, body, content_type, headers);
          if (r.ok() || r.status().code() != StatusCode::kUnavailable) break;
        }
        // The plane's refusals of a spec already start with its name (X-Cce-Spec-Name).
        if (!r.ok() && file && r.status().message().starts_with("plane: ")) return r.status();
        if (!r.ok()) return r.status().WithContext(source);
        ASSIGN_OR_RETURN(api::Job job, DecodeResponse<api::Job>(*r, "POST " + path));
        if (!json_out) std::cout << job.id << "\n";
        (*r)["idempotency_key"] = key;
        return r;
      });
}

// Offline: no login, no plane. The plane's own limits, the datasets, your rentals and the
// image are checked only when the job is submitted.
int JobValidate(const Args& args) {
  FlagParser p("cce job validate -f FILE [--output json]",
               "Checks a job spec (docs/jobspec.md) on this machine, without a plane or a\n"
               "login. Prints \"FILE: valid\" and exits 0, or lists every error found, one\n"
               "per line as FILE:LINE:COLUMN: FIELD: MESSAGE, and exits 2. The plane's limits,\n"
               "the datasets, your rentals and the image are checked at `cce job submit`.\n"
               "FILE '-' reads the spec from stdin.",
               {{"file", "FILE", "job spec, YAML or JSON", false, 'f'}, kOutputFlag});
  int exit = 0;
  auto f = ParseOrExit(p, args, 0, &exit);
  if (!f) return exit;
  auto json_out = JsonOutput(*f);
  if (!json_out.ok()) return Fail(json_out.status());
  auto file = f->Get("file");
  if (!file) return Fail(InvalidArgument("-f FILE is required: the job spec to check"));
  const std::string source = SpecSourceName(*file);
  std::string text;
  StatusOr<JobSpec> spec = CheckSpecFile(*file, &text);
  if (!spec.ok()) {
    if (*json_out && spec.status().code() == StatusCode::kInvalidArgument) {
      // The result of the check, not a failure to run it: the errors, one per entry.
      json errors = json::array();
      std::string_view rest = spec.status().message();
      while (!rest.empty()) {
        const size_t nl = rest.find('\n');
        errors.push_back(std::string(rest.substr(0, nl)));
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      }
      std::cout << json{{"file", source}, {"valid", false}, {"errors", errors}}.dump(
                       -1, ' ', false, json::error_handler_t::replace)
                << "\n";
      std::cerr << "cce: error: " << spec.status().message() << "\n";
      return ExitCodeFor(spec.status());
    }
    return Fail(spec.status());
  }
  if (*json_out) {
    std::cout << json{{"file", source},
                      {"valid", true},
                      {"name", spec->name},
                      {"spec", json::parse(JobSpecToJson(*spec))}}
                     .dump(-1, ' ', false, json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << source << ": valid\n";
  }
  return kExitOk;
}

int JobBases(const Args& args) {
  FlagParser p("cce job bases [--output json]",
               "Lists the curated base images script jobs run on (cce job submit --script).",
               {kOutputFlag});
  return WithPlane(
      p, args, 0, [&](const ParsedFlags&, PlaneClient& c, bool json_out) -> StatusOr<json> {
        ASSIGN_OR_RETURN(json r, c.Get("/api/v1/explore/bases"));
        ASSIGN_OR_RETURN(api::BaseList list,
                         DecodeResponse<api::BaseList>(r, "GET /api/v1/explore/bases"));
        if (!json_out) {
          Table t({"NAME", "IMAGE", "COMMAND"});
          for (const auto& b : list.bases) {
            std::string cmd;
            for (const auto& a : b.command) cmd += (cmd.empty() ? "" : " ") + a;
            t.AddRow({b.name, b.image, cmd});
          }
          std::cout << t.Render();
          if (list.bases.empty()) std::cerr << "cce: this plane has no base images configured\n";
        }
        return ListItems(r, "bases");
      });
}

void PrintJob(const api::JobDetail& d, bool with_history) {
  const api::Job& j = d.job;
  std::cout << "job:      " << j.id << " (" << j.name << ")\n"
            << "consumer: " << j.consumer << "\n"
            << "state:    " << j.state << ": " << j.reason << "\n"
            << "image:    " << j.image << "\n"
            << "created:  " << FormatTime(j.created_at) << "   deadline: " << FormatTime(j.deadline)
            << "\n";
  if (j.simulated_tee) std::cout << "tee:      SIMULATED (not a real TDX VM)\n";
  if (d.output) {
    const api::OutputSummary& o = *d.output;
    std::cout << "output:   " << o.size << " bytes, " << o.digest << ", gate " << o.verdict;
    if (o.score)
      std::cout << " (score " << *o.score << ", " << o.findings.value_or(0) << " findings)";
    std::cout << (o.downloadable ? ", downloadable" : "") << "\n";
  }
  if (d.review) {
    const api::JobReview& r = *d.review;
    std::string who;
    for (const auto& n : r.reviewers) who += (who.empty() ? "" : ", ") + n;
    std::cout << "review:   " << r.decision << " by " << who << " at " << FormatTime(r.decided_at)
              << ": " << r.reason << "\n";
  }
  if (!with_history) return;
  std::cout << "history:\n";
  for (const api::JobEvent& e : d.history) {
    std::cout << "  " << FormatTime(e.at) << "  " << e.to << ": " << e.reason << "\n";
  }
}

int JobStatus(const Args& args) {
  FlagParser p("cce job status ID [--watch [--until STATE] [--interval SECONDS]] [--output json]",
               "Shows a job's state, reason and history. With --watch, prints each new\n"
               "transition until the job has passed through --until STATE or ended\n"
               "(default: until RELEASED, HELD, REJECTED, FAILED or CANCELLED; a HELD job\n"
               "waits for a reviewer, so --until RELEASED keeps waiting through HELD).\n"
               "Exits 0 when the awaited state was reached (or RELEASED), 1 when the job\n"
               "ended otherwise.",
               {{"watch", "", "follow the job until it settles"},
                {"until", "STATE", "with --watch: stop once the job is in STATE (or ended)"},
                {"interval", "SECONDS", "with --watch: poll period (default 1)"},
                kOutputFlag});
  int exit_code = kExitOk;
  int rc = WithPlane(
      p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        // The flags first: none is ignored, and none costs a request.
        for (const char* flag : {"until", "interval"}) {
          if (f.Has(flag) && !f.Has("watch")) {
            return InvalidArgument(std::string("--") + flag + " is only for --watch (add --watch)");
          }
        }
        ASSIGN_OR_RETURN(auto interval, f.GetUint("interval", 1, 3600));
        const std::string until = f.Get("until").value_or("");
        if (!until.empty()) RETURN_IF_ERROR(CheckStateFlag("until", until));
        const std::string path = "/api/v1/jobs/" + PathSegment(f.positional()[0]);
        const std::string request = "GET " + path;
        ASSIGN_OR_RETURN(json j, c.Get(path));
        ASSIGN_OR_RETURN(api::JobDetail job, DecodeResponse<api::JobDetail>(j, request));
        if (!f.Has("watch")) {
          if (!json_out) PrintJob(job, true);
          return j;
        }
        size_t printed = 0;
        for (;;) {
          const std::vector<api::JobEvent>& h = job.history;
          bool reached = false;  // in the history, so a state passed between polls counts
          for (const auto& e : h) reached = reached || (!until.empty() && e.to == until);
          for (; printed < h.size(); ++printed) {
            if (json_out) continue;
            std::cout << FormatTime(h[printed].at) << "  " << h[printed].to << ": "
                      << h[printed].reason << std::endl;
          }
          const std::string state = job.job.state;
          if (reached || IsEndState(state) || (until.empty() && state == "HELD")) {
            const bool wanted =
                reached || state == "RELEASED" || (until.empty() && state == "HELD");
            if (!wanted) exit_code = kExitFailure;
            return j;
          }
          std::this_thread::sleep_for(std::chrono::seconds(interval.value_or(1)));
          ASSIGN_OR_RETURN(j, c.Get(path));
          ASSIGN_OR_RETURN(job, DecodeResponse<api::JobDetail>(j, request));
        }
      });
  return rc != kExitOk ? rc : exit_code;
}

int JobList(const Args& args) {
  FlagParser p("cce job list [--state STATE] [--limit N] [--offset N] [--output json]",
               "Lists jobs, newest first: your own (consumer) or all (reviewer, operator).\n"
               "Pages of --limit (default 1000); JSON carries next_offset when more may follow.",
               {{"state", "STATE", "only jobs in STATE (e.g. HELD)"},
                {"limit", "N", "at most N jobs (1..10000)"},
                {"offset", "N", "skip the first N (newest) jobs"},
                kOutputFlag});
  return WithPlane(
      p, args, 0, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        std::string query;
        auto add = [&query](const std::string& k, const std::string& v) {
          query += (query.empty() ? "?" : "&") + k + "=" + http::UrlEncode(v);
        };
        if (auto s = f.Get("state")) {
          RETURN_IF_ERROR(CheckStateFlag("state", *s));
          add("state", *s);
        }
        ASSIGN_OR_RETURN(auto limit, f.GetUint("limit", 1, 10000));
        ASSIGN_OR_RETURN(auto offset, f.GetUint("offset", 0, uint64_t{1} << 62));
        if (limit) add("limit", std::to_string(*limit));
        if (offset) add("offset", std::to_string(*offset));
        const std::string path = "/api/v1/jobs" + query;
        ASSIGN_OR_RETURN(json r, c.Get(path));
        ASSIGN_OR_RETURN(api::JobList list, DecodeResponse<api::JobList>(r, "GET " + path));
        if (!json_out) {
          Table t({"ID", "STATE", "CONSUMER", "NAME", "CREATED"});
          for (const api::Job& j : list.jobs) {
            t.AddRow({j.id, j.state, j.consumer, j.name, FormatTime(j.created_at)});
          }
          std::cout << t.Render();
        }
        if (list.next_offset) {
          NoteNextPage("jobs", "cce job list --offset " + std::to_string(*list.next_offset) +
                                   (f.Get("state") ? " --state " + *f.Get("state") : "") +
                                   (limit ? " --limit " + std::to_string(*limit) : ""));
        }
        return ListItems(r, "jobs");
      });
}

int JobCancel(const Args& args) {
  FlagParser p("cce job cancel ID [--output json]",
               "Cancels a job that has not ended yet (its consumer or an operator).",
               {kOutputFlag});
  return WithPlane(p, args, 1,
                   [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
                     const std::string path =
                         "/api/v1/jobs/" + PathSegment(f.positional()[0]) + "/cancel";
                     ASSIGN_OR_RETURN(json r, c.Post(path, json()));
                     ASSIGN_OR_RETURN(api::Job job, DecodeResponse<api::Job>(r, "POST " + path));
                     if (!json_out) std::cout << job.id << " CANCELLED\n";
                     return r;
                   });
}

// Streams the output into DIR/output.bundle through a temporary file,
// checking its SHA-256 against the digest the plane recorded when the agent
// submitted it; nothing is left behind on any error.
StatusOr<json> Download(PlaneClient& c, const std::string& id, const std::string& dir) {
  const std::string job_path = "/api/v1/jobs/" + PathSegment(id);
  ASSIGN_OR_RETURN(json response, c.Get(job_path));
  ASSIGN_OR_RETURN(api::JobDetail job, DecodeResponse<api::JobDetail>(response, "GET " + job_path));
  // The plane decides (and audits) whether the output may leave; the digest
  // it recorded at submission is what the bytes must hash to.
  const std::string expected = job.output ? job.output->digest : std::string();
  const bool created_dir = ::mkdir(dir.c_str(), 0700) == 0;
  if (!created_dir && errno != EEXIST) return ErrnoStatus(dir, errno);
  const std::string final_path = dir + "/output.bundle";
  const std::string tmp = dir + "/.output.bundle.partial";
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    if (created_dir) ::rmdir(dir.c_str());
    return s;
  };
  if (::access(final_path.c_str(), F_OK) == 0) {
    return fail(InvalidArgument(final_path + ": already exists (refusing to overwrite)"));
  }
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return fail(ErrnoStatus(tmp, errno));
  crypto::Sha256Hasher hash;
  int64_t size = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  Status s = c.Download(
      job_path + "/output",
      [&](std::span<const uint8_t> piece) {
        hash.Update(piece);
        size += static_cast<int64_t>(piece.size());
        return WriteFull(fd.get(), piece);
      },
      &headers);
  std::string got = "sha256:" + crypto::ToHex(hash.Finish());
  // The plane streams the output: a body cut short (a segment that failed
  // to authenticate on the plane) is caught here before the digest.
  if (s.ok() && job.output && size != job.output->size) {
    s = DataLoss("output of " + id + ": received " + std::to_string(size) + " bytes, the plane " +
                 "recorded " + std::to_string(job.output->size));
  }
  if (s.ok() && got != expected) {
    s = DataLoss("output of " + id + ": downloaded bytes hash to " + got + ", the plane recorded " +
                 (expected.empty() ? "no digest" : expected));
  }
  if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoStatus(tmp, errno);
  fd.reset();
  if (s.ok() && ::rename(tmp.c_str(), final_path.c_str()) != 0) s = ErrnoStatus(final_path, errno);
  if (!s.ok()) return fail(s);
  return json{{"job", id}, {"path", final_path}, {"size", size}, {"digest", got}};
}

int JobDownload(const Args& args) {
  FlagParser p("cce job download ID --out DIR [--output json]",
               "Downloads a RELEASED job's output (its consumer only) into\n"
               "DIR/output.bundle, checking it against the digest recorded at submission.",
               {{"out", "DIR", "directory to write to (created if missing)"}, kOutputFlag});
  return WithPlane(p, args, 1,
                   [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
                     auto out = f.Get("out");
                     if (!out) return InvalidArgument("--out DIR is required");
                     ASSIGN_OR_RETURN(json r, Download(c, f.positional()[0], *out));
                     if (!json_out) {
                       std::cout << r["path"].get<std::string>() << " (" << r["size"].get<int64_t>()
                                 << " bytes, " << r["digest"].get<std::string>() << ")\n";
                     }
                     return r;
                   });
}

}  // namespace

std::vector<Command> JobCommands() {
  return {
      {{"job", "submit"}, "submit a Privacy Mode job", JobSubmit},
      {{"job", "validate"}, "check a job spec offline (no plane, no login)", JobValidate},
      {{"job", "bases"}, "list the base images of script jobs", JobBases},
      {{"job", "status"}, "show (or --watch) a job", JobStatus},
      {{"job", "list"}, "list jobs", JobList},
      {{"job", "cancel"}, "cancel a job", JobCancel},
      {{"job", "download"}, "download a released job's output", JobDownload},
  };
}

}  // namespace cce::cli
