// cce-plane serve: builds the plane once — store, keys, services, job
// engine, routes — and runs it behind the event-driven HTTPS front
// (src/http) until asked to stop.
#include "http/server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <thread>

#include "base/fd.h"
#include "crypto/x509.h"
#include "eth/rental_market.h"
#include "eth/rpc.h"
#include "explore/jupyter_status.h"
#include "explore/kubernetes_backend.h"
#include "explore/local_backend.h"
#include "ledger/ethereum_ledger.h"
#include "ledger/ledger.h"
#include "ledger/rpc_chain_source.h"
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

// "cannot listen on ADDR:PORT: <the OS's reason in words>; <what to do>". The
// server's status ends with the OS's text ("listen on H:P: bind: Address
// already in use"); the common causes get their own sentence.
Status ListenError(const std::string& listen, int port, const Status& error) {
  const std::string& m = error.message();
  auto has = [&m](std::string_view text) { return m.find(text) != std::string::npos; };
  std::string why;
  if (has("Address already in use")) {
    why = "the address is already in use (another cce-plane, or another program, listens "
          "there: stop it, or choose another address with --listen ADDR:PORT or plane.yaml's "
          "listen)";
  } else if (has("Permission denied") || has("Operation not permitted")) {
    why = "permission denied" +
          std::string(port > 0 && port < 1024
                          ? " (a port below 1024 needs root or CAP_NET_BIND_SERVICE: choose "
                            "a port of 1024 or more with --listen ADDR:PORT)"
                          : " (choose another address with --listen ADDR:PORT)");
  } else if (has("Cannot assign requested address")) {
    why = "no network interface of this machine has that address (choose one it has, e.g. "
          "--listen 127.0.0.1:" +
          std::to_string(port) + ")";
  } else {
    const size_t colon = m.rfind(": ");
    why = (colon == std::string::npos ? m : m.substr(colon + 2)) +
          " (choose another address with --listen ADDR:PORT)";
  }
  return Unavailable("cannot listen on " + listen + ": " + why);
}

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

// The directory holding the SDK package (cce4long/) a local session mounts
// at /opt/cce4long: explore.local.sdk_dir, else the copy the build installs
// next to the binaries (BIN/../share/cce4long/python), else none.
std::string DefaultSdkDir() {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "";
  std::string dir(self, static_cast<size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  const std::string candidate = dir.substr(0, dir.rfind('/')) + "/share/cce4long/python";
  struct stat st {};
  return ::stat((candidate + "/cce4long").c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? candidate : "";
}

// explore.backend -> the backend sessions run on (null for "none").
StatusOr<std::shared_ptr<explore::SessionBackend>> MakeExploreBackend(const PlaneConfig& config) {
  if (config.explore_backend == "local") {
    explore::LocalBackendOptions o;
    o.runc = config.explore_local_runc;
    o.runc_root = config.explore_local_runc_root;
    o.work_root = config.explore_local_work_root;
    o.uid_base = static_cast<uint32_t>(config.explore_local_uid_base);
    o.sdk_dir = config.explore_local_sdk_dir.empty() ? DefaultSdkDir()
                                                     : config.Path(config.explore_local_sdk_dir);
    o.start_timeout = std::chrono::seconds(config.explore_local_start_timeout_seconds);
    ASSIGN_OR_RETURN(explore::LocalBackend backend, explore::LocalBackend::Create(std::move(o)));
    return std::shared_ptr<explore::SessionBackend>(
        std::make_shared<explore::LocalBackend>(std::move(backend)));
  }
  if (config.explore_backend == "kubernetes") {
    explore::KubernetesBackendOptions o;
    o.kubeconfig = config.explore_kubernetes_kubeconfig.empty()
                       ? ""
                       : config.Path(config.explore_kubernetes_kubeconfig);
    o.kubeconfig_context = config.explore_kubernetes_context;
    o.api_server = config.explore_kubernetes_api_server;
    o.manifests.namespace_name = config.explore_kubernetes_namespace;
    o.manifests.image = config.explore_kubernetes_image;
    o.manifests.fetcher_image = config.explore_kubernetes_fetcher_image;
    o.manifests.sdk_config_map = config.explore_kubernetes_sdk_config_map;
    o.manifests.runtime_class_name = config.explore_kubernetes_runtime_class;
    o.manifests.plane.namespace_name = config.explore_kubernetes_plane_namespace;
    for (const auto& [key, value] : config.explore_kubernetes_plane_pod_labels) {
      o.manifests.plane.pod_labels[key] = value;
    }
    o.manifests.plane.api_port = static_cast<int>(config.explore_kubernetes_plane_api_port);
    o.manifests.extra_denied_cidrs = config.explore_kubernetes_extra_denied_cidrs;
    o.manifests.cpu_request = config.explore_kubernetes_cpu_request;
    o.manifests.memory_request = config.explore_kubernetes_memory_request;
    o.request_timeout = std::chrono::seconds(config.explore_kubernetes_request_timeout_seconds);
    ASSIGN_OR_RETURN(std::unique_ptr<explore::KubernetesBackend> backend,
                     explore::KubernetesBackend::Create(std::move(o)));
    return std::shared_ptr<explore::SessionBackend>(std::move(backend));
  }
  return std::shared_ptr<explore::SessionBackend>();
}

// plane.yaml explore.* -> the sessions service's options.
StatusOr<ExploreOptions> MakeExploreOptions(const PlaneConfig& config) {
  ExploreOptions o;
  o.backend_name = config.explore_backend;
  ASSIGN_OR_RETURN(o.backend, MakeExploreBackend(config));
  o.idle_timeout_seconds = config.explore_idle_timeout_seconds;
  o.max_idle_timeout_seconds = config.explore_max_idle_timeout_seconds;
  o.max_sessions_per_user = config.explore_max_sessions_per_user;
  o.plane_url =
      config.explore_plane_url.empty() ? "https://" + config.listen : config.explore_plane_url;
  ASSIGN_OR_RETURN(o.ca_pem, ReadFile(config.Path(config.tls_ca_file), size_t{1} << 20));
  const std::string explore_dir = config.data_dir + "/explore";
  if (::mkdir(explore_dir.c_str(), 0711) != 0 && errno != EEXIST) {
    return ErrnoStatus(explore_dir, errno);
  }
  o.homes_dir = explore_dir + "/homes";
  o.memory_mib = config.explore_memory_mib;
  o.cpus = config.explore_cpus;
  o.jupyter_activity = [](const explore::Upstream& upstream, const std::string& base_url,
                          const crypto::SecretBytes& token) -> StatusOr<int64_t> {
    ASSIGN_OR_RETURN(explore::JupyterActivity a,
                     explore::FetchJupyterStatus(upstream, base_url, token));
    return a.last_activity;
  };
  return o;
}

// ledger.backend ethereum: is the node on the configured chain, and is the
// contract there this plane's (its planeId() is eth::PlaneId of the plane's
// signing key)? kFailedPrecondition naming what was expected and what was
// found; the RPC client's errors otherwise (kUnavailable: node unreachable).
Status CheckDeployment(eth::RpcClient& rpc, const PlaneConfig& config, const eth::Address& contract,
                       const eth::Hash32& plane_id) {
  ASSIGN_OR_RETURN(uint64_t chain_id, rpc.ChainId());
  if (chain_id != static_cast<uint64_t>(config.ledger_chain_id)) {
    return FailedPrecondition("ledger.chain_id: plane.yaml expects chain " +
                              std::to_string(config.ledger_chain_id) + ", the node at " +
                              rpc.url_for_messages() + " is on chain " + std::to_string(chain_id));
  }
  auto ret = rpc.EthCall(contract, eth::EncodePlaneIdGetter());
  if (!ret.ok()) return ret.status().WithContext("ledger.contract: " + contract.Checksummed());
  auto got = eth::DecodeBytes32Return(*ret, "planeId()");
  if (!got.ok()) {
    return FailedPrecondition("ledger.contract: " + contract.Checksummed() + " on chain " +
                              std::to_string(chain_id) + " is not a RentalMarket contract (" +
                              got.status().message() + ")");
  }
  if (*got != plane_id) {
    return FailedPrecondition("ledger.contract: " + contract.Checksummed() + " belongs to plane " +
                              got->Hex() + ", expected this plane's " + plane_id.Hex());
  }
  return Status::Ok();
}

// The ethereum ledger's parts: its settings, a node client for the
// deployment checks, and the indexer over its own client.
struct EthereumParts {
  EthereumSettings settings;
  std::optional<eth::RpcClient> checker;
  std::unique_ptr<ledger::EthereumLedger> ledger;
  bool verified = false;  // CheckDeployment passed
};

// Builds the ethereum ledger and checks the deployment. A wrong chain or
// contract refuses the start; an unreachable node does not (logged): the
// background sync repeats the check before it indexes anything, and until
// then nothing new is granted.
StatusOr<EthereumParts> MakeEthereumLedger(const PlaneConfig& config, store::Store& db,
                                           const Clock& clock,
                                           const crypto::Ed25519PrivateKey& signing_key,
                                           crypto::ByteSpan plane_public_key, Logger& log) {
  EthereumParts parts;
  ASSIGN_OR_RETURN(eth::Address contract,
                   eth::ParseAddress(config.ledger_contract, "ledger.contract"));
  const eth::Hash32 plane_id = eth::PlaneId(plane_public_key);
  eth::RpcOptions ro;
  ro.url = config.ledger_rpc;
  if (!config.ledger_rpc_ca_file.empty()) ro.ca_file = config.Path(config.ledger_rpc_ca_file);
  ASSIGN_OR_RETURN(eth::RpcClient checker, eth::RpcClient::Create(ro));
  ASSIGN_OR_RETURN(eth::RpcClient indexer_rpc, eth::RpcClient::Create(ro));
  Status checked = CheckDeployment(checker, config, contract, plane_id);
  if (checked.code() == StatusCode::kUnavailable) {
    log.Error("ledger.node_unreachable",
              {{"error", checked.message()},
               {"message",
                "the chain id and contract are checked again before indexing; "
                "nothing new is granted until then"}});
  } else if (!checked.ok()) {
    return FailedPrecondition(config.data_dir + "/plane.yaml: " + checked.message() +
                              ": refusing to start");
  }
  parts.verified = checked.ok();
  parts.settings.chain_id = static_cast<uint64_t>(config.ledger_chain_id);
  parts.settings.contract = contract;
  parts.settings.confirmations = config.ledger_confirmations;
  parts.settings.rpc = config.ledger_rpc;
  ledger::EthereumLedgerOptions o;
  o.chain_id = parts.settings.chain_id;
  o.contract = contract;
  o.confirmations = static_cast<uint64_t>(config.ledger_confirmations);
  o.start_block = static_cast<uint64_t>(config.ledger_start_block);
  o.plane_id = plane_id;
  parts.ledger = std::make_unique<ledger::EthereumLedger>(
      db, std::make_unique<ledger::RpcChainSource>(std::move(indexer_rpc), contract), o, clock,
      signing_key);
  parts.checker.emplace(std::move(checker));
  return parts;
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
  if (Status listen_ok = ParseListen(config.listen, &host, &port); !listen_ok.ok()) {
    if (options.listen_override.empty()) return listen_ok;
    return InvalidArgument("--listen " + options.listen_override +
                           ": expected ADDR:PORT with a port 0..65535, e.g. 127.0.0.1:8443, "
                           "0.0.0.0:8443 or [::1]:8443");
  }
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
  ledger::EmbeddedLedger embedded(*db, signing_key);
  const auto pub = signing_key.PublicKey();
  std::optional<EthereumParts> ethereum;
  if (config.ledger_backend == "ethereum") {
    ASSIGN_OR_RETURN(ethereum, MakeEthereumLedger(config, *db, clock, signing_key, pub, log));
  }
  ledger::Ledger& ledger = ethereum ? static_cast<ledger::Ledger&>(*ethereum->ledger)
                                    : static_cast<ledger::Ledger&>(embedded);
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
  gate::Policy gate_policy;
  if (!config.gate_policy_file.empty()) {
    const std::string policy_path = config.Path(config.gate_policy_file);
    ASSIGN_OR_RETURN(std::string text, ReadFile(policy_path, 64 * 1024));
    ASSIGN_OR_RETURN(gate_policy, gate::LoadPolicy(text, policy_path));
  }

  ASSIGN_OR_RETURN(ExploreOptions explore_options, MakeExploreOptions(config));
  JobEngine* engine_ptr = nullptr;  // set below; the services only wake it
  Services services(ServiceDeps{
      .db = *db,
      .clock = clock,
      .log = log,
      .master_key = *master_key,
      .ledger = ledger,
      .embedded = ethereum ? nullptr : &embedded,
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
      .kbs_max_nonces = config.kbs_max_nonces,
      .dataset_allowed_roots = config.dataset_allowed_roots,
      .dataset_max_manifest_bytes = config.dataset_max_manifest_bytes,
      .image_quota_bytes = config.image_quota_bytes,
      .max_output_bytes = config.max_output_bytes,
      .review_required_approvals = config.review_required_approvals,
      .gate_policy = gate_policy,
      .fingerprint_dir = config.data_dir + "/fingerprints",
      .script_bases = config.script_bases,
      .samples_dir = config.data_dir + "/samples",
      .max_sample_bytes = config.explore_max_sample_bytes,
      .explore = std::move(explore_options),
      .ethereum = ethereum ? std::optional<EthereumSettings>(ethereum->settings) : std::nullopt,
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
  if (!bound.ok()) return ListenError(config.listen, port, bound.status());
  if (local) {  // the local provisioner's agents reach the plane only here
    Status unix_listening = server->ListenUnix(config.Path(config.agent_socket), 0600);
    if (!unix_listening.ok()) {
      return Unavailable("agent_socket: " + unix_listening.message());
    }
  }
  engine.Start();  // also resumes jobs left mid-way by a previous run
  // Explore sessions: those a previous run left are found again or LOST;
  // then the idle culler runs every explore.cull_interval_seconds. A
  // shutdown leaves running sessions running (the next start finds them).
  if (auto recovered = services.explore.Recover(); !recovered.ok()) {
    log.Error("explore.recover", {{"error", recovered.status().message()}});
  }
  std::atomic<bool> culler_done{false};
  std::thread culler([&] {
    auto next = std::chrono::steady_clock::now();
    while (!culler_done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (std::chrono::steady_clock::now() < next) continue;
      next = std::chrono::steady_clock::now() +
             std::chrono::seconds(config.explore_cull_interval_seconds);
      services.explore.FlushActivity();
      auto culled = services.explore.CullOnce();
      if (!culled.ok()) {
        log.Error("explore.cull", {{"error", culled.status().message()}});
      } else if (culled->stopped + culled->lost > 0) {
        log.Info("explore.cull", {{"stopped", std::to_string(culled->stopped)},
                                  {"lost", std::to_string(culled->lost)}});
      }
    }
  });
  // ledger.backend ethereum: one indexing round every ledger.poll_seconds
  // (EthereumLedger::Sync). A failed round is logged with its cause and
  // shown by GET /api/v1/ledger; what was indexed keeps counting (Covers
  // reads the store), nothing new does until a round succeeds.
  std::atomic<bool> ledger_done{false};
  std::thread ledger_sync;
  if (ethereum) {
    ledger_sync = std::thread([&] {
      auto next = std::chrono::steady_clock::now();
      while (!ledger_done) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (std::chrono::steady_clock::now() < next) continue;
        next = std::chrono::steady_clock::now() + std::chrono::seconds(config.ledger_poll_seconds);
        Status round = Status::Ok();
        if (!ethereum->verified) {
          round = CheckDeployment(*ethereum->checker, config, ethereum->settings.contract,
                                  eth::PlaneId(pub));
          ethereum->verified = round.ok();
        }
        if (round.ok()) {
          auto synced = ethereum->ledger->Sync();
          round = synced.status();
          if (synced.ok() && (synced->added > 0 || synced->dropped > 0)) {
            log.Info("ledger.sync", {{"head", std::to_string(synced->head)},
                                     {"indexed_through", std::to_string(synced->indexed_through)},
                                     {"added", std::to_string(synced->added)},
                                     {"dropped", std::to_string(synced->dropped)}});
          }
        }
        services.ledger.RecordSync(round);
        if (!round.ok()) log.Error("ledger.sync", {{"error", round.message()}});
      }
    });
  }
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
  culler_done = true;
  culler.join();
  ledger_done = true;
  if (ledger_sync.joinable()) ledger_sync.join();
  services.explore.FlushActivity(/*force=*/true);
  engine.Stop();                           // no transition may land after the closing checkpoint
  engine.MaybeCheckpoint(/*force=*/true);  // seal the audit log's tail
  server_ptr = nullptr;
  log.Info("plane.stop", {{"clean", "true"}});
  return Status::Ok();
}

}  // namespace cce::plane
