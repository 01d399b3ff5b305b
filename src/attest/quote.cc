#include "attest/quote.h"

#include <algorithm>

#include "attest/byte_reader.h"

namespace cce::attest {
namespace {

using crypto::ByteSpan;
using internal::ByteReader;

// Sizes inside the signature data (ECDSA P-256 attestation key).
constexpr size_t kSignatureSize = 64;
constexpr size_t kAttestationKeySize = 64;

Status ParseEnclaveReport(ByteReader& r, EnclaveReport& out) {
  const size_t start = r.offset();
  ASSIGN_OR_RETURN(ByteSpan raw, r.Take(kEnclaveReportSize, "QE report"));
  std::copy(raw.begin(), raw.end(), out.raw.begin());
  ByteReader f(raw, "quote", start);
  ASSIGN_OR_RETURN(out.cpu_svn, f.Array<16>("QE report CPUSVN"));
  ASSIGN_OR_RETURN(out.misc_select, f.U32("QE report MISCSELECT"));
  RETURN_IF_ERROR(f.Take(28, "QE report reserved1").status());
  ASSIGN_OR_RETURN(out.attributes, f.Array<16>("QE report ATTRIBUTES"));
  ASSIGN_OR_RETURN(out.mr_enclave, f.Array<32>("QE report MRENCLAVE"));
  RETURN_IF_ERROR(f.Take(32, "QE report reserved2").status());
  ASSIGN_OR_RETURN(out.mr_signer, f.Array<32>("QE report MRSIGNER"));
  RETURN_IF_ERROR(f.Take(96, "QE report reserved3").status());
  ASSIGN_OR_RETURN(out.isv_prod_id, f.U16("QE report ISVPRODID"));
  ASSIGN_OR_RETURN(out.isv_svn, f.U16("QE report ISVSVN"));
  RETURN_IF_ERROR(f.Take(60, "QE report reserved4").status());
  ASSIGN_OR_RETURN(out.report_data, f.Array<64>("QE report REPORTDATA"));
  return Status::Ok();
}

Status ParseTdReport(ByteReader& r, uint16_t body_type, TdReportBody& b) {
  ASSIGN_OR_RETURN(b.tee_tcb_svn, r.Array<16>("TEE_TCB_SVN"));
  ASSIGN_OR_RETURN(b.mr_seam, r.Array<48>("MRSEAM"));
  ASSIGN_OR_RETURN(b.mr_signer_seam, r.Array<48>("MRSIGNERSEAM"));
  ASSIGN_OR_RETURN(b.seam_attributes, r.Array<8>("SEAMATTRIBUTES"));
  ASSIGN_OR_RETURN(b.td_attributes, r.Array<8>("TDATTRIBUTES"));
  ASSIGN_OR_RETURN(b.xfam, r.Array<8>("XFAM"));
  ASSIGN_OR_RETURN(b.mr_td, r.Array<48>("MRTD"));
  ASSIGN_OR_RETURN(b.mr_config_id, r.Array<48>("MRCONFIGID"));
  ASSIGN_OR_RETURN(b.mr_owner, r.Array<48>("MROWNER"));
  ASSIGN_OR_RETURN(b.mr_owner_config, r.Array<48>("MROWNERCONFIG"));
  static constexpr const char* kRtmrNames[4] = {"RTMR0", "RTMR1", "RTMR2", "RTMR3"};
  for (size_t i = 0; i < 4; ++i) {
    ASSIGN_OR_RETURN(b.rtmr[i], r.Array<48>(kRtmrNames[i]));
  }
  ASSIGN_OR_RETURN(b.report_data, r.Array<64>("REPORTDATA"));
  if (body_type == kBodyTypeTdx15) {
    ASSIGN_OR_RETURN(b.tee_tcb_svn2, r.Array<16>("TEE_TCB_SVN2"));
    ASSIGN_OR_RETURN(b.mr_service_td, r.Array<48>("MRSERVICETD"));
  }
  return Status::Ok();
}

// The QE report certification data (type 6): QE report, its signature, QE
// authentication data, and the nested PCK chain certification data (type 5).
// `data` is exactly the declared certification data.
Status ParseQeCertificationData(ByteSpan data, size_t base, Quote& q) {
  ByteReader r(data, "quote", base);
  RETURN_IF_ERROR(ParseEnclaveReport(r, q.qe_report));
  ASSIGN_OR_RETURN(q.qe_report_signature, r.Array<64>("QE report signature"));
  ASSIGN_OR_RETURN(uint16_t auth_size, r.U16("QE authentication data size"));
  ASSIGN_OR_RETURN(ByteSpan auth, r.Take(auth_size, "QE authentication data"));
  q.qe_auth_data.assign(auth.begin(), auth.end());
  const size_t type_at = r.offset();
  ASSIGN_OR_RETURN(uint16_t type, r.U16("PCK certification data type"));
  if (type != kCertDataPckChain) {
    return r.Error(type_at, "PCK certification data type",
                   std::to_string(type) + " is not supported (want 5 = PEM PCK certificate chain)");
  }
  const size_t size_at = r.offset();
  ASSIGN_OR_RETURN(uint32_t size, r.U32("PCK certification data size"));
  if (size != r.remaining()) {
    return r.Error(size_at, "PCK certification data size",
                   "declares " + std::to_string(size) +
                       " bytes but the QE certification data has " + std::to_string(r.remaining()) +
                       " left");
  }
  if (size == 0) return r.Error(size_at, "PCK certification data size", "is zero");
  ASSIGN_OR_RETURN(ByteSpan pem, r.Take(size, "PCK certificate chain"));
  q.pck_chain_pem.assign(reinterpret_cast<const char*>(pem.data()), pem.size());
  return Status::Ok();
}

}  // namespace

uint64_t TdReportBody::TdAttributes() const {
  uint64_t v = 0;
  for (size_t i = 0; i < td_attributes.size(); ++i) v |= uint64_t{td_attributes[i]} << (8 * i);
  return v;
}

StatusOr<Quote> ParseQuote(ByteSpan bytes) {
  Quote q;
  ByteReader r(bytes, "quote");
  ASSIGN_OR_RETURN(q.header.version, r.U16("version"));
  if (q.header.version != kQuoteVersion4 && q.header.version != kQuoteVersion5) {
    return r.Error(0, "version",
                   std::to_string(q.header.version) + " is not supported (want 4 or 5)");
  }
  ASSIGN_OR_RETURN(q.header.attestation_key_type, r.U16("attestation key type"));
  if (q.header.attestation_key_type != kAttestationKeyEcdsaP256) {
    return r.Error(2, "attestation key type",
                   std::to_string(q.header.attestation_key_type) +
                       " is not supported (want 2 = ECDSA-256-with-P-256)");
  }
  ASSIGN_OR_RETURN(q.header.tee_type, r.U32("TEE type"));
  if (q.header.tee_type != kTeeTypeTdx) {
    return r.Error(4, "TEE type",
                   std::to_string(q.header.tee_type) + " is not TDX (want 129 = 0x81)");
  }
  ASSIGN_OR_RETURN(q.header.qe_svn, r.U16("QE SVN"));
  ASSIGN_OR_RETURN(q.header.pce_svn, r.U16("PCE SVN"));
  ASSIGN_OR_RETURN(q.header.qe_vendor_id, r.Array<16>("QE vendor id"));
  ASSIGN_OR_RETURN(q.header.user_data, r.Array<20>("user data"));

  size_t body_size = kTdReport10Size;
  if (q.header.version == kQuoteVersion5) {
    const size_t type_at = r.offset();
    ASSIGN_OR_RETURN(q.body_type, r.U16("body type"));
    if (q.body_type != kBodyTypeTdx10 && q.body_type != kBodyTypeTdx15) {
      return r.Error(type_at, "body type",
                     std::to_string(q.body_type) +
                         " is not supported (want 2 = TDX 1.0 or 3 = TDX 1.5 TD report)");
    }
    body_size = q.body_type == kBodyTypeTdx15 ? kTdReport15Size : kTdReport10Size;
    const size_t size_at = r.offset();
    ASSIGN_OR_RETURN(uint32_t declared, r.U32("body size"));
    if (declared != body_size) {
      return r.Error(size_at, "body size",
                     std::to_string(declared) + " does not match body type " +
                         std::to_string(q.body_type) + " (want " + std::to_string(body_size) + ")");
    }
  }
  const size_t body_at = r.offset();
  ASSIGN_OR_RETURN(ByteSpan body, r.Take(body_size, "TD report body"));
  ByteReader br(body, "quote", body_at);
  RETURN_IF_ERROR(ParseTdReport(br, q.body_type, q.body));
  q.signed_region.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(r.offset()));

  q.signature_data_offset = r.offset();
  ASSIGN_OR_RETURN(uint32_t sig_len, r.U32("signature data length"));
  const size_t sig_at = r.offset();
  ASSIGN_OR_RETURN(ByteSpan sig_data, r.Take(sig_len, "signature data"));
  q.quote_length = r.offset();
  q.trailing_bytes = r.remaining();

  ByteReader s(sig_data, "quote", sig_at);
  ASSIGN_OR_RETURN(q.signature, s.Array<kSignatureSize>("quote signature"));
  ASSIGN_OR_RETURN(q.attestation_key, s.Array<kAttestationKeySize>("attestation key"));
  const size_t cert_type_at = s.offset();
  ASSIGN_OR_RETURN(uint16_t cert_type, s.U16("certification data type"));
  if (cert_type != kCertDataQeReport) {
    return s.Error(
        cert_type_at, "certification data type",
        std::to_string(cert_type) + " is not supported (want 6 = QE report certification data)");
  }
  const size_t cert_size_at = s.offset();
  ASSIGN_OR_RETURN(uint32_t cert_size, s.U32("certification data size"));
  if (cert_size != s.remaining()) {
    return s.Error(cert_size_at, "certification data size",
                   "declares " + std::to_string(cert_size) + " bytes but the signature data has " +
                       std::to_string(s.remaining()) + " left");
  }
  const size_t cert_at = s.offset();
  ASSIGN_OR_RETURN(ByteSpan cert_data, s.Take(cert_size, "certification data"));
  RETURN_IF_ERROR(ParseQeCertificationData(cert_data, cert_at, q));
  return q;
}

}  // namespace cce::attest
