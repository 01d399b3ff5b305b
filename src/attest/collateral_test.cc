// Tests for the collateral loaders: both offline layouts, the exact signed
// bytes, and the structural errors (each naming the file and field).
#include "attest/collateral.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "attest/test_util.h"
#include "base/temp_dir_testing.h"

namespace cce::attest {
namespace {

using crypto::ToHex;
using testing::Contains;
using testing::Must;
using testing::ReadText;
using testing::T;
using testing::TdxDataPath;

std::string LoadError(const std::string& path) {
  auto c = Collateral::LoadDir(path);
  EXPECT_FALSE(c.ok()) << path;
  return c.ok() ? "" : c.status().message();
}

// A temporary directory to load collateral from.
class CollateralDir : public ::cce::testing::TempDir {
 public:
  CollateralDir() : ::cce::testing::TempDir("attest-collateral") {}
  void Write(const std::string& name, const std::string& data) const {
    std::ofstream out(path() + "/" + name, std::ios::binary);
    out << data;
  }
  // A copy of a collateral set from tests/data/tdx.
  void CopySet(const std::string& relative) const {
    for (const char* name : {"tcb_info.json", "qe_identity.json", "tcb_info_issuer_chain.pem",
                             "qe_identity_issuer_chain.pem", "root_ca_crl.der", "pck_crl.der",
                             "pck_crl_issuer_chain.pem"}) {
      std::ifstream in(TdxDataPath(relative + "/" + name), std::ios::binary);
      if (!in.good()) continue;
      std::stringstream ss;
      ss << in.rdbuf();
      Write(name, ss.str());
    }
  }
};

TEST(Collateral, LoadsDcapQvlJsonFile) {
  const Collateral c = Must(Collateral::LoadDir(TdxDataPath(testing::kDcapCollateral)));
  EXPECT_EQ(c.tcb_info.id, "TDX");
  EXPECT_EQ(c.tcb_info.version, 3u);
  EXPECT_EQ(ToHex(c.tcb_info.fmspc), "b0c06f000000");
  EXPECT_EQ(c.tcb_info.tcb_evaluation_data_number, 17u);
  EXPECT_EQ(c.tcb_info.issue_date, T("2025-06-19T10:16:03Z"));
  EXPECT_EQ(c.tcb_info.next_update, T("2025-07-19T10:16:03Z"));
  EXPECT_FALSE(c.tcb_info.tcb_levels.empty());
  EXPECT_FALSE(c.tcb_info.tdx_module_identities.empty());
  EXPECT_EQ(c.qe_identity.id, "TD_QE");
  EXPECT_EQ(c.qe_identity.isv_prod_id, 2);
  EXPECT_EQ(ToHex(c.qe_identity.mrsigner),
            "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5");
  EXPECT_EQ(c.qe_identity.miscselect_mask, 0xffffffffu);
  ASSERT_EQ(c.root_ca_crl.size(), 1u);
  EXPECT_TRUE(Contains(c.root_ca_crl[0].issuer(), "CN=Intel SGX Root CA"));
  ASSERT_EQ(c.pck_crl.size(), 1u);
  EXPECT_TRUE(Contains(c.pck_crl[0].issuer(), "CN=Intel SGX PCK Platform CA"));
  ASSERT_EQ(c.tcb_info_issuer_chain.size(), 2u);
  EXPECT_TRUE(Contains(c.tcb_info_issuer_chain[0].subject(), "CN=Intel SGX TCB Signing"));
  // The signed bytes are the tcb_info string itself.
  EXPECT_TRUE(c.tcb_info_signed.body.starts_with("{\"id\":\"TDX\",\"version\":3,"));
}

TEST(Collateral, LoadsPcsDirectoryWithExactSignedBytes) {
  const Collateral c = Must(Collateral::LoadDir(TdxDataPath(testing::kGo2023Collateral)));
  EXPECT_EQ(ToHex(c.tcb_info.fmspc), "50806f000000");
  EXPECT_EQ(c.tcb_info.tcb_evaluation_data_number, 15u);
  EXPECT_EQ(c.qe_identity.tcb_levels.size(), 1u);
  EXPECT_EQ(c.qe_identity.tcb_levels[0].isv_svn, 4);
  EXPECT_EQ(c.pck_crl.size(), 1u);
  EXPECT_EQ(c.pck_crl_issuer_chain.size(), 2u);
  // No qe_identity_issuer_chain.pem: the TCB chain is used.
  EXPECT_EQ(c.qe_identity_issuer_chain.size(), c.tcb_info_issuer_chain.size());
  const std::string text = ReadText(std::string(testing::kGo2023Collateral) + "/tcb_info.json");
  // {"tcbInfo":<body>,"signature":"..."}: the body is the exact substring.
  ASSERT_TRUE(text.starts_with("{\"tcbInfo\":"));
  EXPECT_EQ(text.substr(11, c.tcb_info_signed.body.size()), c.tcb_info_signed.body);
  EXPECT_EQ(text[11 + c.tcb_info_signed.body.size()], ',');
}

TEST(Collateral, TrusteeSetHasNoPckCrl) {
  const Collateral c = Must(Collateral::LoadDir(TdxDataPath(testing::kTrusteeCollateral)));
  EXPECT_TRUE(c.pck_crl.empty());
  EXPECT_EQ(ToHex(c.tcb_info.fmspc), "00a06d080000");
  EXPECT_EQ(c.tcb_info.tdx_module_identities[0].id, "TDX_03");
}

TEST(SplitSignedJson, KeepsWhitespaceAndRejectsOtherShapes) {
  auto s =
      Must(SplitSignedJson(" { \"tcbInfo\" : {\"a\": [1, {\"b\":\"}\\\"\"}] } , \"signature\":\"" +
                               std::string(128, 'a') + "\" }",
                           "tcbInfo", "x.json"));
  EXPECT_EQ(s.body, "{\"a\": [1, {\"b\":\"}\\\"\"}] }");
  EXPECT_EQ(s.signature[0], 0xaa);

  const std::string sig = "\"signature\":\"" + std::string(128, '0') + "\"";
  auto r = SplitSignedJson("{\"tcbInfo\":{}," + sig + ",\"extra\":1}", "tcbInfo", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "x.json: unexpected top-level field 'extra'");
  r = SplitSignedJson("{\"tcbInfo\":{},\"tcbInfo\":{}," + sig + "}", "tcbInfo", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "x.json: duplicate key 'tcbInfo'");
  r = SplitSignedJson("{" + sig + "}", "tcbInfo", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "x.json: missing 'tcbInfo'");
  r = SplitSignedJson("{\"tcbInfo\":{},\"signature\":\"abcd\"}", "tcbInfo", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "x.json: signature: expected 128 hex digits"));
  r = SplitSignedJson("{\"tcbInfo\":{}", "tcbInfo", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "x.json: invalid JSON"));
}

TEST(ParseTcbInfo, ErrorsNameTheField) {
  const Collateral c = Must(Collateral::LoadDir(TdxDataPath(testing::kDcapCollateral)));
  const std::string body = c.tcb_info_signed.body;
  const auto error_after = [&](const std::string& from, const std::string& to) {
    std::string b = body;
    const size_t at = b.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at == std::string::npos) return std::string();
    b.replace(at, from.size(), to);
    auto r = ParseTcbInfo(b);
    EXPECT_FALSE(r.ok()) << from;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_EQ(error_after("\"fmspc\":\"B0C06F000000\",", ""), "tcbInfo.fmspc: missing");
  EXPECT_EQ(error_after("\"fmspc\":\"B0C06F000000\"", "\"fmspc\":\"B0C06F\""),
            "tcbInfo.fmspc: expected 12 hex digits");
  EXPECT_EQ(error_after("\"version\":3", "\"version\":2"),
            "tcbInfo.version: 2 is not supported (want 3)");
  EXPECT_EQ(error_after("\"id\":\"TDX\"", "\"id\":\"SGX\""), "tcbInfo.id: 'SGX' is not TDX");
  EXPECT_EQ(error_after("\"tcbStatus\":\"UpToDate\"", "\"tcbStatus\":\"Fine\""),
            "tcbInfo.tdxModuleIdentities[0].tcbLevels[0].tcbStatus: unknown TCB status 'Fine'");
  EXPECT_EQ(error_after("\"pcesvn\":", "\"pcesvn\":-"),
            "tcbInfo.tcbLevels[0].tcb.pcesvn: expected an integer in 0..65535");
  EXPECT_EQ(error_after("\"issueDate\":\"2025-06-19T10:16:03Z\"",
                        "\"issueDate\":\"2025-06-19T10:16:03Z\",\"issueDate\":\"x\""),
            "tcbInfo: duplicate key 'issueDate'");
  EXPECT_TRUE(Contains(error_after("\"issueDate\":\"2025-06-19T10:16:03Z\"",
                                   "\"issueDate\":\"2025-06-19 10:16:03\""),
                       "tcbInfo.issueDate: time '2025-06-19 10:16:03': malformed"));
}

TEST(ParseQeIdentity, ErrorsNameTheField) {
  const Collateral c = Must(Collateral::LoadDir(TdxDataPath(testing::kDcapCollateral)));
  std::string b = c.qe_identity_signed.body;
  b.replace(b.find("\"id\":\"TD_QE\""), 12, "\"id\":\"QE\"");
  auto r = ParseQeIdentity(b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "enclaveIdentity.id: 'QE' is not TD_QE");
  b = c.qe_identity_signed.body;
  b.replace(b.find("\"tcbStatus\":\"UpToDate\""), 22, "\"tcbStatus\":\"SWHardeningNeeded\"");
  r = ParseQeIdentity(b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "enclaveIdentity.tcbLevels[0].tcbStatus: unknown TCB status 'SWHardeningNeeded'");
}

TEST(Collateral, DcapQvlJsonErrors) {
  const std::string text = ReadText(testing::kDcapCollateral);
  auto r = Collateral::FromDcapQvlJson("{\"surprise\":1}", "c.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "c.json: unknown field 'surprise'");
  std::string b = text;
  b.replace(b.find("\"tcb_info_signature\""), 20, "\"tcb_info_sig\"");
  r = Collateral::FromDcapQvlJson(b, "c.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "c.json: unknown field 'tcb_info_sig'");
  b = text;
  b.replace(b.find("\"root_ca_crl\": \""), 16, "\"root_ca_crl\": \"zz");
  r = Collateral::FromDcapQvlJson(b, "c.json");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "c.json.root_ca_crl")) << r.status().message();
}

TEST(Collateral, PcsDirectoryRejectsUnknownFilesAndMissingOnes) {
  CollateralDir dir;
  dir.CopySet(testing::kGo2023Collateral);
  ASSERT_TRUE(Collateral::LoadDir(dir.path()).ok());
  dir.Write("pck-crl.der", "x");  // a typo must not silently drop the CRL
  EXPECT_TRUE(Contains(LoadError(dir.path()),
                       "pck-crl.der: unexpected file in a PCS collateral directory"));
  ASSERT_EQ(unlink((dir.path() + "/pck-crl.der").c_str()), 0);
  ASSERT_EQ(unlink((dir.path() + "/root_ca_crl.der").c_str()), 0);
  EXPECT_TRUE(Contains(LoadError(dir.path()), "root_ca_crl.der"));
  EXPECT_TRUE(Contains(LoadError(dir.path() + "/nope"), "no such file or directory"));
}

TEST(Collateral, DirectoryWithCollateralJsonIsDcapQvl) {
  CollateralDir dir;
  dir.Write("collateral.json", ReadText(testing::kDcapCollateral));
  const Collateral c = Must(Collateral::LoadDir(dir.path()));
  EXPECT_EQ(ToHex(c.tcb_info.fmspc), "b0c06f000000");
  dir.Write("tcb_info.json", "{}");
  EXPECT_TRUE(Contains(LoadError(dir.path()), "must hold nothing else"));
}

}  // namespace
}  // namespace cce::attest
