#include "plane/job_engine.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "jobspec/jobspec.h"
#include "plane/credential.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::JobState;

std::string RandomHex(size_t bytes) {
  std::vector<uint8_t> b(bytes);
  if (!crypto::RandomBytes(b).ok()) std::abort();  // no CSPRNG: never guess ids
  return crypto::ToHex(b);
}

}  // namespace

StatusOr<GateDecision> FailClosedGate::Score(const store::Output&) {
  GateDecision d;
  d.verdict = store::GateVerdict::kHold;
  d.score = 1.0;
  d.findings_json =
      R"json([{"detector":"none","message":"no output gate is configured: held for review (fail closed)"}])json";
  return d;
}

JobEngine::JobEngine(EngineDeps deps) : deps_(deps) {}

JobEngine::~JobEngine() {
  Stop();
}

void JobEngine::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void JobEngine::Start() {
  thread_ = std::thread([this] {
    for (;;) {
      RunOnce();
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(500), [this] { return wake_ || stop_; });
      if (stop_) return;
      wake_ = false;
    }
  });
}

void JobEngine::Wake() {
  {
    std::lock_guard<std::mutex> l(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

store::AuditRecord JobEngine::Audit(const std::string& action, const std::string& job_id,
                                    store::AuditDecision d, const std::string& details) const {
  store::AuditRecord a;
  a.at = deps_.clock->NowUnix();
  a.actor = "plane";
  a.action = action;
  a.object = "job:" + job_id;
  a.decision = d;
  a.details_json = details;
  return a;
}

void JobEngine::RunOnce() {
  // Oldest first; jobs in PROVISIONING are re-offered to the provisioner,
  // which is idempotent (crash recovery).
  auto jobs = deps_.db->ListJobsInStates({JobState::kSubmitted, JobState::kAuthorized});
  if (!jobs.ok()) {
    deps_.log->Error("engine.list", {{"error", jobs.status().message()}});
    return;
  }
  for (const auto& job : *jobs) Advance(job);
}

void JobEngine::Advance(const store::Job& job) {
  Status s = job.state == JobState::kSubmitted ? Authorize(job) : IssueAndProvision(job);
  if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) {
    // kFailedPrecondition: another actor (cancel) moved the job first.
    deps_.log->Warn("engine.step", {{"job", job.id}, {"error", s.message()}});
  }
}

Status JobEngine::Fail(const store::Job& job, const std::string& reason) {
  return deps_.db
      ->TransitionJob(
          job.id, job.state, JobState::kFailed, reason,
          Audit("job.fail", job.id, store::AuditDecision::kDeny, json{{"reason", reason}}.dump()))
      .status();
}

// SUBMITTED -> AUTHORIZED: the rental must still cover the job's whole
// timeout from now (it was checked at submission; time has passed since).
Status JobEngine::Authorize(const store::Job& job) {
  auto spec = ParseJobSpec(job.spec_json, "stored spec");
  if (!spec.ok()) return Fail(job, "stored spec unreadable: " + spec.status().message());
  int64_t now = deps_.clock->NowUnix();
  int64_t until = now + spec->resources.timeout_seconds;
  for (const auto& d : spec->datasets) {
    auto ds = deps_.db->GetDatasetByName(d.name);
    if (!ds.ok()) return Fail(job, "dataset '" + d.name + "' is no longer in the catalog");
    ASSIGN_OR_RETURN(bool covered, deps_.ledger->Covers(job.consumer_id, ds->id, now, until));
    if (!covered) {
      return Fail(job, "rental of '" + d.name + "' does not cover the job's timeout from now");
    }
  }
  return deps_.db
      ->TransitionJob(job.id, JobState::kSubmitted, JobState::kAuthorized,
                      "rentals cover the timeout; image " + job.image_digest + " pinned",
                      Audit("job.authorize", job.id, store::AuditDecision::kAllow,
                            json{{"ledger", deps_.ledger->backend()}}.dump()))
      .status();
}

// AUTHORIZED -> PROVISIONING: issue the single-use credential, persist the
// transition, then (only then) ask the provisioner for a VM.
Status JobEngine::IssueAndProvision(const store::Job& job) {
  auto spec = ParseJobSpec(job.spec_json, "stored spec");
  if (!spec.ok()) return Fail(job, "stored spec unreadable: " + spec.status().message());
  ASSIGN_OR_RETURN(store::User consumer, deps_.db->GetUser(job.consumer_id));
  JobCredentialClaims c;
  c.credential_id = "cred-" + RandomHex(16);
  c.job_id = job.id;
  c.consumer = consumer.name;
  for (const auto& d : spec->datasets) c.datasets.push_back(d.name);
  c.image_digest = job.image_digest;
  c.issued_at = deps_.clock->NowUnix();
  c.expires_at = c.issued_at + deps_.credential_ttl_seconds;
  ASSIGN_OR_RETURN(std::string token, SignJobCredential(c, *deps_.signing_key));
  store::JobCredential row;
  row.id = c.credential_id;
  row.job_id = job.id;
  row.issued_at = c.issued_at;
  row.expires_at = c.expires_at;
  RETURN_IF_ERROR(deps_.db->IssueCredential(
      row, Audit("credential.issue", job.id, store::AuditDecision::kAllow,
                 json{{"credential", c.credential_id}, {"expires_at", c.expires_at}}.dump())));
  ASSIGN_OR_RETURN(
      store::Job provisioning,
      deps_.db->TransitionJob(job.id, JobState::kAuthorized, JobState::kProvisioning,
                              "credential " + c.credential_id + " issued; provisioner '" +
                                  deps_.provisioner->name() + "'",
                              Audit("job.provision", job.id, store::AuditDecision::kAllow,
                                    json{{"provisioner", deps_.provisioner->name()}}.dump())));
  Status s = deps_.provisioner->Provision(provisioning, token);
  if (!s.ok()) {
    auto cur = deps_.db->GetJob(job.id);
    if (cur.ok() && cur->state == JobState::kProvisioning) {
      return Fail(*cur, "provisioner '" + deps_.provisioner->name() + "' failed: " + s.message());
    }
  }
  return s;
}

namespace {

class NoneProvisioner : public Provisioner {
 public:
  std::string name() const override { return "none"; }
  Status Provision(const store::Job&, const std::string&) override { return Status::Ok(); }
};

class FakeProvisioner : public Provisioner {
 public:
  FakeProvisioner(store::Store& db, Gate& gate, const Clock& clock)
      : db_(db), gate_(gate), clock_(clock) {}
  std::string name() const override { return "fake"; }

  Status Provision(const store::Job& job, const std::string&) override {
    const std::pair<JobState, JobState> steps[] = {
        {JobState::kProvisioning, JobState::kAttested},
        {JobState::kAttested, JobState::kRunning},
        {JobState::kRunning, JobState::kOutputSubmitted}};
    for (const auto& [from, to] : steps) {
      if (to == JobState::kOutputSubmitted) {
        store::Output out;
        out.job_id = job.id;
        out.blob_ref = "none:fake-provisioner";
        out.digest = "sha256:" + crypto::ToHex(crypto::Sha256({}));
        out.created_at = clock_.NowUnix();
        RETURN_IF_ERROR(db_.PutOutput(out, Audit("output.submit", job.id)));
      }
      RETURN_IF_ERROR(db_.TransitionJob(job.id, from, to,
                                        "fake provisioner (no VM, no attestation, no data)",
                                        Audit("job.fake_step", job.id))
                          .status());
    }
    ASSIGN_OR_RETURN(store::Output out, db_.GetOutput(job.id));
    ASSIGN_OR_RETURN(GateDecision d, gate_.Score(out));
    ASSIGN_OR_RETURN(out, db_.SetGateVerdict(job.id, d.verdict, d.score, d.findings_json,
                                             clock_.NowUnix(), Audit("gate.verdict", job.id)));
    JobState to = d.verdict == store::GateVerdict::kRelease ? JobState::kReleased : JobState::kHeld;
    return db_
        .TransitionJob(job.id, JobState::kOutputSubmitted, to,
                       to == JobState::kHeld ? "held for review by the output gate"
                                             : "released by the output gate",
                       Audit("job.gate", job.id))
        .status();
  }

 private:
  store::AuditRecord Audit(const std::string& action, const std::string& job_id) const {
    store::AuditRecord a;
    a.at = clock_.NowUnix();
    a.actor = "provisioner:fake";
    a.action = action;
    a.object = "job:" + job_id;
    a.decision = store::AuditDecision::kInfo;
    return a;
  }
  store::Store& db_;
  Gate& gate_;
  const Clock& clock_;
};

}  // namespace

std::unique_ptr<Provisioner> MakeFakeProvisioner(store::Store& db, Gate& gate, const Clock& clock) {
  return std::make_unique<FakeProvisioner>(db, gate, clock);
}
std::unique_ptr<Provisioner> MakeNoneProvisioner() {
  return std::make_unique<NoneProvisioner>();
}

}  // namespace cce::plane
