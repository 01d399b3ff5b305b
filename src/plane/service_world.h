// Test-only (library cce_plane_service_world): a whole plane (a data
// directory from InitPlane, its keys, store, ledger, blob and output stores,
// attestation policy) without its HTTP front, for tests that call the
// services directly; and the small helpers those tests share.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/clock.h"
#include "base/status.h"
#include "plane/config.h"
#include "plane/credential.h"
#include "plane/log.h"
#include "plane/plane.h"
#include "plane/plane_testing.h"
#include "plane/services.h"
#include "store/sqlite_store.h"

namespace cce::plane::testing {

// The value of `v`. Otherwise a test failure naming `what` and the error,
// then abort: for set-up steps a test cannot go on without.
template <typename T>
T Must(StatusOr<T> v, std::string_view what) {
  if (!v.ok()) {
    ADD_FAILURE() << what << ": " << v.status().message();
    std::abort();
  }
  return std::move(*v);
}

// Whether the message of `s` contains `what`.
inline bool MessageContains(const Status& s, std::string_view what) {
  return s.message().find(what) != std::string::npos;
}

// A job record as the API stores it on submission: SUBMITTED, of
// `consumer_id`, created at `now` with `timeout_seconds` to run and as long
// to its deadline, image sha256:aaaa... (64 'a'), no datasets.
store::Job SubmittedJob(const std::string& id, int64_t consumer_id, int64_t now,
                        int64_t timeout_seconds = 3600);

// A job in PROVISIONING, as ServiceWorld::ProvisionJob leaves it.
struct ProvisionedJob {
  JobCredentialClaims claims;  // of the job's credential
  std::string credential;      // its token, signed by the plane
};

struct ServiceWorldOptions {
  const Clock* clock = nullptr;  // required; must outlive the world
  bool simulated_tee = false;    // InitOptions::simulated_tee
  // Wraps the SQLite store (a decorator that fails some writes, say); the
  // services and db() then use the wrapper. Empty: none.
  std::function<std::unique_ptr<store::Store>(store::Store&)> wrap_store = {};
  // Builds the ledger the services ask instead of the embedded one (an
  // EthereumLedger over a fake chain, say): ServiceDeps::embedded is then
  // null (rentals are not recorded by the plane). Empty: the embedded ledger.
  std::function<std::unique_ptr<ledger::Ledger>(store::Store&)> make_ledger = {};
  // Adjusts the services' dependencies (limits, dataset roots, quota) before
  // they are built.
  std::function<void(ServiceDeps&, const std::string& tmp)> adjust = {};
};

class ServiceWorld {
 public:
  // A fresh temporary directory (removed by the destructor) holding the
  // plane's data directory at tmp()/plane.
  static StatusOr<std::unique_ptr<ServiceWorld>> Create(ServiceWorldOptions options);
  ~ServiceWorld();
  ServiceWorld(const ServiceWorld&) = delete;
  ServiceWorld& operator=(const ServiceWorld&) = delete;

  const std::string& tmp() const { return plane_->tmp(); }
  const InitResult& init() const { return plane_->init(); }
  const PlaneConfig& config() const { return config_; }
  Services& services() { return *services_; }
  store::Store& db() { return wrapped_ ? *wrapped_ : *sqlite_; }
  image::BlobStore& blobs() { return *blobs_; }
  OutputStore& outputs() { return *outputs_; }
  MasterKey& master_key() { return *master_key_; }
  const crypto::Ed25519PrivateKey& signing_key() const { return *signing_key_; }
  const crypto::Bytes& public_key() const { return public_key_; }

  // A user with token "cce_<name>", recorded with its audit entry.
  StatusOr<Caller> AddUser(const std::string& name, store::Role role);
  // An info record stamped now, actor "test".
  store::AuditRecord Rec(const std::string& action, const std::string& object);

  // Stores `job` (SUBMITTED, of `consumer`) and walks it as the job engine
  // would: AUTHORIZED, then PROVISIONING with its credential issued in the
  // same step (id "cred-" and 32 hex of SHA-256(job id), valid
  // `credential_ttl_seconds` from job.created_at), each step audited through
  // db(). Errors: the store's (a refused step stops the walk), SignJobCredential's.
  StatusOr<ProvisionedJob> ProvisionJob(const store::Job& job, const Caller& consumer,
                                        int64_t credential_ttl_seconds);
  // How many audit records of `action` (on `object`, when not empty) deny.
  // Errors: the store's.
  StatusOr<int64_t> Denials(const std::string& action, const std::string& object = "");
  // The ledger the services ask (ServiceWorldOptions::make_ledger's, else the embedded one).
  ledger::Ledger& ledger() { return other_ledger_ ? *other_ledger_ : *ledger_; }

 private:
  ServiceWorld() = default;

  const Clock* clock_ = nullptr;
  Logger log_{true, Logger::Level::kError};
  std::unique_ptr<TestPlane> plane_;  // the data directory; never served
  PlaneConfig config_;
  std::optional<crypto::Ed25519PrivateKey> signing_key_;
  std::unique_ptr<MasterKey> master_key_;
  std::unique_ptr<store::SqliteStore> sqlite_;
  std::unique_ptr<store::Store> wrapped_;
  std::optional<ledger::EmbeddedLedger> ledger_;
  std::unique_ptr<ledger::Ledger> other_ledger_;  // ServiceWorldOptions::make_ledger's
  std::optional<image::BlobStore> blobs_;
  std::optional<OutputStore> outputs_;
  std::unique_ptr<AttestationService> attestation_;
  crypto::Bytes public_key_;
  std::unique_ptr<Services> services_;
};

}  // namespace cce::plane::testing
