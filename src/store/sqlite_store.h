// The SQLite backend of Store: one database file in WAL mode with
// synchronous=FULL (an acknowledged write survives kill -9 and power loss),
// foreign keys on, numbered schema migrations applied at Open, group commit
// on one writer connection (led by whichever caller finds it free: no
// writer thread) and a pool of read-only connections.
//
// Another process may open the same file at the same time (`cce-plane user
// add` while the server runs): writers serialize on SQLite's lock, waiting up
// to busy_timeout_ms.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/store.h"

namespace cce::store {

namespace sqlite {
class Connection;
}  // namespace sqlite

struct SqliteStoreOptions {
  std::string path;  // the database file; created (mode 0600) if absent
  // Mutations applied per transaction. Mutations queued while a commit is
  // being fsync'ed ride in the next one; 1 turns group commit off.
  size_t max_batch = 256;
  size_t max_queue = 4096;  // pending mutations beyond this block their callers
  int read_connections = 4;
  int busy_timeout_ms = 5000;
  // WAL frames (pages) after which the batch's leader checkpoints the WAL
  // into the database file, between batches (after waking the batch's
  // other callers, so no other caller's commit includes it).
  int checkpoint_frames = 1000;
  // Where every signed checkpoint (audit and rental chains) is also appended,
  // outside the database (AppendCheckpointFile); empty: nowhere.
  std::string checkpoint_file;
};

struct SqliteWriterStats {
  uint64_t transactions = 0;  // committed or attempted write transactions
  uint64_t mutations = 0;     // mutations applied in them (ok or failed)
};

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) and migrates the database. A database whose
  // schema is newer than this binary knows is kFailedPrecondition.
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const SqliteStoreOptions& options);
  // The schema version this binary migrates to.
  static int64_t LatestSchemaVersion();

  // Drains queued mutations, then closes every connection.
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  SqliteWriterStats WriterStats() const;

  StatusOr<User> CreateUser(const User& user, const AuditRecord& audit) override;
  StatusOr<User> GetUser(int64_t id) override;
  StatusOr<User> GetUserByName(std::string_view name) override;
  StatusOr<User> GetUserByTokenHash(const Sha256Digest& token_hash) override;
  StatusOr<std::vector<User>> ListUsers() override;
  Status SetUserDisabled(int64_t id, bool disabled, const AuditRecord& audit) override;
  Status SetUserTokenHash(int64_t id, const Sha256Digest& token_hash,
                          const AuditRecord& audit) override;

  StatusOr<Dataset> CreateDataset(const Dataset& dataset, const AuditRecord& audit) override;
  StatusOr<Dataset> GetDataset(int64_t id) override;
  StatusOr<Dataset> GetDatasetByName(std::string_view name) override;
  StatusOr<std::vector<Dataset>> ListDatasets(std::optional<int64_t> owner_id) override;

  StatusOr<Rental> AppendRental(const Rental& rental, const RentalSigner& signer,
                                const AuditRecord& audit) override;
  StatusOr<std::vector<Rental>> ListRentals(const RentalFilter& filter) override;

  StatusOr<Image> PutImage(const Image& image, const AuditRecord& audit) override;
  StatusOr<Image> GetImage(int64_t scope, std::string_view name, std::string_view tag) override;
  StatusOr<std::vector<Image>> ListImages(const ImageFilter& filter) override;
  StatusOr<Image> DeleteImage(int64_t scope, std::string_view name, std::string_view tag,
                              const AuditRecord& audit) override;
  Status PutImageBlob(const ImageBlob& blob, const AuditRecord& audit) override;
  StatusOr<std::vector<ImageBlob>> ListImageBlobs(std::optional<int64_t> scope) override;
  Status DeleteImageBlobs(const std::vector<ImageBlob>& blobs, const AuditRecord& audit) override;

  StatusOr<CreateJobResult> CreateJob(const Job& job, const AuditRecord& audit) override;
  StatusOr<Job> GetJob(std::string_view job_id) override;
  StatusOr<std::vector<Job>> ListJobs(const JobFilter& filter) override;
  StatusOr<std::vector<Job>> ListJobsInStates(const std::vector<JobState>& states) override;
  StatusOr<std::vector<JobEvent>> JobHistory(std::string_view job_id) override;
  StatusOr<Job> TransitionJob(std::string_view job_id, JobState expected_from, JobState to,
                              std::string_view reason, const AuditRecord& audit) override;

  Status IssueCredential(const JobCredential& credential, const AuditRecord& audit) override;
  StatusOr<JobCredential> GetCredential(std::string_view credential_id) override;
  StatusOr<JobCredential> MarkCredentialUsed(std::string_view credential_id, int64_t now,
                                             const AuditRecord& audit) override;
  StatusOr<Job> IssueCredentialAndProvision(const JobCredential& credential,
                                            std::string_view reason,
                                            const AuditRecord& credential_audit,
                                            const AuditRecord& move_audit) override;
  Status IssueNonce(const KbsNonce& nonce, int64_t max_outstanding,
                    const AuditRecord& audit) override;
  StatusOr<KbsNonce> ConsumeNonce(std::string_view nonce, std::string_view job_id, int64_t now,
                                  const AuditRecord& audit) override;
  StatusOr<Job> AcceptAttestation(std::string_view job_id, std::string_view credential_id,
                                  uint32_t add_flags, int64_t now, std::string_view reason,
                                  const AuditRecord& audit) override;

  Status PutOutput(const Output& output, const AuditRecord& audit) override;
  StatusOr<Output> SetGateVerdict(std::string_view job_id, GateVerdict verdict, double score,
                                  std::string_view findings_json, int64_t at,
                                  const AuditRecord& audit) override;
  StatusOr<Output> GetOutput(std::string_view job_id) override;

  StatusOr<ReviewOutcome> RecordReview(const Review& review, int64_t required_approvals,
                                       std::string_view move_reason, const AuditRecord& audit,
                                       const AuditRecord& move_audit) override;
  StatusOr<std::vector<Review>> ListReviews(std::string_view job_id) override;
  StatusOr<std::vector<Review>> ListRecentReviews(int64_t limit) override;

  StatusOr<ExploreSession> CreateExploreSession(const ExploreSession& session,
                                                int64_t max_live_per_owner,
                                                const AuditRecord& audit) override;
  StatusOr<ExploreSession> GetExploreSession(std::string_view id) override;
  StatusOr<ExploreSession> GetExploreSessionBySdkTokenHash(const Sha256Digest& hash) override;
  StatusOr<std::vector<ExploreSession>> ListExploreSessions(const ExploreFilter& filter) override;
  StatusOr<ExploreSession> TransitionExploreSession(std::string_view id,
                                                    const std::vector<ExploreState>& from,
                                                    ExploreState to, std::string_view reason,
                                                    const std::optional<std::string>& upstream_json,
                                                    const AuditRecord& audit) override;
  Status SetExploreLoginCode(std::string_view id, const Sha256Digest& code_hash, int64_t expires_at,
                             const AuditRecord& audit) override;
  StatusOr<ExploreSession> ConsumeExploreLoginCode(std::string_view id,
                                                   const Sha256Digest& code_hash, int64_t now,
                                                   const Sha256Digest& cookie_hash,
                                                   const AuditRecord& audit) override;
  Status TouchExploreSession(std::string_view id, int64_t at) override;

  StatusOr<Sample> RecordSample(const Sample& sample, const AuditRecord& audit) override;
  StatusOr<Sample> GetLatestSample(int64_t dataset_id) override;

  StatusOr<WalletLink> LinkWallet(const WalletLink& link, const AuditRecord& audit) override;
  StatusOr<std::vector<WalletLink>> ListWalletLinks(std::optional<int64_t> user_id) override;
  StatusOr<std::optional<ChainCursor>> GetChainCursor() override;
  Status IndexChainRentals(const std::optional<ChainCursor>& expected, const ChainCursor& next,
                           const std::vector<ChainRental>& rentals,
                           const std::vector<AuditRecord>& audits) override;
  Status DropChainRentals(const ChainCursor& expected, const ChainCursor& next,
                          const std::vector<std::pair<std::string, int64_t>>& tx_log_keys,
                          const std::vector<AuditRecord>& audits) override;
  StatusOr<std::vector<ChainRental>> ListChainRentals(const ChainRentalFilter& filter) override;

  StatusOr<AuditEntry> AppendAudit(const AuditRecord& record) override;
  StatusOr<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) override;
  StatusOr<AuditHead> GetAuditHead() override;
  Status AddCheckpoint(const AuditCheckpoint& checkpoint) override;
  StatusOr<std::vector<AuditCheckpoint>> ListCheckpoints() override;
  StatusOr<std::vector<AuditCheckpoint>> ListRentalCheckpoints() override;

  StatusOr<int64_t> SchemaVersion() override;

 private:
  // A unit of work on a connection. Write functions run inside the batch's
  // transaction, each in its own SAVEPOINT: a failing one is rolled back
  // alone and its batch-mates still commit.
  using TxnFn = std::function<Status(sqlite::Connection&)>;
  struct WriteOp {
    const TxnFn* fn = nullptr;
    Status result;
    bool done = false;
    // Notified (under write_mu_) when done, or when this op is first in the
    // queue and no one leads: its caller then commits the next batch.
    std::condition_variable cv;
  };

  explicit SqliteStore(SqliteStoreOptions options);
  Status Init();
  Status Write(const TxnFn& fn);
  Status Read(const TxnFn& fn);
  template <typename T>
  StatusOr<T> ReadValue(const std::function<StatusOr<T>(sqlite::Connection&)>& f);
  template <typename T>
  StatusOr<T> WriteValue(const std::function<StatusOr<T>(sqlite::Connection&)>& f);
  void ApplyBatch(std::span<WriteOp* const> batch);
  void CheckpointIfDue();

  const SqliteStoreOptions options_;

  // Group commit without a writer thread: a caller of Write that finds no
  // batch being committed leads, committing every queued op (its own among
  // them, up to max_batch) on its own thread; the others wait on their op's
  // cv. An uncontended write thus costs no thread hand-off at all.
  // writer_, batch_ and checkpoint_due_ belong to the leader of the moment.
  std::unique_ptr<sqlite::Connection> writer_;
  std::vector<WriteOp*> batch_;
  bool checkpoint_due_ = false;  // set by the writer's WAL hook

  mutable std::mutex write_mu_;
  std::condition_variable space_cv_;  // queue_ has room
  std::condition_variable idle_cv_;   // leading_ became false (the destructor waits)
  std::deque<WriteOp*> queue_;        // guarded by write_mu_
  bool leading_ = false;              // guarded by write_mu_: a batch is being committed
  bool stopping_ = false;             // guarded by write_mu_
  SqliteWriterStats stats_;           // guarded by write_mu_
  // WriteOp::result of queued ops: written by the leader, read by the
  // caller once done (done is guarded by write_mu_).

  std::vector<std::unique_ptr<sqlite::Connection>> readers_;  // fixed after Open
  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::vector<sqlite::Connection*> free_readers_;  // guarded by read_mu_
};

}  // namespace cce::store
