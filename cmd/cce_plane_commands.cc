#include "cce_plane_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/fd.h"
#include "eth/rental_market.h"
#include "eth/rpc.h"
#include "eth/secp256k1.h"
#include "eth/send.h"
#include "plane/config.h"
#include "plane/keys.h"
#include "plane/plane.h"
#include "store/sqlite_store.h"

namespace cce::cmd {
namespace {

using cli::Args;
using cli::FlagParser;
using cli::FlagSpec;
using cli::ParsedFlags;

constexpr char kProgram[] = "cce-plane";

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop = true;
}

int Fail(const Status& s) {
  return cli::ReportError(kProgram, s);
}

std::optional<ParsedFlags> Parse(const FlagParser& p, const Args& args, size_t positional,
                                 int* exit) {
  return cli::ParseArgs(kProgram, p, args, positional, exit);
}

const FlagSpec kDataDir{"data-dir", "DIR", "the plane's data directory"};
const FlagSpec kOutput{"output", "FORMAT", "text (default) or json"};

int LedgerDeploy(const Args& args);  // below

// `init --ledger ethereum`: LedgerDeploy on the new data directory, its
// output (one JSON object with --output json) returned instead of printed,
// so that init prints one answer.
StatusOr<std::string> DeployForInit(const Args& deploy_args, int* exit) {
  std::ostringstream captured;
  std::streambuf* saved = std::cout.rdbuf(captured.rdbuf());
  *exit = LedgerDeploy(deploy_args);
  std::cout.rdbuf(saved);
  if (*exit != kExitOk) {
    return FailedPrecondition("the ledger was not deployed (the plane keeps its embedded ledger)");
  }
  return captured.str();
}

int Init(const Args& args) {
  FlagParser p(
      "cce-plane init --data-dir DIR [--listen ADDR:PORT] [--dns NAME]... [--ip IP]... "
      "[--simulated-tee] [--ledger embedded|ethereum --rpc URL --key-file FILE "
      "[--confirmations K]]",
      "Creates a new plane data directory: config file, CA and TLS server certificate,\n"
      "signing key, master key, database, and an operator API token (printed once).\n"
      "With --ledger ethereum, then deploys the RentalMarket contract for the new plane from\n"
      "the key's account (`cce-plane ledger deploy`) and writes plane.yaml's ledger section;\n"
      "for development, point --rpc at a local anvil and use one of its dev keys.",
      {kDataDir,
       {"listen", "ADDR:PORT", "listen address written to the config (default 127.0.0.1:8443)"},
       {"dns", "NAME", "DNS name for the server certificate (repeatable; default localhost)", true},
       {"ip", "IP", "IP address for the server certificate (repeatable; default 127.0.0.1, ::1)",
        true},
       {"simulated-tee", "",
        "DEVELOPMENT ONLY: create a simulated TDX chain (attestation/sim) and a policy that "
        "accepts its quotes, from machines that are NOT TDX VMs"},
       {"ledger", "BACKEND", "embedded (default: signed records in the store) or ethereum"},
       {"rpc", "URL", "--ledger ethereum: the node's JSON-RPC URL (http(s)://HOST:PORT)"},
       {"key-file", "FILE",
        "--ledger ethereum: the deployer's (the contract operator's) Ethereum key, one line of "
        "64 hex digits in a file of mode 0600"},
       {"confirmations", "K",
        "--ledger ethereum: a rental counts once its block is K deep (default 12)"},
       kOutput});
  int exit = 0;
  auto f = Parse(p, args, 0, &exit);
  if (!f) return exit;
  plane::InitOptions o;
  o.data_dir = f->Get("data-dir").value_or("");
  if (auto l = f->Get("listen")) o.listen = *l;
  if (!f->All("dns").empty()) o.dns_names = f->All("dns");
  if (!f->All("ip").empty()) o.ip_addresses = f->All("ip");
  o.simulated_tee = f->Has("simulated-tee");
  const std::string ledger = f->Get("ledger").value_or("embedded");
  const bool ethereum = ledger == "ethereum";
  Args deploy_args;
  if (ledger != "embedded" && !ethereum) {
    return Fail(InvalidArgument("--ledger: '" + ledger + "': expected embedded or ethereum"));
  }
  if (ethereum) {
    // Checked before the data directory is made: a typo must not leave a
    // plane without its ledger behind.
    const std::string rpc = f->Get("rpc").value_or("");
    const std::string key_file = f->Get("key-file").value_or("");
    if (rpc.empty()) return Fail(InvalidArgument("--ledger ethereum needs --rpc URL"));
    if (key_file.empty()) return Fail(InvalidArgument("--ledger ethereum needs --key-file FILE"));
    auto key = eth::PrivateKey::ReadFile(key_file);
    if (!key.ok()) return Fail(key.status().WithContext("--key-file"));
    auto confirmations = f->GetUint("confirmations", 1, 10000);
    if (!confirmations.ok()) return Fail(confirmations.status());
    deploy_args = {"--data-dir", o.data_dir, "--rpc",    rpc,
                   "--key-file", key_file,   "--output", "json"};
    if (*confirmations) {
      deploy_args.insert(deploy_args.end(), {"--confirmations", std::to_string(**confirmations)});
    }
  } else if (f->Has("rpc") || f->Has("key-file") || f->Has("confirmations")) {
    return Fail(InvalidArgument("--rpc, --key-file and --confirmations go with --ledger ethereum"));
  }
  SystemClock clock;
  auto r = plane::InitPlane(o, clock);
  if (!r.ok()) return Fail(r.status());
  if (o.simulated_tee) {
    std::cerr << "cce-plane: WARNING: SIMULATED TEE: this plane's key broker accepts quotes "
                 "from machines that are NOT TDX VMs (attestation/policy.yaml: allow_simulated: "
                 "true). Development only.\n";
  }
  // The operator token is shown once: it is printed whatever the deploy does.
  std::optional<nlohmann::json> deployed;
  Status deploy_error = Status::Ok();
  int deploy_exit = kExitOk;
  if (ethereum) {
    auto out = DeployForInit(deploy_args, &deploy_exit);
    if (!out.ok()) {
      deploy_error = out.status();
    } else {
      deployed = nlohmann::json::parse(*out, nullptr, /*allow_exceptions=*/false);
      if (deployed->is_discarded()) deployed = nlohmann::json{{"output", *out}};
    }
  }
  if (f->Get("output") == "json") {
    nlohmann::json j{{"token", r->token},
                     {"ca_file", r->ca_file},
                     {"config_file", r->config_file},
                     {"data_dir", r->data_dir},
                     {"simulated_tee", o.simulated_tee},
                     {"ledger", ethereum && deployed ? "ethereum" : "embedded"}};
    if (o.simulated_tee) j["simulated_tee_dir"] = r->simulated_tee_dir;
    if (deployed) j["ethereum"] = *deployed;
    if (!deploy_error.ok()) j["ledger_error"] = deploy_error.message();
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "initialized " << r->data_dir << "\n  config: " << r->config_file
              << "\n  CA:     " << r->ca_file;
    if (o.simulated_tee) std::cout << "\n  SIMULATED TEE: " << r->simulated_tee_dir;
    if (deployed) {
      std::cout << "\n  ledger: ethereum, RentalMarket at "
                << deployed->value("contract", std::string("?")) << " on chain "
                << deployed->value("chain_id", uint64_t{0}) << " (block "
                << deployed->value("start_block", uint64_t{0}) << ")";
    }
    std::cout << "\noperator token (shown once, store it safely):\n" << r->token << "\n";
  }
  if (!deploy_error.ok()) {
    std::cerr << kProgram << ": " << r->data_dir
              << " was initialized with the embedded ledger; deploy later with `cce-plane "
                 "ledger deploy --data-dir "
              << r->data_dir << " --rpc URL --key-file FILE`\n";
    return deploy_exit;
  }
  return kExitOk;
}

int Serve(const Args& args) {
  FlagParser p("cce-plane serve --data-dir DIR [--listen ADDR:PORT]",
               "Serves the HTTPS API until SIGTERM or SIGINT, then shuts down gracefully.",
               {kDataDir, {"listen", "ADDR:PORT", "override the config's listen address"}});
  int exit = 0;
  auto f = Parse(p, args, 0, &exit);
  if (!f) return exit;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  (void)sigaction(SIGTERM, &sa, nullptr);
  (void)sigaction(SIGINT, &sa, nullptr);
  (void)std::signal(SIGPIPE, SIG_IGN);
  plane::ServeOptions o;
  o.data_dir = f->Get("data-dir").value_or("");
  if (o.data_dir.empty()) return Fail(InvalidArgument("--data-dir DIR is required"));
  o.listen_override = f->Get("listen").value_or("");
  o.stop = &g_stop;
  SystemClock clock;
  Status s = plane::Serve(o, clock);
  return s.ok() ? kExitOk : Fail(s);
}

int UserAdd(const Args& args) {
  FlagParser p("cce-plane user add --data-dir DIR --role ROLE NAME",
               "Adds a user and prints their new API token (stored only as a hash). Works while\n"
               "the server runs. ROLE: provider, consumer, reviewer or operator.",
               {kDataDir, {"role", "ROLE", "provider|consumer|reviewer|operator"}, kOutput});
  int exit = 0;
  auto f = Parse(p, args, 1, &exit);
  if (!f) return exit;
  auto dir = f->Get("data-dir");
  if (!dir) return Fail(InvalidArgument("--data-dir DIR is required"));
  if (!f->Get("role")) {
    return Fail(InvalidArgument(
        "--role ROLE is required: provider (registers datasets), consumer (rents them and "
        "runs jobs), reviewer (decides held outputs) or operator (runs the plane)"));
  }
  auto role = store::ParseRole(*f->Get("role"));
  if (!role.ok()) return Fail(role.status().WithContext("--role"));
  SystemClock clock;
  auto token = plane::AddUser(*dir, f->positional()[0], *role, clock);
  if (!token.ok()) return Fail(token.status());
  if (f->Get("output") == "json") {
    std::cout << nlohmann::json{{"user", f->positional()[0]},
                                {"role", std::string(store::RoleName(*role))},
                                {"token", *token}}
                     .dump()
              << "\n";
  } else {
    std::cout << *token << "\n";
  }
  return kExitOk;
}

// `cce-plane job credential`: plane::IssueJobCredential, for a developer's
// `cce-agent attest --simulate` (docs/agent.md, "By hand"). The credential
// goes to stdout only (pipe it; never a file or argv).
int JobCredential(const Args& args) {
  FlagParser p("cce-plane job credential --data-dir DIR JOB",
               "Issues a single-use Job Credential for JOB, a job waiting in PROVISIONING on a\n"
               "plane whose provisioner is `none`, and prints it on stdout (audited as\n"
               "credential.issue). Works while the server runs. Pipe it straight into the agent,\n"
               "e.g. `cce-plane job credential --data-dir plane $JOB | cce-agent attest\n"
               "--simulate ... --credential-file -`: it is a secret until it is used.",
               {kDataDir});
  int exit = 0;
  auto f = Parse(p, args, 1, &exit);
  if (!f) return exit;
  auto dir = f->Get("data-dir");
  if (!dir) return Fail(InvalidArgument("--data-dir DIR is required"));
  SystemClock clock;
  auto token = plane::IssueJobCredential(*dir, f->positional()[0], clock);
  if (!token.ok()) return Fail(token.status());
  std::cout << *token << "\n";
  return kExitOk;
}

int CollateralImport(const Args& args) {
  FlagParser p("cce-plane collateral import --data-dir DIR SOURCE",
               "Adds TDX verification collateral to the key broker's cache: SOURCE is a\n"
               "dcap-qvl JSON file or a directory of Intel PCS files (docs/attestation.md).\n"
               "Signatures and issuer chains are checked against Intel's pinned root before\n"
               "it replaces the set for the same FMSPC; a running plane picks it up.",
               {kDataDir, kOutput});
  int exit = 0;
  auto f = Parse(p, args, 1, &exit);
  if (!f) return exit;
  auto dir = f->Get("data-dir");
  if (!dir) return Fail(InvalidArgument("--data-dir DIR is required"));
  auto fmspc = plane::ImportCollateral(*dir, f->positional()[0]);
  if (!fmspc.ok()) return Fail(fmspc.status());
  if (f->Get("output") == "json") {
    std::cout << nlohmann::json{{"fmspc", *fmspc}, {"source", f->positional()[0]}}.dump() << "\n";
  } else {
    std::cout << "imported collateral for FMSPC " << *fmspc << "\n";
  }
  return kExitOk;
}

int CollateralFetch(const Args& args) {
  FlagParser p(
      "cce-plane collateral fetch --data-dir DIR --fmspc HEX [--pccs URL] [--api-key-file FILE] "
      "[--ca-bundle FILE]",
      "Downloads the TDX collateral for one platform (FMSPC, 12 hex digits, e.g. from a\n"
      "rejected quote's `cce attest verify` output) from Intel PCS, or from a PCCS with\n"
      "--pccs, and imports it like `collateral import`. Nothing is imported unless every\n"
      "item downloads, parses and verifies.",
      {kDataDir,
       {"fmspc", "HEX", "the platform's FMSPC"},
       {"pccs", "URL", "fetch from this PCCS (https://HOST:PORT) instead of Intel PCS"},
       {"api-key-file", "FILE", "file holding the Intel PCS subscription key"},
       {"ca-bundle", "FILE", "PEM CAs to trust for TLS instead of the system store"},
       kOutput});
  int exit = 0;
  auto f = Parse(p, args, 0, &exit);
  if (!f) return exit;
  auto dir = f->Get("data-dir");
  if (!dir) return Fail(InvalidArgument("--data-dir DIR is required"));
  plane::FetchCollateralOptions o;
  o.fmspc_hex = f->Get("fmspc").value_or("");
  o.pccs_url = f->Get("pccs").value_or("");
  o.api_key_file = f->Get("api-key-file").value_or("");
  o.ca_bundle = f->Get("ca-bundle").value_or("");
  auto fmspc = plane::FetchCollateral(*dir, o);
  if (!fmspc.ok()) return Fail(fmspc.status());
  if (f->Get("output") == "json") {
    std::cout << nlohmann::json{{"fmspc", *fmspc}}.dump() << "\n";
  } else {
    std::cout << "fetched and imported collateral for FMSPC " << *fmspc << "\n";
  }
  return kExitOk;
}

// ---- cce-plane ledger deploy | register-dataset (docs/ledger.md) ----

const FlagSpec kKeyFile{"key-file", "FILE",
                        "the operator's Ethereum key: one line of 64 hex digits in a file of mode "
                        "0600 (never given on the command line)"};
const FlagSpec kWaitConfirmations{
    "wait-confirmations", "N", "blocks the transaction must be under before returning (default 1)"};

// Transactions report their progress on stderr (stdout keeps the result).
eth::SendOptions Progress(uint64_t wait) {
  eth::SendOptions o;
  o.confirmations = wait;
  o.timeout = std::chrono::seconds(300);
  o.progress = [](std::string_view stage) { std::cerr << kProgram << ": " << stage << "\n"; };
  return o;
}

StatusOr<eth::Hash32> LocalPlaneId(const plane::PlaneConfig& c) {
  ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey key,
                   plane::LoadSigningKey(c.Path(c.signing_key_file)));
  const auto pub = key.PublicKey();
  return eth::PlaneId(pub);
}

StatusOr<std::unique_ptr<store::SqliteStore>> OpenPlaneStore(const plane::PlaneConfig& c) {
  store::SqliteStoreOptions o;
  o.path = c.Path(c.database_path);
  o.checkpoint_file = c.Path(c.audit_checkpoint_file);
  return store::SqliteStore::Open(o);
}

Status Audit(const plane::PlaneConfig& c, const std::string& action, const std::string& object,
             const nlohmann::json& details) {
  ASSIGN_OR_RETURN(auto db, OpenPlaneStore(c));
  store::AuditRecord r;
  r.at = SystemClock().NowUnix();
  r.actor = "cce-plane ledger";
  r.action = action;
  r.object = object;
  r.decision = store::AuditDecision::kAllow;
  r.details_json = details.dump();
  return db->AppendAudit(r).status();
}

// The contract at `contract` must be the committed build, deployed for this
// plane: otherwise its events would mean nothing here.
Status CheckContract(eth::RpcClient& rpc, const eth::Address& contract,
                     const eth::Hash32& plane_id) {
  ASSIGN_OR_RETURN(crypto::Bytes code, rpc.GetCode(contract));
  if (code != eth::DeployedBytecode()) {
    return FailedPrecondition("the code at " + contract.Checksummed() +
                              " is not the committed RentalMarket build "
                              "(contracts/build/RentalMarket.json)");
  }
  ASSIGN_OR_RETURN(crypto::Bytes ret, rpc.EthCall(contract, eth::EncodePlaneIdGetter()));
  ASSIGN_OR_RETURN(eth::Hash32 on_chain, eth::DecodeBytes32Return(ret, "planeId()"));
  if (on_chain != plane_id) {
    return FailedPrecondition("contract " + contract.Checksummed() + " is for plane " +
                              on_chain.Hex() + ", this plane is " + plane_id.Hex());
  }
  return Status::Ok();
}

// Whether the line starts a top-level `ledger:` key.
bool IsLedgerKey(const std::string& line) {
  return line.rfind("ledger:", 0) == 0 &&
         (line.size() == 7 || line[7] == ' ' || line[7] == '\t' || line[7] == '\r');
}

bool IsIndented(const std::string& line) {
  return !line.empty() && (line[0] == ' ' || line[0] == '\t');
}

bool IsBlankOrComment(const std::string& line) {
  const size_t first = line.find_first_not_of(" \t\r");
  return first == std::string::npos || line[first] == '#';
}

// plane.yaml's text with its top-level `ledger:` section (the key and its
// indented lines) replaced by `section`; without one, `section` takes the
// place of the commented-out example `cce-plane init` writes, or is
// appended. Every other byte is kept, comments included.
std::string ReplaceLedgerSection(const std::string& text, const std::string& section) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::vector<std::string> out;
  bool replaced = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!replaced && IsLedgerKey(lines[i])) {
      size_t j = i + 1;
      for (;;) {
        if (j < lines.size() && IsIndented(lines[j]) && !IsBlankOrComment(lines[j])) {
          ++j;
          continue;
        }
        // Blank lines and comments belong to the section only if more of it follows.
        size_t k = j;
        while (k < lines.size() && IsBlankOrComment(lines[k])) ++k;
        if (k > j && k < lines.size() && IsIndented(lines[k])) {
          j = k;
          continue;
        }
        break;
      }
      out.push_back(section);
      replaced = true;
      i = j - 1;
      continue;
    }
    out.push_back(lines[i]);
  }
  if (!replaced) {
    for (std::string& line : out) {
      if (line.rfind("# ledger: {", 0) == 0) {
        line = section;
        replaced = true;
        break;
      }
    }
  }
  std::string result;
  for (const std::string& line : out) result += line + "\n";
  if (!replaced) result += "\n" + section + "\n";
  return result;
}

// Replaces `path` by `content` atomically (a temporary file in the same
// directory, fsync'ed, renamed over it), keeping its mode.
Status WriteFileAtomically(const std::string& path, const std::string& content) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  std::string tmp = path + ".tmp-XXXXXX";
  UniqueFd fd(mkstemp(tmp.data()));
  if (!fd.valid()) return ErrnoStatus("create a temporary file next to " + path, errno);
  const auto fail = [&tmp](const std::string& what, int err) {
    (void)unlink(tmp.c_str());
    return ErrnoStatus(what, err);
  };
  if (fchmod(fd.get(), st.st_mode & 07777) != 0) return fail("chmod " + tmp, errno);
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write " + tmp, errno);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) return fail("fsync " + tmp, errno);
  fd = UniqueFd();
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("rename " + tmp + " to " + path, errno);
  const std::string dir = path.substr(0, path.find_last_of('/') + 1);
  UniqueFd dfd(open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid()) (void)fsync(dfd.get());
  return Status::Ok();
}

struct LedgerSection {
  std::string rpc;
  uint64_t chain_id = 0;
  eth::Address contract;
  uint64_t start_block = 0;
  uint64_t confirmations = 12;
  int64_t poll_seconds = 5;
  std::string rpc_ca_file;
};

// The `ledger:` keys exactly as src/plane/config.cc reads them.
std::string RenderLedgerSection(const LedgerSection& l) {
  return "ledger:\n  backend: ethereum\n  rpc: " + nlohmann::json(l.rpc).dump() +
         "\n  chain_id: " + std::to_string(l.chain_id) + "\n  contract: \"" + l.contract.Hex() +
         "\"\n  start_block: " + std::to_string(l.start_block) +
         "   # the deployment block: indexing starts here\n  confirmations: " +
         std::to_string(l.confirmations) +
         "   # a rental counts once its block is this deep\n  poll_seconds: " +
         std::to_string(l.poll_seconds) +
         "\n  rpc_ca_file: " + nlohmann::json(l.rpc_ca_file).dump();
}

// Rewrites DATA_DIR/plane.yaml with the section; if the plane then cannot
// load it, the previous file is put back and the error returned.
Status WriteLedgerSection(const std::string& data_dir, const LedgerSection& l) {
  const std::string path = data_dir + "/plane.yaml";
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot be read");
  std::stringstream old;
  old << in.rdbuf();
  RETURN_IF_ERROR(
      WriteFileAtomically(path, ReplaceLedgerSection(old.str(), RenderLedgerSection(l))));
  auto loaded = plane::LoadConfig(data_dir);
  if (!loaded.ok()) {
    RETURN_IF_ERROR(WriteFileAtomically(path, old.str()));
    return Internal(path + ": the rewritten file did not load, the previous one is back: " +
                    loaded.status().message());
  }
  return Status::Ok();
}

int LedgerDeploy(const Args& args) {
  FlagParser p(
      "cce-plane ledger deploy --data-dir DIR --rpc URL --key-file FILE [--confirmations K] "
      "[--rpc-ca-file FILE] [--replace]",
      "Deploys the RentalMarket contract (the committed build, bound to this plane's id) from\n"
      "the key's account, waits for it, checks the code on chain, and writes the `ledger:`\n"
      "section of DIR/plane.yaml (backend ethereum, rpc, chain_id, contract, start_block,\n"
      "confirmations). The key's account becomes the contract's operator. Restart the plane\n"
      "to use it.",
      {kDataDir,
       {"rpc", "URL", "the Ethereum node's JSON-RPC URL (http(s)://HOST:PORT[/PATH])"},
       kKeyFile,
       {"confirmations", "K",
        "written to plane.yaml: a rental counts once its block is K deep (default: plane.yaml's, "
        "else 12)"},
       {"rpc-ca-file", "FILE", "PEM CAs to trust for an https node (default: the system's)"},
       {"replace", "",
        "deploy even if plane.yaml already names a contract (its rentals stop counting)"},
       kWaitConfirmations,
       kOutput});
  int exit = 0;
  auto f = Parse(p, args, 0, &exit);
  if (!f) return exit;
  const std::string dir = f->Get("data-dir").value_or("");
  if (dir.empty()) return Fail(InvalidArgument("--data-dir DIR is required"));
  const std::string url = f->Get("rpc").value_or("");
  if (url.empty()) return Fail(InvalidArgument("--rpc URL is required"));
  const std::string key_file = f->Get("key-file").value_or("");
  if (key_file.empty()) return Fail(InvalidArgument("--key-file FILE is required"));
  auto confirmations = f->GetUint("confirmations", 1, 10000);
  if (!confirmations.ok()) return Fail(confirmations.status());
  auto wait = f->GetUint("wait-confirmations", 1, 10000);
  if (!wait.ok()) return Fail(wait.status());

  auto c = plane::LoadConfig(dir);
  if (!c.ok()) return Fail(c.status());
  if (c->ledger_backend == "ethereum" && !f->Has("replace")) {
    return Fail(FailedPrecondition(dir + "/plane.yaml already names contract " +
                                   c->ledger_contract + " on chain " +
                                   std::to_string(c->ledger_chain_id) +
                                   "; pass --replace to deploy a new one (rentals paid to the "
                                   "old one stop counting)"));
  }
  auto plane_id = LocalPlaneId(*c);
  if (!plane_id.ok()) return Fail(plane_id.status());
  auto key = eth::PrivateKey::ReadFile(key_file);
  if (!key.ok()) return Fail(key.status().WithContext("--key-file"));
  const std::string ca_file = f->Get("rpc-ca-file").value_or("");
  auto rpc =
      eth::RpcClient::Create({.url = url, .ca_file = ca_file, .timeout = std::chrono::seconds(30)});
  if (!rpc.ok()) return Fail(rpc.status().WithContext("--rpc"));
  auto chain_id = rpc->ChainId();
  if (!chain_id.ok()) return Fail(chain_id.status());
  std::cerr << kProgram << ": deploying RentalMarket for plane " << plane_id->Hex() << " on chain "
            << *chain_id << " from " << key->address().Checksummed() << "\n";
  eth::TxRequest req;
  req.data = eth::DeployData(*plane_id);
  auto receipt = eth::SendAndWait(*rpc, *chain_id, *key, req, Progress(wait->value_or(1)));
  if (!receipt.ok()) return Fail(receipt.status());
  if (!receipt->contract_address) {
    return Fail(DataLoss("transaction " + receipt->tx_hash.Hex() +
                         ": the receipt names no contract address"));
  }
  const eth::Address contract = *receipt->contract_address;
  if (Status s = CheckContract(*rpc, contract, *plane_id); !s.ok()) return Fail(s);

  LedgerSection l;
  l.rpc = url;
  l.chain_id = *chain_id;
  l.contract = contract;
  l.start_block = receipt->block_number;
  l.confirmations = confirmations->value_or(static_cast<uint64_t>(c->ledger_confirmations));
  l.poll_seconds = c->ledger_poll_seconds;
  l.rpc_ca_file = ca_file;
  const nlohmann::json result{
      {"contract", contract.Checksummed()},   {"chain_id", *chain_id},
      {"start_block", receipt->block_number}, {"tx_hash", receipt->tx_hash.Hex()},
      {"plane_id", plane_id->Hex()},          {"operator", key->address().Checksummed()},
      {"confirmations", l.confirmations},     {"compiler", std::string(eth::ContractCompiler())},
      {"config_file", dir + "/plane.yaml"}};
  if (Status s = Audit(*c, "ledger.deploy", "contract:" + contract.Hex(), result); !s.ok()) {
    return Fail(s.WithContext("contract " + contract.Checksummed() +
                              " is deployed but plane.yaml is unchanged"));
  }
  if (Status s = WriteLedgerSection(dir, l); !s.ok()) {
    return Fail(s.WithContext("contract " + contract.Checksummed() + " is deployed"));
  }
  if (f->Get("output") == "json") {
    std::cout << result.dump() << "\n";
  } else {
    std::cout << "deployed RentalMarket at " << contract.Checksummed()
              << "\n  chain id:    " << *chain_id << "\n  block:       " << receipt->block_number
              << "\n  transaction: " << receipt->tx_hash.Hex()
              << "\n  operator:    " << key->address().Checksummed()
              << "\n  plane id:    " << plane_id->Hex() << "\nwrote the ledger section of " << dir
              << "/plane.yaml (confirmations: " << l.confirmations
              << "); restart the plane to use it\n";
  }
  return kExitOk;
}

int LedgerRegisterDataset(const Args& args) {
  FlagParser p(
      "cce-plane ledger register-dataset --data-dir DIR NAME --price-wei N --max-days D "
      "--payout ADDR --key-file FILE",
      "Registers (or updates) catalog dataset NAME in the plane's RentalMarket contract\n"
      "(plane.yaml ledger.contract): its chain id is bound to this plane's id and the\n"
      "dataset's id; consumers pay N wei per day for 1..D days to the payout address.\n"
      "The key must be the contract's operator (the deployer).",
      {kDataDir,
       {"price-wei", "N", "price per day in wei (decimal, 1..2^128-1)"},
       {"max-days", "D", "the longest rental, in days"},
       {"payout", "ADDR",
        "the provider's payout address (0x + 40 hex; EIP-55 checked if mixed case)"},
       kKeyFile,
       kWaitConfirmations,
       kOutput});
  int exit = 0;
  auto f = Parse(p, args, 1, &exit);
  if (!f) return exit;
  const std::string dir = f->Get("data-dir").value_or("");
  if (dir.empty()) return Fail(InvalidArgument("--data-dir DIR is required"));
  const std::string name = f->positional()[0];
  auto price = eth::ParseDecimal(f->Get("price-wei").value_or(""), "--price-wei");
  if (!price.ok()) return Fail(price.status());
  if (*price == 0 || *price >= (eth::U256(1) << 128)) {
    return Fail(InvalidArgument("--price-wei: expected 1..2^128-1 (the contract's uint128)"));
  }
  auto max_days = f->GetUint("max-days", 1, std::numeric_limits<uint32_t>::max());
  if (!max_days.ok()) return Fail(max_days.status());
  if (!max_days->has_value()) return Fail(InvalidArgument("--max-days D is required"));
  auto payout = eth::ParseAddress(f->Get("payout").value_or(""), "--payout");
  if (!payout.ok()) return Fail(payout.status());
  if (*payout == eth::Address{}) return Fail(InvalidArgument("--payout: the zero address"));
  const std::string key_file = f->Get("key-file").value_or("");
  if (key_file.empty()) return Fail(InvalidArgument("--key-file FILE is required"));
  auto wait = f->GetUint("wait-confirmations", 1, 10000);
  if (!wait.ok()) return Fail(wait.status());

  auto c = plane::LoadConfig(dir);
  if (!c.ok()) return Fail(c.status());
  if (c->ledger_backend != "ethereum") {
    return Fail(FailedPrecondition(dir + "/plane.yaml: ledger.backend is " + c->ledger_backend +
                                   "; run `cce-plane ledger deploy` first"));
  }
  auto contract = eth::ParseAddress(c->ledger_contract, dir + "/plane.yaml: ledger.contract");
  if (!contract.ok()) return Fail(contract.status());
  auto dataset = [&]() -> StatusOr<store::Dataset> {
    ASSIGN_OR_RETURN(auto db, OpenPlaneStore(*c));
    return db->GetDatasetByName(name);
  }();
  if (!dataset.ok()) return Fail(dataset.status());
  auto plane_id = LocalPlaneId(*c);
  if (!plane_id.ok()) return Fail(plane_id.status());
  auto key = eth::PrivateKey::ReadFile(key_file);
  if (!key.ok()) return Fail(key.status().WithContext("--key-file"));
  auto rpc = eth::RpcClient::Create(
      {.url = c->ledger_rpc,
       .ca_file = c->ledger_rpc_ca_file.empty() ? "" : c->Path(c->ledger_rpc_ca_file),
       .timeout = std::chrono::seconds(30)});
  if (!rpc.ok()) return Fail(rpc.status().WithContext("ledger.rpc"));
  auto chain_id = rpc->ChainId();
  if (!chain_id.ok()) return Fail(chain_id.status());
  if (static_cast<int64_t>(*chain_id) != c->ledger_chain_id) {
    return Fail(FailedPrecondition("the node at " + rpc->url_for_messages() + " is on chain " +
                                   std::to_string(*chain_id) + ", plane.yaml says chain " +
                                   std::to_string(c->ledger_chain_id)));
  }
  if (Status s = CheckContract(*rpc, *contract, *plane_id); !s.ok()) return Fail(s);

  const eth::Hash32 chain_dataset = eth::ChainDatasetId(*plane_id, dataset->id);
  const auto days = static_cast<uint32_t>(**max_days);
  eth::TxRequest req;
  req.to = *contract;
  req.data = eth::EncodeRegisterDataset(chain_dataset, *payout, *price, days);
  auto receipt = eth::SendAndWait(*rpc, *chain_id, *key, req, Progress(wait->value_or(1)));
  if (!receipt.ok()) return Fail(receipt.status());
  // Read back what the contract now holds.
  auto ret = rpc->EthCall(*contract, eth::EncodeDatasetGetter(chain_dataset));
  if (!ret.ok()) return Fail(ret.status());
  auto held = eth::DecodeDataset(*ret);
  if (!held.ok()) return Fail(held.status());
  if (held->provider != *payout || held->price_per_day != *price || held->max_days != days ||
      !held->active) {
    return Fail(DataLoss("contract " + contract->Checksummed() + ": datasets(" +
                         chain_dataset.Hex() + ") does not hold what was registered"));
  }
  const nlohmann::json result{{"dataset", name},
                              {"dataset_id", dataset->id},
                              {"chain_dataset_id", chain_dataset.Hex()},
                              {"contract", contract->Checksummed()},
                              {"chain_id", *chain_id},
                              {"price_wei", eth::ToDecimal(*price)},
                              {"max_days", days},
                              {"payout", payout->Checksummed()},
                              {"tx_hash", receipt->tx_hash.Hex()},
                              {"block", receipt->block_number}};
  if (Status s = Audit(*c, "ledger.register_dataset", "dataset:" + name, result); !s.ok()) {
    return Fail(s.WithContext("registered on chain in " + receipt->tx_hash.Hex()));
  }
  if (f->Get("output") == "json") {
    std::cout << result.dump() << "\n";
  } else {
    std::cout << "registered " << name << " in " << contract->Checksummed()
              << "\n  chain dataset id: " << chain_dataset.Hex()
              << "\n  price per day:    " << eth::FormatEther(*price) << " ("
              << eth::ToDecimal(*price) << " wei)\n  max days:         " << days
              << "\n  payout:           " << payout->Checksummed()
              << "\n  transaction:      " << receipt->tx_hash.Hex() << " (block "
              << receipt->block_number << ")\n";
  }
  return kExitOk;
}

}  // namespace

const cli::CommandTable& PlaneCommandTable() {
  static const cli::CommandTable kTable{
      .program = kProgram,
      .description = "The cce4long Privacy Plane server.",
      .commands =
          {
              {{"init"},
               "create a data directory (config, PKI, keys, database, operator token)",
               Init},
              {{"serve"}, "serve the HTTPS API", Serve},
              {{"user", "add"}, "add a user and print their API token", UserAdd},
              {{"job", "credential"},
               "print a new Job Credential for a PROVISIONING job (provisioner none)",
               JobCredential},
              {{"collateral", "import"},
               "add TDX verification collateral to the key broker's cache",
               CollateralImport},
              {{"collateral", "fetch"},
               "download it from Intel PCS or a PCCS, then import it",
               CollateralFetch},
              {{"ledger", "deploy"},
               "deploy the RentalMarket contract and write plane.yaml's ledger section",
               LedgerDeploy},
              {{"ledger", "register-dataset"},
               "register a catalog dataset (price, max days, payout) in the contract",
               LedgerRegisterDataset},
          },
      .footer =
          "Run `cce-plane COMMAND --help` for options. Exit codes: 0 ok, 1 failure,\n"
          "2 bad usage or input, 3 authentication failed (docs/cli.md).\n",
      .version = "0.1.0",  // as `cce --version` (CMakeLists.txt's project version)
  };
  return kTable;
}

}  // namespace cce::cmd
