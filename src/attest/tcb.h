// tcb: Intel's TCB level matching for TDX (the algorithm of Intel's Quote
// Verification Library, TcbLevelCheck / TdxModuleCheck / TDRelaunchCheck,
// re-implemented): match the platform's SGX components and PCESVN (from the
// PCK certificate) and the TD's TEE_TCB_SVN against the TCB Info levels, check
// the TDX module identity, converge with the QE identity status, collect
// advisory ids. Pure functions over parsed inputs; no crypto.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/collateral.h"
#include "attest/pck_cert.h"
#include "attest/quote.h"
#include "base/status.h"

namespace cce::attest {

// The overall TCB status of a quote.
enum class TcbStatus {
  kUpToDate,
  kSWHardeningNeeded,
  kConfigurationNeeded,
  kConfigurationAndSWHardeningNeeded,
  kOutOfDate,
  kOutOfDateConfigurationNeeded,
  kTdRelaunchAdvised,  // TDX 1.5: out of date, but a relaunch of the TD would fix it
  kTdRelaunchAdvisedConfigurationNeeded,
  kRevoked,
  kNotSupported,  // no TCB level matches: the platform is older than anything Intel lists
};

std::string_view TcbStatusName(TcbStatus s);  // "UpToDate", "OutOfDate", ...
std::optional<TcbStatus> TcbStatusFromName(std::string_view name);
const std::vector<TcbStatus>& AllTcbStatuses();

// QE identity check result (the "QE TCB status").
struct QeIdentityResult {
  TcbStatus status = TcbStatus::kNotSupported;  // UpToDate, OutOfDate, Revoked or NotSupported
  std::optional<size_t> level_index;
  std::vector<std::string> advisory_ids;
};

// Checks the QE report against the QE identity. MISCSELECT, ATTRIBUTES (under
// their masks), MRSIGNER and ISVPRODID must match: a mismatch is an error
// (kPermissionDenied: the report is not from Intel's TD QE). The ISVSVN then
// selects the first level (highest isvsvn first) it meets.
StatusOr<QeIdentityResult> CheckQeIdentity(const QeIdentity& identity, const EnclaveReport& qe);

struct TcbEvaluation {
  TcbStatus status = TcbStatus::kNotSupported;
  std::optional<size_t> sgx_level_index;  // index into tcb_info.tcb_levels
  std::optional<size_t> tdx_level_index;
  std::optional<TcbStatus> tdx_module_status;  // nullopt: TDX 1.0 module, no identity check
  std::string tdx_module_identity_id;          // "TDX_03" when one was used
  QeIdentityResult qe;
  std::vector<std::string> advisory_ids;  // TCB level, module level and QE level, deduplicated
  std::vector<std::string> notes;         // why the status is what it is, in words
};

// Runs the matching. Errors (kPermissionDenied / kFailedPrecondition) are the
// cases Intel treats as verification failures rather than statuses: TCB Info
// for another FMSPC or PCE id, a TDX module MRSIGNER/attributes mismatch, no
// module identity for the TD's module version.
StatusOr<TcbEvaluation> EvaluateTcb(const TcbInfo& tcb_info, const PckExtensions& pck,
                                    const Quote& quote, const QeIdentityResult& qe);

}  // namespace cce::attest
