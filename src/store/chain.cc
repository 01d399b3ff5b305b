// Canonical encodings of audit entries and rental records, and the chain
// verifiers. docs/store.md specifies the same bytes for independent checkers;
// chain_test.cc pins them with known-answer vectors.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "base/fd.h"
#include "store/chain_internal.h"
#include "store/store.h"

namespace cce::store {
namespace {

constexpr std::string_view kAuditDomain = "cce4long/audit/v1";
constexpr std::string_view kCheckpointDomain = "cce4long/audit-checkpoint/v1";
constexpr std::string_view kRentalDomain = "cce4long/rental/v1";
constexpr std::string_view kRentalSignatureDomain = "cce4long/rental-signature/v1";
constexpr std::string_view kRentalCheckpointDomain = "cce4long/rental-checkpoint/v1";
constexpr std::string_view kWalletLinkDomain = "cce4long/wallet-link/v1";
constexpr std::string_view kChainRentalDomain = "cce4long/chain-rental/v1";

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
    case ChainFailure::kNoGenesis: return "no signed genesis";
    case ChainFailure::kWentBackwards: return "head went backwards";
    case ChainFailure::kForked: return "fork";
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

Bytes RentalCheckpointMessage(int64_t seq, const Sha256Digest& hash, int64_t at) {
  return Encoder(kRentalCheckpointDomain).I64(seq).Raw(hash).I64(at).Take();
}

bool RentalRowIsSigned(const Rental& rental, ByteSpan plane_public_key) {
  return RentalHash(rental.prev_hash, rental) == rental.hash &&
         crypto::Ed25519VerifyMemoized(plane_public_key, RentalSignatureMessage(rental.hash),
                                       rental.signature);
}

Bytes WalletLinkSignatureMessage(const WalletLink& link) {
  return Encoder(kWalletLinkDomain).Str(link.address).I64(link.user_id).I64(link.linked_at).Take();
}

Bytes ChainRentalSignatureMessage(const ChainRental& r) {
  return Encoder(kChainRentalDomain)
      .Str(r.tx_hash)
      .I64(r.log_index)
      .I64(r.block_number)
      .Str(r.block_hash)
      .I64(r.dataset_id)
      .Str(r.payer)
      .I64(r.start)
      .I64(r.end)
      .I64(r.days)
      .Str(r.amount_wei)
      .I64(r.indexed_at)
      .Take();
}

bool WalletLinkIsSigned(const WalletLink& link, ByteSpan plane_public_key) {
  return crypto::Ed25519VerifyMemoized(plane_public_key, WalletLinkSignatureMessage(link),
                                       link.signature);
}

bool ChainRentalIsSigned(const ChainRental& rental, ByteSpan plane_public_key) {
  return crypto::Ed25519VerifyMemoized(plane_public_key, ChainRentalSignatureMessage(rental),
                                       rental.signature);
}

// ---- Verifiers ---------------------------------------------------------------

namespace internal {

ChainVerifierBase::ChainVerifierBase(std::string_view what,
                                     std::vector<AuditCheckpoint> checkpoints, ByteSpan public_key,
                                     CheckpointMessage message)
    : what_(what),
      public_key_(public_key.begin(), public_key.end()),
      checkpoints_(std::move(checkpoints)),
      message_(message) {
  std::stable_sort(
      checkpoints_.begin(), checkpoints_.end(),
      [](const AuditCheckpoint& a, const AuditCheckpoint& b) { return a.seq < b.seq; });
}

bool ChainVerifierBase::Fail(ChainFailure failure, int64_t seq, std::string reason) {
  if (report_.ok()) {
    report_.failure = failure;
    report_.first_bad_seq = seq;
    report_.reason = std::move(reason);
  }
  return false;
}

// Classifies a row whose seq is the expected one. Returns false on failure.
bool ChainVerifierBase::CheckLink(int64_t seq, const Sha256Digest& stored_prev,
                                  const Sha256Digest& stored_hash, const Sha256Digest& computed) {
  const bool link_ok = stored_prev == report_.head.hash;
  const bool hash_ok = stored_hash == computed;
  const std::string name = what_ + " " + Seq(seq);
  if (link_ok && hash_ok) return true;
  if (!link_ok && !hash_ok) {
    return Fail(ChainFailure::kReordered, seq,
                name + ": not linked to " + what_ + " " + Seq(seq - 1) +
                    " (its prev_hash is not that entry's hash): rows reordered, replaced, "
                    "or deleted and renumbered");
  }
  if (!hash_ok) {
    return Fail(ChainFailure::kEdited, seq,
                name + ": content does not match its stored hash: a column was edited");
  }
  return Fail(ChainFailure::kEdited, seq, name + ": its prev_hash column was edited");
}

bool ChainVerifierBase::CheckSeq(int64_t seq) {
  const int64_t expected = report_.head.seq + 1;
  if (seq == expected) return true;
  if (seq > expected) {
    return Fail(
        ChainFailure::kMissing, expected,
        what_ + " " + Seq(expected) + " is missing (the next one is " + Seq(seq) + "): deleted");
  }
  return Fail(ChainFailure::kReordered, seq,
              what_ + " " + Seq(seq) + " appears after " + Seq(report_.head.seq));
}

bool ChainVerifierBase::CheckpointSignatureOk(const AuditCheckpoint& cp) const {
  return crypto::Ed25519Verify(public_key_, message_(cp.seq, cp.hash, cp.at), cp.signature);
}

bool ChainVerifierBase::CheckCheckpoints(int64_t seq, const Sha256Digest& computed) {
  for (; next_checkpoint_ < checkpoints_.size() && checkpoints_[next_checkpoint_].seq <= seq;
       ++next_checkpoint_) {
    const AuditCheckpoint& cp = checkpoints_[next_checkpoint_];
    const std::string name = "checkpoint at seq " + Seq(cp.seq);
    if (!CheckpointSignatureOk(cp)) {
      return Fail(ChainFailure::kBadSignature, cp.seq,
                  name + ": signature does not verify with the plane key (forged)");
    }
    if (cp.seq != seq || cp.hash != computed) {
      return Fail(ChainFailure::kCheckpointMismatch, last_good_checkpoint_ + 1,
                  name + " does not match the chain: an entry in " +
                      Seq(last_good_checkpoint_ + 1) + ".." + Seq(cp.seq) +
                      " was rewritten and the hashes recomputed");
    }
    last_good_checkpoint_ = cp.seq;
    report_.signed_head = AuditHead{cp.seq, cp.hash};
    ++report_.checkpoints_checked;
  }
  return true;
}

void ChainVerifierBase::Advance(int64_t seq, const Sha256Digest& hash) {
  report_.head = AuditHead{seq, hash};
  ++report_.entries_checked;
}

ChainReport ChainVerifierBase::Finish() {
  if (report_.ok() && next_checkpoint_ < checkpoints_.size()) {
    const AuditCheckpoint& cp = checkpoints_[next_checkpoint_];
    if (!CheckpointSignatureOk(cp)) {
      Fail(ChainFailure::kBadSignature, cp.seq,
           "checkpoint at seq " + Seq(cp.seq) +
               ": signature does not verify with the plane key (forged)");
    } else {
      Fail(ChainFailure::kTruncated, report_.head.seq + 1,
           "checkpoint at seq " + Seq(cp.seq) + " is signed but the chain ends at seq " +
               Seq(report_.head.seq) + ": " + what_ + "s " + Seq(report_.head.seq + 1) + ".." +
               Seq(cp.seq) + " were deleted");
    }
  }
  return report_;
}

AuditChainVerifier::AuditChainVerifier(std::vector<AuditCheckpoint> checkpoints,
                                       ByteSpan public_key, bool require_genesis)
    : ChainVerifierBase("audit entry", std::move(checkpoints), public_key, &AuditCheckpointMessage),
      require_genesis_(require_genesis) {}

bool AuditChainVerifier::Add(const AuditEntry& e) {
  if (!report_.ok()) return false;
  if (!CheckSeq(e.seq)) return false;
  const Sha256Digest computed = AuditEntryHash(report_.head.hash, e.seq, e.record);
  if (!CheckLink(e.seq, e.prev_hash, e.hash, computed)) return false;
  if (!CheckCheckpoints(e.seq, computed)) return false;
  if (require_genesis_ && e.seq == 1 && report_.signed_head.seq != 1) {
    return Fail(ChainFailure::kNoGenesis, 1,
                "audit entry 1 has no signed checkpoint: the log does not start with the "
                "plane's signed genesis (replaced, or not this plane's log)");
  }
  Advance(e.seq, computed);
  return true;
}

ChainReport AuditChainVerifier::Finish() {
  ChainVerifierBase::Finish();
  if (report_.ok() && require_genesis_ && report_.head.seq == 0) {
    Fail(ChainFailure::kNoGenesis, 1,
         "the audit log is empty: entry 1, the plane's signed genesis, is missing (the log "
         "was emptied)");
  }
  return report_;
}

RentalChainVerifier::RentalChainVerifier(ByteSpan public_key,
                                         std::vector<AuditCheckpoint> checkpoints)
    : ChainVerifierBase("rental", std::move(checkpoints), public_key, &RentalCheckpointMessage) {}

bool RentalChainVerifier::Add(const Rental& r) {
  if (!report_.ok()) return false;
  if (!CheckSeq(r.seq)) return false;
  const Sha256Digest computed = RentalHash(report_.head.hash, r);
  if (!CheckLink(r.seq, r.prev_hash, r.hash, computed)) return false;
  if (!crypto::Ed25519Verify(public_key_, RentalSignatureMessage(computed), r.signature)) {
    return Fail(ChainFailure::kBadSignature, r.seq,
                "rental " + Seq(r.seq) +
                    ": signature does not verify with the plane key (forged, or the chain "
                    "was rewritten)");
  }
  if (!CheckCheckpoints(r.seq, computed)) return false;
  Advance(r.seq, computed);
  return true;
}

}  // namespace internal

namespace {

std::vector<AuditCheckpoint> Concat(std::vector<AuditCheckpoint> a,
                                    const std::vector<AuditCheckpoint>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

ChainReport VerifyAuditEntries(const std::vector<AuditEntry>& entries,
                               const std::vector<AuditCheckpoint>& checkpoints,
                               ByteSpan plane_public_key, bool require_genesis) {
  internal::AuditChainVerifier v(checkpoints, plane_public_key, require_genesis);
  for (const AuditEntry& e : entries) {
    if (!v.Add(e)) break;
  }
  return v.Finish();
}

StatusOr<ChainReport> VerifyAudit(Store& store, ByteSpan plane_public_key,
                                  const VerifyOptions& options) {
  ASSIGN_OR_RETURN(auto checkpoints, store.ListCheckpoints());
  internal::AuditChainVerifier v(Concat(std::move(checkpoints), options.extra_checkpoints),
                                 plane_public_key, options.require_genesis);
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

ChainReport VerifyRentalEntries(const std::vector<Rental>& rentals,
                                const std::vector<AuditCheckpoint>& checkpoints,
                                ByteSpan plane_public_key) {
  internal::RentalChainVerifier v(plane_public_key, checkpoints);
  for (const Rental& r : rentals) {
    if (!v.Add(r)) break;
  }
  return v.Finish();
}

StatusOr<ChainReport> VerifyRentalChain(Store& store, ByteSpan plane_public_key,
                                        const VerifyOptions& options) {
  ASSIGN_OR_RETURN(auto checkpoints, store.ListRentalCheckpoints());
  internal::RentalChainVerifier v(plane_public_key,
                                  Concat(std::move(checkpoints), options.extra_checkpoints));
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

void CheckAgainstRemembered(const AuditHead& remembered,
                            const std::function<Sha256Digest(int64_t seq)>& hash_at,
                            ChainReport* report) {
  if (!report->ok() || remembered.seq <= 0) return;
  const std::string r = Seq(remembered.seq);
  if (report->head.seq < remembered.seq) {
    report->failure = ChainFailure::kWentBackwards;
    report->first_bad_seq = report->head.seq + 1;
    report->reason = "head went backwards: a signed head at seq " + r +
                     " was verified before, but the chain now ends at seq " +
                     Seq(report->head.seq) + ": entries " + Seq(report->head.seq + 1) + ".." + r +
                     " were deleted";
    return;
  }
  const Sha256Digest now = hash_at(remembered.seq);
  if (now != remembered.hash) {
    report->failure = ChainFailure::kForked;
    report->first_bad_seq = remembered.seq;
    report->reason = "fork: entry " + r + " now hashes to " + crypto::ToHex(now) +
                     ", but the signed head verified before was " + crypto::ToHex(remembered.hash) +
                     ": the chain was rewritten";
  }
}

// ---- The checkpoint file ------------------------------------------------------

std::string_view ChainName(Chain chain) {
  return chain == Chain::kAudit ? "audit" : "rentals";
}

Status AppendCheckpointFile(const std::string& path, Chain chain, const AuditCheckpoint& cp) {
  const std::string line = std::string(ChainName(chain)) + " " + Seq(cp.seq) + " " +
                           crypto::ToHex(cp.hash) + " " + Seq(cp.at) + " " +
                           crypto::ToHex(cp.signature) + "\n";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("checkpoint file " + path, errno);
  // One write(2) of one short line with O_APPEND: concurrent appenders do
  // not interleave within a line.
  const ssize_t n = ::write(fd.get(), line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    return ErrnoStatus("checkpoint file " + path + ": write", n < 0 ? errno : EIO);
  }
  if (::fsync(fd.get()) != 0) return ErrnoStatus("checkpoint file " + path + ": fsync", errno);
  return Status::Ok();
}

StatusOr<CheckpointFileContents> ReadCheckpointFile(const std::string& path) {
  CheckpointFileContents out;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return out;
    return ErrnoStatus("checkpoint file " + path, errno);
  }
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const std::string where = path + ":" + Seq(n) + ": ";
    std::istringstream fields(line);
    std::string chain, hash_hex, sig_hex;
    AuditCheckpoint cp;
    if (!(fields >> chain >> cp.seq >> hash_hex >> cp.at >> sig_hex) || cp.seq <= 0) {
      return DataLoss(where + "expected '<chain> <seq> <hash hex> <at> <signature hex>'");
    }
    auto hash = crypto::FromHex(hash_hex);
    if (!hash.ok() || hash->size() != cp.hash.size()) {
      return DataLoss(where + "hash: expected 64 hex digits");
    }
    std::copy(hash->begin(), hash->end(), cp.hash.begin());
    auto sig = crypto::FromHex(sig_hex);
    if (!sig.ok()) return DataLoss(where + "signature: expected hex");
    cp.signature = std::move(sig).value();
    if (chain == "audit") {
      out.audit.push_back(std::move(cp));
    } else if (chain == "rentals") {
      out.rentals.push_back(std::move(cp));
    } else {
      return DataLoss(where + "chain: expected audit or rentals, got '" + chain + "'");
    }
  }
  return out;
}

}  // namespace cce::store
