// The Reviews service (docs/review.md): the queue of outputs the gate held,
// their findings and files for reviewers, and the decisions that release or
// reject them. The bundle is never held in memory: its tar is walked
// (bundle_tar.h) straight off OutputReader, one authenticated segment at a
// time.
#include <openssl/crypto.h>

#include <algorithm>
#include <set>

#include "plane/bundle_tar.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::AuditDecision;
using store::JobState;
using store::Role;

std::string Object(const std::string& job_id) {
  return "job:" + job_id;
}

// The tar inside a sealed output, pulled a segment at a time (each
// authenticated before libarchive sees it; the whole digest is checked at
// the last one).
StatusOr<std::unique_ptr<BundleTar>> OpenBundle(OutputStore& outputs, const std::string& job_id,
                                                const std::string& digest) {
  ASSIGN_OR_RETURN(std::unique_ptr<OutputReader> reader, outputs.Open(job_id, digest));
  std::shared_ptr<OutputReader> r(std::move(reader));
  return BundleTar::Open([r]() { return r->Next(); }, "output of " + job_id,
                         static_cast<uint64_t>(Reviews::kMaxListedFiles) + 1000);
}

// One file of the bundle: the sniffed prefix first, then the rest.
class BundleFileStream : public Reviews::FileStream {
 public:
  BundleFileStream(std::unique_ptr<BundleTar> tar, std::string prefix)
      : tar_(std::move(tar)), prefix_(std::move(prefix)) {}
  ~BundleFileStream() override { OPENSSL_cleanse(prefix_.data(), prefix_.size()); }
  StatusOr<size_t> Read(std::span<uint8_t> out) override {
    if (sent_ < prefix_.size()) {
      const size_t n = std::min(out.size(), prefix_.size() - sent_);
      std::copy_n(prefix_.data() + sent_, n, out.data());
      sent_ += n;
      return n;
    }
    return tar_->Read(out);
  }

 private:
  std::unique_ptr<BundleTar> tar_;
  std::string prefix_;  // plaintext: wiped when the stream ends
  size_t sent_ = 0;
};

// A reason a reviewer typed: 1..kMaxReasonBytes bytes, printable text.
Status CheckReason(std::string_view reason) {
  if (reason.empty()) return InvalidArgument("body.reason: required (say why)");
  if (reason.size() > Reviews::kMaxReasonBytes) {
    return InvalidArgument("body.reason: " + std::to_string(reason.size()) + " bytes, at most " +
                           std::to_string(Reviews::kMaxReasonBytes));
  }
  const bool has_newline = reason.find_first_of("\t\r\n") != std::string_view::npos;
  if (has_newline || !LooksLikeText(reason, false)) {
    return InvalidArgument(
        "body.reason: expected printable text (UTF-8, no control characters or line breaks)");
  }
  return Status::Ok();
}

// The gate's stored findings (an array of gate::Finding objects), typed.
StatusOr<std::vector<api::ReviewFinding>> ParseFindings(const store::Output& o) {
  std::vector<api::ReviewFinding> out;
  if (o.gate_findings_json.empty()) return out;
  const json j = json::parse(o.gate_findings_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) {
    return DataLoss("output of " + o.job_id + ": stored gate findings are not a JSON array");
  }
  for (size_t i = 0; i < j.size(); ++i) {
    api::ReviewFinding f;
    Status read = api::FromJson(j[i], &f, api::Decode::kLenient,
                                "output of " + o.job_id + ": findings[" + std::to_string(i) + "]");
    if (!read.ok()) return DataLoss(read.message());  // stored by the gate: corruption
    out.push_back(std::move(f));
  }
  return out;
}

int64_t CountFindings(const store::Output& o) {
  if (o.gate_findings_json.empty()) return 0;
  const json j = json::parse(o.gate_findings_json, nullptr, /*allow_exceptions=*/false);
  return j.is_array() ? static_cast<int64_t>(j.size()) : 0;
}

bool IsReviewedState(JobState s) {
  return s == JobState::kHeld || s == JobState::kApproved || s == JobState::kRejected ||
         s == JobState::kReleased;
}

}  // namespace

// ---- The rules other services share -----------------------------------------

Status CheckReleasedByReview(store::Store& db, const store::Job& job) {
  const std::string id = job.id;
  if (job.state != JobState::kReleased) {
    return FailedPrecondition("job " + id + " is " + std::string(store::JobStateName(job.state)) +
                              ", not RELEASED");
  }
  ASSIGN_OR_RETURN(store::Output out, db.GetOutput(id));
  if (out.verdict != store::GateVerdict::kHold) {
    return FailedPrecondition("job " + id + ": output was not held by the gate");
  }
  ASSIGN_OR_RETURN(auto history, db.JobHistory(id));
  const size_t n = history.size();
  if (n < 2 || history[n - 1].from != JobState::kApproved ||
      history[n - 1].to != JobState::kReleased || history[n - 2].from != JobState::kHeld ||
      history[n - 2].to != JobState::kApproved) {
    return FailedPrecondition("job " + id + ": released without HELD -> APPROVED -> RELEASED");
  }
  ASSIGN_OR_RETURN(auto reviews, db.ListReviews(id));
  const bool any_reject = std::any_of(reviews.begin(), reviews.end(), [](const store::Review& r) {
    return r.decision == store::ReviewDecision::kReject;
  });
  if (reviews.empty() || any_reject) {
    return FailedPrecondition("job " + id + ": no approving review decisions recorded");
  }
  return Status::Ok();
}

StatusOr<std::optional<api::JobReview>> ConsumerReview(store::Store& db, Users& users,
                                                       const store::Job& job) {
  if (job.state != JobState::kRejected && job.state != JobState::kReleased) {
    return std::optional<api::JobReview>();
  }
  ASSIGN_OR_RETURN(auto reviews, db.ListReviews(job.id));
  if (reviews.empty()) return std::optional<api::JobReview>();  // released by the gate
  const bool rejected = job.state == JobState::kRejected;
  const auto wanted = rejected ? store::ReviewDecision::kReject : store::ReviewDecision::kApprove;
  api::JobReview r;
  r.decision = rejected ? "rejected" : "approved";
  for (const store::Review& d : reviews) {  // oldest first: the last matching one decided
    if (d.decision != wanted) continue;
    r.reviewers.push_back(users.NameOf(d.reviewer_id));
    r.reason = d.reason;
    r.decided_at = d.at;
  }
  if (r.reviewers.empty()) return std::optional<api::JobReview>();
  return std::optional<api::JobReview>(std::move(r));
}

// ---- Reviews ------------------------------------------------------------------

StatusOr<api::ReviewList> Reviews::List(const Caller& caller, const ListRequest& request) {
  if (caller.user.role != Role::kReviewer && caller.user.role != Role::kOperator) {
    return audit_.Deny(caller.actor(), "review.list", "reviews",
                       PermissionDenied("only reviewers and operators see the review queue"));
  }
  if (request.decided && (request.limit < 1 || request.limit > 1000)) {
    return InvalidArgument("query parameter 'limit': expected an integer in 1..1000");
  }
  std::vector<store::Job> jobs;
  if (!request.decided) {
    ASSIGN_OR_RETURN(jobs, d_.db.ListJobsInStates({JobState::kHeld}));  // oldest first
  } else {
    ASSIGN_OR_RETURN(auto recent, d_.db.ListRecentReviews(10000));  // newest first
    std::set<std::string> seen;
    for (const store::Review& r : recent) {
      if (static_cast<int64_t>(jobs.size()) >= request.limit) break;
      if (!seen.insert(r.job_id).second) continue;
      ASSIGN_OR_RETURN(store::Job j, d_.db.GetJob(r.job_id));
      if (j.state == JobState::kReleased || j.state == JobState::kRejected) {
        jobs.push_back(std::move(j));
      }
    }
  }
  api::ReviewList out;
  for (const store::Job& j : jobs) {
    api::ReviewSummary s;
    s.job = j.id;
    s.consumer = users_.NameOf(j.consumer_id);
    s.state = std::string(store::JobStateName(j.state));
    auto o = d_.db.GetOutput(j.id);
    if (o.ok()) {
      s.score = o->gate_score;
      s.findings = CountFindings(*o);
      s.submitted_at = o->created_at;
    } else if (o.status().code() != StatusCode::kNotFound) {
      return o.status();
    }
    ASSIGN_OR_RETURN(auto reviews, d_.db.ListReviews(j.id));
    for (const store::Review& r : reviews) {
      if (r.decision == store::ReviewDecision::kApprove) {
        s.approvals.push_back(users_.NameOf(r.reviewer_id));
      }
    }
    out.reviews.push_back(std::move(s));
  }
  return out;
}

StatusOr<api::ReviewDetail> Reviews::Detail(const store::Job& job, const store::Output& output) {
  api::ReviewDetail d;
  d.job = job.id;
  d.consumer = users_.NameOf(job.consumer_id);
  d.state = std::string(store::JobStateName(job.state));
  d.verdict = std::string(store::GateVerdictName(output.verdict));
  d.score = output.gate_score;
  d.required_approvals = d_.review_required_approvals;
  ASSIGN_OR_RETURN(d.findings, ParseFindings(output));
  // A bundle that is not a readable tar (the gate held it for that, with a
  // finding saying so) lists no files; reviewers can still decide on it.
  // Tampering (kDataLoss) and I/O errors are errors.
  Status listed = [&]() -> Status {
    ASSIGN_OR_RETURN(auto tar, OpenBundle(d_.outputs, job.id, output.digest));
    for (;;) {
      ASSIGN_OR_RETURN(auto entry, tar->Next());
      if (!entry) break;
      if (static_cast<int64_t>(d.files.size()) >= kMaxListedFiles) {
        return ResourceExhausted("output of " + job.id + ": more than " +
                                 std::to_string(kMaxListedFiles) + " files");
      }
      d.files.push_back({entry->path, static_cast<int64_t>(entry->size)});
    }
    return Status::Ok();
  }();
  if (listed.code() == StatusCode::kInvalidArgument) {
    d.files.clear();
  } else if (!listed.ok()) {
    return listed;
  }
  ASSIGN_OR_RETURN(auto reviews, d_.db.ListReviews(job.id));
  for (const store::Review& r : reviews) {
    d.decisions.push_back({users_.NameOf(r.reviewer_id),
                           std::string(store::ReviewDecisionName(r.decision)), r.reason, r.at});
  }
  return d;
}

StatusOr<api::ReviewDetail> Reviews::Get(const Caller& caller, const std::string& job_id) {
  const std::string object = Object(job_id);
  if (caller.user.role != Role::kReviewer) {
    return audit_.Deny(caller.actor(), "review.show", object,
                       PermissionDenied("only reviewers see an output's findings and files"));
  }
  auto job = d_.db.GetJob(job_id);
  auto output = job.ok() ? d_.db.GetOutput(job_id) : StatusOr<store::Output>(job.status());
  if (!output.ok() || output->verdict != store::GateVerdict::kHold) {
    if (!output.ok() && output.status().code() != StatusCode::kNotFound) return output.status();
    return audit_.Deny(caller.actor(), "review.show", object,
                       NotFound("no output held for review for job '" + job_id + "'"));
  }
  RETURN_IF_ERROR(
      audit_.Append(audit_.Record(caller.actor(), "review.show", object, AuditDecision::kAllow)));
  return Detail(*job, *output);
}

StatusOr<Reviews::File> Reviews::OpenFile(const Caller& caller, const std::string& job_id,
                                          const std::string& path) {
  const std::string object = Object(job_id);
  const json details = {{"path", path.substr(0, 512)}};
  if (caller.user.role != Role::kReviewer) {
    return audit_.Deny(caller.actor(), "review.file", object,
                       PermissionDenied("only reviewers see an output's files"), details);
  }
  if (path.empty() || path.size() > 4096 || path.find('\0') != std::string::npos) {
    return audit_.Deny(caller.actor(), "review.file", object,
                       InvalidArgument("file path: expected 1..4096 bytes without NUL"), details);
  }
  auto job = d_.db.GetJob(job_id);
  auto output = job.ok() ? d_.db.GetOutput(job_id) : StatusOr<store::Output>(job.status());
  if (!output.ok() || output->verdict != store::GateVerdict::kHold) {
    if (!output.ok() && output.status().code() != StatusCode::kNotFound) return output.status();
    return audit_.Deny(caller.actor(), "review.file", object,
                       NotFound("no output held for review for job '" + job_id + "'"), details);
  }
  if (!IsReviewedState(job->state)) {
    return audit_.Deny(
        caller.actor(), "review.file", object,
        FailedPrecondition("job " + job_id + " is " + std::string(store::JobStateName(job->state)) +
                           ": its files are no longer shown"),
        details);
  }
  const int64_t limit = d_.max_concurrent_downloads;
  if (streams_->fetch_add(1) >= limit) {
    streams_->fetch_sub(1);
    return audit_.Deny(caller.actor(), "review.file", object,
                       Unavailable("too many review file streams in progress (at most " +
                                   std::to_string(limit) + "); retry shortly"),
                       details);
  }
  std::shared_ptr<void> slot(nullptr, [n = streams_](void*) { n->fetch_sub(1); });
  ASSIGN_OR_RETURN(auto tar, OpenBundle(d_.outputs, job_id, output->digest));
  std::optional<BundleTar::Entry> found;
  for (;;) {
    ASSIGN_OR_RETURN(auto entry, tar->Next());
    if (!entry) break;
    if (entry->path == path) {
      found = std::move(entry);
      break;
    }
  }
  if (!found) {
    return audit_.Deny(
        caller.actor(), "review.file", object,
        NotFound("job " + job_id + ": no file '" + path.substr(0, 256) + "' in the output"),
        details);
  }
  // Sniff the type from the first bytes; they are sent first, then the rest.
  std::string head(std::min<uint64_t>(found->size, kSniffBytes), '\0');
  size_t have = 0;
  while (have < head.size()) {
    ASSIGN_OR_RETURN(size_t n,
                     tar->Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(head.data()) + have,
                                                  head.size() - have)));
    if (n == 0) break;
    have += n;
  }
  head.resize(have);
  File f;
  f.path = path;
  f.size = found->size;
  f.content_type = SniffContentType(head, found->size > have, &f.attachment);
  RETURN_IF_ERROR(audit_.Append(audit_.Record(
      caller.actor(), "review.file", object, AuditDecision::kAllow,
      {{"path", path.substr(0, 512)}, {"size", f.size}, {"content_type", f.content_type}})));
  f.stream = std::make_unique<BundleFileStream>(std::move(tar), std::move(head));
  f.slot = std::move(slot);
  return f;
}

StatusOr<api::ReviewDetail> Reviews::Approve(const Caller& caller, const std::string& job_id,
                                             const api::ReviewDecisionRequest& request) {
  return Decide(caller, job_id, request, store::ReviewDecision::kApprove);
}

StatusOr<api::ReviewDetail> Reviews::Reject(const Caller& caller, const std::string& job_id,
                                            const api::ReviewDecisionRequest& request) {
  return Decide(caller, job_id, request, store::ReviewDecision::kReject);
}

StatusOr<api::ReviewDetail> Reviews::Decide(const Caller& caller, const std::string& job_id,
                                            const api::ReviewDecisionRequest& request,
                                            store::ReviewDecision decision) {
  const bool approve = decision == store::ReviewDecision::kApprove;
  const std::string action = approve ? "review.approve" : "review.reject";
  const std::string object = Object(job_id);
  if (caller.user.role != Role::kReviewer) {
    return audit_.Deny(caller.actor(), action, object,
                       PermissionDenied("only reviewers decide on held outputs (role '" +
                                        std::string(store::RoleName(caller.user.role)) + "')"));
  }
  Status reason_ok = CheckReason(request.reason);
  if (!reason_ok.ok()) return audit_.Deny(caller.actor(), action, object, reason_ok);
  auto job = d_.db.GetJob(job_id);
  if (!job.ok()) {
    if (job.status().code() != StatusCode::kNotFound) return job.status();
    return audit_.Deny(caller.actor(), action, object, NotFound("no job '" + job_id + "'"));
  }
  store::Review review;
  review.job_id = job_id;
  review.reviewer_id = caller.user.id;
  review.decision = decision;
  review.reason = request.reason;
  review.at = d_.clock.NowUnix();
  const int64_t required = d_.review_required_approvals;
  const std::string move_reason =
      (approve ? "released after review: " : "rejected on review: ") + request.reason;
  const json details = {{"reason", request.reason}, {"required_approvals", required}};
  auto recorded = d_.db.RecordReview(
      review, required, move_reason,
      audit_.Record(caller.actor(), action, object, AuditDecision::kAllow, details),
      audit_.Record(caller.actor(), "job.review", object, AuditDecision::kAllow,
                    {{"to", approve ? "RELEASED" : "REJECTED"}, {"required_approvals", required}}));
  if (!recorded.ok()) {
    Status why = recorded.status();
    switch (why.code()) {
      case StatusCode::kNotFound:
      case StatusCode::kAlreadyExists:
      case StatusCode::kFailedPrecondition:
      case StatusCode::kInvalidArgument: break;
      default:
        // The decision and its audit record are one transaction: neither
        // was written, so nothing was decided.
        d_.log.Error("review.record_failed", {{"job", job_id}, {"error", why.message()}});
        why = Unavailable("the decision could not be recorded with its audit record (" +
                          why.message() + "): nothing was decided; retry");
    }
    return audit_.Deny(caller.actor(), action, object, why, {{"required_approvals", required}});
  }
  ASSIGN_OR_RETURN(store::Output output, d_.db.GetOutput(job_id));
  return Detail(recorded->job, output);
}

}  // namespace cce::plane
