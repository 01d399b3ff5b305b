#include "attest/tcb.h"

#include <algorithm>
#include <cctype>
#include <numeric>

#include "attest/time_util.h"

namespace cce::attest {
namespace {

using crypto::ToHex;

TcbStatus FromLevel(TcbLevelStatus s) {
  switch (s) {
    case TcbLevelStatus::kUpToDate: return TcbStatus::kUpToDate;
    case TcbLevelStatus::kSWHardeningNeeded: return TcbStatus::kSWHardeningNeeded;
    case TcbLevelStatus::kConfigurationNeeded: return TcbStatus::kConfigurationNeeded;
    case TcbLevelStatus::kConfigurationAndSWHardeningNeeded:
      return TcbStatus::kConfigurationAndSWHardeningNeeded;
    case TcbLevelStatus::kOutOfDate: return TcbStatus::kOutOfDate;
    case TcbLevelStatus::kOutOfDateConfigurationNeeded:
      return TcbStatus::kOutOfDateConfigurationNeeded;
    case TcbLevelStatus::kRevoked: return TcbStatus::kRevoked;
  }
  return TcbStatus::kRevoked;
}

std::string Svns(const std::array<uint8_t, 16>& a) {
  std::string s = "[";
  for (size_t i = 0; i < a.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(a[i]);
  }
  return s + "]";
}

std::string Day(int64_t t) {
  return FormatRfc3339Utc(t).substr(0, 10);
}

bool SgxHigherOrEqual(const PckExtensions& pck, const TcbLevel& level) {
  for (size_t i = 0; i < 16; ++i) {
    if (pck.sgx_tcb_components[i] < level.sgx_components[i]) return false;
  }
  return pck.pce_svn >= level.pce_svn;
}

// TEE_TCB_SVN[0] and [1] are the TDX module's SVN and version; with a module
// identity in play (version > 0) they are checked against it instead, so the
// comparison starts at index 2.
bool TdxHigherOrEqual(const std::array<uint8_t, 16>& tee_tcb_svn, const TcbLevel& level) {
  const size_t start = tee_tcb_svn[1] > 0 ? 2 : 0;
  for (size_t i = start; i < 16; ++i) {
    if (tee_tcb_svn[i] < level.tdx_components[i]) return false;
  }
  return true;
}

// Identity levels, highest isvsvn first (Intel evaluates them in that order).
std::vector<size_t> ByIsvSvnDescending(const std::vector<IdentityTcbLevel>& levels) {
  std::vector<size_t> order(levels.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&levels](size_t a, size_t b) { return levels[a].isv_svn > levels[b].isv_svn; });
  return order;
}

std::string ModuleId(uint8_t version) {
  const uint8_t v[1] = {version};
  std::string hex = ToHex(v);
  for (char& c : hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return "TDX_" + hex;
}

bool SameIdIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

bool IsConfigurationNeeded(TcbStatus s) {
  return s == TcbStatus::kConfigurationNeeded || s == TcbStatus::kOutOfDateConfigurationNeeded ||
         s == TcbStatus::kConfigurationAndSWHardeningNeeded ||
         s == TcbStatus::kTdRelaunchAdvisedConfigurationNeeded;
}

// A component status (TDX module or QE) folded into the TCB level status.
TcbStatus Converge(TcbStatus level, TcbStatus component) {
  if (component == TcbStatus::kOutOfDate) {
    if (level == TcbStatus::kUpToDate || level == TcbStatus::kSWHardeningNeeded) {
      return TcbStatus::kOutOfDate;
    }
    if (level == TcbStatus::kConfigurationNeeded ||
        level == TcbStatus::kConfigurationAndSWHardeningNeeded) {
      return TcbStatus::kOutOfDateConfigurationNeeded;
    }
  }
  if (component == TcbStatus::kRevoked) return TcbStatus::kRevoked;
  if (component == TcbStatus::kNotSupported) return TcbStatus::kNotSupported;
  return level;
}

void AddAdvisories(std::vector<std::string>& out, const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
}

}  // namespace

std::string_view TcbStatusName(TcbStatus s) {
  switch (s) {
    case TcbStatus::kUpToDate: return "UpToDate";
    case TcbStatus::kSWHardeningNeeded: return "SWHardeningNeeded";
    case TcbStatus::kConfigurationNeeded: return "ConfigurationNeeded";
    case TcbStatus::kConfigurationAndSWHardeningNeeded: return "ConfigurationAndSWHardeningNeeded";
    case TcbStatus::kOutOfDate: return "OutOfDate";
    case TcbStatus::kOutOfDateConfigurationNeeded: return "OutOfDateConfigurationNeeded";
    case TcbStatus::kTdRelaunchAdvised: return "TDRelaunchAdvised";
    case TcbStatus::kTdRelaunchAdvisedConfigurationNeeded:
      return "TDRelaunchAdvisedConfigurationNeeded";
    case TcbStatus::kRevoked: return "Revoked";
    case TcbStatus::kNotSupported: return "NotSupported";
  }
  return "NotSupported";
}

const std::vector<TcbStatus>& AllTcbStatuses() {
  static const std::vector<TcbStatus> kAll = {
      TcbStatus::kUpToDate,
      TcbStatus::kSWHardeningNeeded,
      TcbStatus::kConfigurationNeeded,
      TcbStatus::kConfigurationAndSWHardeningNeeded,
      TcbStatus::kOutOfDate,
      TcbStatus::kOutOfDateConfigurationNeeded,
      TcbStatus::kTdRelaunchAdvised,
      TcbStatus::kTdRelaunchAdvisedConfigurationNeeded,
      TcbStatus::kRevoked,
      TcbStatus::kNotSupported,
  };
  return kAll;
}

std::optional<TcbStatus> TcbStatusFromName(std::string_view name) {
  for (TcbStatus s : AllTcbStatuses()) {
    if (TcbStatusName(s) == name) return s;
  }
  return std::nullopt;
}

StatusOr<QeIdentityResult> CheckQeIdentity(const QeIdentity& id, const EnclaveReport& qe) {
  if ((qe.misc_select & id.miscselect_mask) != id.miscselect) {
    return PermissionDenied("QE identity mismatch: QE report MISCSELECT " +
                            std::to_string(qe.misc_select) + " under mask does not match");
  }
  for (size_t i = 0; i < 16; ++i) {
    if ((qe.attributes[i] & id.attributes_mask[i]) != id.attributes[i]) {
      return PermissionDenied("QE identity mismatch: QE report ATTRIBUTES " + ToHex(qe.attributes) +
                              " under mask " + ToHex(id.attributes_mask) + " are not " +
                              ToHex(id.attributes));
    }
  }
  if (qe.mr_signer != id.mrsigner) {
    return PermissionDenied("QE identity mismatch: QE report MRSIGNER " + ToHex(qe.mr_signer) +
                            " is not " + ToHex(id.mrsigner));
  }
  if (qe.isv_prod_id != id.isv_prod_id) {
    return PermissionDenied("QE identity mismatch: QE report ISVPRODID " +
                            std::to_string(qe.isv_prod_id) + " is not " +
                            std::to_string(id.isv_prod_id));
  }
  QeIdentityResult r;
  for (size_t i : ByIsvSvnDescending(id.tcb_levels)) {
    if (qe.isv_svn >= id.tcb_levels[i].isv_svn) {
      r.status = FromLevel(id.tcb_levels[i].status);
      r.level_index = i;
      r.advisory_ids = id.tcb_levels[i].advisory_ids;
      return r;
    }
  }
  r.status = TcbStatus::kNotSupported;
  return r;
}

StatusOr<TcbEvaluation> EvaluateTcb(const TcbInfo& info, const PckExtensions& pck,
                                    const Quote& quote, const QeIdentityResult& qe) {
  if (info.fmspc != pck.fmspc) {
    return FailedPrecondition("TCB Info is for FMSPC " + ToHex(info.fmspc) +
                              " but the PCK certificate's FMSPC is " + ToHex(pck.fmspc));
  }
  if (info.pce_id != pck.pce_id) {
    return FailedPrecondition("TCB Info is for PCE id " + ToHex(info.pce_id) +
                              " but the PCK certificate's PCE id is " + ToHex(pck.pce_id));
  }
  const TdReportBody& body = quote.body;
  const uint8_t module_version = body.tee_tcb_svn[1];
  const uint8_t module_svn = body.tee_tcb_svn[0];

  // The TDX module identity: the TCB Info's tdxModule by default, the
  // matching tdxModuleIdentities entry for module versions above 0.
  const TdxModuleIdentity* module_identity = nullptr;
  const std::array<uint8_t, 48>* mrsigner = &info.tdx_module_mrsigner;
  const std::array<uint8_t, 8>* attributes = &info.tdx_module_attributes;
  const std::array<uint8_t, 8>* mask = &info.tdx_module_attributes_mask;
  TcbEvaluation ev;
  ev.qe = qe;
  if (module_version > 0) {
    const std::string want = ModuleId(module_version);
    for (const TdxModuleIdentity& m : info.tdx_module_identities) {
      if (SameIdIgnoringCase(m.id, want)) {
        module_identity = &m;
        break;
      }
    }
    if (module_identity == nullptr) {
      return PermissionDenied(
          "TDX module mismatch: TEE_TCB_SVN[1] = " + std::to_string(module_version) +
          " but the TCB Info has no " + want + " module identity");
    }
    ev.tdx_module_identity_id = module_identity->id;
    mrsigner = &module_identity->mrsigner;
    attributes = &module_identity->attributes;
    mask = &module_identity->attributes_mask;
  }
  if (body.mr_signer_seam != *mrsigner) {
    return PermissionDenied("TDX module mismatch: MRSIGNERSEAM " + ToHex(body.mr_signer_seam) +
                            " is not " + ToHex(*mrsigner));
  }
  for (size_t i = 0; i < 8; ++i) {
    // A production SEAM module has no attributes set.
    if (body.seam_attributes[i] != 0 ||
        (body.seam_attributes[i] & (*mask)[i]) != ((*attributes)[i] & (*mask)[i])) {
      return PermissionDenied("TDX module mismatch: SEAMATTRIBUTES " + ToHex(body.seam_attributes) +
                              " are not zero / " + ToHex(*attributes));
    }
  }

  // TCB levels in document order (Intel: newest first). The SGX level is the
  // first whose SGX components and PCESVN the platform meets; the TDX level
  // the first that also meets the TEE_TCB_SVN.
  const std::vector<TcbLevel>& levels = info.tcb_levels;
  for (size_t i = 0; i < levels.size(); ++i) {
    if (!SgxHigherOrEqual(pck, levels[i])) continue;
    if (!ev.sgx_level_index.has_value()) ev.sgx_level_index = i;
    if (TdxHigherOrEqual(body.tee_tcb_svn, levels[i])) {
      ev.tdx_level_index = i;
      break;
    }
  }
  if (!ev.sgx_level_index.has_value()) {
    ev.status = TcbStatus::kNotSupported;
    ev.notes.push_back("no TCB level matches the platform: PCK SGX components " +
                       Svns(pck.sgx_tcb_components) + " and PCESVN " + std::to_string(pck.pce_svn) +
                       " are below every level's");
    return ev;
  }
  if (!ev.tdx_level_index.has_value()) {
    ev.status = TcbStatus::kNotSupported;
    ev.notes.push_back("no TCB level matches the TD: TEE_TCB_SVN " + Svns(body.tee_tcb_svn) +
                       " is below every level the platform's SGX TCB meets");
    return ev;
  }
  const TcbLevel& sgx_level = levels[*ev.sgx_level_index];
  const TcbLevel& tdx_level = levels[*ev.tdx_level_index];
  const TcbStatus sgx_status = FromLevel(sgx_level.status);
  ev.notes.push_back("TCB level " + Day(tdx_level.tcb_date) + " (index " +
                     std::to_string(*ev.tdx_level_index) +
                     ") matched: " + std::string(TcbLevelStatusName(tdx_level.status)));
  AddAdvisories(ev.advisory_ids, tdx_level.advisory_ids);

  // TDX module: only with a module identity (version > 0).
  TcbStatus module_status = TcbStatus::kUpToDate;
  if (module_identity != nullptr) {
    const IdentityTcbLevel* matched = nullptr;
    for (size_t i : ByIsvSvnDescending(module_identity->tcb_levels)) {
      if (module_svn >= module_identity->tcb_levels[i].isv_svn) {
        matched = &module_identity->tcb_levels[i];
        break;
      }
    }
    if (matched == nullptr) {
      ev.tdx_module_status = TcbStatus::kNotSupported;
      ev.status = TcbStatus::kNotSupported;
      ev.notes.push_back("TDX module " + module_identity->id + " SVN " +
                         std::to_string(module_svn) + " is below every module TCB level");
      return ev;
    }
    module_status = FromLevel(matched->status);
    ev.tdx_module_status = module_status;
    AddAdvisories(ev.advisory_ids, matched->advisory_ids);
    ev.notes.push_back("TDX module " + module_identity->id + " SVN " + std::to_string(module_svn) +
                       " matched module level " + std::to_string(matched->isv_svn) + ": " +
                       std::string(TcbLevelStatusName(matched->status)));
  }
  TcbStatus tdx_status = Converge(FromLevel(tdx_level.status), module_status);
  if (tdx_status == TcbStatus::kRevoked) {
    ev.status = tdx_status;
    return ev;
  }

  // TDX 1.5: a TD whose module was updated in place may only need a relaunch.
  const bool qe_ok = qe.status != TcbStatus::kOutOfDate && qe.status != TcbStatus::kRevoked &&
                     qe.status != TcbStatus::kNotSupported;
  if (quote.body_type == kBodyTypeTdx15 && body.tee_tcb_svn2.has_value() && qe_ok &&
      (sgx_status == TcbStatus::kUpToDate || sgx_status == TcbStatus::kSWHardeningNeeded ||
       sgx_status == TcbStatus::kConfigurationNeeded ||
       sgx_status == TcbStatus::kConfigurationAndSWHardeningNeeded) &&
      (tdx_status == TcbStatus::kOutOfDate ||
       tdx_status == TcbStatus::kOutOfDateConfigurationNeeded) &&
      module_status == TcbStatus::kOutOfDate) {
    const auto& svn2 = *body.tee_tcb_svn2;
    const TcbLevel& latest = levels.front();
    bool relaunch = false;
    if (svn2[1] == 0) {
      relaunch = svn2[0] >= latest.tdx_components[0] && svn2[2] >= latest.tdx_components[2];
    } else {
      const std::string want2 = ModuleId(svn2[1]);
      const TdxModuleIdentity* m2 = nullptr;
      for (const TdxModuleIdentity& m : info.tdx_module_identities) {
        if (SameIdIgnoringCase(m.id, want2)) m2 = &m;
      }
      if (m2 == nullptr) {
        return PermissionDenied(
            "TDX module mismatch: TEE_TCB_SVN2[1] = " + std::to_string(svn2[1]) +
            " but the TCB Info has no " + want2 + " module identity");
      }
      const size_t top = ByIsvSvnDescending(m2->tcb_levels).front();
      relaunch = svn2[0] >= m2->tcb_levels[top].isv_svn && svn2[2] >= latest.tdx_components[2];
    }
    if (relaunch) {
      tdx_status = IsConfigurationNeeded(sgx_status) || IsConfigurationNeeded(tdx_status)
                       ? TcbStatus::kTdRelaunchAdvisedConfigurationNeeded
                       : TcbStatus::kTdRelaunchAdvised;
      ev.notes.emplace_back(
          "TEE_TCB_SVN2 meets the latest level: relaunching the TD would update it");
    }
  }

  ev.status = Converge(tdx_status, qe.status);
  if (qe.level_index.has_value()) AddAdvisories(ev.advisory_ids, qe.advisory_ids);
  if (qe.status != TcbStatus::kUpToDate) {
    ev.notes.push_back("QE identity status " + std::string(TcbStatusName(qe.status)));
  }
  return ev;
}

}  // namespace cce::attest
