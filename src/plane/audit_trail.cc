// The AuditTrail service: the audit log as the API shows it (entries, one
// job's entries) and its verification: the hash chain recomputed from entry
// 1, every signed checkpoint, and the rental chain.
#include <algorithm>
#include <tuple>

#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;

// The stored checkpoints plus the file's, each distinct one once.
std::vector<api::SignedCheckpoint> CheckpointsToWire(
    std::vector<store::AuditCheckpoint> stored, const std::vector<store::AuditCheckpoint>& file) {
  stored.insert(stored.end(), file.begin(), file.end());
  std::sort(stored.begin(), stored.end(),
            [](const store::AuditCheckpoint& a, const store::AuditCheckpoint& b) {
              return std::tie(a.seq, a.at, a.signature) < std::tie(b.seq, b.at, b.signature);
            });
  stored.erase(std::unique(stored.begin(), stored.end()), stored.end());
  std::vector<api::SignedCheckpoint> out;
  out.reserve(stored.size());
  for (const auto& cp : stored) {
    out.push_back({cp.seq, crypto::ToHex(cp.hash), cp.at, crypto::ToHex(cp.signature)});
  }
  return out;
}

api::ChainReport ReportToWire(const store::ChainReport& r) {
  return {r.ok(),
          std::string(store::ChainFailureName(r.failure)),
          r.first_bad_seq,
          r.reason,
          r.entries_checked,
          r.checkpoints_checked,
          r.head.seq,
          crypto::ToHex(r.head.hash)};
}

}  // namespace

StatusOr<api::AuditList> AuditTrail::List(const store::AuditFilter& filter) {
  ASSIGN_OR_RETURN(auto entries, d_.db.ListAudit(filter));
  api::AuditList out;
  for (const auto& e : entries) {
    json details = json::parse(e.record.details_json, nullptr, /*allow_exceptions=*/false);
    if (details.is_discarded()) details = e.record.details_json;  // shown as stored
    out.entries.push_back({e.seq, e.record.at, e.record.actor, e.record.action, e.record.object,
                           std::string(store::AuditDecisionName(e.record.decision)),
                           std::move(details), e.record.details_json, crypto::ToHex(e.hash)});
  }
  if (static_cast<int64_t>(entries.size()) == filter.limit) out.next_after = entries.back().seq;
  return out;
}

StatusOr<api::AuditVerifyReport> AuditTrail::Verify(const Caller& caller) {
  ASSIGN_OR_RETURN(store::CheckpointFileContents file, ReadCheckpointFile());
  store::VerifyOptions audit_options{std::move(file.audit), /*require_genesis=*/true};
  store::VerifyOptions rental_options{std::move(file.rentals), /*require_genesis=*/false};
  ASSIGN_OR_RETURN(store::ChainReport audit,
                   store::VerifyAudit(d_.db, d_.plane_public_key, audit_options));
  ASSIGN_OR_RETURN(store::ChainReport rentals,
                   store::VerifyRentalChain(d_.db, d_.plane_public_key, rental_options));
  const bool ok = audit.ok() && rentals.ok();
  RETURN_IF_ERROR(audit_.Append(audit_.Record(
      caller.actor(), "audit.verify", "audit",
      ok ? store::AuditDecision::kInfo : store::AuditDecision::kDeny,
      {{"audit_ok", audit.ok()}, {"rentals_ok", rentals.ok()}, {"head_seq", audit.head.seq}})));
  return api::AuditVerifyReport{ok, ReportToWire(audit), ReportToWire(rentals)};
}

StatusOr<store::CheckpointFileContents> AuditTrail::ReadCheckpointFile() {
  if (d_.checkpoint_file.empty()) return store::CheckpointFileContents{};
  return store::ReadCheckpointFile(d_.checkpoint_file);
}

StatusOr<api::AuditCheckpoints> AuditTrail::Checkpoints() {
  // Like a CT log's signed tree head: the client gets a signature over the
  // head it is about to verify, not only the last periodic checkpoint.
  ASSIGN_OR_RETURN(store::AuditHead head, d_.db.GetAuditHead());
  ASSIGN_OR_RETURN(store::CheckpointFileContents file, ReadCheckpointFile());
  // Never sign over a chain that does not verify (a rewritten tail would
  // otherwise get the plane's signature).
  ASSIGN_OR_RETURN(
      store::ChainReport chain,
      store::VerifyAudit(d_.db, d_.plane_public_key, {file.audit, /*require_genesis=*/false}));
  ASSIGN_OR_RETURN(auto stored, d_.db.ListCheckpoints());
  const bool signed_already = !stored.empty() && stored.back().seq == head.seq;
  if (head.seq > 0 && !signed_already && chain.ok() && chain.head == head) {
    ASSIGN_OR_RETURN(store::AuditCheckpoint cp,
                     store::SignAuditCheckpoint(d_.signing_key, head, d_.clock.NowUnix()));
    RETURN_IF_ERROR(d_.db.AddCheckpoint(cp));  // a no-op at an already checkpointed seq
    // The file keeps every copy; re-read it so the answer has this one too.
    ASSIGN_OR_RETURN(file, ReadCheckpointFile());
  }
  ASSIGN_OR_RETURN(auto audit, d_.db.ListCheckpoints());  // with the one just added
  ASSIGN_OR_RETURN(auto rentals, d_.db.ListRentalCheckpoints());
  api::AuditCheckpoints out;
  out.public_key = crypto::ToHex(d_.plane_public_key);
  out.audit = CheckpointsToWire(std::move(audit), file.audit);
  out.rentals = CheckpointsToWire(std::move(rentals), file.rentals);
  return out;
}

StatusOr<api::ChainRentalList> AuditTrail::RentalChain(const store::RentalFilter& filter) {
  ASSIGN_OR_RETURN(auto rentals, d_.db.ListRentals(filter));
  api::ChainRentalList out;
  for (const auto& r : rentals) {
    out.rentals.push_back({r.seq, r.dataset_id, r.consumer_id, r.start, r.end, r.created_at,
                           crypto::ToHex(r.prev_hash), crypto::ToHex(r.hash),
                           crypto::ToHex(r.signature)});
  }
  if (static_cast<int64_t>(rentals.size()) == filter.limit) out.next_after = rentals.back().seq;
  return out;
}

}  // namespace cce::plane
