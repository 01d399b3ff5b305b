#include "plane/service_world.h"

#include <stdlib.h>

#include <filesystem>
#include <system_error>

#include "plane/keys.h"
#include "plane/master_key.h"

namespace cce::plane::testing {

namespace fs = std::filesystem;

StatusOr<std::unique_ptr<ServiceWorld>> ServiceWorld::Create(ServiceWorldOptions options) {
  if (options.clock == nullptr) return InvalidArgument("ServiceWorldOptions.clock: required");
  std::unique_ptr<ServiceWorld> w(new ServiceWorld());
  w->clock_ = options.clock;
  std::string tmpl = (fs::temp_directory_path() / "cce-service-world-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("mkdtemp " + tmpl, errno);
  w->tmp_ = tmpl;
  InitOptions o;
  o.data_dir = w->tmp_ + "/plane";
  o.listen = "127.0.0.1:0";
  o.simulated_tee = options.simulated_tee;
  ASSIGN_OR_RETURN(w->init_, InitPlane(o, *w->clock_));
  ASSIGN_OR_RETURN(w->config_, LoadConfig(w->init_.data_dir));
  ASSIGN_OR_RETURN(auto signing_key, LoadSigningKey(w->config_.Path(w->config_.signing_key_file)));
  w->signing_key_.emplace(std::move(signing_key));
  ASSIGN_OR_RETURN(w->master_key_, LoadFileMasterKey(w->config_.Path(w->config_.master_key_file)));
  store::SqliteStoreOptions so;
  so.path = w->config_.Path(w->config_.database_path);
  ASSIGN_OR_RETURN(w->sqlite_, store::SqliteStore::Open(so));
  if (options.wrap_store) w->wrapped_ = options.wrap_store(*w->sqlite_);
  w->ledger_.emplace(w->db(), *w->signing_key_);
  ASSIGN_OR_RETURN(auto blobs, image::BlobStore::Create(w->init_.data_dir + "/images"));
  w->blobs_.emplace(std::move(blobs));
  ASSIGN_OR_RETURN(auto outputs,
                   OutputStore::Open(w->init_.data_dir + "/outputs", *w->master_key_));
  w->outputs_.emplace(std::move(outputs));
  ASSIGN_OR_RETURN(w->attestation_, AttestationService::Load(w->config_));
  const auto pub = w->signing_key_->PublicKey();
  w->public_key_ = crypto::Bytes(pub.begin(), pub.end());
  ServiceDeps deps{
      .db = w->db(),
      .clock = *w->clock_,
      .log = w->log_,
      .master_key = *w->master_key_,
      .ledger = *w->ledger_,
      .blobs = *w->blobs_,
      .outputs = *w->outputs_,
      .attestation = *w->attestation_,
      .signing_key = *w->signing_key_,
      .plane_public_key = w->public_key_,
      .on_job_submitted = {},
  };
  if (options.adjust) options.adjust(deps, w->tmp_);
  w->services_ = std::make_unique<Services>(std::move(deps));
  return w;
}

ServiceWorld::~ServiceWorld() {
  services_.reset();
  wrapped_.reset();
  sqlite_.reset();
  std::error_code ec;
  if (!tmp_.empty()) fs::remove_all(tmp_, ec);
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

}  // namespace cce::plane::testing
