// pcs_client: fetches Intel's TDX verification collateral over HTTPS from
// Intel PCS (API v4) or a PCCS, and stores it as a directory in the PCS
// raw-file layout that attest::Collateral::FromPcsDirectory reads (and that
// the plane's collateral import takes). docs/attestation.md section 12.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attest/collateral.h"
#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::pcs {

inline constexpr std::string_view kIntelPcsBaseUrl = "https://api.trustedservices.intel.com";
inline constexpr std::string_view kIntelRootCaCrlUrl =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

enum class PcsService {
  // Intel PCS: the root CA CRL comes from root_ca_crl_url.
  kIntelPcs,
  // A PCCS (Intel's caching service, or one with the same API): the same v4
  // paths under its own base_url, and the root CA CRL from
  // {base_url}/sgx/certification/v4/rootcacrl (hex-encoded or DER).
  kPccs,
};

struct PcsOptions {
  PcsService service = PcsService::kIntelPcs;
  // Scheme and authority, optionally a path prefix; no trailing "/certification/v4".
  std::string base_url = std::string(kIntelPcsBaseUrl);
  std::string root_ca_crl_url = std::string(kIntelRootCaCrlUrl);  // kIntelPcs only
  // Which PCK CA's CRL to fetch: "platform" or "processor" (the issuer of
  // the quotes' PCK leaf certificates).
  std::string pck_ca = "platform";
  // TCB Info / QE Identity update channel: "" (the server's default,
  // standard), "standard" or "early".
  std::string update;
  // Sent as Ocp-Apim-Subscription-Key to base_url only; empty: not sent.
  // Never logged and never part of an error message.
  crypto::SecretBytes api_key;
  // PEM file of the CAs trusted for TLS; "" = the system store. When set,
  // it is the only trust store (the system CA directory is not consulted).
  std::string ca_bundle;
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds timeout{60};  // per request, whole transfer
  // Bound on each response body; a larger body fails the fetch (the bytes
  // are never buffered beyond this).
  size_t max_response_bytes = size_t{4} << 20;
  // https:// only unless this is set; for local test servers, never in production.
  bool allow_insecure_http_for_tests = false;
};

// kInvalidArgument naming the option when opts cannot be used.
Status ValidatePcsOptions(const PcsOptions& opts);

// 12 hex digits (either case) -> 6 bytes; kInvalidArgument otherwise.
StatusOr<std::array<uint8_t, 6>> ParseFmspc(std::string_view hex);

struct FetchedCollateral {
  attest::Collateral collateral;  // loaded back from out_dir
  std::vector<std::string> urls;  // every URL fetched, in order (no secrets)
};

// Downloads, for fmspc, the TDX TCB Info, the TD QE Identity, the PCK CRL
// (opts.pck_ca) and the Intel SGX Root CA CRL with their issuer chains,
// checks that each parses (and that the TCB Info is for fmspc), and creates
// out_dir holding exactly the FromPcsDirectory files: tcb_info.json and
// qe_identity.json byte for byte as served, the URL-decoded issuer chains,
// and both CRLs as DER. out_dir must not exist; its parent must. The files
// are written to a sibling staging directory that is renamed to out_dir only
// once it loads with Collateral::FromPcsDirectory, so a failure leaves
// nothing behind. Signatures, chains and validity windows are NOT checked
// here: attest::VerifyCollateral does that on import and at every use.
// Errors name the URL (without credentials), the HTTP status and what was
// expected: kInvalidArgument (options), kAlreadyExists (out_dir exists),
// kUnavailable (network, TLS, timeouts, HTTP 5xx/3xx/4xx other than below),
// kNotFound (HTTP 404/410), kPermissionDenied (HTTP 401/403), kDataLoss (a
// response that is not what the API promises), kIo (writing out_dir).
StatusOr<FetchedCollateral> FetchTdxCollateral(const PcsOptions& opts, std::array<uint8_t, 6> fmspc,
                                               const std::string& out_dir);

}  // namespace cce::pcs
