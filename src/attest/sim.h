// sim: a simulated TDX platform for machines without TDX (development, tests,
// `cce-plane init --simulated-tee`). It mints a development PKI with the shape
// of Intel's (root, PCK Platform CA, PCK leaf with an SGX extension, TCB
// signer, CRLs), collateral for it in the PCS file layout, and TDX quotes in
// exactly the real v4 layout signed by it. Nothing here is a TEE: the
// verifier (verify.h) counts such a quote as simulated because its chain ends
// at a configured simulation root, never at Intel's, and the policy rejects it
// unless allow_simulated is set. See docs/attestation.md, "Simulated TEE".
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "attest/quote.h"
#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::attest {

// The files of a simulated TEE directory (CreateSimulatedTee).
inline constexpr std::string_view kSimRootFile = "root.crt";           // the sim root (PEM)
inline constexpr std::string_view kSimPckChainFile = "pck_chain.pem";  // leaf, CA, root
inline constexpr std::string_view kSimPckKeyFile = "pck.key";          // PCK leaf key, PKCS#8, 0600
inline constexpr std::string_view kSimCollateralDir = "collateral";    // PCS layout

inline constexpr std::string_view kSimRootCommonName = "cce4long SIMULATED TDX Root CA - NOT INTEL";
// The simulated platform's FMSPC. Intel's FMSPCs start with the CPU family
// signature (00906ED5..., B0C06F..., ...); 0xCCEE is none of them.
inline constexpr std::array<uint8_t, 6> kSimFmspc = {0xcc, 0xee, 0x00, 0x00, 0x00, 0x00};

// Creates `dir` (its parent must exist; an existing `dir` is an error,
// kAlreadyExists) holding:
//   root.crt       self-signed P-256 root, CN kSimRootCommonName
//   pck_chain.pem  PCK leaf (SGX extension: kSimFmspc, PCE id 0000, PCESVN, SGX
//                  TCB components, CPUSVN, PPID) + PCK Platform CA + root, in
//                  the canonical PEM the quote carries
//   pck.key        the PCK leaf's private key (mode 0600); only the simulated
//                  quote provider reads it
//   collateral/    tcb_info.json, qe_identity.json, tcb_info_issuer_chain.pem,
//                  root_ca_crl.der, pck_crl.der, pck_crl_issuer_chain.pem
//                  (Collateral::FromPcsDirectory), signed by a TCB Signing
//                  certificate issued directly by the root
// Everything is valid from now_unix for validity_seconds. The other private
// keys (root, PCK CA, TCB signer) are discarded: to renew, create a new
// directory. On failure nothing is left behind.
Status CreateSimulatedTee(const std::string& dir, int64_t now_unix, int64_t validity_seconds);

// SHA-384 of the text: how the default simulated measurements are derived.
Measurement SimulatedMeasurement(std::string_view text);

// What a simulated TD reports. The defaults match the simulated collateral
// as UpToDate with DEBUG off; tests change them for negative cases.
struct SimulatedTd {
  // TEE_TCB_SVN: [0] TDX module SVN, [1] module version (1 = "TDX_01"), [2..]
  // TDX components. The default meets the newest simulated TCB level.
  std::array<uint8_t, 16> tee_tcb_svn = {2, 1, 3};
  Measurement mr_seam = SimulatedMeasurement("cce4long simulated TDX module");
  Measurement mrtd = SimulatedMeasurement("cce4long simulated TD");
  std::array<Measurement, 4> rtmr = {SimulatedMeasurement("cce4long simulated RTMR0"),
                                     SimulatedMeasurement("cce4long simulated RTMR1"),
                                     SimulatedMeasurement("cce4long simulated RTMR2"),
                                     SimulatedMeasurement("cce4long simulated RTMR3")};
  Measurement mr_config_id{};
  Measurement mr_owner{};
  Measurement mr_owner_config{};
  uint64_t td_attributes = uint64_t{1} << 28;  // SEPT_VE_DISABLE; bit 0 (DEBUG) off
  uint64_t xfam = 0x00000000000602e7;
};

// A TDX quote v4 (TD report body type 2) in the real layout: header (Intel's
// QE vendor id; user data marked "CCE4LONG SIMULATED"), the TD report of `td`
// with `report_data`, the ECDSA P-256 signature by a fresh attestation key,
// certification data type 6 with the simulated QE report (REPORTDATA =
// SHA-256(attestation key || QE auth data) || 32 zero bytes) signed by the PCK
// key in `sim_dir`, QE auth data, and the PCK chain (type 5, PEM + one NUL).
// Errors: the directory's files missing or malformed (naming the file), or
// pck.key readable by group or others (kPermissionDenied).
//
// Each call reads the directory and uses a fresh attestation key: a quote per
// "boot". SimulatedQuoter below is the same per boot, for many quotes.
StatusOr<crypto::Bytes> BuildSimulatedQuote(const std::string& sim_dir,
                                            const std::array<uint8_t, 64>& report_data,
                                            const SimulatedTd& td = {});

// One simulated platform boot: the PCK chain and key in `sim_dir` read and
// checked once (the errors of BuildSimulatedQuote), one attestation key
// generated (as the real QE does per boot) and the QE report certifying it
// signed by the PCK key once. Quote() then costs one ECDSA P-256 signature and
// gives the same layout as BuildSimulatedQuote; every quote of one quoter
// carries the same attestation key and QE report. Quote() is const and safe to
// call from several threads.
class SimulatedQuoter {
 public:
  static StatusOr<SimulatedQuoter> Create(const std::string& sim_dir);
  SimulatedQuoter(SimulatedQuoter&&) noexcept;
  SimulatedQuoter& operator=(SimulatedQuoter&&) noexcept;
  ~SimulatedQuoter();

  StatusOr<crypto::Bytes> Quote(const std::array<uint8_t, 64>& report_data,
                                const SimulatedTd& td = {}) const;

 private:
  struct Impl;
  explicit SimulatedQuoter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cce::attest
