// `cce attest verify`: a TDX quote checked offline against collateral and a
// policy at a given time (docs/attestation.md). Exit 0 accepted, 1
// rejected, 2 bad input.
#include <iostream>
#include <nlohmann/json.hpp>

#include "attest/attest.h"
#include "attest/time_util.h"
#include "base/fd.h"
#include "cli/cli.h"
#include "cli/command.h"

namespace cce::cli {
namespace {

using nlohmann::json;

constexpr size_t kMaxQuoteBytes = size_t{1} << 20;

int Rejected(bool json_out, const std::string& why) {
  if (json_out) {
    // The same keys as an evaluated quote's verdict (VerificationToJson).
    std::cout << json{{"verdict", "rejected"}, {"reasons", {why}}}.dump() << "\n";
  } else {
    std::cout << "REJECTED\n  - " << why << "\n";
  }
  return kExitFailure;
}

int AttestVerify(const Args& args) {
  FlagParser p(
      "cce attest verify QUOTE_FILE --collateral PATH --at RFC3339_TIME [--policy FILE] "
      "[--report-data HEX] [--output json]",
      "Verifies a TDX quote (v4 or v5) the way the plane's key broker does: the DCAP\n"
      "signature chain to Intel's pinned root, CRLs, TCB Info and QE Identity, TCB\n"
      "level matching, then the policy (default: UpToDate only, DEBUG never).\n"
      "PATH is a dcap-qvl collateral JSON file or a directory of Intel PCS files.\n"
      "Exit codes: 0 accepted, 1 rejected (every reason printed), 2 bad input.",
      {{"collateral", "PATH", "verification collateral (file or directory)"},
       {"at", "TIME", "verify as of this RFC 3339 time, e.g. 2025-07-01T00:00:00Z or ...+02:00"},
       {"policy", "FILE", "attestation policy YAML (docs/attestation.md)"},
       {"report-data", "HEX", "require REPORTDATA to equal these 64 bytes"},
       kOutputFlag});
  int exit = 0;
  auto f = ParseOrExit(p, args, 1, &exit);
  if (!f) return exit;
  auto json_out = JsonOutput(*f);
  if (!json_out.ok()) return Fail(json_out.status());
  auto collateral_path = f->Get("collateral");
  auto at_text = f->Get("at");
  if (!collateral_path) return Fail(InvalidArgument("--collateral PATH is required"));
  if (!at_text) return Fail(InvalidArgument("--at TIME is required (RFC 3339)"));
  auto at = attest::ParseRfc3339Utc(*at_text);
  if (!at.ok()) return Fail(at.status().WithContext("--at"));
  auto quote = ReadFile(f->positional()[0], kMaxQuoteBytes);
  if (!quote.ok()) return Fail(InvalidArgument(quote.status().message()));
  auto collateral = attest::Collateral::LoadDir(*collateral_path);
  if (!collateral.ok()) return Fail(collateral.status().WithContext("--collateral"));
  attest::Policy policy = attest::Policy::Default();
  if (auto pf = f->Get("policy")) {
    auto loaded = attest::Policy::Load(*pf);
    if (!loaded.ok()) return Fail(loaded.status());
    policy = *loaded;
  }
  std::optional<crypto::Bytes> report_data;
  if (auto rd = f->Get("report-data")) {
    auto bytes = crypto::FromHex(*rd);
    if (!bytes.ok() || bytes->size() != 64) {
      return Fail(InvalidArgument("--report-data: expected 128 hex digits (64 bytes)"));
    }
    report_data = *bytes;
  }
  std::optional<crypto::ByteSpan> expected;
  if (report_data) expected = crypto::ByteSpan(*report_data);
  auto v = attest::VerifyQuote(crypto::AsBytes(*quote), *collateral, policy, *at, expected);
  if (!v.ok()) {
    // A quote that does not parse, or a path that is wrong, is bad input; a
    // signature, chain, revocation or window failure is a rejection.
    const StatusCode code = v.status().code();
    if (code == StatusCode::kInvalidArgument || code == StatusCode::kNotFound) {
      return Fail(v.status());
    }
    return Rejected(*json_out, v.status().message());
  }
  if (*json_out) {
    // One line: VerificationToJson indents, --output json is JSON Lines.
    std::cout << json::parse(attest::VerificationToJson(*v)).dump() << "\n";
  } else {
    json j = json::parse(attest::VerificationToJson(*v));
    std::cout << (v->accepted ? "ACCEPTED" : "REJECTED") << "\n";
    for (const auto& r : v->reasons) std::cout << "  - " << r << "\n";
    for (const auto& [k, val] : j.items()) {
      if (k == "accepted" || k == "reasons") continue;
      std::cout << "  " << k << ": " << (val.is_string() ? val.get<std::string>() : val.dump())
                << "\n";
    }
  }
  return v->accepted ? kExitOk : kExitFailure;
}

}  // namespace

std::vector<Command> AttestCommands() {
  return {
      {{"attest", "verify"}, "verify a TDX quote against collateral and a policy", AttestVerify}};
}

}  // namespace cce::cli
