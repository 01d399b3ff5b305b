// `cce dataset sample`: the desensitizer on the provider's machine
// (docs/explore/desensitizer.md). Builds the desensitized sample an Explore
// session shows consumers from the plaintext source directory; nothing is
// sent anywhere. With --output json, stdout is exactly the report object.
// Exit 0 done, 1 an OS failure, 2 bad usage or input (policy, data, secret).
#include <iostream>

#include "base/fd.h"
#include "cli/command.h"
#include "cli/progress.h"
#include "explore/desensitize.h"

namespace cce::cli {
namespace {

int DatasetSample(const Args& args) {
  FlagParser p(
      "cce dataset sample SRC_DIR --policy FILE --out DIR [--report FILE] [--output json]",
      "Builds a desensitized sample of the CSV and JSON Lines files under SRC_DIR, as the\n"
      "policy says (docs/explore/desensitizer.md): seeded row sampling; per column drop,\n"
      "mask, keyed hash, generalize, date truncation/shift, top-K, or keep; k-anonymity on\n"
      "quasi-identifiers by generalization and suppression, optional l-diversity. Every\n"
      "column of the data must be declared. DIR must not exist (or be empty); it is written\n"
      "whole or not at all. Publish it with the dataset for Explore sessions.",
      {{"policy", "FILE", "the sample policy YAML"},
       {"out", "DIR", "where the sample is written"},
       {"report", "FILE", "also write the JSON report to FILE"},
       kOutputFlag});
  int exit = 0;
  auto f = ParseOrExit(p, args, 1, &exit);
  if (!f) return exit;
  auto run = [&]() -> StatusOr<explore::Report> {
    ASSIGN_OR_RETURN(bool json_out, JsonOutput(*f));
    (void)json_out;
    auto policy_path = f->Get("policy");
    auto out = f->Get("out");
    if (!policy_path) return InvalidArgument("--policy FILE is required");
    if (!out) return InvalidArgument("--out DIR is required");
    ASSIGN_OR_RETURN(explore::SamplePolicy policy, explore::LoadSamplePolicy(*policy_path));
    ProgressBar bar("sampling");
    return explore::Desensitize(f->positional()[0], policy, *out,
                                [&](uint64_t done, uint64_t total, uint64_t fd, uint64_t ft) {
                                  bar.Update(done, total, fd, ft);
                                });
  };
  StatusOr<explore::Report> report = run();
  if (!report.ok()) {
    const StatusCode code = report.status().code();
    std::cerr << "cce: error: " << report.status().message() << "\n";
    // Only an OS failure is a runtime failure; anything about the policy, the
    // data or the secret file is bad input.
    const int exit_code =
        code == StatusCode::kIo || code == StatusCode::kInternal ? kExitFailure : kExitUsage;
    if (JsonErrors()) std::cout << ErrorJson(report.status(), exit_code) << "\n";
    return exit_code;
  }
  const nlohmann::json j = explore::ReportToJson(*report);
  if (auto file = f->Get("report")) {
    const std::string text = j.dump(2) + "\n";
    Status s =
        WriteFileAtomic(*file, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, 0644);
    if (!s.ok()) {
      return ReportError("cce", s.WithContext("--report " + *file));
    }
  }
  if (f->Get("output").value_or("text") == "json") {
    std::cout << j.dump() << "\n";
  } else {
    std::cout << explore::ReportToText(*report) << "sample written to " << *f->Get("out") << "\n";
  }
  return kExitOk;
}

}  // namespace

std::vector<Command> DatasetSampleCommands() {
  return {{{"dataset", "sample"},
           "build a desensitized sample of a plaintext dataset for Explore sessions",
           DatasetSample}};
}

}  // namespace cce::cli
