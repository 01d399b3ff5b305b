// The AuditTrail service: the audit log as the API shows it (entries, one
// job's entries) and its verification: the hash chain recomputed from entry
// 1, every signed checkpoint, and the rental chain.
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;

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
                           std::move(details), crypto::ToHex(e.hash)});
  }
  if (static_cast<int64_t>(entries.size()) == filter.limit) out.next_after = entries.back().seq;
  return out;
}

StatusOr<api::AuditVerifyReport> AuditTrail::Verify(const Caller& caller) {
  ASSIGN_OR_RETURN(store::ChainReport audit, store::VerifyAudit(d_.db, d_.plane_public_key));
  ASSIGN_OR_RETURN(store::ChainReport rentals,
                   store::VerifyRentalChain(d_.db, d_.plane_public_key));
  const bool ok = audit.ok() && rentals.ok();
  RETURN_IF_ERROR(audit_.Append(audit_.Record(
      caller.actor(), "audit.verify", "audit",
      ok ? store::AuditDecision::kInfo : store::AuditDecision::kDeny,
      {{"audit_ok", audit.ok()}, {"rentals_ok", rentals.ok()}, {"head_seq", audit.head.seq}})));
  return api::AuditVerifyReport{ok, ReportToWire(audit), ReportToWire(rentals)};
}

}  // namespace cce::plane
