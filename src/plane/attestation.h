// The plane's side of attestation: the quote policy, the trust anchors and
// the collateral cache the key broker verifies quotes against
// (docs/attestation.md). Loaded at start; `cce-plane collateral import`
// adds collateral to the cache directory (a running plane picks it up on
// Reload, which the key broker calls when it finds no collateral for a
// quote's FMSPC).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>

#include "attest/attest.h"
#include "base/status.h"
#include "plane/config.h"

namespace cce::plane {

class AttestationService {
 public:
  static StatusOr<std::unique_ptr<AttestationService>> Load(const PlaneConfig& config);

  // Verifies `quote` under the policy at `now` against the cached collateral
  // for its FMSPC; REPORTDATA must equal expected_report_data (64 bytes).
  // Hard failures (unparsable quote, bad signatures, no or expired
  // collateral) are errors; a policy rejection is accepted == false.
  StatusOr<attest::Verification> Verify(crypto::ByteSpan quote,
                                        crypto::ByteSpan expected_report_data, int64_t now);
  // Re-reads the collateral cache directory.
  Status Reload();

  bool simulation_enabled() const { return policy_.allow_simulated; }
  size_t collateral_sets() const;

 private:
  AttestationService(PlaneConfig config, attest::Policy policy, attest::TrustAnchors anchors)
      : config_(std::move(config)), policy_(std::move(policy)), anchors_(std::move(anchors)) {}

  PlaneConfig config_;
  attest::Policy policy_;
  attest::TrustAnchors anchors_;
  struct CachedSet {
    attest::Collateral collateral;
    // The set's signatures and chains, checked once and reused while valid
    // (attest::CheckedCollateral); refreshed when it lapses.
    std::optional<attest::CheckedCollateral> checked;
  };
  mutable std::shared_mutex mu_;                 // guards collateral_
  std::map<std::string, CachedSet> collateral_;  // by FMSPC (hex)
};

// `cce-plane collateral import`: loads `source` (a dcap-qvl JSON file or a
// PCS directory, see attest::Collateral::LoadDir), checks its signatures and
// chains against the trust anchors (Intel's root, plus the simulation root
// when `with_simulation_root`), and copies it into the cache as
// <collateral_dir>/<fmspc>.json or <fmspc>/, replacing the previous set for
// that FMSPC atomically. Returns the FMSPC (hex). The validity window is not
// checked here (old collateral may be imported to verify old quotes); the
// key broker checks it at every verification.
StatusOr<std::string> ImportCollateralSet(const PlaneConfig& config, const std::string& source,
                                          bool with_simulation_root);

}  // namespace cce::plane
