// The key broker, in the shape of Trustee's KBS protocol (docs/attestation.md,
// "Key broker"). Three steps, each refusing unless every rule holds, each
// decision audited:
//   POST /kbs/v0/auth      {credential}                        -> {nonce}
//   POST /kbs/v0/attest    {credential, nonce, quote, tee_pubkey} -> {session}
//   GET  /kbs/v0/resource/<dataset>/key  (Bearer session)       -> JWE of the key
// REPORTDATA of the quote must be SHA-512(nonce || TEE public key bytes), so
// the quote proves this TD asked for this nonce with this key.
#include "crypto/jwe.h"
#include "jobspec/jobspec.h"
#include "plane/api.h"
#include "plane/attestation.h"
#include "plane/credential.h"

namespace cce::plane {
namespace {

using store::AuditDecision;
using store::JobState;

constexpr size_t kNonceBytes = 32;

crypto::Sha512Digest ReportDataFor(crypto::ByteSpan nonce, crypto::ByteSpan tee_public_key) {
  crypto::Bytes m(nonce.begin(), nonce.end());
  m.insert(m.end(), tee_public_key.begin(), tee_public_key.end());
  return crypto::Sha512(m);
}

std::string JobOf(const std::string& job_id) {
  return "job:" + (job_id.empty() ? std::string("unknown") : job_id);
}

}  // namespace

void Api::KbsRoute(httplib::Server& svr, const std::string& method, const std::string& pattern,
                   const KbsHandler& handler) {
  Serve(svr, method, pattern, [this, handler](const httplib::Request& req) -> ApiResult {
    auto r = handler(req);
    if (r.ok()) return std::move(*r);
    const int64_t now = clock_.NowUnix();
    auto outcome = kbs_limiter_.Failure(req.remote_addr, now);
    if (outcome == AuthnLimiter::Outcome::kDeny) {
      const bool denied = r.status().code() == StatusCode::kPermissionDenied;
      return {denied ? 403 : HttpStatusFor(r.status().code()),
              ErrorBody(ErrorCodeName(r.status().code()), r.status().message())};
    }
    if (outcome == AuthnLimiter::Outcome::kFirstRefusal) {
      store::AuditRecord a;
      a.at = now;
      a.actor = "remote:" + req.remote_addr;
      a.action = "kbs.rate_limit";
      a.object = req.method + " " + req.path;
      a.decision = AuditDecision::kDeny;
      (void)db_.AppendAudit(a);
    }
    ApiResult limited{
        429, ErrorBody("rate_limited", "too many failed key broker requests from this address")};
    limited.headers.emplace_back("Retry-After", std::to_string(AuthnLimiter::kWindowSeconds));
    return limited;
  });
}

void Api::RegisterKbs(httplib::Server& svr) {
  // Audits a key broker decision about a job; returns `s` for chaining.
  auto audit = [this](const httplib::Request& req, const std::string& action,
                      const std::string& job_id, AuditDecision d, const json& details) {
    store::AuditRecord a;
    a.at = clock_.NowUnix();
    a.actor = "tee:" + req.remote_addr;
    a.action = action;
    a.object = JobOf(job_id);
    a.decision = d;
    a.details_json = details.dump();
    (void)db_.AppendAudit(a);
  };
  auto deny = [audit](const httplib::Request& req, const std::string& action,
                      const std::string& job_id, const Status& s) {
    audit(req, action, job_id, AuditDecision::kDeny, json{{"reason", s.message()}});
    return s;
  };
  // The credential's signature and window, then its store row: issued by us
  // for this job, not used yet; and the job waiting in PROVISIONING. Once the
  // signature verifies, *job_id names the job (so refusals are audited on it).
  auto check_credential = [this](const std::string& token,
                                 std::string* job_id) -> StatusOr<JobCredentialClaims> {
    const int64_t now = clock_.NowUnix();
    ASSIGN_OR_RETURN(JobCredentialClaims c, VerifyJobCredential(token, plane_public_key_, now));
    *job_id = c.job_id;
    auto row = db_.GetCredential(c.credential_id);
    if (!row.ok() || row->job_id != c.job_id) {
      return PermissionDenied("credential: unknown to this plane");
    }
    if (row->used_at) return PermissionDenied("credential: already used");
    ASSIGN_OR_RETURN(store::Job job, db_.GetJob(c.job_id));
    if (job.state != JobState::kProvisioning) {
      return PermissionDenied("job " + job.id + " is " + std::string(JobStateName(job.state)) +
                              ", not PROVISIONING");
    }
    return c;
  };
  // The consumer's rentals must still cover every dataset until the job's
  // deadline.
  auto check_rentals = [this](const store::Job& job,
                              const std::vector<std::string>& datasets) -> Status {
    const int64_t now = clock_.NowUnix();
    for (const auto& name : datasets) {
      ASSIGN_OR_RETURN(store::Dataset ds, db_.GetDatasetByName(name));
      ASSIGN_OR_RETURN(bool covered, ledger_.Covers(job.consumer_id, ds.id, now,
                                                    std::max(now + 1, job.deadline)));
      if (!covered) {
        return PermissionDenied("rental of '" + name + "' no longer covers the job until its " +
                                "deadline");
      }
    }
    return Status::Ok();
  };

  KbsRoute(svr, "POST", "/kbs/v0/auth",
           [=, this](const httplib::Request& req) -> StatusOr<ApiResult> {
             ASSIGN_OR_RETURN(Body body, Body::Parse(req, {"credential"}));
             ASSIGN_OR_RETURN(std::string token, body.String("credential"));
             std::string claimed_job;
             auto c = check_credential(token, &claimed_job);
             if (!c.ok()) return deny(req, "kbs.auth", claimed_job, c.status());
             std::array<uint8_t, kNonceBytes> raw{};
             RETURN_IF_ERROR(crypto::RandomBytes(raw));
             store::KbsNonce n;
             n.nonce = crypto::Base64UrlEncode(raw);
             n.job_id = c->job_id;
             n.credential_id = c->credential_id;
             n.issued_at = clock_.NowUnix();
             n.expires_at = n.issued_at + nonce_ttl_seconds_;
             store::AuditRecord a;
             a.at = n.issued_at;
             a.actor = "tee:" + req.remote_addr;
             a.action = "kbs.auth";
             a.object = JobOf(c->job_id);
             a.decision = AuditDecision::kAllow;
             a.details_json =
                 json{{"credential", c->credential_id}, {"expires_at", n.expires_at}}.dump();
             RETURN_IF_ERROR(db_.IssueNonce(n, a));
             return ApiResult{
                 200, {{"nonce", n.nonce}, {"expires_at", n.expires_at}, {"job", n.job_id}}};
           });

  KbsRoute(
      svr, "POST", "/kbs/v0/attest", [=, this](const httplib::Request& req) -> StatusOr<ApiResult> {
        ASSIGN_OR_RETURN(Body body,
                         Body::Parse(req, {"credential", "nonce", "quote", "tee_pubkey"}));
        ASSIGN_OR_RETURN(std::string token, body.String("credential"));
        ASSIGN_OR_RETURN(std::string nonce, body.String("nonce"));
        ASSIGN_OR_RETURN(std::string quote_b64, body.String("quote"));
        ASSIGN_OR_RETURN(std::string jwk, body.String("tee_pubkey"));
        std::string claimed_job;
        auto c = check_credential(token, &claimed_job);
        if (!c.ok()) return deny(req, "kbs.attest", claimed_job, c.status());
        const std::string job_id = c->job_id;
        auto tee_key = crypto::JwkPublicKey::FromJwk(jwk);
        if (!tee_key.ok()) {
          return deny(req, "kbs.attest", job_id,
                      InvalidArgument("body.tee_pubkey: " + tee_key.status().message()));
        }
        auto nonce_raw = crypto::Base64UrlDecode(nonce);
        auto quote = crypto::Base64UrlDecode(quote_b64);
        if (!nonce_raw.ok() || nonce_raw->size() != kNonceBytes) {
          return deny(
              req, "kbs.attest", job_id,
              InvalidArgument("body.nonce: expected the base64url nonce from /kbs/v0/auth"));
        }
        if (!quote.ok()) {
          return deny(req, "kbs.attest", job_id,
                      InvalidArgument("body.quote: expected base64url (no padding)"));
        }
        // The nonce is spent now, whatever follows: a refused quote cannot be
        // retried with it.
        store::AuditRecord use;
        use.at = clock_.NowUnix();
        use.actor = "tee:" + req.remote_addr;
        use.action = "kbs.nonce_use";
        use.object = JobOf(job_id);
        use.decision = AuditDecision::kInfo;
        auto consumed = db_.ConsumeNonce(nonce, job_id, use.at, use);
        if (!consumed.ok()) {
          return deny(req, "kbs.attest", job_id,
                      PermissionDenied("nonce: " + consumed.status().message()));
        }
        if (consumed->credential_id != c->credential_id) {
          return deny(req, "kbs.attest", job_id,
                      PermissionDenied("nonce: issued to another credential"));
        }
        const auto expected = ReportDataFor(*nonce_raw, tee_key->public_bytes());
        auto v = attestation_->Verify(*quote, expected, clock_.NowUnix());
        if (!v.ok()) {
          return deny(req, "kbs.attest", job_id,
                      PermissionDenied("quote: " + v.status().message()));
        }
        const bool simulated = v->dcap.simulated;
        json verdict = json::parse(attest::VerificationToJson(*v), nullptr, false);
        if (!v->accepted) {
          std::string reasons;
          for (const auto& r : v->reasons) reasons += (reasons.empty() ? "" : "; ") + r;
          audit(req, "kbs.attest", job_id, AuditDecision::kDeny,
                {{"reason", "policy"}, {"verification", verdict}});
          return PermissionDenied("quote rejected by the attestation policy: " + reasons);
        }
        ASSIGN_OR_RETURN(store::Job job, db_.GetJob(job_id));
        Status rentals = check_rentals(job, c->datasets);
        if (!rentals.ok()) return deny(req, "kbs.attest", job_id, rentals);
        store::AuditRecord a;
        a.at = clock_.NowUnix();
        a.actor = "tee:" + req.remote_addr;
        a.action = "kbs.attest";
        a.object = JobOf(job_id);
        a.decision = AuditDecision::kAllow;
        a.details_json = json{
            {"credential", c->credential_id},
            {"simulated_tee", simulated},
            {"tee_key", tee_key->Thumbprint()},
            {"verification",
             verdict}}.dump();
        std::string reason = simulated ? "SIMULATED TEE attested (not a real TDX VM)"
                                       : "TDX quote verified under the attestation policy";
        auto attested = db_.AcceptAttestation(
            job_id, c->credential_id, simulated ? uint32_t{store::kJobFlagSimulatedTee} : 0u, a.at,
            reason, a);
        if (!attested.ok()) return deny(req, "kbs.attest", job_id, attested.status());
        KbsSessionClaims s;
        s.job_id = job_id;
        s.credential_id = c->credential_id;
        s.datasets = c->datasets;
        s.tee_public_jwk = tee_key->ToJwk();
        s.issued_at = a.at;
        s.expires_at = std::min(a.at + session_ttl_seconds_, c->expires_at);
        s.simulated_tee = simulated;
        ASSIGN_OR_RETURN(std::string session, SignKbsSession(s, *signing_key_));
        if (simulated) {
          log_.Warn("kbs.simulated_tee",
                    {{"job", job_id}, {"message", "SIMULATED TEE attested: not a real TDX VM"}});
        }
        return ApiResult{200,
                         {{"session", session},
                          {"expires_at", s.expires_at},
                          {"simulated_tee", simulated},
                          {"tcb_status", verdict.value("tcb_status", json())}}};
      });

  KbsRoute(
      svr, "GET", R"(/kbs/v0/resource/([a-z0-9][a-z0-9._-]*)/key)",
      [=, this](const httplib::Request& req) -> StatusOr<ApiResult> {
        const std::string dataset = req.matches[1].str();
        std::string h = req.get_header_value("Authorization");
        if (h.rfind("Bearer ", 0) != 0) {
          return deny(req, "key.release", "",
                      PermissionDenied("session: missing Authorization: Bearer <session>"));
        }
        auto s =
            VerifyKbsSession(std::string_view(h).substr(7), plane_public_key_, clock_.NowUnix());
        if (!s.ok()) return deny(req, "key.release", "", s.status());
        if (std::find(s->datasets.begin(), s->datasets.end(), dataset) == s->datasets.end()) {
          return deny(req, "key.release", s->job_id,
                      PermissionDenied("dataset '" + dataset + "' is not in job " + s->job_id +
                                       "'s credential"));
        }
        ASSIGN_OR_RETURN(store::Job job, db_.GetJob(s->job_id));
        if (job.state != JobState::kAttested) {
          return deny(
              req, "key.release", job.id,
              PermissionDenied("job " + job.id + " is " + std::string(JobStateName(job.state)) +
                               ": keys are released only while ATTESTED"));
        }
        Status rentals = check_rentals(job, {dataset});
        if (!rentals.ok()) return deny(req, "key.release", job.id, rentals);
        ASSIGN_OR_RETURN(store::Dataset ds, db_.GetDatasetByName(dataset));
        ASSIGN_OR_RETURN(crypto::SecretBytes key,
                         master_key_.Open(ds.wrapped_key, "dataset-key:" + ds.name));
        ASSIGN_OR_RETURN(crypto::JwkPublicKey to, crypto::JwkPublicKey::FromJwk(s->tee_public_jwk));
        crypto::JweOptions opts;
        opts.kid = "dataset/" + dataset;
        ASSIGN_OR_RETURN(std::string jwe, crypto::JweEncrypt(to, key.span(), opts));
        audit(req, "key.release", job.id, AuditDecision::kAllow,
              {{"dataset", dataset},
               {"key_id", ds.key_id},
               {"tee_key", to.Thumbprint()},
               {"simulated_tee", s->simulated_tee}});
        ApiResult r;
        r.raw = jwe;
        r.content_type = "application/jose";
        return r;
      });
}

}  // namespace cce::plane
