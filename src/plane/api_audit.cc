// The audit log over HTTP: GET /api/v1/audit (list, optionally one job's
// entries) and GET /api/v1/audit/verify, which recomputes the hash chain from
// entry 1, checks every signed checkpoint and the rental chain, and names the
// first bad entry.
#include "plane/api.h"

namespace cce::plane {
namespace {

json EntryJson(const store::AuditEntry& e) {
  json details = json::parse(e.record.details_json, nullptr, /*allow_exceptions=*/false);
  if (details.is_discarded()) details = e.record.details_json;  // shown as stored
  return {{"seq", e.seq},
          {"at", e.record.at},
          {"actor", e.record.actor},
          {"action", e.record.action},
          {"object", e.record.object},
          {"decision", std::string(store::AuditDecisionName(e.record.decision))},
          {"details", details},
          {"hash", crypto::ToHex(e.hash)}};
}

json ReportJson(const store::ChainReport& r) {
  return {{"ok", r.ok()},
          {"failure", std::string(store::ChainFailureName(r.failure))},
          {"first_bad_seq", r.first_bad_seq},
          {"reason", r.reason},
          {"entries_checked", r.entries_checked},
          {"checkpoints_checked", r.checkpoints_checked},
          {"head_seq", r.head.seq},
          {"head_hash", crypto::ToHex(r.head.hash)}};
}

}  // namespace

void Api::RegisterAudit(httplib::Server& svr) {
  Route(svr, "GET", "/api/v1/audit", {Role::kOperator, Role::kReviewer},
        [this](const Caller&, const httplib::Request& req) -> StatusOr<ApiResult> {
          store::AuditFilter f;
          ASSIGN_OR_RETURN(f.after_seq, IntParam(req, "after", 0, 0, INT64_MAX));
          ASSIGN_OR_RETURN(f.limit, IntParam(req, "limit", 1000, 1, 10000));
          if (req.has_param("job")) {
            std::string job = req.get_param_value("job");
            if (job.rfind("job-", 0) != 0) {
              return InvalidArgument("query parameter 'job': expected a job id (job-...)");
            }
            f.object = "job:" + job;
          }
          ASSIGN_OR_RETURN(auto entries, db_.ListAudit(f));
          json arr = json::array();
          for (const auto& e : entries) arr.push_back(EntryJson(e));
          json out = {{"entries", arr}};
          if (static_cast<int64_t>(entries.size()) == f.limit)
            out["next_after"] = entries.back().seq;
          return ApiResult{200, out};
        });

  Route(svr, "GET", "/api/v1/audit/verify", {Role::kOperator},
        [this](const Caller& c, const httplib::Request&) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(store::ChainReport audit, store::VerifyAudit(db_, plane_public_key_));
          ASSIGN_OR_RETURN(store::ChainReport rentals,
                           store::VerifyRentalChain(db_, plane_public_key_));
          const bool ok = audit.ok() && rentals.ok();
          (void)db_.AppendAudit(
              AuditFor(c, "audit.verify", "audit",
                       ok ? store::AuditDecision::kInfo : store::AuditDecision::kDeny,
                       json{{"audit_ok", audit.ok()},
                            {"rentals_ok", rentals.ok()},
                            {"head_seq", audit.head.seq}}
                           .dump()));
          return ApiResult{
              200, {{"ok", ok}, {"audit", ReportJson(audit)}, {"rentals", ReportJson(rentals)}}};
        });
}

}  // namespace cce::plane
