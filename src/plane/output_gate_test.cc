// The Output Gate in the plane: fingerprints made and sealed at
// registration, outputs scored against them, and every way the gate cannot
// rule a copy out holding the output (fail closed).
#include "plane/output_gate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "format/format.h"
#include "image/image_testing.h"
#include "plane/service_world.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using testing::Must;

class OutputGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Must(testing::ServiceWorld::Create({
                      .clock = &clock_,
                      .adjust = [](ServiceDeps& d,
                                   const std::string& tmp) { d.dataset_allowed_roots = {tmp}; },
                  }),
                  "world");
    pat_ = Must(world_->AddUser("pat", store::Role::kProvider), "pat");
    carol_ = Must(world_->AddUser("carol", store::Role::kConsumer), "carol");
    for (int i = 0; i < 300; ++i) {
      csv_ += "P" + std::to_string(500000 + i * 7) + ",person" + std::to_string(i) +
              "@example-mail.org," + std::to_string(1000 + (i * 7919) % 90000) + "." +
              std::to_string(10 + i % 89) + ",diag" + std::to_string(i % 5) + "\n";
    }
    csv_ = "id,email,cost,diagnosis\n" + csv_;
  }

  // Encrypts `csv` as dataset NAME under tmp() and registers it at `location`
  // (file:// of it unless given).
  StatusOr<api::Dataset> Register(const std::string& name, const std::string& csv,
                                  const std::string& location = "") {
    const std::string src = world_->tmp() + "/" + name + "-src";
    const std::string enc = world_->tmp() + "/" + name + ".enc";
    fs::create_directories(src);
    std::ofstream(src + "/data.csv") << csv;
    auto key = Must(format::DatasetKey::Generate(), "key");
    EXPECT_TRUE(format::EncryptDataset(src, enc, key, {}).ok());
    api::RegisterDatasetRequest reg;
    reg.name = name;
    reg.location = location.empty() ? "file://" + enc : location;
    auto kt = key.EncodeKeyFile();
    reg.key.assign(reinterpret_cast<const char*>(kt.data()), kt.size());
    return world_->services().catalog.Register(pat_, reg);
  }

  // A job of carol's over `datasets` whose output bundle holds `files`.
  store::Output Submitted(const std::string& id, const std::vector<std::string>& datasets,
                          const std::vector<image::testing::TarMember>& files) {
    store::Job job = testing::SubmittedJob(id, carol_.user.id, clock_.NowUnix());
    job.datasets = datasets;
    Must(world_->db().CreateJob(job, world_->Rec("job.submit", "job:" + id)), "job");
    const std::string bundle = image::testing::MakeTar(files);
    store::Output o;
    o.job_id = id;
    o.blob_ref = Must(world_->outputs().Put(id, crypto::AsBytes(bundle)), "seal");
    o.size = static_cast<int64_t>(bundle.size());
    o.digest = "sha256:" + crypto::ToHex(crypto::Sha256(crypto::AsBytes(bundle)));
    return o;
  }

  nlohmann::json Findings(const GateDecision& d) { return nlohmann::json::parse(d.findings_json); }
  bool HasDetector(const GateDecision& d, const std::string& detector) {
    for (const auto& f : Findings(d)) {
      if (f["detector"] == detector) return true;
    }
    return false;
  }

  SystemClock clock_;
  std::unique_ptr<testing::ServiceWorld> world_;
  Caller pat_, carol_;
  std::string csv_;
};

TEST_F(OutputGateTest, RegistrationSealsFingerprintsWithoutTheData) {
  ASSERT_TRUE(Register("claims", csv_).ok());
  const std::string sealed = world_->init().data_dir + "/fingerprints/claims.sealed";
  ASSERT_TRUE(fs::exists(sealed));
  EXPECT_EQ(fs::status(sealed).permissions() & fs::perms::others_all, fs::perms::none);
  std::ifstream in(sealed, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(bytes.find("person1@example-mail.org"), std::string::npos);
  EXPECT_EQ(bytes.find("CCEFP1"), std::string::npos);  // not even the index's magic: sealed
  auto audit = Must(world_->db().ListAudit({}), "audit");
  bool found = false;
  for (const auto& e : audit) {
    if (e.record.action == "dataset.register" &&
        e.record.details_json.find("\"rows\":300") != std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << "dataset.register records the fingerprint counts";
}

TEST_F(OutputGateTest, ACopyIsHeldAndAnAggregateReleased) {
  ASSERT_TRUE(Register("claims", csv_).ok());
  OutputGate& gate = world_->services().gate;
  auto copy = Must(gate.Score(Submitted("job-00000000000000c1", {"claims"},
                                        {image::testing::File("files/out.csv", csv_),
                                         image::testing::File("stdout.txt", "done\n")})),
                   "score copy");
  EXPECT_EQ(copy.verdict, store::GateVerdict::kHold);
  EXPECT_TRUE(HasDetector(copy, "copy.row")) << copy.findings_json;
  EXPECT_NE(copy.findings_json.find("files/out.csv"), std::string::npos);
  auto aggregate = Must(
      gate.Score(Submitted("job-00000000000000c2", {"claims"},
                           {image::testing::File("files/summary.csv",
                                                 "diagnosis,patients\ndiag0,60\ndiag1,60\n"
                                                 "diag2,60\ndiag3,60\ndiag4,60\n"),
                            image::testing::File("manifest.json", "{\"files\":[]}"),
                            image::testing::File("result.json", "{\"exit_code\":0}")})),
      "score aggregate");
  EXPECT_EQ(aggregate.verdict, store::GateVerdict::kRelease) << aggregate.findings_json;
}

TEST_F(OutputGateTest, ADatasetWithoutFingerprintsHoldsEveryOutput) {
  ASSERT_TRUE(Register("remote", csv_, "s3://bucket/remote").ok());
  auto d = Must(world_->services().gate.Score(Submitted(
                    "job-00000000000000c3", {"remote"},
                    {image::testing::File("files/summary.csv", "a,b\nx,20\ny,30\n")})),
                "score");
  EXPECT_EQ(d.verdict, store::GateVerdict::kHold);
  EXPECT_TRUE(HasDetector(d, "gate.reference")) << d.findings_json;
}

TEST_F(OutputGateTest, AnIndexThatDoesNotOpenHolds) {
  ASSERT_TRUE(Register("claims", csv_).ok());
  const std::string sealed = world_->init().data_dir + "/fingerprints/claims.sealed";
  {
    // Flip bits of byte 40 (setting it to a fixed value left the file as it
    // was whenever the random sealed byte already had that value: 1 in 256).
    std::fstream f(sealed, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(40);
    const int byte = f.get();
    ASSERT_NE(byte, EOF);
    f.seekp(40);
    f.put(static_cast<char>(byte ^ 0x5a));
  }
  auto d = Must(world_->services().gate.Score(Submitted(
                    "job-00000000000000c4", {"claims"},
                    {image::testing::File("files/summary.csv", "a,b\nx,20\ny,30\n")})),
                "score");
  EXPECT_EQ(d.verdict, store::GateVerdict::kHold);
  EXPECT_TRUE(HasDetector(d, "gate.reference")) << d.findings_json;
}

TEST_F(OutputGateTest, ABundleThatIsNotATarIsHeld) {
  ASSERT_TRUE(Register("claims", csv_).ok());
  store::Job job = testing::SubmittedJob("job-00000000000000c5", carol_.user.id, clock_.NowUnix());
  job.datasets = {"claims"};
  Must(world_->db().CreateJob(job, world_->Rec("job.submit", "job:" + job.id)), "job");
  const std::string junk = "not a tar bundle at all\n";
  store::Output o;
  o.job_id = job.id;
  o.blob_ref = Must(world_->outputs().Put(job.id, crypto::AsBytes(junk)), "seal");
  o.size = static_cast<int64_t>(junk.size());
  o.digest = "sha256:" + crypto::ToHex(crypto::Sha256(crypto::AsBytes(junk)));
  auto d = Must(world_->services().gate.Score(o), "score");
  EXPECT_EQ(d.verdict, store::GateVerdict::kHold);
  EXPECT_TRUE(HasDetector(d, "type")) << d.findings_json;
}

TEST_F(OutputGateTest, AMalformedDatasetFileRefusesRegistration) {
  auto r = Register("broken", "id,email\n\"unterminated,x\n");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(testing::MessageContains(r.status(), "data.csv")) << r.status().message();
  EXPECT_FALSE(fs::exists(world_->init().data_dir + "/fingerprints/broken.sealed"));
}

}  // namespace
}  // namespace cce::plane
