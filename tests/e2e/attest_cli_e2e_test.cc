// `cce attest verify` on real vectors: the verdicts and exit codes the
// Attestation issue asks for (0 accepted, 1 rejected, 2 bad input), text and
// --output json, a policy file, and a simulated quote refused by default.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

const std::string kData = std::string(CCE_SOURCE_DIR) + "/tests/data/tdx/";

CommandResult Verify(std::vector<std::string> args) {
  args.insert(args.begin(), {BinPath("cce"), "attest", "verify"});
  return RunCommand(args);
}

TEST(AttestCli, VerdictsAndExitCodesOnRealQuotes) {
  const std::string quote = kData + "dcap-qvl/tdx_quote";
  const std::string collateral = kData + "dcap-qvl/tdx_quote_collateral.json";
  auto ok = Verify({quote, "--collateral", collateral, "--at", "2025-07-01T00:00:00Z"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("ACCEPTED"), std::string::npos);
  EXPECT_NE(ok.out.find("tcb_status: UpToDate"), std::string::npos) << ok.out;
  auto j = Verify(
      {quote, "--collateral", collateral, "--at", "2025-07-01T00:00:00Z", "--output", "json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  json v = json::parse(j.out);
  EXPECT_EQ(v["verdict"], "accepted");
  EXPECT_EQ(v["measurements"]["mr_td"],
            "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2"
            "538873118b7");

  // Outside the collateral window: rejected, the reason names the item.
  auto late = Verify({quote, "--collateral", collateral, "--at", "2025-08-01T00:00:00Z"});
  EXPECT_EQ(late.exit_code, 1) << late.out << late.err;
  EXPECT_NE(late.out.find("not valid at"), std::string::npos) << late.out;
  // Wrong expected REPORTDATA: rejected.
  auto rd = Verify({quote, "--collateral", collateral, "--at", "2025-07-01T00:00:00Z",
                    "--report-data", std::string(128, '0')});
  EXPECT_EQ(rd.exit_code, 1);
  EXPECT_NE(rd.out.find("REPORTDATA"), std::string::npos) << rd.out;

  // A DEBUG TD (trustee) with collateral for its platform: rejected.
  auto debug = Verify({kData + "trustee/tdx_quote_4.dat", "--collateral",
                       kData + "collateral/go-tdx-guest-2023", "--at", "2023-07-01T01:00:00Z"});
  EXPECT_EQ(debug.exit_code, 1) << debug.out << debug.err;
  EXPECT_NE(debug.out.find("DEBUG"), std::string::npos) << debug.out;

  // OutOfDate under the default policy; accepted by a policy that allows it
  // and the set's missing PCK CRL.
  const std::string q6 = kData + "trustee/tdx_quote_6.dat";
  const std::string c6 = kData + "collateral/trustee-2025";
  auto strict = Verify({q6, "--collateral", c6, "--at", "2025-11-01T00:00:00Z"});
  EXPECT_EQ(strict.exit_code, 1) << strict.out << strict.err;
  EXPECT_NE(strict.out.find("OutOfDate"), std::string::npos) << strict.out;
  TempDir t;
  WriteFile(t / "policy.yaml",
            "accepted_tcb_statuses: [UpToDate, OutOfDate]\nallow_missing_pck_crl: true\n");
  auto lenient = Verify(
      {q6, "--collateral", c6, "--at", "2025-11-01T00:00:00Z", "--policy", t / "policy.yaml"});
  EXPECT_EQ(lenient.exit_code, 0) << lenient.out << lenient.err;

  // Bad input: exit 2, naming what is wrong.
  WriteFile(t / "garbage", std::string(200, 'x'));
  auto garbage =
      Verify({t / "garbage", "--collateral", collateral, "--at", "2025-07-01T00:00:00Z"});
  EXPECT_EQ(garbage.exit_code, 2) << garbage.out << garbage.err;
  EXPECT_NE(garbage.err.find("offset"), std::string::npos) << garbage.err;
  EXPECT_EQ(Verify({quote, "--collateral", collateral, "--at", "yesterday"}).exit_code, 2);
  EXPECT_EQ(Verify({quote, "--at", "2025-07-01T00:00:00Z"}).exit_code, 2);
  WriteFile(t / "bad-policy.yaml", "accepted_tcb_status: [UpToDate]\n");
  auto bad_policy = Verify({quote, "--collateral", collateral, "--at", "2025-07-01T00:00:00Z",
                            "--policy", t / "bad-policy.yaml"});
  EXPECT_EQ(bad_policy.exit_code, 2);
  EXPECT_NE(bad_policy.err.find("accepted_tcb_status"), std::string::npos) << bad_policy.err;
}

}  // namespace
}  // namespace cce::e2e
