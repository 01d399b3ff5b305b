// verify: DCAP verification of a TDX quote against collateral and a trusted
// root at an injected time: the quote signature, the QE report and its
// binding to the attestation key, the PCK chain with CRLs, the collateral's
// signatures, chains and validity windows, and Intel's TCB level matching.
// The result says what the quote proves; whether that is acceptable is
// policy.h's job.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "attest/collateral.h"
#include "attest/pck_cert.h"
#include "attest/quote.h"
#include "attest/tcb.h"
#include "base/status.h"
#include "crypto/crypto.h"
#include "crypto/x509.h"

namespace cce::attest {

// SHA-256 of the DER of the Intel SGX Root CA (the pin).
inline constexpr std::string_view kIntelSgxRootCaSha256 =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

// The trust anchors of a verifier. intel_root is the production anchor
// (normally the pinned Intel SGX Root CA). simulation_roots are development
// roots a simulated quote provider chains to; a quote is "simulated" only if
// its PCK chain ends at one of them, never at intel_root.
struct TrustAnchors {
  crypto::Certificate intel_root;
  std::vector<crypto::Certificate> simulation_roots;
};

// The embedded Intel SGX Root CA, checked against kIntelSgxRootCaSha256.
const crypto::Certificate& PinnedIntelRoot();
TrustAnchors IntelTrustAnchors();  // PinnedIntelRoot() and no simulation roots

enum class PckCrlStatus {
  kChecked,  // the PCK leaf was checked against a current CRL from its issuing CA
  kMissing,  // no PCK CRL from the leaf's issuer in the collateral: leaf revocation NOT checked
};

// What the collateral proved at the given time.
struct CollateralCheck {
  bool simulated = false;              // chains to a simulation root
  crypto::Sha256Digest root_sha256{};  // the anchor it chains to (its certificate's fingerprint)
  int64_t oldest_issue_unix = 0;       // the older issueDate of TCB Info and QE Identity
  int64_t earliest_expiry_unix = 0;    // earliest nextUpdate among all items, CRLs included
};

// Checks the TCB Info and QE Identity signatures over their exact JSON bytes,
// their issuer chains (signer issued directly by the anchor, CN containing
// "SGX TCB Signing", root CRL applied), the root CRL, and that now_unix lies in
// every item's window. The anchor is intel_root, or the simulation root the
// TCB signing chain ends at. Errors: kPermissionDenied for signatures and
// chains, kFailedPrecondition for an item not valid at now_unix.
StatusOr<CollateralCheck> VerifyCollateral(const Collateral& collateral,
                                           const TrustAnchors& anchors, int64_t now_unix);

// The PCK certificate chain a quote carries (PEM, without the trailing NUL),
// parsed. A platform's chain is byte for byte the same in every quote it
// makes, and decoding certificates is the dearest part of OpenSSL 3 here, so
// parsed chains are kept (bounded) by their exact bytes. Parsing only: every
// quote's chain is still verified.
StatusOr<std::shared_ptr<const std::vector<crypto::Certificate>>> ParsePckChainCached(
    std::string_view pem);

// A VerifyCollateral result that VerifyDcap may reuse instead of checking
// the same collateral again for every quote (the plane checks each cached
// set once). It stands only while checked_at <= now < valid_until, where
// valid_until is the earliest nextUpdate of every item and notAfter of every
// issuer certificate; outside that, VerifyDcap checks afresh. The caller
// must pass the same collateral and anchors it was made with.
// PCK chains already verified against one CheckedCollateral's CRLs: by the
// SHA-256 of the chain's PEM, the window in which that verification stands
// (from when it was made until the earliest notAfter of its certificates or
// nextUpdate of the CRLs used). Shared by copies of the CheckedCollateral.
struct VerifiedPckChains {
  struct Entry {
    int64_t from = 0;
    int64_t until = 0;
    bool pck_crl_checked = false;
  };
  static constexpr size_t kMaxEntries = 4096;  // then it starts over
  std::mutex mu;                               // guards entries and qe_reports
  std::map<crypto::Sha256Digest, Entry> entries;
  // QE report signatures that verified with the leaf key of a chain in
  // `entries`: SHA-256(chain id || QE report || signature). A host's QE
  // signs its report once per attestation key (per boot), so every quote
  // from that host carries the same report and signature; only the exact
  // bytes are served, and only after their chain verified (or its kept
  // entry stood) in the same call.
  std::set<crypto::Sha256Digest> qe_reports;
};

struct CheckedCollateral {
  CollateralCheck check;
  int64_t checked_at = 0;
  int64_t valid_until = 0;
  // SHA-256 over the CRLs it was checked with: VerifyDcap reuses nothing
  // (neither the check nor a verified chain) for a collateral whose CRLs differ.
  crypto::Sha256Digest crl_sha256{};
  std::shared_ptr<VerifiedPckChains> pck_chains = std::make_shared<VerifiedPckChains>();
};
StatusOr<CheckedCollateral> CheckCollateralForReuse(const Collateral& collateral,
                                                    const TrustAnchors& anchors, int64_t now_unix);

struct DcapVerification {
  Quote quote;
  bool simulated = false;  // PCK chain and collateral end at a simulation root
  PckExtensions pck;       // FMSPC, PCE id, PCESVN, SGX TCB components of the platform
  std::string pck_subject;
  std::string pck_issuer;
  PckCrlStatus pck_crl = PckCrlStatus::kMissing;
  TcbEvaluation tcb;  // tcb.status is the quote's TCB status
  uint32_t tcb_evaluation_data_number = 0;
  int64_t collateral_oldest_issue_unix = 0;
  int64_t collateral_earliest_expiry_unix = 0;
  // Findings that are not failures but matter to a policy: the missing PCK
  // CRL, why the TCB status is what it is.
  std::vector<std::string> notes;
};

// Full DCAP verification at now_unix. Hard errors (no result):
//   kInvalidArgument     the quote does not parse
//   kPermissionDenied    a signature, certificate chain, pin, revocation or
//                        identity check failed
//   kFailedPrecondition  the collateral is not valid at now_unix or is for
//                        another platform (FMSPC / PCE id)
// Everything else, including NotSupported / OutOfDate TCB and a missing PCK
// CRL, is a DcapVerification for the policy to judge.
StatusOr<DcapVerification> VerifyDcap(crypto::ByteSpan quote_bytes, const Collateral& collateral,
                                      const TrustAnchors& anchors, int64_t now_unix,
                                      const CheckedCollateral* checked = nullptr);

}  // namespace cce::attest
