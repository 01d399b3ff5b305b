// The simulated TEE: what CreateSimulatedTee writes, and that its quotes go
// through the real verifier exactly like Intel's, but are accepted only with
// the simulation root configured AND a policy that allows simulation. The
// default anchors (Intel only, what `cce attest verify` uses) refuse them.
#include "attest/sim.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "attest/attest.h"
#include "attest/test_util.h"
#include "base/temp_dir_testing.h"

namespace cce::attest {
namespace {

using crypto::Bytes;
using testing::Contains;
using testing::Must;

constexpr int64_t kNow = 1'750'000'000;  // 2025-06-15T15:06:40Z, injected
constexpr int64_t kValidity = 30 * 86400;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ReportData Rd(uint8_t seed) {
  ReportData r{};
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<uint8_t>(seed + i);
  return r;
}

Policy AllowSimulated() {
  Policy p;
  p.allow_simulated = true;
  return p;
}

bool AnyReason(const Verification& v, const std::string& needle) {
  for (const std::string& r : v.reasons) {
    if (Contains(r, needle)) return true;
  }
  return false;
}

std::string Reasons(const Verification& v) {
  std::string s;
  for (const std::string& r : v.reasons) s += r + "\n";
  return s;
}

// One simulated TEE per test (each test makes its own keys).
class SimulatedTee : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/sim";
    ASSERT_TRUE(CreateSimulatedTee(dir_, kNow, kValidity).ok());
    collateral_ = Must(Collateral::LoadDir(dir_ + "/collateral"));
    auto root = Must(crypto::ParseCertificatesPem(ReadAll(dir_ + "/root.crt")));
    ASSERT_EQ(root.size(), 1u);
    anchors_ = IntelTrustAnchors();
    anchors_.simulation_roots.push_back(root.at(0));
  }

  Bytes Quote(const ReportData& rd, const SimulatedTd& td = {}) const {
    return Must(BuildSimulatedQuote(dir_, rd, td));
  }

  StatusOr<Verification> Verify(const Bytes& quote, const Policy& policy, int64_t at,
                                const ReportData& expected) const {
    return VerifyQuote(quote, *collateral_, policy, at, crypto::ByteSpan(expected), anchors_);
  }

  ::cce::testing::TempDir tmp_{"attest-sim"};
  std::string dir_;
  std::optional<Collateral> collateral_;
  TrustAnchors anchors_ = IntelTrustAnchors();
};

TEST_F(SimulatedTee, WritesTheDocumentedFilesWithThePckKeyPrivate) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
    names.insert(std::filesystem::relative(e.path(), dir_).string());
  }
  const std::set<std::string> want = {"root.crt",
                                      "pck_chain.pem",
                                      "pck.key",
                                      "collateral",
                                      "collateral/tcb_info.json",
                                      "collateral/qe_identity.json",
                                      "collateral/tcb_info_issuer_chain.pem",
                                      "collateral/root_ca_crl.der",
                                      "collateral/pck_crl.der",
                                      "collateral/pck_crl_issuer_chain.pem"};
  EXPECT_EQ(names, want);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/pck.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const auto chain = Must(crypto::ParseCertificatesPem(ReadAll(dir_ + "/pck_chain.pem")));
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[2].subject(), "CN=" + std::string(kSimRootCommonName));
  EXPECT_EQ(chain[2].der(), anchors_.simulation_roots[0].der());
  EXPECT_TRUE(Contains(chain[0].subject(), "SIMULATED SGX PCK Certificate - NOT INTEL"));
  EXPECT_TRUE(Contains(chain[1].subject(), "SIMULATED SGX PCK Platform CA - NOT INTEL"));
  EXPECT_EQ(chain[0].not_before(), kNow);
  EXPECT_EQ(chain[0].not_after(), kNow + kValidity);
  const PckExtensions pck = Must(ParsePckExtensions(chain[0].der()));
  EXPECT_EQ(pck.fmspc, kSimFmspc);
  EXPECT_EQ(collateral_->tcb_info.fmspc, kSimFmspc);
  EXPECT_EQ(pck.pce_id, collateral_->tcb_info.pce_id);
  EXPECT_EQ(collateral_->tcb_info.issue_date, kNow);
  EXPECT_EQ(collateral_->tcb_info.next_update, kNow + kValidity);
  EXPECT_EQ(collateral_->qe_identity.next_update, kNow + kValidity);
  EXPECT_EQ(collateral_->root_ca_crl.at(0).next_update(), kNow + kValidity);
  ASSERT_EQ(collateral_->pck_crl.size(), 1u);
  EXPECT_EQ(collateral_->pck_crl[0].issuer(), chain[1].subject());
  EXPECT_TRUE(Contains(collateral_->tcb_info_issuer_chain.at(0).subject(), "SGX TCB Signing"));
  EXPECT_TRUE(VerifyCollateral(*collateral_, anchors_, kNow).value().simulated);
}

TEST_F(SimulatedTee, RefusesToOverwriteAnExistingDirectoryAndLeavesNothingOnFailure) {
  const std::string before = ReadAll(dir_ + "/root.crt");
  const Status again = CreateSimulatedTee(dir_, kNow, kValidity);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(Contains(again.message(), "refusing to overwrite")) << again.message();
  EXPECT_EQ(ReadAll(dir_ + "/root.crt"), before);

  EXPECT_FALSE(CreateSimulatedTee(tmp_.path() + "/no/such/parent", kNow, kValidity).ok());
  EXPECT_EQ(CreateSimulatedTee(tmp_.path() + "/zero", kNow, 0).code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/zero"));
}

TEST_F(SimulatedTee, QuoteHasTheRealLayout) {
  const SimulatedTd td;
  const Bytes bytes = Quote(Rd(7), td);
  const attest::Quote q = Must(ParseQuote(bytes));
  EXPECT_EQ(q.header.version, kQuoteVersion4);
  EXPECT_EQ(q.header.qe_vendor_id, kIntelQeVendorId);
  EXPECT_EQ(q.body_type, kBodyTypeTdx10);
  EXPECT_EQ(q.trailing_bytes, 0u);
  EXPECT_EQ(q.quote_length, bytes.size());
  EXPECT_EQ(q.body.report_data, Rd(7));
  EXPECT_EQ(q.body.mr_td, SimulatedMeasurement("cce4long simulated TD"));
  EXPECT_EQ(q.body.mr_td, td.mrtd);
  EXPECT_EQ(q.body.rtmr[3], td.rtmr[3]);
  EXPECT_EQ(q.body.TdAttributes(), td.td_attributes);
  EXPECT_EQ(q.body.TdAttributes() & kTdAttributeDebug, 0u);
  EXPECT_EQ(q.qe_auth_data.size(), 32u);
  EXPECT_EQ(q.pck_chain_pem, ReadAll(dir_ + "/pck_chain.pem") + std::string(1, '\0'));
  EXPECT_TRUE(Contains(std::string(q.header.user_data.begin(), q.header.user_data.end()),
                       "CCE4LONG SIMULATED"));
  // A fresh attestation key per quote.
  const attest::Quote other = Must(ParseQuote(Quote(Rd(7), td)));
  EXPECT_NE(q.attestation_key, other.attestation_key);
}

TEST_F(SimulatedTee, AcceptedOnlyWithTheSimRootAndAllowSimulated) {
  const Bytes quote = Quote(Rd(1));
  const Verification v = Must(Verify(quote, AllowSimulated(), kNow + 60, Rd(1)));
  EXPECT_TRUE(v.accepted) << Reasons(v);
  EXPECT_TRUE(v.dcap.simulated);
  EXPECT_EQ(v.dcap.tcb.status, TcbStatus::kUpToDate);
  EXPECT_EQ(v.dcap.pck_crl, PckCrlStatus::kChecked);
  EXPECT_EQ(v.dcap.pck.fmspc, kSimFmspc);
  EXPECT_EQ(v.dcap.tcb.tdx_module_identity_id, "TDX_01");
  EXPECT_EQ(nlohmann::json::parse(VerificationToJson(v)).at("simulated"), true);

  // REPORTDATA is checked: another expected value is a reason.
  const Verification wrong_rd = Must(Verify(quote, AllowSimulated(), kNow + 60, Rd(2)));
  EXPECT_FALSE(wrong_rd.accepted);
  EXPECT_TRUE(AnyReason(wrong_rd, "REPORTDATA")) << Reasons(wrong_rd);
}

TEST_F(SimulatedTee, DefaultPolicyRejectsNamingSimulation) {
  const Verification v = Must(Verify(Quote(Rd(1)), Policy::Default(), kNow + 60, Rd(1)));
  EXPECT_FALSE(v.accepted);
  EXPECT_TRUE(v.dcap.simulated);
  ASSERT_EQ(v.reasons.size(), 1u) << Reasons(v);
  EXPECT_TRUE(Contains(v.reasons[0], "simulated TEE")) << v.reasons[0];
}

// `cce attest verify` passes no anchors: IntelTrustAnchors(). A simulated
// quote must then be refused outright, even under a policy allowing simulation.
TEST_F(SimulatedTee, IntelAnchorsAloneRefuseASimulatedQuote) {
  auto r = VerifyQuote(Quote(Rd(1)), *collateral_, AllowSimulated(), kNow + 60,
                       crypto::ByteSpan(Rd(1)), IntelTrustAnchors());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(r.status().message(), "not the pinned Intel SGX Root CA"))
      << r.status().message();
  // The same through the default argument.
  EXPECT_FALSE(
      VerifyQuote(Quote(Rd(1)), *collateral_, AllowSimulated(), kNow + 60, crypto::ByteSpan(Rd(1)))
          .ok());
}

TEST_F(SimulatedTee, RealIntelQuoteIsStillRealWithTheSimRootConfigured) {
  const Bytes real = testing::ReadBytes(testing::kDcapQuote);
  const Collateral real_collateral =
      Must(Collateral::LoadDir(testing::TdxDataPath(testing::kDcapCollateral)));
  const attest::Quote parsed = Must(ParseQuote(real));
  const Verification v =
      Must(VerifyQuote(real, real_collateral, AllowSimulated(), testing::DcapTime(),
                       crypto::ByteSpan(parsed.body.report_data), anchors_));
  EXPECT_FALSE(v.dcap.simulated);
  EXPECT_TRUE(v.accepted) << Reasons(v);

  // Mixing is refused both ways: a real quote with simulated collateral, a
  // simulated quote with Intel's collateral.
  EXPECT_FALSE(
      VerifyQuote(real, *collateral_, AllowSimulated(), kNow + 60, std::nullopt, anchors_).ok());
  EXPECT_FALSE(VerifyQuote(Quote(Rd(1)), real_collateral, AllowSimulated(), testing::DcapTime(),
                           std::nullopt, anchors_)
                   .ok());
}

TEST_F(SimulatedTee, QuoteFromAnotherSimulatedTeeIsRefusedWithThisCollateral) {
  const std::string other_dir = tmp_.path() + "/other";
  ASSERT_TRUE(CreateSimulatedTee(other_dir, kNow, kValidity).ok());
  const Bytes other_quote = Must(BuildSimulatedQuote(other_dir, Rd(1), {}));
  // Trusting only this TEE's root: the other root is unknown.
  EXPECT_FALSE(Verify(other_quote, AllowSimulated(), kNow + 60, Rd(1)).ok());
  // Trusting both roots: the quote's chain and the collateral end at
  // different (same-named) roots, which must not verify either.
  TrustAnchors both = anchors_;
  both.simulation_roots.push_back(
      Must(crypto::ParseCertificatesPem(ReadAll(other_dir + "/root.crt"))).at(0));
  auto mixed = VerifyQuote(other_quote, *collateral_, AllowSimulated(), kNow + 60,
                           crypto::ByteSpan(Rd(1)), both);
  ASSERT_FALSE(mixed.ok());
  // Refused by the root comparison itself, not by an accident of CRL lookup.
  EXPECT_NE(mixed.status().message().find("different roots"), std::string::npos)
      << mixed.status().message();
}

TEST_F(SimulatedTee, DebugTdIsRejected) {
  SimulatedTd td;
  td.td_attributes |= kTdAttributeDebug;
  const Verification v = Must(Verify(Quote(Rd(1), td), AllowSimulated(), kNow + 60, Rd(1)));
  EXPECT_FALSE(v.accepted);
  EXPECT_TRUE(AnyReason(v, "DEBUG")) << Reasons(v);
}

TEST_F(SimulatedTee, PolicyMeasurementsApplyToSimulatedTds) {
  Policy p = AllowSimulated();
  p.mrtd = std::vector<Measurement>{SimulatedTd{}.mrtd};
  EXPECT_TRUE(Must(Verify(Quote(Rd(1)), p, kNow + 60, Rd(1))).accepted);
  SimulatedTd other;
  other.mrtd = SimulatedMeasurement("another image");
  const Verification v = Must(Verify(Quote(Rd(1), other), p, kNow + 60, Rd(1)));
  EXPECT_FALSE(v.accepted);
  EXPECT_TRUE(AnyReason(v, "MRTD")) << Reasons(v);
}

TEST_F(SimulatedTee, TcbStatusFollowsTheSimulatedLevels) {
  SimulatedTd older;
  older.tee_tcb_svn[2] = 2;  // meets only the second (OutOfDate) level
  const Verification out_of_date =
      Must(Verify(Quote(Rd(1), older), AllowSimulated(), kNow + 60, Rd(1)));
  EXPECT_EQ(out_of_date.dcap.tcb.status, TcbStatus::kOutOfDate);
  EXPECT_FALSE(out_of_date.accepted);
  EXPECT_TRUE(AnyReason(out_of_date, "CCE4LONG-SIM-0001")) << Reasons(out_of_date);

  SimulatedTd oldest;
  oldest.tee_tcb_svn[2] = 1;  // below every level
  EXPECT_EQ(Must(Verify(Quote(Rd(1), oldest), AllowSimulated(), kNow + 60, Rd(1))).dcap.tcb.status,
            TcbStatus::kNotSupported);
}

TEST_F(SimulatedTee, OnlyValidInsideItsWindow) {
  const Bytes quote = Quote(Rd(1));
  EXPECT_TRUE(Must(Verify(quote, AllowSimulated(), kNow, Rd(1))).accepted);
  EXPECT_TRUE(Must(Verify(quote, AllowSimulated(), kNow + kValidity - 1, Rd(1))).accepted);
  for (int64_t at : {kNow - 1, kNow + kValidity, kNow + 2 * kValidity}) {
    auto r = Verify(quote, AllowSimulated(), at, Rd(1));
    ASSERT_FALSE(r.ok()) << at;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().message();
  }
}

// Every byte of the header and TD report (all signed) and every 7th byte of
// the signature data, flipped one at a time: never accepted.
TEST_F(SimulatedTee, FlippedBytesAreNeverAccepted) {
  const Bytes quote = Quote(Rd(1));
  std::vector<size_t> positions;
  for (size_t i = 0; i < kHeaderSize + kTdReport10Size; ++i) positions.push_back(i);
  for (size_t i = kHeaderSize + kTdReport10Size; i < quote.size(); i += 7) positions.push_back(i);
  positions.push_back(quote.size() - 1);  // the NUL after the PCK chain
  size_t checked = 0;
  for (size_t i : positions) {
    Bytes tampered = quote;
    tampered[i] ^= 0x01;
    auto r = Verify(tampered, AllowSimulated(), kNow + 60, Rd(1));
    EXPECT_TRUE(!r.ok() || !r->accepted) << "flipped byte " << i << " was accepted";
    ++checked;
  }
  EXPECT_GT(checked, 1000u);
}

TEST_F(SimulatedTee, PckKeyReadableByOthersOrMissingIsAnError) {
  const std::string key = dir_ + "/pck.key";
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  auto open = BuildSimulatedQuote(dir_, Rd(1), {});
  EXPECT_EQ(open.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(open.status().message(), "0644")) << open.status().message();
  std::filesystem::remove(key);
  auto missing = BuildSimulatedQuote(dir_, Rd(1), {});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status().message(), "pck.key")) << missing.status().message();
  EXPECT_FALSE(BuildSimulatedQuote(tmp_.path() + "/none", Rd(1), {}).ok());
}

// One quoter is one boot: its quotes share the attestation key and the QE
// report (signed once), differ in what the TD reports, and each verifies as
// a BuildSimulatedQuote quote does; another quoter is another boot.
TEST_F(SimulatedTee, QuoterQuotesShareOneBootsAttestationKeyAndVerify) {
  const SimulatedQuoter quoter = Must(SimulatedQuoter::Create(dir_));
  const Bytes a = Must(quoter.Quote(Rd(1)));
  const Bytes b = Must(quoter.Quote(Rd(2)));
  const attest::Quote qa = Must(ParseQuote(a));
  const attest::Quote qb = Must(ParseQuote(b));
  EXPECT_EQ(qa.attestation_key, qb.attestation_key);
  EXPECT_EQ(qa.qe_report_signature, qb.qe_report_signature);
  EXPECT_EQ(qa.body.report_data, Rd(1));
  EXPECT_EQ(qb.body.report_data, Rd(2));
  EXPECT_EQ(a.size(), Quote(Rd(1)).size());  // the same layout
  for (const auto& [quote, rd] : {std::pair{a, Rd(1)}, std::pair{b, Rd(2)}}) {
    auto v = Must(Verify(quote, AllowSimulated(), kNow + 60, rd));
    EXPECT_TRUE(v.accepted);
    EXPECT_TRUE(v.dcap.simulated);
  }
  // Bound to its report data: quote a does not pass for b's.
  auto wrong = Verify(a, AllowSimulated(), kNow + 60, Rd(2));
  EXPECT_TRUE(!wrong.ok() || !wrong->accepted);
  const SimulatedQuoter reboot = Must(SimulatedQuoter::Create(dir_));
  EXPECT_NE(Must(ParseQuote(Must(reboot.Quote(Rd(1))))).attestation_key, qa.attestation_key);
  EXPECT_FALSE(SimulatedQuoter::Create(tmp_.path() + "/none").ok());
}

}  // namespace
}  // namespace cce::attest
