// Privacy Mode jobs: /api/v1/jobs (submission, status, history, list,
// cancel). Submission checks everything it can up front — spec, limits,
// datasets, the consumer's rentals for the whole timeout, the pinned image —
// records the job (idempotently), and wakes the job engine.
#include "image/blob_store.h"
#include "jobspec/jobspec.h"
#include "plane/api.h"
#include "plane/job_engine.h"
#include "plane/output_store.h"

namespace cce::plane {
namespace {

using store::JobState;

json JobJson(const store::Job& j, const std::string& consumer) {
  return {{"id", j.id},
          {"name", j.name},
          {"consumer", consumer},
          {"state", std::string(store::JobStateName(j.state))},
          {"reason", j.reason},
          {"image", j.image_digest},
          {"created_at", j.created_at},
          {"updated_at", j.updated_at},
          {"deadline", j.deadline},
          {"simulated_tee", (j.flags & store::kJobFlagSimulatedTee) != 0}};
}

bool SeesAllJobs(Role r) {
  return r == Role::kOperator || r == Role::kReviewer;
}

std::string NewJobId() {
  std::array<uint8_t, 8> b{};
  if (!crypto::RandomBytes(b).ok()) std::abort();  // never guess ids
  return "job-" + crypto::ToHex(b);
}

}  // namespace

void Api::RegisterJobs(httplib::Server& svr) {
  Route(svr, "POST", "/api/v1/jobs", {Role::kConsumer},
        [this](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
          std::string key = req.get_header_value("Idempotency-Key");
          if (key.size() > 128 || key.find_first_of("\r\n\t ") != std::string::npos) {
            return InvalidArgument("Idempotency-Key: expected at most 128 printable characters");
          }
          ASSIGN_OR_RETURN(JobSpec spec, ParseJobSpec(req.body, "job spec"));
          RETURN_IF_ERROR(ValidateAgainstLimits(spec, PlaneLimits{}, "job spec"));
          const int64_t now = clock_.NowUnix();
          const int64_t until = now + spec.resources.timeout_seconds;
          for (size_t i = 0; i < spec.datasets.size(); ++i) {
            const std::string& name = spec.datasets[i].name;
            std::string field = "job spec: spec.datasets[" + std::to_string(i) + "].name";
            auto ds = db_.GetDatasetByName(name);
            if (!ds.ok()) {
              if (ds.status().code() == StatusCode::kNotFound) {
                return InvalidArgument(field + ": unknown dataset '" + name + "'");
              }
              return ds.status();
            }
            ASSIGN_OR_RETURN(bool covered, ledger_.Covers(c.user.id, ds->id, now, until));
            if (!covered) {
              (void)db_.AppendAudit(AuditFor(c, "rental.check", "dataset:" + name,
                                             store::AuditDecision::kDeny,
                                             json{{"from", now}, {"until", until}}.dump()));
              return PermissionDenied(field + ": your rental of '" + name +
                                      "' does not cover now until now + timeoutSeconds (" +
                                      std::to_string(spec.resources.timeout_seconds) +
                                      " s); rent it: cce rent " + name + " --days N");
            }
          }
          std::string digest;
          if (const auto* d = std::get_if<ImageDigest>(&spec.image)) {
            ASSIGN_OR_RETURN(image::Digest parsed, image::Digest::Parse(d->digest));
            if (!blobs_.Has(parsed)) {
              return InvalidArgument("job spec: spec.image: " + d->digest +
                                     " is not in the plane's image store (cce image push)");
            }
            digest = d->digest;
          } else {
            const auto& n = std::get<ImageName>(spec.image);
            auto img = db_.GetImage(n.name, n.tag);
            if (!img.ok()) {
              return InvalidArgument("job spec: spec.image: no image " + n.name + ":" + n.tag +
                                     " on the plane (cce image push)");
            }
            digest = img->digest;  // pinned: later pushes of the tag do not affect this job
          }
          store::Job job;
          job.id = NewJobId();
          job.consumer_id = c.user.id;
          job.name = spec.name;
          job.spec_json = JobSpecToJson(spec);
          job.image_digest = digest;
          job.state = JobState::kSubmitted;
          job.reason = "submitted";
          job.idempotency_key = key;
          job.request_hash = crypto::Sha256(crypto::AsBytes(req.body));
          job.created_at = now;
          job.updated_at = now;
          job.deadline = until;
          ASSIGN_OR_RETURN(store::CreateJobResult r,
                           db_.CreateJob(job, AuditFor(c, "job.submit", "job:" + job.id,
                                                       store::AuditDecision::kAllow,
                                                       json{{"image", digest}}.dump())));
          if (engine_ != nullptr) engine_->Wake();
          return ApiResult{r.created ? 201 : 200, JobJson(r.job, c.user.name)};
        });

  Route(svr, "GET", "/api/v1/jobs", {Role::kConsumer, Role::kReviewer, Role::kOperator},
        [this](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
          store::JobFilter f;
          if (!SeesAllJobs(c.user.role)) f.consumer_id = c.user.id;
          if (req.has_param("state")) {
            ASSIGN_OR_RETURN(JobState s, store::ParseJobState(req.get_param_value("state")));
            f.state = s;
          }
          ASSIGN_OR_RETURN(f.limit, IntParam(req, "limit", 1000, 1, 10000));
          ASSIGN_OR_RETURN(f.offset, IntParam(req, "offset", 0, 0, INT64_MAX / 2));
          ASSIGN_OR_RETURN(auto jobs, db_.ListJobs(f));
          json arr = json::array();
          for (const auto& j : jobs) arr.push_back(JobJson(j, OwnerName(j.consumer_id)));
          json out = {{"jobs", arr}};
          // A full page may have more after it: ask again from next_offset.
          if (static_cast<int64_t>(jobs.size()) == f.limit) out["next_offset"] = f.offset + f.limit;
          return ApiResult{200, out};
        });

  // A job another consumer owns answers 404, as if it did not exist.
  auto load = [this](const Caller& c, const std::string& id) -> StatusOr<store::Job> {
    auto j = db_.GetJob(id);
    if (!j.ok() || (!SeesAllJobs(c.user.role) && j->consumer_id != c.user.id)) {
      if (j.ok() || j.status().code() == StatusCode::kNotFound) {
        return NotFound("no job '" + id + "'");
      }
      return j.status();
    }
    return j;
  };

  Route(svr, "GET", R"(/api/v1/jobs/(job-[0-9a-f]+))",
        {Role::kConsumer, Role::kReviewer, Role::kOperator},
        [this, load](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(store::Job j, load(c, req.matches[1].str()));
          ASSIGN_OR_RETURN(auto history, db_.JobHistory(j.id));
          json out = JobJson(j, OwnerName(j.consumer_id));
          json h = json::array();
          for (const auto& e : history) {
            h.push_back({{"seq", e.seq},
                         {"from", e.from ? std::string(store::JobStateName(*e.from)) : ""},
                         {"to", std::string(store::JobStateName(e.to))},
                         {"reason", e.reason},
                         {"at", e.at}});
          }
          out["history"] = h;
          auto output = db_.GetOutput(j.id);
          if (output.ok()) {
            // The digest and size only: gate findings may quote the output,
            // so they are for reviewers (Output Gate issue), not this view.
            out["output"] = {{"size", output->size},
                             {"digest", output->digest},
                             {"verdict", std::string(store::GateVerdictName(output->verdict))},
                             {"downloadable", j.state == JobState::kReleased}};
          } else if (output.status().code() != StatusCode::kNotFound) {
            return output.status();
          }
          return ApiResult{200, out};
        });

  // Only the job's own consumer, only once the gate (or a reviewer) released
  // it. Operators and reviewers cannot download either: nobody reads
  // another's output.
  Route(svr, "GET", R"(/api/v1/jobs/(job-[0-9a-f]+)/output)", {Role::kConsumer},
        [this, load](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(store::Job j, load(c, req.matches[1].str()));
          if (j.state != JobState::kReleased) {
            (void)db_.AppendAudit(AuditFor(c, "output.download", "job:" + j.id,
                                           store::AuditDecision::kDeny,
                                           json{{"state", store::JobStateName(j.state)}}.dump()));
            return FailedPrecondition("job " + j.id + " is " +
                                      std::string(store::JobStateName(j.state)) +
                                      ": its output can be downloaded only once RELEASED");
          }
          ASSIGN_OR_RETURN(store::Output out, db_.GetOutput(j.id));
          if (out.verdict != store::GateVerdict::kRelease) {  // the store forbids this; be sure
            return FailedPrecondition("job " + j.id + ": output has no releasing gate verdict");
          }
          if (outputs_ == nullptr) return Status(StatusCode::kUnavailable, "no output store");
          ASSIGN_OR_RETURN(crypto::SecretBytes bundle, outputs_->Get(j.id));
          std::string digest = "sha256:" + crypto::ToHex(crypto::Sha256(bundle.span()));
          if (digest != out.digest) {
            return DataLoss("job " + j.id + ": stored output does not match its recorded digest");
          }
          RETURN_IF_ERROR(db_.AppendAudit(AuditFor(c, "output.download", "job:" + j.id,
                                                   store::AuditDecision::kAllow,
                                                   json{{"digest", digest}}.dump()))
                              .status());
          ApiResult r;
          r.raw = std::string(reinterpret_cast<const char*>(bundle.data()), bundle.size());
          r.headers.emplace_back("X-Output-Digest", digest);
          return r;
        });

  Route(svr, "POST", R"(/api/v1/jobs/(job-[0-9a-f]+)/cancel)", {Role::kConsumer, Role::kOperator},
        [this, load](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(store::Job j, load(c, req.matches[1].str()));
          for (int attempt = 0; attempt < 3; ++attempt) {
            if (store::IsFinalState(j.state)) {
              return FailedPrecondition("job " + j.id + " is already " +
                                        std::string(store::JobStateName(j.state)));
            }
            auto moved = db_.TransitionJob(
                j.id, j.state, JobState::kCancelled, "cancelled by " + c.user.name,
                AuditFor(c, "job.cancel", "job:" + j.id, store::AuditDecision::kAllow));
            if (moved.ok()) return ApiResult{200, JobJson(*moved, OwnerName(moved->consumer_id))};
            if (moved.status().code() != StatusCode::kFailedPrecondition) return moved.status();
            ASSIGN_OR_RETURN(j, db_.GetJob(j.id));  // it moved on meanwhile: retry
          }
          return Status(StatusCode::kUnavailable, "job " + j.id + " is changing state; retry");
        });
}

}  // namespace cce::plane
