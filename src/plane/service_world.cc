#include "plane/service_world.h"

#include <algorithm>

#include "crypto/crypto.h"
#include "plane/keys.h"
#include "plane/master_key.h"

namespace cce::plane::testing {

store::Job SubmittedJob(const std::string& id, int64_t consumer_id, int64_t now,
                        int64_t timeout_seconds) {
  store::Job job;
  job.id = id;
  job.consumer_id = consumer_id;
  job.name = "t";
  job.spec_json = "{}";
  job.image_digest = "sha256:" + std::string(64, 'a');
  job.reason = "submitted";
  job.created_at = now;
  job.deadline = now + timeout_seconds;
  job.timeout_seconds = timeout_seconds;
  return job;
}

StatusOr<std::unique_ptr<ServiceWorld>> ServiceWorld::Create(ServiceWorldOptions options) {
  if (options.clock == nullptr) return InvalidArgument("ServiceWorldOptions.clock: required");
  std::unique_ptr<ServiceWorld> w(new ServiceWorld());
  w->clock_ = options.clock;
  ASSIGN_OR_RETURN(w->plane_,
                   TestPlane::Create(*w->clock_, {.dir_prefix = "cce-service-world",
                                                  .simulated_tee = options.simulated_tee}));
  ASSIGN_OR_RETURN(w->config_, LoadConfig(w->init().data_dir));
  ASSIGN_OR_RETURN(auto signing_key, LoadSigningKey(w->config_.Path(w->config_.signing_key_file)));
  w->signing_key_.emplace(std::move(signing_key));
  ASSIGN_OR_RETURN(w->master_key_, LoadFileMasterKey(w->config_.Path(w->config_.master_key_file)));
  store::SqliteStoreOptions so;
  so.path = w->config_.Path(w->config_.database_path);
  ASSIGN_OR_RETURN(w->sqlite_, store::SqliteStore::Open(so));
  if (options.wrap_store) w->wrapped_ = options.wrap_store(*w->sqlite_);
  w->ledger_.emplace(w->db(), *w->signing_key_);
  if (options.make_ledger) w->other_ledger_ = options.make_ledger(w->db());
  ASSIGN_OR_RETURN(auto blobs, image::BlobStore::Create(w->init().data_dir + "/images"));
  w->blobs_.emplace(std::move(blobs));
  ASSIGN_OR_RETURN(auto outputs,
                   OutputStore::Open(w->init().data_dir + "/outputs", *w->master_key_));
  w->outputs_.emplace(std::move(outputs));
  ASSIGN_OR_RETURN(w->attestation_, AttestationService::Load(w->config_));
  const auto pub = w->signing_key_->PublicKey();
  w->public_key_ = crypto::Bytes(pub.begin(), pub.end());
  ServiceDeps deps{
      .db = w->db(),
      .clock = *w->clock_,
      .log = w->log_,
      .master_key = *w->master_key_,
      .ledger = w->ledger(),
      .embedded = w->other_ledger_ ? nullptr : &*w->ledger_,
      .blobs = *w->blobs_,
      .outputs = *w->outputs_,
      .attestation = *w->attestation_,
      .signing_key = *w->signing_key_,
      .plane_public_key = w->public_key_,
      .on_job_submitted = {},
      .fingerprint_dir = w->init().data_dir + "/fingerprints",
  };
  if (options.adjust) options.adjust(deps, w->tmp());
  w->services_ = std::make_unique<Services>(std::move(deps));
  return w;
}

ServiceWorld::~ServiceWorld() {
  services_.reset();
  other_ledger_.reset();
  wrapped_.reset();
  sqlite_.reset();
  plane_.reset();  // removes the temporary directory
}

StatusOr<Caller> ServiceWorld::AddUser(const std::string& name, store::Role role) {
  store::User u;
  u.name = name;
  u.role = role;
  u.token_hash = HashApiToken("cce_" + name);
  u.created_at = clock_->NowUnix();
  ASSIGN_OR_RETURN(auto user, db().CreateUser(u, Rec("user.add", name)));
  return Caller{std::move(user)};
}

store::AuditRecord ServiceWorld::Rec(const std::string& action, const std::string& object) {
  return services_->audit_log.Record("test", action, object, store::AuditDecision::kInfo);
}

StatusOr<ProvisionedJob> ServiceWorld::ProvisionJob(const store::Job& job, const Caller& consumer,
                                                    int64_t credential_ttl_seconds) {
  const std::string object = "job:" + job.id;
  RETURN_IF_ERROR(db().CreateJob(job, Rec("job.submit", object)).status());
  RETURN_IF_ERROR(db().TransitionJob(job.id, store::JobState::kSubmitted,
                                     store::JobState::kAuthorized, "ok",
                                     Rec("job.authorize", object))
                      .status());
  ProvisionedJob p;
  p.claims.credential_id =
      "cred-" + crypto::ToHex(crypto::Sha256(crypto::AsBytes(job.id))).substr(0, 32);
  p.claims.job_id = job.id;
  p.claims.consumer = consumer.user.name;
  p.claims.datasets = job.datasets;
  p.claims.image_digest = job.image_digest;
  p.claims.issued_at = job.created_at;
  p.claims.expires_at = job.created_at + credential_ttl_seconds;
  const store::JobCredential cred{
      p.claims.credential_id, job.id, p.claims.issued_at, p.claims.expires_at, {}};
  RETURN_IF_ERROR(db().IssueCredentialAndProvision(cred, "ok", Rec("credential.issue", object),
                                                   Rec("job.provision", object))
                      .status());
  ASSIGN_OR_RETURN(p.credential, SignJobCredential(p.claims, *signing_key_));
  return p;
}

StatusOr<int64_t> ServiceWorld::Denials(const std::string& action, const std::string& object) {
  store::AuditFilter f;
  f.limit = 10000;
  ASSIGN_OR_RETURN(auto entries, db().ListAudit(f));
  return std::count_if(entries.begin(), entries.end(), [&](const store::AuditEntry& e) {
    return e.record.action == action && e.record.decision == store::AuditDecision::kDeny &&
           (object.empty() || e.record.object == object);
  });
}

}  // namespace cce::plane::testing
