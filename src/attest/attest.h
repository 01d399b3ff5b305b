// attest: the public entry point of TDX quote verification. One call runs
// the DCAP chain (verify.h) and the policy (policy.h) and returns the verdict
// with every reason. Collateral comes from Collateral::LoadDir, the policy
// from Policy::Load or Policy::Default. See docs/attestation.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attest/collateral.h"
#include "attest/policy.h"
#include "attest/quote.h"
#include "attest/tcb.h"
#include "attest/verify.h"
#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::attest {

struct Verification {
  DcapVerification dcap;             // what the quote proves (measurements, TCB, ...)
  bool accepted = false;             // policy verdict
  std::vector<std::string> reasons;  // every policy rule it fails; empty when accepted
};

// Verifies quote at now_unix (from a Clock, never the wall clock directly).
// Errors are hard failures (see VerifyDcap for the codes; kInvalidArgument
// also for an expected_report_data that is not 64 bytes). A quote that
// verifies but fails the policy is a Verification with accepted == false.
// Exit-code mapping for a CLI: ok && accepted -> 0; ok && !accepted, or
// kPermissionDenied / kFailedPrecondition -> 1 (rejected); kInvalidArgument /
// kNotFound -> 2 (bad input).
StatusOr<Verification> VerifyQuote(crypto::ByteSpan quote, const Collateral& collateral,
                                   const Policy& policy, int64_t now_unix,
                                   std::optional<crypto::ByteSpan> expected_report_data,
                                   const TrustAnchors& anchors = IntelTrustAnchors(),
                                   const CheckedCollateral* checked = nullptr);

// A JSON object for `--output json`: verdict, reasons, TCB status, advisory
// ids, notes, FMSPC, measurements (hex) and report data.
std::string VerificationToJson(const Verification& v);

}  // namespace cce::attest
