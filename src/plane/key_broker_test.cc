// The key broker's refusals, called as services (no HTTP, no job engine, a
// clock the test moves), one test per rule, each proving the rule matters: a
// key fetched after a cancel or after the rental lapsed, a credential or
// nonce of another, sessions missing, expired or forged, the nonce cap, and
// the rollback pin carried in the released JWE. kbs_test.cc drives the same
// service end to end over HTTPS.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/kbs_client.h"
#include "attest/sim.h"
#include "crypto/jwe.h"
#include "format/format.h"
#include "plane/config.h"
#include "plane/credential.h"
#include "plane/keys.h"
#include "plane/plane.h"
#include "plane/plane_testing.h"
#include "plane/service_world.h"
#include "plane/services.h"
#include "store/sqlite_store.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using store::JobState;
using testing::MessageContains;
using testing::Must;

class KeyBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Must(testing::ServiceWorld::Create({
                      .clock = &clock_,
                      .simulated_tee = true,
                      .adjust =
                          [](ServiceDeps& d, const std::string& tmp) {
                            d.kbs_max_nonces_per_credential = 4;
                            d.dataset_allowed_roots = {tmp + "/datasets"};
                          },
                  }),
                  "world");
    tmp_ = world_->tmp();
    sim_dir_ = world_->init().data_dir + "/attestation/sim";
    services_ = &world_->services();
    db_ = &world_->db();
    signing_key_ = &world_->signing_key();
    public_key_ = world_->public_key();
    pat_ = AddUser("pat", store::Role::kProvider);
    carol_ = AddUser("carol", store::Role::kConsumer);
    // Dataset "claims" (version 7 of dataset id "claims-2026"), rented by
    // carol for one day.
    key_.emplace(Must(format::DatasetKey::Generate(), "key"));
    fs::create_directories(tmp_ + "/src");
    fs::create_directories(tmp_ + "/datasets");
    std::ofstream(tmp_ + "/src/a.csv") << "id,x\n1,2\n";
    format::EncryptOptions eo;
    eo.dataset_id = "claims-2026";
    eo.dataset_version = 7;
    ASSERT_TRUE(format::EncryptDataset(tmp_ + "/src", tmp_ + "/datasets/claims", *key_, eo).ok());
    api::RegisterDatasetRequest reg;
    reg.name = "claims";
    reg.location = "file://" + tmp_ + "/datasets/claims";
    auto kt = key_->EncodeKeyFile();
    reg.key.assign(reinterpret_cast<const char*>(kt.data()), kt.size());
    Must(services_->catalog.Register(pat_, reg), "register");
    Must(services_->rentals.Rent(carol_, {"claims", 1}), "rent");
  }
  Caller AddUser(const std::string& name, store::Role role) {
    return Must(world_->AddUser(name, role), "user");
  }

  struct Provisioned {
    std::string job_id;
    std::string credential;  // the signed token
    JobCredentialClaims claims;
  };
  // A job of carol's over `claims` in PROVISIONING with a credential, as the
  // job engine leaves it; the job's deadline is `timeout` from now.
  Provisioned Provision(const std::string& job_id, int64_t timeout = 3600) {
    store::Job job = testing::SubmittedJob(job_id, carol_.user.id, clock_.NowUnix(), timeout);
    job.datasets = {"claims"};
    testing::ProvisionedJob p = Must(world_->ProvisionJob(job, carol_, 30 * 86400), "provision");
    return {job_id, std::move(p.credential), std::move(p.claims)};
  }
  StatusOr<api::KbsAuthResponse> Auth(const std::string& credential) {
    return services_->key_broker.Auth("127.0.0.1", {credential});
  }
  crypto::Bytes Quote(const std::string& nonce, const crypto::EphemeralKey& key) {
    auto raw = Must(crypto::Base64UrlDecode(nonce), "nonce");
    return Must(attest::BuildSimulatedQuote(
                    sim_dir_, agent::KbsReportData(raw, key.public_key().public_bytes())),
                "quote");
  }
  StatusOr<api::KbsAttestResponse> Attest(const std::string& credential, const std::string& nonce,
                                          const crypto::EphemeralKey& key) {
    return services_->key_broker.Attest(
        "127.0.0.1",
        {credential, nonce, crypto::Base64UrlEncode(Quote(nonce, key)), key.PublicJwk()});
  }
  // Auth and attest; returns the session.
  std::string Session(const Provisioned& p, const crypto::EphemeralKey& key) {
    auto n = Must(Auth(p.credential), "auth");
    return Must(Attest(p.credential, n.nonce, key), "attest").session;
  }
  StatusOr<std::string> Release(const std::string& session, const std::string& dataset = "claims") {
    return services_->key_broker.ReleaseKey("127.0.0.1", "Bearer " + session, dataset);
  }
  static crypto::EphemeralKey NewKey() {
    return Must(crypto::EphemeralKey::Generate(crypto::EcdhCurve::kP256), "ephemeral key");
  }
  int64_t Denials(const std::string& action) { return Must(world_->Denials(action), "audit"); }

  TestClock clock_;
  std::unique_ptr<testing::ServiceWorld> world_;
  std::string tmp_, sim_dir_;
  Services* services_ = nullptr;
  store::Store* db_ = nullptr;
  const crypto::Ed25519PrivateKey* signing_key_ = nullptr;
  crypto::Bytes public_key_;
  Caller pat_, carol_;
  std::optional<format::DatasetKey> key_;
};

TEST_F(KeyBrokerTest, ReleasesTheKeyWithTheDatasetPin) {
  Provisioned p = Provision("job-00000000000000a1");
  crypto::EphemeralKey key = NewKey();
  std::string jwe = Must(Release(Session(p, key)), "release");
  crypto::JweOptions header;
  auto k = Must(crypto::JweDecrypt(key, jwe, &header), "decrypt");
  EXPECT_EQ(crypto::ToHex(k.span()), crypto::ToHex(key_->bytes()));
  EXPECT_EQ(header.kid, "dataset/claims");
  // The pin: the id and version of the manifest opened at registration.
  auto pin = Must(agent::ParseDatasetPin(header.apv), "pin");
  EXPECT_EQ(pin.dataset_id, "claims-2026");
  EXPECT_EQ(pin.min_version, 7u);
}

TEST_F(KeyBrokerTest, NoKeyAfterTheJobWasCancelled) {
  Provisioned p = Provision("job-00000000000000a2");
  crypto::EphemeralKey key = NewKey();
  std::string session = Session(p, key);
  Must(services_->jobs.Cancel(carol_, p.job_id), "cancel");
  auto r = Release(session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(MessageContains(r.status(), "CANCELLED")) << r.status().message();
  EXPECT_EQ(Denials("key.release"), 1);
}

TEST_F(KeyBrokerTest, NoKeyAfterTheRentalLapsed) {
  // Attested with a valid session; then the rental (one day) ends while the
  // job is still ATTESTED (the engine has not failed it yet: none runs here).
  Provisioned p = Provision("job-00000000000000a3");
  crypto::EphemeralKey key = NewKey();
  std::string session = Session(p, key);
  clock_.offset += 86400 + 1;
  // Re-sign the session for the new time, so only the rental is stale.
  const crypto::HmacSha256 mac = KbsSessionMac(*signing_key_);
  auto claims = Must(VerifyKbsSession(session, mac, clock_.NowUnix() - 86401), "session");
  claims.expires_at = clock_.NowUnix() + 300;
  session = Must(SignKbsSession(claims, mac), "sign session");
  ASSERT_EQ(Must(db_->GetJob(p.job_id), "job").state, JobState::kAttested);
  auto r = Release(session);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(MessageContains(r.status(), "rental")) << r.status().message();
}

TEST_F(KeyBrokerTest, SessionsMustBePresentUnexpiredAndOurs) {
  Provisioned p = Provision("job-00000000000000a4");
  crypto::EphemeralKey key = NewKey();
  std::string session = Session(p, key);
  auto none = services_->key_broker.ReleaseKey("127.0.0.1", session, "claims");  // no "Bearer "
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(MessageContains(none.status(), "Bearer")) << none.status().message();
  // Made with another plane's key: refused.
  auto claims =
      Must(VerifyKbsSession(session, KbsSessionMac(*signing_key_), clock_.NowUnix()), "session");
  auto other = Must(crypto::Ed25519PrivateKey::Generate(), "key");
  auto forged = Release(Must(SignKbsSession(claims, KbsSessionMac(other)), "sign"));
  ASSERT_FALSE(forged.ok());
  EXPECT_EQ(forged.status().code(), StatusCode::kPermissionDenied);
  // Another dataset than the credential's.
  auto labs = Release(session, "labs");
  ASSERT_FALSE(labs.ok());
  EXPECT_TRUE(MessageContains(labs.status(), "not in job")) << labs.status().message();
  // Expired (the session lives 300 s).
  clock_.offset += 301;
  auto late = Release(session);
  ASSERT_FALSE(late.ok());
  EXPECT_TRUE(MessageContains(late.status(), "expired")) << late.status().message();
  EXPECT_EQ(Denials("key.release"), 4);
}

TEST_F(KeyBrokerTest, ACredentialNamingAnotherJobIsRefused) {
  Provisioned a = Provision("job-00000000000000a5");
  Provisioned b = Provision("job-00000000000000a6");
  // Plane-signed, but its credential id is job b's while it names job a.
  JobCredentialClaims mixed = a.claims;
  mixed.credential_id = b.claims.credential_id;
  auto r = Auth(Must(SignJobCredential(mixed, *signing_key_), "sign"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(MessageContains(r.status(), "unknown to this plane")) << r.status().message();
  // Unknown id altogether.
  mixed.credential_id = "cred-" + std::string(32, 'f');
  r = Auth(Must(SignJobCredential(mixed, *signing_key_), "sign"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(MessageContains(r.status(), "unknown to this plane")) << r.status().message();
}

TEST_F(KeyBrokerTest, ANonceIssuedToAnotherCredentialOfTheJobIsRefused) {
  Provisioned p = Provision("job-00000000000000a7");
  // A second credential row for the same job (as after a re-provisioning).
  const int64_t now = clock_.NowUnix();
  JobCredentialClaims second = p.claims;
  second.credential_id = "cred-" + std::string(32, 'e');
  ASSERT_TRUE(db_->IssueCredential({second.credential_id, p.job_id, now, now + 86400, {}},
                                   world_->Rec("credential.issue", "job:" + p.job_id))
                  .ok());
  auto n = Must(Auth(Must(SignJobCredential(second, *signing_key_), "sign")), "auth");
  crypto::EphemeralKey key = NewKey();
  auto r = Attest(p.credential, n.nonce, key);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(MessageContains(r.status(), "another credential")) << r.status().message();
  EXPECT_EQ(Must(db_->GetJob(p.job_id), "job").state, JobState::kProvisioning);
}

TEST_F(KeyBrokerTest, MalformedAttestInputsAreRefusedNamingTheField) {
  Provisioned p = Provision("job-00000000000000a8");
  crypto::EphemeralKey key = NewKey();
  auto n = Must(Auth(p.credential), "auth");
  const std::string quote = crypto::Base64UrlEncode(Quote(n.nonce, key));
  auto bad_key = services_->key_broker.Attest("127.0.0.1", {p.credential, n.nonce, quote, "{}"});
  EXPECT_TRUE(MessageContains(bad_key.status(), "body.tee_pubkey")) << bad_key.status().message();
  // Valid base64url, but 16 bytes instead of 32.
  auto bad_nonce = services_->key_broker.Attest(
      "127.0.0.1",
      {p.credential, crypto::Base64UrlEncode(crypto::Bytes(16, 1)), quote, key.PublicJwk()});
  EXPECT_TRUE(MessageContains(bad_nonce.status(), "body.nonce")) << bad_nonce.status().message();
  auto bad_quote =
      services_->key_broker.Attest("127.0.0.1", {p.credential, n.nonce, "a=b", key.PublicJwk()});
  EXPECT_TRUE(MessageContains(bad_quote.status(), "body.quote")) << bad_quote.status().message();
  EXPECT_EQ(Denials("kbs.attest"), 3);
  // None of them spent the nonce: it still attests.
  EXPECT_TRUE(Attest(p.credential, n.nonce, key).ok());
}

TEST_F(KeyBrokerTest, ACredentialHoldsAtMostTheCapOfUnusedNonces) {
  Provisioned p = Provision("job-00000000000000a9");
  for (int i = 0; i < 4; ++i) Must(Auth(p.credential), "auth " + std::to_string(i));
  auto over = Auth(p.credential);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(Denials("kbs.auth"), 1);  // the refusal is audited
  // Once they expire (60 s) they are deleted and new ones are issued.
  clock_.offset += 61;
  for (int i = 0; i < 4; ++i) Must(Auth(p.credential), "auth after expiry " + std::to_string(i));
  EXPECT_FALSE(Auth(p.credential).ok());
}

}  // namespace
}  // namespace cce::plane
