// collateral: Intel's DCAP verification collateral for TDX (TCB Info v3, TD
// QE Identity v2, the root and PCK CRLs, and the issuer chains), read from
// offline files. Two layouts: the dcap-qvl JSON document, and the raw files
// Intel PCS serves (see docs/attestation.md for the file names). Loading
// checks structure only; signatures, chains and validity windows are checked
// by VerifyCollateral (verify.h) against a trusted root at a given time.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"
#include "crypto/x509.h"

namespace cce::attest {

// The status strings Intel uses in TCB levels and identity levels.
enum class TcbLevelStatus {
  kUpToDate,
  kSWHardeningNeeded,
  kConfigurationNeeded,
  kConfigurationAndSWHardeningNeeded,
  kOutOfDate,
  kOutOfDateConfigurationNeeded,
  kRevoked,
};
std::string_view TcbLevelStatusName(TcbLevelStatus s);

struct TcbLevel {
  std::array<uint8_t, 16> sgx_components{};
  uint16_t pce_svn = 0;
  std::array<uint8_t, 16> tdx_components{};
  int64_t tcb_date = 0;  // unix seconds
  TcbLevelStatus status = TcbLevelStatus::kRevoked;
  std::vector<std::string> advisory_ids;
};

struct IdentityTcbLevel {  // TDX module identity and QE identity levels
  uint16_t isv_svn = 0;
  int64_t tcb_date = 0;
  TcbLevelStatus status = TcbLevelStatus::kRevoked;  // UpToDate, OutOfDate or Revoked
  std::vector<std::string> advisory_ids;
};

struct TdxModuleIdentity {
  std::string id;  // "TDX_01", ...
  std::array<uint8_t, 48> mrsigner{};
  std::array<uint8_t, 8> attributes{};
  std::array<uint8_t, 8> attributes_mask{};
  std::vector<IdentityTcbLevel> tcb_levels;
};

struct TcbInfo {
  std::string id;  // "TDX"
  uint32_t version = 0;
  int64_t issue_date = 0;
  int64_t next_update = 0;
  std::array<uint8_t, 6> fmspc{};
  std::array<uint8_t, 2> pce_id{};
  uint32_t tcb_type = 0;
  uint32_t tcb_evaluation_data_number = 0;
  // tdxModule: the default module identity (used when TEE_TCB_SVN[1] == 0).
  std::array<uint8_t, 48> tdx_module_mrsigner{};
  std::array<uint8_t, 8> tdx_module_attributes{};
  std::array<uint8_t, 8> tdx_module_attributes_mask{};
  std::vector<TdxModuleIdentity> tdx_module_identities;
  std::vector<TcbLevel> tcb_levels;  // in document order (Intel: newest first)
};

struct QeIdentity {
  std::string id;  // "TD_QE"
  uint32_t version = 0;
  int64_t issue_date = 0;
  int64_t next_update = 0;
  uint32_t tcb_evaluation_data_number = 0;
  uint32_t miscselect = 0;
  uint32_t miscselect_mask = 0;
  std::array<uint8_t, 16> attributes{};
  std::array<uint8_t, 16> attributes_mask{};
  std::array<uint8_t, 32> mrsigner{};
  uint16_t isv_prod_id = 0;
  std::vector<IdentityTcbLevel> tcb_levels;
};

// One signed JSON object: the exact bytes Intel signed and the raw r||s
// ECDSA P-256 signature over them.
struct SignedJson {
  std::string body;
  std::array<uint8_t, 64> signature{};
};

struct Collateral {
  std::string source;  // file or directory it came from, for messages

  TcbInfo tcb_info;
  SignedJson tcb_info_signed;
  std::vector<crypto::Certificate> tcb_info_issuer_chain;  // signer first

  QeIdentity qe_identity;
  SignedJson qe_identity_signed;
  std::vector<crypto::Certificate> qe_identity_issuer_chain;

  std::vector<crypto::Crl> root_ca_crl;  // exactly one (a vector: Crl has no empty state)
  std::vector<crypto::Crl> pck_crl;      // zero or one: a missing PCK CRL is representable
  std::vector<crypto::Certificate> pck_crl_issuer_chain;  // informational; may be empty

  // The dcap-qvl JSON document (QuoteCollateralV3 with hex byte fields).
  static StatusOr<Collateral> FromDcapQvlJson(std::string_view text, std::string_view source);

  // The PCS raw files in `dir`:
  //   tcb_info.json              {"tcbInfo":{...},"signature":"hex"} as served by PCS
  //   qe_identity.json           {"enclaveIdentity":{...},"signature":"hex"}
  //   tcb_info_issuer_chain.pem  TCB Signing cert + root (TCB-Info-Issuer-Chain header)
  //   qe_identity_issuer_chain.pem  optional; defaults to tcb_info_issuer_chain.pem
  //   root_ca_crl.der            the Intel SGX Root CA CRL (DER, or PEM)
  //   pck_crl.der                optional: the PCK CA CRL (DER, or PEM)
  //   pck_crl_issuer_chain.pem   optional
  // Any other regular file in the directory is an error (a typo must not
  // silently drop a CRL).
  static StatusOr<Collateral> FromPcsDirectory(const std::string& dir);

  // A directory: collateral.json (dcap-qvl) if present, else the PCS layout.
  // A regular file: a dcap-qvl JSON document.
  static StatusOr<Collateral> LoadDir(const std::string& path);
};

// Parsers for the signed objects, exposed for tests and fuzzing. `object` is
// the JSON text of the tcbInfo / enclaveIdentity object itself.
StatusOr<TcbInfo> ParseTcbInfo(std::string_view object);
StatusOr<QeIdentity> ParseQeIdentity(std::string_view object);
// Splits a PCS response {"<key>":{...},"signature":"hex"} into the exact
// bytes of the object (as they appear in the text) and the signature.
StatusOr<SignedJson> SplitSignedJson(std::string_view text, std::string_view key,
                                     std::string_view source);

}  // namespace cce::attest
