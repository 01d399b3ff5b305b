// Private to src/plane: the Privacy Plane's domain services. Each is a plain
// class built once from ServiceDeps, taking typed requests (src/api wire
// types) and returning StatusOr. They know nothing of HTTP: routes.cc
// adapts them to the HTTPS front, and tests call them directly. Every
// security decision goes through AuditLog, and a decision to allow whose
// audit record cannot be written is refused.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/wire.h"
#include "base/clock.h"
#include "base/status.h"
#include "crypto/crypto.h"
#include "image/blob_store.h"
#include "jobspec/jobspec.h"
#include "ledger/ledger.h"
#include "plane/attestation.h"
#include "plane/log.h"
#include "plane/master_key.h"
#include "plane/output_store.h"
#include "store/store.h"

namespace cce::plane {

// An authenticated API user.
struct Caller {
  store::User user;
  std::string actor() const { return "user:" + user.name; }
};

// The one way the plane writes audit records.
class AuditLog {
 public:
  AuditLog(store::Store& db, const Clock& clock, Logger& log) : db_(db), clock_(clock), log_(log) {}

  // A record stamped now, for a store mutation that appends it in the same
  // transaction (Store's mutating methods), or for Append.
  store::AuditRecord Record(std::string actor, std::string action, std::string object,
                            store::AuditDecision decision,
                            const nlohmann::json& details = nlohmann::json::object()) const;
  // Appends a decision that changes no other state. An error means the
  // decision was not recorded and must not be acted on (fail closed).
  [[nodiscard]] Status Append(const store::AuditRecord& record);
  // Records a refusal and returns `why` (the refusal stands either way; a
  // refusal that could not be recorded is logged as an error).
  Status Deny(std::string actor, std::string action, std::string object, const Status& why,
              nlohmann::json details = nlohmann::json::object());

 private:
  store::Store& db_;
  const Clock& clock_;
  Logger& log_;
};

// Failures per remote address in a fixed window. Checked BEFORE a request
// is handled: an address past kMaxFailures in the window is refused without
// running the handler, and only the first refusal of a window is audited,
// so a flood can neither burn CPU in handlers nor fill the audit log.
class FailureLimiter {
 public:
  static constexpr int kMaxFailures = 20;
  static constexpr int64_t kWindowSeconds = 60;
  enum class Admission { kAdmit, kFirstRefusal, kRefusal };
  Admission Check(const std::string& addr, int64_t now);
  void RecordFailure(const std::string& addr, int64_t now);

 private:
  struct Entry {
    int64_t window_start = 0;
    int failures = 0;
    bool refusal_audited = false;
  };
  static constexpr size_t kMaxAddresses = 100'000;  // bounded under an address spray
  std::mutex mu_;                                   // guards entries_
  std::map<std::string, Entry> entries_;
};

struct ServiceDeps {
  store::Store& db;
  const Clock& clock;
  Logger& log;
  MasterKey& master_key;
  ledger::EmbeddedLedger& ledger;
  image::BlobStore& blobs;
  OutputStore& outputs;
  AttestationService& attestation;
  const crypto::Ed25519PrivateKey& signing_key;
  crypto::Bytes plane_public_key;          // verifies checkpoints, rentals, credentials
  std::function<void()> on_job_submitted;  // wakes the job engine; may be empty
  int64_t kbs_nonce_ttl_seconds = 60;
  int64_t kbs_session_ttl_seconds = 300;
  PlaneLimits job_limits;
};

// Users and authentication.
class Users {
 public:
  Users(ServiceDeps& deps, AuditLog& audit) : d_(deps), audit_(audit) {}
  // Authenticates an Authorization header value from `remote_addr` (the
  // request line names the object of a refusal). Errors: kUnauthenticated
  // (audited as authn), kResourceExhausted when the address is over its
  // failure limit and the token is not valid (audited once per window), or
  // a store error.
  StatusOr<Caller> Authenticate(std::string_view authorization, const std::string& remote_addr,
                                const std::string& request_line);
  // kPermissionDenied (audited as authz) unless the caller has one of
  // `roles` (empty: any role).
  Status Authorize(const Caller& caller, const std::vector<store::Role>& roles,
                   const std::string& request_line);
  StatusOr<api::UserList> List();
  StatusOr<api::CreatedUser> Create(const Caller& caller, const api::CreateUserRequest& request);
  // "user#<id>" when the user is gone.
  std::string NameOf(int64_t user_id);

 private:
  ServiceDeps& d_;
  AuditLog& audit_;
  FailureLimiter limiter_;
};

// The dataset catalog.
class Catalog {
 public:
  Catalog(ServiceDeps& deps, AuditLog& audit, Users& users)
      : d_(deps), audit_(audit), users_(users) {}
  // Registers a dataset; its key is sealed under the master key at once and
  // wiped from the request. A file:// location is opened with the key.
  StatusOr<api::Dataset> Register(const Caller& caller, api::RegisterDatasetRequest request);
  StatusOr<api::DatasetList> List();
  StatusOr<api::Dataset> Get(const std::string& name);

 private:
  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
};

// Rentals, and the one rule every step that touches data checks: does the
// consumer's rental of each dataset cover [from, until)?
class Rentals {
 public:
  Rentals(ServiceDeps& deps, AuditLog& audit, Users& users)
      : d_(deps), audit_(audit), users_(users) {}
  StatusOr<api::Rental> Rent(const Caller& caller, const api::RentRequest& request);
  StatusOr<api::RentalList> List(const Caller& caller);
  // OK when every dataset is in the catalog and covered; otherwise
  // kNotFound (an unknown dataset, naming it) or kPermissionDenied naming
  // the first dataset not covered. Not audited: callers audit their own
  // decision.
  Status CheckCoverage(int64_t consumer_id, const std::vector<std::string>& datasets, int64_t from,
                       int64_t until);

 private:
  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
};

// Container images: blobs by digest, tags on validated manifests.
class Images {
 public:
  Images(ServiceDeps& deps, AuditLog& audit, Users& users)
      : d_(deps), audit_(audit), users_(users) {}
  StatusOr<api::BlobStatus> BlobStatus(const std::string& digest);
  // The blob's bytes are read from `fd` (at offset 0) and stored only if
  // they hash to `digest`.
  StatusOr<api::StoredBlob> PutBlob(const Caller& caller, const std::string& digest, int fd);
  StatusOr<api::TaggedImage> Tag(const Caller& caller, const std::string& name,
                                 const std::string& tag, const std::string& manifest);
  StatusOr<api::ImageList> List();
  std::string blob_upload_dir() const { return d_.blobs.root() + "/tmp"; }

 private:
  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
};

// Privacy Mode jobs.
class Jobs {
 public:
  Jobs(ServiceDeps& deps, AuditLog& audit, Users& users, Rentals& rentals)
      : d_(deps), audit_(audit), users_(users), rentals_(rentals) {}
  struct Submitted {
    api::Job job;
    bool created = false;  // false: an idempotent replay
  };
  // Checks the spec, its limits, the rentals for the whole timeout and the
  // image, pins the digest and records the job.
  StatusOr<Submitted> Submit(const Caller& caller, const std::string& spec_text,
                             const std::string& idempotency_key);
  struct ListRequest {
    std::optional<std::string> state;
    int64_t limit = 1000;
    int64_t offset = 0;
  };
  StatusOr<api::JobList> List(const Caller& caller, const ListRequest& request);
  StatusOr<api::JobDetail> Get(const Caller& caller, const std::string& job_id);
  struct Output {
    crypto::SecretBytes bundle;
    std::string digest;
  };
  // Only the job's consumer, only once RELEASED; every answer audited.
  StatusOr<Output> DownloadOutput(const Caller& caller, const std::string& job_id);
  StatusOr<api::Job> Cancel(const Caller& caller, const std::string& job_id);

 private:
  // A job another consumer owns is kNotFound, as if it did not exist.
  StatusOr<store::Job> Load(const Caller& caller, const std::string& job_id);
  api::Job ToWire(const store::Job& job);

  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
  Rentals& rentals_;
};

// The key broker (docs/attestation.md §11): credential -> nonce; quote ->
// session; session -> dataset key wrapped to the TEE's key. Every decision
// audited; a release whose audit record cannot be written is refused.
class KeyBroker {
 public:
  KeyBroker(ServiceDeps& deps, AuditLog& audit, Rentals& rentals)
      : d_(deps), audit_(audit), rentals_(rentals) {}
  StatusOr<api::KbsAuthResponse> Auth(const std::string& remote_addr,
                                      const api::KbsAuthRequest& request);
  StatusOr<api::KbsAttestResponse> Attest(const std::string& remote_addr,
                                          const api::KbsAttestRequest& request);
  // `authorization` is the request's "Bearer <session>". Returns the JWE
  // (compact serialization) of the dataset's key.
  StatusOr<std::string> ReleaseKey(const std::string& remote_addr, std::string_view authorization,
                                   const std::string& dataset);
  // Checked before any key broker request is handled (per address).
  FailureLimiter& limiter() { return limiter_; }

 private:
  ServiceDeps& d_;
  AuditLog& audit_;
  Rentals& rentals_;
  FailureLimiter limiter_;
};

// The audit log over the API: listing and verification.
class AuditTrail {
 public:
  AuditTrail(ServiceDeps& deps, AuditLog& audit) : d_(deps), audit_(audit) {}
  StatusOr<api::AuditList> List(const store::AuditFilter& filter);
  StatusOr<api::AuditVerifyReport> Verify(const Caller& caller);

 private:
  ServiceDeps& d_;
  AuditLog& audit_;
};

// All services, built once, wired to each other.
class Services {
 public:
  explicit Services(ServiceDeps deps)
      : deps_(std::move(deps)),
        audit_log(deps_.db, deps_.clock, deps_.log),
        users(deps_, audit_log),
        catalog(deps_, audit_log, users),
        rentals(deps_, audit_log, users),
        images(deps_, audit_log, users),
        jobs(deps_, audit_log, users, rentals),
        key_broker(deps_, audit_log, rentals),
        audit(deps_, audit_log) {}
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  const Clock& clock() const { return deps_.clock; }
  Logger& log() { return deps_.log; }

 private:
  ServiceDeps deps_;  // first: the services below hold references into it

 public:
  AuditLog audit_log;
  Users users;
  Catalog catalog;
  Rentals rentals;
  Images images;
  Jobs jobs;
  KeyBroker key_broker;
  AuditTrail audit;
};

}  // namespace cce::plane
