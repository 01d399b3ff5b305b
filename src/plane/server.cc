// cce-plane serve: builds the plane once — store, keys, services, job
// engine, routes — and runs it behind the event-driven HTTPS front
// (src/http) until asked to stop.
#include "http/server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <thread>

#include "base/fd.h"
#include "crypto/x509.h"
#include "ledger/ledger.h"
#include "plane/attestation.h"
#include "plane/config.h"
#include "plane/job_engine.h"
#include "plane/keys.h"
#include "plane/local_provisioner.h"
#include "plane/log.h"
#include "plane/master_key.h"
#include "plane/output_store.h"
#include "plane/plane.h"
#include "plane/routes.h"
#include "plane/serve_internal.h"
#include "plane/services.h"
#include "store/sqlite_store.h"

namespace cce::plane {

namespace {

// provisioner.backend: local. The agent checks the plane's certificate for
// "localhost" over the Unix socket (docs/provisioners.md), so the
// certificate must carry that name.
StatusOr<std::unique_ptr<Provisioner>> MakeConfiguredLocalProvisioner(const PlaneConfig& config,
                                                                      store::Store& db,
                                                                      const Clock& clock,
                                                                      Logger& log,
                                                                      bool simulated_tee) {
  const std::string cert_file = config.Path(config.tls_cert_file);
  ASSIGN_OR_RETURN(std::string pem, ReadFile(cert_file, size_t{1} << 20));
  ASSIGN_OR_RETURN(std::vector<crypto::Certificate> chain, crypto::ParseCertificatesPem(pem));
  const auto& names = chain.front().dns_names();
  if (std::find(names.begin(), names.end(), "localhost") == names.end()) {
    return FailedPrecondition("tls.cert_file: " + cert_file +
                              ": provisioner.backend local needs 'localhost' among the "
                              "certificate's DNS names (agents verify it over agent_socket)");
  }
  LocalProvisionerOptions o;
  o.agent_path = config.local_agent_path;
  if (o.agent_path.empty()) {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return Internal("/proc/self/exe: " + ec.message());
    o.agent_path = (self.parent_path() / "cce-agent").string();
  }
  const auto absolute = [](const std::string& p) {
    std::error_code ec;
    auto a = std::filesystem::absolute(p, ec);
    return ec ? p : a.lexically_normal().string();
  };
  o.agent_socket = absolute(config.Path(config.agent_socket));
  o.ca_file = absolute(config.Path(config.tls_ca_file));
  o.work_root = config.local_work_root;
  o.tmpfs_mib = config.local_tmpfs_mib;
  o.log_dir = absolute(config.data_dir + "/logs/jobs");
  o.memory_bytes = config.local_memory_mib << 20;
  o.pids_max = config.local_pids_max;
  if (simulated_tee) {
    // The stand-in VM quotes with the development chain `init
    // --simulated-tee` made; the agent labels every such run SIMULATED.
    const std::string root = absolute(config.Path(config.attestation_simulation_root_file));
    o.extra_agent_args = {"--tee", "simulated", "--sim-dir", root.substr(0, root.rfind('/'))};
  }
  return MakeLocalProvisioner(std::move(o), db, clock, log);
}

}  // namespace

Status Serve(const ServeOptions& options, const Clock& clock) {
  return ServeWith(options, clock, nullptr, nullptr);
}

Status ServeWith(const ServeOptions& options, const Clock& clock, Gate* gate_override,
                 Provisioner* provisioner_override, uint64_t fake_output_bytes) {
  ASSIGN_OR_RETURN(PlaneConfig config, LoadConfig(options.data_dir));
  // One server per data directory: two job engines on one database would
  // both resume (and so provision) the same jobs. Released by the kernel
  // when the process ends, however it ends.
  const std::string lock_path = config.data_dir + "/plane.lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) return ErrnoStatus(lock_path, errno);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    return FailedPrecondition("another cce-plane is already serving " + config.data_dir + " (" +
                              lock_path + " is locked)");
  }
  if (!options.listen_override.empty()) config.listen = options.listen_override;
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(ParseListen(config.listen, &host, &port));
  Logger log(config.log_format == "json", Logger::ParseLevel(config.log_level));
  // Every connection is a descriptor: the soft limit (often 1,024) would cap
  // the plane far below limits.max_connections.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey signing_key,
                   LoadSigningKey(config.Path(config.signing_key_file)));
  ASSIGN_OR_RETURN(std::unique_ptr<MasterKey> master_key,
                   LoadFileMasterKey(config.Path(config.master_key_file)));
  store::SqliteStoreOptions so;
  so.path = config.Path(config.database_path);
  so.checkpoint_file = config.Path(config.audit_checkpoint_file);
  ASSIGN_OR_RETURN(std::unique_ptr<store::SqliteStore> db, store::SqliteStore::Open(so));
  ledger::EmbeddedLedger ledger(*db, signing_key);
  ASSIGN_OR_RETURN(image::BlobStore blobs, image::BlobStore::Create(config.data_dir + "/images"));
  ASSIGN_OR_RETURN(OutputStore outputs,
                   OutputStore::Open(config.data_dir + "/outputs", *master_key));
  ASSIGN_OR_RETURN(std::unique_ptr<AttestationService> attestation,
                   AttestationService::Load(config));
  if (attestation->simulation_enabled()) {
    log.Warn("plane.simulated_tee",
             {{"message",
               "SIMULATED TEE ENABLED: the attestation policy accepts quotes from the "
               "development chain; keys may be released to machines that are NOT TDX VMs. "
               "Never enable this with real data."}});
  }
  const auto pub = signing_key.PublicKey();
  gate::Policy gate_policy;
  if (!config.gate_policy_file.empty()) {
    const std::string policy_path = config.Path(config.gate_policy_file);
    ASSIGN_OR_RETURN(std::string text, ReadFile(policy_path, 64 * 1024));
    ASSIGN_OR_RETURN(gate_policy, gate::LoadPolicy(text, policy_path));
  }

  JobEngine* engine_ptr = nullptr;  // set below; the services only wake it
  Services services(ServiceDeps{
      .db = *db,
      .clock = clock,
      .log = log,
      .master_key = *master_key,
      .ledger = ledger,
      .blobs = blobs,
      .outputs = outputs,
      .attestation = *attestation,
      .signing_key = signing_key,
      .plane_public_key = crypto::Bytes(pub.begin(), pub.end()),
      .on_job_submitted =
          [&engine_ptr] {
            if (engine_ptr != nullptr) engine_ptr->Wake();
          },
      .kbs_nonce_ttl_seconds = config.kbs_nonce_ttl_seconds,
      .kbs_session_ttl_seconds = config.kbs_session_ttl_seconds,
      .job_limits = PlaneLimits{},
      .checkpoint_file = so.checkpoint_file,
      .max_concurrent_downloads = config.max_concurrent_downloads,
      .kbs_max_nonces_per_credential = config.kbs_max_nonces_per_credential,
      .dataset_allowed_roots = config.dataset_allowed_roots,
      .dataset_max_manifest_bytes = config.dataset_max_manifest_bytes,
      .image_quota_bytes = config.image_quota_bytes,
      .max_output_bytes = config.max_output_bytes,
      .review_required_approvals = config.review_required_approvals,
      .gate_policy = gate_policy,
      .fingerprint_dir = config.data_dir + "/fingerprints",
  });

  std::unique_ptr<Provisioner> provisioner;
  const bool local = config.provisioner_backend == "local" && provisioner_override == nullptr;
  if (config.provisioner_backend == "fake") {
    provisioner = MakeFakeProvisioner(*db, outputs, clock, fake_output_bytes);
  } else if (local) {
    ASSIGN_OR_RETURN(provisioner, MakeConfiguredLocalProvisioner(
                                      config, *db, clock, log, attestation->simulation_enabled()));
  } else {
    provisioner = MakeNoneProvisioner();
  }
  if (config.provisioner_backend == "fake") {
    log.Warn("plane.fake_provisioner",
             {{"message", "FAKE provisioner: jobs are not run in a TEE; tests and demos only"}});
  }
  EngineDeps deps;
  deps.db = db.get();
  deps.rentals = &services.rentals;
  deps.ledger_backend = ledger.backend();
  deps.signing_key = &signing_key;
  deps.provisioner = provisioner_override != nullptr ? provisioner_override : provisioner.get();
  deps.gate = gate_override != nullptr ? gate_override : &services.gate;
  deps.clock = &clock;
  deps.log = &log;
  deps.credential_ttl_seconds = config.credential_ttl_seconds;
  deps.audit_checkpoint_every = config.audit_checkpoint_every;
  JobEngine engine(deps);
  engine_ptr = &engine;

  Metrics metrics;
  http::ServerOptions ho;
  ho.tls_cert_chain_file = config.Path(config.tls_cert_file);
  ho.tls_key_file = config.Path(config.tls_key_file);
  ho.limits.max_body_bytes = static_cast<uint64_t>(config.max_body_bytes);
  ho.limits.worker_threads = static_cast<size_t>(config.http_threads);
  ho.limits.max_connections = static_cast<size_t>(config.max_connections);
  ho.limits.max_connections_per_address = static_cast<size_t>(config.max_connections_per_address);
  ho.on_request = [&metrics, &log](const http::Request& req, std::string_view route, int status,
                                   double seconds) {
    metrics.Observe(route, status, seconds);
    log.Log(Logger::Level::kDebug, "http.request",
            {{"method", req.method},
             {"path", req.path},
             {"status", std::to_string(status)},
             {"ms", std::to_string(seconds * 1000)}});
  };
  ho.on_event = [&log](std::string_view event, std::string_view detail) {
    log.Warn("http." + std::string(event), {{"detail", std::string(detail)}});
  };
  std::atomic<http::Server*> server_ptr{nullptr};
  auto routes = PlaneRoutes(
      services, metrics,
      [&server_ptr] {
        http::Server* s = server_ptr.load();
        return s != nullptr ? s->Stats() : http::ServerStats{};
      },
      static_cast<uint64_t>(config.max_body_bytes));
  ASSIGN_OR_RETURN(std::unique_ptr<http::Server> server,
                   http::Server::Create(std::move(ho), std::move(routes)));
  server_ptr = server.get();
  auto bound = server->Listen(host, port);
  if (!bound.ok()) {
    return Unavailable("cannot listen on " + config.listen + ": " + bound.status().message() +
                       " (choose another with --listen ADDR:PORT)");
  }
  if (local) {  // the local provisioner's agents reach the plane only here
    Status unix_listening = server->ListenUnix(config.Path(config.agent_socket), 0600);
    if (!unix_listening.ok()) {
      return Unavailable("agent_socket: " + unix_listening.message());
    }
  }
  engine.Start();  // also resumes jobs left mid-way by a previous run
  log.Info("plane.start", {{"listen", host + ":" + std::to_string(*bound)},
                           {"master_key", master_key->backend()},
                           {"schema", std::to_string(store::SqliteStore::LatestSchemaVersion())}});
  if (options.on_listening) options.on_listening(*bound);

  std::atomic<bool> done{false};
  std::thread stopper([&] {
    while (!done && !(options.stop != nullptr && options.stop->load())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    server->Stop();  // graceful: in-flight requests finish, then Run returns
  });
  server->Run();
  done = true;
  stopper.join();
  engine.Stop();                           // no transition may land after the closing checkpoint
  engine.MaybeCheckpoint(/*force=*/true);  // seal the audit log's tail
  server_ptr = nullptr;
  log.Info("plane.stop", {{"clean", "true"}});
  return Status::Ok();
}

}  // namespace cce::plane
