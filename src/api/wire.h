// api: the Privacy Plane's wire types — one request/response type per
// resource of docs/api.yaml, with one JSON codec, shared by the plane (which
// encodes responses and decodes requests) and its clients (the `cce` CLI,
// the agent, tests). The plane decodes strictly (an unknown field is an
// error naming "body.<field>"); clients decode leniently (unknown fields
// are ignored, so a newer plane does not break an older CLI). Errors name
// the field and the expected type, never the value.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cce::api {

using nlohmann::json;

enum class Decode {
  kStrict,   // requests, on the plane: unknown fields refused
  kLenient,  // responses, on clients: unknown fields ignored
};

// {"error": {"code": "...", "message": "..."}}
struct Error {
  std::string code;  // invalid_argument, unauthenticated, permission_denied, ...
  std::string message;
};

// ---- Users -------------------------------------------------------------------
struct User {
  int64_t id = 0;
  std::string name;
  std::string role;  // provider | consumer | reviewer | operator
  int64_t created_at = 0;
  bool disabled = false;
};
struct UserList {
  std::vector<User> users;
};
struct CreateUserRequest {
  std::string name;
  std::string role;
};
// User's fields plus "token" (shown once).
struct CreatedUser {
  User user;
  std::string token;
};

// ---- Catalog and rentals -----------------------------------------------------
struct Dataset {
  std::string name;
  std::string owner;
  std::string location;
  std::string description;
  std::string price;
  int64_t max_days = 0;
  std::string key_id;
  std::string dataset_id;  // "dataset_id" in JSON (from the manifest)
  int64_t dataset_version = 0;
  int64_t created_at = 0;
};
struct DatasetList {
  std::vector<Dataset> datasets;
};
struct RegisterDatasetRequest {
  std::string name;
  std::string location;
  std::string key;                  // the dataset key file's text: a secret, wiped by its users
  std::string description;          // default ""
  std::string price = "0";          // default "0"
  std::optional<int64_t> max_days;  // default 30 (plane side)
  // The manifest's dataset id and version, pinned in every key release
  // (rollback protection). file://: checked against the manifest when
  // given; other locations: recorded as given (no pin when absent).
  std::string dataset_id = "";                            // default "" (not given)
  std::optional<int64_t> dataset_version = std::nullopt;  // default: not given
};
struct Rental {
  int64_t seq = 0;
  std::string dataset;
  std::string consumer;
  int64_t start = 0;
  int64_t end = 0;
  int64_t created_at = 0;
  std::string hash;       // hex
  std::string signature;  // hex
  // On an Ethereum plane (ledger.backend ethereum; seq 0, hash and signature
  // empty): the Rented event's transaction ("0x" + 64 hex), its block, the
  // address that paid (lowercase "0x" + 40 hex) and the amount in wei
  // (decimal). Absent on the embedded ledger.
  std::optional<std::string> tx_hash = std::nullopt;
  std::optional<int64_t> block = std::nullopt;
  std::optional<std::string> payer = std::nullopt;
  std::optional<std::string> amount_wei = std::nullopt;
};
struct RentalList {
  std::vector<Rental> rentals;
};
struct RentRequest {
  std::string dataset;
  int64_t days = 0;
};

// ---- Images ------------------------------------------------------------------
struct Image {
  std::string name;
  std::string tag;
  std::string digest;
  std::string owner;
  int64_t created_at = 0;
};
struct ImageList {
  std::vector<Image> images;
};
struct BlobStatus {  // GET /api/v1/images/blobs/{digest}
  std::string digest;
  bool present = false;
  std::optional<int64_t> size;  // when present
};
struct StoredBlob {  // PUT /api/v1/images/blobs/{digest}
  std::string digest;
  int64_t size = 0;
};
struct TaggedImage {  // PUT /api/v1/images/{name}/tags/{tag}
  std::string name;
  std::string tag;
  std::string digest;
};

// ---- Jobs --------------------------------------------------------------------
// POST /api/v1/jobs: the spec's file name as the user gave it, for the plane's messages
// ("job.yaml:3:9: spec.image: ..."); optional, at most 255 printable ASCII characters;
// without it the plane calls the spec "spec".
inline constexpr std::string_view kJobSpecNameHeader = "X-Cce-Spec-Name";
struct Job {
  std::string id;
  std::string name;
  std::string consumer;
  std::string state;  // a JobState name (store/job_state.h)
  std::string reason;
  std::string image;  // pinned digest
  int64_t created_at = 0;
  int64_t updated_at = 0;
  int64_t deadline = 0;
  bool simulated_tee = false;
};
struct JobEvent {
  int64_t seq = 0;
  std::string from;  // "" for the first event
  std::string to;
  std::string reason;
  int64_t at = 0;
};
struct OutputSummary {
  int64_t size = 0;
  std::string digest;
  std::string verdict;  // pending | release | hold
  bool downloadable = false;
  // Once the gate decided: its combined score and how many findings it
  // made. The findings themselves are for reviewers only (docs/review.md).
  std::optional<double> score = std::nullopt;
  std::optional<int64_t> findings = std::nullopt;
};
// A review's outcome as the job's consumer sees it, once reviewers decided.
struct JobReview {
  std::string decision;  // approved | rejected
  std::string reason;    // the deciding reviewer's reason
  int64_t decided_at = 0;
  std::vector<std::string> reviewers;  // who decided so (approvers, or the rejecter)
};
// Job's fields plus "history", once submitted "output", once decided "review".
struct JobDetail {
  Job job;
  std::vector<JobEvent> history;
  std::optional<OutputSummary> output;
  std::optional<JobReview> review = std::nullopt;
};
struct JobList {
  std::vector<Job> jobs;
  std::optional<int64_t> next_offset;
};

// ---- Script jobs (docs/explore/script-jobs.md) -------------------------------
// POST /api/v1/jobs/script: a script run on a curated base image.
struct ScriptFile {
  std::string name;            // [A-Za-z0-9._-]{1,100}, .py (or .sh)
  std::string content_base64;  // standard base64 with padding; at most 1 MiB decoded
};
struct ScriptJobDataset {
  std::string name;
  std::string mount_path = "";  // "mountPath"; "" (absent): /data/<name>
};
struct ScriptJobResources {  // the job spec's spec.resources; absent: its defaults
  std::optional<double> cpus = std::nullopt;
  std::optional<int64_t> memory_mib = std::nullopt;       // "memoryMiB"
  std::optional<int64_t> timeout_seconds = std::nullopt;  // "timeoutSeconds"
  std::optional<int64_t> output_max_mib = std::nullopt;   // "outputMaxMiB"
};
struct ScriptJobRequest {
  std::string name = "";  // the job's metadata.name; "" (absent): from the script's name
  std::string base;       // a name GET /api/v1/explore/bases lists
  ScriptFile script;
  std::vector<ScriptJobDataset> datasets;
  std::vector<std::string> args = {};  // absent: none
  std::optional<ScriptJobResources> resources = std::nullopt;
};
// GET /api/v1/explore/bases
struct ScriptBaseInfo {
  std::string name;
  std::string image;
  std::vector<std::string> command;
};
struct BaseList {
  std::vector<ScriptBaseInfo> bases;
};

// ---- Review of held outputs (docs/review.md) ---------------------------------
// GET /api/v1/reviews: one held (or decided) job.
struct ReviewSummary {
  std::string job;
  std::string consumer;
  std::string state;  // HELD, RELEASED or REJECTED
  double score = 0;   // the gate's combined score
  int64_t findings = 0;
  int64_t submitted_at = 0;            // when the output was submitted
  std::vector<std::string> approvals;  // reviewers who approved so far
};
struct ReviewList {
  std::vector<ReviewSummary> reviews;
};
// One gate finding (src/gate/gate.h Finding), for reviewers.
struct ReviewFinding {
  std::string detector;
  std::string file;
  std::string location;
  double score = 0;
  bool hard = false;
  std::string message;
  std::optional<int64_t> row = std::nullopt;  // where they apply
  std::optional<int64_t> column = std::nullopt;
  std::optional<int64_t> line = std::nullopt;
  std::optional<int64_t> offset = std::nullopt;
};
struct ReviewFile {
  std::string path;  // as in the bundle
  int64_t size = 0;
};
struct ReviewDecisionEntry {
  std::string reviewer;
  std::string decision;  // approve | reject
  std::string reason;
  int64_t at = 0;
};
// GET /api/v1/reviews/{job}, and the answer to a decision.
struct ReviewDetail {
  std::string job;
  std::string consumer;
  std::string state;
  std::string verdict;  // the gate's: hold
  double score = 0;
  std::vector<ReviewFinding> findings;
  std::vector<ReviewFile> files;
  std::vector<ReviewDecisionEntry> decisions;  // oldest first
  int64_t required_approvals = 1;
};
// POST /api/v1/reviews/{job}/approve and .../reject.
struct ReviewDecisionRequest {
  std::string reason;  // required: 1..2000 bytes, printable
};

// ---- Audit -------------------------------------------------------------------
// NOLINTNEXTLINE(bugprone-exception-escape): clang-tidy cannot see json's noexcept move.
struct AuditEntry {
  int64_t seq = 0;
  int64_t at = 0;
  std::string actor;
  std::string action;
  std::string object;
  std::string decision;      // allow | deny | info
  json details;              // an object, or the stored text when it is not JSON
  std::string details_text;  // the stored text, byte for byte (what the chain hashes)
  std::string hash;          // hex
};
struct AuditList {
  std::vector<AuditEntry> entries;
  std::optional<int64_t> next_after;
};
struct ChainReport {
  bool ok = false;
  std::string failure;  // ok, missing, edited, ...
  int64_t first_bad_seq = 0;
  std::string reason;
  int64_t entries_checked = 0;
  int64_t checkpoints_checked = 0;
  int64_t head_seq = 0;
  std::string head_hash;
};
struct AuditVerifyReport {
  bool ok = false;
  ChainReport audit;
  ChainReport rentals;
};
// A signed checkpoint of the audit log or the rental chain.
struct SignedCheckpoint {
  int64_t seq = 0;
  std::string hash;  // hex
  int64_t at = 0;
  std::string signature;  // hex, Ed25519
};
struct AuditCheckpoints {
  std::string public_key;  // hex, the plane's Ed25519 key (clients pin it)
  std::vector<SignedCheckpoint> audit;
  std::vector<SignedCheckpoint> rentals;
};
// A rental record as the chain hashes it (ids, not names).
struct ChainRental {
  int64_t seq = 0;
  int64_t dataset_id = 0;
  int64_t consumer_id = 0;
  int64_t start = 0;
  int64_t end = 0;
  int64_t created_at = 0;
  std::string prev_hash;  // hex
  std::string hash;       // hex
  std::string signature;  // hex
};
struct ChainRentalList {
  std::vector<ChainRental> rentals;
  std::optional<int64_t> next_after;
};

// ---- Key broker (/kbs/v0) ----------------------------------------------------
struct KbsAuthRequest {
  std::string credential;
};
struct KbsAuthResponse {
  std::string nonce;
  int64_t expires_at = 0;
  std::string job;
};
struct KbsAttestRequest {
  std::string credential;
  std::string nonce;       // base64url
  std::string quote;       // base64url
  std::string tee_pubkey;  // JWK (JSON text)
};
struct KbsAttestResponse {
  std::string session;
  int64_t expires_at = 0;
  bool simulated_tee = false;
  std::string tcb_status;  // "" when unknown
};

// ---- Agent (/api/v1/agent, docs/attestation.md "Agent routes") ---------------
// Authenticated by the key broker session (Authorization: Bearer <session>).
struct AgentReportRequest {
  std::string state;   // "RUNNING" or "FAILED"
  std::string reason;  // FAILED only (optional); at most 512 bytes are kept
};
// GET /api/v1/agent/job: what the agent runs, from the plane over the
// attested session (never from the host that started the VM).
struct AgentJobDataset {
  std::string name;
  std::string mount_path;  // from the spec: where the container sees it
  std::string location;    // as registered: file:///..., s3://..., juicefs://...
  std::string key_id;      // the dataset key's id (hex), as registered
};
struct AgentJob {
  std::string job_id;
  std::string spec;                       // the job spec as stored (canonical JSON)
  std::string image_digest;               // the manifest digest pinned at submission
  int64_t deadline = 0;                   // unix seconds; the plane fails the job then
  std::vector<AgentJobDataset> datasets;  // spec order
};
// PUT /api/v1/agent/output answers with this once the bundle is recorded.
struct AgentOutputReceipt {
  std::string job;
  std::string state;  // "OUTPUT_SUBMITTED"
  int64_t size = 0;
  std::string digest;  // "sha256:<hex>"
};
inline constexpr std::string_view kBundleDigestHeader = "X-Cce-Bundle-Digest";
inline constexpr std::string_view kBundleSignatureHeader = "X-Cce-Bundle-Signature";
// What the TEE key signs (ECDSA P-256 / SHA-256, IEEE P1363 r||s, base64url):
// "cce-output-bundle-v1\n" + job_id + "\n" + digest ("sha256:<hex>").
inline std::string OutputSigningInput(std::string_view job_id, std::string_view digest) {
  std::string m = "cce-output-bundle-v1\n";
  m.append(job_id).append("\n").append(digest);
  return m;
}

// ---- Explore sessions (docs/explore/sessions.md) ----------------------------
struct ExploreSessionDataset {
  std::string name;
  int64_t sample_version = 0;
};
// GET /api/v1/explore/sessions/{id}
struct ExploreSession {
  std::string id;     // "xs-" + 16 lower-case hex
  std::string owner;  // the consumer's name
  std::string backend;
  std::string state;  // STARTING | RUNNING | STOPPED | LOST | FAILED
  std::vector<ExploreSessionDataset> datasets;
  int64_t idle_timeout_seconds = 0;
  int64_t created_at = 0;
  int64_t last_activity_at = 0;
  std::optional<int64_t> stopped_at = std::nullopt;
  std::string stop_reason = "";
  std::string url = "";  // "<plane_url>/explore/<id>/" (log in first: POST .../login)
};
struct ExploreSessionList {
  std::vector<ExploreSession> sessions;
};
// POST /api/v1/explore/sessions
struct StartExploreRequest {
  std::optional<std::vector<std::string>> datasets = std::nullopt;  // absent: all rented now
  std::optional<int64_t> idle_timeout_seconds = std::nullopt;       // absent: the plane's default
};
// POST /api/v1/explore/sessions/{id}/login: a one-time URL (single use).
struct ExploreLogin {
  std::string url;
  int64_t expires_at = 0;
};

// ---- Dataset samples (docs/explore/samples.md) ------------------------------
struct SampleFile {
  std::string path;  // relative, '/'-separated
  int64_t size = 0;
  std::string sha256;  // lower-case hex
};
// GET /api/v1/datasets/{name}/sample, and the answer to PUT.
struct SampleInfo {
  std::string dataset;
  int64_t version = 0;
  int64_t published_at = 0;
  int64_t file_count = 0;
  int64_t total_bytes = 0;
  std::vector<SampleFile> files;  // sorted by path
};

// ---- Ledger and wallets (docs/ledger.md) -------------------------------------
// GET /api/v1/ledger. Embedded: backend only. Ethereum: every field but
// indexed_through (absent until a block was indexed) and last_sync_error
// (absent while the last sync round succeeded).
struct LedgerInfo {
  std::string backend;  // embedded | ethereum
  std::optional<int64_t> chain_id = std::nullopt;
  std::optional<std::string> contract = std::nullopt;  // EIP-55 checksummed
  std::optional<int64_t> confirmations = std::nullopt;
  std::optional<std::string> rpc = std::nullopt;          // the node URL the plane reads
  std::optional<std::string> plane_id = std::nullopt;     // bytes32 "0x" + 64 hex
  std::optional<int64_t> indexed_through = std::nullopt;  // the last block indexed
  std::optional<std::string> last_sync_error = std::nullopt;
};
// GET /api/v1/ledger/datasets/{name}: the dataset's id on the contract.
struct LedgerDataset {
  std::string dataset;
  std::string chain_dataset_id;  // bytes32 "0x" + 64 hex
  int64_t chain_id = 0;
  std::string contract;  // EIP-55 checksummed
};
// POST /api/v1/wallet/challenge
struct WalletChallengeRequest {
  std::string address;
};
struct WalletChallenge {
  std::string message;  // sign this exactly (EIP-191 personal_sign)
  std::string nonce;    // 32 hex
  int64_t expires_at = 0;
};
// POST /api/v1/wallet/link
struct WalletLinkRequest {
  std::string address;
  std::string nonce;
  std::string signature;  // "0x" + 130 hex (r || s || v)
};
// The answer to a link, and one row of GET /api/v1/wallet.
struct Wallet {
  std::string address;  // EIP-55 checksummed
  std::string user;
  int64_t linked_at = 0;
};
struct WalletList {
  std::vector<Wallet> wallets;
};

// ---- Codec -------------------------------------------------------------------
// One ToJson overload and one FromJson overload per type above. FromJson
// errors are kInvalidArgument "<where>.<field>: expected <type>" or
// "<where>.<field>: required" or (strict) "<where>.<field>: unknown field".
// `T` is a type name, so it cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define CCE_API_WIRE_TYPE(T) \
  json ToJson(const T& v);   \
  Status FromJson(const json& j, T* out, Decode mode, std::string_view where);
// NOLINTEND(bugprone-macro-parentheses)
CCE_API_WIRE_TYPE(Error)
CCE_API_WIRE_TYPE(User)
CCE_API_WIRE_TYPE(UserList)
CCE_API_WIRE_TYPE(CreateUserRequest)
CCE_API_WIRE_TYPE(CreatedUser)
CCE_API_WIRE_TYPE(Dataset)
CCE_API_WIRE_TYPE(DatasetList)
CCE_API_WIRE_TYPE(RegisterDatasetRequest)
CCE_API_WIRE_TYPE(Rental)
CCE_API_WIRE_TYPE(RentalList)
CCE_API_WIRE_TYPE(RentRequest)
CCE_API_WIRE_TYPE(Image)
CCE_API_WIRE_TYPE(ImageList)
CCE_API_WIRE_TYPE(BlobStatus)
CCE_API_WIRE_TYPE(StoredBlob)
CCE_API_WIRE_TYPE(TaggedImage)
CCE_API_WIRE_TYPE(Job)
CCE_API_WIRE_TYPE(JobEvent)
CCE_API_WIRE_TYPE(OutputSummary)
CCE_API_WIRE_TYPE(JobDetail)
CCE_API_WIRE_TYPE(JobList)
CCE_API_WIRE_TYPE(JobReview)
CCE_API_WIRE_TYPE(ReviewSummary)
CCE_API_WIRE_TYPE(ReviewList)
CCE_API_WIRE_TYPE(ReviewFinding)
CCE_API_WIRE_TYPE(ReviewFile)
CCE_API_WIRE_TYPE(ReviewDecisionEntry)
CCE_API_WIRE_TYPE(ReviewDetail)
CCE_API_WIRE_TYPE(ReviewDecisionRequest)
CCE_API_WIRE_TYPE(AuditEntry)
CCE_API_WIRE_TYPE(AuditList)
CCE_API_WIRE_TYPE(ChainReport)
CCE_API_WIRE_TYPE(AuditVerifyReport)
CCE_API_WIRE_TYPE(SignedCheckpoint)
CCE_API_WIRE_TYPE(AuditCheckpoints)
CCE_API_WIRE_TYPE(ChainRental)
CCE_API_WIRE_TYPE(ChainRentalList)
CCE_API_WIRE_TYPE(KbsAuthRequest)
CCE_API_WIRE_TYPE(KbsAuthResponse)
CCE_API_WIRE_TYPE(KbsAttestRequest)
CCE_API_WIRE_TYPE(KbsAttestResponse)
CCE_API_WIRE_TYPE(AgentJobDataset)
CCE_API_WIRE_TYPE(AgentJob)
CCE_API_WIRE_TYPE(AgentReportRequest)
CCE_API_WIRE_TYPE(AgentOutputReceipt)
CCE_API_WIRE_TYPE(ScriptFile)
CCE_API_WIRE_TYPE(ScriptJobDataset)
CCE_API_WIRE_TYPE(ScriptJobResources)
CCE_API_WIRE_TYPE(ScriptJobRequest)
CCE_API_WIRE_TYPE(ScriptBaseInfo)
CCE_API_WIRE_TYPE(BaseList)
CCE_API_WIRE_TYPE(ExploreSessionDataset)
CCE_API_WIRE_TYPE(ExploreSession)
CCE_API_WIRE_TYPE(ExploreSessionList)
CCE_API_WIRE_TYPE(StartExploreRequest)
CCE_API_WIRE_TYPE(ExploreLogin)
CCE_API_WIRE_TYPE(SampleFile)
CCE_API_WIRE_TYPE(SampleInfo)
CCE_API_WIRE_TYPE(LedgerInfo)
CCE_API_WIRE_TYPE(LedgerDataset)
CCE_API_WIRE_TYPE(WalletChallengeRequest)
CCE_API_WIRE_TYPE(WalletChallenge)
CCE_API_WIRE_TYPE(WalletLinkRequest)
CCE_API_WIRE_TYPE(Wallet)
CCE_API_WIRE_TYPE(WalletList)
#undef CCE_API_WIRE_TYPE

// Where JSON text stops parsing, for a message: "<where>: empty; expected a JSON
// object" or "<where>: not valid JSON: syntax error at line 1, column 9 (byte 8)". It
// names the position, never the bytes (a request may hold a key).
Status JsonSyntaxError(std::string_view text, std::string_view where);

// Parses `text` as JSON and decodes it; JsonSyntaxError otherwise.
template <typename T>
StatusOr<T> Parse(std::string_view text, Decode mode, std::string_view where) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return JsonSyntaxError(text, where);
  T out;
  Status s = FromJson(j, &out, mode, where);
  if (!s.ok()) return s;
  return out;
}

// Compact JSON text of a wire value (invalid UTF-8 replaced, never thrown).
template <typename T>
std::string Dump(const T& v) {
  return ToJson(v).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace cce::api
