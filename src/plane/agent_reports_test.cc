// The AgentReports service called directly (no HTTP) with a simulated TEE:
// each job is walked through the key broker (auth, simulated quote, attest)
// as a real agent would, then reports, fetches its image and submits its
// output. One test per refusal, each checking the refusal is audited and
// that nothing was recorded: a forged or foreign session, a wrong state, a
// blob outside the job's image, a bad digest, a bad or foreign signature,
// an output over the cap, a session past the job's deadline, and an audit
// log that cannot be written. agent_api_test.cc drives the same service over
// HTTPS with the real agent client.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "agent/kbs_client.h"
#include "attest/sim.h"
#include "crypto/jwe.h"
#include "image/blob_store.h"
#include "plane/credential.h"
#include "plane/plane_testing.h"
#include "plane/service_world.h"
#include "plane/services.h"
#include "store/sqlite_store.h"
#include "store/store_testing.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using store::JobState;
using testing::MessageContains;
using testing::Must;

// A Store whose audit records can be made to fail: alone (AppendAudit) or
// inside the mutations the agent's decisions use (TransitionJob, PutOutput:
// their record is in the same transaction, so a record that cannot be
// written fails the whole mutation). Everything else is forwarded.
class AuditFailingStore final : public store::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> fail_audit{false};
  static Status Full() { return Status(StatusCode::kIo, "audit table: disk full (test)"); }

  StatusOr<store::AuditEntry> AppendAudit(const store::AuditRecord& r) override {
    if (fail_audit) return Full();
    return ForwardingStore::AppendAudit(r);
  }
  StatusOr<store::Job> TransitionJob(std::string_view id, JobState from, JobState to,
                                     std::string_view reason,
                                     const store::AuditRecord& a) override {
    if (fail_audit) return Full();
    return ForwardingStore::TransitionJob(id, from, to, reason, a);
  }
  Status PutOutput(const store::Output& o, const store::AuditRecord& a) override {
    if (fail_audit) return Full();
    return ForwardingStore::PutOutput(o, a);
  }
};

constexpr int64_t kMaxOutput = 1 << 20;  // the cap in this world
constexpr char kAddr[] = "10.0.0.7";

class AgentReportsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Must(testing::ServiceWorld::Create({
                      .clock = &clock_,
                      .simulated_tee = true,
                      .wrap_store =
                          [this](store::Store& inner) {
                            auto failing = std::make_unique<AuditFailingStore>(inner);
                            db_ = failing.get();
                            return std::unique_ptr<store::Store>(std::move(failing));
                          },
                      .adjust =
                          [this](ServiceDeps& d, const std::string&) {
                            d.max_output_bytes = kMaxOutput;
                            d.on_job_submitted = [this] { ++wakes_; };
                          },
                  }),
                  "world");
    sim_dir_ = world_->init().data_dir + "/attestation/sim";
    agent_ = &world_->services().agent;
    carol_ = Must(world_->AddUser("carol", store::Role::kConsumer), "carol");
    image_ = MakeTestImage("agent-reports", 200 * 1024);
    for (const std::string* blob : {&image_.layer, &image_.config, &image_.manifest}) {
      Must(world_->blobs().PutBytes(*blob, image::Digest::Of(*blob)), "blob");
    }
    other_blob_ = "another tenant's layer";
    Must(world_->blobs().PutBytes(other_blob_, image::Digest::Of(other_blob_)), "other blob");
  }

  struct Attested {
    std::string job_id;
    std::string credential_id;
    std::string session;
    std::shared_ptr<crypto::EphemeralKey> key;
    std::string auth() const { return "Bearer " + session; }
  };

  // A job of carol's (no datasets) walked as the job engine and a simulated
  // TEE would: PROVISIONING with a credential, then kbs auth and attest.
  Attested Attest(const std::string& job_id, int64_t timeout = 3600) {
    store::Job job = testing::SubmittedJob(job_id, carol_.user.id, clock_.NowUnix(), timeout);
    job.image_digest = image_.manifest_digest();
    const testing::ProvisionedJob p = Must(world_->ProvisionJob(job, carol_, 86400), "provision");
    const std::string& token = p.credential;
    auto& kbs = world_->services().key_broker;
    auto nonce = Must(kbs.Auth(kAddr, {token}), "auth");
    auto key = std::make_shared<crypto::EphemeralKey>(
        Must(crypto::EphemeralKey::Generate(crypto::EcdhCurve::kP256), "key"));
    auto raw = Must(crypto::Base64UrlDecode(nonce.nonce), "nonce");
    auto quote = Must(attest::BuildSimulatedQuote(
                          sim_dir_, agent::KbsReportData(raw, key->public_key().public_bytes())),
                      "quote");
    auto attested = Must(
        kbs.Attest(kAddr, {token, nonce.nonce, crypto::Base64UrlEncode(quote), key->PublicJwk()}),
        "attest");
    return {job_id, p.claims.credential_id, attested.session, key};
  }

  Attested Running(const std::string& job_id) {
    Attested a = Attest(job_id);
    Must(agent_->Report(kAddr, a.auth(), {"RUNNING", ""}), "report RUNNING");
    return a;
  }

  static std::string DigestOf(const std::string& bytes) { return image::Digest::Of(bytes).str(); }
  static std::string Sign(const crypto::EphemeralKey& key, const std::string& job,
                          const std::string& digest) {
    auto sig =
        Must(key.SignEcdsaSha256(crypto::AsBytes(api::OutputSigningInput(job, digest))), "sign");
    return crypto::Base64UrlEncode(sig);
  }
  AgentReports::OutputHeaders Headers(const Attested& a, const std::string& bundle) {
    return {DigestOf(bundle), Sign(*a.key, a.job_id, DigestOf(bundle)), bundle.size()};
  }
  // The whole upload in pieces of `piece` bytes, as the HTTP sink would.
  StatusOr<api::AgentOutputReceipt> Submit(const Attested& a, const std::string& bundle,
                                           const AgentReports::OutputHeaders& h,
                                           size_t piece = 10000) {
    ASSIGN_OR_RETURN(auto upload, agent_->BeginOutput(kAddr, a.auth(), h));
    for (size_t at = 0; at < bundle.size(); at += piece) {
      RETURN_IF_ERROR(upload->Write(crypto::AsBytes(std::string_view(bundle).substr(at, piece))));
    }
    return agent_->FinishOutput(std::move(upload));
  }
  JobState StateOf(const std::string& job_id) { return Must(db_->GetJob(job_id), "job").state; }
  bool HasOutput(const std::string& job_id) { return db_->GetOutput(job_id).ok(); }
  // Denied audit records of `action` (on `object`, if given).
  int64_t Denials(const std::string& action, const std::string& object = "") {
    return Must(world_->Denials(action, object), "audit");
  }
  static std::string Bundle(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + 3) % 256);
    return s;
  }

  TestClock clock_;
  std::unique_ptr<testing::ServiceWorld> world_;
  AuditFailingStore* db_ = nullptr;
  AgentReports* agent_ = nullptr;
  std::string sim_dir_;
  Caller carol_;
  TestImage image_;
  std::string other_blob_;
  std::atomic<int> wakes_{0};
};

TEST_F(AgentReportsTest, AJobRunsFromAttestedToOutputSubmitted) {
  Attested a = Attest("job-00000000000000b1");
  auto running = Must(agent_->Report(kAddr, a.auth(), {"RUNNING", ""}), "running");
  EXPECT_EQ(running.state, "RUNNING");
  EXPECT_EQ(running.consumer, "carol");

  auto m = Must(agent_->ImageManifest(kAddr, a.auth()), "manifest");
  EXPECT_EQ(m.bytes, image_.manifest);
  EXPECT_EQ(m.digest, image_.manifest_digest());
  EXPECT_EQ(m.media_type, "application/vnd.oci.image.manifest.v1+json");
  for (const std::string* blob : {&image_.config, &image_.layer}) {
    auto b = Must(agent_->ImageBlob(kAddr, a.auth(), DigestOf(*blob)), "blob");
    EXPECT_EQ(b.size, blob->size());
    std::string got(b.size, '\0');
    ASSERT_EQ(::pread(b.fd.get(), got.data(), got.size(), 0), static_cast<ssize_t>(got.size()));
    EXPECT_TRUE(got == *blob);
  }

  const std::string bundle = Bundle(3 * 65536 + 77);  // several sealed segments
  auto receipt = Must(Submit(a, bundle, Headers(a, bundle)), "submit");
  EXPECT_EQ(receipt.state, "OUTPUT_SUBMITTED");
  EXPECT_EQ(receipt.digest, DigestOf(bundle));
  EXPECT_EQ(receipt.size, static_cast<int64_t>(bundle.size()));
  EXPECT_EQ(StateOf(a.job_id), JobState::kOutputSubmitted);
  auto out = Must(db_->GetOutput(a.job_id), "output");
  EXPECT_EQ(out.digest, DigestOf(bundle));
  EXPECT_EQ(out.verdict, store::GateVerdict::kPending);
  EXPECT_EQ(wakes_.load(), 1);  // the engine is woken to run the gate
  auto stored = Must(world_->outputs().Get(a.job_id), "stored output");
  EXPECT_TRUE(std::string(reinterpret_cast<const char*>(stored.data()), stored.size()) == bundle);
  // Once submitted, the session can do nothing more.
  EXPECT_EQ(agent_->Report(kAddr, a.auth(), {"RUNNING", ""}).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(agent_->ImageManifest(kAddr, a.auth()).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(AgentReportsTest, FailedReportKeepsASanitizedCappedReason) {
  Attested a = Running("job-00000000000000b2");
  std::string reason = "unpack failed:\n\x1b[31mred\x7f";
  reason += std::string(1000, 'x');
  auto failed = Must(agent_->Report(kAddr, a.auth(), {"FAILED", reason}), "failed");
  EXPECT_EQ(failed.state, "FAILED");
  const std::string expect = "agent: unpack failed:??[31mred?" + std::string(512 - 24, 'x');
  EXPECT_EQ(failed.reason, expect);
  EXPECT_EQ(Must(db_->GetJob(a.job_id), "job").reason, expect);
  // FAILED is final: nothing more from this session.
  EXPECT_EQ(agent_->Report(kAddr, a.auth(), {"FAILED", "again"}).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(AgentReportsTest, OnlyRunningAndFailedAreReportsAndOnlyFromTheirStates) {
  Attested a = Attest("job-00000000000000b3");
  auto odd = agent_->Report(kAddr, a.auth(), {"OUTPUT_SUBMITTED", ""});
  EXPECT_EQ(odd.status().code(), StatusCode::kInvalidArgument);
  auto reason = agent_->Report(kAddr, a.auth(), {"RUNNING", "why"});
  EXPECT_EQ(reason.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(StateOf(a.job_id), JobState::kAttested);
  Must(agent_->Report(kAddr, a.auth(), {"RUNNING", ""}), "running");
  auto twice = agent_->Report(kAddr, a.auth(), {"RUNNING", ""});
  EXPECT_EQ(twice.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MessageContains(twice.status(), "is RUNNING, not ATTESTED"))
      << twice.status().message();
  EXPECT_EQ(Denials("agent.report", "job:" + a.job_id), 3);
}

TEST_F(AgentReportsTest, OutputOnlyWhileRunning) {
  Attested a = Attest("job-00000000000000b4");
  const std::string bundle = Bundle(100);
  auto early = agent_->BeginOutput(kAddr, a.auth(), Headers(a, bundle));
  EXPECT_EQ(early.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(HasOutput(a.job_id));
  EXPECT_EQ(Denials("output.submit", "job:" + a.job_id), 1);
}

TEST_F(AgentReportsTest, RefusesSessionsNotSignedByThePlaneOrMissing) {
  Attested a = Running("job-00000000000000b5");
  const crypto::HmacSha256 mac = KbsSessionMac(world_->signing_key());
  auto claims = Must(VerifyKbsSession(a.session, mac, clock_.NowUnix()), "claims");
  auto other = Must(crypto::Ed25519PrivateKey::Generate(), "other key");
  const std::string forged = Must(SignKbsSession(claims, KbsSessionMac(other)), "forge");
  auto r = agent_->ImageManifest(kAddr, "Bearer " + forged);
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(MessageContains(r.status(), "signature does not verify")) << r.status().message();
  // A flipped character in the token itself.
  std::string tampered = a.session;
  tampered[tampered.size() / 2] ^= 0x01;
  EXPECT_EQ(agent_->ImageManifest(kAddr, "Bearer " + tampered).status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(agent_->ImageManifest(kAddr, "").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(agent_->ImageManifest(kAddr, a.session).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(Denials("image.manifest"), 4);
}

TEST_F(AgentReportsTest, RefusesASessionWhoseCredentialDidNotAttestTheJob) {
  Attested a = Running("job-00000000000000b6");
  Attested b = Running("job-00000000000000b7");
  // Plane-signed claims naming job a with job b's credential (what a plane
  // bug or a confused deputy might mint): the credential did not attest a.
  const crypto::HmacSha256 mac = KbsSessionMac(world_->signing_key());
  auto claims = Must(VerifyKbsSession(a.session, mac, clock_.NowUnix()), "claims");
  claims.credential_id = b.credential_id;
  const std::string mixed = Must(SignKbsSession(claims, mac), "sign");
  const std::string bundle = Bundle(10);
  auto r = agent_->BeginOutput(kAddr, "Bearer " + mixed, Headers(a, bundle));
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(MessageContains(r.status(), "is not the one that attested job " + a.job_id))
      << r.status().message();
  // And a session naming a job that does not exist.
  claims.job_id = "job-00000000000000ff";
  claims.credential_id = a.credential_id;
  const std::string ghost = Must(SignKbsSession(claims, mac), "sign");
  EXPECT_EQ(agent_->ImageManifest(kAddr, "Bearer " + ghost).status().code(),
            StatusCode::kPermissionDenied);
  // Job b's own session acts on job b only: its output is b's.
  auto receipt = Must(Submit(b, bundle, Headers(b, bundle)), "b submits");
  EXPECT_EQ(receipt.job, b.job_id);
  EXPECT_FALSE(HasOutput(a.job_id));
}

TEST_F(AgentReportsTest, BlobsOutsideTheJobsImageAreRefused) {
  Attested a = Running("job-00000000000000b8");
  const std::string stranger = DigestOf(other_blob_);
  ASSERT_TRUE(world_->blobs().Has(Must(image::Digest::Parse(stranger), "digest")));
  auto r = agent_->ImageBlob(kAddr, a.auth(), stranger);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(MessageContains(r.status(), "is not in job " + a.job_id)) << r.status().message();
  // The manifest itself is served by the manifest call, not as a blob.
  EXPECT_EQ(agent_->ImageBlob(kAddr, a.auth(), image_.manifest_digest()).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(agent_->ImageBlob(kAddr, a.auth(), "sha256:../../etc/passwd").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Denials("image.blob", "job:" + a.job_id), 3);
}

TEST_F(AgentReportsTest, BytesThatDoNotHashToTheSignedDigestAreNotRecorded) {
  Attested a = Running("job-00000000000000b9");
  const std::string bundle = Bundle(2 * 65536 + 5);
  std::string altered = bundle;
  altered[65536 + 3] ^= 0x40;
  auto r = Submit(a, altered, Headers(a, bundle));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(r.status(), "not the announced")) << r.status().message();
  EXPECT_FALSE(HasOutput(a.job_id));
  EXPECT_EQ(StateOf(a.job_id), JobState::kRunning);
  EXPECT_FALSE(world_->outputs().Open(a.job_id, "").ok());  // no sealed file either
  EXPECT_EQ(Denials("output.submit", "job:" + a.job_id), 1);
  // Fewer bytes than announced.
  auto h = Headers(a, bundle);
  auto upload = Must(agent_->BeginOutput(kAddr, a.auth(), h), "begin");
  ASSERT_TRUE(upload->Write(crypto::AsBytes(std::string_view(bundle).substr(0, 100))).ok());
  EXPECT_EQ(agent_->FinishOutput(std::move(upload)).status().code(), StatusCode::kInvalidArgument);
  // Malformed digest header.
  h.digest = "sha256:ABC";
  EXPECT_EQ(agent_->BeginOutput(kAddr, a.auth(), h).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(HasOutput(a.job_id));
  // The right bytes are then accepted.
  EXPECT_TRUE(Submit(a, bundle, Headers(a, bundle)).ok());
}

TEST_F(AgentReportsTest, BadSignaturesAreRefusedBeforeAnyByte) {
  Attested a = Running("job-00000000000000c1");
  const std::string bundle = Bundle(5000);
  auto h = Headers(a, bundle);
  // One flipped bit in r.
  auto raw = Must(crypto::Base64UrlDecode(h.signature), "sig");
  raw[5] ^= 0x01;
  auto flipped = h;
  flipped.signature = crypto::Base64UrlEncode(raw);
  auto r = agent_->BeginOutput(kAddr, a.auth(), flipped);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(MessageContains(r.status(), "does not verify")) << r.status().message();
  // A signature over another job's name (domain: job id and digest).
  auto other_job = h;
  other_job.signature = Sign(*a.key, "job-00000000000000c2", h.digest);
  EXPECT_EQ(agent_->BeginOutput(kAddr, a.auth(), other_job).status().code(),
            StatusCode::kPermissionDenied);
  // Garbage and a wrong length.
  auto garbage = h;
  garbage.signature = "not base64url!";
  EXPECT_EQ(agent_->BeginOutput(kAddr, a.auth(), garbage).status().code(),
            StatusCode::kInvalidArgument);
  garbage.signature = crypto::Base64UrlEncode(crypto::Bytes(63, 1));
  EXPECT_EQ(agent_->BeginOutput(kAddr, a.auth(), garbage).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(HasOutput(a.job_id));
  EXPECT_EQ(Denials("output.submit", "job:" + a.job_id), 4);
}

TEST_F(AgentReportsTest, ASignatureByAnotherKeyIsRefused) {
  Attested a = Running("job-00000000000000c3");
  const std::string bundle = Bundle(5000);
  auto other = Must(crypto::EphemeralKey::Generate(crypto::EcdhCurve::kP256), "other");
  auto h = Headers(a, bundle);
  h.signature = Sign(other, a.job_id, h.digest);
  auto r = agent_->BeginOutput(kAddr, a.auth(), h);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  // Even another attested TEE's key: job b's key does not sign for job a.
  Attested b = Running("job-00000000000000c4");
  h.signature = Sign(*b.key, a.job_id, h.digest);
  EXPECT_EQ(agent_->BeginOutput(kAddr, a.auth(), h).status().code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(HasOutput(a.job_id));
  EXPECT_EQ(Denials("output.submit", "job:" + a.job_id), 2);
}

TEST_F(AgentReportsTest, OutputsOverTheCapOrWithoutALengthAreRefused) {
  Attested a = Running("job-00000000000000c5");
  const std::string big = Bundle(kMaxOutput + 1);
  auto r = agent_->BeginOutput(kAddr, a.auth(), Headers(a, big));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(r.status(), "limits.max_output_bytes")) << r.status().message();
  auto h = Headers(a, big);
  h.content_length.reset();  // chunked: the size is unknown up front
  EXPECT_EQ(agent_->BeginOutput(kAddr, a.auth(), h).status().code(), StatusCode::kInvalidArgument);
  // More bytes than announced: the upload dies at the first extra byte.
  const std::string bundle = Bundle(1000);
  auto upload = Must(agent_->BeginOutput(kAddr, a.auth(), Headers(a, bundle)), "begin");
  ASSERT_TRUE(upload->Write(crypto::AsBytes(bundle)).ok());
  EXPECT_EQ(upload->Write(crypto::AsBytes(std::string("x"))).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(agent_->FinishOutput(std::move(upload)).ok());
  // Exactly at the cap is fine.
  const std::string at_cap = Bundle(kMaxOutput);
  EXPECT_TRUE(Submit(a, at_cap, Headers(a, at_cap), 65536).ok());
}

TEST_F(AgentReportsTest, AnAbandonedUploadLeavesNothingAndIsAudited) {
  Attested a = Running("job-00000000000000c6");
  const std::string bundle = Bundle(3 * 65536);
  {
    auto upload = Must(agent_->BeginOutput(kAddr, a.auth(), Headers(a, bundle)), "begin");
    ASSERT_TRUE(upload->Write(crypto::AsBytes(std::string_view(bundle).substr(0, 70000))).ok());
  }  // the connection dropped
  EXPECT_FALSE(HasOutput(a.job_id));
  EXPECT_FALSE(world_->outputs().Open(a.job_id, "").ok());
  EXPECT_EQ(Denials("output.submit", "job:" + a.job_id), 1);
  EXPECT_EQ(StateOf(a.job_id), JobState::kRunning);
}

TEST_F(AgentReportsTest, SessionsOutliveTheirKeyReleaseWindowButNotTheJobsDeadline) {
  Attested a = Attest("job-00000000000000c7");
  // Past kbs_session_ttl_seconds (300): key release refuses the session...
  clock_.offset = 600;
  auto release = world_->services().key_broker.ReleaseKey(kAddr, a.auth(), "claims");
  EXPECT_TRUE(MessageContains(release.status(), "session: expired")) << release.status().message();
  // ...but the agent's calls are bound to the job's deadline (3600 s).
  EXPECT_TRUE(agent_->Report(kAddr, a.auth(), {"RUNNING", ""}).ok());
  EXPECT_TRUE(agent_->ImageManifest(kAddr, a.auth()).ok());
  // At the deadline, nothing more.
  clock_.offset = 3600;
  auto late = agent_->ImageManifest(kAddr, a.auth());
  EXPECT_EQ(late.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(MessageContains(late.status(), "deadline")) << late.status().message();
  const std::string bundle = Bundle(100);
  EXPECT_EQ(agent_->BeginOutput(kAddr, a.auth(), Headers(a, bundle)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(agent_->Report(kAddr, a.auth(), {"FAILED", "late"}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_FALSE(HasOutput(a.job_id));
  EXPECT_EQ(StateOf(a.job_id), JobState::kRunning);
}

TEST_F(AgentReportsTest, AnUploadThatOutlivesTheDeadlineIsNotRecorded) {
  Attested a = Running("job-00000000000000c8");
  const std::string bundle = Bundle(1000);
  auto upload = Must(agent_->BeginOutput(kAddr, a.auth(), Headers(a, bundle)), "begin");
  ASSERT_TRUE(upload->Write(crypto::AsBytes(bundle)).ok());
  clock_.offset = 3600;
  auto r = agent_->FinishOutput(std::move(upload));
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(HasOutput(a.job_id));
}

TEST_F(AgentReportsTest, DecisionsWhoseAuditRecordCannotBeWrittenAreRefused) {
  Attested a = Attest("job-00000000000000c9");
  db_->fail_audit = true;
  EXPECT_FALSE(agent_->Report(kAddr, a.auth(), {"RUNNING", ""}).ok());
  db_->fail_audit = false;
  EXPECT_EQ(StateOf(a.job_id), JobState::kAttested);
  Must(agent_->Report(kAddr, a.auth(), {"RUNNING", ""}), "running");

  db_->fail_audit = true;
  auto m = agent_->ImageManifest(kAddr, a.auth());
  EXPECT_FALSE(m.ok());
  EXPECT_TRUE(MessageContains(m.status(), "disk full")) << m.status().message();
  EXPECT_FALSE(agent_->ImageBlob(kAddr, a.auth(), image_.layer_digest()).ok());

  db_->fail_audit = false;
  const std::string bundle = Bundle(70000);
  auto upload = Must(agent_->BeginOutput(kAddr, a.auth(), Headers(a, bundle)), "begin");
  ASSERT_TRUE(upload->Write(crypto::AsBytes(bundle)).ok());
  db_->fail_audit = true;
  EXPECT_FALSE(agent_->FinishOutput(std::move(upload)).ok());
  db_->fail_audit = false;
  EXPECT_FALSE(HasOutput(a.job_id));
  EXPECT_EQ(StateOf(a.job_id), JobState::kRunning);
  EXPECT_EQ(wakes_.load(), 0);
  // With the log writable again, the same upload goes through.
  EXPECT_TRUE(Submit(a, bundle, Headers(a, bundle)).ok());
}

}  // namespace
}  // namespace cce::plane
