// quote: the Intel TDX DCAP quote format (versions 4 and 5, ECDSA P-256
// attestation key, QE report certification data with a PEM PCK chain). The
// parser checks every bound and every declared size and rejects anything else
// with an error naming the offset and the field. It verifies nothing
// cryptographic; see verify.h for that.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::attest {

using Measurement = std::array<uint8_t, 48>;  // SHA-384 sized: MRTD, RTMRs, ...
using ReportData = std::array<uint8_t, 64>;

inline constexpr uint16_t kQuoteVersion4 = 4;
inline constexpr uint16_t kQuoteVersion5 = 5;
inline constexpr uint16_t kAttestationKeyEcdsaP256 = 2;
inline constexpr uint32_t kTeeTypeTdx = 0x81;
inline constexpr uint16_t kBodyTypeTdx10 = 2;  // TD report, TDX 1.0 (584 bytes)
inline constexpr uint16_t kBodyTypeTdx15 = 3;  // TD report, TDX 1.5 (648 bytes)
inline constexpr size_t kHeaderSize = 48;
inline constexpr size_t kTdReport10Size = 584;
inline constexpr size_t kTdReport15Size = 648;
inline constexpr size_t kEnclaveReportSize = 384;
inline constexpr uint16_t kCertDataQeReport = 6;  // QE report certification data
inline constexpr uint16_t kCertDataPckChain = 5;  // PEM PCK leaf || CA || root
inline constexpr uint64_t kTdAttributeDebug = 1;  // TDATTRIBUTES bit 0 (TUD.DEBUG)

// The QE vendor id of Intel's Quoting Enclave.
inline constexpr std::array<uint8_t, 16> kIntelQeVendorId = {
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

struct QuoteHeader {
  uint16_t version = 0;
  uint16_t attestation_key_type = 0;
  uint32_t tee_type = 0;
  uint16_t qe_svn = 0;   // "reserved" in the v4 layout; carried as read
  uint16_t pce_svn = 0;  // idem
  std::array<uint8_t, 16> qe_vendor_id{};
  std::array<uint8_t, 20> user_data{};
};

// The TD report body (TDX module report of the TD), field by field.
struct TdReportBody {
  std::array<uint8_t, 16> tee_tcb_svn{};
  Measurement mr_seam{};
  Measurement mr_signer_seam{};
  std::array<uint8_t, 8> seam_attributes{};
  std::array<uint8_t, 8> td_attributes{};  // little-endian u64; bit 0 = DEBUG
  std::array<uint8_t, 8> xfam{};
  Measurement mr_td{};
  Measurement mr_config_id{};
  Measurement mr_owner{};
  Measurement mr_owner_config{};
  std::array<Measurement, 4> rtmr{};
  ReportData report_data{};
  // Body type 3 (TDX 1.5) only.
  std::optional<std::array<uint8_t, 16>> tee_tcb_svn2;
  std::optional<Measurement> mr_service_td;

  uint64_t TdAttributes() const;  // td_attributes as a little-endian u64
};

// The SGX report of the Quoting Enclave (384 bytes), with the raw bytes its
// signature covers.
struct EnclaveReport {
  std::array<uint8_t, 16> cpu_svn{};
  uint32_t misc_select = 0;
  std::array<uint8_t, 16> attributes{};
  std::array<uint8_t, 32> mr_enclave{};
  std::array<uint8_t, 32> mr_signer{};
  uint16_t isv_prod_id = 0;
  uint16_t isv_svn = 0;
  ReportData report_data{};
  std::array<uint8_t, kEnclaveReportSize> raw{};
};

struct Quote {
  QuoteHeader header;
  uint16_t body_type = kBodyTypeTdx10;  // v4 quotes carry no type: always 2
  TdReportBody body;
  std::array<uint8_t, 64> signature{};        // ECDSA r||s over signed_region
  std::array<uint8_t, 64> attestation_key{};  // P-256 X||Y (no 0x04 prefix)
  EnclaveReport qe_report;
  std::array<uint8_t, 64> qe_report_signature{};  // by the PCK leaf, over qe_report.raw
  crypto::Bytes qe_auth_data;
  // The PCK certificate chain exactly as carried (certification data type 5):
  // PEM leaf, intermediate CA, root, possibly followed by one NUL byte.
  std::string pck_chain_pem;
  // What the quote signature covers: header || body (v5: header || body type
  // || body size || body).
  crypto::Bytes signed_region;
  size_t signature_data_offset = 0;  // offset of the signature data length field
  size_t quote_length = 0;           // bytes up to the end of the signature data
  size_t trailing_bytes = 0;         // bytes after it (ignored: not signed)
};

// Parses a TDX quote. Accepted: version 4 or 5; attestation key type 2
// (ECDSA-256-with-P-256); TEE type 0x81 (TDX); v5 body type 2 or 3 with its
// exact size; certification data type 6 whose declared size is exactly
// consumed; inside it a PCK chain of type 5. Anything after the signature
// data is tolerated and reported in trailing_bytes. Errors are
// kInvalidArgument: "quote offset N: FIELD: what is wrong".
StatusOr<Quote> ParseQuote(crypto::ByteSpan bytes);

}  // namespace cce::attest
