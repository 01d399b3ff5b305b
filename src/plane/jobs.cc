// The Jobs service: submission checks everything it can up front (spec,
// limits, datasets, the consumer's rentals for the whole timeout, the pinned
// image) and records the job idempotently; reads, output downloads and
// cancellation are scoped to the job's consumer (operators and reviewers see
// every job but download none).
#include <algorithm>

#include "image/blob_store.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::AuditDecision;
using store::JobState;
using store::Role;

bool SeesAllJobs(Role r) {
  return r == Role::kOperator || r == Role::kReviewer;
}

std::string NewJobId() {
  std::array<uint8_t, 8> b{};
  if (!crypto::RandomBytes(b).ok()) std::abort();  // never guess ids
  return "job-" + crypto::ToHex(b);
}

}  // namespace

api::Job JobToWire(const store::Job& j, Users& users) {
  return {j.id,
          j.name,
          users.NameOf(j.consumer_id),
          std::string(store::JobStateName(j.state)),
          j.reason,
          j.image_digest,
          j.created_at,
          j.updated_at,
          j.deadline,
          (j.flags & store::kJobFlagSimulatedTee) != 0};
}

StatusOr<Jobs::Submitted> Jobs::Submit(const Caller& caller, const std::string& spec_text,
                                       const std::string& idempotency_key,
                                       const std::string& spec_name) {
  if (idempotency_key.size() > 128) {
    return InvalidArgument("Idempotency-Key: " + std::to_string(idempotency_key.size()) +
                           " characters; expected at most 128");
  }
  if (size_t at = idempotency_key.find_first_of("\r\n\t "); at != std::string::npos) {
    return InvalidArgument(std::string("Idempotency-Key: a ") +
                           (idempotency_key[at] == ' ' ? "space" : "tab or line break") +
                           " at character " + std::to_string(at + 1) +
                           "; expected at most 128 printable characters without spaces");
  }
  const bool name_ok =
      spec_name.size() <= 255 && std::all_of(spec_name.begin(), spec_name.end(), [](char c) {
        return c >= 0x20 && c < 0x7f;
      });
  if (!name_ok) {
    return InvalidArgument(std::string(api::kJobSpecNameHeader) +
                           ": expected the spec's file name, at most 255 printable ASCII "
                           "characters");
  }
  const std::string source = spec_name.empty() ? std::string("spec") : spec_name;
  if (spec_text.empty()) {
    return InvalidArgument(source + ": the body is empty; expected a job spec (YAML or JSON, "
                                    "docs/jobspec.md)");
  }
  ASSIGN_OR_RETURN(JobSpec spec, ParseJobSpec(spec_text, source));
  RETURN_IF_ERROR(ValidateAgainstLimits(spec, d_.job_limits, source));
  const int64_t now = d_.clock.NowUnix();
  const int64_t until = now + spec.resources.timeout_seconds;
  std::vector<std::string> datasets;
  for (const auto& d : spec.datasets) datasets.push_back(d.name);
  for (size_t i = 0; i < datasets.size(); ++i) {
    const std::string& name = datasets[i];
    const std::string field = source + ": spec.datasets[" + std::to_string(i) + "].name";
    Status covered = rentals_.CheckCoverage(caller.user.id, {name}, now, until);
    if (covered.code() == StatusCode::kNotFound) {
      return InvalidArgument(field + ": unknown dataset '" + name + "'");
    }
    if (covered.code() == StatusCode::kPermissionDenied) {
      return audit_.Deny(caller.actor(), "rental.check", "dataset:" + name,
                         PermissionDenied(field + ": your rental of '" + name +
                                          "' does not cover now until now + timeoutSeconds (" +
                                          std::to_string(spec.resources.timeout_seconds) +
                                          " s); rent it: cce rent " + name + " --days N"),
                         {{"from", now}, {"until", until}});
    }
    RETURN_IF_ERROR(covered);
  }
  // Only the caller's own or a public image, and only a manifest digest.
  ASSIGN_OR_RETURN(std::string digest,
                   images_.ResolveForJob(caller, spec.image, source + ": spec.image"));
  store::Job job;
  job.id = NewJobId();
  job.consumer_id = caller.user.id;
  job.name = spec.name;
  job.spec_json = JobSpecToJson(spec);
  job.image_digest = digest;
  job.state = JobState::kSubmitted;
  job.reason = "submitted";
  job.idempotency_key = idempotency_key;
  job.request_hash = crypto::Sha256(crypto::AsBytes(spec_text));
  job.created_at = now;
  job.updated_at = now;
  job.deadline = until;
  job.datasets = std::move(datasets);
  job.timeout_seconds = spec.resources.timeout_seconds;
  ASSIGN_OR_RETURN(store::CreateJobResult r,
                   d_.db.CreateJob(job, audit_.Record(caller.actor(), "job.submit", "job:" + job.id,
                                                      AuditDecision::kAllow, {{"image", digest}})));
  if (d_.on_job_submitted) d_.on_job_submitted();
  return Submitted{JobToWire(r.job, users_), r.created};
}

StatusOr<api::JobList> Jobs::List(const Caller& caller, const ListRequest& request) {
  store::JobFilter f;
  if (!SeesAllJobs(caller.user.role)) f.consumer_id = caller.user.id;
  if (request.state) {
    auto s = store::ParseJobState(*request.state);
    if (!s.ok()) return InvalidArgument("query parameter 'state': " + s.status().message());
    f.state = *s;
  }
  f.limit = request.limit;
  f.offset = request.offset;
  ASSIGN_OR_RETURN(auto jobs, d_.db.ListJobs(f));
  api::JobList out;
  for (const auto& j : jobs) out.jobs.push_back(JobToWire(j, users_));
  // A full page may have more after it: ask again from next_offset.
  if (static_cast<int64_t>(jobs.size()) == f.limit) out.next_offset = f.offset + f.limit;
  return out;
}

StatusOr<store::Job> Jobs::Load(const Caller& caller, const std::string& id) {
  auto j = d_.db.GetJob(id);
  if (!j.ok() || (!SeesAllJobs(caller.user.role) && j->consumer_id != caller.user.id)) {
    if (j.ok() || j.status().code() == StatusCode::kNotFound) {
      return NotFound("no job '" + id + "'");
    }
    return j.status();
  }
  return j;
}

StatusOr<api::JobDetail> Jobs::Get(const Caller& caller, const std::string& job_id) {
  ASSIGN_OR_RETURN(store::Job j, Load(caller, job_id));
  ASSIGN_OR_RETURN(auto history, d_.db.JobHistory(j.id));
  api::JobDetail out;
  out.job = JobToWire(j, users_);
  for (const auto& e : history) {
    out.history.push_back({e.seq, e.from ? std::string(store::JobStateName(*e.from)) : "",
                           std::string(store::JobStateName(e.to)), e.reason, e.at});
  }
  auto output = d_.db.GetOutput(j.id);
  if (output.ok()) {
    // The verdict, score and how many findings, never the findings: they may
    // quote the output, and would let the consumer probe which rows exist
    // (docs/review.md). They are for reviewers (Reviews::Get).
    out.output = api::OutputSummary{output->size, output->digest,
                                    std::string(store::GateVerdictName(output->verdict)),
                                    j.state == JobState::kReleased};
    if (output->verdict != store::GateVerdict::kPending) {
      out.output->score = output->gate_score;
      const json findings = json::parse(output->gate_findings_json, nullptr, false);
      out.output->findings = findings.is_array() ? static_cast<int64_t>(findings.size()) : 0;
    }
  } else if (output.status().code() != StatusCode::kNotFound) {
    return output.status();
  }
  // Once reviewers settled it: their decision, reason and names.
  ASSIGN_OR_RETURN(out.review, ConsumerReview(d_.db, users_, j));
  return out;
}

StatusOr<Jobs::Output> Jobs::DownloadOutput(const Caller& caller, const std::string& job_id) {
  ASSIGN_OR_RETURN(store::Job j, Load(caller, job_id));
  const std::string object = "job:" + j.id;
  // Only the job's own consumer, only once the gate (or a reviewer) released
  // it: nobody reads another's output.
  if (j.consumer_id != caller.user.id) {
    return audit_.Deny(caller.actor(), "output.download", object,
                       PermissionDenied("only the job's consumer may download its output"));
  }
  if (j.state != JobState::kReleased) {
    return audit_.Deny(
        caller.actor(), "output.download", object,
        FailedPrecondition("job " + j.id + " is " + std::string(store::JobStateName(j.state)) +
                           ": its output can be downloaded only once RELEASED"),
        {{"state", store::JobStateName(j.state)}});
  }
  ASSIGN_OR_RETURN(store::Output out, d_.db.GetOutput(j.id));
  // THE release check. RELEASED is reached two ways, and only these pass:
  // the gate's "release" verdict, or a held output that reviewers approved
  // (HELD -> APPROVED -> RELEASED with approvals and no rejection recorded).
  // The store makes both moves only under these conditions; be sure.
  if (out.verdict != store::GateVerdict::kRelease) {
    Status reviewed = out.verdict == store::GateVerdict::kHold
                          ? CheckReleasedByReview(d_.db, j)
                          : FailedPrecondition("job " + j.id + ": output has no gate verdict");
    if (!reviewed.ok()) {
      return audit_.Deny(caller.actor(), "output.download", object,
                         FailedPrecondition("job " + j.id + ": output has no releasing verdict " +
                                            "or review approval (" + reviewed.message() + ")"));
    }
  }
  // A slot before the file is opened: each download holds a file, a segment
  // of plaintext and a worker's time while it streams.
  const int64_t limit = d_.max_concurrent_downloads;
  if (downloads_->fetch_add(1) >= limit) {
    downloads_->fetch_sub(1);
    return audit_.Deny(caller.actor(), "output.download", object,
                       Unavailable("too many output downloads in progress (at most " +
                                   std::to_string(limit) + "); retry shortly"),
                       {{"limit", limit}});
  }
  std::shared_ptr<void> slot(nullptr, [n = downloads_](void*) { n->fetch_sub(1); });
  // The reader authenticates every segment and, before the last one, the
  // digest recorded at submission over the whole plaintext.
  ASSIGN_OR_RETURN(std::unique_ptr<OutputReader> reader, d_.outputs.Open(j.id, out.digest));
  if (reader->size() != static_cast<uint64_t>(out.size)) {
    return DataLoss("job " + j.id + ": stored output does not match its recorded size");
  }
  RETURN_IF_ERROR(audit_.Append(audit_.Record(caller.actor(), "output.download", object,
                                              AuditDecision::kAllow, {{"digest", out.digest}})));
  const uint64_t size = reader->size();
  return Output{std::move(reader), size, out.digest, std::move(slot)};
}

StatusOr<api::Job> Jobs::Cancel(const Caller& caller, const std::string& job_id) {
  ASSIGN_OR_RETURN(store::Job j, Load(caller, job_id));
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (store::IsFinalState(j.state)) {
      return FailedPrecondition("job " + j.id + " is already " +
                                std::string(store::JobStateName(j.state)));
    }
    auto moved = d_.db.TransitionJob(
        j.id, j.state, JobState::kCancelled, "cancelled by " + caller.user.name,
        audit_.Record(caller.actor(), "job.cancel", "job:" + j.id, AuditDecision::kAllow));
    if (moved.ok()) return JobToWire(*moved, users_);
    if (moved.status().code() != StatusCode::kFailedPrecondition) return moved.status();
    ASSIGN_OR_RETURN(j, d_.db.GetJob(j.id));  // it moved on meanwhile: retry
  }
  return Unavailable("job " + j.id + " is changing state; retry");
}

}  // namespace cce::plane
