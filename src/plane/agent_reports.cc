// The AgentReports service: what the job's agent, inside the attested TEE,
// may do with its key broker session (docs/attestation.md, "Agent routes"):
// report RUNNING or FAILED, fetch the job's pinned image, submit the output
// bundle it signed with the TEE key. One session rule for every call
// (CheckSession); every decision audited on "job:<id>" as "tee:<addr>"; an
// allow whose audit record cannot be written is refused.
#include <algorithm>

#include "crypto/jwe.h"
#include "image/image.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::AuditDecision;
using store::JobState;

constexpr std::string_view kBearer = "Bearer ";

std::string JobObject(const std::string& job_id) {
  return "job:" + (job_id.empty() ? std::string("unknown") : job_id);
}

std::string Tee(const std::string& remote_addr) {
  return "tee:" + remote_addr;
}

// Printable ASCII only (anything else becomes '?'), at most `max` bytes: the
// reason is shown to the consumer and written to logs.
std::string SanitizeReason(std::string_view reason, size_t max) {
  std::string out;
  out.reserve(std::min(reason.size(), max));
  for (char c : reason.substr(0, max)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

std::string StateList(const std::vector<JobState>& states) {
  std::string out;
  for (JobState s : states) {
    if (!out.empty()) out += " or ";
    out += std::string(store::JobStateName(s));
  }
  return out;
}

}  // namespace

// ---- the session rule -----------------------------------------------------------

StatusOr<AgentReports::AgentSession> AgentReports::CheckSession(std::string_view authorization,
                                                                const std::vector<JobState>& states,
                                                                std::string* job_id) {
  if (authorization.substr(0, kBearer.size()) != kBearer) {
    return Unauthenticated("session: missing Authorization: Bearer <session>");
  }
  // The session's expires_at bounds key release only; agent calls are bound
  // by the job's deadline instead (checked below).
  auto claims = VerifyKbsSession(authorization.substr(kBearer.size()), session_mac_,
                                 d_.clock.NowUnix(), SessionUse::kAgent);
  if (!claims.ok()) return Unauthenticated(claims.status().message());
  *job_id = claims->job_id;
  auto job = d_.db.GetJob(claims->job_id);
  if (!job.ok()) {
    if (job.status().code() == StatusCode::kNotFound) {
      return PermissionDenied("session: job " + claims->job_id + " is unknown to this plane");
    }
    return job.status();
  }
  // The credential that attested the job: a session is only ever signed by
  // Attest after AcceptAttestation marked that credential used for this job
  // (a job is attested once), so a used credential of this job is it.
  auto cred = d_.db.GetCredential(claims->credential_id);
  if (!cred.ok() || cred->job_id != job->id || !cred->used_at) {
    return PermissionDenied("session: credential " + claims->credential_id +
                            " is not the one that attested job " + job->id);
  }
  const int64_t now = d_.clock.NowUnix();
  if (now >= job->deadline) {
    return PermissionDenied("job " + job->id + ": its deadline (" + std::to_string(job->deadline) +
                            ") has passed");
  }
  if (std::find(states.begin(), states.end(), job->state) == states.end()) {
    return FailedPrecondition("job " + job->id + " is " +
                              std::string(store::JobStateName(job->state)) + ", not " +
                              StateList(states));
  }
  return AgentSession{std::move(claims).value(), std::move(job).value()};
}

StatusOr<AgentReports::AgentSession> AgentReports::Authenticate(
    const std::string& remote_addr, std::string_view authorization, const std::string& action,
    const std::vector<JobState>& states) {
  std::string job_id;
  auto s = CheckSession(authorization, states, &job_id);
  if (!s.ok()) return audit_.Deny(Tee(remote_addr), action, JobObject(job_id), s.status());
  return s;
}

// ---- reports --------------------------------------------------------------------

StatusOr<api::Job> AgentReports::Report(const std::string& remote_addr,
                                        std::string_view authorization,
                                        const api::AgentReportRequest& request) {
  const std::string action = "agent.report";
  const bool running = request.state == "RUNNING";
  const bool failed = request.state == "FAILED";
  // RUNNING comes only from ATTESTED; FAILED from either. An unknown target
  // is refused after the session is checked, so the refusal names the job.
  const std::vector<JobState> from =
      running ? std::vector<JobState>{JobState::kAttested}
              : std::vector<JobState>{JobState::kAttested, JobState::kRunning};
  std::string job_id;
  auto session = CheckSession(authorization, from, &job_id);
  const std::string actor = Tee(remote_addr);
  if (!session.ok()) return audit_.Deny(actor, action, JobObject(job_id), session.status());
  const store::Job& job = session->job;
  const std::string object = JobObject(job.id);
  if (!running && !failed) {
    return audit_.Deny(actor, action, object,
                       InvalidArgument("body.state: expected \"RUNNING\" or \"FAILED\""));
  }
  if (running && !request.reason.empty()) {
    return audit_.Deny(actor, action, object,
                       InvalidArgument("body.reason: only a FAILED report carries a reason"));
  }
  const JobState to = running ? JobState::kRunning : JobState::kFailed;
  const std::string reason =
      running
          ? "agent: running"
          : "agent: " + (request.reason.empty() ? std::string("failed (no reason given)")
                                                : SanitizeReason(request.reason, kMaxReasonBytes));
  auto moved = d_.db.TransitionJob(job.id, job.state, to, reason,
                                   audit_.Record(actor, action, object, AuditDecision::kAllow,
                                                 {{"from", store::JobStateName(job.state)},
                                                  {"to", store::JobStateName(to)},
                                                  {"reason", reason}}));
  if (!moved.ok()) return audit_.Deny(actor, action, object, moved.status());
  if (failed) d_.log.Warn("agent.failed", {{"job", job.id}, {"reason", reason}});
  return JobToWire(*moved, users_);
}

// ---- the image --------------------------------------------------------------------

StatusOr<api::AgentJob> AgentReports::Job(const std::string& remote_addr,
                                          std::string_view authorization) {
  const std::string action = "agent.job";
  ASSIGN_OR_RETURN(AgentSession s, Authenticate(remote_addr, authorization, action,
                                                {JobState::kAttested, JobState::kRunning}));
  const std::string actor = Tee(remote_addr);
  const std::string object = JobObject(s.job.id);
  auto deny = [&](const Status& why) { return audit_.Deny(actor, action, object, why); };
  auto spec = ParseJobSpec(s.job.spec_json, "job " + s.job.id + " spec");
  if (!spec.ok()) return deny(Internal(spec.status().message()));
  api::AgentJob out;
  out.job_id = s.job.id;
  out.spec = s.job.spec_json;
  out.image_digest = s.job.image_digest;
  out.deadline = s.job.deadline;
  for (const DatasetMount& m : spec->datasets) {
    // Only what the attested credential names: the session's datasets.
    if (std::find(s.claims.datasets.begin(), s.claims.datasets.end(), m.name) ==
        s.claims.datasets.end()) {
      return deny(PermissionDenied("dataset '" + m.name + "' is not in the job's credential"));
    }
    auto ds = d_.db.GetDatasetByName(m.name);
    if (!ds.ok()) return deny(ds.status().WithContext("dataset " + m.name));
    out.datasets.push_back({m.name, m.mount_path, ds->location, ds->key_id});
  }
  RETURN_IF_ERROR(audit_.Append(audit_.Record(actor, action, object, AuditDecision::kAllow,
                                              {{"datasets", s.claims.datasets}})));
  return out;
}

StatusOr<AgentReports::Manifest> AgentReports::ImageManifest(const std::string& remote_addr,
                                                             std::string_view authorization) {
  const std::string action = "image.manifest";
  ASSIGN_OR_RETURN(AgentSession s, Authenticate(remote_addr, authorization, action,
                                                {JobState::kAttested, JobState::kRunning}));
  const std::string actor = Tee(remote_addr);
  const std::string object = JobObject(s.job.id);
  auto deny = [&](const Status& why) { return audit_.Deny(actor, action, object, why); };
  auto digest = image::Digest::Parse(s.job.image_digest);
  if (!digest.ok())
    return deny(
        Internal("job " + s.job.id + ": pinned image digest: " + digest.status().message()));
  auto fd = d_.blobs.Open(*digest);
  if (!fd.ok()) return deny(fd.status().WithContext("image manifest " + digest->str()));
  auto bytes = ReadAll(fd->get(), image::kMaxJsonBytes, digest->str());
  if (!bytes.ok()) return deny(bytes.status());
  // The store verified the digest on the way in; a changed file is caught
  // here rather than handed to the TEE (which checks it again).
  if (image::Digest::Of(*bytes) != *digest) {
    return deny(DataLoss("image manifest " + digest->str() + ": stored bytes changed"));
  }
  json j = json::parse(*bytes, nullptr, false);
  std::string media_type;
  if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()) {
    media_type = j["mediaType"].get<std::string>();
  }
  RETURN_IF_ERROR(audit_.Append(
      audit_.Record(actor, action, object, AuditDecision::kAllow, {{"digest", digest->str()}})));
  return Manifest{std::move(bytes).value(), digest->str(), std::move(media_type)};
}

StatusOr<AgentReports::Blob> AgentReports::ImageBlob(const std::string& remote_addr,
                                                     std::string_view authorization,
                                                     const std::string& digest_text) {
  const std::string action = "image.blob";
  ASSIGN_OR_RETURN(AgentSession s, Authenticate(remote_addr, authorization, action,
                                                {JobState::kAttested, JobState::kRunning}));
  const std::string actor = Tee(remote_addr);
  const std::string object = JobObject(s.job.id);
  auto deny = [&](const Status& why, json details = json::object()) {
    return audit_.Deny(actor, action, object, why, std::move(details));
  };
  auto digest = image::Digest::Parse(digest_text);
  if (!digest.ok()) return deny(InvalidArgument("digest: " + digest.status().message()));
  auto manifest_digest = image::Digest::Parse(s.job.image_digest);
  if (!manifest_digest.ok()) return deny(Internal("job " + s.job.id + ": pinned image digest"));
  auto mfd = d_.blobs.Open(*manifest_digest);
  if (!mfd.ok()) return deny(mfd.status().WithContext("image manifest"));
  auto text = ReadAll(mfd->get(), image::kMaxJsonBytes, manifest_digest->str());
  if (!text.ok()) return deny(text.status());
  auto blobs = image::ManifestBlobDigests(*text);
  if (!blobs.ok()) return deny(blobs.status().WithContext("image manifest"));
  // Only what the pinned manifest names: the session is no key to the rest
  // of the blob store (other tenants' layers, other images).
  if (std::find(blobs->begin(), blobs->end(), *digest) == blobs->end()) {
    return deny(PermissionDenied("blob " + digest->str() + " is not in job " + s.job.id +
                                 "'s image " + manifest_digest->str()),
                {{"digest", digest->str()}});
  }
  auto fd = d_.blobs.Open(*digest);
  if (!fd.ok()) return deny(fd.status().WithContext("blob " + digest->str()));
  auto size = d_.blobs.Size(*digest);
  if (!size.ok()) return deny(size.status());
  RETURN_IF_ERROR(audit_.Append(audit_.Record(actor, action, object, AuditDecision::kAllow,
                                              {{"digest", digest->str()}, {"size", *size}})));
  return Blob{std::move(fd).value(), *size, digest->str()};
}

// ---- the output ---------------------------------------------------------------------

struct AgentReports::OutputUpload::Impl {
  AgentReports* owner = nullptr;
  std::string remote_addr;
  std::string job_id;
  std::string digest;   // announced and signed
  std::string tee_key;  // thumbprint, for the audit record
  uint64_t size = 0;    // announced
  std::unique_ptr<OutputWriter> writer;
  bool settled = false;  // the outcome is decided (and audited)

  Status Refuse(const Status& why) {
    settled = true;
    writer.reset();  // removes the partial file
    return owner->audit_.Deny(Tee(remote_addr), "output.submit", JobObject(job_id), why,
                              {{"digest", digest}, {"size", size}});
  }
};

AgentReports::OutputUpload::OutputUpload(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AgentReports::OutputUpload::~OutputUpload() {
  if (impl_ && !impl_->settled) {
    (void)impl_->Refuse(InvalidArgument("output upload: ended after " + std::to_string(received()) +
                                        " of " + std::to_string(impl_->size) + " bytes"));
  }
}

uint64_t AgentReports::OutputUpload::received() const {
  return impl_->writer ? impl_->writer->written() : 0;
}

Status AgentReports::OutputUpload::Write(crypto::ByteSpan piece) {
  if (impl_->settled) return FailedPrecondition("output upload: already refused or finished");
  Status s = impl_->writer->Write(piece);
  if (!s.ok()) return impl_->Refuse(s);
  return s;
}

StatusOr<std::unique_ptr<AgentReports::OutputUpload>> AgentReports::BeginOutput(
    const std::string& remote_addr, std::string_view authorization, const OutputHeaders& h) {
  const std::string action = "output.submit";
  ASSIGN_OR_RETURN(AgentSession s,
                   Authenticate(remote_addr, authorization, action, {JobState::kRunning}));
  const std::string actor = Tee(remote_addr);
  const std::string object = JobObject(s.job.id);
  auto deny = [&](const Status& why) {
    return audit_.Deny(actor, action, object, why, {{"digest", h.digest}});
  };
  auto digest = image::Digest::Parse(h.digest);
  if (!digest.ok()) {
    return deny(InvalidArgument(std::string(api::kBundleDigestHeader) +
                                ": expected sha256:<64 lower-case hex digits>"));
  }
  auto sig = crypto::Base64UrlDecode(h.signature);
  if (!sig.ok() || sig->size() != crypto::kEcdsaP256SignatureSize) {
    return deny(InvalidArgument(std::string(api::kBundleSignatureHeader) +
                                ": expected the base64url (no padding) of a 64-byte ECDSA "
                                "P-256 signature r||s"));
  }
  if (!h.content_length) {
    return deny(InvalidArgument(
        "Content-Length: required (the sealed output's header fixes its size up front)"));
  }
  if (*h.content_length > static_cast<uint64_t>(d_.max_output_bytes)) {
    return deny(InvalidArgument("Content-Length: " + std::to_string(*h.content_length) +
                                " bytes exceeds the plane's limit of " +
                                std::to_string(d_.max_output_bytes) +
                                " (limits.max_output_bytes)"));
  }
  // The signature covers the job and the announced digest, so it can be
  // checked before a byte is taken; the bytes are held to that digest at
  // the end.
  auto tee_key = crypto::JwkPublicKey::FromJwk(s.claims.tee_public_jwk);
  if (!tee_key.ok()) return deny(Internal("session: TEE key: " + tee_key.status().message()));
  const std::string signed_text = api::OutputSigningInput(s.job.id, digest->str());
  if (!tee_key->VerifyEcdsaSha256(crypto::AsBytes(signed_text), *sig)) {
    return deny(PermissionDenied(std::string(api::kBundleSignatureHeader) +
                                 ": does not verify with the TEE key the job attested with"));
  }
  auto existing = d_.db.GetOutput(s.job.id);
  if (existing.ok())
    return deny(FailedPrecondition("job " + s.job.id + ": output already submitted"));
  if (existing.status().code() != StatusCode::kNotFound) return deny(existing.status());
  auto writer = d_.outputs.Create(s.job.id, *h.content_length);
  if (!writer.ok()) return deny(writer.status());
  auto impl = std::make_unique<OutputUpload::Impl>();
  impl->owner = this;
  impl->remote_addr = remote_addr;
  impl->job_id = s.job.id;
  impl->digest = digest->str();
  impl->tee_key = tee_key->Thumbprint();
  impl->size = *h.content_length;
  impl->writer = std::move(writer).value();
  return std::unique_ptr<OutputUpload>(new OutputUpload(std::move(impl)));
}

StatusOr<api::AgentOutputReceipt> AgentReports::FinishOutput(std::unique_ptr<OutputUpload> upload) {
  if (upload == nullptr) return Internal("output upload: none");
  OutputUpload::Impl& u = *upload->impl_;
  if (u.settled) return FailedPrecondition("output upload: already refused");
  const std::string actor = Tee(u.remote_addr);
  const std::string object = JobObject(u.job_id);
  std::lock_guard<std::mutex> lock(finish_mu_);
  // The job may have been cancelled, failed or expired while the bytes came.
  auto job = d_.db.GetJob(u.job_id);
  if (!job.ok()) return u.Refuse(job.status());
  if (job->state != JobState::kRunning) {
    return u.Refuse(FailedPrecondition("job " + job->id + " is " +
                                       std::string(store::JobStateName(job->state)) +
                                       ", not RUNNING"));
  }
  if (d_.clock.NowUnix() >= job->deadline) {
    return u.Refuse(PermissionDenied("job " + job->id + ": its deadline has passed"));
  }
  auto existing = d_.db.GetOutput(u.job_id);
  if (existing.ok()) return u.Refuse(FailedPrecondition("output already submitted"));
  if (existing.status().code() != StatusCode::kNotFound) return u.Refuse(existing.status());
  // Publishes the sealed file only if every byte arrived and they hash to
  // the signed digest.
  auto stored = u.writer->Finish(u.digest);
  if (!stored.ok()) return u.Refuse(stored.status());
  u.settled = true;
  const int64_t now = d_.clock.NowUnix();
  store::Output out;
  out.job_id = u.job_id;
  out.blob_ref = stored->blob_ref;
  out.size = static_cast<int64_t>(stored->size);
  out.digest = stored->digest;
  out.created_at = now;
  Status put = d_.db.PutOutput(
      out, audit_.Record(actor, "output.submit", object, AuditDecision::kAllow,
                         {{"digest", out.digest}, {"size", out.size}, {"tee_key", u.tee_key}}));
  if (!put.ok()) {
    // Nothing recorded (the record and the output row are one transaction);
    // the sealed file is orphaned and replaced by a retry.
    return audit_.Deny(actor, "output.submit", object, put, {{"digest", out.digest}});
  }
  auto moved = d_.db.TransitionJob(
      u.job_id, JobState::kRunning, JobState::kOutputSubmitted,
      "agent: output submitted (" + std::to_string(out.size) + " bytes, " + out.digest + ")",
      audit_.Record(actor, "job.output_submitted", object, AuditDecision::kInfo));
  if (!moved.ok()) return audit_.Deny(actor, "output.submit", object, moved.status());
  if (d_.on_job_submitted) d_.on_job_submitted();  // the engine runs the gate
  return api::AgentOutputReceipt{u.job_id, std::string(store::JobStateName(moved->state)), out.size,
                                 out.digest};
}

}  // namespace cce::plane
