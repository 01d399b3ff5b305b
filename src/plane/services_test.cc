// The services called directly (no HTTP): decisions fail closed when their
// audit record cannot be written, and the one rental-coverage rule.
#include "plane/services.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "crypto/jwe.h"
#include "format/format.h"
#include "plane/config.h"
#include "plane/credential.h"
#include "plane/keys.h"
#include "plane/plane.h"
#include "plane/service_world.h"
#include "store/sqlite_store.h"
#include "store/store_testing.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using store::JobState;
using testing::Must;

// A Store whose audit appends (alone or inside a mutation) can be made to
// fail, forwarding everything else to a real SQLite store.
class AuditFailingStore final : public store::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> fail_audit{false};

  StatusOr<store::AuditEntry> AppendAudit(const store::AuditRecord& r) override {
    if (fail_audit) return Status(StatusCode::kIo, "audit table: disk full (test)");
    return ForwardingStore::AppendAudit(r);
  }
};

// A whole plane (data directory from InitPlane) without its HTTP front.
class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Must(testing::ServiceWorld::Create({
                      .clock = &clock_,
                      .wrap_store =
                          [this](store::Store& inner) {
                            auto failing = std::make_unique<AuditFailingStore>(inner);
                            db_ = failing.get();
                            return std::unique_ptr<store::Store>(std::move(failing));
                          },
                      // datasets are encrypted into tmp()
                      .adjust = [](ServiceDeps& d,
                                   const std::string& tmp) { d.dataset_allowed_roots = {tmp}; },
                  }),
                  "world");
    tmp_ = world_->tmp();
    services_ = &world_->services();
    signing_key_ = &world_->signing_key();
  }

  Caller AddUser(const std::string& name, store::Role role) {
    return Must(world_->AddUser(name, role), "user");
  }
  int64_t AuditCount() { return Must(db_->GetAuditHead(), "head").seq; }

  // An ATTESTED job of carol's over dataset `claims` (rented), and a key
  // broker session for it, made through the store as the engine and the
  // key broker would. Returns the session token.
  std::string AttestedJobSession() {
    Caller pat = AddUser("pat", store::Role::kProvider);
    carol_ = AddUser("carol", store::Role::kConsumer);
    const std::string enc = tmp_ + "/claims.enc";
    auto key = Must(format::DatasetKey::Generate(), "key");
    fs::create_directories(tmp_ + "/claims");
    { std::ofstream(tmp_ + "/claims/a.csv") << "id,x\n1,2\n"; }
    EXPECT_TRUE(format::EncryptDataset(tmp_ + "/claims", enc, key, {}).ok());
    api::RegisterDatasetRequest reg;
    reg.name = "claims";
    reg.location = "file://" + enc;
    auto kt = key.EncodeKeyFile();
    reg.key.assign(reinterpret_cast<const char*>(kt.data()), kt.size());
    Must(services_->catalog.Register(pat, reg), "register");
    Must(services_->rentals.Rent(carol_, {"claims", 2}), "rent");
    store::Job job =
        testing::SubmittedJob("job-00000000000000aa", carol_.user.id, clock_.NowUnix());
    job.datasets = {"claims"};
    auto rec = [&](const std::string& action) {
      return services_->audit_log.Record("plane", action, "job:" + job.id,
                                         store::AuditDecision::kInfo);
    };
    Must(db_->CreateJob(job, rec("job.submit")), "job");
    Must(db_->TransitionJob(job.id, JobState::kSubmitted, JobState::kAuthorized, "ok",
                            rec("job.authorize")),
         "authorize");
    store::JobCredential cred{"cred-1", job.id, job.created_at, job.created_at + 3600, {}};
    Must(
        db_->IssueCredentialAndProvision(cred, "ok", rec("credential.issue"), rec("job.provision")),
        "provision");
    Must(db_->AcceptAttestation(job.id, cred.id, 0, job.created_at, "test", rec("kbs.attest")),
         "attest");
    tee_key_.emplace(Must(crypto::EphemeralKey::Generate(crypto::EcdhCurve::kP256), "tee key"));
    KbsSessionClaims s;
    s.job_id = job.id;
    s.credential_id = cred.id;
    s.datasets = {"claims"};
    s.tee_public_jwk = tee_key_->PublicJwk();
    s.issued_at = job.created_at;
    s.expires_at = job.created_at + 300;
    return "Bearer " + Must(SignKbsSession(s, KbsSessionMac(*signing_key_)), "session");
  }

  SystemClock clock_;
  std::unique_ptr<testing::ServiceWorld> world_;
  std::string tmp_;
  AuditFailingStore* db_ = nullptr;  // owned by world_
  Services* services_ = nullptr;
  const crypto::Ed25519PrivateKey* signing_key_ = nullptr;
  Caller carol_;
  std::optional<crypto::EphemeralKey> tee_key_;
};

TEST_F(ServicesTest, KeyReleaseIsRefusedWhenItsAuditRecordCannotBeWritten) {
  const std::string session = AttestedJobSession();
  const int64_t before = AuditCount();
  db_->fail_audit = true;
  auto refused = services_->key_broker.ReleaseKey("10.0.0.1", session, "claims");
  ASSERT_FALSE(refused.ok()) << "a key was released without its audit record";
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().message();
  EXPECT_EQ(AuditCount(), before);
  db_->fail_audit = false;
  auto released = services_->key_broker.ReleaseKey("10.0.0.1", session, "claims");
  ASSERT_TRUE(released.ok()) << released.status().message();
  EXPECT_EQ(AuditCount(), before + 1);
  auto key = crypto::JweDecrypt(*tee_key_, *released);
  EXPECT_TRUE(key.ok()) << key.status().message();
}

TEST_F(ServicesTest, AuditVerifyIsRefusedWhenItsAuditRecordCannotBeWritten) {
  Caller op = AddUser("olga", store::Role::kOperator);
  db_->fail_audit = true;
  auto r = services_->audit.Verify(op);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  db_->fail_audit = false;
  EXPECT_TRUE(services_->audit.Verify(op).ok());
}

TEST_F(ServicesTest, RefusalsStandEvenWhenTheirAuditRecordCannotBeWritten) {
  const std::string session = AttestedJobSession();
  db_->fail_audit = true;
  auto r = services_->key_broker.ReleaseKey("10.0.0.1", session, "labs");  // not in the session
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  auto forged = services_->key_broker.ReleaseKey("10.0.0.1", "Bearer cce-kbs-v2.x.y", "claims");
  EXPECT_FALSE(forged.ok());
}

TEST_F(ServicesTest, CoverageIsOneRuleForEveryCaller) {
  AttestedJobSession();  // carol rents claims for 2 days
  const int64_t now = clock_.NowUnix();
  auto& rentals = services_->rentals;
  EXPECT_TRUE(rentals.CheckCoverage(carol_.user.id, {"claims"}, now, now + 86400).ok());
  EXPECT_EQ(rentals.CheckCoverage(carol_.user.id, {"claims"}, now, now + 3 * 86400).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(rentals.CheckCoverage(carol_.user.id, {"nope"}, now, now + 1).code(),
            StatusCode::kNotFound);
  Caller dave = AddUser("dave", store::Role::kConsumer);
  EXPECT_EQ(rentals.CheckCoverage(dave.user.id, {"claims"}, now, now + 1).code(),
            StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace cce::plane
