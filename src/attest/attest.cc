#include "attest/attest.h"

#include <nlohmann/json.hpp>

#include "attest/time_util.h"

namespace cce::attest {

StatusOr<Verification> VerifyQuote(crypto::ByteSpan quote, const Collateral& collateral,
                                   const Policy& policy, int64_t now_unix,
                                   std::optional<crypto::ByteSpan> expected_report_data,
                                   const TrustAnchors& anchors, const CheckedCollateral* checked) {
  if (expected_report_data.has_value() && expected_report_data->size() != 64) {
    return InvalidArgument("expected report data must be 64 bytes, got " +
                           std::to_string(expected_report_data->size()));
  }
  Verification v;
  ASSIGN_OR_RETURN(v.dcap, VerifyDcap(quote, collateral, anchors, now_unix, checked));
  ASSIGN_OR_RETURN(PolicyDecision d,
                   EvaluatePolicy(v.dcap, policy, now_unix, expected_report_data));
  v.accepted = d.accepted;
  v.reasons = std::move(d.reasons);
  return v;
}

std::string VerificationToJson(const Verification& v) {
  using crypto::ToHex;
  const DcapVerification& d = v.dcap;
  const TdReportBody& b = d.quote.body;
  nlohmann::json j;
  j["verdict"] = v.accepted ? "accepted" : "rejected";
  j["reasons"] = v.reasons;
  j["simulated"] = d.simulated;
  j["tcb_status"] = std::string(TcbStatusName(d.tcb.status));
  j["advisory_ids"] = d.tcb.advisory_ids;
  j["notes"] = d.notes;
  j["pck_crl_checked"] = d.pck_crl == PckCrlStatus::kChecked;
  j["fmspc"] = ToHex(d.pck.fmspc);
  j["pce_svn"] = d.pck.pce_svn;
  j["tcb_evaluation_data_number"] = d.tcb_evaluation_data_number;
  j["collateral_oldest_issue"] = FormatRfc3339Utc(d.collateral_oldest_issue_unix);
  j["collateral_earliest_expiry"] = FormatRfc3339Utc(d.collateral_earliest_expiry_unix);
  j["quote_version"] = d.quote.header.version;
  j["body_type"] = d.quote.body_type;
  nlohmann::json m;
  m["tee_tcb_svn"] = ToHex(b.tee_tcb_svn);
  m["mr_seam"] = ToHex(b.mr_seam);
  m["mr_signer_seam"] = ToHex(b.mr_signer_seam);
  m["seam_attributes"] = ToHex(b.seam_attributes);
  m["td_attributes"] = ToHex(b.td_attributes);
  m["xfam"] = ToHex(b.xfam);
  m["mr_td"] = ToHex(b.mr_td);
  m["mr_config_id"] = ToHex(b.mr_config_id);
  m["mr_owner"] = ToHex(b.mr_owner);
  m["mr_owner_config"] = ToHex(b.mr_owner_config);
  for (size_t i = 0; i < 4; ++i) m["rtmr" + std::to_string(i)] = ToHex(b.rtmr[i]);
  if (b.tee_tcb_svn2.has_value()) m["tee_tcb_svn2"] = ToHex(*b.tee_tcb_svn2);
  if (b.mr_service_td.has_value()) m["mr_service_td"] = ToHex(*b.mr_service_td);
  j["measurements"] = m;
  j["report_data"] = ToHex(b.report_data);
  j["debug"] = (b.TdAttributes() & kTdAttributeDebug) != 0;
  return j.dump(2);
}

}  // namespace cce::attest
