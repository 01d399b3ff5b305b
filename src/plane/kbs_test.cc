// The key broker end to end: a real plane over TLS (in-process, with a clock
// the test moves), a job waiting in PROVISIONING, and the agent's KBS client
// with the simulated TEE getting the dataset key through auth -> attest ->
// resource. Then every release rule of the Attestation issue, each refused
// and audited.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

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

class TestClock : public Clock {
 public:
  int64_t NowUnix() const override { return static_cast<int64_t>(std::time(nullptr)) + offset; }
  std::atomic<int64_t> offset{0};
};

// Captures the credential the engine hands the "VM"; starts nothing.
class CapturingProvisioner : public Provisioner {
 public:
  std::string name() const override { return "capture"; }
  Status Provision(const store::Job& job, const std::string& credential) override {
    std::lock_guard<std::mutex> l(mu);
    credentials[job.id] = credential;
    return Status::Ok();
  }
  Status Resume(const store::Job&) override { return Status::Ok(); }
  std::string Get(const std::string& id) {
    std::lock_guard<std::mutex> l(mu);
    auto it = credentials.find(id);
    return it == credentials.end() ? "" : it->second;
  }
  std::mutex mu;
  std::map<std::string, std::string> credentials;
};

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
    std::string tmpl = (fs::temp_directory_path() / "cce-kbs-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
    InitOptions o;
    o.data_dir = tmp_ + "/plane";
    o.listen = "127.0.0.1:0";
    o.simulated_tee = true;
    auto r = InitPlane(o, clock_);
    ASSERT_TRUE(r.ok()) << r.status().message();
    init_ = *r;
    sim_dir_ = init_.data_dir + "/attestation/sim";
    // Credentials outlive the rental in one test; 30 days is the maximum.
    std::string cfg = ReadText(init_.data_dir + "/plane.yaml");
    size_t at = cfg.find("credential_ttl_seconds: ");
    ASSERT_NE(at, std::string::npos);
    cfg.replace(at, cfg.find('\n', at) - at, "credential_ttl_seconds: 2592000");
    at = cfg.find("  allowed_roots: ");  // AddDataset encrypts into tmp_
    ASSERT_NE(at, std::string::npos);
    cfg.replace(at, cfg.find('\n', at) - at, "  allowed_roots: [\"" + tmp_ + "\"]");
    std::ofstream(init_.data_dir + "/plane.yaml", std::ios::trunc) << cfg;
  }
  void TearDown() override {
    Stop();
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  static std::string ReadText(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  void Start() {
    stop_ = false;
    ServeOptions so;
    so.data_dir = init_.data_dir;
    if (port_ != 0) so.listen_override = "127.0.0.1:" + std::to_string(port_);
    so.stop = &stop_;
    std::promise<int> bound;
    auto f = bound.get_future();
    so.on_listening = [&bound](int port) { bound.set_value(port); };
    server_ = std::thread([this, so] {
      serve_status_ = ServeForTest(so, clock_, TestDoubles{nullptr, &provisioner_});
    });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    port_ = f.get();
  }
  void Stop() {
    if (server_.joinable()) {
      stop_ = true;
      server_.join();
    }
  }
  std::unique_ptr<http::testing::TestClient> Client() {
    return std::make_unique<http::testing::TestClient>(port_, init_.ca_file);
  }
  static http::testing::Headers Auth(const std::string& t) {
    return {{"Authorization", "Bearer " + t}};
  }
  agent::KbsEndpoint Endpoint() const {
    return {"https://127.0.0.1:" + std::to_string(port_), init_.ca_file};
  }

  // A provider's dataset `name` (key kept for comparison), rented by carol.
  void AddDataset(const std::string& name) {
    std::string src = tmp_ + "/src-" + name, enc = tmp_ + "/enc-" + name;
    fs::create_directories(src);
    std::ofstream(src + "/a.csv") << "x\n1\n";
    auto key = format::DatasetKey::Generate();
    ASSERT_TRUE(key.ok());
    ASSERT_TRUE(format::EncryptDataset(src, enc, *key, {}).ok());
    auto kt = key->EncodeKeyFile();
    keys_[name] = crypto::ToHex(key->bytes());
    auto c = Client();
    auto r = c->Post("/api/v1/datasets", Auth(pat_),
                     json{{"name", name},
                          {"location", "file://" + enc},
                          {"key", std::string(reinterpret_cast<const char*>(kt.data()), kt.size())}}
                         .dump(),
                     "application/json");
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no response");
    auto rent = c->Post("/api/v1/rentals", Auth(carol_),
                        json{{"dataset", name}, {"days", 1}}.dump(), "application/json");
    ASSERT_TRUE(rent && rent->status == 201);
  }
  void SetUpWorld() {
    Start();
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
    auto r = Client()->Post("/api/v1/jobs", Auth(carol_), spec, "application/yaml");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no response");
    if (!r || r->status != 201) return {};
    std::string id = json::parse(r->body)["id"];
    for (int i = 0; i < 400 && provisioner_.Get(id).empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_FALSE(provisioner_.Get(id).empty()) << "job " << id << " was not provisioned";
    return {id, provisioner_.Get(id)};
  }
  json Job(const std::string& id) {
    return json::parse(Client()->Get("/api/v1/jobs/" + id, Auth(carol_))->body);
  }
  json Post(const std::string& path, const json& body, int* status) {
    auto r = Client()->Post(path, body.dump(), "application/json");
    *status = r ? r->status : -1;
    return r ? json::parse(r->body, nullptr, false) : json();
  }
  // The audit decisions recorded for a job, as "action:decision".
  std::vector<std::string> Decisions(const std::string& job_id) {
    auto r = Client()->Get("/api/v1/audit?job=" + job_id, Auth(init_.token));
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
  std::string tmp_, sim_dir_;
  InitResult init_;
  std::atomic<bool> stop_{false};
  std::thread server_;
  Status serve_status_;
  int port_ = 0;
  CapturingProvisioner provisioner_;
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
  json registered = json::parse(Client()->Get("/api/v1/datasets/claims", Auth(carol_))->body);
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
  for (const char* want :
       {"kbs.auth:allow", "kbs.nonce_use:info", "kbs.attest:allow", "key.release:allow"}) {
    EXPECT_TRUE(Has(d, want)) << want;
  }
  // The release is recorded as simulated.
  auto r = Client()->Get("/api/v1/audit?job=" + id, Auth(init_.token));
  EXPECT_NE(r->body.find("\"simulated_tee\":true"), std::string::npos);

  // The credential is spent: a second VM cannot attest with it.
  int status = 0;
  json again = Post("/kbs/v0/auth", {{"credential", credential}}, &status);
  EXPECT_EQ(status, 403);
  EXPECT_NE(again.dump().find("already used"), std::string::npos) << again.dump();
  // The session releases only the credential's datasets.
  auto other = Client()->Get("/kbs/v0/resource/labs/key", Auth(got->session));
  EXPECT_EQ(other->status, 403);
  EXPECT_NE(other->body.find("not in job"), std::string::npos) << other->body;
  // A tampered session is refused.
  std::string bad = got->session;
  bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Client()->Get("/kbs/v0/resource/claims/key", Auth(bad))->status, 403);
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
  ASSERT_EQ(Client()
                ->Post("/api/v1/jobs/" + id2 + "/cancel", Auth(carol_), "", "application/json")
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
