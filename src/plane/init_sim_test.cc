// `cce-plane init --simulated-tee`: what it creates, that the key broker's
// attestation service then accepts a simulated quote (and only because the
// policy allows it), and that without the flag none of it exists.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "attest/sim.h"
#include "base/fd.h"
#include "plane/attestation.h"
#include "plane/config.h"
#include "plane/plane.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;

class FixedClock : public Clock {
 public:
  explicit FixedClock(int64_t now) : now_(now) {}
  int64_t NowUnix() const override { return now_; }

 private:
  int64_t now_;
};

constexpr int64_t kNow = 1'750'000'000;

class InitSimulatedTee : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cce-init-sim-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
  }
  void TearDown() override { fs::remove_all(tmp_); }

  InitResult Init(const std::string& name, bool simulated) {
    InitOptions o;
    o.data_dir = tmp_ + "/" + name;
    o.simulated_tee = simulated;
    auto r = InitPlane(o, clock_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : InitResult{};
  }

  std::string tmp_;
  FixedClock clock_{kNow};
};

attest::ReportData Rd(uint8_t v) {
  attest::ReportData r{};
  r.fill(v);
  return r;
}

TEST_F(InitSimulatedTee, CreatesSimulatedTeeCachedCollateralAndLoudPolicy) {
  const InitResult r = Init("plane", true);
  const std::string d = r.data_dir;
  EXPECT_EQ(r.simulated_tee_dir, d + "/attestation/sim");
  for (const char* f :
       {"attestation/sim/root.crt", "attestation/sim/pck_chain.pem", "attestation/sim/pck.key",
        "attestation/sim/collateral/tcb_info.json",
        "attestation/collateral/ccee00000000/tcb_info.json",
        "attestation/collateral/ccee00000000/pck_crl.der", "attestation/policy.yaml"}) {
    EXPECT_TRUE(fs::is_regular_file(d + "/" + f)) << f;
  }
  struct stat st {};
  ASSERT_EQ(::stat((d + "/attestation/sim/pck.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto policy_text = ReadFile(d + "/attestation/policy.yaml", 1 << 16);
  ASSERT_TRUE(policy_text.ok());
  EXPECT_NE(policy_text->find("NOT TDX VMs"), std::string::npos);
  auto policy = attest::Policy::Load(d + "/attestation/policy.yaml");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_TRUE(policy->allow_simulated);
  // No staging leftovers.
  for (const auto& e : fs::directory_iterator(tmp_)) {
    EXPECT_EQ(e.path().filename().string().rfind('.', 0), std::string::npos) << e.path();
  }
}

TEST_F(InitSimulatedTee, KeyBrokerAcceptsASimulatedQuoteFlaggedSimulated) {
  const InitResult r = Init("plane", true);
  auto config = LoadConfig(r.data_dir);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto service = AttestationService::Load(*config);
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  EXPECT_TRUE((*service)->simulation_enabled());
  EXPECT_EQ((*service)->collateral_sets(), 1u);
  auto quote = attest::BuildSimulatedQuote(r.simulated_tee_dir, Rd(3), {});
  ASSERT_TRUE(quote.ok()) << quote.status().ToString();
  auto v = (*service)->Verify(*quote, Rd(3), kNow + 10);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->accepted);
  EXPECT_TRUE(v->dcap.simulated);
  // The simulated TEE is valid for a year from init.
  EXPECT_TRUE((*service)->Verify(*quote, Rd(3), kNow + 364 * 86400)->accepted);
  EXPECT_FALSE((*service)->Verify(*quote, Rd(3), kNow + 366 * 86400).ok());
}

TEST_F(InitSimulatedTee, WithoutTheFlagNothingSimulatedExistsAndQuotesAreRefused) {
  const InitResult sim = Init("sim-plane", true);
  const InitResult r = Init("plane", false);
  EXPECT_TRUE(r.simulated_tee_dir.empty());
  EXPECT_FALSE(fs::exists(r.data_dir + "/attestation/sim"));
  EXPECT_FALSE(fs::exists(r.data_dir + "/attestation/policy.yaml"));
  auto config = LoadConfig(r.data_dir);
  ASSERT_TRUE(config.ok());
  auto service = AttestationService::Load(*config);
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  EXPECT_FALSE((*service)->simulation_enabled());
  // Even with the simulated collateral imported, a simulated quote is refused:
  // the plane does not trust the simulation root.
  auto fmspc = ImportCollateral(r.data_dir, sim.simulated_tee_dir + "/collateral");
  EXPECT_FALSE(fmspc.ok());
  auto quote = attest::BuildSimulatedQuote(sim.simulated_tee_dir, Rd(3), {});
  ASSERT_TRUE(quote.ok());
  auto v = (*service)->Verify(*quote, Rd(3), kNow + 10);
  EXPECT_TRUE(!v.ok() || !v->accepted);
}

}  // namespace
}  // namespace cce::plane
