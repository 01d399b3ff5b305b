// The plane over real TLS on a loopback port: init, authentication,
// authorization, users, error bodies, limits, graceful stop with a signed
// audit checkpoint.
#include "plane/plane.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "format/format.h"
#include "http/test_client.h"
#include "image/blob_store.h"
#include "image/image.h"
#include "jobspec/jobspec.h"
#include "plane/config.h"
#include "plane/job_engine.h"
#include "plane/keys.h"
#include "plane/master_key.h"
#include "plane/plane_testing.h"
#include "plane/services.h"
#include "store/sqlite_store.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class FixedClock : public Clock {
 public:
  int64_t NowUnix() const override { return static_cast<int64_t>(std::time(nullptr)); }
};

class PlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Datasets are encrypted into tmp_ (outside the default root).
    auto plane =
        TestPlane::Create(clock_, {.dir_prefix = "cce-plane-test", .datasets_in_tmp = true});
    ASSERT_TRUE(plane.ok()) << plane.status().message();
    plane_ = std::move(*plane);
    tmp_ = plane_->tmp();
    init_ = plane_->init();
    Status started = plane_->Start();  // the production Serve
    ASSERT_TRUE(started.ok()) << started.message();
  }
  void TearDown() override { plane_.reset(); }  // stops the server before gate_ goes
  void StopServer() { plane_->Stop(); }
  // Serves again on the same port, with the output gate gate_.
  void StartServer() {
    Status started = plane_->Start(TestDoubles{gate_, nullptr});
    ASSERT_TRUE(started.ok()) << started.message();
  }
  // Switches the plane to the fake provisioner (restarts it on the same port).
  void UseFakeProvisioner() {
    StopServer();
    Status fake = plane_->SetConfig("provisioner.backend", "fake");
    ASSERT_TRUE(fake.ok()) << fake.message();
    StartServer();
  }

  // The world a job needs: a provider's dataset, a consumer renting it
  // (carol), one who does not (dave), and an image manifest in the store.
  struct JobWorld {
    std::string pat, carol, dave;
    std::string image;  // sha256:...
  };
  JobWorld MakeJobWorld() {
    JobWorld w;
    auto pat = AddUser(init_.data_dir, "pat", store::Role::kProvider, clock_);
    auto carol = AddUser(init_.data_dir, "carol", store::Role::kConsumer, clock_);
    auto dave = AddUser(init_.data_dir, "dave", store::Role::kConsumer, clock_);
    EXPECT_TRUE(pat.ok() && carol.ok() && dave.ok());
    w.pat = *pat;
    w.carol = *carol;
    w.dave = *dave;
    auto key = plane_->AddRentedDataset("claims", w.pat, w.carol);
    EXPECT_TRUE(key.ok()) << key.status().message();
    // An image manifest in the plane's blob store (uploads are tested with the images API).
    // Tagged as a public image: a job may only name a tagged manifest.
    auto digest = AddPublicTestImage(init_.data_dir, "world", R"({"schemaVersion":2})", clock_);
    EXPECT_TRUE(digest.ok()) << digest.status().message();
    w.image = digest.ok() ? *digest : "";
    return w;
  }
  static std::string Spec(const std::string& image, const std::string& dataset, int timeout) {
    return "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: {name: stats}\nspec:\n"
           "  image: " +
           image +
           "\n  command: [python3, /app/run.py]\n"
           "  datasets:\n    - {name: " +
           dataset +
           ", mountPath: /data/claims}\n"
           "  resources: {timeoutSeconds: " +
           std::to_string(timeout) + "}\n";
  }
  // Polls until the job is in `state` (or 10 s pass); returns its last JSON.
  json WaitForState(const std::string& token, const std::string& id, const std::string& state) {
    auto c = plane_->Client();
    json job;
    for (int i = 0; i < 400; ++i) {
      auto r = c->Get("/api/v1/jobs/" + id, BearerAuth(token));
      if (r && r->status == 200) job = json::parse(r->body);
      if (job.value("state", "") == state) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return job;
  }
  std::unique_ptr<store::SqliteStore> OpenDb() {
    auto config = LoadConfig(init_.data_dir);
    EXPECT_TRUE(config.ok());
    store::SqliteStoreOptions so;
    so.path = config->Path(config->database_path);
    auto db = store::SqliteStore::Open(so);
    EXPECT_TRUE(db.ok()) << db.status().message();
    return std::move(*db);
  }

  FixedClock clock_;
  Gate* gate_ = nullptr;  // the output gate the next StartServer uses (default fail closed)
  std::unique_ptr<TestPlane> plane_;
  std::string tmp_;  // plane_->tmp()
  InitResult init_;  // plane_->init()
};

TEST_F(PlaneTest, InitCreatesPrivateKeysAndRefusesToOverwrite) {
  for (const char* f :
       {"keys/master.key", "keys/signing.key", "tls/server.key", "tls/ca.key", "plane.yaml"}) {
    struct stat st {};
    ASSERT_EQ(::stat((init_.data_dir + "/" + f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  EXPECT_EQ(init_.token.rfind("cce_", 0), 0u);
  InitOptions again;
  again.data_dir = init_.data_dir;
  auto r = InitPlane(again, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  // The config documents itself and loads back.
  auto c = LoadConfig(init_.data_dir);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->listen, "127.0.0.1:0");
}

TEST_F(PlaneTest, ConfigErrorsNameTheFieldAndLine) {
  std::string dir = tmp_ + "/cfg";
  fs::create_directories(dir);
  std::ofstream(dir + "/plane.yaml") << "listen: 127.0.0.1:1\nlimits:\n  max_bdy_bytes: 5\n";
  auto c = LoadConfig(dir);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("plane.yaml:3:3: limits.max_bdy_bytes: unknown field"),
            std::string::npos)
      << c.status().message();
  std::ofstream(dir + "/plane.yaml") << "log: {format: xml}\n";
  auto d = LoadConfig(dir);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("log.format: 'xml'"), std::string::npos);
}

TEST_F(PlaneTest, CheckpointFileIsConfigurableAndMustNameAFile) {
  auto c = LoadConfig(init_.data_dir);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->Path(c->audit_checkpoint_file), init_.data_dir + "/checkpoints.log");
  EXPECT_TRUE(fs::exists(init_.data_dir + "/checkpoints.log"));  // the genesis checkpoint
  std::string dir = tmp_ + "/cfg";
  fs::create_directories(dir);
  std::ofstream(dir + "/plane.yaml") << "audit_checkpoint_file: /elsewhere/cp.log\n";
  auto moved = LoadConfig(dir);
  ASSERT_TRUE(moved.ok()) << moved.status().message();
  EXPECT_EQ(moved->Path(moved->audit_checkpoint_file), "/elsewhere/cp.log");
  std::ofstream(dir + "/plane.yaml") << "audit_checkpoint_file: ''\n";
  auto empty = LoadConfig(dir);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("audit_checkpoint_file: expected a file path"),
            std::string::npos)
      << empty.status().message();
}

TEST_F(PlaneTest, SecretKeyFilesRefuseLoosePermissions) {
  std::string path = init_.data_dir + "/keys/master.key";
  ASSERT_TRUE(LoadFileMasterKey(path).ok());
  ::chmod(path.c_str(), 0644);
  auto k = LoadFileMasterKey(path);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find("mode 0644"), std::string::npos);
}

TEST_F(PlaneTest, MasterKeySealBindsContext) {
  auto k = LoadFileMasterKey(init_.data_dir + "/keys/master.key");
  ASSERT_TRUE(k.ok());
  auto sealed = (*k)->Seal(crypto::AsBytes("dataset key bytes"), "dataset-key:a");
  ASSERT_TRUE(sealed.ok());
  auto opened = (*k)->Open(*sealed, "dataset-key:a");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(opened->data()), opened->size()),
            "dataset key bytes");
  EXPECT_FALSE((*k)->Open(*sealed, "dataset-key:b").ok());
  auto flipped = *sealed;
  flipped[20] ^= 1;
  EXPECT_FALSE((*k)->Open(flipped, "dataset-key:a").ok());
}

TEST_F(PlaneTest, HealthAndMetricsOverVerifiedTls) {
  auto client = plane_->Client();
  auto& c = *client;
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h) << c.error().message();
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  ASSERT_TRUE(c.Get("/api/v1/whoami", BearerAuth(init_.token)));
  auto m = c.Get("/metrics", BearerAuth(init_.token));  // operator only (per-route activity)
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("cce_http_requests_total{route=\"/api/v1/whoami\",status=\"200\"} 1"),
            std::string::npos)
      << m->body;
  // A client that does not trust the plane's CA refuses to talk.
  http::testing::TestClient untrusting(plane_->port(), "/nonexistent-ca.pem");
  EXPECT_FALSE(untrusting.Get("/healthz"));
}

TEST_F(PlaneTest, AuthenticationAndRolesAreEnforcedAndAudited) {
  auto client = plane_->Client();
  auto& c = *client;
  auto none = c.Get("/api/v1/whoami");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"]["code"], "unauthenticated");
  auto bad = c.Get("/api/v1/whoami", BearerAuth("cce_" + std::string(64, '0')));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  auto me = c.Get("/api/v1/whoami", BearerAuth(init_.token));
  ASSERT_TRUE(me);
  ASSERT_EQ(me->status, 200);
  EXPECT_EQ(json::parse(me->body)["role"], "operator");

  auto add = c.Post("/api/v1/users", BearerAuth(init_.token),
                    R"({"name":"carol","role":"consumer"})", "application/json");
  ASSERT_TRUE(add);
  ASSERT_EQ(add->status, 201) << add->body;
  std::string carol = json::parse(add->body)["token"];
  auto carol_me = c.Get("/api/v1/whoami", BearerAuth(carol));
  ASSERT_TRUE(carol_me);
  EXPECT_EQ(json::parse(carol_me->body)["name"], "carol");
  auto forbidden = c.Post("/api/v1/users", BearerAuth(carol), R"({"name":"eve","role":"operator"})",
                          "application/json");
  ASSERT_TRUE(forbidden);
  EXPECT_EQ(forbidden->status, 403);
  auto list = c.Get("/api/v1/users", BearerAuth(carol));
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 403);

  // A user added from the command line while the server runs can log in.
  auto token = AddUser(init_.data_dir, "pat", store::Role::kProvider, clock_);
  ASSERT_TRUE(token.ok()) << token.status().message();
  auto pat = c.Get("/api/v1/whoami", BearerAuth(*token));
  ASSERT_TRUE(pat);
  EXPECT_EQ(json::parse(pat->body)["role"], "provider");
  EXPECT_EQ(AddUser(init_.data_dir, "pat", store::Role::kProvider, clock_).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_FALSE(AddUser(init_.data_dir, "Bad Name", store::Role::kProvider, clock_).ok());

  StopServer();
  ASSERT_TRUE(plane_->serve_status().ok()) << plane_->serve_status().message();
  // Every denial is in the audit log, which verifies with a signed checkpoint.
  auto config = LoadConfig(init_.data_dir);
  ASSERT_TRUE(config.ok());
  store::SqliteStoreOptions so;
  so.path = config->Path(config->database_path);
  auto db = store::SqliteStore::Open(so);
  ASSERT_TRUE(db.ok());
  auto entries = (*db)->ListAudit({});
  ASSERT_TRUE(entries.ok());
  int authn_denied = 0, authz_denied = 0;
  for (const auto& e : *entries) {
    if (e.record.decision != store::AuditDecision::kDeny) continue;
    authn_denied += e.record.action == "authn";
    authz_denied += e.record.action == "authz";
  }
  EXPECT_EQ(authn_denied, 2);
  EXPECT_EQ(authz_denied, 2);
  auto key = LoadSigningKey(config->Path(config->signing_key_file));
  ASSERT_TRUE(key.ok());
  auto report = store::VerifyAudit(**db, key->PublicKey());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->reason;
  EXPECT_GE(report->checkpoints_checked, 1);
}

TEST_F(PlaneTest, BadRequestsGetJsonErrors) {
  auto client = plane_->Client();
  auto& c = *client;
  auto malformed =
      c.Post("/api/v1/users", BearerAuth(init_.token), "{not json", "application/json");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400);
  EXPECT_EQ(json::parse(malformed->body)["error"]["message"],
            "body: not valid JSON: syntax error at line 1, column 3 (byte 2); expected a JSON "
            "object");
  auto unknown = c.Post("/api/v1/users", BearerAuth(init_.token),
                        R"({"name":"x","role":"consumer","admin":true})", "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400);
  EXPECT_EQ(json::parse(unknown->body)["error"]["message"],
            "body.admin: unknown field (allowed: name, role)");
  auto role = c.Post("/api/v1/users", BearerAuth(init_.token), R"({"name":"x","role":"king"})",
                     "application/json");
  ASSERT_TRUE(role);
  EXPECT_EQ(role->status, 400);
  auto big = c.Post("/api/v1/users", BearerAuth(init_.token), std::string(2 << 20, 'x'),
                    "application/json");
  ASSERT_TRUE(big) << c.error().ToString();
  EXPECT_EQ(big->status, 413);
  auto missing = c.Get("/api/v1/nope", BearerAuth(init_.token));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(json::parse(missing->body)["error"]["code"], "not_found");
}

TEST_F(PlaneTest, ProvidersRegisterDatasetsAndConsumersRentThem) {
  // A real encrypted dataset on disk.
  fs::create_directories(tmp_ + "/src");
  std::ofstream(tmp_ + "/src/a.csv") << "x,y\n1,2\n";
  auto key = format::DatasetKey::Generate();
  ASSERT_TRUE(key.ok());
  format::EncryptOptions eo;
  eo.dataset_id = "claims-2026";
  eo.dataset_version = 3;
  ASSERT_TRUE(format::EncryptDataset(tmp_ + "/src", tmp_ + "/enc", *key, eo).ok());
  auto key_text_secret = key->EncodeKeyFile();
  std::string key_text(reinterpret_cast<const char*>(key_text_secret.data()),
                       key_text_secret.size());
  auto wrong_key = format::DatasetKey::Generate();
  auto wrong_text_secret = wrong_key->EncodeKeyFile();
  std::string wrong_text(reinterpret_cast<const char*>(wrong_text_secret.data()),
                         wrong_text_secret.size());

  auto provider = AddUser(init_.data_dir, "pat", store::Role::kProvider, clock_);
  auto consumer = AddUser(init_.data_dir, "carol", store::Role::kConsumer, clock_);
  auto other = AddUser(init_.data_dir, "dave", store::Role::kConsumer, clock_);
  ASSERT_TRUE(provider.ok() && consumer.ok() && other.ok());
  auto client = plane_->Client();
  auto& c = *client;
  auto reg = [&](const std::string& token, json body) {
    return c.Post("/api/v1/datasets", BearerAuth(token), body.dump(), "application/json");
  };
  json good = {{"name", "claims"},
               {"location", "file://" + tmp_ + "/enc"},
               {"key", key_text},
               {"price", "12.50"},
               {"max_days", 10}};
  json with_wrong_key = good;
  with_wrong_key["key"] = wrong_text;
  auto wrong = reg(*provider, with_wrong_key);
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 400);
  EXPECT_NE(wrong->body.find("the key does not open the dataset"), std::string::npos)
      << wrong->body;
  auto by_consumer = reg(*consumer, good);
  ASSERT_TRUE(by_consumer);
  EXPECT_EQ(by_consumer->status, 403);
  auto ok = reg(*provider, good);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 201) << ok->body;
  json d = json::parse(ok->body);
  EXPECT_EQ(d["dataset_id"], "claims-2026");
  EXPECT_EQ(d["dataset_version"], 3);
  EXPECT_EQ(d["key_id"], crypto::ToHex(key->id()));
  EXPECT_FALSE(d.contains("key"));
  EXPECT_EQ(reg(*provider, good)->status, 409);
  json bad_name = good;
  bad_name["name"] = "Claims!";
  EXPECT_EQ(reg(*provider, bad_name)->status, 400);

  auto show = c.Get("/api/v1/datasets/claims", BearerAuth(*consumer));
  ASSERT_TRUE(show);
  EXPECT_EQ(show->status, 200);
  EXPECT_EQ(json::parse(show->body)["owner"], "pat");
  EXPECT_EQ(c.Get("/api/v1/datasets/nope", BearerAuth(*consumer))->status, 404);

  auto rent = [&](const std::string& token, json body) {
    return c.Post("/api/v1/rentals", BearerAuth(token), body.dump(), "application/json");
  };
  auto too_long = rent(*consumer, {{"dataset", "claims"}, {"days", 11}});
  ASSERT_TRUE(too_long);
  EXPECT_EQ(too_long->status, 400);
  EXPECT_NE(too_long->body.find("body.days"), std::string::npos);
  EXPECT_EQ(rent(*consumer, {{"dataset", "nope"}, {"days", 1}})->status, 404);
  EXPECT_EQ(rent(*provider, {{"dataset", "claims"}, {"days", 1}})->status, 403);
  auto rented = rent(*consumer, {{"dataset", "claims"}, {"days", 7}});
  ASSERT_TRUE(rented);
  ASSERT_EQ(rented->status, 201) << rented->body;
  json r = json::parse(rented->body);
  EXPECT_EQ(r["end"].get<int64_t>() - r["start"].get<int64_t>(), 7 * 86400);
  auto mine = c.Get("/api/v1/rentals", BearerAuth(*consumer));
  EXPECT_EQ(json::parse(mine->body)["rentals"].size(), 1u);
  auto theirs = c.Get("/api/v1/rentals", BearerAuth(*other));
  EXPECT_EQ(json::parse(theirs->body)["rentals"].size(), 0u);
  auto owners = c.Get("/api/v1/rentals", BearerAuth(*provider));
  EXPECT_EQ(json::parse(owners->body)["rentals"].size(), 1u);

  // The key rests sealed under the master key, bound to the dataset's name.
  StopServer();
  auto config = LoadConfig(init_.data_dir);
  store::SqliteStoreOptions so;
  so.path = config->Path(config->database_path);
  auto db = store::SqliteStore::Open(so);
  ASSERT_TRUE(db.ok());
  auto stored = (*db)->GetDatasetByName("claims");
  ASSERT_TRUE(stored.ok());
  auto mk = LoadFileMasterKey(config->Path(config->master_key_file));
  ASSERT_TRUE(mk.ok());
  auto opened = (*mk)->Open(stored->wrapped_key, "dataset-key:claims");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(crypto::ToHex(opened->span()), crypto::ToHex(key->bytes()));
  EXPECT_FALSE((*mk)->Open(stored->wrapped_key, "dataset-key:other").ok());
  auto signing = LoadSigningKey(config->Path(config->signing_key_file));
  auto chain = store::VerifyRentalChain(**db, signing->PublicKey());
  ASSERT_TRUE(chain.ok());
  EXPECT_TRUE(chain->ok()) << chain->reason;
}

TEST_F(PlaneTest, JobsAreCheckedPinnedAndDrivenToHeldFailClosed) {
  UseFakeProvisioner();
  JobWorld w = MakeJobWorld();
  const std::string* pat = &w.pat;
  const std::string* carol = &w.carol;
  const std::string* dave = &w.dave;
  auto client = plane_->Client();
  auto& c = *client;
  auto submit = [&](const std::string& token, const std::string& body, const std::string& idem) {
    http::testing::Headers h = BearerAuth(token);
    if (!idem.empty()) h.emplace("Idempotency-Key", idem);
    return c.Post("/api/v1/jobs", h, body, "application/yaml");
  };
  std::string good = Spec(w.image, "claims", 3600);
  auto no_rental = submit(*dave, good, "");
  ASSERT_TRUE(no_rental);
  EXPECT_EQ(no_rental->status, 403);
  EXPECT_NE(no_rental->body.find("spec.datasets[0].name: your rental of 'claims' does not cover"),
            std::string::npos)
      << no_rental->body;
  auto too_long = submit(*carol, Spec(w.image, "claims", 2 * 86400), "");
  EXPECT_EQ(too_long->status, 403) << too_long->body;
  auto unknown = submit(*carol, Spec(w.image, "nope", 60), "");
  EXPECT_EQ(unknown->status, 400);
  EXPECT_NE(unknown->body.find("unknown dataset 'nope'"), std::string::npos);
  auto no_image = submit(*carol, Spec("sha256:" + std::string(64, 'e'), "claims", 60), "");
  EXPECT_EQ(no_image->status, 400);
  EXPECT_NE(no_image->body.find("is not the manifest digest of one of your images"),
            std::string::npos)
      << no_image->body;
  auto bad_spec = submit(*carol, "apiVersion: cce4long/v1\nkind: Nope\n", "");
  EXPECT_EQ(bad_spec->status, 400);
  EXPECT_EQ(submit(*pat, good, "")->status, 403);  // providers do not submit jobs

  auto first = submit(*carol, good, "key-1");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 201) << first->body;
  std::string id = json::parse(first->body)["id"];
  auto replay = submit(*carol, good, "key-1");
  EXPECT_EQ(replay->status, 200);
  EXPECT_EQ(json::parse(replay->body)["id"], id);
  EXPECT_EQ(submit(*carol, Spec(w.image, "claims", 60), "key-1")->status, 409);

  // The fake provisioner plays the agent; the gate fails closed: HELD.
  json job;
  for (int i = 0; i < 200; ++i) {
    job = json::parse(c.Get("/api/v1/jobs/" + id, BearerAuth(*carol))->body);
    if (job["state"] == "HELD") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_EQ(job["state"], "HELD") << job.dump();
  std::vector<std::string> states;
  for (const auto& e : job["history"]) states.push_back(e["to"]);
  EXPECT_EQ(states, (std::vector<std::string>{"SUBMITTED", "AUTHORIZED", "PROVISIONING", "ATTESTED",
                                              "RUNNING", "OUTPUT_SUBMITTED", "HELD"}));
  EXPECT_EQ(c.Get("/api/v1/jobs/" + id, BearerAuth(*dave))->status, 404);  // not theirs
  EXPECT_EQ(json::parse(c.Get("/api/v1/jobs", BearerAuth(*dave))->body)["jobs"].size(), 0u);
  EXPECT_EQ(json::parse(c.Get("/api/v1/jobs", BearerAuth(*carol))->body)["jobs"].size(), 1u);
  EXPECT_EQ(json::parse(c.Get("/api/v1/jobs", BearerAuth(init_.token))->body)["jobs"].size(), 1u);
  auto held_dl = c.Get("/api/v1/jobs/" + id + "/output", BearerAuth(*carol));
  EXPECT_EQ(held_dl->status, 409) << held_dl->body;  // HELD: nothing leaves
  EXPECT_NE(held_dl->body.find("only once RELEASED"), std::string::npos);
  auto cancel =
      c.Post("/api/v1/jobs/" + id + "/cancel", BearerAuth(*carol), "", "application/json");
  EXPECT_EQ(cancel->status, 200) << cancel->body;
  EXPECT_EQ(json::parse(cancel->body)["state"], "CANCELLED");
  EXPECT_EQ(
      c.Post("/api/v1/jobs/" + id + "/cancel", BearerAuth(*carol), "", "application/json")->status,
      409);

  StopServer();
  auto config = LoadConfig(init_.data_dir);
  store::SqliteStoreOptions so;
  so.path = config->Path(config->database_path);
  auto db = store::SqliteStore::Open(so);
  ASSERT_TRUE(db.ok());
  auto signing = LoadSigningKey(config->Path(config->signing_key_file));
  auto report = store::VerifyAudit(**db, signing->PublicKey());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->reason;
  auto out = (*db)->GetOutput(id);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->verdict, store::GateVerdict::kHold);
}

TEST_F(PlaneTest, ImagesUploadVerifiedBlobsAndTagValidatedManifests) {
  auto consumer = AddUser(init_.data_dir, "carol", store::Role::kConsumer, clock_);
  auto provider = AddUser(init_.data_dir, "pat", store::Role::kProvider, clock_);
  ASSERT_TRUE(consumer.ok() && provider.ok());
  // The layer is larger than limits.max_body_bytes: it must stream (chunked).
  TestImage img = MakeTestImage("", 3u << 20);
  std::string layer_digest = image::Digest::Of(img.layer).str();
  std::string config_digest = image::Digest::Of(img.config).str();
  const std::string blobs_dir = init_.data_dir + "/images/blobs/sha256/";
  auto client = plane_->Client();
  auto& c = *client;
  auto put_streamed = [&](const std::string& token, const std::string& digest,
                          const std::string& data) {
    size_t sent = 0;
    return c.Put(
        "/api/v1/images/blobs/" + digest, BearerAuth(token),
        [&data, &sent](std::span<uint8_t> buf) -> StatusOr<size_t> {
          size_t n = std::min<size_t>({64 * 1024, buf.size(), data.size() - sent});
          std::copy_n(data.data() + sent, n, buf.data());
          sent += n;
          return n;
        },
        "application/octet-stream");
  };
  auto present = [&](const std::string& digest) {
    auto r = c.Get("/api/v1/images/blobs/" + digest, BearerAuth(*consumer));
    EXPECT_TRUE(r && r->status == 200);
    return json::parse(r->body)["present"].get<bool>();
  };

  EXPECT_FALSE(present(layer_digest));
  // Wrong bytes for the digest: 400 naming both digests, nothing stored.
  auto wrong = put_streamed(*consumer, layer_digest, img.layer + "x");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 400);
  EXPECT_NE(wrong->body.find(layer_digest), std::string::npos) << wrong->body;
  EXPECT_NE(wrong->body.find(image::Digest::Of(img.layer + "x").str()), std::string::npos);
  EXPECT_FALSE(present(layer_digest));
  EXPECT_FALSE(fs::exists(blobs_dir + layer_digest.substr(7)));
  EXPECT_TRUE(fs::is_empty(init_.data_dir + "/images/tmp"));
  // Providers may not push images; a malformed digest names the field.
  auto by_provider = c.Put("/api/v1/images/blobs/" + config_digest, BearerAuth(*provider),
                           img.config, "application/octet-stream");
  ASSERT_TRUE(by_provider);
  EXPECT_EQ(by_provider->status, 403);
  auto bad_digest = c.Put("/api/v1/images/blobs/sha256:ABC", BearerAuth(*consumer), img.config,
                          "application/octet-stream");
  ASSERT_TRUE(bad_digest);
  EXPECT_EQ(bad_digest->status, 400);
  EXPECT_NE(bad_digest->body.find("path.digest"), std::string::npos) << bad_digest->body;
  // Chunked bodies are refused on JSON routes (they would be unbounded).
  std::string users_body = R"({"name":"x","role":"consumer"})";
  bool users_sent = false;
  auto chunked_json = plane_->Client()->Post(
      "/api/v1/users", BearerAuth(init_.token),
      [&](std::span<uint8_t> buf) -> StatusOr<size_t> {
        if (users_sent) return size_t{0};
        users_sent = true;
        size_t n = std::min(buf.size(), users_body.size());
        std::copy_n(users_body.data(), n, buf.data());
        return n;
      },
      "application/json");
  // The plane answers 413 and closes without reading the body, so the client
  // may see the reset before the answer; either way nothing was created.
  if (chunked_json) {
    EXPECT_EQ(chunked_json->status, 413);
  }
  auto users = c.Get("/api/v1/users", BearerAuth(init_.token));
  ASSERT_TRUE(users);
  EXPECT_EQ(users->body.find(R"("name":"x")"), std::string::npos) << users->body;

  // The manifest refers to a layer that is not stored yet: 409 naming it.
  auto cfg = c.Put("/api/v1/images/blobs/" + config_digest, BearerAuth(*consumer), img.config,
                   "application/octet-stream");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->status, 201) << cfg->body;
  auto early = c.Put("/api/v1/images/app/tags/1.0", BearerAuth(*consumer), img.manifest,
                     "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, 409);
  EXPECT_NE(early->body.find(layer_digest + ": blob not in the store"), std::string::npos)
      << early->body;

  auto layer = put_streamed(*consumer, layer_digest, img.layer);
  ASSERT_TRUE(layer);
  EXPECT_EQ(layer->status, 201) << layer->body;
  EXPECT_EQ(json::parse(layer->body)["size"], img.layer.size());
  EXPECT_TRUE(present(layer_digest));

  auto bad_name =
      c.Put("/api/v1/images/App/tags/1.0", BearerAuth(*consumer), img.manifest, "application/json");
  ASSERT_TRUE(bad_name);
  EXPECT_EQ(bad_name->status, 400);
  EXPECT_NE(bad_name->body.find("path.name"), std::string::npos);
  auto bad_tag = c.Put("/api/v1/images/app/tags/1.0+x", BearerAuth(*consumer), img.manifest,
                       "application/json");
  ASSERT_TRUE(bad_tag);
  EXPECT_EQ(bad_tag->status, 400);
  EXPECT_NE(bad_tag->body.find("path.tag"), std::string::npos);

  auto tagged = c.Put("/api/v1/images/team/app/tags/1.0", BearerAuth(*consumer), img.manifest,
                      "application/json");
  ASSERT_TRUE(tagged);
  ASSERT_EQ(tagged->status, 201) << tagged->body;
  std::string manifest_digest = image::Digest::Of(img.manifest).str();
  EXPECT_EQ(json::parse(tagged->body),
            (json{{"name", "team/app"}, {"tag", "1.0"}, {"digest", manifest_digest}}));
  EXPECT_TRUE(present(manifest_digest));

  // Images belong to their owner: another user does not see them.
  auto others = c.Get("/api/v1/images", BearerAuth(*provider));
  ASSERT_TRUE(others);
  EXPECT_EQ(json::parse(others->body)["images"].size(), 0u) << others->body;
  auto list = c.Get("/api/v1/images", BearerAuth(*consumer));
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200);
  json images = json::parse(list->body)["images"];
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0]["name"], "team/app");
  EXPECT_EQ(images[0]["tag"], "1.0");
  EXPECT_EQ(images[0]["digest"], manifest_digest);
  EXPECT_EQ(images[0]["owner"], "carol");

  // The push is in the audit log.
  StopServer();
  auto config = LoadConfig(init_.data_dir);
  store::SqliteStoreOptions so;
  so.path = config->Path(config->database_path);
  auto db = store::SqliteStore::Open(so);
  ASSERT_TRUE(db.ok());
  store::AuditFilter af;
  auto audit = (*db)->ListAudit(af);
  ASSERT_TRUE(audit.ok());
  int pushes = 0;
  for (const auto& a : *audit) {
    if (a.record.action == "image.push" && a.record.object == "image:team/app:1.0") ++pushes;
  }
  EXPECT_EQ(pushes, 1);
}

class ReleasingGate : public Gate {
 public:
  StatusOr<GateDecision> Score(const store::Output&) override {
    ++calls;
    GateDecision d;
    d.verdict = store::GateVerdict::kRelease;
    d.score = 0.125;
    d.findings_json = "[]";
    return d;
  }
  std::atomic<int> calls{0};
};

TEST_F(PlaneTest, ReleasedOutputsAreSealedAtRestAndOnlyTheirConsumerDownloadsThem) {
  ReleasingGate gate;
  gate_ = &gate;
  UseFakeProvisioner();
  JobWorld w = MakeJobWorld();
  auto c = plane_->Client();
  auto sub = c->Post("/api/v1/jobs", BearerAuth(w.carol), Spec(w.image, "claims", 600),
                     "application/yaml");
  ASSERT_EQ(sub->status, 201) << sub->body;
  std::string id = json::parse(sub->body)["id"];
  json job = WaitForState(w.carol, id, "RELEASED");
  ASSERT_EQ(job["state"], "RELEASED") << job.dump();
  EXPECT_EQ(job["output"]["verdict"], "release");
  EXPECT_TRUE(job["output"]["downloadable"].get<bool>());
  EXPECT_EQ(gate.calls.load(), 1);

  auto dl = c->Get("/api/v1/jobs/" + id + "/output", BearerAuth(w.carol));
  ASSERT_EQ(dl->status, 200) << dl->body;
  EXPECT_NE(dl->body.find("fake provisioner output for " + id), std::string::npos);
  std::string digest = "sha256:" + crypto::ToHex(crypto::Sha256(crypto::AsBytes(dl->body)));
  EXPECT_EQ(digest, job["output"]["digest"]);
  EXPECT_EQ(dl->get_header_value("X-Output-Digest"), digest);
  // Nobody else reads it: another consumer does not see the job at all;
  // operators, reviewers and providers may not download.
  EXPECT_EQ(c->Get("/api/v1/jobs/" + id + "/output", BearerAuth(w.dave))->status, 404);
  EXPECT_EQ(c->Get("/api/v1/jobs/" + id + "/output", BearerAuth(init_.token))->status, 403);
  EXPECT_EQ(c->Get("/api/v1/jobs/" + id + "/output", BearerAuth(w.pat))->status, 403);

  // At rest the output is sealed: no plaintext in the file, mode 0600.
  std::string path = init_.data_dir + "/outputs/" + id + ".sealed";
  std::string sealed;
  {
    std::ifstream in(path, std::ios::binary);
    sealed.assign((std::istreambuf_iterator<char>(in)), {});
  }
  ASSERT_GT(sealed.size(), 29u);
  EXPECT_EQ(sealed.find("fake provisioner output"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A flipped byte in the sealed file: an error, never altered bytes.
  sealed[sealed.size() / 2] = static_cast<char>(sealed[sealed.size() / 2] ^ 0x01);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << sealed;
  auto bad = c->Get("/api/v1/jobs/" + id + "/output", BearerAuth(w.carol));
  EXPECT_EQ(bad->status, 500);
  EXPECT_NE(bad->body.find("data_loss"), std::string::npos) << bad->body;

  StopServer();
  auto db = OpenDb();
  store::AuditFilter f;
  f.object = "job:" + id;
  auto entries = db->ListAudit(f);
  ASSERT_TRUE(entries.ok());
  int downloads = 0;
  int verdicts = 0;
  for (const auto& e : *entries) {
    if (e.record.action == "output.download") ++downloads;
    if (e.record.action == "gate.verdict") ++verdicts;
  }
  EXPECT_EQ(downloads, 1);  // the one that succeeded
  EXPECT_EQ(verdicts, 1);
}

TEST_F(PlaneTest, RestartResumesJobsLeftMidWayAndNeverProvisionsTwice) {
  UseFakeProvisioner();
  JobWorld w = MakeJobWorld();
  StopServer();
  // Jobs as a plane killed mid-way leaves them, one in each state the
  // engine or the provisioner owns.
  const std::vector<store::JobState> path = {
      store::JobState::kSubmitted, store::JobState::kAuthorized, store::JobState::kProvisioning,
      store::JobState::kAttested,  store::JobState::kRunning,    store::JobState::kOutputSubmitted};
  auto spec = ParseJobSpec(Spec(w.image, "claims", 600), "spec");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  std::vector<std::string> ids;
  {
    auto db = OpenDb();
    auto carol = db->GetUserByName("carol");
    ASSERT_TRUE(carol.ok());
    store::AuditRecord a;
    a.at = clock_.NowUnix();
    a.actor = "test";
    a.action = "test.setup";
    for (size_t i = 0; i < path.size(); ++i) {
      store::Job j;
      j.id = "job-00000000000000" + std::to_string(10 + i);
      j.consumer_id = carol->id;
      j.name = "left";
      j.spec_json = JobSpecToJson(*spec);
      j.image_digest = w.image;
      j.reason = "submitted";
      j.created_at = j.updated_at = a.at;
      j.deadline = a.at + 600;
      ASSERT_TRUE(db->CreateJob(j, a).ok());
      for (size_t k = 1; k <= i; ++k) {
        if (path[k] == store::JobState::kOutputSubmitted) {
          store::Output out;
          out.job_id = j.id;
          out.blob_ref = "none:test";
          out.digest = "sha256:" + std::string(64, '0');
          out.created_at = a.at;
          ASSERT_TRUE(db->PutOutput(out, a).ok());
        }
        ASSERT_TRUE(db->TransitionJob(j.id, path[k - 1], path[k], "before the crash", a).ok());
      }
      ids.push_back(j.id);
    }
  }
  StartServer();
  for (size_t i = 0; i < ids.size(); ++i) {
    json job = WaitForState(w.carol, ids[i], "HELD");
    ASSERT_EQ(job["state"], "HELD")
        << "left in " << store::JobStateName(path[i]) << ": " << job.dump();
    int provisioning = 0;
    std::string prev;
    for (const auto& e : job["history"]) {
      if (e["to"] == "PROVISIONING") ++provisioning;
      EXPECT_NE(e["to"], prev) << job.dump();  // no state twice in a row
      prev = e["to"];
    }
    EXPECT_EQ(provisioning, 1) << job.dump();
  }
  // Paging: 6 jobs, newest first, in pages of 4.
  auto c = plane_->Client();
  json page1 = json::parse(c->Get("/api/v1/jobs?limit=4", BearerAuth(w.carol))->body);
  ASSERT_EQ(page1["jobs"].size(), 4u);
  EXPECT_EQ(page1["next_offset"], 4);
  json page2 = json::parse(c->Get("/api/v1/jobs?limit=4&offset=4", BearerAuth(w.carol))->body);
  ASSERT_EQ(page2["jobs"].size(), 2u);
  EXPECT_FALSE(page2.contains("next_offset"));
  EXPECT_NE(page1["jobs"][3]["id"], page2["jobs"][0]["id"]);
  auto bad = c->Get("/api/v1/jobs?limit=0", BearerAuth(w.carol));
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("query parameter 'limit'"), std::string::npos) << bad->body;
  c.reset();

  StopServer();
  auto db = OpenDb();
  // Credentials: one for the job the engine provisioned after the restart,
  // none re-issued for jobs that were already past AUTHORIZED.
  for (size_t i = 0; i < ids.size(); ++i) {
    store::AuditFilter f;
    f.object = "job:" + ids[i];
    auto entries = db->ListAudit(f);
    ASSERT_TRUE(entries.ok());
    int issued = 0;
    for (const auto& e : *entries) issued += e.record.action == "credential.issue" ? 1 : 0;
    EXPECT_EQ(issued, path[i] <= store::JobState::kAuthorized ? 1 : 0) << ids[i];
  }
}

TEST_F(PlaneTest, FailedAuthenticationsAreRateLimitedPerAddress) {
  auto c = plane_->Client();
  for (int i = 0; i < FailureLimiter::kMaxFailures; ++i) {
    ASSERT_EQ(c->Get("/api/v1/whoami", BearerAuth("cce_guess" + std::to_string(i)))->status, 401);
  }
  auto limited = c->Get("/api/v1/whoami", BearerAuth("cce_guess"));
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429) << limited->body;
  EXPECT_EQ(limited->get_header_value("Retry-After"), "60");
  for (int i = 0; i < 30; ++i) EXPECT_EQ(c->Get("/api/v1/whoami", BearerAuth("x"))->status, 429);
  // A valid token from the same address still works (no lock-out).
  EXPECT_EQ(c->Get("/api/v1/whoami", BearerAuth(init_.token))->status, 200);
  StopServer();
  auto db = OpenDb();
  auto entries = db->ListAudit({});
  ASSERT_TRUE(entries.ok());
  int denials = 0;
  int limits = 0;
  for (const auto& e : *entries) {
    denials += e.record.action == "authn" ? 1 : 0;
    limits += e.record.action == "authn.rate_limit" ? 1 : 0;
  }
  EXPECT_EQ(denials, FailureLimiter::kMaxFailures);  // the flood did not fill the log
  EXPECT_EQ(limits, 1);
}

// Admits (the HTTP front's quick admit for key broker routes) answers as
// Check would and takes nothing away: the first refusal is still Check's.
TEST(FailureLimiterTest, AdmitsAgreesWithCheckAndChangesNothing) {
  FailureLimiter l;
  EXPECT_TRUE(l.Admits("10.0.0.1", 100));
  for (int i = 0; i < FailureLimiter::kMaxFailures; ++i) {
    EXPECT_TRUE(l.Admits("10.0.0.1", 100)) << i;
    l.RecordFailure("10.0.0.1", 100);
  }
  EXPECT_FALSE(l.Admits("10.0.0.1", 100));
  EXPECT_FALSE(l.Admits("10.0.0.1", 101));
  EXPECT_EQ(l.Check("10.0.0.1", 101), FailureLimiter::Admission::kFirstRefusal);
  EXPECT_EQ(l.Check("10.0.0.1", 101), FailureLimiter::Admission::kRefusal);
  EXPECT_FALSE(l.Admits("10.0.0.1", 101));
  EXPECT_TRUE(l.Admits("10.0.0.2", 101));
  EXPECT_TRUE(l.Admits("10.0.0.1", 100 + FailureLimiter::kWindowSeconds));
  EXPECT_EQ(l.Check("10.0.0.1", 100 + FailureLimiter::kWindowSeconds),
            FailureLimiter::Admission::kAdmit);
}

TEST_F(PlaneTest, AuditVerifyNamesTheFirstTamperedEntry) {
  JobWorld w = MakeJobWorld();
  auto c = plane_->Client();
  auto ok = c->Get("/api/v1/audit/verify", BearerAuth(init_.token));
  ASSERT_EQ(ok->status, 200) << ok->body;
  json r = json::parse(ok->body);
  EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_GT(r["audit"]["entries_checked"].get<int64_t>(), 3);
  EXPECT_EQ(c->Get("/api/v1/audit/verify", BearerAuth(w.carol))->status, 403);
  auto list = c->Get("/api/v1/audit?limit=2", BearerAuth(init_.token));
  ASSERT_EQ(list->status, 200);
  EXPECT_EQ(json::parse(list->body)["entries"].size(), 2u);
  EXPECT_EQ(c->Get("/api/v1/audit?limit=0", BearerAuth(init_.token))->status, 400);
  EXPECT_EQ(c->Get("/api/v1/audit", BearerAuth(w.carol))->status, 403);

  // Edit one stored audit row behind the plane's back.
  StopServer();
  int64_t victim = 0;
  {
    auto db = OpenDb();
    auto entries = db->ListAudit({});
    ASSERT_TRUE(entries.ok());
    for (const auto& e : *entries) {
      if (e.record.action == "rental.create" || e.record.action == "rental.add") victim = e.seq;
    }
    if (victim == 0) victim = (*entries)[entries->size() / 2].seq;
  }
  auto config = LoadConfig(init_.data_dir);
  const std::string db_path = config->Path(config->database_path);
  auto sql = [&](const std::string& statements) {
    return std::system(("sqlite3 '" + db_path + "' \"" + statements + "\"").c_str());
  };
  // The attacker drops the append-only triggers first.
  ASSERT_EQ(sql("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'user:mallory' "
                "WHERE seq = " +
                std::to_string(victim) + ";"),
            0);
  StartServer();
  auto bad = plane_->Client()->Get("/api/v1/audit/verify", BearerAuth(init_.token));
  ASSERT_EQ(bad->status, 200) << bad->body;
  r = json::parse(bad->body);
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["audit"]["first_bad_seq"].get<int64_t>(), victim) << r.dump();
  EXPECT_EQ(r["audit"]["failure"], "edited") << r.dump();
  EXPECT_TRUE(r["rentals"]["ok"].get<bool>());

  // A rental record lengthened in place: the rental chain names it.
  StopServer();
  ASSERT_EQ(sql("DROP TRIGGER rentals_no_update; UPDATE rentals SET end_at = end_at + 864000 "
                "WHERE seq = 1;"),
            0);
  StartServer();
  auto bad2 = plane_->Client()->Get("/api/v1/audit/verify", BearerAuth(init_.token));
  ASSERT_EQ(bad2->status, 200) << bad2->body;
  r = json::parse(bad2->body);
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_FALSE(r["rentals"]["ok"].get<bool>());
  EXPECT_EQ(r["rentals"]["first_bad_seq"].get<int64_t>(), 1) << r.dump();
}

// Issue 10, finding 2: deleting the last audit rows and the checkpoints above
// them, or the whole log, verified. The plane now checks the checkpoint file
// kept outside the database and requires entry 1 to be its signed genesis.
TEST_F(PlaneTest, AuditVerifyCatchesACutLogThroughTheCheckpointFileAndTheGenesis) {
  JobWorld w = MakeJobWorld();
  auto c = plane_->Client();
  // Who may read them (kept out of the matrix below, which is at the
  // per-address failure limit).
  EXPECT_EQ(c->Get("/api/v1/audit/checkpoints", BearerAuth(w.carol))->status, 403);
  EXPECT_EQ(c->Get("/api/v1/audit/rentals", BearerAuth(w.carol))->status, 403);
  EXPECT_EQ(c->Get("/api/v1/audit/rentals", BearerAuth(w.pat))->status, 403);
  EXPECT_EQ(c->Get("/api/v1/audit/rentals?limit=0", BearerAuth(init_.token))->status, 400);
  auto chain = c->Get("/api/v1/audit/rentals", BearerAuth(init_.token));
  ASSERT_EQ(chain->status, 200) << chain->body;
  EXPECT_EQ(json::parse(chain->body)["rentals"].size(), 1u);
  auto cps = c->Get("/api/v1/audit/checkpoints", BearerAuth(init_.token));
  ASSERT_EQ(cps->status, 200) << cps->body;
  json j = json::parse(cps->body);
  ASSERT_FALSE(j["audit"].empty());
  EXPECT_EQ(j["audit"][0]["seq"], 1);                            // the genesis, signed at init
  const int64_t head = j["audit"].back()["seq"].get<int64_t>();  // signed on request
  ASSERT_GE(head, 4);
  EXPECT_EQ(j["rentals"].size(), 1u);  // carol's rental
  EXPECT_EQ(j["public_key"].get<std::string>().size(), 64u);
  StopServer();
  auto config = LoadConfig(init_.data_dir);
  const std::string db_path = config->Path(config->database_path);
  auto sql = [&](const std::string& statements) {
    return std::system(("sqlite3 '" + db_path + "' \"" + statements + "\"").c_str());
  };
  const std::string keep = std::to_string(head - 2);
  ASSERT_EQ(sql("DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_checkpoints_no_delete;"
                "DELETE FROM audit_log WHERE seq > " +
                keep + "; DELETE FROM audit_checkpoints WHERE seq > " + keep + ";"),
            0);
  StartServer();
  auto cut = plane_->Client()->Get("/api/v1/audit/verify", BearerAuth(init_.token));
  ASSERT_EQ(cut->status, 200) << cut->body;
  j = json::parse(cut->body);
  EXPECT_EQ(j["audit"]["failure"], "truncated") << j.dump();
  EXPECT_EQ(j["audit"]["first_bad_seq"].get<int64_t>(), head - 1) << j.dump();

  // Everything deleted, the checkpoint file too: no signed genesis.
  StopServer();
  ASSERT_EQ(sql("DELETE FROM audit_log; DELETE FROM audit_checkpoints;"), 0);
  fs::remove(init_.data_dir + "/checkpoints.log");
  StartServer();
  auto empty = plane_->Client()->Get("/api/v1/audit/verify", BearerAuth(init_.token));
  ASSERT_EQ(empty->status, 200) << empty->body;
  j = json::parse(empty->body);
  EXPECT_EQ(j["audit"]["failure"], "no signed genesis") << j.dump();
}

// Issue 10, finding 2: a rental row inserted behind the plane's back, with a
// zero hash and signature, let a consumer submit a job for a dataset never
// rented (and the key broker uses the same check).
TEST_F(PlaneTest, AForgedRentalRowDoesNotLetAJobBeSubmitted) {
  JobWorld w = MakeJobWorld();
  StopServer();
  int64_t dave = 0, dataset = 0;
  std::string head_hash;
  {
    auto db = OpenDb();
    dave = db->GetUserByName("dave")->id;
    dataset = db->GetDatasetByName("claims")->id;
    auto rentals = db->ListRentals({});
    ASSERT_TRUE(rentals.ok());
    ASSERT_EQ(rentals->size(), 1u);
    head_hash = crypto::ToHex(rentals->back().hash);
  }
  auto config = LoadConfig(init_.data_dir);
  const std::string db_path = config->Path(config->database_path);
  ASSERT_EQ(std::system(("sqlite3 '" + db_path +
                         "' \"INSERT INTO rentals (seq, dataset_id, consumer_id, start_at, end_at,"
                         " created_at, prev_hash, hash, signature) VALUES (2, " +
                         std::to_string(dataset) + ", " + std::to_string(dave) +
                         ", 0, 9999999999, 1, X'" + head_hash + "', zeroblob(32), zeroblob(64));\"")
                            .c_str()),
            0);
  StartServer();
  auto sub = plane_->Client()->Post("/api/v1/jobs", BearerAuth(w.dave),
                                    Spec(w.image, "claims", 600), "application/yaml");
  ASSERT_TRUE(sub);
  EXPECT_NE(sub->status, 201) << "a job was accepted on a forged rental: " << sub->body;
  EXPECT_NE(sub->body.find("rental 2: not signed by the plane"), std::string::npos) << sub->body;
  auto jobs = plane_->Client()->Get("/api/v1/jobs", BearerAuth(w.dave));
  ASSERT_EQ(jobs->status, 200);
  EXPECT_TRUE(json::parse(jobs->body)["jobs"].empty()) << jobs->body;
}

TEST_F(PlaneTest, ASecondServerOnTheSameDataDirectoryIsRefused) {
  ServeOptions so;
  so.data_dir = init_.data_dir;
  so.listen_override = "127.0.0.1:0";
  std::atomic<bool> stop{true};
  so.stop = &stop;
  Status second = Serve(so, clock_);
  EXPECT_EQ(second.code(), StatusCode::kFailedPrecondition) << second.message();
  EXPECT_NE(second.message().find("already serving"), std::string::npos) << second.message();
  StopServer();  // the lock goes with the first server
  EXPECT_TRUE(Serve(so, clock_).ok());
}

// Every endpoint x every role (and no token): a role the endpoint does not
// allow gets 403 (and an audit entry); an allowed one never does (it may
// still get 400/404/409 for the request itself); no token is always 401.
TEST_F(PlaneTest, AuthorizationMatrixCoversEveryEndpointAndRole) {
  JobWorld w = MakeJobWorld();
  auto rita = AddUser(init_.data_dir, "rita", store::Role::kReviewer, clock_);
  ASSERT_TRUE(rita.ok());
  auto c = plane_->Client();
  auto sub = c->Post("/api/v1/jobs", BearerAuth(w.carol), Spec(w.image, "claims", 600),
                     "application/yaml");
  ASSERT_EQ(sub->status, 201) << sub->body;
  const std::string job = json::parse(sub->body)["id"];
  const std::string blob = "/api/v1/images/blobs/sha256:" + std::string(64, 'a');
  enum : unsigned { P = 1, C = 2, R = 4, O = 8, ALL = 15 };
  struct Case {
    std::string method, path, body;
    unsigned allowed;
  };
  const std::vector<Case> cases = {
      {"GET", "/api/v1/whoami", "", ALL},
      {"GET", "/api/v1/users", "", O},
      {"POST", "/api/v1/users", R"({"name":"x","role":"nope"})", O},
      {"POST", "/api/v1/datasets", "{}", P},
      {"GET", "/api/v1/datasets", "", ALL},
      {"GET", "/api/v1/datasets/claims", "", ALL},
      {"POST", "/api/v1/rentals", "{}", C},
      {"GET", "/api/v1/rentals", "", ALL},
      {"GET", blob, "", C | O},
      {"PUT", blob, "x", C | O},
      {"PUT", "/api/v1/images/team/app/tags/1", "{}", C | O},
      {"DELETE", "/api/v1/images/team/app/tags/1", "", C | O},
      {"GET", "/api/v1/images", "", ALL},
      {"POST", "/api/v1/jobs", "kind: nope", C},
      {"GET", "/api/v1/jobs", "", C | R | O},
      {"GET", "/api/v1/jobs/" + job, "", C | R | O},
      {"GET", "/api/v1/jobs/" + job + "/output", "", C},
      {"GET", "/api/v1/audit", "", R | O},
      {"GET", "/api/v1/audit/verify", "", O},
      {"GET", "/api/v1/reviews", "", R | O},
      {"GET", "/api/v1/reviews/" + job, "", R},
      {"GET", "/api/v1/reviews/" + job + "/files/stdout.txt", "", R},
      {"POST", "/api/v1/reviews/" + job + "/approve", "{}", R},
      {"POST", "/api/v1/reviews/" + job + "/reject", "{}", R},
      {"POST", "/api/v1/jobs/" + job + "/cancel", "", C | O},  // last: it cancels
  };
  const std::vector<std::pair<unsigned, std::string>> roles = {
      {P, w.pat}, {R, *rita}, {C, w.carol}, {O, init_.token}};
  auto send = [&](const Case& k, const std::string& token) {
    http::testing::Headers h;
    if (!token.empty()) h = BearerAuth(token);
    http::testing::Result r = k.method == "GET"      ? c->Get(k.path, h)
                              : k.method == "DELETE" ? c->Delete(k.path, h)
                              : k.method == "PUT"    ? c->Put(k.path, h, k.body, "application/json")
                                                  : c->Post(k.path, h, k.body, "application/json");
    return r ? r->status : -1;
  };
  int denials = 0;
  int anonymous = 0;
  for (const Case& k : cases) {
    // Past the address's failure limit, a missing token is 429 instead.
    EXPECT_EQ(send(k, ""), ++anonymous <= FailureLimiter::kMaxFailures ? 401 : 429)
        << k.method << " " << k.path;
    for (const auto& [role, token] : roles) {
      int status = send(k, token);
      if ((k.allowed & role) != 0) {
        EXPECT_NE(status, 403) << k.method << " " << k.path << " role " << role;
        EXPECT_NE(status, 401) << k.method << " " << k.path << " role " << role;
        EXPECT_NE(status, -1) << k.method << " " << k.path << " role " << role;
      } else {
        EXPECT_EQ(status, 403) << k.method << " " << k.path << " role " << role;
        ++denials;
      }
    }
  }
  StopServer();
  auto db = OpenDb();
  store::AuditFilter f;
  f.limit = 10000;
  auto entries = db->ListAudit(f);
  ASSERT_TRUE(entries.ok());
  int audited = 0;
  for (const auto& e : *entries) audited += e.record.action == "authz" ? 1 : 0;
  EXPECT_EQ(audited, denials);
}

}  // namespace
}  // namespace cce::plane
