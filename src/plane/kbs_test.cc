// The key broker end to end: a real plane over TLS (in-process, with a clock
// the test moves), a job waiting in PROVISIONING, and the agent's KBS client
// with the simulated TEE getting the dataset key through auth -> attest ->
// resource. Then every release rule of the Attestation issue, each refused
// and audited.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "agent/kbs_client.h"
#include "agent/sim_quote.h"
#include "attest/sim.h"
#include "crypto/jwe.h"
#include "format/format.h"
#include "http/test_client.h"
#include "image/blob_store.h"
#include "plane/config.h"
#include "plane/credential.h"
#include "plane/job_engine.h"
#include "plane/keys.h"
#include "plane/plane.h"
#include "plane/plane_testing.h"
#include "store/sqlite_store.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A quote provider that returns whatever the test wants.
class FixedQuote : public agent::QuoteProvider {
 public:
  explicit FixedQuote(crypto::Bytes q) : quote_(std::move(q)) {}
  std::string name() const override { return "fixed"; }
  bool simulated() const override { return false; }
  StatusOr<crypto::Bytes> GetQuote(const agent::ReportData&) override { return quote_; }

 private:
  crypto::Bytes quote_;
};

class KbsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // AddDataset encrypts into tmp_.
    auto plane = TestPlane::Create(
        clock_, {.dir_prefix = "cce-kbs-test", .simulated_tee = true, .datasets_in_tmp = true});
    ASSERT_TRUE(plane.ok()) << plane.status().message();
    plane_ = std::move(*plane);
    tmp_ = plane_->tmp();
    init_ = plane_->init();
    sim_dir_ = init_.data_dir + "/attestation/sim";
    // Credentials outlive the rental in one test; 30 days is the maximum.
    Status ttl = plane_->SetConfig("credential_ttl_seconds", "2592000");
    ASSERT_TRUE(ttl.ok()) << ttl.message();
  }
  void TearDown() override { plane_.reset(); }  // stops the server before provisioner_ goes
  static std::string ReadText(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  agent::KbsEndpoint Endpoint() const { return {plane_->url(), init_.ca_file}; }

  // A provider's dataset `name` (key kept for comparison), rented by carol.
  void AddDataset(const std::string& name) {
    auto key = plane_->AddRentedDataset(name, pat_, carol_);
    ASSERT_TRUE(key.ok()) << key.status().message();
    keys_[name] = crypto::ToHex(key->bytes());
  }
  void SetUpWorld() {
    Status started = plane_->Start(TestDoubles{nullptr, &provisioner_});
    ASSERT_TRUE(started.ok()) << started.message();
    auto pat = AddUser(init_.data_dir, "pat", store::Role::kProvider, clock_);
    auto carol = AddUser(init_.data_dir, "carol", store::Role::kConsumer, clock_);
    ASSERT_TRUE(pat.ok() && carol.ok());
    pat_ = *pat;
    carol_ = *carol;
    AddDataset("claims");
    AddDataset("labs");
    // Tagged as a public image: a job may only name a tagged manifest.
    auto digest = AddPublicTestImage(init_.data_dir, "world", R"({"schemaVersion":2})", clock_);
    ASSERT_TRUE(digest.ok()) << digest.status().message();
    image_ = *digest;
  }
  // Submits a job on `dataset` and waits until the engine has provisioned it;
  // returns {job id, credential}.
  std::pair<std::string, std::string> ProvisionedJob(const std::string& dataset = "claims") {
    std::string spec =
        "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: {name: k}\nspec:\n"
        "  image: " +
        image_ + "\n  command: [/app/run]\n  datasets:\n    - {name: " + dataset +
        ", mountPath: /data/d}\n  resources: {timeoutSeconds: 3600}\n";
    auto r = plane_->Client()->Post("/api/v1/jobs", BearerAuth(carol_), spec, "application/yaml");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no response");
    if (!r || r->status != 201) return {};
    std::string id = json::parse(r->body)["id"];
    const std::string credential = provisioner_.WaitFor(id);
    EXPECT_FALSE(credential.empty()) << "job " << id << " was not provisioned";
    return {id, credential};
  }
  json Job(const std::string& id) {
    return json::parse(plane_->Client()->Get("/api/v1/jobs/" + id, BearerAuth(carol_))->body);
  }
  json Post(const std::string& path, const json& body, int* status) {
    auto r = plane_->Client()->Post(path, body.dump(), "application/json");
    *status = r ? r->status : -1;
    return r ? json::parse(r->body, nullptr, false) : json();
  }
  // The audit decisions recorded for a job, as "action:decision".
  std::vector<std::string> Decisions(const std::string& job_id) {
    auto r = plane_->Client()->Get("/api/v1/audit?job=" + job_id, BearerAuth(init_.token));
    std::vector<std::string> out;
    const json entries = json::parse(r->body)["entries"];
    for (const auto& e : entries) {
      out.push_back(e["action"].get<std::string>() + ":" + e["decision"].get<std::string>());
    }
    return out;
  }
  static bool Has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  // auth -> nonce for `credential` (expects success).
  std::string Nonce(const std::string& credential) {
    int status = 0;
    json j = Post("/kbs/v0/auth", {{"credential", credential}}, &status);
    EXPECT_EQ(status, 200) << j.dump();
    return j.value("nonce", "");
  }
  // A quote from the simulated TEE over SHA-512(nonce || key).
  crypto::Bytes SimQuote(const std::string& nonce, const crypto::EphemeralKey& key,
                         const attest::SimulatedTd& td = {}) {
    auto raw = crypto::Base64UrlDecode(nonce);
    EXPECT_TRUE(raw.ok());
    auto q = attest::BuildSimulatedQuote(
        sim_dir_, agent::KbsReportData(*raw, key.public_key().public_bytes()), td);
    EXPECT_TRUE(q.ok()) << q.status().message();
    return q.ok() ? *q : crypto::Bytes{};
  }
  json Attest(const std::string& credential, const std::string& nonce, const crypto::Bytes& quote,
              const crypto::EphemeralKey& key, int* status) {
    return Post("/kbs/v0/attest",
                {{"credential", credential},
                 {"nonce", nonce},
                 {"quote", crypto::Base64UrlEncode(quote)},
                 {"tee_pubkey", key.PublicJwk()}},
                status);
  }
  static crypto::EphemeralKey NewKey() {
    auto k = crypto::EphemeralKey::Generate(crypto::EcdhCurve::kP256);
    EXPECT_TRUE(k.ok());
    return std::move(*k);
  }

  TestClock clock_;
  CapturingProvisioner provisioner_;
  std::unique_ptr<TestPlane> plane_;
  std::string tmp_, sim_dir_;  // plane_->tmp(), its simulated TEE
  InitResult init_;            // plane_->init()
  std::string pat_, carol_, image_;
  std::map<std::string, std::string> keys_;  // dataset -> key hex
};

TEST_F(KbsTest, SimulatedTeeGetsTheDatasetKeyThroughTheThreeSteps) {
  SetUpWorld();
  auto [id, credential] = ProvisionedJob();
  ASSERT_FALSE(credential.empty());
  auto quotes = agent::MakeSimulatedQuoteProvider(sim_dir_);
  ASSERT_TRUE(quotes->simulated());
  auto got = agent::FetchDatasetKeys(Endpoint(), credential, {"claims"}, *quotes);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->keys.count("claims"), 1u);
  EXPECT_EQ(crypto::ToHex(got->keys.at("claims").span()), keys_["claims"]);
  // With the key, the rollback pin recorded at registration.
  json registered =
      json::parse(plane_->Client()->Get("/api/v1/datasets/claims", BearerAuth(carol_))->body);
  ASSERT_EQ(got->pins.count("claims"), 1u);
  EXPECT_EQ(got->pins.at("claims").dataset_id, registered["dataset_id"].get<std::string>());
  EXPECT_FALSE(got->pins.at("claims").dataset_id.empty());
  EXPECT_EQ(got->pins.at("claims").min_version, 1u);
  EXPECT_TRUE(got->simulated_tee);
  EXPECT_EQ(got->tcb_status, "UpToDate");
  json job = Job(id);
  EXPECT_EQ(job["state"], "ATTESTED");
  EXPECT_TRUE(job["simulated_tee"].get<bool>());
  EXPECT_NE(job["reason"].get<std::string>().find("SIMULATED"), std::string::npos);
  auto d = Decisions(id);
  for (const char* want : {"kbs.attest:allow", "key.release:allow"}) {
    EXPECT_TRUE(Has(d, want)) << want;
  }
  // An issued nonce is not a durable record (it lives in memory); the
  // attest record that spent it says when it was issued.
  EXPECT_FALSE(Has(d, "kbs.auth:allow"));
  EXPECT_FALSE(Has(d, "kbs.nonce_use:info"));
  // The release is recorded as simulated.
  auto r = plane_->Client()->Get("/api/v1/audit?job=" + id, BearerAuth(init_.token));
  EXPECT_NE(r->body.find("\"simulated_tee\":true"), std::string::npos);

  // The credential is spent: a second VM cannot attest with it.
  int status = 0;
  json again = Post("/kbs/v0/auth", {{"credential", credential}}, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(again.dump().find("already used"), std::string::npos) << again.dump();
  // The session releases only the credential's datasets.
  auto other = plane_->Client()->Get("/kbs/v0/resource/labs/key", BearerAuth(got->session));
  EXPECT_EQ(other->status, 403);
  EXPECT_NE(other->body.find("not in job"), std::string::npos) << other->body;
  // A tampered session is refused.
  std::string bad = got->session;
  bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(plane_->Client()->Get("/kbs/v0/resource/claims/key", BearerAuth(bad))->status, 403);
  auto ds = Decisions(id);
  EXPECT_TRUE(Has(ds, "key.release:deny"));
  EXPECT_TRUE(Has(ds, "kbs.auth:deny"));  // the second auth, audited on the job
}

TEST_F(KbsTest, NoncesAreSingleUseShortLivedAndBoundToTheJob) {
  SetUpWorld();
  auto [id1, cred1] = ProvisionedJob();
  auto [id2, cred2] = ProvisionedJob();
  crypto::EphemeralKey key = NewKey();
  int status = 0;
  // A nonce we never issued.
  json j = Attest(cred1, crypto::Base64UrlEncode(crypto::Bytes(32, 7)),
                  SimQuote(crypto::Base64UrlEncode(crypto::Bytes(32, 7)), key), key, &status);
  EXPECT_EQ(status, 403) << j.dump();
  // Job 2's nonce used with job 1's credential.
  std::string n2 = Nonce(cred2);
  j = Attest(cred1, n2, SimQuote(n2, key), key, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("another job"), std::string::npos) << j.dump();
  // A refused attempt spends the nonce: the retry with a good quote fails.
  std::string n1 = Nonce(cred1);
  j = Attest(cred1, n1, SimQuote(crypto::Base64UrlEncode(crypto::Bytes(32, 1)), key), key, &status);
  EXPECT_EQ(status, 403);  // report data bound to another nonce
  EXPECT_NE(j.dump().find("REPORTDATA"), std::string::npos) << j.dump();
  j = Attest(cred1, n1, SimQuote(n1, key), key, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("already used"), std::string::npos) << j.dump();
  // Expired: the nonce lives 60 s.
  std::string late = Nonce(cred1);
  clock_.offset += 61;
  j = Attest(cred1, late, SimQuote(late, key), key, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("expired"), std::string::npos) << j.dump();
  // A fresh one works; the job is attested once.
  std::string ok = Nonce(cred1);
  j = Attest(cred1, ok, SimQuote(ok, key), key, &status);
  EXPECT_EQ(status, 200) << j.dump();
  EXPECT_EQ(Job(id1)["state"], "ATTESTED");
  EXPECT_EQ(Job(id2)["state"], "PROVISIONING");
  EXPECT_TRUE(Has(Decisions(id1), "kbs.attest:deny"));
}

TEST_F(KbsTest, ARestartForgetsEveryIssuedNonce) {
  SetUpWorld();
  auto [id, cred] = ProvisionedJob();
  crypto::EphemeralKey key = NewKey();
  const std::string before = Nonce(cred);
  // A second job attested before the restart: its session (signed, not
  // stored) still releases keys after it, with the TEE key parsed anew.
  auto [attested_id, attested_cred] = ProvisionedJob();
  int status = 0;
  const std::string n = Nonce(attested_cred);
  json a = Attest(attested_cred, n, SimQuote(n, key), key, &status);
  ASSERT_EQ(status, 200) << a.dump();
  const std::string session = a["session"];
  plane_->Stop();
  Status started = plane_->Start(TestDoubles{nullptr, &provisioner_});
  ASSERT_TRUE(started.ok()) << started.message();
  // The nonce was in the old process's memory only: refused, and nothing
  // else changed (the credential is unused, the job still PROVISIONING).
  json j = Attest(cred, before, SimQuote(before, key), key, &status);
  EXPECT_EQ(status, 403) << j.dump();
  EXPECT_NE(j.dump().find("restarted"), std::string::npos) << j.dump();
  EXPECT_EQ(Job(id)["state"], "PROVISIONING");
  // The agent asks again: a new nonce attests.
  const std::string after = Nonce(cred);
  j = Attest(cred, after, SimQuote(after, key), key, &status);
  EXPECT_EQ(status, 200) << j.dump();
  EXPECT_EQ(Job(id)["state"], "ATTESTED");
  auto r = plane_->Client()->Get("/kbs/v0/resource/claims/key", BearerAuth(session));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  auto got = crypto::JweDecrypt(key, r->body);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(crypto::ToHex(got->span()), keys_["claims"]);
}

TEST_F(KbsTest, QuotesOutsideThePolicyAreRefusedWithTheirReasons) {
  // Pin the simulated TD's MRTD in the policy, keeping simulation on.
  attest::SimulatedTd good;
  std::ofstream(init_.data_dir + "/attestation/policy.yaml", std::ios::trunc)
      << "allow_simulated: true\nmrtd: [\"" << crypto::ToHex(good.mrtd) << "\"]\n";
  SetUpWorld();
  auto [id, cred] = ProvisionedJob();
  crypto::EphemeralKey key = NewKey();
  int status = 0;
  attest::SimulatedTd other_mrtd;
  other_mrtd.mrtd[0] ^= 0xff;
  std::string n = Nonce(cred);
  json j = Attest(cred, n, SimQuote(n, key, other_mrtd), key, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("MRTD"), std::string::npos) << j.dump();
  attest::SimulatedTd debug;
  debug.td_attributes |= 1;  // DEBUG
  n = Nonce(cred);
  j = Attest(cred, n, SimQuote(n, key, debug), key, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("DEBUG"), std::string::npos) << j.dump();
  // The quote is for another key than the one presented.
  crypto::EphemeralKey other_key = NewKey();
  n = Nonce(cred);
  j = Attest(cred, n, SimQuote(n, other_key), key, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("REPORTDATA"), std::string::npos) << j.dump();
  // A real Intel quote: REPORTDATA and collateral do not fit; refused.
  auto real = ReadText(std::string(CCE_SOURCE_DIR) + "/tests/data/tdx/dcap-qvl/tdx_quote");
  ASSERT_FALSE(real.empty());
  n = Nonce(cred);
  j = Attest(cred, n, crypto::Bytes(real.begin(), real.end()), key, &status);
  EXPECT_EQ(status, 403) << j.dump();
  // Garbage is refused too, naming the quote.
  n = Nonce(cred);
  j = Attest(cred, n, crypto::Bytes(100, 0x42), key, &status);
  EXPECT_NE(status, 200);
  EXPECT_EQ(Job(id)["state"], "PROVISIONING");  // nothing got through
  auto d = Decisions(id);
  EXPECT_GE(std::count(d.begin(), d.end(), "kbs.attest:deny"), 5) << json(d).dump();
}

TEST_F(KbsTest, SimulationIsRefusedUnlessThePolicyEnablesIt) {
  std::ofstream(init_.data_dir + "/attestation/policy.yaml", std::ios::trunc)
      << "allow_simulated: false\n";
  SetUpWorld();
  auto [id, cred] = ProvisionedJob();
  auto quotes = agent::MakeSimulatedQuoteProvider(sim_dir_);
  auto got = agent::FetchDatasetKeys(Endpoint(), cred, {"claims"}, *quotes);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Job(id)["state"], "PROVISIONING");
}

TEST_F(KbsTest, CredentialsMustBeOursUnexpiredAndForAProvisioningJob) {
  SetUpWorld();
  auto [id, cred] = ProvisionedJob();
  int status = 0;
  // Forged: the same claims signed by another key.
  auto claims = VerifyJobCredential(
      cred,
      [&] {
        auto k = LoadSigningKey(init_.data_dir + "/keys/signing.key");
        auto p = k->PublicKey();
        return crypto::Bytes(p.begin(), p.end());
      }(),
      clock_.NowUnix());
  ASSERT_TRUE(claims.ok()) << claims.status().message();
  auto other = crypto::Ed25519PrivateKey::Generate();
  auto forged = SignJobCredential(*claims, *other);
  json j = Post("/kbs/v0/auth", {{"credential", *forged}}, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("signature"), std::string::npos) << j.dump();
  // Malformed bodies name the field.
  j = Post("/kbs/v0/auth", {{"credentials", cred}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_NE(j.dump().find("body.credentials"), std::string::npos);
  // A cancelled job's credential gets no nonce.
  auto [id2, cred2] = ProvisionedJob();
  ASSERT_EQ(
      plane_->Client()
          ->Post("/api/v1/jobs/" + id2 + "/cancel", BearerAuth(carol_), "", "application/json")
          ->status,
      200);
  j = Post("/kbs/v0/auth", {{"credential", cred2}}, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("CANCELLED"), std::string::npos) << j.dump();
  // Past the rental (one day) while the credential (30 days) is still valid:
  // the attest step refuses.
  crypto::EphemeralKey key = NewKey();
  clock_.offset += 2 * 86400;
  std::string n = Nonce(cred);
  j = Attest(cred, n, SimQuote(n, key), key, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("rental"), std::string::npos) << j.dump();
  // Past the credential's expiry: refused at auth.
  clock_.offset += 31 * 86400;
  j = Post("/kbs/v0/auth", {{"credential", cred}}, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(j.dump().find("expired"), std::string::npos) << j.dump();
}

TEST_F(KbsTest, RepeatedFailuresFromOneAddressAreRateLimited) {
  SetUpWorld();
  int status = 0;
  for (int i = 0; i < 20; ++i) {
    Post("/kbs/v0/auth", {{"credential", "cce-cred-v1.bogus.x"}}, &status);
    ASSERT_EQ(status, 403);
  }
  json j = Post("/kbs/v0/auth", {{"credential", "cce-cred-v1.bogus.x"}}, &status);
  EXPECT_EQ(status, 429) << j.dump();
}

}  // namespace
}  // namespace cce::plane
