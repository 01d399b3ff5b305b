// Tests for the TCB level matching on small synthetic TCB Infos, one rule of
// Intel's algorithm per test (the real vectors are in verify_test.cc).
#include "attest/tcb.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "attest/test_util.h"

namespace cce::attest {
namespace {

using testing::Contains;
using testing::Must;

std::array<uint8_t, 16> Fill(uint8_t v) {
  std::array<uint8_t, 16> a{};
  a.fill(v);
  return a;
}

std::array<uint8_t, 16> Tdx(uint8_t c0, uint8_t c1, uint8_t c2) {
  std::array<uint8_t, 16> a{};
  a[0] = c0;
  a[1] = c1;
  a[2] = c2;
  return a;
}

TcbLevel Level(uint8_t sgx, uint16_t pcesvn, std::array<uint8_t, 16> tdx, TcbLevelStatus s,
               std::vector<std::string> advisories = {}) {
  TcbLevel l;
  l.sgx_components = Fill(sgx);
  l.pce_svn = pcesvn;
  l.tdx_components = tdx;
  l.status = s;
  l.advisory_ids = std::move(advisories);
  return l;
}

IdentityTcbLevel IdLevel(uint16_t svn, TcbLevelStatus s, std::vector<std::string> adv = {}) {
  IdentityTcbLevel l;
  l.isv_svn = svn;
  l.status = s;
  l.advisory_ids = std::move(adv);
  return l;
}

struct Fixture {
  TcbInfo info;
  PckExtensions pck;
  Quote quote;
  QeIdentityResult qe;

  Fixture() {
    info.id = "TDX";
    info.version = 3;
    info.fmspc = {0x90, 0xc0, 0x6f, 0, 0, 0};
    info.tdx_module_attributes_mask.fill(0xff);
    TdxModuleIdentity m;
    m.id = "TDX_03";
    m.attributes_mask.fill(0xff);
    m.tcb_levels = {IdLevel(3, TcbLevelStatus::kUpToDate),
                    IdLevel(2, TcbLevelStatus::kOutOfDate, {"INTEL-SA-1"})};
    info.tdx_module_identities.push_back(m);
    info.tcb_levels = {
        Level(2, 13, Tdx(0, 0, 3), TcbLevelStatus::kUpToDate),
        Level(1, 13, Tdx(0, 0, 2), TcbLevelStatus::kOutOfDate, {"INTEL-SA-1", "INTEL-SA-2"}),
        Level(1, 5, Tdx(0, 0, 1), TcbLevelStatus::kOutOfDate, {"INTEL-SA-3"}),
    };
    pck.fmspc = info.fmspc;
    pck.sgx_tcb_components = Fill(2);
    pck.pce_svn = 13;
    quote.header.version = 4;
    quote.body.tee_tcb_svn = Tdx(3, 3, 3);  // module SVN 3, module version 3 (TDX_03)
    qe.status = TcbStatus::kUpToDate;
    qe.level_index = 0;
  }

  TcbEvaluation Eval() const { return Must(EvaluateTcb(info, pck, quote, qe)); }
  Status Error() const {
    auto r = EvaluateTcb(info, pck, quote, qe);
    EXPECT_FALSE(r.ok());
    return r.ok() ? Status::Ok() : r.status();
  }
};

TEST(EvaluateTcb, NewestLevelTheTdMeetsIsUpToDate) {
  Fixture f;
  const TcbEvaluation e = f.Eval();
  EXPECT_EQ(e.status, TcbStatus::kUpToDate);
  EXPECT_EQ(e.sgx_level_index, 0u);
  EXPECT_EQ(e.tdx_level_index, 0u);
  EXPECT_EQ(e.tdx_module_status, TcbStatus::kUpToDate);
  EXPECT_EQ(e.tdx_module_identity_id, "TDX_03");
  EXPECT_TRUE(e.advisory_ids.empty());
}

TEST(EvaluateTcb, ModuleSvnAndVersionAreSkippedOnlyWithAModuleIdentity) {
  Fixture f;
  f.info.tcb_levels[0].tdx_components[0] = 9;  // above the TD's module SVN (3)
  f.info.tcb_levels[0].tdx_components[1] = 9;
  // TEE_TCB_SVN[1] = 3 > 0: comparison starts at index 2, so level 0 still matches.
  EXPECT_EQ(f.Eval().status, TcbStatus::kUpToDate);
  // TEE_TCB_SVN[1] = 0 (TDX 1.0 module): all 16 are compared; level 1 matches.
  f.quote.body.tee_tcb_svn[1] = 0;
  const TcbEvaluation e = f.Eval();
  EXPECT_EQ(e.status, TcbStatus::kOutOfDate);
  EXPECT_EQ(e.sgx_level_index, 0u);
  EXPECT_EQ(e.tdx_level_index, 1u);
  EXPECT_FALSE(e.tdx_module_status.has_value());  // no module identity check for version 0
  EXPECT_EQ(e.advisory_ids, (std::vector<std::string>{"INTEL-SA-1", "INTEL-SA-2"}));
}

TEST(EvaluateTcb, OutOfDateModuleMakesAnUpToDateLevelOutOfDate) {
  Fixture f;
  f.quote.body.tee_tcb_svn[0] = 2;
  const TcbEvaluation e = f.Eval();
  EXPECT_EQ(e.status, TcbStatus::kOutOfDate);
  EXPECT_EQ(e.tdx_module_status, TcbStatus::kOutOfDate);
  EXPECT_EQ(e.advisory_ids, std::vector<std::string>{"INTEL-SA-1"});
  // With a ConfigurationNeeded level it becomes OutOfDateConfigurationNeeded.
  f.info.tcb_levels[0].status = TcbLevelStatus::kConfigurationNeeded;
  EXPECT_EQ(f.Eval().status, TcbStatus::kOutOfDateConfigurationNeeded);
  // A revoked module revokes.
  f.info.tdx_module_identities[0].tcb_levels[1].status = TcbLevelStatus::kRevoked;
  EXPECT_EQ(f.Eval().status, TcbStatus::kRevoked);
}

TEST(EvaluateTcb, ModuleBelowEveryModuleLevelIsNotSupported) {
  Fixture f;
  f.quote.body.tee_tcb_svn[0] = 1;
  const TcbEvaluation e = f.Eval();
  EXPECT_EQ(e.status, TcbStatus::kNotSupported);
  EXPECT_EQ(e.tdx_module_status, TcbStatus::kNotSupported);
}

TEST(EvaluateTcb, MissingModuleIdentityIsAMismatchError) {
  Fixture f;
  f.quote.body.tee_tcb_svn[1] = 5;
  const Status s = f.Error();
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(s.message(), "has no TDX_05 module identity")) << s.message();
  // Ids compare case-insensitively.
  f.info.tdx_module_identities[0].id = "tdx_05";
  EXPECT_EQ(f.Eval().tdx_module_identity_id, "tdx_05");
}

TEST(EvaluateTcb, PceSvnAndSgxComponentsSelectTheLevel) {
  Fixture f;
  f.pck.pce_svn = 12;  // below levels 0 and 1
  TcbEvaluation e = f.Eval();
  EXPECT_EQ(e.tdx_level_index, 2u);
  EXPECT_EQ(e.status, TcbStatus::kOutOfDate);
  EXPECT_EQ(e.advisory_ids, std::vector<std::string>{"INTEL-SA-3"});

  f.pck.pce_svn = 13;
  f.pck.sgx_tcb_components[15] = 1;  // one component below level 0
  EXPECT_EQ(f.Eval().sgx_level_index, 1u);

  f.pck.sgx_tcb_components[7] = 0;  // below every level
  e = f.Eval();
  EXPECT_EQ(e.status, TcbStatus::kNotSupported);
  EXPECT_FALSE(e.sgx_level_index.has_value());
  ASSERT_FALSE(e.notes.empty());
  EXPECT_TRUE(Contains(e.notes[0], "no TCB level matches the platform"));
}

TEST(EvaluateTcb, TdxComponentsBelowEveryLevelIsNotSupported) {
  Fixture f;
  f.quote.body.tee_tcb_svn[2] = 0;
  const TcbEvaluation e = f.Eval();
  EXPECT_EQ(e.status, TcbStatus::kNotSupported);
  EXPECT_EQ(e.sgx_level_index, 0u);
  EXPECT_FALSE(e.tdx_level_index.has_value());
}

TEST(EvaluateTcb, QeStatusConverges) {
  Fixture f;
  f.qe.status = TcbStatus::kOutOfDate;
  f.qe.advisory_ids = {"INTEL-SA-QE"};
  TcbEvaluation e = f.Eval();
  EXPECT_EQ(e.status, TcbStatus::kOutOfDate);
  EXPECT_EQ(e.advisory_ids, std::vector<std::string>{"INTEL-SA-QE"});
  f.info.tcb_levels[0].status = TcbLevelStatus::kConfigurationAndSWHardeningNeeded;
  EXPECT_EQ(f.Eval().status, TcbStatus::kOutOfDateConfigurationNeeded);
  f.qe.status = TcbStatus::kRevoked;
  EXPECT_EQ(f.Eval().status, TcbStatus::kRevoked);
  f.qe.status = TcbStatus::kNotSupported;
  f.qe.level_index.reset();
  EXPECT_EQ(f.Eval().status, TcbStatus::kNotSupported);
  f.qe.status = TcbStatus::kUpToDate;
  EXPECT_EQ(f.Eval().status, TcbStatus::kConfigurationAndSWHardeningNeeded);
}

TEST(EvaluateTcb, PlatformAndModuleMismatchesAreErrors) {
  Fixture f;
  f.pck.fmspc[5] = 1;
  Status s = f.Error();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "TCB Info is for FMSPC 90c06f000000 but the PCK certificate's FMSPC is 90c06f000001");
  f = Fixture();
  f.pck.pce_id = {0, 1};
  EXPECT_EQ(f.Error().code(), StatusCode::kFailedPrecondition);
  f = Fixture();
  f.quote.body.mr_signer_seam[0] = 1;
  s = f.Error();
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(s.message(), "MRSIGNERSEAM")) << s.message();
  f = Fixture();
  f.quote.body.seam_attributes[7] = 0x80;
  EXPECT_TRUE(Contains(f.Error().message(), "SEAMATTRIBUTES"));
}

TEST(EvaluateTcb, Tdx15TdWithUpdatedModuleIsAdvisedToRelaunch) {
  Fixture f;
  f.quote.body_type = kBodyTypeTdx15;
  f.quote.body.tee_tcb_svn[0] = 2;           // launched on an out-of-date module
  f.quote.body.tee_tcb_svn2 = Tdx(3, 3, 3);  // the module now running is current
  EXPECT_EQ(f.Eval().status, TcbStatus::kTdRelaunchAdvised);
  f.info.tcb_levels[0].status = TcbLevelStatus::kConfigurationNeeded;
  EXPECT_EQ(f.Eval().status, TcbStatus::kTdRelaunchAdvisedConfigurationNeeded);
  f.info.tcb_levels[0].status = TcbLevelStatus::kUpToDate;
  f.quote.body.tee_tcb_svn2 = Tdx(2, 3, 3);  // still out of date: no relaunch advice
  EXPECT_EQ(f.Eval().status, TcbStatus::kOutOfDate);
}

TEST(CheckQeIdentity, MatchesFieldsThenPicksHighestLevelMet) {
  QeIdentity id;
  id.mrsigner.fill(0xdc);
  id.isv_prod_id = 2;
  id.miscselect_mask = 0xffffffff;
  id.attributes = {0x11};
  id.attributes_mask = {0xfb, 0xff};
  // Deliberately not sorted.
  id.tcb_levels = {IdLevel(4, TcbLevelStatus::kOutOfDate, {"INTEL-SA-4"}),
                   IdLevel(8, TcbLevelStatus::kUpToDate), IdLevel(2, TcbLevelStatus::kRevoked)};
  EnclaveReport qe;
  qe.mr_signer = id.mrsigner;
  qe.isv_prod_id = 2;
  qe.attributes = {0x15};  // bit 2 is outside the mask
  qe.isv_svn = 9;
  EXPECT_EQ(Must(CheckQeIdentity(id, qe)).status, TcbStatus::kUpToDate);
  qe.isv_svn = 7;
  QeIdentityResult r = Must(CheckQeIdentity(id, qe));
  EXPECT_EQ(r.status, TcbStatus::kOutOfDate);
  EXPECT_EQ(r.advisory_ids, std::vector<std::string>{"INTEL-SA-4"});
  qe.isv_svn = 2;
  EXPECT_EQ(Must(CheckQeIdentity(id, qe)).status, TcbStatus::kRevoked);
  qe.isv_svn = 1;
  EXPECT_EQ(Must(CheckQeIdentity(id, qe)).status, TcbStatus::kNotSupported);

  EnclaveReport bad = qe;
  bad.mr_signer[0] = 0;
  auto e = CheckQeIdentity(id, bad);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(e.status().message(), "MRSIGNER"));
  bad = qe;
  bad.isv_prod_id = 1;
  EXPECT_TRUE(Contains(CheckQeIdentity(id, bad).status().message(), "ISVPRODID"));
  bad = qe;
  bad.attributes[0] = 0x10;
  EXPECT_TRUE(Contains(CheckQeIdentity(id, bad).status().message(), "ATTRIBUTES"));
  bad = qe;
  id.miscselect = 1;
  EXPECT_TRUE(Contains(CheckQeIdentity(id, bad).status().message(), "MISCSELECT"));
}

TEST(TcbStatusNames, RoundTrip) {
  for (TcbStatus s : AllTcbStatuses()) {
    EXPECT_EQ(TcbStatusFromName(TcbStatusName(s)), s);
  }
  EXPECT_FALSE(TcbStatusFromName("uptodate").has_value());
}

}  // namespace
}  // namespace cce::attest
