// Streaming chain verifiers behind VerifyAudit / VerifyRentalChain. Private to
// src/store: they take rows in ascending seq order and stop at the first bad
// one, so a long log is verified page by page in bounded memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace cce::store::internal {

class ChainVerifierBase {
 public:
  ChainReport Finish() { return report_; }

 protected:
  bool Fail(ChainFailure failure, int64_t seq, std::string reason);
  bool CheckSeq(std::string_view what, int64_t seq);
  bool CheckLink(std::string_view what, int64_t seq, const Sha256Digest& stored_prev,
                 const Sha256Digest& stored_hash, const Sha256Digest& computed);
  void Advance(int64_t seq, const Sha256Digest& hash);

  ChainReport report_;  // head = last verified row
};

class AuditChainVerifier : public ChainVerifierBase {
 public:
  AuditChainVerifier(std::vector<AuditCheckpoint> checkpoints, ByteSpan public_key);
  // Returns false once the chain is known bad (then Finish() says where).
  bool Add(const AuditEntry& entry);
  ChainReport Finish();

 private:
  bool CheckpointSignatureOk(const AuditCheckpoint& cp) const;

  std::vector<AuditCheckpoint> checkpoints_;  // ascending seq
  Bytes public_key_;
  size_t next_checkpoint_ = 0;
  int64_t last_good_checkpoint_ = 0;
};

class RentalChainVerifier : public ChainVerifierBase {
 public:
  explicit RentalChainVerifier(ByteSpan public_key);
  bool Add(const Rental& rental);

 private:
  Bytes public_key_;
};

}  // namespace cce::store::internal
