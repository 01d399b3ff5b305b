// Tests for the policy file and its evaluation: every field, every error
// naming the field, and every rule adding its own reason.
#include "attest/policy.h"

#include <gtest/gtest.h>

#include "attest/test_util.h"

namespace cce::attest {
namespace {

using testing::Contains;
using testing::Must;

const std::string kMrtd(96, 'a');
const std::string kOther(96, 'b');

Measurement M(char c) {
  Measurement m{};
  m.fill(static_cast<uint8_t>(c == 'a' ? 0xaa : 0xbb));
  return m;
}

std::string ParseError(const std::string& yaml) {
  auto p = Policy::Parse(yaml, "policy.yaml");
  EXPECT_FALSE(p.ok()) << yaml;
  return p.ok() ? "" : p.status().message();
}

TEST(Policy, DefaultAcceptsOnlyUpToDateAndNothingMissing) {
  const Policy p = Policy::Default();
  EXPECT_EQ(p.accepted_tcb_statuses, std::vector<TcbStatus>{TcbStatus::kUpToDate});
  EXPECT_FALSE(p.allow_missing_pck_crl);
  EXPECT_FALSE(p.allow_simulated);
  EXPECT_FALSE(p.mrtd.has_value());
  EXPECT_EQ(p.required_td_attributes, 0u);
  // An empty file is the default policy.
  const Policy e = Must(Policy::Parse("", "p.yaml"));
  EXPECT_EQ(e.accepted_tcb_statuses, p.accepted_tcb_statuses);
}

TEST(Policy, ParsesEveryField) {
  const Policy p =
      Must(Policy::Parse("accepted_tcb_statuses: [UpToDate, SWHardeningNeeded, OutOfDate]\n"
                         "required_td_attributes: \"0x10000000\"\n"
                         "mrtd: [" +
                             kMrtd + ", " + kOther +
                             "]\n"
                             "rtmr0: [" +
                             kMrtd +
                             "]\n"
                             "rtmr1: [" +
                             kMrtd +
                             "]\n"
                             "rtmr2: [" +
                             kMrtd +
                             "]\n"
                             "rtmr3: [" +
                             kOther +
                             "]\n"
                             "mrconfigid: [" +
                             kOther +
                             "]\n"
                             "max_collateral_age: 30d\n"
                             "allow_missing_pck_crl: true\n"
                             "allow_simulated: false\n",
                         "p.yaml"));
  EXPECT_EQ(p.accepted_tcb_statuses,
            (std::vector<TcbStatus>{TcbStatus::kUpToDate, TcbStatus::kSWHardeningNeeded,
                                    TcbStatus::kOutOfDate}));
  EXPECT_EQ(p.required_td_attributes, uint64_t{1} << 28);
  ASSERT_TRUE(p.mrtd.has_value());
  EXPECT_EQ(*p.mrtd, (std::vector<Measurement>{M('a'), M('b')}));
  EXPECT_EQ(p.rtmr[3], std::vector<Measurement>{M('b')});
  EXPECT_EQ(p.mrconfigid, std::vector<Measurement>{M('b')});
  EXPECT_EQ(p.max_collateral_age_seconds, 30 * 86400);
  EXPECT_TRUE(p.allow_missing_pck_crl);
  EXPECT_FALSE(p.allow_simulated);
  EXPECT_EQ(Must(Policy::Parse("max_collateral_age: 3600\n", "p")).max_collateral_age_seconds,
            3600);
  EXPECT_EQ(Must(Policy::Parse("max_collateral_age: 12h\n", "p")).max_collateral_age_seconds,
            12 * 3600);
}

TEST(Policy, ErrorsNameTheFieldAndPosition) {
  EXPECT_EQ(ParseError("accepted_tcb_statuses: [UpToDate]\nallow_debug: true\n"),
            "policy.yaml:2:1: allow_debug: unknown policy field");
  EXPECT_EQ(ParseError("allow_simulated: false\nallow_simulated: true\n"),
            "policy.yaml:2:1: allow_simulated: duplicate field");
  EXPECT_EQ(ParseError("mrtd: []\n"),
            "policy.yaml:1:7: mrtd: an empty list allows nothing; omit the field to allow any "
            "value");
  EXPECT_EQ(ParseError("rtmr2: [abcd]\n"), "policy.yaml:1:9: rtmr2[0]: expected 96 hex digits");
  EXPECT_TRUE(Contains(ParseError("accepted_tcb_statuses: [Fine]\n"),
                       "accepted_tcb_statuses[0]: expected one of UpToDate, SWHardeningNeeded"));
  EXPECT_EQ(ParseError("allow_missing_pck_crl: yes\n"),
            "policy.yaml:1:24: allow_missing_pck_crl: expected true or false");
  EXPECT_TRUE(Contains(ParseError("max_collateral_age: 3w\n"), "max_collateral_age: expected"));
  EXPECT_TRUE(Contains(ParseError("max_collateral_age: -5\n"), "max_collateral_age: expected"));
  EXPECT_TRUE(Contains(ParseError("required_td_attributes: 268435456\n"),
                       "required_td_attributes: expected a hex bit mask"));
  EXPECT_TRUE(Contains(ParseError("- a\n- b\n"), "policy: expected a mapping"));
  EXPECT_TRUE(Contains(ParseError("mrtd: [\n"), "policy.yaml:"));
  auto missing = Policy::Load("/nonexistent/policy.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status().message(), "/nonexistent/policy.yaml"));
}

DcapVerification Good() {
  DcapVerification v;
  v.tcb.status = TcbStatus::kUpToDate;
  v.pck_crl = PckCrlStatus::kChecked;
  v.quote.body.mr_td = M('a');
  v.quote.body.td_attributes = {0, 0, 0, 0x10, 0, 0, 0, 0};  // SEPT_VE_DISABLE
  v.quote.body.report_data.fill(7);
  v.collateral_oldest_issue_unix = 1000;
  return v;
}

PolicyDecision Eval(const DcapVerification& v, const Policy& p,
                    std::optional<crypto::ByteSpan> rd = std::nullopt) {
  return Must(EvaluatePolicy(v, p, 2000, rd));
}

TEST(EvaluatePolicy, AcceptsWhenEveryRuleHolds) {
  Policy p;
  p.mrtd = std::vector<Measurement>{M('b'), M('a')};
  p.required_td_attributes = uint64_t{1} << 28;
  p.max_collateral_age_seconds = 1000;
  ReportData rd{};
  rd.fill(7);
  const PolicyDecision d = Eval(Good(), p, rd);
  EXPECT_TRUE(d.accepted);
  EXPECT_TRUE(d.reasons.empty());
}

TEST(EvaluatePolicy, ListsEveryReason) {
  DcapVerification v = Good();
  v.quote.body.td_attributes[0] = 1;  // DEBUG
  v.tcb.status = TcbStatus::kOutOfDate;
  v.tcb.advisory_ids = {"INTEL-SA-00837"};
  v.pck_crl = PckCrlStatus::kMissing;
  v.simulated = true;
  Policy p;
  p.mrtd = std::vector<Measurement>{M('b')};
  p.rtmr[1] = std::vector<Measurement>{M('b')};
  p.mrconfigid = std::vector<Measurement>{M('b')};
  p.required_td_attributes = 0x40000000;  // PKS
  p.max_collateral_age_seconds = 999;
  ReportData rd{};
  const PolicyDecision d = Eval(v, p, rd);
  EXPECT_FALSE(d.accepted);
  const std::vector<std::string> want = {
      "simulated TEE",
      "DEBUG mode",
      "lack required bits 0x0000000040000000",
      "TCB status OutOfDate is not accepted (accepted: UpToDate); advisories: INTEL-SA-00837",
      "PCK CRL missing",
      "MRTD " + crypto::ToHex(M('a')) + " is not in the policy's allowed list (1 value)",
      "RTMR1 ",
      "MRCONFIGID ",
      "collateral is 1000 s old",
      "REPORTDATA ",
  };
  ASSERT_EQ(d.reasons.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(Contains(d.reasons[i], want[i])) << d.reasons[i] << " / " << want[i];
  }
}

TEST(EvaluatePolicy, DebugIsRejectedEvenByThePermissivePolicy) {
  DcapVerification v = Good();
  v.quote.body.td_attributes[0] = 1;
  Policy p;
  p.accepted_tcb_statuses = AllTcbStatuses();
  p.allow_missing_pck_crl = true;
  p.allow_simulated = true;
  const PolicyDecision d = Eval(v, p);
  EXPECT_FALSE(d.accepted);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_TRUE(Contains(d.reasons[0], "debug TDs are never accepted"));
}

TEST(EvaluatePolicy, AllowancesLiftOnlyTheirOwnRule) {
  DcapVerification v = Good();
  v.pck_crl = PckCrlStatus::kMissing;
  v.simulated = true;
  Policy p;
  EXPECT_EQ(Eval(v, p).reasons.size(), 2u);
  p.allow_missing_pck_crl = true;
  EXPECT_EQ(Eval(v, p).reasons.size(), 1u);
  p.allow_simulated = true;
  EXPECT_TRUE(Eval(v, p).accepted);
}

TEST(EvaluatePolicy, ExpectedReportDataMustBe64Bytes) {
  const uint8_t short_rd[32] = {};
  auto r = EvaluatePolicy(Good(), Policy::Default(), 0, crypto::ByteSpan(short_rd));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "expected report data must be 64 bytes, got 32");
}

}  // namespace
}  // namespace cce::attest
