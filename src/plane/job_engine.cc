#include "plane/job_engine.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "plane/credential.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::JobState;

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
    Recover();
    auto last_expiry = std::chrono::steady_clock::now();
    for (;;) {
      RunOnce();
      MaybeCheckpoint(/*force=*/false);
      if (std::chrono::steady_clock::now() - last_expiry > std::chrono::seconds(5)) {
        (void)ExpireOverdue();
        last_expiry = std::chrono::steady_clock::now();
      }
      DestroyFinished();
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
  // Oldest first. The engine's own steps: authorize, provision, gate.
  auto jobs = deps_.db->ListJobsInStates(
      {JobState::kSubmitted, JobState::kAuthorized, JobState::kOutputSubmitted});
  if (!jobs.ok()) {
    deps_.log->Error("engine.list", {{"error", jobs.status().message()}});
    return;
  }
  // Jobs advance in parallel so their durable commits share the store's
  // group commit; each job is advanced by one worker only (and every step is
  // a compare-and-set anyway).
  const size_t workers = std::min<size_t>(kWorkers, jobs->size());
  if (workers <= 1) {
    for (const auto& job : *jobs) Advance(job);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < jobs->size(); i = next++) Advance((*jobs)[i]);
    });
  }
  for (auto& t : pool) t.join();
}

void JobEngine::Recover() {
  auto jobs = deps_.db->ListJobsInStates(
      {JobState::kProvisioning, JobState::kAttested, JobState::kRunning});
  if (!jobs.ok()) {
    deps_.log->Error("engine.recover", {{"error", jobs.status().message()}});
    return;
  }
  for (const auto& job : *jobs) {
    deps_.log->Info("engine.resume", {{"job", job.id},
                                      {"state", std::string(store::JobStateName(job.state))},
                                      {"provisioner", deps_.provisioner->name()}});
    Status s = deps_.provisioner->Resume(job);
    if (!s.ok()) deps_.log->Warn("engine.resume", {{"job", job.id}, {"error", s.message()}});
  }
}

int JobEngine::ExpireOverdue() {
  auto jobs = deps_.db->ListJobsInStates(
      {JobState::kProvisioning, JobState::kAttested, JobState::kRunning});
  if (!jobs.ok()) return 0;
  const int64_t now = deps_.clock->NowUnix();
  int n = 0;
  for (const auto& job : *jobs) {
    if (job.deadline <= 0 || now < job.deadline) continue;
    if (Fail(job, "deadline passed (timeoutSeconds exceeded) in " +
                      std::string(store::JobStateName(job.state)))
            .ok()) {
      ++n;
      deps_.provisioner->Destroy(job.id);
    }
  }
  return n;
}

int JobEngine::DestroyFinished() {
  int n = 0;
  for (const std::string& id : deps_.provisioner->Active()) {
    auto job = deps_.db->GetJob(id);
    if (job.ok() && (job->state == JobState::kProvisioning || job->state == JobState::kAttested ||
                     job->state == JobState::kRunning)) {
      continue;  // still the VM's; a store error also leaves it be (next pass)
    }
    if (!job.ok() && job.status().code() != StatusCode::kNotFound) continue;
    deps_.log->Info("engine.destroy",
                    {{"job", id},
                     {"state", job.ok() ? std::string(store::JobStateName(job->state)) : "absent"},
                     {"provisioner", deps_.provisioner->name()}});
    deps_.provisioner->Destroy(id);
    ++n;
  }
  return n;
}

void JobEngine::MaybeCheckpoint(bool force) {
  if (deps_.audit_checkpoint_every <= 0 && !force) return;
  auto head = deps_.db->GetAuditHead();
  if (!head.ok() || head->seq == 0) return;
  if (checkpointed_seq_ < 0) {
    auto cps = deps_.db->ListCheckpoints();
    checkpointed_seq_ = cps.ok() && !cps->empty() ? cps->back().seq : 0;
  }
  if (head->seq == checkpointed_seq_) return;
  if (!force && head->seq - checkpointed_seq_ < deps_.audit_checkpoint_every) return;
  auto cp = store::SignAuditCheckpoint(*deps_.signing_key, *head, deps_.clock->NowUnix());
  if (cp.ok() && deps_.db->AddCheckpoint(*cp).ok()) {
    checkpointed_seq_ = head->seq;
  } else {
    deps_.log->Warn("audit.checkpoint", {{"seq", std::to_string(head->seq)}});
  }
}

void JobEngine::Advance(store::Job job) {
  // Steps the job as far as the engine can take it now.
  for (int step = 0; step < 4; ++step) {
    Status s;
    switch (job.state) {
      case JobState::kSubmitted: s = Authorize(job); break;
      case JobState::kAuthorized: s = IssueAndProvision(job); break;
      case JobState::kOutputSubmitted: s = ApplyGate(job); break;
      default: return;
    }
    if (!s.ok()) {
      // kFailedPrecondition: another actor (cancel, an agent) moved it first.
      if (s.code() != StatusCode::kFailedPrecondition) {
        deps_.log->Warn("engine.step", {{"job", job.id}, {"error", s.message()}});
      }
      return;
    }
    auto next = deps_.db->GetJob(job.id);
    if (!next.ok() || next->state == job.state) return;
    job = std::move(*next);
  }
}

namespace {

// The gate.verdict audit record: verdict, score, how many findings and of
// which detectors (never their messages: they may quote the output).
json GateAuditDetails(const GateDecision& d) {
  json out = {{"verdict", store::GateVerdictName(d.verdict)}, {"score", d.score}};
  const json findings = json::parse(d.findings_json, nullptr, false);
  if (findings.is_array()) {
    std::set<std::string> detectors;
    for (const json& f : findings) {
      if (f.is_object() && f.contains("detector") && f["detector"].is_string()) {
        detectors.insert(f["detector"].get<std::string>());
      }
    }
    out["findings"] = findings.size();
    out["detectors"] = detectors;
  }
  return out;
}

}  // namespace

// OUTPUT_SUBMITTED -> RELEASED | HELD. The verdict is recorded once (the
// store refuses a second); after a crash between the verdict and the
// transition, the recorded verdict is used, never a new one.
Status JobEngine::ApplyGate(const store::Job& job) {
  ASSIGN_OR_RETURN(store::Output out, deps_.db->GetOutput(job.id));
  if (out.verdict == store::GateVerdict::kPending) {
    auto d = deps_.gate->Score(out);
    GateDecision decision;
    if (d.ok()) {
      decision = *d;
    } else {  // a gate that cannot decide holds: fail closed
      decision.verdict = store::GateVerdict::kHold;
      decision.findings_json =
          json::array({{{"detector", "gate"}, {"message", "gate error: " + d.status().message()}}})
              .dump();
    }
    ASSIGN_OR_RETURN(out,
                     deps_.db->SetGateVerdict(job.id, decision.verdict, decision.score,
                                              decision.findings_json, deps_.clock->NowUnix(),
                                              Audit("gate.verdict", job.id,
                                                    decision.verdict == store::GateVerdict::kRelease
                                                        ? store::AuditDecision::kAllow
                                                        : store::AuditDecision::kDeny,
                                                    GateAuditDetails(decision).dump())));
  }
  const bool release = out.verdict == store::GateVerdict::kRelease;
  return deps_.db
      ->TransitionJob(
          job.id, JobState::kOutputSubmitted, release ? JobState::kReleased : JobState::kHeld,
          release ? "released by the output gate (score " + std::to_string(out.gate_score) + ")"
                  : "held for review by the output gate",
          Audit("job.gate", job.id, store::AuditDecision::kInfo))
      .status();
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
  const int64_t now = deps_.clock->NowUnix();
  Status covered =
      deps_.rentals->CheckCoverage(job.consumer_id, job.datasets, now, now + job.timeout_seconds);
  if (covered.code() == StatusCode::kNotFound || covered.code() == StatusCode::kPermissionDenied) {
    return Fail(job, "not authorized: " + covered.message() + " (the job's timeout from now)");
  }
  RETURN_IF_ERROR(covered);
  return deps_.db
      ->TransitionJob(job.id, JobState::kSubmitted, JobState::kAuthorized,
                      "rentals cover the timeout; image " + job.image_digest + " pinned",
                      Audit("job.authorize", job.id, store::AuditDecision::kAllow,
                            json{{"ledger", deps_.ledger_backend}}.dump()))
      .status();
}

// AUTHORIZED -> PROVISIONING: issue the single-use credential, persist the
// transition, then (only then) ask the provisioner for a VM.
Status JobEngine::IssueAndProvision(const store::Job& job) {
  ASSIGN_OR_RETURN(store::User consumer, deps_.db->GetUser(job.consumer_id));
  ASSIGN_OR_RETURN(
      MintedCredential minted,
      MintJobCredential(job, consumer.name, deps_.clock->NowUnix(), deps_.credential_ttl_seconds,
                        CredentialExpiry::kTtl, *deps_.signing_key));
  const JobCredentialClaims& c = minted.claims;
  ASSIGN_OR_RETURN(
      store::Job provisioning,
      deps_.db->IssueCredentialAndProvision(
          minted.row,
          "credential " + c.credential_id + " issued; provisioner '" + deps_.provisioner->name() +
              "'",
          Audit("credential.issue", job.id, store::AuditDecision::kAllow,
                json{{"credential", c.credential_id}, {"expires_at", c.expires_at}}.dump()),
          Audit("job.provision", job.id, store::AuditDecision::kAllow,
                json{{"provisioner", deps_.provisioner->name()}}.dump())));
  Status s = deps_.provisioner->Provision(provisioning, minted.token);
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
  Status Resume(const store::Job&) override { return Status::Ok(); }
};

class FakeProvisioner : public Provisioner {
 public:
  FakeProvisioner(store::Store& db, OutputStore& outputs, const Clock& clock, uint64_t output_bytes)
      : db_(db), outputs_(outputs), clock_(clock), output_bytes_(output_bytes) {}
  std::string name() const override { return "fake"; }

  Status Provision(const store::Job& job, const std::string&) override { return Walk(job.id); }
  Status Resume(const store::Job& job) override { return Walk(job.id); }

 private:
  // From the job's current state to OUTPUT_SUBMITTED; safe to repeat after a
  // crash at any point (each step is a compare-and-set on the stored state).
  Status Walk(const std::string& job_id) {
    for (;;) {
      ASSIGN_OR_RETURN(store::Job job, db_.GetJob(job_id));
      JobState to;
      switch (job.state) {
        case JobState::kProvisioning: to = JobState::kAttested; break;
        case JobState::kAttested: to = JobState::kRunning; break;
        case JobState::kRunning: to = JobState::kOutputSubmitted; break;
        default: return Status::Ok();
      }
      if (to == JobState::kOutputSubmitted) RETURN_IF_ERROR(SubmitOutput(job));
      RETURN_IF_ERROR(db_.TransitionJob(job.id, job.state, to,
                                        "fake provisioner (no VM, no attestation, no data)",
                                        Audit("job.fake_step", job.id))
                          .status());
    }
  }

  Status SubmitOutput(const store::Job& job) {
    auto existing = db_.GetOutput(job.id);
    if (existing.ok()) return Status::Ok();  // submitted before a crash
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    const std::string text =
        "fake provisioner output for " + job.id + "\nno container ran and no dataset was read\n";
    const uint64_t size = output_bytes_ > 0 ? output_bytes_ : text.size();
    uint64_t at = 0;
    ASSIGN_OR_RETURN(OutputStore::Stored stored,
                     outputs_.Put(job.id, size, [&](std::span<uint8_t> buf) {
                       for (size_t i = 0; i < buf.size();) {
                         const size_t off = static_cast<size_t>(at % text.size());
                         const size_t k = std::min(text.size() - off, buf.size() - i);
                         std::memcpy(buf.data() + i, text.data() + off, k);
                         i += k;
                         at += k;
                       }
                       return Status::Ok();
                     }));
    store::Output out;
    out.job_id = job.id;
    out.blob_ref = stored.blob_ref;
    out.size = static_cast<int64_t>(stored.size);
    out.digest = stored.digest;
    out.created_at = clock_.NowUnix();
    return db_.PutOutput(out, Audit("output.submit", job.id));
  }

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
  OutputStore& outputs_;
  const Clock& clock_;
  uint64_t output_bytes_;
};

}  // namespace

std::unique_ptr<Provisioner> MakeFakeProvisioner(store::Store& db, OutputStore& outputs,
                                                 const Clock& clock, uint64_t output_bytes) {
  return std::make_unique<FakeProvisioner>(db, outputs, clock, output_bytes);
}
std::unique_ptr<Provisioner> MakeNoneProvisioner() {
  return std::make_unique<NoneProvisioner>();
}

}  // namespace cce::plane
