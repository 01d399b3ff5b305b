// policy: what the plane accepts from a verified quote, from a YAML file
// (docs/attestation.md has the reference). Evaluation lists every reason a
// quote is rejected, not just the first. DEBUG TDs are always rejected; the
// file cannot change that.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/quote.h"
#include "attest/tcb.h"
#include "attest/verify.h"
#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::attest {

struct Policy {
  std::vector<TcbStatus> accepted_tcb_statuses = {TcbStatus::kUpToDate};
  uint64_t required_td_attributes = 0;  // every bit set here must be set in TDATTRIBUTES
  // Allowed values; nullopt = not constrained. A list is never empty.
  std::optional<std::vector<Measurement>> mrtd;
  std::array<std::optional<std::vector<Measurement>>, 4> rtmr;
  std::optional<std::vector<Measurement>> mrconfigid;
  // Maximum age of the TCB Info / QE Identity (the older issueDate) at
  // verification time; nullopt = no limit beyond the items' own windows.
  std::optional<int64_t> max_collateral_age_seconds;
  bool allow_missing_pck_crl = false;
  bool allow_simulated = false;

  // The default: UpToDate only, nothing else constrained, no missing CRL, no
  // simulation.
  static Policy Default() { return {}; }
  // Unknown fields, duplicate keys, wrong types and empty lists are errors
  // (kInvalidArgument) naming "source:line:column: field".
  static StatusOr<Policy> Parse(std::string_view yaml, std::string_view source);
  static StatusOr<Policy> Load(const std::string& path);
};

struct PolicyDecision {
  bool accepted = false;
  std::vector<std::string> reasons;  // every rule the quote fails; empty when accepted
};

// Judges a DCAP result. expected_report_data, when given, must be 64 bytes
// and equal REPORTDATA (compared in constant time); a wrong size is an error.
StatusOr<PolicyDecision> EvaluatePolicy(const DcapVerification& v, const Policy& policy,
                                        int64_t now_unix,
                                        std::optional<crypto::ByteSpan> expected_report_data);

}  // namespace cce::attest
