// The KeyBroker service, in the shape of Trustee's KBS protocol
// (docs/attestation.md, "Key broker"). Three steps, each refusing unless
// every rule holds, each decision audited:
//   Auth       credential                              -> nonce
//   Attest     credential, nonce, quote, TEE key (JWK) -> session
//   ReleaseKey session, dataset                        -> JWE of the dataset key
// REPORTDATA of the quote must be SHA-512(nonce || TEE public key bytes), so
// the quote proves this TD asked for this nonce with this key. A key is
// released only once its release is in the audit log.
#include "crypto/jwe.h"
#include "plane/credential.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::AuditDecision;
using store::JobState;

constexpr size_t kNonceBytes = 32;

crypto::Sha512Digest ReportDataFor(crypto::ByteSpan nonce, crypto::ByteSpan tee_public_key) {
  crypto::Bytes m(nonce.begin(), nonce.end());
  m.insert(m.end(), tee_public_key.begin(), tee_public_key.end());
  return crypto::Sha512(m);
}

std::string JobObject(const std::string& job_id) {
  return "job:" + (job_id.empty() ? std::string("unknown") : job_id);
}

std::string Tee(const std::string& remote_addr) {
  return "tee:" + remote_addr;
}

// {"dataset_id":"...","dataset_version":N} (docs/attestation.md, "Rollback
// pin"); "" and 0 when the registration recorded none.
crypto::Bytes DatasetPin(const store::Dataset& ds) {
  const std::string pin =
      json{{"dataset_id", ds.manifest_dataset_id}, {"dataset_version", ds.manifest_version}}.dump();
  return crypto::Bytes(pin.begin(), pin.end());
}

}  // namespace

std::optional<crypto::JwkPublicKey> KeyBroker::TeeKey(const std::string& jwk) {
  std::lock_guard<std::mutex> lock(tee_keys_mu_);
  auto it = tee_keys_.find(jwk);
  if (it == tee_keys_.end()) return std::nullopt;
  return it->second;
}

void KeyBroker::RememberTeeKey(const std::string& jwk, const crypto::JwkPublicKey& key) {
  std::lock_guard<std::mutex> lock(tee_keys_mu_);
  if (tee_keys_.count(jwk) != 0) return;
  if (tee_keys_order_.size() < kMaxTeeKeys) {
    tee_keys_order_.push_back(jwk);
  } else {
    tee_keys_.erase(tee_keys_order_[tee_keys_next_]);
    tee_keys_order_[tee_keys_next_] = jwk;
    tee_keys_next_ = (tee_keys_next_ + 1) % kMaxTeeKeys;
  }
  tee_keys_.emplace(jwk, key);
}

// The credential's signature and window, then its store row: issued by us
// for this job, not used yet; and the job waiting in PROVISIONING. Once the
// signature verifies, *job_id names the job (so refusals are audited on it);
// on success *job_out (when given) is the job as read.
static StatusOr<JobCredentialClaims> CheckCredential(ServiceDeps& d, const std::string& token,
                                                     std::string* job_id,
                                                     store::Job* job_out = nullptr) {
  ASSIGN_OR_RETURN(JobCredentialClaims c,
                   VerifyJobCredential(token, d.plane_public_key, d.clock.NowUnix()));
  *job_id = c.job_id;
  auto row = d.db.GetCredential(c.credential_id);
  if (!row.ok() || row->job_id != c.job_id) {
    return PermissionDenied("credential: unknown to this plane");
  }
  if (row->used_at) return PermissionDenied("credential: already used");
  ASSIGN_OR_RETURN(store::Job job, d.db.GetJob(c.job_id));
  if (job.state != JobState::kProvisioning) {
    return PermissionDenied("job " + job.id + " is " + std::string(JobStateName(job.state)) +
                            ", not PROVISIONING");
  }
  if (job_out != nullptr) *job_out = std::move(job);
  return c;
}

StatusOr<api::KbsAuthResponse> KeyBroker::Auth(const std::string& remote_addr,
                                               const api::KbsAuthRequest& request) {
  std::string claimed_job;
  auto c = CheckCredential(d_, request.credential, &claimed_job);
  if (!c.ok()) return audit_.Deny(Tee(remote_addr), "kbs.auth", JobObject(claimed_job), c.status());
  std::array<uint8_t, kNonceBytes> raw{};
  RETURN_IF_ERROR(crypto::RandomBytes(raw));
  KbsNonceEntry n;
  n.nonce = crypto::Base64UrlEncode(raw);
  n.job_id = c->job_id;
  n.credential_id = c->credential_id;
  n.issued_at = d_.clock.NowUnix();
  n.expires_at = n.issued_at + d_.kbs_nonce_ttl_seconds;
  // In memory only, and no audit record for an issued nonce: it grants
  // nothing until a kbs.attest (always audited, allow or deny) spends it
  // (docs/attestation.md §11, "Nonces live in memory"). Refusals are audited.
  Status issued = nonces_.Issue(n, d_.kbs_max_nonces_per_credential);
  if (issued.code() == StatusCode::kResourceExhausted) {
    return audit_.Deny(Tee(remote_addr), "kbs.auth", JobObject(c->job_id), issued);
  }
  RETURN_IF_ERROR(issued);
  return api::KbsAuthResponse{n.nonce, n.expires_at, n.job_id};
}

StatusOr<api::KbsAttestResponse> KeyBroker::Attest(const std::string& remote_addr,
                                                   const api::KbsAttestRequest& request) {
  const std::string actor = Tee(remote_addr);
  std::string claimed_job;
  store::Job job;
  auto c = CheckCredential(d_, request.credential, &claimed_job, &job);
  if (!c.ok()) return audit_.Deny(actor, "kbs.attest", JobObject(claimed_job), c.status());
  const std::string job_id = c->job_id;
  const std::string object = JobObject(job_id);
  auto deny = [&](const Status& why) { return audit_.Deny(actor, "kbs.attest", object, why); };
  auto tee_key = crypto::JwkPublicKey::FromJwk(request.tee_pubkey);
  if (!tee_key.ok()) return deny(InvalidArgument("body.tee_pubkey: " + tee_key.status().message()));
  auto nonce_raw = crypto::Base64UrlDecode(request.nonce);
  auto quote = crypto::Base64UrlDecode(request.quote);
  if (!nonce_raw.ok() || nonce_raw->size() != kNonceBytes) {
    return deny(InvalidArgument("body.nonce: expected the base64url nonce from /kbs/v0/auth"));
  }
  if (!quote.ok()) return deny(InvalidArgument("body.quote: expected base64url (no padding)"));
  // The nonce is spent now, whatever follows: a refused quote cannot be
  // retried with it. Every path from here ends in a kbs.attest record.
  auto consumed = nonces_.Consume(request.nonce, job_id, d_.clock.NowUnix());
  if (!consumed.ok()) {
    const std::string& m = consumed.status().message();
    return deny(PermissionDenied(m.starts_with("nonce") ? m : "nonce: " + m));
  }
  if (consumed->credential_id != c->credential_id) {
    return deny(PermissionDenied("nonce: issued to another credential"));
  }
  const auto expected = ReportDataFor(*nonce_raw, tee_key->public_bytes());
  auto v = d_.attestation.Verify(*quote, expected, d_.clock.NowUnix());
  if (!v.ok()) return deny(PermissionDenied("quote: " + v.status().message()));
  const bool simulated = v->dcap.simulated;
  json verdict = json::parse(attest::VerificationToJson(*v), nullptr, false);
  if (!v->accepted) {
    std::string reasons;
    for (const auto& r : v->reasons) reasons += (reasons.empty() ? "" : "; ") + r;
    return audit_.Deny(actor, "kbs.attest", object,
                       PermissionDenied("quote rejected by the attestation policy: " + reasons),
                       {{"reason", "policy"}, {"verification", verdict}});
  }
  // The job as CheckCredential read it: its consumer and deadline never
  // change, and AcceptAttestation below re-checks its state in the same
  // transaction that moves it.
  const int64_t now = d_.clock.NowUnix();
  Status rentals =
      rentals_.CheckCoverage(job.consumer_id, c->datasets, now, std::max(now + 1, job.deadline));
  if (!rentals.ok()) {
    return deny(PermissionDenied("rental: " + rentals.message() + " (the job's deadline)"));
  }
  store::AuditRecord a = audit_.Record(actor, "kbs.attest", object, AuditDecision::kAllow,
                                       {{"credential", c->credential_id},
                                        {"nonce_issued_at", consumed->issued_at},
                                        {"simulated_tee", simulated},
                                        {"tee_key", tee_key->Thumbprint()},
                                        {"verification", verdict}});
  std::string reason = simulated ? "SIMULATED TEE attested (not a real TDX VM)"
                                 : "TDX quote verified under the attestation policy";
  auto attested = d_.db.AcceptAttestation(job_id, c->credential_id,
                                          simulated ? uint32_t{store::kJobFlagSimulatedTee} : 0u,
                                          a.at, reason, a);
  if (!attested.ok()) return deny(attested.status());
  KbsSessionClaims s;
  s.job_id = job_id;
  s.credential_id = c->credential_id;
  s.datasets = c->datasets;
  s.tee_public_jwk = tee_key->ToJwk();
  s.issued_at = a.at;
  s.expires_at = std::min(a.at + d_.kbs_session_ttl_seconds, c->expires_at);
  s.simulated_tee = simulated;
  ASSIGN_OR_RETURN(std::string session, SignKbsSession(s, session_mac_));
  RememberTeeKey(s.tee_public_jwk, *tee_key);
  if (simulated) {
    d_.log.Warn("kbs.simulated_tee",
                {{"job", job_id}, {"message", "SIMULATED TEE attested: not a real TDX VM"}});
  }
  const json tcb = verdict.is_object() ? verdict.value("tcb_status", json()) : json();
  return api::KbsAttestResponse{session, s.expires_at, simulated,
                                tcb.is_string() ? tcb.get<std::string>() : ""};
}

StatusOr<std::string> KeyBroker::ReleaseKey(const std::string& remote_addr,
                                            std::string_view authorization,
                                            const std::string& dataset) {
  const std::string actor = Tee(remote_addr);
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.substr(0, kBearer.size()) != kBearer) {
    return audit_.Deny(actor, "key.release", JobObject(""),
                       PermissionDenied("session: missing Authorization: Bearer <session>"));
  }
  auto s = VerifyKbsSession(authorization.substr(kBearer.size()), session_mac_,
                            d_.clock.NowUnix());
  if (!s.ok()) return audit_.Deny(actor, "key.release", JobObject(""), s.status());
  const std::string object = JobObject(s->job_id);
  auto deny = [&](const Status& why) { return audit_.Deny(actor, "key.release", object, why); };
  if (std::find(s->datasets.begin(), s->datasets.end(), dataset) == s->datasets.end()) {
    return deny(
        PermissionDenied("dataset '" + dataset + "' is not in job " + s->job_id + "'s credential"));
  }
  ASSIGN_OR_RETURN(store::Job job, d_.db.GetJob(s->job_id));
  if (job.state != JobState::kAttested) {
    return deny(PermissionDenied("job " + job.id + " is " + std::string(JobStateName(job.state)) +
                                 ": keys are released only while ATTESTED"));
  }
  const int64_t now = d_.clock.NowUnix();
  Status rentals =
      rentals_.CheckCoverage(job.consumer_id, {dataset}, now, std::max(now + 1, job.deadline));
  if (!rentals.ok()) {
    return deny(PermissionDenied("rental: " + rentals.message() + " (the job's deadline)"));
  }
  ASSIGN_OR_RETURN(store::Dataset ds, d_.db.GetDatasetByName(dataset));
  // The key this session's attest checked (the session is the plane's
  // signed word that it carries exactly this JWK); parsed again on a miss.
  std::optional<crypto::JwkPublicKey> cached = TeeKey(s->tee_public_jwk);
  if (!cached) {
    ASSIGN_OR_RETURN(crypto::JwkPublicKey parsed, crypto::JwkPublicKey::FromJwk(s->tee_public_jwk));
    cached.emplace(std::move(parsed));
  }
  const crypto::JwkPublicKey& to = *cached;
  // The release is recorded before the key is unsealed: a release the audit
  // log cannot hold does not happen.
  RETURN_IF_ERROR(audit_.Append(audit_.Record(actor, "key.release", object, AuditDecision::kAllow,
                                              {{"dataset", dataset},
                                               {"key_id", ds.key_id},
                                               {"tee_key", to.Thumbprint()},
                                               {"simulated_tee", s->simulated_tee}})));
  ASSIGN_OR_RETURN(crypto::SecretBytes key,
                   d_.master_key.Open(ds.wrapped_key, "dataset-key:" + ds.name));
  crypto::JweOptions opts;
  opts.kid = "dataset/" + dataset;
  // The rollback pin: the dataset id and manifest version recorded at
  // registration. In apv, so it is in the authenticated protected header and
  // enters the key derivation: changed, the JWE does not open.
  opts.apv = DatasetPin(ds);
  return crypto::JweEncrypt(to, key.span(), opts);
}

}  // namespace cce::plane
