#include "cce_plane_commands.h"

#include <atomic>
#include <csignal>
#include <iostream>
#include <nlohmann/json.hpp>

#include "plane/plane.h"

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

int Init(const Args& args) {
  FlagParser p(
      "cce-plane init --data-dir DIR [--listen ADDR:PORT] [--dns NAME]... [--ip IP]... "
      "[--simulated-tee]",
      "Creates a new plane data directory: config file, CA and TLS server certificate,\n"
      "signing key, master key, database, and an operator API token (printed once).",
      {kDataDir,
       {"listen", "ADDR:PORT", "listen address written to the config (default 127.0.0.1:8443)"},
       {"dns", "NAME", "DNS name for the server certificate (repeatable; default localhost)", true},
       {"ip", "IP", "IP address for the server certificate (repeatable; default 127.0.0.1, ::1)",
        true},
       {"simulated-tee", "",
        "DEVELOPMENT ONLY: create a simulated TDX chain (attestation/sim) and a policy that "
        "accepts its quotes, from machines that are NOT TDX VMs"},
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
  SystemClock clock;
  auto r = plane::InitPlane(o, clock);
  if (!r.ok()) return Fail(r.status());
  if (o.simulated_tee) {
    std::cerr << "cce-plane: WARNING: SIMULATED TEE: this plane's key broker accepts quotes "
                 "from machines that are NOT TDX VMs (attestation/policy.yaml: allow_simulated: "
                 "true). Development only.\n";
  }
  if (f->Get("output") == "json") {
    nlohmann::json j{{"token", r->token},
                     {"ca_file", r->ca_file},
                     {"config_file", r->config_file},
                     {"data_dir", r->data_dir},
                     {"simulated_tee", o.simulated_tee}};
    if (o.simulated_tee) j["simulated_tee_dir"] = r->simulated_tee_dir;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "initialized " << r->data_dir << "\n  config: " << r->config_file
              << "\n  CA:     " << r->ca_file;
    if (o.simulated_tee) std::cout << "\n  SIMULATED TEE: " << r->simulated_tee_dir;
    std::cout << "\noperator token (shown once, store it safely):\n" << r->token << "\n";
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
  auto role = store::ParseRole(f->Get("role").value_or(""));
  if (!role.ok()) return Fail(role.status().WithContext("--role"));
  SystemClock clock;
  auto token = plane::AddUser(*dir, f->positional()[0], *role, clock);
  if (!token.ok()) return Fail(token.status());
  if (f->Get("output") == "json") {
    std::cout << nlohmann::json{{"token", *token}}.dump() << "\n";
  } else {
    std::cout << *token << "\n";
  }
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
              {{"collateral", "import"},
               "add TDX verification collateral to the key broker's cache",
               CollateralImport},
              {{"collateral", "fetch"},
               "download it from Intel PCS or a PCCS, then import it",
               CollateralFetch},
          },
      .footer =
          "Run `cce-plane COMMAND --help` for options. Exit codes: 0 ok, 1 failure,\n"
          "2 bad usage or input, 3 authentication failed (docs/cli.md).\n",
      .version = "",  // no --version
  };
  return kTable;
}

}  // namespace cce::cmd
