// Private to src/plane: the Privacy Plane's domain services. Each is a plain
// class built once from ServiceDeps, taking typed requests (src/api wire
// types) and returning StatusOr. They know nothing of HTTP: routes.cc
// adapts them to the HTTPS front, and tests call them directly. Every
// security decision goes through AuditLog, and a decision to allow whose
// audit record cannot be written is refused.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "api/wire.h"
#include "base/clock.h"
#include "base/fd.h"
#include "base/status.h"
#include "crypto/crypto.h"
#include "crypto/jwe.h"
#include "eth/eth.h"
#include "explore/backend.h"
#include "image/blob_store.h"
#include "jobspec/jobspec.h"
#include "ledger/ledger.h"
#include "plane/attestation.h"
#include "plane/config.h"
#include "plane/credential.h"
#include "plane/kbs_nonces.h"
#include "plane/log.h"
#include "plane/master_key.h"
#include "plane/output_gate.h"
#include "plane/output_store.h"
#include "store/store.h"

namespace cce::plane {

// An authenticated API user.
struct Caller {
  store::User user;
  // Set when the caller authenticated with an Explore session's SDK token
  // (ExploreSessions): the session's id. Such a caller may use only the
  // routes routes.cc marks as open to session tokens.
  std::string explore_session = {};
  std::string actor() const {
    return explore_session.empty() ? "user:" + user.name
                                   : "user:" + user.name + "@" + explore_session;
  }
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
  // Whether Check would admit `addr` now, changing nothing: an in-memory
  // look under the lock, cheap enough for the HTTP front's I/O thread
  // (http::Route::admit_quick). false: ask Check, which decides.
  bool Admits(const std::string& addr, int64_t now);
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

// Explore sessions' settings and their parts from outside the plane
// (plane.yaml explore.*, docs/explore/sessions.md).
struct ExploreOptions {
  // Where sessions' Jupyter servers run; null: sessions are refused
  // (explore.backend none).
  std::shared_ptr<explore::SessionBackend> backend = nullptr;
  std::string backend_name = "none";
  int64_t idle_timeout_seconds = 30 * 60;
  int64_t max_idle_timeout_seconds = 8 * 3600;
  int64_t max_sessions_per_user = 2;
  // The plane as browsers and sessions reach it: "https://host:port".
  std::string plane_url = "https://127.0.0.1:8443";
  std::string ca_pem = {};     // the plane's CA certificate (PEM), for the SDK
  std::string homes_dir = {};  // DATA_DIR/explore/homes: one home per consumer
  int64_t memory_mib = 2048;
  int64_t cpus = 1;
  // The Jupyter server's own last activity (unix seconds), for the culler
  // (explore::FetchJupyterStatus). Empty: only the proxy's requests count.
  std::function<StatusOr<int64_t>(const explore::Upstream&, const std::string& base_url,
                                  const crypto::SecretBytes& jupyter_token)>
      jupyter_activity = nullptr;
};

// An ethereum plane's ledger settings (plane.yaml ledger.*, docs/ledger.md):
// what GET /api/v1/ledger shows and what a wallet challenge binds.
struct EthereumSettings {
  uint64_t chain_id = 0;
  eth::Address contract = {};
  int64_t confirmations = 12;
  std::string rpc = {};  // the node's URL as clients may use it
};

struct ServiceDeps {
  store::Store& db;
  const Clock& clock;
  Logger& log;
  MasterKey& master_key;
  // The one rental check (Rentals::CheckCoverage) asks `ledger`; `embedded`
  // is the same ledger when it is the embedded one (Rentals::Rent records
  // there), null on an ethereum plane (rentals are transactions).
  ledger::Ledger& ledger;
  ledger::EmbeddedLedger* embedded = nullptr;
  image::BlobStore& blobs;
  OutputStore& outputs;
  AttestationService& attestation;
  const crypto::Ed25519PrivateKey& signing_key;
  crypto::Bytes plane_public_key;          // verifies checkpoints, rentals, credentials
  std::function<void()> on_job_submitted;  // wakes the job engine; may be empty
  int64_t kbs_nonce_ttl_seconds = 60;
  int64_t kbs_session_ttl_seconds = 300;
  PlaneLimits job_limits = {};
  // Where the store also appends every signed checkpoint (empty: nowhere);
  // AuditTrail verifies against it.
  std::string checkpoint_file = {};
  int64_t max_concurrent_downloads = 8;  // output downloads streaming at once (Jobs)
  // Key broker: unused, unexpired nonces one credential may hold at once.
  int64_t kbs_max_nonces_per_credential = 8;
  // Key broker: unused nonces the plane holds at once, over all credentials
  // (in memory; about 300 bytes each).
  int64_t kbs_max_nonces = 16384;
  // Catalog: file:// locations must lie under one of these (absolute,
  // normalized by LoadConfig); empty refuses every file:// location.
  std::vector<std::string> dataset_allowed_roots = {};
  int64_t dataset_max_manifest_bytes = int64_t{64} << 20;
  // Bytes of image blobs one user may have stored (plane.yaml images.quota_bytes).
  int64_t image_quota_bytes = int64_t{20} << 30;
  // Largest output bundle an agent may submit (plane.yaml limits.max_output_bytes).
  int64_t max_output_bytes = int64_t{1} << 30;
  // Distinct reviewers' approvals that release a held output
  // (plane.yaml review.required_approvals, 1 or 2).
  int64_t review_required_approvals = 1;
  // The Output Gate: its policy (plane.yaml gate.policy_file) and where the
  // sealed dataset fingerprints rest (DATA_DIR/fingerprints).
  gate::Policy gate_policy = {};
  std::string fingerprint_dir = {};
  // Curated bases of script jobs (plane.yaml jobs.script_bases; ScriptJobs).
  std::vector<ScriptBase> script_bases = {};
  // Published dataset samples (Samples): DATA_DIR/samples, and the most
  // bytes one sample may hold (plane.yaml explore.max_sample_bytes). Empty
  // samples_dir: publishing and reading samples is kFailedPrecondition.
  std::string samples_dir = {};
  int64_t max_sample_bytes = int64_t{1} << 30;
  // Explore sessions (ExploreSessions).
  ExploreOptions explore = {};
  // Set on an ethereum plane (ledger.backend ethereum); nullopt: embedded.
  std::optional<EthereumSettings> ethereum = std::nullopt;
};

// A user's name, from `cce-plane user add` or POST /api/v1/users: 1..64
// characters from a-z, 0-9, '-', '_', '.'. kInvalidArgument naming `field`.
Status CheckUserName(const std::string& name, std::string_view field);

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
  Catalog(ServiceDeps& deps, AuditLog& audit, Users& users, OutputGate& gate)
      : d_(deps), audit_(audit), users_(users), gate_(gate) {}
  // Registers a dataset; its key is sealed under the master key at once and
  // wiped from the request. A file:// location is opened with the key and
  // its tabular files fingerprinted for the Output Gate (a file that cannot
  // be is kInvalidArgument naming it).
  StatusOr<api::Dataset> Register(const Caller& caller, api::RegisterDatasetRequest request);
  StatusOr<api::DatasetList> List();
  StatusOr<api::Dataset> Get(const std::string& name);

 private:
  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
  OutputGate& gate_;
};

// Rentals, and the one rule every step that touches data checks: does the
// consumer's rental of each dataset cover [from, until)?
class Rentals {
 public:
  Rentals(ServiceDeps& deps, AuditLog& audit, Users& users)
      : d_(deps), audit_(audit), users_(users) {}
  // Embedded ledger: a signed, chained rental record. Ethereum: rentals are
  // transactions (`cce rent`), so kFailedPrecondition saying so (audited).
  StatusOr<api::Rental> Rent(const Caller& caller, const api::RentRequest& request);
  // Consumers see their own (ethereum: paid by their linked addresses),
  // providers those of their datasets, operators all, reviewers none.
  StatusOr<api::RentalList> List(const Caller& caller);
  // OK when every dataset is in the catalog and covered; otherwise
  // kNotFound (an unknown dataset, naming it) or kPermissionDenied naming
  // the first dataset not covered. Not audited: callers audit their own
  // decision.
  Status CheckCoverage(int64_t consumer_id, const std::vector<std::string>& datasets, int64_t from,
                       int64_t until);
  // What POST /api/v1/rentals answers on an ethereum plane.
  static constexpr std::string_view kEthereumRentHint =
      "rentals on this plane are Ethereum transactions: cce rent NAME --days N --key-file F";

 private:
  StatusOr<api::RentalList> ListChain(const Caller& caller);

  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
};

// The ledger as clients see it (GET /api/v1/ledger): its backend and, on
// an ethereum plane, the chain, the contract, the plane's id on it, how far
// the index reaches and the background sync's last error.
class LedgerView {
 public:
  explicit LedgerView(ServiceDeps& deps) : d_(deps) {}
  StatusOr<api::LedgerInfo> Info();
  // The dataset's id on the contract (eth::ChainDatasetId). kNotFound for an
  // unknown dataset; kFailedPrecondition on an embedded plane.
  StatusOr<api::LedgerDataset> Dataset(const std::string& name);
  // The outcome of a background sync round (server.cc): an error is shown by
  // Info until a round succeeds.
  void RecordSync(const Status& result);

 private:
  ServiceDeps& d_;
  std::mutex mu_;  // guards last_error_
  std::optional<std::string> last_error_;
};

// Ethereum wallets (docs/ledger.md, "Linking a wallet"): a consumer proves an
// address is theirs by personal_sign-ing (EIP-191) a message the plane made
// for them; the signer is recovered (secp256k1) and must be the address.
// Rentals that address pays then count for the consumer (EthereumLedger::
// Covers). Challenges live in memory: single use, kChallengeTtlSeconds, at
// most kMaxChallengesPerUser unused ones per user (a restart voids them).
// Every link decision is audited as `wallet.link` on "wallet:<address>".
// Only on an ethereum plane (else kFailedPrecondition).
class Wallets {
 public:
  Wallets(ServiceDeps& deps, AuditLog& audit, Users& users)
      : d_(deps), audit_(audit), users_(users) {}
  static constexpr int64_t kChallengeTtlSeconds = 300;
  static constexpr size_t kMaxChallengesPerUser = 8;

  // The message to sign, binding the plane id, the chain id, the caller's
  // name, the address (EIP-55), a fresh 128-bit nonce and the expiry:
  //   cce4long wallet link\nplane: 0x<64 hex>\nchain: N\nuser: NAME\n
  //   address: 0x<EIP-55>\nnonce: <32 hex>\nexpires: YYYY-MM-DDTHH:MM:SSZ
  // (no trailing newline). kInvalidArgument naming body.address for a bad
  // address (mixed case must be a valid checksum); kResourceExhausted with
  // kMaxChallengesPerUser unused ones; kAlreadyExists for a linked address.
  StatusOr<api::WalletChallenge> Challenge(const Caller& caller,
                                           const api::WalletChallengeRequest& request);
  // Links request.address to the caller when request.nonce is a challenge
  // issued to the caller (another user's is refused and left unspent),
  // unexpired, for that same address, and request.signature over its message
  // recovers to the address. The nonce is spent by any attempt of its user.
  // Refusals: kPermissionDenied (audited deny), kAlreadyExists when the
  // address is linked already (to anyone), kInvalidArgument for a malformed
  // field. The link and its `wallet.link` allow record are one store write.
  StatusOr<api::Wallet> Link(const Caller& caller, const api::WalletLinkRequest& request);
  // The caller's links (operators: everyone's), oldest first.
  StatusOr<api::WalletList> List(const Caller& caller);

 private:
  struct Pending {
    int64_t user_id = 0;
    eth::Address address;
    std::string message;
    int64_t expires_at = 0;
  };
  StatusOr<const EthereumSettings*> Settings() const;

  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
  std::mutex mu_;                           // guards pending_
  std::map<std::string, Pending> pending_;  // by nonce (32 hex)
};

// Container images (docs/images.md): blobs by digest, tags on validated
// manifests, each in its owner's scope or the operator-curated public one
// (names under "library/"). A user sees, probes, references in a manifest
// and runs only its own and public images and blobs; uploads count against
// a per-user quota; blobs nothing references are collected.
class Images {
 public:
  Images(ServiceDeps& deps, AuditLog& audit, Users& users)
      : d_(deps), audit_(audit), users_(users) {}
  // exists is true only for a blob the caller uploaded or a public image's.
  StatusOr<api::BlobStatus> BlobStatus(const Caller& caller, const std::string& digest);
  // Before an upload's body is read: kResourceExhausted when the announced
  // length (if any) does not fit in the caller's remaining quota.
  Status AdmitUpload(const Caller& caller, std::optional<uint64_t> content_length);
  // The blob's bytes are read from `fd` (at offset 0) and stored only if
  // they hash to `digest` and fit in the caller's quota.
  StatusOr<api::StoredBlob> PutBlob(const Caller& caller, const std::string& digest, int fd);
  StatusOr<api::TaggedImage> Tag(const Caller& caller, const std::string& name,
                                 const std::string& tag, const std::string& manifest);
  // Removes the caller's tag (an operator's, for library/); returns it.
  StatusOr<api::TaggedImage> Untag(const Caller& caller, const std::string& name,
                                   const std::string& tag);
  // The caller's and public images (operators and reviewers: all).
  StatusOr<api::ImageList> List(const Caller& caller);
  // The manifest digest a job of `caller` runs for `ref`: a name:tag of its
  // own (else library/NAME:TAG), or the digest of a manifest one of its or
  // a public tag points at. Anything else (another user's image, a layer or
  // config digest) is kInvalidArgument naming `field`.
  StatusOr<std::string> ResolveForJob(const Caller& caller, const ImageRef& ref,
                                      const std::string& field);
  struct GcReport {
    int64_t records_removed = 0;
    int64_t blobs_removed = 0;
    int64_t bytes_removed = 0;
  };
  // Drops blob records no tag or unfinished job of their scope references
  // (once older than kUploadGraceSeconds, so a push in progress keeps its
  // layers), then unlinks stored blobs that no record, tag or unfinished job
  // references. Runs after a tag moves or is removed, and with a push when
  // the last collection is kCollectEverySeconds old.
  StatusOr<GcReport> CollectGarbage(const std::string& actor);
  static constexpr int64_t kUploadGraceSeconds = 24 * 3600;
  static constexpr int64_t kCollectEverySeconds = 3600;
  std::string blob_upload_dir() const { return d_.blobs.root() + "/tmp"; }

 private:
  StatusOr<uint64_t> UsedBytes(int64_t user_id, const std::string& except_digest);
  StatusOr<GcReport> CollectGarbageLocked(const std::string& actor);

  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
  // Serializes the blob records and tags with garbage collection; guards
  // in_flight_bytes_ and in_flight_blobs_ (uploads being published now,
  // which collection never removes and quotas count).
  std::mutex mu_;
  std::map<int64_t, uint64_t> in_flight_bytes_;
  std::multiset<std::string> in_flight_blobs_;
  int64_t last_collection_ = 0;  // clock time of the last collection
};

// A job as the API shows it (the consumer by name).
api::Job JobToWire(const store::Job& job, Users& users);

// Privacy Mode jobs.
class Jobs {
 public:
  Jobs(ServiceDeps& deps, AuditLog& audit, Users& users, Rentals& rentals, Images& images)
      : d_(deps), audit_(audit), users_(users), rentals_(rentals), images_(images) {}
  struct Submitted {
    api::Job job;
    bool created = false;  // false: an idempotent replay
  };
  // Checks the spec, its limits, the rentals for the whole timeout and the
  // image, pins the digest and records the job. Messages about the spec start
  // with spec_name (the client's X-Cce-Spec-Name: "job.yaml:3:9: spec.image:
  // ..."), or "spec" when it is empty; a name that is not 1..255 printable
  // ASCII characters is kInvalidArgument.
  StatusOr<Submitted> Submit(const Caller& caller, const std::string& spec_text,
                             const std::string& idempotency_key,
                             const std::string& spec_name = "");
  struct ListRequest {
    std::optional<std::string> state;
    int64_t limit = 1000;
    int64_t offset = 0;
  };
  StatusOr<api::JobList> List(const Caller& caller, const ListRequest& request);
  StatusOr<api::JobDetail> Get(const Caller& caller, const std::string& job_id);
  struct Output {
    std::unique_ptr<OutputReader> reader;  // the plaintext, one authenticated segment at a time
    uint64_t size = 0;
    std::string digest;          // recorded at submission; the reader checks it at the end
    std::shared_ptr<void> slot;  // one of max_concurrent_downloads, held until destroyed
  };
  // Only the job's consumer, only once RELEASED; every answer audited. At
  // most ServiceDeps::max_concurrent_downloads outputs are open at once:
  // beyond, kUnavailable (audited; retry shortly).
  StatusOr<Output> DownloadOutput(const Caller& caller, const std::string& job_id);
  StatusOr<api::Job> Cancel(const Caller& caller, const std::string& job_id);

 private:
  // A job another consumer owns is kNotFound, as if it did not exist.
  StatusOr<store::Job> Load(const Caller& caller, const std::string& job_id);

  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
  Rentals& rentals_;
  Images& images_;
  // Downloads in progress; shared with the slots, which may outlive a request.
  std::shared_ptr<std::atomic<int64_t>> downloads_ = std::make_shared<std::atomic<int64_t>>(0);
};

// Script jobs (docs/explore/script-jobs.md): a consumer's script run on a
// curated base image (ServiceDeps::script_bases). Submit builds a derived
// image -- the base's manifest plus one gzip layer holding
// <workdir>/<script> (mode 0444, root, mtime 0) and a config with that
// layer's diff_id, WorkingDir <workdir> and no Cmd -- stores its blobs in
// the caller's scope through Images (PutBlob, Tag: the push path, under the
// caller's quota), tags it script/<job name>:<first 12 hex of its digest>,
// and submits an ordinary job through Jobs::Submit (the same rental check,
// validation and audit as POST /api/v1/jobs) running
// base.command + ["<workdir>/<script>"] + args. The same base, script and
// name give the same image digest.
class ScriptJobs {
 public:
  ScriptJobs(ServiceDeps& deps, AuditLog& audit, Images& images, Jobs& jobs)
      : d_(deps), audit_(audit), images_(images), jobs_(jobs) {}

  static constexpr size_t kMaxScriptBytes = size_t{1} << 20;
  // The route's body cap: a kMaxScriptBytes script in base64 and the rest.
  static constexpr uint64_t kMaxRequestBytes = kMaxScriptBytes / 3 * 4 + (64 << 10);

  // The configured bases (any authenticated user).
  api::BaseList Bases() const;

  // Errors, each naming the field ("body.base", "body.script.name",
  // "body.script.content_base64", "body.datasets[i].name", ...):
  // kInvalidArgument for an unknown base, a script name not
  // [A-Za-z0-9._-]{1,100} ending in .py or .sh (not starting with '.'),
  // content that is not base64 or over kMaxScriptBytes, a job spec the
  // request makes that ParseJobSpec refuses; kFailedPrecondition when the
  // base's image is not a public image on the plane (only library/ images,
  // whose blobs every user may reference, can be bases); the quota's
  // kResourceExhausted; then whatever Jobs::Submit refuses (a missing
  // rental is its audited kPermissionDenied). On success the job is also
  // audited as job.script.submit (base, script sha256, image digest); if
  // that record cannot be written the job is cancelled and the error
  // returned.
  StatusOr<Jobs::Submitted> Submit(const Caller& caller, const api::ScriptJobRequest& request,
                                   const std::string& idempotency_key);

 private:
  ServiceDeps& d_;
  AuditLog& audit_;
  Images& images_;
  Jobs& jobs_;
};

// Where a dataset's latest published sample rests on the plane's host, for
// the sessions service to mount read-only at /data/<dataset>/.
struct SampleLocation {
  std::string dir;  // absolute: DATA_DIR/samples/<dataset id>/v<version>
  int64_t version = 0;
  std::string dataset;  // the dataset's name
};

// Dataset samples (docs/explore/samples.md): desensitized files a dataset's
// owner publishes and the plane keeps in clear, one directory per version
// under ServiceDeps::samples_dir (<dataset id>/v<N>/, files 0444, dirs 0555,
// owned by the plane's user, with the listing beside it in v<N>.json), the
// store's samples row pinning the listing's digest. The latest
// kVersionsKept versions are kept: a running Explore session may still
// bind the previous one.
//
// Read rule (CheckRead, the one function every read goes through): the
// dataset's owner, or a consumer whose rental covers now (Rentals::
// CheckCoverage, the check job submission uses). Operators and reviewers:
// no, since a sample is derived from the confidential data and they have no
// business reading it. Every refusal is audited (AuditLog::Deny); an allowed
// listing is audited as dataset.sample.read (files fetched after it are
// not, one record per listing), and one whose record cannot be written is
// refused.
class Samples {
 public:
  Samples(ServiceDeps& deps, AuditLog& audit, Rentals& rentals)
      : d_(deps), audit_(audit), rentals_(rentals) {}

  static constexpr uint64_t kMaxFiles = 10'000;
  static constexpr int64_t kVersionsKept = 2;

  // Before any body byte of a publication: the dataset exists (kNotFound),
  // the caller owns it (kPermissionDenied, audited as
  // dataset.sample.publish) and an announced length fits in
  // max_upload_bytes() (kResourceExhausted). Creates upload_dir().
  Status AdmitPublish(const Caller& caller, const std::string& dataset,
                      std::optional<uint64_t> content_length);
  // Unpacks the tar read from `tar_fd` (from offset 0) as the dataset's next
  // version, records it (audited as dataset.sample.publish, in the same
  // transaction) and prunes versions older than kVersionsKept. Refusals
  // (audited): those of AdmitPublish; kInvalidArgument naming the tar member
  // that is not a plain file or directory, or has an absolute, '..', or
  // over-long name; kResourceExhausted over kMaxFiles files or
  // max_sample_bytes bytes. Nothing is left half-written: the files are
  // unpacked into a temporary directory renamed into place only when
  // complete, and removed again when the record cannot be written.
  StatusOr<api::SampleInfo> Publish(const Caller& caller, const std::string& dataset,
                                    int tar_fd);
  // The latest version's listing (CheckRead; audited as dataset.sample.read).
  // kNotFound: no such dataset, or no published sample; kDataLoss: the
  // listing on disk does not match the recorded digest.
  StatusOr<api::SampleInfo> Get(const Caller& caller, const std::string& dataset);
  // One file of the latest version, to stream (CheckRead; not audited when
  // allowed). `path` as listed; anything else is kNotFound.
  struct File {
    UniqueFd fd;  // read-only, at offset 0
    uint64_t size = 0;
    std::string path;
    int64_t version = 0;
  };
  StatusOr<File> OpenFile(const Caller& caller, const std::string& dataset,
                          const std::string& path);
  // For the sessions service (no caller: it checks the rental itself, with
  // CheckRead or Rentals::CheckCoverage). kNotFound: "dataset X has no
  // published sample".
  StatusOr<SampleLocation> Latest(int64_t dataset_id);
  // The read rule above for `dataset`; a refusal is audited as `action` on
  // "dataset:<name>". kPermissionDenied says how to get access.
  Status CheckRead(const Caller& caller, const store::Dataset& dataset, const std::string& action);

  // Where the route streams an upload (kToFile) before Publish reads it.
  std::string upload_dir() const { return d_.samples_dir + "/.uploads"; }
  // The largest tar accepted: max_sample_bytes plus the headers and padding
  // of kMaxFiles files and as many directories.
  uint64_t max_upload_bytes() const;

 private:
  StatusOr<store::Dataset> LoadDataset(const std::string& name);
  StatusOr<api::SampleInfo> ReadListing(const store::Dataset& dataset,
                                        const store::Sample& sample);
  std::string DatasetDir(int64_t dataset_id) const;

  ServiceDeps& d_;
  AuditLog& audit_;
  Rentals& rentals_;
  std::mutex publish_mu_;  // one publication at a time: version choice, rename, prune
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
  const crypto::HmacSha256 session_mac_ = KbsSessionMac(d_.signing_key);  // makes sessions
  FailureLimiter limiter_;
  // Issued nonces, in memory only: a restart forgets them (fails closed).
  KbsNonceTable nonces_{static_cast<size_t>(std::max<int64_t>(1, d_.kbs_max_nonces))};
  // TEE keys checked at /attest, by the canonical JWK their session carries
  // (exact text), so /resource does not parse and check the point again.
  // A miss parses as before. At most kMaxTeeKeys, the oldest dropped first.
  static constexpr size_t kMaxTeeKeys = 4096;
  std::optional<crypto::JwkPublicKey> TeeKey(const std::string& jwk);
  void RememberTeeKey(const std::string& jwk, const crypto::JwkPublicKey& key);
  std::mutex tee_keys_mu_;  // guards the two below
  std::map<std::string, crypto::JwkPublicKey> tee_keys_;
  std::vector<std::string> tee_keys_order_;  // a ring of kMaxTeeKeys: insertion order
  size_t tee_keys_next_ = 0;
};

// The job's agent, inside the attested TEE (docs/attestation.md, "Agent
// routes"): it reports progress, fetches the job's pinned image and submits
// the output bundle signed with its TEE key. Every call is authenticated by
// the key broker session ("Bearer <session>") from /kbs/v0/attest; every
// decision audited on "job:<id>" by actor "tee:<addr>"; a decision whose
// audit record cannot be written is refused.
//
// Session rule (one function, VerifyAgentSession): the plane's MAC
// holds, the job exists, the session's credential is the one that attested
// the job, the job is in one of the states the call allows, and now < the
// job's deadline. The session's own expires_at (kbs_session_ttl_seconds)
// bounds key release only; agent calls accept it until the job's deadline.
class AgentReports {
 public:
  AgentReports(ServiceDeps& deps, AuditLog& audit, Users& users)
      : d_(deps), audit_(audit), users_(users) {}

  // What an authenticated agent call knows.
  struct AgentSession {
    KbsSessionClaims claims;
    store::Job job;
  };
  // The session rule above, audited as a refusal of `action` when it fails:
  // kUnauthenticated (no or malformed bearer token, bad signature),
  // kPermissionDenied (unknown job, other credential, past the deadline),
  // kFailedPrecondition (the job is not in one of `states`).
  StatusOr<AgentSession> Authenticate(const std::string& remote_addr,
                                      std::string_view authorization, const std::string& action,
                                      const std::vector<store::JobState>& states);

  // {state: RUNNING}: ATTESTED -> RUNNING. {state: FAILED, reason}: ATTESTED
  // or RUNNING -> FAILED with reason "agent: <reason>" (non-printable bytes
  // replaced, capped at kMaxReasonBytes). Anything else kFailedPrecondition
  // (a wrong state) or kInvalidArgument (an unknown target state). Returns
  // the job as it now is.
  static constexpr size_t kMaxReasonBytes = 512;
  StatusOr<api::Job> Report(const std::string& remote_addr, std::string_view authorization,
                            const api::AgentReportRequest& request);

  // What the agent runs (ATTESTED or RUNNING): the stored spec, the pinned
  // image digest, the deadline, and each dataset's mount path, location and
  // key id. Audited as agent.job.
  StatusOr<api::AgentJob> Job(const std::string& remote_addr, std::string_view authorization);

  // The job's pinned image manifest, byte for byte as stored (ATTESTED or
  // RUNNING).
  struct Manifest {
    std::string bytes;
    std::string digest;      // "sha256:<hex>", the job's image_digest
    std::string media_type;  // from the manifest's mediaType ("" if absent)
  };
  StatusOr<Manifest> ImageManifest(const std::string& remote_addr, std::string_view authorization);

  // One blob of the job's image, to stream: only the pinned manifest's
  // config and layer digests (any other digest is kPermissionDenied,
  // audited); kNotFound if the blob store lost it.
  struct Blob {
    UniqueFd fd;  // read-only, at offset 0
    uint64_t size = 0;
    std::string digest;
  };
  StatusOr<Blob> ImageBlob(const std::string& remote_addr, std::string_view authorization,
                           const std::string& digest);

  // An output bundle being received (RUNNING jobs only). Plaintext goes
  // straight into an OutputWriter (sealed a segment at a time; nothing in
  // memory beyond a segment, nothing in plaintext on disk). Destroyed
  // without Finish, the partial output is discarded and the refusal audited.
  class OutputUpload {
   public:
    ~OutputUpload();
    OutputUpload(const OutputUpload&) = delete;
    OutputUpload& operator=(const OutputUpload&) = delete;
    // The next bytes of the bundle. Past the announced length: kInvalidArgument
    // (audited; the upload is dead, as after any error).
    Status Write(crypto::ByteSpan piece);
    uint64_t received() const;

   private:
    friend class AgentReports;
    struct Impl;
    explicit OutputUpload(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };
  struct OutputHeaders {
    std::string digest;                      // X-Cce-Bundle-Digest: "sha256:<hex>"
    std::string signature;                   // X-Cce-Bundle-Signature: base64url(P1363 r||s)
    std::optional<uint64_t> content_length;  // announced, when known
  };
  // Before any body byte is accepted: the session (RUNNING, no output yet),
  // the headers' syntax (kInvalidArgument naming the header), the length
  // (required: the sealed file's header fixes it; at most max_output_bytes,
  // else kInvalidArgument) and the signature over
  // api::OutputSigningInput(job, announced digest) with the session's TEE
  // key (else kPermissionDenied). All refusals audited.
  StatusOr<std::unique_ptr<OutputUpload>> BeginOutput(const std::string& remote_addr,
                                                      std::string_view authorization,
                                                      const OutputHeaders& headers);
  // After the last byte: all announced bytes arrived and their SHA-256 is
  // the announced (signed) digest (else kInvalidArgument), the job is still
  // RUNNING without an output; then the output is recorded and the job moves
  // to OUTPUT_SUBMITTED (waking the engine). Any failure: no output
  // recorded, refusal audited.
  StatusOr<api::AgentOutputReceipt> FinishOutput(std::unique_ptr<OutputUpload> upload);
  int64_t max_output_bytes() const { return d_.max_output_bytes; }

 private:
  StatusOr<AgentSession> CheckSession(std::string_view authorization,
                                      const std::vector<store::JobState>& states,
                                      std::string* job_id);

  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
  const crypto::HmacSha256 session_mac_ = KbsSessionMac(d_.signing_key);  // checks sessions
  std::mutex finish_mu_;  // one FinishOutput at a time: check, publish, record
};

// Review of held outputs (docs/review.md). Reviewers see what the gate
// found and the output's files, and decide; `review_required_approvals`
// approvals by distinct reviewers release the output, one rejection rejects.
// Operators may list the queue but neither see findings and files nor
// decide. Every answer about a job is audited on "job:<id>" (review.show,
// review.file, review.approve, review.reject; allow or deny), and a decision
// (showing data is one) whose record cannot be written is refused.
class Reviews {
 public:
  Reviews(ServiceDeps& deps, AuditLog& audit, Users& users)
      : d_(deps), audit_(audit), users_(users) {}

  static constexpr size_t kMaxReasonBytes = 2000;
  static constexpr int64_t kMaxListedFiles = 100'000;  // the agent's bundle entry cap

  struct ListRequest {
    bool decided = false;  // false: HELD jobs, oldest first; true: settled ones, newest first
    int64_t limit = 100;   // decided: 1..1000
  };
  // Reviewers and operators (others: kPermissionDenied, audited as review.list).
  StatusOr<api::ReviewList> List(const Caller& caller, const ListRequest& request);
  // Reviewers only. A job the gate did not hold is kNotFound. Walks the
  // sealed bundle's tar a segment at a time for the file list.
  StatusOr<api::ReviewDetail> Get(const Caller& caller, const std::string& job_id);

  // One file of a held output, read from the sealed bundle as it is sent.
  class FileStream {
   public:
    virtual ~FileStream() = default;
    // Fills a prefix of `out`; 0 at the end of the file.
    virtual StatusOr<size_t> Read(std::span<uint8_t> out) = 0;
  };
  struct File {
    std::string path;
    uint64_t size = 0;
    // By content: "text/plain; charset=utf-8" (valid UTF-8 without control
    // bytes in the first kSniffBytes), "image/png", "image/jpeg", else
    // "application/octet-stream" with `attachment` set.
    std::string content_type;
    bool attachment = false;
    std::unique_ptr<FileStream> stream;
    std::shared_ptr<void> slot;  // one of max_concurrent_downloads, held until destroyed
  };
  static constexpr size_t kSniffBytes = 8192;
  // Reviewers only, while the held job is HELD, APPROVED, REJECTED or
  // RELEASED; `path` exactly as listed by Get (else kNotFound). Audited as
  // review.file before the first byte; kUnavailable beyond
  // max_concurrent_downloads streams.
  StatusOr<File> OpenFile(const Caller& caller, const std::string& job_id,
                          const std::string& path);

  // Reviewers only. `request.reason`: 1..kMaxReasonBytes bytes of valid
  // UTF-8 without control characters (kInvalidArgument naming body.reason).
  // kAlreadyExists when the caller already decided on the job,
  // kFailedPrecondition when it is not HELD (or not held by the gate),
  // kUnavailable when the decision could not be recorded with its audit
  // record (nothing decided). Returns the review as it now is.
  StatusOr<api::ReviewDetail> Approve(const Caller& caller, const std::string& job_id,
                                      const api::ReviewDecisionRequest& request);
  StatusOr<api::ReviewDetail> Reject(const Caller& caller, const std::string& job_id,
                                     const api::ReviewDecisionRequest& request);

 private:
  StatusOr<api::ReviewDetail> Decide(const Caller& caller, const std::string& job_id,
                                     const api::ReviewDecisionRequest& request,
                                     store::ReviewDecision decision);
  StatusOr<api::ReviewDetail> Detail(const store::Job& job, const store::Output& output);

  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
  std::shared_ptr<std::atomic<int64_t>> streams_ = std::make_shared<std::atomic<int64_t>>(0);
};

// The release rule for reviewed outputs (Jobs::DownloadOutput): OK only when
// `job` is RELEASED, its output carries the gate's "hold" verdict, its last
// moves were HELD -> APPROVED -> RELEASED, and the recorded decisions are
// approvals only (at least one). Otherwise kFailedPrecondition saying why.
Status CheckReleasedByReview(store::Store& db, const store::Job& job);
// What the job's consumer sees of a settled review (JobDetail.review):
// nullopt while no decision settled the job.
StatusOr<std::optional<api::JobReview>> ConsumerReview(store::Store& db, Users& users,
                                                       const store::Job& job);

// The audit log over the API: listing and verification.
class AuditTrail {
 public:
  AuditTrail(ServiceDeps& deps, AuditLog& audit) : d_(deps), audit_(audit) {}
  StatusOr<api::AuditList> List(const store::AuditFilter& filter);
  // Server-side verification of both chains, with the checkpoint file.
  StatusOr<api::AuditVerifyReport> Verify(const Caller& caller);
  // Signs the audit log's current head (unless already checkpointed) and
  // returns the plane key and every signed checkpoint of both chains, from
  // the database and the checkpoint file: what a client verifies against.
  StatusOr<api::AuditCheckpoints> Checkpoints();
  // The rental chain as hashed (ids, hashes, signatures), for client checks.
  StatusOr<api::ChainRentalList> RentalChain(const store::RentalFilter& filter);

 private:
  StatusOr<store::CheckpointFileContents> ReadCheckpointFile();

  ServiceDeps& d_;
  AuditLog& audit_;
};

// Explore sessions (docs/explore/sessions.md): a consumer's Jupyter server
// over the desensitized samples of datasets they rent now, reached only
// through the plane's proxy at /explore/<id>/ with the consumer's login.
// Secrets: the Jupyter token is derived from the master key (HKDF of the
// "explore-jupyter" key and the session id), never stored; the SDK token,
// the one-time login code and the browser cookie are 32 random bytes of
// which only SHA-256 is stored. Every decision is audited on
// "explore:<id>" (explore.start, explore.stop, explore.lost, explore.fail,
// explore.login_url, explore.login; refusals as deny); a start whose
// record cannot be written is refused.
class ExploreSessions {
 public:
  ExploreSessions(ServiceDeps& deps, AuditLog& audit, Users& users, Rentals& rentals,
                  Samples& samples)
      : d_(deps), audit_(audit), users_(users), rentals_(rentals), samples_(samples) {}
  ExploreSessions(const ExploreSessions&) = delete;
  ExploreSessions& operator=(const ExploreSessions&) = delete;

  static constexpr std::string_view kCookieName = "cce_explore";
  static constexpr int64_t kLoginCodeTtlSeconds = 120;
  static constexpr int64_t kActivityFlushSeconds = 30;
  static constexpr int64_t kMinIdleTimeoutSeconds = 60;
  // SDK tokens: this prefix + 64 hex digits (API tokens start "cce_").
  static constexpr std::string_view kSdkTokenPrefix = "cxs_";

  // Consumers only (not with a session token). Datasets default to every
  // one the caller rents now; each must be rented now (Rentals::
  // CheckCoverage: kPermissionDenied naming it) and have a published sample
  // (kFailedPrecondition naming it); none at all is kFailedPrecondition.
  // idle_timeout_seconds: kMinIdleTimeoutSeconds..max_idle_timeout_seconds
  // (else kInvalidArgument naming the limit). Over max_sessions_per_user
  // live: kResourceExhausted. Records STARTING (audited explore.start;
  // refused if the record cannot be written), starts the backend, then
  // RUNNING (or FAILED with the backend's reason, returned as its error).
  // Refusals audited.
  StatusOr<api::ExploreSession> Start(const Caller& caller,
                                      const api::StartExploreRequest& request);
  // The caller's sessions, newest first (operators: everyone's).
  StatusOr<api::ExploreSessionList> List(const Caller& caller);
  // Another consumer's session is kNotFound (as if it did not exist).
  StatusOr<api::ExploreSession> Get(const Caller& caller, const std::string& id);
  // Owner or operator; stops the server and records STOPPED. A session no
  // longer live is returned as it is.
  StatusOr<api::ExploreSession> Stop(const Caller& caller, const std::string& id);
  // Owner only, RUNNING only: a fresh one-time login URL (the previous
  // unused one dies), valid kLoginCodeTtlSeconds.
  StatusOr<api::ExploreLogin> NewLoginUrl(const Caller& caller, const std::string& id);

  struct LoginResult {
    std::string set_cookie;  // the whole Set-Cookie header value
    std::string location;    // where to send the browser: /explore/<id>/tree
  };
  // GET /explore/<id>/login?code=C: the code must be the session's unused,
  // unexpired one (kPermissionDenied otherwise, audited; rate-limited per
  // address like authentication: kResourceExhausted). The new cookie
  // replaces the session's previous one.
  StatusOr<LoginResult> Login(const std::string& id, const std::string& code,
                              const std::string& remote_addr);

  struct ProxyTarget {
    explore::Upstream upstream;
    std::string jupyter_authorization;  // "token <jupyter token>": the proxy adds it
  };
  // For a request to /explore/<id>/...: the `Cookie` header's cce_explore
  // value (or `Authorization: Bearer <owner's API token>`) must be the
  // session owner's and the session RUNNING: else kUnauthenticated,
  // kPermissionDenied (audited) or kFailedPrecondition (not RUNNING). The
  // proxy strips the request's Cookie and Authorization headers before
  // adding jupyter_authorization. Records the request time (flushed to the
  // store at most every kActivityFlushSeconds).
  StatusOr<ProxyTarget> Target(const std::string& id, std::string_view cookie_header,
                               std::string_view authorization, const std::string& remote_addr);

  // Users::Authenticate's second kind of token: when `token` is a live
  // session's SDK token and its owner is enabled, the owner as a Caller
  // with explore_session set. kNotFound for anything else.
  static StatusOr<Caller> AuthenticateSdkToken(store::Store& db, std::string_view token);

  struct CullReport {
    int64_t checked = 0;
    int64_t stopped = 0;
    int64_t lost = 0;
  };
  // One pass of the idle culler over RUNNING sessions: gone -> LOST; idle
  // (since the max of Jupyter's last activity and the proxy's last request)
  // longer than its timeout -> STOPPED "idle for N min"; a dataset no longer
  // rented -> STOPPED "rental of X ended". Errors only when the sessions
  // cannot be listed; a session that fails is logged and skipped.
  StatusOr<CullReport> CullOnce();
  // At plane start: every STARTING/RUNNING session is observed; running ->
  // kept (upstream refreshed), anything else -> LOST.
  StatusOr<CullReport> Recover();
  // Writes the proxy's pending activity to the store (at most every
  // kActivityFlushSeconds per session unless `force`).
  void FlushActivity(bool force = false);

  // The Jupyter token of session `id` (derived, never stored).
  StatusOr<crypto::SecretBytes> JupyterToken(const std::string& id);

 private:
  StatusOr<api::ExploreSession> ToWire(const store::ExploreSession& x);
  StatusOr<store::ExploreSession> LoadVisible(const Caller& caller, const std::string& id,
                                              bool operators_too);
  StatusOr<store::ExploreSession> Finish(const store::ExploreSession& x, store::ExploreState to,
                                         const std::string& actor, const std::string& action,
                                         const std::string& reason);
  int64_t LastActivity(const store::ExploreSession& x);
  std::string BaseUrl(const std::string& id) const { return "/explore/" + id + "/"; }

  ServiceDeps& d_;
  AuditLog& audit_;
  Users& users_;
  Rentals& rentals_;
  Samples& samples_;
  FailureLimiter login_limiter_;
  std::mutex mu_;  // guards the members below
  std::optional<crypto::SecretBytes> jupyter_key_;
  std::map<std::string, int64_t> activity_;  // session id -> last proxied request (unix s)
  std::map<std::string, int64_t> flushed_;   // session id -> when it was last written
};

// All services, built once, wired to each other.
class Services {
 public:
  explicit Services(ServiceDeps deps)
      : deps_(std::move(deps)),
        audit_log(deps_.db, deps_.clock, deps_.log),
        users(deps_, audit_log),
        gate(deps_.db, deps_.outputs, deps_.master_key, deps_.log, deps_.fingerprint_dir,
             deps_.gate_policy),
        catalog(deps_, audit_log, users, gate),
        rentals(deps_, audit_log, users),
        images(deps_, audit_log, users),
        jobs(deps_, audit_log, users, rentals, images),
        script_jobs(deps_, audit_log, images, jobs),
        key_broker(deps_, audit_log, rentals),
        agent(deps_, audit_log, users),
        audit(deps_, audit_log),
        reviews(deps_, audit_log, users),
        samples(deps_, audit_log, rentals),
        explore(deps_, audit_log, users, rentals, samples),
        ledger(deps_),
        wallets(deps_, audit_log, users) {}
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  const Clock& clock() const { return deps_.clock; }
  Logger& log() { return deps_.log; }

 private:
  ServiceDeps deps_;  // first: the services below hold references into it

 public:
  AuditLog audit_log;
  Users users;
  OutputGate gate;  // also the job engine's Gate
  Catalog catalog;
  Rentals rentals;
  Images images;
  Jobs jobs;
  ScriptJobs script_jobs;
  KeyBroker key_broker;
  AgentReports agent;
  AuditTrail audit;
  Reviews reviews;
  Samples samples;
  ExploreSessions explore;
  LedgerView ledger;
  Wallets wallets;
};

}  // namespace cce::plane
