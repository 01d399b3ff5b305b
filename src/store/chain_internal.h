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

// Checks a chain row by row, and each signed checkpoint when the chain
// reaches its seq; `message` is the chain's checkpoint message
// (AuditCheckpointMessage or RentalCheckpointMessage).
class ChainVerifierBase {
 public:
  using CheckpointMessage = Bytes (*)(int64_t seq, const Sha256Digest& hash, int64_t at);
  ChainReport Finish();

 protected:
  ChainVerifierBase(std::string_view what, std::vector<AuditCheckpoint> checkpoints,
                    ByteSpan public_key, CheckpointMessage message);
  bool Fail(ChainFailure failure, int64_t seq, std::string reason);
  bool CheckSeq(int64_t seq);
  bool CheckLink(int64_t seq, const Sha256Digest& stored_prev, const Sha256Digest& stored_hash,
                 const Sha256Digest& computed);
  // Checks the checkpoints at seqs <= seq against the row just computed.
  bool CheckCheckpoints(int64_t seq, const Sha256Digest& computed);
  void Advance(int64_t seq, const Sha256Digest& hash);

  std::string what_;  // "audit entry", "rental"
  Bytes public_key_;
  ChainReport report_;  // head = last verified row

 private:
  bool CheckpointSignatureOk(const AuditCheckpoint& cp) const;

  std::vector<AuditCheckpoint> checkpoints_;  // ascending seq
  CheckpointMessage message_;
  size_t next_checkpoint_ = 0;
  int64_t last_good_checkpoint_ = 0;
};

class AuditChainVerifier : public ChainVerifierBase {
 public:
  AuditChainVerifier(std::vector<AuditCheckpoint> checkpoints, ByteSpan public_key,
                     bool require_genesis = false);
  // Returns false once the chain is known bad (then Finish() says where).
  bool Add(const AuditEntry& entry);
  ChainReport Finish();

 private:
  bool require_genesis_;
};

class RentalChainVerifier : public ChainVerifierBase {
 public:
  explicit RentalChainVerifier(ByteSpan public_key, std::vector<AuditCheckpoint> checkpoints = {});
  bool Add(const Rental& rental);
};

}  // namespace cce::store::internal
