// cce-plane serve: TLS setup, the HTTP server and graceful shutdown. The API
// itself is in api.h and api_*.cc.
#include <fcntl.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/file.h>
#include <sys/socket.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <thread>

#include "base/fd.h"
#include "ledger/ledger.h"
#include "plane/api.h"
#include "plane/attestation.h"
#include "plane/config.h"
#include "plane/job_engine.h"
#include "plane/keys.h"
#include "plane/log.h"
#include "plane/master_key.h"
#include "plane/output_store.h"
#include "plane/plane.h"
#include "store/sqlite_store.h"

namespace cce::plane {

Status Serve(const ServeOptions& options, const Clock& clock) {
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
  ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey signing_key,
                   LoadSigningKey(config.Path(config.signing_key_file)));
  ASSIGN_OR_RETURN(std::unique_ptr<MasterKey> master_key,
                   LoadFileMasterKey(config.Path(config.master_key_file)));
  store::SqliteStoreOptions so;
  so.path = config.Path(config.database_path);
  ASSIGN_OR_RETURN(std::unique_ptr<store::SqliteStore> db, store::SqliteStore::Open(so));

  std::string cert = config.Path(config.tls_cert_file);
  std::string key = config.Path(config.tls_key_file);
  std::string tls_error;
  httplib::SSLServer svr([&](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(&ctx, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(&ctx) != 1) {
      tls_error = "TLS certificate or key unusable: " + cert + ", " + key;
      return false;
    }
    return true;
  });
  if (!svr.is_valid()) return InvalidArgument(tls_error.empty() ? "TLS setup failed" : tls_error);
  const auto threads = static_cast<size_t>(config.http_threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(static_cast<size_t>(config.max_body_bytes));
  // httplib 0.11 applies the payload limit to Content-Length bodies only. A
  // chunked body is accepted only by the image blob upload, which bounds it
  // itself (api_images.cc); anywhere else it would be unbounded.
  svr.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    std::string te = req.get_header_value("Transfer-Encoding");
    for (char& ch : te) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (te.find("chunked") == std::string::npos ||
        (req.method == "PUT" && req.path.rfind("/api/v1/images/blobs/", 0) == 0)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = 413;
    res.set_header("Connection", "close");
    res.set_content(
        ErrorBody("payload_too_large", "chunked request bodies are accepted only by " +
                                           std::string("PUT /api/v1/images/blobs/{digest}"))
            .dump(),
        "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  svr.set_keep_alive_max_count(100000);
  // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to
  // every keep-alive request (bench/plane measured 344 -> ~3000 submits/s).
  svr.set_tcp_nodelay(true);
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which let a
  // second server bind the same port and share the connections.
  int listen_fd = -1;
  svr.set_socket_options([&listen_fd](int sock) {
    int yes = 1;
    (void)::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd = sock;
  });
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string code = res.status == 404   ? "not_found"
                       : res.status == 413 ? "payload_too_large"
                                           : "http_" + std::to_string(res.status);
    res.set_content(ErrorBody(code, "HTTP " + std::to_string(res.status)).dump(),
                    "application/json");
  });
  ledger::EmbeddedLedger ledger(*db, signing_key);
  ASSIGN_OR_RETURN(image::BlobStore blobs, image::BlobStore::Create(config.data_dir + "/images"));
  Api api(*db, log, clock, *master_key, ledger, blobs);
  ASSIGN_OR_RETURN(OutputStore outputs,
                   OutputStore::Open(config.data_dir + "/outputs", *master_key));
  FailClosedGate fail_closed;
  Gate* gate = options.gate_override != nullptr ? options.gate_override : &fail_closed;
  std::unique_ptr<Provisioner> provisioner = config.provisioner_backend == "fake"
                                                 ? MakeFakeProvisioner(*db, outputs, clock)
                                                 : MakeNoneProvisioner();
  if (config.provisioner_backend == "fake") {
    log.Warn("plane.fake_provisioner",
             {{"message", "FAKE provisioner: jobs are not run in a TEE; tests and demos only"}});
  }
  EngineDeps deps;
  deps.db = db.get();
  deps.ledger = &ledger;
  deps.signing_key = &signing_key;
  deps.provisioner =
      options.provisioner_override != nullptr ? options.provisioner_override : provisioner.get();
  deps.gate = gate;
  deps.clock = &clock;
  deps.log = &log;
  deps.credential_ttl_seconds = config.credential_ttl_seconds;
  deps.audit_checkpoint_every = config.audit_checkpoint_every;
  JobEngine engine(deps);
  api.SetJobEngine(&engine);
  api.SetOutputStore(&outputs);
  ASSIGN_OR_RETURN(std::unique_ptr<AttestationService> attestation,
                   AttestationService::Load(config));
  api.SetKeyBroker(attestation.get(), &signing_key, config.kbs_nonce_ttl_seconds,
                   config.kbs_session_ttl_seconds);
  if (attestation->simulation_enabled()) {
    log.Warn("plane.simulated_tee",
             {{"message",
               "SIMULATED TEE ENABLED: the attestation policy accepts quotes from the "
               "development chain; keys may be released to machines that are NOT TDX VMs. "
               "Never enable this with real data."}});
  }
  {
    auto pub = signing_key.PublicKey();
    api.SetPlanePublicKey(crypto::Bytes(pub.begin(), pub.end()));
  }
  engine.Start();  // also resumes jobs left mid-way by a previous run
  api.Register(svr);

  int bound = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (bound < 0) return {StatusCode::kUnavailable, "cannot listen on " + config.listen};
  // Debian's libcpp-httplib is built with a listen backlog of 5: a burst of
  // connections (every client reconnecting after a restart) would stall for
  // a second. listen(2) again on the bound socket raises it.
  if (listen_fd >= 0) (void)::listen(listen_fd, 1024);
  log.Info("plane.start", {{"listen", host + ":" + std::to_string(bound)},
                           {"master_key", master_key->backend()},
                           {"schema", std::to_string(store::SqliteStore::LatestSchemaVersion())}});
  if (options.on_listening) options.on_listening(bound);

  std::atomic<bool> done{false};
  std::thread stopper([&] {
    while (!done && !(options.stop != nullptr && options.stop->load())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // httplib's stop() does nothing until the listen loop has started, so a
    // stop requested early must be repeated until listen_after_bind returns.
    // Graceful: in-flight requests finish, then listen returns.
    while (!done) {
      svr.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  bool ok = svr.listen_after_bind();
  done = true;
  stopper.join();
  engine.Stop();                           // no transition may land after the closing checkpoint
  engine.MaybeCheckpoint(/*force=*/true);  // seal the audit log's tail
  log.Info("plane.stop", {{"clean", ok ? "true" : "false"}});
  return Status::Ok();
}

}  // namespace cce::plane
