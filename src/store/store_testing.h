// Test support for the store (library cce_store_testing, linked by tests
// only): ForwardingStore, a Store that hands every call to another Store, so
// a test double (a store whose audit appends fail, say) overrides only the
// methods it changes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace cce::store::testing {

// Every method forwards to `inner` unchanged (same arguments, same result),
// so its errors are the inner store's; a subclass calls
// ForwardingStore::Method for the calls it lets through (leveldb's
// EnvWrapper). Kept in step with store.h: every method is an `override`, and
// store_testing.cc checks the class is not abstract, so a method added to or
// changed in Store fails to build here, not in each test. `inner` must
// outlive the ForwardingStore.
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store& inner) : inner_(inner) {}
  ~ForwardingStore() override;
  ForwardingStore(const ForwardingStore&) = delete;
  ForwardingStore& operator=(const ForwardingStore&) = delete;

  StatusOr<User> CreateUser(const User& user, const AuditRecord& audit) override {
    return inner_.CreateUser(user, audit);
  }
  StatusOr<User> GetUser(int64_t id) override { return inner_.GetUser(id); }
  StatusOr<User> GetUserByName(std::string_view name) override {
    return inner_.GetUserByName(name);
  }
  StatusOr<User> GetUserByTokenHash(const Sha256Digest& token_hash) override {
    return inner_.GetUserByTokenHash(token_hash);
  }
  StatusOr<std::vector<User>> ListUsers() override { return inner_.ListUsers(); }
  Status SetUserDisabled(int64_t id, bool disabled, const AuditRecord& audit) override {
    return inner_.SetUserDisabled(id, disabled, audit);
  }
  Status SetUserTokenHash(int64_t id, const Sha256Digest& token_hash,
                          const AuditRecord& audit) override {
    return inner_.SetUserTokenHash(id, token_hash, audit);
  }

  StatusOr<Dataset> CreateDataset(const Dataset& dataset, const AuditRecord& audit) override {
    return inner_.CreateDataset(dataset, audit);
  }
  StatusOr<Dataset> GetDataset(int64_t id) override { return inner_.GetDataset(id); }
  StatusOr<Dataset> GetDatasetByName(std::string_view name) override {
    return inner_.GetDatasetByName(name);
  }
  StatusOr<std::vector<Dataset>> ListDatasets(std::optional<int64_t> owner_id) override {
    return inner_.ListDatasets(owner_id);
  }

  StatusOr<Rental> AppendRental(const Rental& rental, const RentalSigner& signer,
                                const AuditRecord& audit) override {
    return inner_.AppendRental(rental, signer, audit);
  }
  StatusOr<std::vector<Rental>> ListRentals(const RentalFilter& filter) override {
    return inner_.ListRentals(filter);
  }

  StatusOr<Image> PutImage(const Image& image, const AuditRecord& audit) override {
    return inner_.PutImage(image, audit);
  }
  StatusOr<Image> GetImage(int64_t scope, std::string_view name, std::string_view tag) override {
    return inner_.GetImage(scope, name, tag);
  }
  StatusOr<std::vector<Image>> ListImages(const ImageFilter& filter) override {
    return inner_.ListImages(filter);
  }
  StatusOr<Image> DeleteImage(int64_t scope, std::string_view name, std::string_view tag,
                              const AuditRecord& audit) override {
    return inner_.DeleteImage(scope, name, tag, audit);
  }
  Status PutImageBlob(const ImageBlob& blob, const AuditRecord& audit) override {
    return inner_.PutImageBlob(blob, audit);
  }
  StatusOr<std::vector<ImageBlob>> ListImageBlobs(std::optional<int64_t> scope) override {
    return inner_.ListImageBlobs(scope);
  }
  Status DeleteImageBlobs(const std::vector<ImageBlob>& blobs, const AuditRecord& audit) override {
    return inner_.DeleteImageBlobs(blobs, audit);
  }

  StatusOr<CreateJobResult> CreateJob(const Job& job, const AuditRecord& audit) override {
    return inner_.CreateJob(job, audit);
  }
  StatusOr<Job> GetJob(std::string_view job_id) override { return inner_.GetJob(job_id); }
  StatusOr<std::vector<Job>> ListJobs(const JobFilter& filter) override {
    return inner_.ListJobs(filter);
  }
  StatusOr<std::vector<Job>> ListJobsInStates(const std::vector<JobState>& states) override {
    return inner_.ListJobsInStates(states);
  }
  StatusOr<std::vector<JobEvent>> JobHistory(std::string_view job_id) override {
    return inner_.JobHistory(job_id);
  }
  StatusOr<Job> TransitionJob(std::string_view job_id, JobState expected_from, JobState to,
                              std::string_view reason, const AuditRecord& audit) override {
    return inner_.TransitionJob(job_id, expected_from, to, reason, audit);
  }

  Status IssueCredential(const JobCredential& credential, const AuditRecord& audit) override {
    return inner_.IssueCredential(credential, audit);
  }
  StatusOr<JobCredential> GetCredential(std::string_view credential_id) override {
    return inner_.GetCredential(credential_id);
  }
  StatusOr<JobCredential> MarkCredentialUsed(std::string_view credential_id, int64_t now,
                                             const AuditRecord& audit) override {
    return inner_.MarkCredentialUsed(credential_id, now, audit);
  }
  StatusOr<Job> IssueCredentialAndProvision(const JobCredential& credential,
                                            std::string_view reason,
                                            const AuditRecord& credential_audit,
                                            const AuditRecord& move_audit) override {
    return inner_.IssueCredentialAndProvision(credential, reason, credential_audit, move_audit);
  }

  Status IssueNonce(const KbsNonce& nonce, int64_t max_outstanding,
                    const AuditRecord& audit) override {
    return inner_.IssueNonce(nonce, max_outstanding, audit);
  }
  StatusOr<KbsNonce> ConsumeNonce(std::string_view nonce, std::string_view job_id, int64_t now,
                                  const AuditRecord& audit) override {
    return inner_.ConsumeNonce(nonce, job_id, now, audit);
  }
  StatusOr<Job> AcceptAttestation(std::string_view job_id, std::string_view credential_id,
                                  uint32_t add_flags, int64_t now, std::string_view reason,
                                  const AuditRecord& audit) override {
    return inner_.AcceptAttestation(job_id, credential_id, add_flags, now, reason, audit);
  }

  Status PutOutput(const Output& output, const AuditRecord& audit) override {
    return inner_.PutOutput(output, audit);
  }
  StatusOr<Output> SetGateVerdict(std::string_view job_id, GateVerdict verdict, double score,
                                  std::string_view findings_json, int64_t at,
                                  const AuditRecord& audit) override {
    return inner_.SetGateVerdict(job_id, verdict, score, findings_json, at, audit);
  }
  StatusOr<Output> GetOutput(std::string_view job_id) override { return inner_.GetOutput(job_id); }

  StatusOr<ReviewOutcome> RecordReview(const Review& review, int64_t required_approvals,
                                       std::string_view move_reason, const AuditRecord& audit,
                                       const AuditRecord& move_audit) override {
    return inner_.RecordReview(review, required_approvals, move_reason, audit, move_audit);
  }
  StatusOr<std::vector<Review>> ListReviews(std::string_view job_id) override {
    return inner_.ListReviews(job_id);
  }
  StatusOr<std::vector<Review>> ListRecentReviews(int64_t limit) override {
    return inner_.ListRecentReviews(limit);
  }

  StatusOr<ExploreSession> CreateExploreSession(const ExploreSession& session,
                                                int64_t max_live_per_owner,
                                                const AuditRecord& audit) override {
    return inner_.CreateExploreSession(session, max_live_per_owner, audit);
  }
  StatusOr<ExploreSession> GetExploreSession(std::string_view id) override {
    return inner_.GetExploreSession(id);
  }
  StatusOr<ExploreSession> GetExploreSessionBySdkTokenHash(const Sha256Digest& hash) override {
    return inner_.GetExploreSessionBySdkTokenHash(hash);
  }
  StatusOr<std::vector<ExploreSession>> ListExploreSessions(const ExploreFilter& filter) override {
    return inner_.ListExploreSessions(filter);
  }
  StatusOr<ExploreSession> TransitionExploreSession(std::string_view id,
                                                    const std::vector<ExploreState>& from,
                                                    ExploreState to, std::string_view reason,
                                                    const std::optional<std::string>& upstream_json,
                                                    const AuditRecord& audit) override {
    return inner_.TransitionExploreSession(id, from, to, reason, upstream_json, audit);
  }
  Status SetExploreLoginCode(std::string_view id, const Sha256Digest& code_hash, int64_t expires_at,
                             const AuditRecord& audit) override {
    return inner_.SetExploreLoginCode(id, code_hash, expires_at, audit);
  }
  StatusOr<ExploreSession> ConsumeExploreLoginCode(std::string_view id,
                                                   const Sha256Digest& code_hash, int64_t now,
                                                   const Sha256Digest& cookie_hash,
                                                   const AuditRecord& audit) override {
    return inner_.ConsumeExploreLoginCode(id, code_hash, now, cookie_hash, audit);
  }
  Status TouchExploreSession(std::string_view id, int64_t at) override {
    return inner_.TouchExploreSession(id, at);
  }

  StatusOr<Sample> RecordSample(const Sample& sample, const AuditRecord& audit) override {
    return inner_.RecordSample(sample, audit);
  }
  StatusOr<Sample> GetLatestSample(int64_t dataset_id) override {
    return inner_.GetLatestSample(dataset_id);
  }

  StatusOr<WalletLink> LinkWallet(const WalletLink& link, const AuditRecord& audit) override {
    return inner_.LinkWallet(link, audit);
  }
  StatusOr<std::vector<WalletLink>> ListWalletLinks(std::optional<int64_t> user_id) override {
    return inner_.ListWalletLinks(user_id);
  }
  StatusOr<std::optional<ChainCursor>> GetChainCursor() override { return inner_.GetChainCursor(); }
  Status IndexChainRentals(const std::optional<ChainCursor>& expected, const ChainCursor& next,
                           const std::vector<ChainRental>& rentals,
                           const std::vector<AuditRecord>& audits) override {
    return inner_.IndexChainRentals(expected, next, rentals, audits);
  }
  Status DropChainRentals(const ChainCursor& expected, const ChainCursor& next,
                          const std::vector<std::pair<std::string, int64_t>>& tx_log_keys,
                          const std::vector<AuditRecord>& audits) override {
    return inner_.DropChainRentals(expected, next, tx_log_keys, audits);
  }
  StatusOr<std::vector<ChainRental>> ListChainRentals(const ChainRentalFilter& filter) override {
    return inner_.ListChainRentals(filter);
  }

  StatusOr<AuditEntry> AppendAudit(const AuditRecord& record) override {
    return inner_.AppendAudit(record);
  }
  StatusOr<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) override {
    return inner_.ListAudit(filter);
  }
  StatusOr<AuditHead> GetAuditHead() override { return inner_.GetAuditHead(); }
  Status AddCheckpoint(const AuditCheckpoint& checkpoint) override {
    return inner_.AddCheckpoint(checkpoint);
  }
  StatusOr<std::vector<AuditCheckpoint>> ListCheckpoints() override {
    return inner_.ListCheckpoints();
  }
  StatusOr<std::vector<AuditCheckpoint>> ListRentalCheckpoints() override {
    return inner_.ListRentalCheckpoints();
  }

  StatusOr<int64_t> SchemaVersion() override { return inner_.SchemaVersion(); }

 private:
  Store& inner_;
};

}  // namespace cce::store::testing
