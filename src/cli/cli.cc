#include "cli/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/flags.h"
#include "cli/progress.h"
#include "crypto/crypto.h"
#include "format/format.h"

namespace cce::cli {
namespace {

using nlohmann::json;

constexpr char kProgram[] = "cce";

}  // namespace

const FlagSpec kOutputFlag{"output", "FORMAT", "text (default) or json"};

int Fail(const Status& s) {
  return ReportError(kProgram, s);
}

std::optional<ParsedFlags> ParseOrExit(const FlagParser& parser, const Args& args,
                                       size_t positional, int* exit) {
  return ParseArgs(kProgram, parser, args, positional, exit);
}

StatusOr<bool> JsonOutput(const ParsedFlags& f) {
  auto o = f.Get("output");
  if (!o || *o == "text") return false;
  if (*o == "json") return true;
  return InvalidArgument("--output: '" + *o + "': expected 'text' or 'json'");
}

namespace {
const FlagSpec kKeyFlag{"key", "FILE", "dataset key file (from `cce key generate`)"};
const FlagSpec kThreadsFlag{"threads", "N", "worker threads (default: number of CPUs)"};

StatusOr<format::DatasetKey> LoadKey(const ParsedFlags& f) {
  auto path = f.Get("key");
  if (!path) return InvalidArgument("--key FILE is required");
  return format::DatasetKey::LoadFile(*path);
}

json SummaryJson(const format::Summary& s) {
  return {{"dataset_id", s.dataset_id},
          {"dataset_version", s.dataset_version},
          {"files", s.files},
          {"directories", s.directories},
          {"plaintext_bytes", s.plaintext_bytes},
          {"ciphertext_bytes", s.ciphertext_bytes}};
}

// A destination path's directory must exist: said before any work starts,
// naming the directory and how to make it.
Status ParentExists(const std::string& what, const std::string& path) {
  if (path.empty()) return InvalidArgument(what + ": expected a path, got an empty string");
  std::string parent = std::filesystem::path(path).parent_path().string();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (std::filesystem::is_directory(parent, ec)) return Status::Ok();
  return NotFound(path + ": the directory '" + parent +
                  "' does not exist (create it first: mkdir -p " + parent + ")");
}

// ---- cce key generate ----

int KeyGenerate(const Args& args) {
  FlagParser p("cce key generate --out FILE [--output json]",
               "Creates a new random 256-bit dataset key in FILE (mode 0600). Refuses to\n"
               "overwrite an existing file. Keep the file secret: it decrypts the dataset.",
               {{"out", "FILE", "where to write the key (must not exist)"}, kOutputFlag});
  int exit = 0;
  auto f = ParseOrExit(p, args, 0, &exit);
  if (!f) return exit;
  auto json_out = JsonOutput(*f);
  if (!json_out.ok()) return Fail(json_out.status());
  auto out = f->Get("out");
  if (!out) return Fail(InvalidArgument("--out FILE is required"));
  if (Status s = ParentExists("--out", *out); !s.ok()) return Fail(s);
  auto key = format::DatasetKey::Generate();
  if (!key.ok()) return Fail(key.status());
  UniqueFd fd(::open(out->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    if (errno == EEXIST)
      return Fail(AlreadyExists(*out + ": already exists; refusing to overwrite"));
    if (errno == ENOENT) {
      const std::string parent = std::filesystem::path(*out).parent_path().string();
      return Fail(NotFound(*out + ": the directory '" + parent +
                           "' does not exist (create it first: mkdir -p " + parent + ")"));
    }
    return Fail(ErrnoStatus(*out, errno));
  }
  crypto::SecretBytes text = key->EncodeKeyFile();
  Status s = WriteFull(fd.get(), text.span());
  if (s.ok() && ::fchmod(fd.get(), 0600) != 0) s = ErrnoStatus(*out, errno);
  if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoStatus(*out, errno);
  if (!s.ok()) {
    ::unlink(out->c_str());  // never leave a partial key behind
    return Fail(s.WithContext(*out));
  }
  std::string id = crypto::ToHex(key->id());
  if (*json_out) {
    std::cout << json{{"key_file", *out}, {"key_id", id}}.dump() << "\n";
  } else {
    std::cout << "wrote " << *out << " (key id " << id << ")\n";
  }
  return kExitOk;
}

// ---- cce dataset encrypt|decrypt|verify ----

// SIGINT/SIGTERM during a dataset command: the handler only records the
// signal (lock-free atomics are async-signal-safe); the run notices within a
// chunk, removes its partial output, and the command exits 128+signal.
std::atomic<bool> g_interrupted{false};
std::atomic<int> g_signal{0};

extern "C" void OnInterrupt(int sig) {
  g_signal.store(sig);
  g_interrupted.store(true);
}

class InterruptScope {
 public:
  InterruptScope() {
    struct sigaction sa {};
    sa.sa_handler = OnInterrupt;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptScope() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
  const std::atomic<bool>* flag() const { return &g_interrupted; }
  // The exit code of an interrupted run that was cleaned up, or 0.
  static int ExitCode(const char* verb, bool writes_output = true) {
    int sig = g_signal.load();
    if (sig == 0) return 0;
    std::cerr << kProgram << ": " << verb << " interrupted by signal " << sig
              << (writes_output ? "; the partial output was removed\n" : "\n");
    return 128 + sig;
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

int DatasetEncrypt(const Args& args) {
  FlagParser p("cce dataset encrypt --key FILE [options] SRC_DIR DST_DIR",
               "Encrypts the directory tree SRC_DIR into a new encrypted dataset DST_DIR\n"
               "(which must not exist). Writes to a temporary sibling directory\n"
               ".DST_DIR.partial-* and renames it into place when complete. On SIGINT or\n"
               "SIGTERM the temporary directory is removed and the exit status is 128+signal\n"
               "(130 for Ctrl-C); the leftover of a killed run (SIGKILL, power loss) is\n"
               "removed by the next run on the same DST_DIR.",
               {kKeyFlag,
                kThreadsFlag,
                {"dataset-id", "ID", "dataset id recorded in the manifest (default: random)"},
                {"dataset-version", "N", "dataset version recorded in the manifest (default 1)"},
                kOutputFlag});
  int exit = 0;
  auto f = ParseOrExit(p, args, 2, &exit);
  if (!f) return exit;
  auto json_out = JsonOutput(*f);
  if (!json_out.ok()) return Fail(json_out.status());
  format::EncryptOptions o;
  auto threads = f->GetUint("threads", 1, 256);
  auto version = f->GetUint("dataset-version", 1, UINT64_MAX);
  for (const auto* st : {&threads, &version}) {
    if (!st->ok()) return Fail(st->status());
  }
  if (*threads) o.threads = static_cast<unsigned>(**threads);
  if (*version) o.dataset_version = **version;
  if (Status s = ParentExists("DST_DIR", f->positional()[1]); !s.ok()) return Fail(s);
  o.dataset_id = f->Get("dataset-id").value_or("");
  auto key = LoadKey(*f);
  if (!key.ok()) return Fail(key.status());
  ProgressBar bar("encrypt");
  if (bar.enabled()) {
    o.progress = [&bar](const format::Progress& pr) {
      bar.Update(pr.bytes_done, pr.bytes_total, pr.files_done, pr.files_total);
    };
  }
  auto start = std::chrono::steady_clock::now();
  InterruptScope interrupt;
  o.cancel = interrupt.flag();
  auto summary = format::EncryptDataset(f->positional()[0], f->positional()[1], *key, o);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bar.Finish();  // messages and the summary start their own line
  if (!summary.ok()) {
    if (int code = InterruptScope::ExitCode("encrypt")) return code;
    return Fail(summary.status());
  }
  if (*json_out) {
    json j = SummaryJson(*summary);
    j["seconds"] = std::round(secs * 1000) / 1000;
    j["destination"] = f->positional()[1];
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "encrypted " << summary->files << " files, " << summary->directories
              << " directories, " << HumanBytes(summary->plaintext_bytes) << " in "
              << HumanDuration(secs) << " ("
              << HumanRate(secs > 0 ? static_cast<double>(summary->plaintext_bytes) / secs : 0)
              << ") into " << f->positional()[1] << " (dataset " << summary->dataset_id
              << " version " << summary->dataset_version << ")\n";
  }
  return kExitOk;
}

int DatasetRead(const Args& args, bool decrypt) {
  std::string usage = decrypt ? "cce dataset decrypt --key FILE [options] SRC_DIR DST_DIR"
                              : "cce dataset verify --key FILE [options] DIR";
  std::string summary_text =
      decrypt ? "Authenticates every byte of the encrypted dataset SRC_DIR and writes the\n"
                "plaintext tree to a new directory DST_DIR (atomically: nothing at DST_DIR\n"
                "unless every file authenticated). Staged and cleaned up on SIGINT/SIGTERM\n"
                "(exit 128+signal) like `cce dataset encrypt`."
              : "Authenticates every byte of the encrypted dataset DIR: manifest, every\n"
                "object's header, every segment. On failure names each bad file and segment\n"
                "and exits 3.";
  FlagParser p(usage, summary_text,
               {kKeyFlag,
                kThreadsFlag,
                {"expect-dataset-id", "ID", "fail unless the manifest names this dataset id"},
                {"min-version", "N", "fail if the dataset version is lower (rollback)"},
                kOutputFlag});
  int exit = 0;
  auto f = ParseOrExit(p, args, decrypt ? 2 : 1, &exit);
  if (!f) return exit;
  auto json_out = JsonOutput(*f);
  if (!json_out.ok()) return Fail(json_out.status());
  format::ReadOptions o;
  auto threads = f->GetUint("threads", 1, 256);
  auto min_version = f->GetUint("min-version", 0, UINT64_MAX);
  for (const auto* st : {&threads, &min_version}) {
    if (!st->ok()) return Fail(st->status());
  }
  if (*threads) o.threads = static_cast<unsigned>(**threads);
  if (*min_version) o.min_dataset_version = **min_version;
  if (auto id = f->Get("expect-dataset-id")) o.expect_dataset_id = *id;
  if (decrypt) {
    if (Status s = ParentExists("DST_DIR", f->positional()[1]); !s.ok()) return Fail(s);
  }
  auto key = LoadKey(*f);
  if (!key.ok()) return Fail(key.status());
  ProgressBar bar(decrypt ? "decrypt" : "verify");
  if (bar.enabled()) {
    o.progress = [&bar](const format::Progress& pr) {
      bar.Update(pr.bytes_done, pr.bytes_total, pr.files_done, pr.files_total);
    };
  }
  const std::string& src = f->positional()[0];
  InterruptScope interrupt;
  o.cancel = interrupt.flag();
  auto summary = decrypt ? format::DecryptDataset(src, f->positional()[1], *key, o)
                         : format::VerifyDataset(src, *key, o);
  bar.Finish();  // messages and the summary start their own line
  if (!summary.ok()) {
    if (int code = InterruptScope::ExitCode(decrypt ? "decrypt" : "verify", decrypt)) return code;
    // With --output json, Fail prints {"error": {...}} on stdout too.
    return Fail(summary.status());
  }
  if (*json_out) {
    json j = SummaryJson(*summary);
    j["ok"] = true;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << (decrypt ? "decrypted " : "verified ") << summary->files << " files, "
              << HumanBytes(summary->plaintext_bytes) << " (dataset " << summary->dataset_id
              << " version " << summary->dataset_version << "): all authentic\n";
  }
  return kExitOk;
}

const CommandTable& Cce() {
  static const CommandTable kCce = [] {
    CommandTable t;
    t.program = kProgram;
    t.version = "0.1.0";
    t.description = "cce4long: confidential-data compute platform CLI.";
    t.commands = {
        {{"key", "generate"}, "create a new random dataset key file", KeyGenerate},
        {{"dataset", "encrypt"},
         "encrypt a directory tree into an encrypted dataset",
         DatasetEncrypt},
        {{"dataset", "decrypt"},
         "authenticate and decrypt a dataset into a directory",
         [](const Args& a) { return DatasetRead(a, true); }},
        {{"dataset", "verify"},
         "authenticate every byte of an encrypted dataset",
         [](const Args& a) { return DatasetRead(a, false); }},
    };
    for (Command& c : PlaneCommands()) t.commands.push_back(std::move(c));
    for (Command& c : SandboxCommands()) t.commands.push_back(std::move(c));
    for (Command& c : GateCommands()) t.commands.push_back(std::move(c));
    for (Command& c : DatasetSampleCommands()) t.commands.push_back(std::move(c));
    for (Command& c : ExploreCommands()) t.commands.push_back(std::move(c));
    t.footer =
        "Run `cce COMMAND --help` for a command's options. Exit codes: 0 ok, 1 failure,\n"
        "2 bad usage or input, 3 authentication or authorization failed (tampered data,\n"
        "wrong key, or refused by the plane).\n";
    return t;
  }();
  return kCce;
}

}  // namespace

int RunCce(const Args& args) {
  return RunCommand(Cce(), args);
}

}  // namespace cce::cli
