// Canonical encodings of audit entries and rental records, and the chain
// verifiers. docs/store.md specifies the same bytes for independent checkers;
// chain_test.cc pins them with known-answer vectors.
#include <algorithm>
#include <string>
#include <utility>

#include "store/chain_internal.h"
#include "store/store.h"

namespace cce::store {
namespace {

constexpr std::string_view kAuditDomain = "cce4long/audit/v1";
constexpr std::string_view kCheckpointDomain = "cce4long/audit-checkpoint/v1";
constexpr std::string_view kRentalDomain = "cce4long/rental/v1";
constexpr std::string_view kRentalSignatureDomain = "cce4long/rental-signature/v1";

class Encoder {
 public:
  explicit Encoder(std::string_view domain) { Str(domain); }
  Encoder& I64(int64_t v) {
    const auto u = static_cast<uint64_t>(v);
    for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<uint8_t>(u >> shift));
    return *this;
  }
  // Callers bound every string far below 4 GiB (kMaxAuditDetailsBytes).
  Encoder& Str(std::string_view s) {
    const auto n = static_cast<uint32_t>(s.size());
    for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<uint8_t>(n >> shift));
    out_.insert(out_.end(), s.begin(), s.end());
    return *this;
  }
  Encoder& Raw(ByteSpan b) {
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  Bytes Take() { return std::move(out_); }

 private:
  Bytes out_;
};

Sha256Digest ChainHash(const Sha256Digest& prev, const Bytes& encoding) {
  crypto::Sha256Hasher h;
  h.Update(prev);
  h.Update(encoding);
  return h.Finish();
}

std::string Seq(int64_t seq) {
  return std::to_string(seq);
}

}  // namespace

std::string_view ChainFailureName(ChainFailure failure) {
  switch (failure) {
    case ChainFailure::kNone: return "ok";
    case ChainFailure::kMissing: return "missing";
    case ChainFailure::kEdited: return "edited";
    case ChainFailure::kReordered: return "reordered";
    case ChainFailure::kBadSignature: return "bad signature";
    case ChainFailure::kCheckpointMismatch: return "checkpoint mismatch";
    case ChainFailure::kTruncated: return "truncated";
  }
  return "unknown";
}

Bytes EncodeAuditEntry(int64_t seq, const AuditRecord& r) {
  return Encoder(kAuditDomain)
      .I64(seq)
      .I64(r.at)
      .Str(r.actor)
      .Str(r.action)
      .Str(r.object)
      .Str(AuditDecisionName(r.decision))
      .Str(r.details_json)
      .Take();
}

Sha256Digest AuditEntryHash(const Sha256Digest& prev_hash, int64_t seq, const AuditRecord& record) {
  return ChainHash(prev_hash, EncodeAuditEntry(seq, record));
}

Bytes AuditCheckpointMessage(int64_t seq, const Sha256Digest& hash, int64_t at) {
  return Encoder(kCheckpointDomain).I64(seq).Raw(hash).I64(at).Take();
}

StatusOr<AuditCheckpoint> SignAuditCheckpoint(const crypto::Ed25519PrivateKey& key,
                                              const AuditHead& head, int64_t at) {
  if (head.seq <= 0) return FailedPrecondition("audit checkpoint: the audit log is empty");
  ASSIGN_OR_RETURN(auto sig, key.Sign(AuditCheckpointMessage(head.seq, head.hash, at)));
  return AuditCheckpoint{head.seq, head.hash, Bytes(sig.begin(), sig.end()), at};
}

Bytes EncodeRental(const Rental& r) {
  return Encoder(kRentalDomain)
      .I64(r.seq)
      .I64(r.dataset_id)
      .I64(r.consumer_id)
      .I64(r.start)
      .I64(r.end)
      .I64(r.created_at)
      .Take();
}

Sha256Digest RentalHash(const Sha256Digest& prev_hash, const Rental& rental) {
  return ChainHash(prev_hash, EncodeRental(rental));
}

Bytes RentalSignatureMessage(const Sha256Digest& hash) {
  return Encoder(kRentalSignatureDomain).Raw(hash).Take();
}

// ---- Verifiers ---------------------------------------------------------------

namespace internal {

bool ChainVerifierBase::Fail(ChainFailure failure, int64_t seq, std::string reason) {
  if (report_.ok()) {
    report_.failure = failure;
    report_.first_bad_seq = seq;
    report_.reason = std::move(reason);
  }
  return false;
}

// Classifies a row whose seq is the expected one. Returns false on failure.
bool ChainVerifierBase::CheckLink(std::string_view what, int64_t seq,
                                  const Sha256Digest& stored_prev, const Sha256Digest& stored_hash,
                                  const Sha256Digest& computed) {
  const bool link_ok = stored_prev == report_.head.hash;
  const bool hash_ok = stored_hash == computed;
  const std::string name = std::string(what) + " " + Seq(seq);
  if (link_ok && hash_ok) return true;
  if (!link_ok && !hash_ok) {
    return Fail(ChainFailure::kReordered, seq,
                name + ": not linked to " + std::string(what) + " " + Seq(seq - 1) +
                    " (its prev_hash is not that entry's hash): rows reordered, replaced, "
                    "or deleted and renumbered");
  }
  if (!hash_ok) {
    return Fail(ChainFailure::kEdited, seq,
                name + ": content does not match its stored hash: a column was edited");
  }
  return Fail(ChainFailure::kEdited, seq, name + ": its prev_hash column was edited");
}

bool ChainVerifierBase::CheckSeq(std::string_view what, int64_t seq) {
  const int64_t expected = report_.head.seq + 1;
  if (seq == expected) return true;
  if (seq > expected) {
    return Fail(ChainFailure::kMissing, expected,
                std::string(what) + " " + Seq(expected) + " is missing (the next one is " +
                    Seq(seq) + "): deleted");
  }
  return Fail(ChainFailure::kReordered, seq,
              std::string(what) + " " + Seq(seq) + " appears after " + Seq(report_.head.seq));
}

void ChainVerifierBase::Advance(int64_t seq, const Sha256Digest& hash) {
  report_.head = AuditHead{seq, hash};
  ++report_.entries_checked;
}

AuditChainVerifier::AuditChainVerifier(std::vector<AuditCheckpoint> checkpoints,
                                       ByteSpan public_key)
    : checkpoints_(std::move(checkpoints)), public_key_(public_key.begin(), public_key.end()) {
  std::stable_sort(
      checkpoints_.begin(), checkpoints_.end(),
      [](const AuditCheckpoint& a, const AuditCheckpoint& b) { return a.seq < b.seq; });
}

bool AuditChainVerifier::CheckpointSignatureOk(const AuditCheckpoint& cp) const {
  return crypto::Ed25519Verify(public_key_, AuditCheckpointMessage(cp.seq, cp.hash, cp.at),
                               cp.signature);
}

bool AuditChainVerifier::Add(const AuditEntry& e) {
  if (!report_.ok()) return false;
  if (!CheckSeq("audit entry", e.seq)) return false;
  const Sha256Digest computed = AuditEntryHash(report_.head.hash, e.seq, e.record);
  if (!CheckLink("audit entry", e.seq, e.prev_hash, e.hash, computed)) return false;
  for (; next_checkpoint_ < checkpoints_.size() && checkpoints_[next_checkpoint_].seq <= e.seq;
       ++next_checkpoint_) {
    const AuditCheckpoint& cp = checkpoints_[next_checkpoint_];
    const std::string name = "checkpoint at seq " + Seq(cp.seq);
    if (!CheckpointSignatureOk(cp)) {
      return Fail(ChainFailure::kBadSignature, cp.seq,
                  name + ": signature does not verify with the plane key (forged)");
    }
    if (cp.seq != e.seq || cp.hash != computed) {
      return Fail(ChainFailure::kCheckpointMismatch, last_good_checkpoint_ + 1,
                  name + " does not match the chain: an entry in " +
                      Seq(last_good_checkpoint_ + 1) + ".." + Seq(cp.seq) +
                      " was rewritten and the hashes recomputed");
    }
    last_good_checkpoint_ = cp.seq;
    ++report_.checkpoints_checked;
  }
  Advance(e.seq, computed);
  return true;
}

ChainReport AuditChainVerifier::Finish() {
  if (report_.ok() && next_checkpoint_ < checkpoints_.size()) {
    const AuditCheckpoint& cp = checkpoints_[next_checkpoint_];
    if (!CheckpointSignatureOk(cp)) {
      Fail(ChainFailure::kBadSignature, cp.seq,
           "checkpoint at seq " + Seq(cp.seq) +
               ": signature does not verify with the plane key (forged)");
    } else {
      Fail(ChainFailure::kTruncated, report_.head.seq + 1,
           "checkpoint at seq " + Seq(cp.seq) + " is signed but the log ends at seq " +
               Seq(report_.head.seq) + ": entries " + Seq(report_.head.seq + 1) + ".." +
               Seq(cp.seq) + " were deleted");
    }
  }
  return report_;
}

RentalChainVerifier::RentalChainVerifier(ByteSpan public_key)
    : public_key_(public_key.begin(), public_key.end()) {}

bool RentalChainVerifier::Add(const Rental& r) {
  if (!report_.ok()) return false;
  if (!CheckSeq("rental", r.seq)) return false;
  const Sha256Digest computed = RentalHash(report_.head.hash, r);
  if (!CheckLink("rental", r.seq, r.prev_hash, r.hash, computed)) return false;
  if (!crypto::Ed25519Verify(public_key_, RentalSignatureMessage(computed), r.signature)) {
    return Fail(ChainFailure::kBadSignature, r.seq,
                "rental " + Seq(r.seq) +
                    ": signature does not verify with the plane key (forged, or the chain "
                    "was rewritten)");
  }
  Advance(r.seq, computed);
  return true;
}

}  // namespace internal

ChainReport VerifyAuditEntries(const std::vector<AuditEntry>& entries,
                               const std::vector<AuditCheckpoint>& checkpoints,
                               ByteSpan plane_public_key) {
  internal::AuditChainVerifier v(checkpoints, plane_public_key);
  for (const AuditEntry& e : entries) {
    if (!v.Add(e)) break;
  }
  return v.Finish();
}

StatusOr<ChainReport> VerifyAudit(Store& store, ByteSpan plane_public_key) {
  ASSIGN_OR_RETURN(auto checkpoints, store.ListCheckpoints());
  internal::AuditChainVerifier v(std::move(checkpoints), plane_public_key);
  AuditFilter page;
  page.limit = 1000;
  while (true) {
    ASSIGN_OR_RETURN(auto entries, store.ListAudit(page));
    for (const AuditEntry& e : entries) {
      if (!v.Add(e)) return v.Finish();
    }
    if (entries.size() < static_cast<size_t>(page.limit)) break;
    page.after_seq = entries.back().seq;
  }
  return v.Finish();
}

StatusOr<ChainReport> VerifyRentalChain(Store& store, ByteSpan plane_public_key) {
  internal::RentalChainVerifier v(plane_public_key);
  RentalFilter page;
  page.limit = 1000;
  while (true) {
    ASSIGN_OR_RETURN(auto rentals, store.ListRentals(page));
    for (const Rental& r : rentals) {
      if (!v.Add(r)) return v.Finish();
    }
    if (rentals.size() < static_cast<size_t>(page.limit)) break;
    page.after_seq = rentals.back().seq;
  }
  return v.Finish();
}

}  // namespace cce::store
