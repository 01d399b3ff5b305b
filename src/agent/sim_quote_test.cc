// The simulated quote provider end to end: a quote it returns verifies with
// the simulated TEE's root and collateral, under a policy allowing
// simulation, with the report data the agent asked for.
#include "agent/sim_quote.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "attest/attest.h"
#include "base/fd.h"

namespace cce::agent {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNow = 1'750'000'000;

class SimulatedProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (fs::temp_directory_path() / "cce-simq-XXXXXX").string();
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    tmp_ = t;
    sim_ = tmp_ + "/sim";
    ASSERT_TRUE(attest::CreateSimulatedTee(sim_, kNow, 86400).ok());
  }
  void TearDown() override { fs::remove_all(tmp_); }

  StatusOr<attest::Verification> Verify(const crypto::Bytes& quote, const ReportData& expected) {
    auto collateral = attest::Collateral::LoadDir(sim_ + "/collateral");
    EXPECT_TRUE(collateral.ok()) << collateral.status().ToString();
    auto root_pem = ReadFile(sim_ + "/root.crt", 1 << 16);
    EXPECT_TRUE(root_pem.ok());
    auto root = crypto::ParseCertificatesPem(*root_pem);
    EXPECT_TRUE(root.ok());
    attest::TrustAnchors anchors = attest::IntelTrustAnchors();
    anchors.simulation_roots.push_back(root->at(0));
    attest::Policy policy;
    policy.allow_simulated = true;
    return attest::VerifyQuote(quote, *collateral, policy, kNow + 10, crypto::ByteSpan(expected),
                               anchors);
  }

  std::string tmp_;
  std::string sim_;
};

ReportData Rd(uint8_t v) {
  ReportData r{};
  r.fill(v);
  return r;
}

TEST_F(SimulatedProviderTest, NamesItselfSimulated) {
  auto p = MakeSimulatedQuoteProvider(sim_);
  EXPECT_EQ(p->name(), "simulated");
  EXPECT_TRUE(p->simulated());
  EXPECT_FALSE(MakeConfigfsTsmProvider(tmp_)->simulated());
}

TEST_F(SimulatedProviderTest, QuoteVerifiesWithTheRequestedReportData) {
  auto p = MakeSimulatedQuoteProvider(sim_);
  auto quote = p->GetQuote(Rd(0x5a));
  ASSERT_TRUE(quote.ok()) << quote.status().ToString();
  auto v = Verify(*quote, Rd(0x5a));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->accepted);
  EXPECT_TRUE(v->dcap.simulated);
  auto wrong = Verify(*quote, Rd(0x5b));
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE(wrong->accepted);
}

TEST_F(SimulatedProviderTest, ReportsTheConfiguredTd) {
  attest::SimulatedTd td;
  td.mrtd = attest::SimulatedMeasurement("my image");
  auto quote = MakeSimulatedQuoteProvider(sim_, td)->GetQuote(Rd(1));
  ASSERT_TRUE(quote.ok());
  auto v = Verify(*quote, Rd(1));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->dcap.quote.body.mr_td, attest::SimulatedMeasurement("my image"));
}

TEST_F(SimulatedProviderTest, MissingSimulatedTeeIsAnErrorNamingTheProvider) {
  auto quote = MakeSimulatedQuoteProvider(tmp_ + "/none")->GetQuote(Rd(1));
  ASSERT_FALSE(quote.ok());
  EXPECT_NE(quote.status().message().find("simulated quote provider"), std::string::npos)
      << quote.status().message();
  EXPECT_NE(quote.status().message().find("pck_chain.pem"), std::string::npos)
      << quote.status().message();
}

}  // namespace
}  // namespace cce::agent
