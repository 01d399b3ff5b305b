// `cce gate scan`: the Output Gate on this machine (docs/gate.md), the same
// scan the plane runs on every submitted output, so a consumer can check an
// output before submitting a job. With --output json, stdout is exactly one
// JSON object; logs and errors go to stderr. Exit 0 release, 1 hold, 2 bad
// input.
#include <iostream>

#include "base/fd.h"
#include "cli/command.h"
#include "gate/fingerprint.h"
#include "gate/gate.h"

namespace cce::cli {
namespace {

constexpr int kExitHold = 1;

void PrintReport(const gate::Report& r) {
  std::cout << "verdict: " << gate::VerdictName(r.verdict) << " (score " << r.score << ", "
            << r.findings.size() << " finding(s), " << r.files << " item(s), " << r.bytes_scanned
            << " bytes scanned)\n";
  for (const gate::Finding& f : r.findings) {
    std::cout << "  " << (f.hard ? "HOLD " : "     ") << f.detector << "  " << f.file;
    if (!f.location.empty()) std::cout << " @ " << f.location;
    std::cout << "  [" << f.score << "]\n      " << f.message << "\n";
  }
}

int GateScan(const Args& args) {
  FlagParser p(
      "cce gate scan OUTPUT_DIR [--reference DATA_DIR]... [--policy FILE] [--output json]",
      "Scores the disclosure risk of the files under OUTPUT_DIR with the Output Gate, as the\n"
      "plane does for a job's output (docs/gate.md): types by content, containers and\n"
      "encodings unpacked, copies of the --reference datasets (directories of CSV with a\n"
      "header row and/or JSON Lines), covert channels, small cells, dominance, microdata\n"
      "and differencing, memorised rows in model files. Exit code: 0 release, 1 hold,\n"
      "2 bad input. With --output json, stdout is one object: {verdict, score, findings}.",
      {{"reference", "DATA_DIR", "a plaintext reference dataset to match copies against", true},
       {"policy", "FILE", "a gate policy YAML file (defaults in docs/gate.md)"},
       kOutputFlag});
  int exit = 0;
  auto f = ParseOrExit(p, args, 1, &exit);
  if (!f) return exit;
  auto run = [&]() -> StatusOr<int> {
    ASSIGN_OR_RETURN(bool json_out, JsonOutput(*f));
    gate::Policy policy;
    if (auto file = f->Get("policy")) {
      ASSIGN_OR_RETURN(std::string text, ReadFile(*file, 64 * 1024));
      ASSIGN_OR_RETURN(policy, gate::LoadPolicy(text, *file));
    }
    gate::ScanInputs in;
    ASSIGN_OR_RETURN(in.files, gate::ReadOutputDir(f->positional()[0], policy));
    std::vector<gate::ReferenceIndex> refs;
    for (const std::string& dir : f->All("reference")) {
      auto r = gate::ReferenceIndex::FromDirectory(dir, policy);
      if (!r.ok()) return r.status().WithContext("--reference " + dir);
      refs.push_back(std::move(*r));
    }
    for (const gate::ReferenceIndex& r : refs) in.references.push_back(&r);
    gate::Report report = gate::Scan(in, policy);
    if (json_out) {
      std::cout << gate::ReportToJson(report).dump() << "\n";
    } else {
      PrintReport(report);
    }
    return report.verdict == gate::Verdict::kRelease ? 0 : kExitHold;
  };
  StatusOr<int> code = run();
  if (!code.ok()) {
    // Bad input is exit 2 whatever its code: a gate that cannot read its
    // input has no verdict.
    std::cerr << "cce: error: " << code.status().message() << "\n";
    if (JsonErrors()) std::cout << ErrorJson(code.status(), 2) << "\n";
    return 2;
  }
  return *code;
}

}  // namespace

std::vector<Command> GateCommands() {
  return {{{"gate", "scan"}, "score an output's disclosure risk with the Output Gate", GateScan}};
}

}  // namespace cce::cli
