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

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using store::JobState;

// A Store whose audit appends (alone or inside a mutation) can be made to
// fail, delegating everything else to a real SQLite store.
class AuditFailingStore final : public store::Store {
 public:
  explicit AuditFailingStore(store::Store& inner) : s_(inner) {}
  std::atomic<bool> fail_audit{false};

  StatusOr<store::AuditEntry> AppendAudit(const store::AuditRecord& r) override {
    if (fail_audit) return Status(StatusCode::kIo, "audit table: disk full (test)");
    return s_.AppendAudit(r);
  }
  // ---- plain delegation below ----
  StatusOr<store::User> CreateUser(const store::User& u, const store::AuditRecord& a) override {
    return s_.CreateUser(u, a);
  }
  StatusOr<store::User> GetUser(int64_t id) override { return s_.GetUser(id); }
  StatusOr<store::User> GetUserByName(std::string_view n) override { return s_.GetUserByName(n); }
  StatusOr<store::User> GetUserByTokenHash(const store::Sha256Digest& h) override {
    return s_.GetUserByTokenHash(h);
  }
  StatusOr<std::vector<store::User>> ListUsers() override { return s_.ListUsers(); }
  Status SetUserDisabled(int64_t id, bool d, const store::AuditRecord& a) override {
    return s_.SetUserDisabled(id, d, a);
  }
  Status SetUserTokenHash(int64_t id, const store::Sha256Digest& h,
                          const store::AuditRecord& a) override {
    return s_.SetUserTokenHash(id, h, a);
  }
  StatusOr<store::Dataset> CreateDataset(const store::Dataset& d,
                                         const store::AuditRecord& a) override {
    return s_.CreateDataset(d, a);
  }
  StatusOr<store::Dataset> GetDataset(int64_t id) override { return s_.GetDataset(id); }
  StatusOr<store::Dataset> GetDatasetByName(std::string_view n) override {
    return s_.GetDatasetByName(n);
  }
  StatusOr<std::vector<store::Dataset>> ListDatasets(std::optional<int64_t> o) override {
    return s_.ListDatasets(o);
  }
  StatusOr<store::Rental> AppendRental(const store::Rental& r, const store::RentalSigner& sign,
                                       const store::AuditRecord& a) override {
    return s_.AppendRental(r, sign, a);
  }
  StatusOr<std::vector<store::Rental>> ListRentals(const store::RentalFilter& f) override {
    return s_.ListRentals(f);
  }
  StatusOr<store::Image> PutImage(const store::Image& i, const store::AuditRecord& a) override {
    return s_.PutImage(i, a);
  }
  StatusOr<store::Image> GetImage(int64_t sc, std::string_view n, std::string_view t) override {
    return s_.GetImage(sc, n, t);
  }
  StatusOr<std::vector<store::Image>> ListImages(const store::ImageFilter& f) override {
    return s_.ListImages(f);
  }
  StatusOr<store::Image> DeleteImage(int64_t sc, std::string_view n, std::string_view t,
                                     const store::AuditRecord& a) override {
    return s_.DeleteImage(sc, n, t, a);
  }
  Status PutImageBlob(const store::ImageBlob& b, const store::AuditRecord& a) override {
    return s_.PutImageBlob(b, a);
  }
  StatusOr<std::vector<store::ImageBlob>> ListImageBlobs(std::optional<int64_t> sc) override {
    return s_.ListImageBlobs(sc);
  }
  Status DeleteImageBlobs(const std::vector<store::ImageBlob>& b,
                          const store::AuditRecord& a) override {
    return s_.DeleteImageBlobs(b, a);
  }
  StatusOr<store::CreateJobResult> CreateJob(const store::Job& j,
                                             const store::AuditRecord& a) override {
    return s_.CreateJob(j, a);
  }
  StatusOr<store::Job> GetJob(std::string_view id) override { return s_.GetJob(id); }
  StatusOr<std::vector<store::Job>> ListJobs(const store::JobFilter& f) override {
    return s_.ListJobs(f);
  }
  StatusOr<std::vector<store::Job>> ListJobsInStates(const std::vector<JobState>& s) override {
    return s_.ListJobsInStates(s);
  }
  StatusOr<std::vector<store::JobEvent>> JobHistory(std::string_view id) override {
    return s_.JobHistory(id);
  }
  StatusOr<store::Job> TransitionJob(std::string_view id, JobState from, JobState to,
                                     std::string_view reason,
                                     const store::AuditRecord& a) override {
    return s_.TransitionJob(id, from, to, reason, a);
  }
  Status IssueCredential(const store::JobCredential& c, const store::AuditRecord& a) override {
    return s_.IssueCredential(c, a);
  }
  StatusOr<store::JobCredential> GetCredential(std::string_view id) override {
    return s_.GetCredential(id);
  }
  StatusOr<store::JobCredential> MarkCredentialUsed(std::string_view id, int64_t now,
                                                    const store::AuditRecord& a) override {
    return s_.MarkCredentialUsed(id, now, a);
  }
  StatusOr<store::Job> IssueCredentialAndProvision(const store::JobCredential& c,
                                                   std::string_view reason,
                                                   const store::AuditRecord& ca,
                                                   const store::AuditRecord& ma) override {
    return s_.IssueCredentialAndProvision(c, reason, ca, ma);
  }
  Status IssueNonce(const store::KbsNonce& n, int64_t max, const store::AuditRecord& a) override {
    return s_.IssueNonce(n, max, a);
  }
  StatusOr<store::KbsNonce> ConsumeNonce(std::string_view n, std::string_view job, int64_t now,
                                         const store::AuditRecord& a) override {
    return s_.ConsumeNonce(n, job, now, a);
  }
  StatusOr<store::Job> AcceptAttestation(std::string_view job, std::string_view cred,
                                         uint32_t flags, int64_t now, std::string_view reason,
                                         const store::AuditRecord& a) override {
    return s_.AcceptAttestation(job, cred, flags, now, reason, a);
  }
  Status PutOutput(const store::Output& o, const store::AuditRecord& a) override {
    return s_.PutOutput(o, a);
  }
  StatusOr<store::Output> SetGateVerdict(std::string_view job, store::GateVerdict v, double score,
                                         std::string_view findings, int64_t at,
                                         const store::AuditRecord& a) override {
    return s_.SetGateVerdict(job, v, score, findings, at, a);
  }
  StatusOr<store::Output> GetOutput(std::string_view job) override { return s_.GetOutput(job); }
  StatusOr<std::vector<store::AuditEntry>> ListAudit(const store::AuditFilter& f) override {
    return s_.ListAudit(f);
  }
  StatusOr<store::AuditHead> GetAuditHead() override { return s_.GetAuditHead(); }
  Status AddCheckpoint(const store::AuditCheckpoint& c) override { return s_.AddCheckpoint(c); }
  StatusOr<std::vector<store::AuditCheckpoint>> ListCheckpoints() override {
    return s_.ListCheckpoints();
  }
  StatusOr<std::vector<store::AuditCheckpoint>> ListRentalCheckpoints() override {
    return s_.ListRentalCheckpoints();
  }
  StatusOr<int64_t> SchemaVersion() override { return s_.SchemaVersion(); }

 private:
  store::Store& s_;
};

template <typename T>
T Must(StatusOr<T> v, const std::string& what) {
  if (!v.ok()) {
    ADD_FAILURE() << what << ": " << v.status().message();
    std::abort();
  }
  return std::move(*v);
}

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
    store::Job job;
    job.id = "job-00000000000000aa";
    job.consumer_id = carol_.user.id;
    job.name = "t";
    job.spec_json = "{}";
    job.image_digest = "sha256:" + std::string(64, 'a');
    job.reason = "submitted";
    job.created_at = clock_.NowUnix();
    job.deadline = job.created_at + 3600;
    job.datasets = {"claims"};
    job.timeout_seconds = 3600;
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
    return "Bearer " + Must(SignKbsSession(s, *signing_key_), "session");
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
  auto forged = services_->key_broker.ReleaseKey("10.0.0.1", "Bearer cce-kbs-v1.x.y", "claims");
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
