// Test-only (library cce_plane_service_world): a whole plane (a data
// directory from InitPlane, its keys, store, ledger, blob and output stores,
// attestation policy) without its HTTP front, for tests that call the
// services directly.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "plane/config.h"
#include "plane/log.h"
#include "plane/plane.h"
#include "plane/services.h"
#include "store/sqlite_store.h"

namespace cce::plane::testing {

struct ServiceWorldOptions {
  const Clock* clock = nullptr;  // required; must outlive the world
  bool simulated_tee = false;    // InitOptions::simulated_tee
  // Wraps the SQLite store (a decorator that fails some writes, say); the
  // services and db() then use the wrapper. Empty: none.
  std::function<std::unique_ptr<store::Store>(store::Store&)> wrap_store = {};
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

  const std::string& tmp() const { return tmp_; }
  const InitResult& init() const { return init_; }
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

 private:
  ServiceWorld() = default;

  const Clock* clock_ = nullptr;
  Logger log_{true, Logger::Level::kError};
  std::string tmp_;
  InitResult init_;
  PlaneConfig config_;
  std::optional<crypto::Ed25519PrivateKey> signing_key_;
  std::unique_ptr<MasterKey> master_key_;
  std::unique_ptr<store::SqliteStore> sqlite_;
  std::unique_ptr<store::Store> wrapped_;
  std::optional<ledger::EmbeddedLedger> ledger_;
  std::optional<image::BlobStore> blobs_;
  std::optional<OutputStore> outputs_;
  std::unique_ptr<AttestationService> attestation_;
  crypto::Bytes public_key_;
  std::unique_ptr<Services> services_;
};

}  // namespace cce::plane::testing
