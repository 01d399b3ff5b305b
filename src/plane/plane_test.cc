// The plane over real TLS on a loopback port: init, authentication,
// authorization, users, error bodies, limits, graceful stop with a signed
// audit checkpoint.
#include "plane/plane.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "format/format.h"
#include "plane/config.h"
#include "plane/keys.h"
#include "plane/master_key.h"
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
    std::string tmpl = (fs::temp_directory_path() / "cce-plane-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
    InitOptions o;
    o.data_dir = tmp_ + "/plane";
    o.listen = "127.0.0.1:0";
    auto r = InitPlane(o, clock_);
    ASSERT_TRUE(r.ok()) << r.status().message();
    init_ = *r;
    ServeOptions so;
    so.data_dir = init_.data_dir;
    so.stop = &stop_;
    std::promise<int> bound;
    auto port_future = bound.get_future();
    so.on_listening = [&bound](int port) { bound.set_value(port); };
    server_ = std::thread([this, so] { serve_status_ = Serve(so, clock_); });
    ASSERT_EQ(port_future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    port_ = port_future.get();
  }
  void TearDown() override {
    StopServer();
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  void StopServer() {
    if (server_.joinable()) {
      stop_ = true;
      server_.join();
    }
  }

  std::unique_ptr<httplib::SSLClient> Client() {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port_);
    c->set_ca_cert_path(init_.ca_file.c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(5);
    return c;
  }
  httplib::Headers Auth(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

  FixedClock clock_;
  std::string tmp_;
  InitResult init_;
  std::atomic<bool> stop_{false};
  std::thread server_;
  Status serve_status_;
  int port_ = 0;
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
  auto client = Client();
  auto& c = *client;
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h) << httplib::to_string(h.error());
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  ASSERT_TRUE(c.Get("/api/v1/whoami", Auth(init_.token)));
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("cce_http_requests_total{route=\"/api/v1/whoami\",status=\"200\"} 1"),
            std::string::npos)
      << m->body;
  // A client that does not trust the plane's CA refuses to talk.
  httplib::SSLClient untrusting("127.0.0.1", port_);
  untrusting.set_ca_cert_path("/nonexistent-ca.pem");
  untrusting.enable_server_certificate_verification(true);
  EXPECT_FALSE(untrusting.Get("/healthz"));
}

TEST_F(PlaneTest, AuthenticationAndRolesAreEnforcedAndAudited) {
  auto client = Client();
  auto& c = *client;
  auto none = c.Get("/api/v1/whoami");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"]["code"], "unauthenticated");
  auto bad = c.Get("/api/v1/whoami", Auth("cce_" + std::string(64, '0')));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  auto me = c.Get("/api/v1/whoami", Auth(init_.token));
  ASSERT_TRUE(me);
  ASSERT_EQ(me->status, 200);
  EXPECT_EQ(json::parse(me->body)["role"], "operator");

  auto add = c.Post("/api/v1/users", Auth(init_.token), R"({"name":"carol","role":"consumer"})",
                    "application/json");
  ASSERT_TRUE(add);
  ASSERT_EQ(add->status, 201) << add->body;
  std::string carol = json::parse(add->body)["token"];
  auto carol_me = c.Get("/api/v1/whoami", Auth(carol));
  ASSERT_TRUE(carol_me);
  EXPECT_EQ(json::parse(carol_me->body)["name"], "carol");
  auto forbidden = c.Post("/api/v1/users", Auth(carol), R"({"name":"eve","role":"operator"})",
                          "application/json");
  ASSERT_TRUE(forbidden);
  EXPECT_EQ(forbidden->status, 403);
  auto list = c.Get("/api/v1/users", Auth(carol));
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 403);

  // A user added from the command line while the server runs can log in.
  auto token = AddUser(init_.data_dir, "pat", store::Role::kProvider, clock_);
  ASSERT_TRUE(token.ok()) << token.status().message();
  auto pat = c.Get("/api/v1/whoami", Auth(*token));
  ASSERT_TRUE(pat);
  EXPECT_EQ(json::parse(pat->body)["role"], "provider");
  EXPECT_EQ(AddUser(init_.data_dir, "pat", store::Role::kProvider, clock_).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_FALSE(AddUser(init_.data_dir, "Bad Name", store::Role::kProvider, clock_).ok());

  StopServer();
  ASSERT_TRUE(serve_status_.ok()) << serve_status_.message();
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
  auto client = Client();
  auto& c = *client;
  auto malformed = c.Post("/api/v1/users", Auth(init_.token), "{not json", "application/json");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400);
  EXPECT_EQ(json::parse(malformed->body)["error"]["message"], "body: not valid JSON");
  auto unknown = c.Post("/api/v1/users", Auth(init_.token),
                        R"({"name":"x","role":"consumer","admin":true})", "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400);
  EXPECT_EQ(json::parse(unknown->body)["error"]["message"], "body.admin: unknown field");
  auto role = c.Post("/api/v1/users", Auth(init_.token), R"({"name":"x","role":"king"})",
                     "application/json");
  ASSERT_TRUE(role);
  EXPECT_EQ(role->status, 400);
  auto big =
      c.Post("/api/v1/users", Auth(init_.token), std::string(2 << 20, 'x'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  auto missing = c.Get("/api/v1/nope", Auth(init_.token));
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
  auto client = Client();
  auto& c = *client;
  auto reg = [&](const std::string& token, json body) {
    return c.Post("/api/v1/datasets", Auth(token), body.dump(), "application/json");
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

  auto show = c.Get("/api/v1/datasets/claims", Auth(*consumer));
  ASSERT_TRUE(show);
  EXPECT_EQ(show->status, 200);
  EXPECT_EQ(json::parse(show->body)["owner"], "pat");
  EXPECT_EQ(c.Get("/api/v1/datasets/nope", Auth(*consumer))->status, 404);

  auto rent = [&](const std::string& token, json body) {
    return c.Post("/api/v1/rentals", Auth(token), body.dump(), "application/json");
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
  auto mine = c.Get("/api/v1/rentals", Auth(*consumer));
  EXPECT_EQ(json::parse(mine->body)["rentals"].size(), 1u);
  auto theirs = c.Get("/api/v1/rentals", Auth(*other));
  EXPECT_EQ(json::parse(theirs->body)["rentals"].size(), 0u);
  auto owners = c.Get("/api/v1/rentals", Auth(*provider));
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

}  // namespace
}  // namespace cce::plane
