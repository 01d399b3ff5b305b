// cce-plane init and user add.
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "attest/sim.h"
#include "base/fd.h"
#include "crypto/x509.h"
#include "plane/attestation.h"
#include "plane/credential.h"
#include "plane/config.h"
#include "plane/keys.h"
#include "plane/master_key.h"
#include "plane/plane.h"
#include "plane/services.h"
#include "store/sqlite_store.h"

namespace cce::plane {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kCaValidityDays = 3650;
constexpr int64_t kServerCertValidityDays = 825;
constexpr int64_t kSimulatedTeeValiditySeconds = int64_t{365} * 86400;

// The policy `init --simulated-tee` writes: the default policy plus
// simulation, with a warning no one can miss when reading the file.
constexpr std::string_view kSimulatedTeePolicy =
    "# Attestation policy of the key broker (docs/attestation.md, section 5).\n"
    "#\n"
    "# !!! WARNING: SIMULATED TEE ENABLED !!!\n"
    "# This data directory was created with `cce-plane init --simulated-tee`.\n"
    "# allow_simulated: true makes the key broker ACCEPT QUOTES FROM MACHINES THAT\n"
    "# ARE NOT TDX VMs: quotes signed by the development chain in attestation/sim/,\n"
    "# which anyone who can read attestation/sim/pck.key can produce. Dataset keys\n"
    "# released under this policy are NOT protected by any TEE. Never use this for\n"
    "# real data. To turn it off, set allow_simulated: false and restart the plane.\n"
    "accepted_tcb_statuses: [UpToDate]\n"
    "allow_simulated: true\n";

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0) return ErrnoStatus("mkdir " + path, errno);
  return Status::Ok();
}

// Removes a staging directory unless released.
class StagingGuard {
 public:
  explicit StagingGuard(std::string path) : path_(std::move(path)) {}
  ~StagingGuard() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

store::AuditRecord Audit(int64_t at, std::string actor, std::string action, std::string object,
                         std::string details = "{}") {
  store::AuditRecord r;
  r.at = at;
  r.actor = std::move(actor);
  r.action = std::move(action);
  r.object = std::move(object);
  r.decision = store::AuditDecision::kAllow;
  r.details_json = std::move(details);
  return r;
}

// attestation/sim (the simulated TEE), its collateral in the key broker's
// cache (checked against the new root on the way in), and the policy.
// c.data_dir is the staging directory.
StatusOr<std::string> CreateSimulatedTeeFiles(const PlaneConfig& c, int64_t now) {
  const fs::path root_file = c.Path(c.attestation_simulation_root_file);
  if (root_file.filename() != attest::kSimRootFile) {
    return Internal("config: attestation.simulation_root_file must name " +
                    std::string(attest::kSimRootFile) + " in the simulated TEE directory");
  }
  const std::string sim_dir = root_file.parent_path().string();
  std::error_code ec;
  fs::create_directories(fs::path(sim_dir).parent_path(), ec);
  if (ec) return ErrnoStatus("mkdir " + fs::path(sim_dir).parent_path().string(), ec.value());
  RETURN_IF_ERROR(attest::CreateSimulatedTee(sim_dir, now, kSimulatedTeeValiditySeconds));
  auto fmspc = ImportCollateralSet(c, sim_dir + "/" + std::string(attest::kSimCollateralDir),
                                   /*with_simulation_root=*/true);
  if (!fmspc.ok()) return fmspc.status().WithContext("simulated TEE collateral");
  const std::string policy = c.Path(c.attestation_policy_file);
  fs::create_directories(fs::path(policy).parent_path(), ec);
  if (ec) return ErrnoStatus("mkdir " + fs::path(policy).parent_path().string(), ec.value());
  RETURN_IF_ERROR(WriteNewFile(policy, crypto::AsBytes(kSimulatedTeePolicy), 0644));
  return sim_dir;
}

StatusOr<std::unique_ptr<store::SqliteStore>> OpenStore(const PlaneConfig& c) {
  store::SqliteStoreOptions o;
  o.path = c.Path(c.database_path);
  // Every signed checkpoint is also kept outside the database (docs/store.md).
  o.checkpoint_file = c.Path(c.audit_checkpoint_file);
  return store::SqliteStore::Open(o);
}

}  // namespace

StatusOr<std::string> NewApiToken() {
  std::array<uint8_t, 32> raw{};
  RETURN_IF_ERROR(crypto::RandomBytes(raw));
  std::string token = "cce_" + crypto::ToHex(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return token;
}

crypto::Sha256Digest HashApiToken(std::string_view token) {
  return crypto::Sha256(crypto::AsBytes(token));
}

StatusOr<InitResult> InitPlane(const InitOptions& options, const Clock& clock) {
  if (options.data_dir.empty()) return InvalidArgument("--data-dir DIR is required");
  std::error_code ec;
  fs::path dir = fs::absolute(options.data_dir, ec).lexically_normal();
  if (ec) return InvalidArgument(options.data_dir + ": " + ec.message());
  if (!dir.has_filename()) dir = dir.parent_path();  // "plane/" names "plane"
  if (dir == dir.root_path()) {
    return InvalidArgument("--data-dir " + options.data_dir +
                           ": expected a new directory, not the file system's root");
  }
  {
    // Checked before anything is created: a typo in --listen leaves nothing behind.
    std::string host;
    int port = 0;
    if (!ParseListen(options.listen, &host, &port).ok()) {
      return InvalidArgument("--listen " + options.listen +
                             ": expected ADDR:PORT with a port 0..65535, e.g. 127.0.0.1:8443, "
                             "0.0.0.0:8443 or [::1]:8443");
    }
  }
  const fs::path parent = dir.parent_path();
  if (!fs::is_directory(parent, ec)) {
    if (fs::exists(parent, ec)) {
      return InvalidArgument("--data-dir " + options.data_dir + ": " + parent.string() +
                             " is not a directory");
    }
    return NotFound("--data-dir " + options.data_dir + ": the parent directory " +
                    parent.string() + " does not exist; create it first (mkdir -p " +
                    parent.string() + ") or choose another place");
  }
  if (::access(parent.c_str(), W_OK | X_OK) != 0) {
    return Status(StatusCode::kIo, "--data-dir " + options.data_dir + ": cannot create " +
                                       dir.filename().string() + " in " + parent.string() +
                                       " (" + std::strerror(errno) + ")");
  }
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec) || !fs::is_empty(dir, ec)) {
      return AlreadyExists(dir.string() +
                           ": exists and is not an empty directory; refusing to "
                           "overwrite a plane's data");
    }
    fs::remove(dir, ec);  // empty: replaced by the staged directory below
  }
  std::string stage = dir.parent_path().string() + "/." + dir.filename().string() + ".init-" +
                      std::to_string(::getpid());
  RETURN_IF_ERROR(MakeDir(stage));
  StagingGuard guard(stage);

  PlaneConfig c;
  c.data_dir = stage;
  c.listen = options.listen;
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(ParseListen(c.listen, &host, &port));
  RETURN_IF_ERROR(MakeDir(stage + "/tls"));
  RETURN_IF_ERROR(MakeDir(stage + "/keys"));
  int64_t now = clock.NowUnix();

  ASSIGN_OR_RETURN(
      crypto::CertificateAuthority ca,
      crypto::CreateCertificateAuthority("cce4long plane CA", now - 60, kCaValidityDays));
  ASSIGN_OR_RETURN(
      crypto::IssuedCertificate server,
      crypto::IssueServerCertificate(ca, "cce-plane", options.dns_names, options.ip_addresses,
                                     now - 60, kServerCertValidityDays));
  RETURN_IF_ERROR(WriteNewFile(c.Path(c.tls_ca_file), crypto::AsBytes(ca.cert_pem), 0644));
  RETURN_IF_ERROR(WriteNewFile(stage + "/tls/ca.key", ca.key_pem.span(), 0600));
  RETURN_IF_ERROR(WriteNewFile(c.Path(c.tls_cert_file), crypto::AsBytes(server.cert_pem), 0644));
  RETURN_IF_ERROR(WriteNewFile(c.Path(c.tls_key_file), server.key_pem.span(), 0600));
  RETURN_IF_ERROR(CreateSigningKey(c.Path(c.signing_key_file)));
  RETURN_IF_ERROR(CreateFileMasterKey(c.Path(c.master_key_file)));
  std::string simulated_tee_dir;  // relative to the data directory
  if (options.simulated_tee) {
    ASSIGN_OR_RETURN(std::string sim, CreateSimulatedTeeFiles(c, now - 60));
    simulated_tee_dir = fs::relative(sim, stage).string();
  }

  ASSIGN_OR_RETURN(std::string token, NewApiToken());
  {
    ASSIGN_OR_RETURN(auto db, OpenStore(c));
    // Entry 1 is the signed genesis: it names the plane key and is
    // checkpointed at once, so an emptied or replaced log cannot verify.
    ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey signing_key,
                     LoadSigningKey(c.Path(c.signing_key_file)));
    const auto pub = signing_key.PublicKey();
    ASSIGN_OR_RETURN(
        store::AuditEntry genesis,
        db->AppendAudit(Audit(now, "cce-plane init", "plane.init", "plane",
                              std::string(R"({"public_key":")") + crypto::ToHex(pub) + "\"" +
                                  (options.simulated_tee ? R"(,"simulated_tee":true})" : "}"))));
    ASSIGN_OR_RETURN(
        store::AuditCheckpoint cp,
        store::SignAuditCheckpoint(signing_key, store::AuditHead{genesis.seq, genesis.hash}, now));
    RETURN_IF_ERROR(db->AddCheckpoint(cp));
    store::User op;
    op.name = options.operator_name;
    op.role = store::Role::kOperator;
    op.token_hash = HashApiToken(token);
    op.created_at = now;
    RETURN_IF_ERROR(db->CreateUser(op, Audit(now, "cce-plane init", "user.add", "user:" + op.name,
                                             R"({"role":"operator"})"))
                        .status());
  }
  std::string config_text = RenderConfig(c);
  RETURN_IF_ERROR(WriteNewFile(stage + "/plane.yaml", crypto::AsBytes(config_text), 0600));
  {
    UniqueFd sd(::open(stage.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (sd.valid()) ::fsync(sd.get());
  }
  if (::rename(stage.c_str(), dir.c_str()) != 0) {
    return ErrnoStatus("rename " + stage + " to " + dir.string(), errno);
  }
  guard.Release();
  InitResult r;
  r.data_dir = dir.string();
  r.config_file = dir.string() + "/plane.yaml";
  r.ca_file = dir.string() + "/" + c.tls_ca_file;
  r.token = std::move(token);
  if (!simulated_tee_dir.empty()) r.simulated_tee_dir = dir.string() + "/" + simulated_tee_dir;
  return r;
}

StatusOr<std::string> AddUser(const std::string& data_dir, const std::string& name,
                              store::Role role, const Clock& clock) {
  RETURN_IF_ERROR(CheckUserName(name, "user name"));
  ASSIGN_OR_RETURN(PlaneConfig c, LoadConfig(data_dir));
  ASSIGN_OR_RETURN(auto db, OpenStore(c));
  ASSIGN_OR_RETURN(std::string token, NewApiToken());
  store::User u;
  u.name = name;
  u.role = role;
  u.token_hash = HashApiToken(token);
  u.created_at = clock.NowUnix();
  auto created = db->CreateUser(
      u, Audit(u.created_at, "cce-plane user add", "user.add", "user:" + name,
               std::string(R"({"role":")") + std::string(store::RoleName(role)) + "\"}"));
  if (!created.ok()) return created.status();
  return token;
}

StatusOr<std::string> IssueJobCredential(const std::string& data_dir, const std::string& job_id,
                                         const Clock& clock) {
  ASSIGN_OR_RETURN(PlaneConfig c, LoadConfig(data_dir));
  if (c.provisioner_backend != "none") {
    return FailedPrecondition("the plane's provisioner is '" + c.provisioner_backend +
                              "', which hands each job's credential to its own agent; a "
                              "credential is issued by hand only with provisioner.backend: none");
  }
  ASSIGN_OR_RETURN(auto db, OpenStore(c));
  auto job = db->GetJob(job_id);
  if (!job.ok()) {
    if (job.status().code() == StatusCode::kNotFound) {
      return NotFound("no job '" + job_id + "' (see `cce job list`)");
    }
    return job.status();
  }
  if (job->state != store::JobState::kProvisioning) {
    return FailedPrecondition("job " + job_id + " is " +
                              std::string(store::JobStateName(job->state)) +
                              ", not PROVISIONING: a credential is issued only for a job waiting "
                              "for its agent");
  }
  ASSIGN_OR_RETURN(store::User consumer, db->GetUser(job->consumer_id));
  ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey key, LoadSigningKey(c.Path(c.signing_key_file)));
  ASSIGN_OR_RETURN(MintedCredential minted,
                   MintJobCredential(*job, consumer.name, clock.NowUnix(), c.credential_ttl_seconds,
                                     CredentialExpiry::kTtlWithinDeadline, key));
  const JobCredentialClaims& claims = minted.claims;
  RETURN_IF_ERROR(db->IssueCredential(
      minted.row,
      Audit(claims.issued_at, "cce-plane job credential", "credential.issue", "job:" + job->id,
            nlohmann::json{{"credential", claims.credential_id},
                           {"expires_at", claims.expires_at},
                           {"by", "operator, by hand (provisioner none)"}}
                .dump())));
  return std::move(minted.token);
}

}  // namespace cce::plane
