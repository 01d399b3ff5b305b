// End-to-end verdicts through VerifyQuote on every real vector the issue
// names: what the plane accepts and what it refuses, with the reasons.
#include "attest/attest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attest/test_util.h"

namespace cce::attest {
namespace {

using crypto::Bytes;
using testing::Contains;
using testing::Must;
using testing::ReadBytes;
using testing::TdxDataPath;

Collateral Load(const char* relative) {
  return Must(Collateral::LoadDir(TdxDataPath(relative)));
}

Policy ParsePolicy(const std::string& yaml) {
  return Must(Policy::Parse(yaml, "test-policy.yaml"));
}

bool AnyReason(const Verification& v, const std::string& needle) {
  for (const std::string& r : v.reasons) {
    if (Contains(r, needle)) return true;
  }
  return false;
}

TEST(VerifyQuote, AcceptsDcapQvlQuoteWithItsCollateral) {
  const Bytes q = ReadBytes(testing::kDcapQuote);
  const Quote parsed = Must(ParseQuote(q));
  const Verification v =
      Must(VerifyQuote(q, Load(testing::kDcapCollateral), Policy::Default(), testing::DcapTime(),
                       crypto::ByteSpan(parsed.body.report_data)));
  EXPECT_TRUE(v.accepted);
  EXPECT_TRUE(v.reasons.empty());
  EXPECT_EQ(v.dcap.tcb.status, TcbStatus::kUpToDate);
}

TEST(VerifyQuote, AcceptsGoTdxGuestV5Quote) {
  const Verification v =
      Must(VerifyQuote(ReadBytes(testing::kGoV5Quote), Load(testing::kGoV5Collateral),
                       Policy::Default(), testing::GoV5Time(), std::nullopt));
  EXPECT_TRUE(v.accepted) << (v.reasons.empty() ? "" : v.reasons[0]);
}

TEST(VerifyQuote, GoTdxGuestV4SetIsNotSupportedAndRejected) {
  const Verification v =
      Must(VerifyQuote(ReadBytes(testing::kGoV4Quote), Load(testing::kGo2023Collateral),
                       Policy::Default(), testing::Go2023Time(), std::nullopt));
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.dcap.tcb.status, TcbStatus::kNotSupported);
  EXPECT_TRUE(AnyReason(v, "TCB status NotSupported is not accepted"));
}

TEST(VerifyQuote, RejectsTheSameQuoteOutsideTheWindow) {
  auto r = VerifyQuote(ReadBytes(testing::kDcapQuote), Load(testing::kDcapCollateral),
                       Policy::Default(), testing::T("2025-08-01T00:00:00Z"), std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
}

TEST(VerifyQuote, RejectsTrusteeDebugQuoteUnderAnyPolicy) {
  const Policy permissive = ParsePolicy(
      "accepted_tcb_statuses: [UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
      "ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, "
      "TDRelaunchAdvised, TDRelaunchAdvisedConfigurationNeeded, Revoked, NotSupported]\n"
      "allow_missing_pck_crl: true\n"
      "allow_simulated: true\n");
  const Verification v =
      Must(VerifyQuote(ReadBytes(testing::kTrusteeDebugQuote), Load(testing::kGo2023Collateral),
                       permissive, testing::Go2023Time(), std::nullopt));
  EXPECT_FALSE(v.accepted);
  ASSERT_EQ(v.reasons.size(), 1u);
  EXPECT_TRUE(Contains(v.reasons[0], "DEBUG mode")) << v.reasons[0];
}

TEST(VerifyQuote, TrusteeQuote6IsOutOfDateAndPassesTheTcbCheckOnlyWhenAllowed) {
  const Bytes q = ReadBytes(testing::kTrusteeQuote6);
  const Collateral c = Load(testing::kTrusteeCollateral);
  const Verification strict =
      Must(VerifyQuote(q, c, Policy::Default(), testing::TrusteeTime(), std::nullopt));
  EXPECT_FALSE(strict.accepted);
  EXPECT_EQ(strict.dcap.tcb.status, TcbStatus::kOutOfDate);
  EXPECT_EQ(strict.reasons.size(), 2u);
  EXPECT_TRUE(AnyReason(strict, "TCB status OutOfDate is not accepted (accepted: UpToDate)"));
  EXPECT_TRUE(AnyReason(strict, "PCK CRL missing"));

  // Allowing OutOfDate lifts the TCB reason only; the missing CRL still rejects.
  const Verification tcb_ok =
      Must(VerifyQuote(q, c, ParsePolicy("accepted_tcb_statuses: [UpToDate, OutOfDate]\n"),
                       testing::TrusteeTime(), std::nullopt));
  EXPECT_FALSE(tcb_ok.accepted);
  ASSERT_EQ(tcb_ok.reasons.size(), 1u);
  EXPECT_TRUE(Contains(tcb_ok.reasons[0], "PCK CRL missing"));

  const Verification both = Must(VerifyQuote(
      q, c,
      ParsePolicy("accepted_tcb_statuses: [UpToDate, OutOfDate]\nallow_missing_pck_crl: true\n"),
      testing::TrusteeTime(), std::nullopt));
  EXPECT_TRUE(both.accepted);
}

TEST(VerifyQuote, DcapQvlOutdatedQuoteIsNeverReleased) {
  const Verification v = Must(VerifyQuote(
      ReadBytes(testing::kDcapOutdatedQuote), Load(testing::kDcapOutdatedCollateral),
      ParsePolicy("accepted_tcb_statuses: [UpToDate, OutOfDate, OutOfDateConfigurationNeeded]\n"),
      testing::DcapOutdatedTime(), std::nullopt));
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.dcap.tcb.status, TcbStatus::kNotSupported);
  EXPECT_TRUE(AnyReason(v, "TCB status NotSupported"));
}

TEST(VerifyQuote, RejectsWrongMrtdAndAcceptsTheRightOne) {
  const Bytes q = ReadBytes(testing::kDcapQuote);
  const Collateral c = Load(testing::kDcapCollateral);
  const std::string right =
      "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873"
      "118b7";
  const std::string wrong = std::string(95, '0') + "1";
  Verification v = Must(
      VerifyQuote(q, c, ParsePolicy("mrtd: [" + wrong + "]\n"), testing::DcapTime(), std::nullopt));
  EXPECT_FALSE(v.accepted);
  ASSERT_EQ(v.reasons.size(), 1u);
  EXPECT_EQ(v.reasons[0], "MRTD " + right + " is not in the policy's allowed list (1 value)");
  v = Must(VerifyQuote(q, c, ParsePolicy("mrtd: [" + wrong + ", " + right + "]\n"),
                       testing::DcapTime(), std::nullopt));
  EXPECT_TRUE(v.accepted);
}

TEST(VerifyQuote, RejectsWrongReportData) {
  const Bytes q = ReadBytes(testing::kDcapQuote);
  ReportData expected = Must(ParseQuote(q)).body.report_data;
  expected[63] ^= 1;
  const Verification v = Must(VerifyQuote(q, Load(testing::kDcapCollateral), Policy::Default(),
                                          testing::DcapTime(), crypto::ByteSpan(expected)));
  EXPECT_FALSE(v.accepted);
  ASSERT_EQ(v.reasons.size(), 1u);
  EXPECT_TRUE(Contains(v.reasons[0], "REPORTDATA")) << v.reasons[0];
  const uint8_t wrong_size[48] = {};
  auto r = VerifyQuote(q, Load(testing::kDcapCollateral), Policy::Default(), testing::DcapTime(),
                       crypto::ByteSpan(wrong_size));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(VerifyQuote, RejectsAnUnknownRoot) {
  const auto ca = Must(crypto::CreateCertificateAuthority(
      "Intel SGX Root CA", testing::T("2018-01-01T00:00:00Z"), 36500));
  const TrustAnchors anchors{Must(crypto::ParseCertificatesPem(ca.cert_pem))[0], {}};
  auto r = VerifyQuote(ReadBytes(testing::kDcapQuote), Load(testing::kDcapCollateral),
                       Policy::Default(), testing::DcapTime(), std::nullopt, anchors);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
}

TEST(VerifyQuote, RejectsGarbageAsBadInput) {
  const Bytes junk(100, 0x42);
  auto r = VerifyQuote(junk, Load(testing::kDcapCollateral), Policy::Default(), testing::DcapTime(),
                       std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "quote offset 0: version: 16962 is not supported (want 4 or 5)");
}

// The example in docs/attestation.md, section 5, is a working policy.
TEST(VerifyQuote, DocumentedExamplePolicyWorks) {
  const std::string doc = testing::ReadText("../../../docs/attestation.md");
  const size_t start = doc.find("```yaml\n");
  ASSERT_NE(start, std::string::npos);
  const size_t end = doc.find("```", start + 8);
  ASSERT_NE(end, std::string::npos);
  const Policy p = Must(Policy::Parse(doc.substr(start + 8, end - start - 8), "attestation.md"));
  const Bytes q = ReadBytes(testing::kDcapQuote);
  const Collateral c = Load(testing::kDcapCollateral);
  EXPECT_TRUE(Must(VerifyQuote(q, c, p, testing::DcapTime(), std::nullopt)).accepted);
  // The age rule: the TCB Info is 11 days old at DcapTime().
  Policy tight = p;
  tight.max_collateral_age_seconds = 10 * 86400;
  const Verification old = Must(VerifyQuote(q, c, tight, testing::DcapTime(), std::nullopt));
  EXPECT_FALSE(old.accepted);
  ASSERT_EQ(old.reasons.size(), 1u);
  EXPECT_TRUE(Contains(old.reasons[0], "collateral is ")) << old.reasons[0];
  // Another TD (the v5 sample) is refused for its MRTD and RTMR1.
  const Verification other =
      Must(VerifyQuote(ReadBytes(testing::kGoV5Quote), Load(testing::kGoV5Collateral), p,
                       testing::GoV5Time(), std::nullopt));
  EXPECT_FALSE(other.accepted);
  EXPECT_TRUE(AnyReason(other, "MRTD 7348651a"));
  EXPECT_TRUE(AnyReason(other, "RTMR1 "));
}

TEST(VerificationToJson, CarriesVerdictMeasurementsAndReasons) {
  const Verification v =
      Must(VerifyQuote(ReadBytes(testing::kTrusteeQuote6), Load(testing::kTrusteeCollateral),
                       Policy::Default(), testing::TrusteeTime(), std::nullopt));
  const auto j = nlohmann::json::parse(VerificationToJson(v));
  EXPECT_EQ(j["verdict"], "rejected");
  EXPECT_EQ(j["tcb_status"], "OutOfDate");
  EXPECT_EQ(j["reasons"].size(), 2u);
  EXPECT_EQ(j["pck_crl_checked"], false);
  EXPECT_EQ(j["fmspc"], "00a06d080000");
  EXPECT_EQ(j["measurements"]["mr_td"],
            "21e8dead92d6c69d7cbba79816686c03a48485c7df0c11f6f04792d5e1d378f6b8c46615ba6946adccac6"
            "becffbb1e88");
  EXPECT_EQ(j["debug"], false);
  EXPECT_TRUE(j["advisory_ids"].is_array());
  EXPECT_EQ(j["notes"].size(), v.dcap.notes.size());
}

}  // namespace
}  // namespace cce::attest
