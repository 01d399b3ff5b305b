// store: the Privacy Plane's persistence. One narrow interface (Store) over
// users, the dataset catalog, the embedded ledger's rental records, images,
// jobs with their history, job credentials, outputs, the Ethereum ledger's
// index (linked wallets, indexed on-chain rentals) and the hash-chained,
// checkpoint-signed audit log. Backends: SQLite (sqlite_store.h) now,
// PostgreSQL later; both must pass store_conformance_test.cc.
//
// Conventions (docs/store.md has the details):
// - Times are int64 Unix seconds (UTC) chosen by the caller; the store never
//   reads the clock, so tests control time.
// - Every mutating method takes the AuditRecord that describes the decision
//   and appends it in the SAME transaction: a mutation is never persisted
//   without its audit entry, nor an audit entry without its mutation. A
//   mutation that fails persists nothing, not even its audit record; the plane
//   records the denial with AppendAudit.
// - Errors: kNotFound (a named row does not exist), kAlreadyExists (unique
//   name, id or idempotency key taken), kFailedPrecondition (compare-and-set
//   lost: wrong job state, credential already used, ...), kInvalidArgument
//   (malformed input, disallowed transition), kUnavailable (database busy or
//   closing), kDataLoss (a stored row is unreadable), kIo/kInternal otherwise.
// - All methods are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"
#include "store/job_state.h"

namespace cce::store {

using crypto::Bytes;
using crypto::ByteSpan;
using crypto::Sha256Digest;

// ---- Records -----------------------------------------------------------------

enum class Role { kProvider, kConsumer, kReviewer, kOperator };
std::string_view RoleName(Role role);  // "provider", ...
StatusOr<Role> ParseRole(std::string_view name);

struct User {
  int64_t id = 0;  // assigned by CreateUser
  std::string name;
  Role role = Role::kConsumer;
  Sha256Digest token_hash{};  // SHA-256 of the API token; the token is never stored
  int64_t created_at = 0;
  bool disabled = false;

  friend bool operator==(const User&, const User&) = default;
};

struct Dataset {
  int64_t id = 0;  // assigned by CreateDataset
  std::string name;
  int64_t owner_id = 0;  // a user
  std::string location;  // URI of the encrypted dataset (file://, s3://, ...)
  std::string description;
  std::string price;  // decimal string: digits, optionally '.' and digits
  int64_t max_days = 0;
  std::string key_id;  // lower-case hex
  Bytes wrapped_key;   // the dataset key, already encrypted under the master key
  std::string manifest_dataset_id;
  int64_t manifest_version = 0;
  int64_t created_at = 0;

  friend bool operator==(const Dataset&, const Dataset&) = default;
};

// One record of the embedded ledger: `consumer_id` may use `dataset_id` during
// [start, end). Records form a hash chain and each carries the plane's
// signature over its chain hash (docs/store.md, "Canonical encodings").
struct Rental {
  int64_t seq = 0;  // assigned by AppendRental, 1, 2, 3, ...
  int64_t dataset_id = 0;
  int64_t consumer_id = 0;
  int64_t start = 0;
  int64_t end = 0;
  int64_t created_at = 0;
  Sha256Digest prev_hash{};  // assigned: hash of record seq-1 (zeros for seq 1)
  Sha256Digest hash{};       // assigned: RentalHash(prev_hash, *this)
  Bytes signature;           // assigned: signer(RentalSignatureMessage(hash))

  friend bool operator==(const Rental&, const Rental&) = default;
};

// Images live in a scope: their owner's own (scope = owner_id), or the
// operator-curated public one (kPublicImageScope, names under "library/").
// (scope, name, tag) is unique, so one user can never take another's tag.
inline constexpr int64_t kPublicImageScope = 0;

struct Image {
  std::string name;
  std::string tag;
  std::string digest;      // "sha256:" + 64 lower-case hex digits
  int64_t owner_id = 0;    // who (last) pushed the tag
  int64_t created_at = 0;  // when this tag was (last) pushed
  bool is_public = false;  // in kPublicImageScope instead of owner_id's scope

  int64_t scope() const { return is_public ? kPublicImageScope : owner_id; }
  friend bool operator==(const Image&, const Image&) = default;
};

struct ImageFilter {
  // Only the images this user may see: its own scope and the public one.
  std::optional<int64_t> visible_to;
};

// A blob uploaded into a scope (a user's, or kPublicImageScope for the blobs
// of public images). It is what a scope may reference in a manifest and
// probe for, and what counts against the user's storage quota.
struct ImageBlob {
  int64_t scope = 0;
  std::string digest;  // "sha256:" + 64 lower-case hex digits
  int64_t size = 0;
  int64_t created_at = 0;  // last upload into this scope

  friend bool operator==(const ImageBlob&, const ImageBlob&) = default;
};

enum JobFlag : uint32_t {
  kJobFlagSimulatedTee = 1u << 0,  // ran with the `sim` quote provider, not real TDX
};

struct Job {
  std::string id;  // chosen by the caller, e.g. "job-" + 16 hex digits
  int64_t consumer_id = 0;
  std::string name;
  std::string spec_json;     // canonical spec, stored verbatim
  std::string image_digest;  // pinned: "sha256:" + 64 hex
  JobState state = JobState::kSubmitted;
  std::string reason;           // why the job is in `state`
  std::string idempotency_key;  // empty: none; else unique per consumer
  Sha256Digest request_hash{};  // of the request body; compared on key reuse
  int64_t created_at = 0;
  int64_t updated_at = 0;
  int64_t deadline = 0;
  uint32_t flags = 0;  // JobFlag bits
  // From the spec, typed at submit so no later step re-parses spec_json.
  std::vector<std::string> datasets;  // dataset names, in spec order (no ',')
  int64_t timeout_seconds = 0;

  friend bool operator==(const Job&, const Job&) = default;
};

struct CreateJobResult {
  Job job;
  bool created = false;  // false: an idempotent replay returned the existing job
};

struct JobEvent {
  std::string job_id;
  int64_t seq = 0;               // 1 for creation, then 2, 3, ... per job
  std::optional<JobState> from;  // nullopt for the creation event
  JobState to = JobState::kSubmitted;
  std::string reason;
  int64_t at = 0;

  friend bool operator==(const JobEvent&, const JobEvent&) = default;
};

struct JobFilter {
  std::optional<int64_t> consumer_id;
  std::optional<JobState> state;
  int64_t limit = 100;  // 1..10000
  int64_t offset = 0;
};

struct JobCredential {
  std::string id;
  std::string job_id;
  int64_t issued_at = 0;
  int64_t expires_at = 0;          // valid while now < expires_at
  std::optional<int64_t> used_at;  // set once by MarkCredentialUsed

  friend bool operator==(const JobCredential&, const JobCredential&) = default;
};

// A key broker nonce (POST /kbs/v0/auth): single use, short-lived, bound to
// one job and the credential that asked for it.
struct KbsNonce {
  std::string nonce;  // base64url of 32 random bytes
  std::string job_id;
  std::string credential_id;
  int64_t issued_at = 0;
  int64_t expires_at = 0;  // valid while now < expires_at
  std::optional<int64_t> used_at;

  friend bool operator==(const KbsNonce&, const KbsNonce&) = default;
};

enum class GateVerdict { kPending, kRelease, kHold };
std::string_view GateVerdictName(GateVerdict verdict);  // "pending", "release", "hold"

struct Output {
  std::string job_id;
  std::string blob_ref;  // where the (caller-encrypted) bundle rests
  int64_t size = 0;
  std::string digest;  // "sha256:" + 64 hex, of the plaintext bundle
  int64_t created_at = 0;
  GateVerdict verdict = GateVerdict::kPending;
  double gate_score = 0;
  std::string gate_findings_json;
  int64_t gate_at = 0;

  friend bool operator==(const Output&, const Output&) = default;
};

// A reviewer's decision on an output the gate held (docs/review.md).
enum class ReviewDecision { kApprove, kReject };
std::string_view ReviewDecisionName(ReviewDecision decision);  // "approve", "reject"
StatusOr<ReviewDecision> ParseReviewDecision(std::string_view name);

inline constexpr size_t kMaxReviewReasonBytes = 2000;
inline constexpr int64_t kMaxRequiredApprovals = 10;

// One reviewer's decision on one HELD job; at most one per (job, reviewer).
struct Review {
  int64_t seq = 0;  // assigned by RecordReview: 1, 2, 3, ... across all jobs
  std::string job_id;
  int64_t reviewer_id = 0;  // an enabled user with role reviewer
  ReviewDecision decision = ReviewDecision::kReject;
  std::string reason;  // 1..kMaxReviewReasonBytes bytes
  int64_t at = 0;

  friend bool operator==(const Review&, const Review&) = default;
};

// What RecordReview leaves behind.
struct ReviewOutcome {
  Job job;                      // as it now is: HELD, RELEASED or REJECTED
  std::vector<Review> reviews;  // every decision on the job, oldest first (the new one last)
};

// An Explore session (docs/explore.md): a consumer's Jupyter server over the
// desensitized samples of datasets they rent. Only hashes of its secrets
// are stored (login code, browser cookie, SDK token); the Jupyter token is
// derived from the master key and never stored.
enum class ExploreState { kStarting, kRunning, kStopped, kLost, kFailed };
std::string_view ExploreStateName(ExploreState state);  // "STARTING", ...
StatusOr<ExploreState> ParseExploreState(std::string_view name);
// STARTING and RUNNING: the session may hold a server; the others are final.
bool IsLiveExploreState(ExploreState state);

struct ExploreDataset {
  int64_t dataset_id = 0;
  std::string name;
  int64_t sample_version = 0;

  friend bool operator==(const ExploreDataset&, const ExploreDataset&) = default;
};

struct ExploreSession {
  std::string id;  // "xs-" + 16 lower-case hex
  int64_t owner_id = 0;
  std::string backend;  // "local", "kubernetes"
  ExploreState state = ExploreState::kStarting;
  std::vector<ExploreDataset> datasets;  // stored as JSON
  int64_t idle_timeout_s = 0;
  int64_t created_at = 0;
  int64_t last_activity_at = 0;
  int64_t stopped_at = 0;                       // 0 while live
  std::string stop_reason;                      // why it left RUNNING (or failed to start)
  std::string upstream_json;                    // the backend's Upstream, as the service encodes it
  std::optional<Sha256Digest> login_code_hash;  // SHA-256 of the unused one-time code
  int64_t login_code_expires_at = 0;            // valid while now < this
  std::optional<Sha256Digest> cookie_hash;      // SHA-256 of the browser cookie's value
  Sha256Digest sdk_token_hash{};                // SHA-256 of the session-scoped SDK token

  friend bool operator==(const ExploreSession&, const ExploreSession&) = default;
};

struct ExploreFilter {
  std::optional<int64_t> owner_id;
  bool live_only = false;  // STARTING and RUNNING only
};

// A dataset's published sample (docs/explore/samples.md): desensitized files
// the plane keeps in clear, on disk under DATA_DIR/samples, and serves to
// the dataset's renters. This row pins what one publication holds; versions
// are 1, 2, 3, ... per dataset and never rewritten.
struct Sample {
  int64_t dataset_id = 0;
  int64_t version = 0;  // 1 + the dataset's latest (RecordSample checks it)
  int64_t file_count = 0;
  int64_t total_bytes = 0;
  Sha256Digest files_digest{};  // over the sorted (path, size, sha256) list
  int64_t published_by = 0;     // a user
  int64_t published_at = 0;

  friend bool operator==(const Sample&, const Sample&) = default;
};

// ---- Ethereum ledger index (docs/ledger.md) -----------------------------------
// Addresses and hashes are stored as lower-case "0x" + hex (40 digits for an
// address, 64 for a hash); the store refuses any other spelling, so one
// address has exactly one key.

// A consumer's Ethereum address, proven theirs by an EIP-191 signature the
// plane checked before calling LinkWallet. Links are permanent: an address
// is linked to one user, once, so the rentals it paid never move to another.
struct WalletLink {
  std::string address;  // lower-case "0x" + 40 hex
  int64_t user_id = 0;
  int64_t linked_at = 0;
  Bytes signature = {};  // the plane's Ed25519 over WalletLinkSignatureMessage

  friend bool operator==(const WalletLink&, const WalletLink&) = default;
};

// One Rented event of the rental contract that the plane indexed.
struct ChainRental {
  std::string tx_hash;  // "0x" + 64 hex; (tx_hash, log_index) is the key
  int64_t log_index = 0;
  int64_t block_number = 0;
  std::string block_hash;  // "0x" + 64 hex, as indexed (re-checked for reorgs)
  int64_t dataset_id = 0;  // the plane's dataset id
  std::string payer;       // the consumer address that paid, "0x" + 40 hex
  int64_t start = 0;
  int64_t end = 0;  // the rental covers [start, end)
  int64_t days = 0;
  std::string amount_wei;  // decimal digits, no leading zeros
  int64_t indexed_at = 0;
  Bytes signature = {};  // the plane's Ed25519 over ChainRentalSignatureMessage

  friend bool operator==(const ChainRental&, const ChainRental&) = default;
};

// How far the indexer has read the chain: one row, or none before the first
// round. `chain_id` and `contract` name the deployment the index is of.
struct ChainCursor {
  int64_t chain_id = 0;
  std::string contract;         // "0x" + 40 hex
  int64_t next_block = 0;       // the first block not yet indexed
  std::string last_block_hash;  // of block next_block - 1 as indexed; "" when none was

  friend bool operator==(const ChainCursor&, const ChainCursor&) = default;
};

// A position in ListChainRentals' order: (block_number, log_index, tx_hash).
struct ChainRentalPosition {
  int64_t block_number = 0;
  int64_t log_index = 0;
  std::string tx_hash;

  friend bool operator==(const ChainRentalPosition&, const ChainRentalPosition&) = default;
};

struct ChainRentalFilter {
  std::optional<int64_t> user_id;  // rentals paid by an address linked to this user
  std::optional<int64_t> dataset_id;
  std::optional<int64_t> min_end;            // rentals with end >= min_end
  int64_t limit = 1000;                      // 1..10000
  std::optional<int64_t> min_block;          // rentals in blocks >= min_block
  std::optional<ChainRentalPosition> after;  // the next page: rows strictly after this one
};

enum class AuditDecision { kAllow, kDeny, kInfo };
std::string_view AuditDecisionName(AuditDecision decision);  // "allow", "deny", "info"
StatusOr<AuditDecision> ParseAuditDecision(std::string_view name);

// One decision. Strings are stored and hashed byte for byte: pass details as
// the exact JSON text you want to see again (it is TEXT, never re-serialized).
struct AuditRecord {
  int64_t at = 0;
  std::string actor;   // e.g. "user:alice", "plane"
  std::string action;  // e.g. "job.submit", "key.release"
  std::string object;  // e.g. "job:job-0123456789abcdef"
  AuditDecision decision = AuditDecision::kInfo;
  std::string details_json = "{}";

  friend bool operator==(const AuditRecord&, const AuditRecord&) = default;
};

struct AuditEntry {
  int64_t seq = 0;  // 1, 2, 3, ... assigned by the store
  AuditRecord record;
  Sha256Digest prev_hash{};  // hash of entry seq-1; zeros for seq 1
  Sha256Digest hash{};       // AuditEntryHash(prev_hash, seq, record)

  friend bool operator==(const AuditEntry&, const AuditEntry&) = default;
};

struct AuditHead {
  int64_t seq = 0;      // 0 when the log is empty
  Sha256Digest hash{};  // zeros when the log is empty

  friend bool operator==(const AuditHead&, const AuditHead&) = default;
};

// The plane's Ed25519 signature over AuditCheckpointMessage(seq, hash, at)
// (or RentalCheckpointMessage for the rental chain: the same shape, another
// domain label, so one chain's checkpoint never verifies as the other's).
struct AuditCheckpoint {
  int64_t seq = 0;
  Sha256Digest hash{};
  Bytes signature;
  int64_t at = 0;

  friend bool operator==(const AuditCheckpoint&, const AuditCheckpoint&) = default;
};

struct AuditFilter {
  int64_t after_seq = 0;              // entries with seq > after_seq, ascending
  int64_t limit = 1000;               // 1..10000
  std::optional<std::string> object;  // exact match
};

struct RentalFilter {
  std::optional<int64_t> consumer_id;
  std::optional<int64_t> dataset_id;
  int64_t after_seq = 0;  // records with seq > after_seq, ascending
  int64_t limit = 1000;   // 1..10000
};

// Signs a rental record's chain position. Called inside the write
// transaction (on the thread leading the commit, so keep it fast and never
// call back into the store) twice: with RentalSignatureMessage(hash) for the row
// and RentalCheckpointMessage(seq, hash, created_at) for the chain's signed
// checkpoint; returns the signature bytes.
using RentalSigner = std::function<StatusOr<Bytes>(ByteSpan message)>;

// ---- The interface -----------------------------------------------------------

class Store {
 public:
  virtual ~Store() = default;

  // Users. GetUserByTokenHash is indexed (it runs on every request) and also
  // returns disabled users: the caller checks `disabled`.
  virtual StatusOr<User> CreateUser(const User& user, const AuditRecord& audit) = 0;
  virtual StatusOr<User> GetUser(int64_t id) = 0;
  virtual StatusOr<User> GetUserByName(std::string_view name) = 0;
  virtual StatusOr<User> GetUserByTokenHash(const Sha256Digest& token_hash) = 0;
  virtual StatusOr<std::vector<User>> ListUsers() = 0;
  virtual Status SetUserDisabled(int64_t id, bool disabled, const AuditRecord& audit) = 0;
  virtual Status SetUserTokenHash(int64_t id, const Sha256Digest& token_hash,
                                  const AuditRecord& audit) = 0;

  // Catalog.
  virtual StatusOr<Dataset> CreateDataset(const Dataset& dataset, const AuditRecord& audit) = 0;
  virtual StatusOr<Dataset> GetDataset(int64_t id) = 0;
  virtual StatusOr<Dataset> GetDatasetByName(std::string_view name) = 0;
  virtual StatusOr<std::vector<Dataset>> ListDatasets(std::optional<int64_t> owner_id) = 0;

  // Rentals (append-only, hash-chained, signed). Only dataset_id,
  // consumer_id, start, end and created_at of `rental` are read.
  virtual StatusOr<Rental> AppendRental(const Rental& rental, const RentalSigner& signer,
                                        const AuditRecord& audit) = 0;
  virtual StatusOr<std::vector<Rental>> ListRentals(const RentalFilter& filter) = 0;

  // Images: (scope, name, tag) -> digest. Pushing an existing tag of the
  // same scope moves it (owner_id becomes the new pusher); the same name in
  // another scope is another image.
  virtual StatusOr<Image> PutImage(const Image& image, const AuditRecord& audit) = 0;
  virtual StatusOr<Image> GetImage(int64_t scope, std::string_view name, std::string_view tag) = 0;
  // Ordered by name, tag, scope.
  virtual StatusOr<std::vector<Image>> ListImages(const ImageFilter& filter) = 0;
  // Removes a tag (kNotFound if absent); returns what it pointed at.
  virtual StatusOr<Image> DeleteImage(int64_t scope, std::string_view name, std::string_view tag,
                                      const AuditRecord& audit) = 0;
  // Image blobs: (scope, digest) -> size. Putting an existing one updates
  // its size and created_at. scope is a user id or kPublicImageScope.
  virtual Status PutImageBlob(const ImageBlob& blob, const AuditRecord& audit) = 0;
  // Every scope when nullopt; ordered by scope, digest.
  virtual StatusOr<std::vector<ImageBlob>> ListImageBlobs(std::optional<int64_t> scope) = 0;
  // Removes the (scope, digest) rows named, in one transaction; absent rows
  // are ignored.
  virtual Status DeleteImageBlobs(const std::vector<ImageBlob>& blobs,
                                  const AuditRecord& audit) = 0;

  // Jobs. CreateJob requires job.state == SUBMITTED and records history
  // event 1. With an idempotency key already used by the same consumer: the
  // same request_hash returns the existing job with created == false and
  // writes nothing (not even `audit`); a different one is kAlreadyExists.
  virtual StatusOr<CreateJobResult> CreateJob(const Job& job, const AuditRecord& audit) = 0;
  virtual StatusOr<Job> GetJob(std::string_view job_id) = 0;
  // Newest first.
  virtual StatusOr<std::vector<Job>> ListJobs(const JobFilter& filter) = 0;
  // Every job in one of `states`, oldest first (crash recovery at start-up).
  virtual StatusOr<std::vector<Job>> ListJobsInStates(const std::vector<JobState>& states) = 0;
  virtual StatusOr<std::vector<JobEvent>> JobHistory(std::string_view job_id) = 0;
  // Atomic compare-and-set: in one transaction, moves the job from
  // `expected_from` to `to`, sets its reason and updated_at = audit.at,
  // appends a history event and appends `audit`. A transition that
  // IsAllowedTransition refuses, or an empty reason, is kInvalidArgument; a job not in
  // `expected_from` is kFailedPrecondition naming both states. RELEASED from
  // OUTPUT_SUBMITTED also requires the job's output to carry the gate verdict
  // "release" (fail closed: no release without a passing gate). The review
  // moves (HELD -> APPROVED | REJECTED, APPROVED -> RELEASED) are
  // kInvalidArgument here: only RecordReview makes them, with the decisions
  // that justify them.
  virtual StatusOr<Job> TransitionJob(std::string_view job_id, JobState expected_from, JobState to,
                                      std::string_view reason, const AuditRecord& audit) = 0;

  // Job credentials: single use. MarkCredentialUsed is an atomic CAS that
  // fails (kFailedPrecondition) if the credential was already used, is
  // expired at `now`, or is not yet valid.
  virtual Status IssueCredential(const JobCredential& credential, const AuditRecord& audit) = 0;
  virtual StatusOr<JobCredential> GetCredential(std::string_view credential_id) = 0;
  virtual StatusOr<JobCredential> MarkCredentialUsed(std::string_view credential_id, int64_t now,
                                                     const AuditRecord& audit) = 0;
  // In ONE transaction: IssueCredential(credential, credential_audit) and
  // TransitionJob(job, AUTHORIZED, PROVISIONING, reason, move_audit), so a
  // crash never leaves a credential whose job was not provisioned. Either
  // check failing writes nothing.
  virtual StatusOr<Job> IssueCredentialAndProvision(const JobCredential& credential,
                                                    std::string_view reason,
                                                    const AuditRecord& credential_audit,
                                                    const AuditRecord& move_audit) = 0;

  // Key broker. IssueNonce stores a fresh nonce (the job and credential must
  // exist); in the same transaction it deletes every nonce (used or not)
  // whose expires_at <= nonce.issued_at, and refuses with kResourceExhausted
  // (writing nothing) when the credential already holds `max_outstanding`
  // unused, unexpired nonces. ConsumeNonce is an atomic compare-and-set: it marks the nonce
  // used only if it exists, is bound to `job_id`, is unused and
  // issued_at <= now < expires_at; otherwise kFailedPrecondition (kNotFound
  // for an unknown nonce). AcceptAttestation, in ONE transaction, marks the
  // credential used (the same checks as MarkCredentialUsed; it must belong to
  // the job), moves the job PROVISIONING -> ATTESTED, ORs `add_flags` into the
  // job's flags, appends the history event and `audit`: a job is attested at
  // most once, by one VM.
  virtual Status IssueNonce(const KbsNonce& nonce, int64_t max_outstanding,
                            const AuditRecord& audit) = 0;
  virtual StatusOr<KbsNonce> ConsumeNonce(std::string_view nonce, std::string_view job_id,
                                          int64_t now, const AuditRecord& audit) = 0;
  virtual StatusOr<Job> AcceptAttestation(std::string_view job_id, std::string_view credential_id,
                                          uint32_t add_flags, int64_t now, std::string_view reason,
                                          const AuditRecord& audit) = 0;

  // Outputs: one per job, created with verdict kPending; the verdict is set
  // once (kRelease or kHold) and never changed.
  virtual Status PutOutput(const Output& output, const AuditRecord& audit) = 0;
  virtual StatusOr<Output> SetGateVerdict(std::string_view job_id, GateVerdict verdict,
                                          double score, std::string_view findings_json, int64_t at,
                                          const AuditRecord& audit) = 0;
  virtual StatusOr<Output> GetOutput(std::string_view job_id) = 0;

  // Review of held outputs. RecordReview, in ONE transaction: checks that
  // the job exists (kNotFound), is HELD with a "hold" gate verdict
  // (kFailedPrecondition naming the state or verdict) and that the reviewer
  // is an enabled user with role reviewer (kFailedPrecondition); records
  // `review` (a second decision by the same reviewer on the job is
  // kAlreadyExists) and `audit`; then, when the decision settles the job —
  // any reject, or the `required_approvals`-th approval by distinct
  // reviewers — moves it HELD -> REJECTED, or HELD -> APPROVED -> RELEASED,
  // with `move_reason` on each history event and `move_audit` appended
  // once. Otherwise the job stays HELD and `move_audit` is not written.
  // kInvalidArgument (nothing written): an empty or over-long reason or
  // move_reason, required_approvals outside 1..kMaxRequiredApprovals, a bad
  // audit record. HELD -> APPROVED | REJECTED and APPROVED -> RELEASED happen
  // only here: TransitionJob refuses them.
  virtual StatusOr<ReviewOutcome> RecordReview(const Review& review, int64_t required_approvals,
                                               std::string_view move_reason,
                                               const AuditRecord& audit,
                                               const AuditRecord& move_audit) = 0;
  // A job's decisions, oldest first (kNotFound for an unknown job).
  virtual StatusOr<std::vector<Review>> ListReviews(std::string_view job_id) = 0;
  // The newest `limit` (1..10000) decisions on any job, newest first.
  virtual StatusOr<std::vector<Review>> ListRecentReviews(int64_t limit) = 0;

  // Explore sessions. CreateExploreSession stores `session` (state STARTING,
  // no secrets but sdk_token_hash) and `audit` in one transaction, unless
  // its owner already has `max_live_per_owner` live sessions
  // (kResourceExhausted naming the limit) or the id or SDK token hash is
  // taken (kAlreadyExists). TransitionExploreSession is a compare-and-set:
  // the session must be in one of `from` (else kFailedPrecondition naming
  // its state); it moves to `to` with `reason` (stop_reason), sets
  // upstream_json when `upstream_json` is given, and appends `audit`. A move
  // to a final state (STOPPED, LOST, FAILED) sets stopped_at = audit.at and
  // drops the login code and cookie hashes; a move out of a final state is
  // kInvalidArgument.
  virtual StatusOr<ExploreSession> CreateExploreSession(const ExploreSession& session,
                                                        int64_t max_live_per_owner,
                                                        const AuditRecord& audit) = 0;
  virtual StatusOr<ExploreSession> GetExploreSession(std::string_view id) = 0;
  // Indexed: runs on every request made with an SDK token.
  virtual StatusOr<ExploreSession> GetExploreSessionBySdkTokenHash(const Sha256Digest& hash) = 0;
  // Newest first.
  virtual StatusOr<std::vector<ExploreSession>> ListExploreSessions(
      const ExploreFilter& filter) = 0;
  virtual StatusOr<ExploreSession> TransitionExploreSession(
      std::string_view id, const std::vector<ExploreState>& from, ExploreState to,
      std::string_view reason, const std::optional<std::string>& upstream_json,
      const AuditRecord& audit) = 0;
  // Replaces the session's one-time login code (RUNNING sessions only, else
  // kFailedPrecondition).
  virtual Status SetExploreLoginCode(std::string_view id, const Sha256Digest& code_hash,
                                     int64_t expires_at, const AuditRecord& audit) = 0;
  // Atomic compare-and-set: only when the session is RUNNING, its login code
  // hash is `code_hash` and now < its expiry, the code is dropped (single
  // use), `cookie_hash` replaces the session's cookie hash and `audit` is
  // appended. Anything else is kPermissionDenied (nothing written).
  virtual StatusOr<ExploreSession> ConsumeExploreLoginCode(std::string_view id,
                                                           const Sha256Digest& code_hash,
                                                           int64_t now,
                                                           const Sha256Digest& cookie_hash,
                                                           const AuditRecord& audit) = 0;
  // Raises last_activity_at to `at` (never lowers it). Not a decision, so
  // no audit record: the proxy's activity, flushed at most every 30 s.
  virtual Status TouchExploreSession(std::string_view id, int64_t at) = 0;

  // Samples. RecordSample stores `sample` with `audit` in one transaction.
  // Its version must be 1 + the dataset's latest (1 for the first):
  // otherwise kFailedPrecondition naming both (another publication won the
  // race). kNotFound: unknown dataset or publisher; kInvalidArgument:
  // a version < 1 or negative counts (nothing written).
  virtual StatusOr<Sample> RecordSample(const Sample& sample, const AuditRecord& audit) = 0;
  // The dataset's highest version; kNotFound when it has none.
  virtual StatusOr<Sample> GetLatestSample(int64_t dataset_id) = 0;

  // Ethereum ledger index (the `ethereum` ledger backend, ledger/ethereum_ledger.h).
  // LinkWallet stores `link` with `audit`: kAlreadyExists when the address is
  // linked already (to anyone, this user included), kNotFound for an unknown
  // user, kInvalidArgument for an address that is not lower-case "0x" + 40 hex.
  virtual StatusOr<WalletLink> LinkWallet(const WalletLink& link, const AuditRecord& audit) = 0;
  // A user's links (or everyone's for nullopt), oldest first.
  virtual StatusOr<std::vector<WalletLink>> ListWalletLinks(std::optional<int64_t> user_id) = 0;
  // nullopt before the indexer's first round.
  virtual StatusOr<std::optional<ChainCursor>> GetChainCursor() = 0;
  // In ONE transaction: a compare-and-set of the cursor from `expected`
  // (nullopt: none is stored) to `next` (kFailedPrecondition naming both when
  // the stored cursor is not `expected`: another indexer moved it), the
  // rentals inserted (a row already there with the same (tx_hash, log_index)
  // is kept as it is, not an error) and `audits` appended. kInvalidArgument
  // for a malformed field (naming it); kFailedPrecondition for a rental of an
  // unknown dataset. Either way nothing is written.
  virtual Status IndexChainRentals(const std::optional<ChainCursor>& expected,
                                   const ChainCursor& next, const std::vector<ChainRental>& rentals,
                                   const std::vector<AuditRecord>& audits) = 0;
  // In ONE transaction: the same compare-and-set of the cursor (a cursor
  // must be stored), the rentals named by (tx_hash, log_index) deleted (their
  // block left the canonical chain; kNotFound naming one that is not there)
  // and `audits` appended. Nothing is written on any error.
  virtual Status DropChainRentals(const ChainCursor& expected, const ChainCursor& next,
                                  const std::vector<std::pair<std::string, int64_t>>& tx_log_keys,
                                  const std::vector<AuditRecord>& audits) = 0;
  // Ascending (block_number, log_index, tx_hash); kInvalidArgument for a
  // limit outside 1..10000.
  virtual StatusOr<std::vector<ChainRental>> ListChainRentals(const ChainRentalFilter& filter) = 0;

  // Audit log. AppendAudit records a decision that changes no other state.
  virtual StatusOr<AuditEntry> AppendAudit(const AuditRecord& record) = 0;
  virtual StatusOr<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) = 0;
  virtual StatusOr<AuditHead> GetAuditHead() = 0;
  // Stores a checkpoint; checkpoint.hash must equal the stored hash of entry
  // checkpoint.seq (else kFailedPrecondition; kNotFound if there is no such
  // entry). A checkpoint at an already checkpointed seq is a no-op (the first
  // is kept). The store cannot check the signature (it does not know the
  // key); VerifyAudit does.
  virtual Status AddCheckpoint(const AuditCheckpoint& checkpoint) = 0;
  virtual StatusOr<std::vector<AuditCheckpoint>> ListCheckpoints() = 0;
  // The rental chain's signed checkpoints (RentalCheckpointMessage), one per
  // rental: AppendRental writes it in the rental's transaction, ascending seq.
  virtual StatusOr<std::vector<AuditCheckpoint>> ListRentalCheckpoints() = 0;

  // The highest schema migration applied to the database.
  virtual StatusOr<int64_t> SchemaVersion() = 0;
};

// ---- Chains: canonical encodings and verification (backend independent) ------

// Canonical encodings (docs/store.md, "Canonical encodings"): integers as
// 8-byte big-endian two's complement, strings and byte strings as a 4-byte
// big-endian length then the bytes, each encoding starting with a
// length-prefixed domain label.
Bytes EncodeAuditEntry(int64_t seq, const AuditRecord& record);
// SHA-256(prev_hash || EncodeAuditEntry(seq, record)).
Sha256Digest AuditEntryHash(const Sha256Digest& prev_hash, int64_t seq, const AuditRecord& record);
// What the plane signs for a checkpoint.
Bytes AuditCheckpointMessage(int64_t seq, const Sha256Digest& hash, int64_t at);
StatusOr<AuditCheckpoint> SignAuditCheckpoint(const crypto::Ed25519PrivateKey& key,
                                              const AuditHead& head, int64_t at);

Bytes EncodeRental(const Rental& rental);  // reads seq, ids, start, end, created_at
Sha256Digest RentalHash(const Sha256Digest& prev_hash, const Rental& rental);
Bytes RentalSignatureMessage(const Sha256Digest& hash);
// What the plane signs for a rental chain checkpoint.
Bytes RentalCheckpointMessage(int64_t seq, const Sha256Digest& hash, int64_t at);
// True iff `rental` is a row the plane signed: its hash is RentalHash of its
// own prev_hash and fields, and its signature verifies with the plane key.
// Needs no other row, so a reader of a filtered subset (the ledger's
// Covers) can check every row it relies on.
bool RentalRowIsSigned(const Rental& rental, ByteSpan plane_public_key);

// What the plane signs for each row of the Ethereum index (docs/ledger.md):
// every field but the signature, domain-separated from the chains' messages.
// The store keeps the signature and checks nothing; the ledger signs when it
// links or indexes and checks every row it relies on (a row written behind
// the plane's back grants nothing).
Bytes WalletLinkSignatureMessage(const WalletLink& link);
Bytes ChainRentalSignatureMessage(const ChainRental& rental);
bool WalletLinkIsSigned(const WalletLink& link, ByteSpan plane_public_key);
bool ChainRentalIsSigned(const ChainRental& rental, ByteSpan plane_public_key);

// ---- The checkpoint file -------------------------------------------------------
// Every signed checkpoint is also appended to a file outside the database
// (SqliteStoreOptions::checkpoint_file), one line each:
//   <chain> <seq> <hash hex> <at> <signature hex>\n   (chain: audit | rentals)
// so deleting rows AND their checkpoints from the database is still caught.
enum class Chain { kAudit, kRentals };
std::string_view ChainName(Chain chain);  // "audit", "rentals"
Status AppendCheckpointFile(const std::string& path, Chain chain, const AuditCheckpoint& cp);
struct CheckpointFileContents {
  std::vector<AuditCheckpoint> audit;
  std::vector<AuditCheckpoint> rentals;
};
// A missing file is empty; a malformed line is kDataLoss naming the line.
StatusOr<CheckpointFileContents> ReadCheckpointFile(const std::string& path);

enum class ChainFailure {
  kNone,
  kMissing,             // a seq is absent: a row was deleted
  kEdited,              // a row's content does not match its hash
  kReordered,           // a row is not linked to its predecessor
  kBadSignature,        // a checkpoint / rental signature does not verify
  kCheckpointMismatch,  // a validly signed checkpoint disagrees with the chain
  kTruncated,           // a signed checkpoint names entries that are gone
  kNoGenesis,           // entry 1 is missing or not covered by a signed checkpoint
  kWentBackwards,       // the chain ends before a head verified earlier
  kForked,              // the chain disagrees with a head verified earlier
};
std::string_view ChainFailureName(ChainFailure failure);

struct ChainReport {
  ChainFailure failure = ChainFailure::kNone;
  int64_t first_bad_seq = 0;  // the lowest bad seq, 0 when ok
  std::string reason;         // names the seq and what is wrong
  int64_t entries_checked = 0;
  int64_t checkpoints_checked = 0;
  AuditHead head;         // last verified entry
  AuditHead signed_head;  // highest checkpoint that verified and matched the chain
  bool ok() const { return failure == ChainFailure::kNone; }
};

struct VerifyOptions {
  // Checkpoints kept outside the database (ReadCheckpointFile), checked like
  // the stored ones: deleting the tail and its stored checkpoints is caught.
  std::vector<AuditCheckpoint> extra_checkpoints;
  // The audit log starts with a genesis entry checkpointed at seq 1 (the
  // plane writes it at init): an emptied log, or one whose first entry is
  // not signed, fails with kNoGenesis.
  bool require_genesis = false;
};

// Compares a verified chain (`report` ok, `hash_at(seq)` the verified hash of
// entry seq <= report.head.seq) with a head verified earlier: a chain ending
// before it went backwards, another hash at its seq is a fork. Sets the
// failure in `report`. A remembered seq of 0 checks nothing.
void CheckAgainstRemembered(const AuditHead& remembered,
                            const std::function<Sha256Digest(int64_t seq)>& hash_at,
                            ChainReport* report);

// Recomputes the audit chain from entry 1 and checks every checkpoint
// against the chain and `plane_public_key`. Tampering is reported in the
// ChainReport (the first bad seq); the Status is for failing to read.
// Entries appended after the last checkpoint anyone kept (the checkpoint
// file, a client's remembered head) are covered by the chain only: deleting
// them leaves no trace, which is why the plane checkpoints every N entries,
// at shutdown and when a client asks.
StatusOr<ChainReport> VerifyAudit(Store& store, ByteSpan plane_public_key,
                                  const VerifyOptions& options = {});
// The same over given entries and checkpoints (entries ascending by seq).
ChainReport VerifyAuditEntries(const std::vector<AuditEntry>& entries,
                               const std::vector<AuditCheckpoint>& checkpoints,
                               ByteSpan plane_public_key, bool require_genesis = false);

// Recomputes the rental chain, checks every record's signature and every
// rental checkpoint (stored and extra; require_genesis is ignored).
StatusOr<ChainReport> VerifyRentalChain(Store& store, ByteSpan plane_public_key,
                                        const VerifyOptions& options = {});
ChainReport VerifyRentalEntries(const std::vector<Rental>& rentals,
                                const std::vector<AuditCheckpoint>& checkpoints,
                                ByteSpan plane_public_key);

}  // namespace cce::store
