// Tests for DCAP verification on the real vectors in tests/data/tdx: the
// positive sets, the TCB statuses the README computes, every collateral
// window, tampering anywhere in the signed region and the certification data,
// and foreign roots.
#include "attest/verify.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "attest/test_util.h"

namespace cce::attest {
namespace {

using crypto::Bytes;
using crypto::Certificate;
using crypto::ToHex;
using testing::Contains;
using testing::Must;
using testing::ReadBytes;
using testing::T;
using testing::TdxDataPath;

Collateral Load(const char* relative) {
  return Must(Collateral::LoadDir(TdxDataPath(relative)));
}

DcapVerification Verify(const char* quote, const char* collateral, int64_t at) {
  return Must(VerifyDcap(ReadBytes(quote), Load(collateral), IntelTrustAnchors(), at));
}

Status VerifyError(const Bytes& quote, const Collateral& c, int64_t at,
                   const TrustAnchors& anchors = IntelTrustAnchors()) {
  auto r = VerifyDcap(quote, c, anchors, at);
  EXPECT_FALSE(r.ok());
  return r.ok() ? Status::Ok() : r.status();
}

void PutU32(Bytes& b, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// The quote with its PCK chain bytes replaced (all enclosing sizes fixed up).
Bytes WithPckChain(const Bytes& quote, const std::string& pem) {
  const Quote q = Must(ParseQuote(quote));
  const size_t sig_len_at = q.signature_data_offset;
  const size_t cert_size_at = sig_len_at + 4 + 128 + 2;
  const size_t pck_size_at = cert_size_at + 4 + 384 + 64 + 2 + q.qe_auth_data.size() + 2;
  Bytes out(quote.begin(), quote.begin() + static_cast<std::ptrdiff_t>(pck_size_at + 4));
  out.insert(out.end(), pem.begin(), pem.end());
  PutU32(out, pck_size_at, static_cast<uint32_t>(pem.size()));
  PutU32(out, cert_size_at, static_cast<uint32_t>(out.size() - cert_size_at - 4));
  PutU32(out, sig_len_at, static_cast<uint32_t>(out.size() - sig_len_at - 4));
  return out;
}

TEST(PinnedIntelRoot, IsTheRootInTestDataWithThePinnedFingerprint) {
  const Certificate& root = PinnedIntelRoot();
  EXPECT_EQ(ToHex(root.sha256_fingerprint()), kIntelSgxRootCaSha256);
  EXPECT_EQ(ToHex(root.sha256_fingerprint()),
            "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
  const auto file = Must(crypto::ParseCertificatesPem(testing::ReadText("intel_sgx_root_ca.pem")));
  ASSERT_EQ(file.size(), 1u);
  EXPECT_EQ(file[0].der(), root.der());
}

TEST(VerifyDcap, DcapQvlQuoteIsUpToDateInsideItsWindow) {
  const DcapVerification v =
      Verify(testing::kDcapQuote, testing::kDcapCollateral, testing::DcapTime());
  EXPECT_EQ(v.tcb.status, TcbStatus::kUpToDate);
  EXPECT_EQ(v.pck_crl, PckCrlStatus::kChecked);
  EXPECT_FALSE(v.simulated);
  EXPECT_EQ(ToHex(v.pck.fmspc), "b0c06f000000");
  EXPECT_TRUE(Contains(v.pck_subject, "CN=Intel SGX PCK Certificate"));
  EXPECT_EQ(v.tcb.tdx_module_identity_id, "TDX_01");
  EXPECT_EQ(v.tcb.tdx_module_status, TcbStatus::kUpToDate);
  EXPECT_EQ(v.tcb.qe.status, TcbStatus::kUpToDate);
  EXPECT_TRUE(v.tcb.advisory_ids.empty());
  EXPECT_EQ(v.tcb_evaluation_data_number, 17u);
  EXPECT_EQ(v.collateral_oldest_issue_unix, T("2025-06-19T10:16:03Z"));     // TCB Info
  EXPECT_EQ(v.collateral_earliest_expiry_unix, T("2025-07-19T10:00:35Z"));  // PCK CRL
  // The whole all-valid window, ends included (dcap-qvl's own test uses nextUpdate - 1 s).
  const Collateral c = Load(testing::kDcapCollateral);
  const Bytes q = ReadBytes(testing::kDcapQuote);
  EXPECT_TRUE(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-06-19T10:32:27Z")).ok());
  EXPECT_TRUE(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-19T10:00:34Z")).ok());
  // nextUpdate itself is already outside (as OpenSSL judges CRLs and certificates).
  EXPECT_FALSE(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-19T10:00:35Z")).ok());
}

TEST(VerifyDcap, ACheckedCollateralIsReusedOnlyInsideItsWindow) {
  const Collateral c = Load(testing::kDcapCollateral);
  const Bytes q = ReadBytes(testing::kDcapQuote);
  const CheckedCollateral checked =
      Must(CheckCollateralForReuse(c, IntelTrustAnchors(), T("2025-07-01T00:00:00Z")));
  EXPECT_EQ(checked.valid_until, T("2025-07-19T10:00:35Z"));  // the PCK CRL's nextUpdate
  EXPECT_TRUE(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-10T00:00:00Z"), &checked).ok());
  // Past valid_until, or before checked_at, the collateral is checked afresh: refused.
  auto late = VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-19T10:00:35Z"), &checked);
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
  auto early = VerifyDcap(q, c, IntelTrustAnchors(), T("2025-06-19T10:32:26Z"), &checked);
  EXPECT_EQ(early.status().code(), StatusCode::kFailedPrecondition);
  // The quote itself is still verified in full: a flipped signature byte fails.
  Bytes bad = q;
  bad[bad.size() / 2] ^= 1;
  EXPECT_FALSE(VerifyDcap(bad, c, IntelTrustAnchors(), T("2025-07-10T00:00:00Z"), &checked).ok());
}

TEST(VerifyDcap, AVerifiedPckChainIsReusedWithTheSameVerdictAndNotes) {
  // With a PCK CRL: checked, then reused (the cache holds one chain).
  const Collateral c = Load(testing::kDcapCollateral);
  const Bytes q = ReadBytes(testing::kDcapQuote);
  const CheckedCollateral checked =
      Must(CheckCollateralForReuse(c, IntelTrustAnchors(), T("2025-07-01T00:00:00Z")));
  for (int i = 0; i < 2; ++i) {
    const DcapVerification v =
        Must(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-02T00:00:00Z"), &checked));
    EXPECT_EQ(v.pck_crl, PckCrlStatus::kChecked);
    EXPECT_EQ(v.tcb.status, TcbStatus::kUpToDate);
  }
  EXPECT_EQ(checked.pck_chains->entries.size(), 1u);
  // Without one: every reuse still reports the unchecked leaf.
  const Collateral c6 = Load(testing::kTrusteeCollateral);
  const Bytes q6 = ReadBytes(testing::kTrusteeQuote6);
  const CheckedCollateral checked6 =
      Must(CheckCollateralForReuse(c6, IntelTrustAnchors(), testing::TrusteeTime()));
  for (int i = 0; i < 2; ++i) {
    const DcapVerification v =
        Must(VerifyDcap(q6, c6, IntelTrustAnchors(), testing::TrusteeTime(), &checked6));
    EXPECT_EQ(v.pck_crl, PckCrlStatus::kMissing);
    bool noted = false;
    for (const auto& n : v.notes) noted = noted || Contains(n, "was NOT checked");
    EXPECT_TRUE(noted);
  }
}

// A QE report signature verified once is kept for the same chain, report
// and signature only: a quote whose QE report signature differs by one bit
// is refused although the genuine one from the same chain is kept.
TEST(VerifyDcap, AKeptQeReportSignatureServesOnlyItsExactBytes) {
  const Collateral c = Load(testing::kDcapCollateral);
  const Bytes q = ReadBytes(testing::kDcapQuote);
  const CheckedCollateral checked =
      Must(CheckCollateralForReuse(c, IntelTrustAnchors(), T("2025-07-01T00:00:00Z")));
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-02T00:00:00Z"), &checked).ok());
    EXPECT_EQ(checked.pck_chains->qe_reports.size(), 1u);
  }
  const Quote parsed = Must(ParseQuote(q));
  const auto& sig = parsed.qe_report_signature;
  auto at = std::search(q.begin(), q.end(), sig.begin(), sig.end());
  ASSERT_NE(at, q.end());
  for (size_t byte : {size_t{0}, size_t{63}}) {
    Bytes bad = q;
    bad[static_cast<size_t>(at - q.begin()) + byte] ^= 0x01;
    auto r = VerifyDcap(bad, c, IntelTrustAnchors(), T("2025-07-02T00:00:00Z"), &checked);
    ASSERT_FALSE(r.ok()) << "QE report signature byte " << byte;
    EXPECT_TRUE(Contains(r.status().message(), "QE report signature")) << r.status().ToString();
  }
  EXPECT_EQ(checked.pck_chains->qe_reports.size(), 1u);  // no failure was kept
}

TEST(VerifyDcap, NothingCheckedIsReusedForACollateralWithOtherCrls) {
  // A chain verified (and kept) under one PCK CRL is not served for a
  // collateral carrying another one: here Intel's PCK CRL of February 2026,
  // not yet valid on 2025-07-02, so a real check refuses what the kept
  // verdict would have accepted.
  const Collateral c = Load(testing::kDcapCollateral);
  const Bytes q = ReadBytes(testing::kDcapQuote);
  const CheckedCollateral checked =
      Must(CheckCollateralForReuse(c, IntelTrustAnchors(), T("2025-07-01T00:00:00Z")));
  EXPECT_TRUE(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-02T00:00:00Z"), &checked).ok());
  EXPECT_EQ(checked.pck_chains->entries.size(), 1u);
  Collateral other = c;
  other.pck_crl = Load(testing::kDcapOutdatedCollateral).pck_crl;
  ASSERT_EQ(other.pck_crl.size(), 1u);
  ASSERT_NE(other.pck_crl.front().der(), c.pck_crl.front().der());
  auto r = VerifyDcap(q, other, IntelTrustAnchors(), T("2025-07-02T00:00:00Z"), &checked);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(r.status().message(), "pck_crl")) << r.status().ToString();
  // The same CRL bytes in a freshly loaded collateral: reused again.
  EXPECT_TRUE(VerifyDcap(q, Load(testing::kDcapCollateral), IntelTrustAnchors(),
                         T("2025-07-02T00:00:00Z"), &checked)
                  .ok());
}

TEST(VerifyDcap, AKeptChainEntryIsNotServedOutsideItsWindow) {
  // A kept chain stands from when it was verified until the earliest notAfter
  // / nextUpdate of what it was checked with (here the PCK CRL's). Shorten a
  // kept entry's window: inside it the entry is served (not renewed); past it
  // the chain is verified again and the entry renewed with the real window.
  const Collateral c = Load(testing::kDcapCollateral);
  const Bytes q = ReadBytes(testing::kDcapQuote);
  const CheckedCollateral checked =
      Must(CheckCollateralForReuse(c, IntelTrustAnchors(), T("2025-07-01T00:00:00Z")));
  EXPECT_TRUE(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-02T00:00:00Z"), &checked).ok());
  ASSERT_EQ(checked.pck_chains->entries.size(), 1u);
  auto& entry = checked.pck_chains->entries.begin()->second;
  EXPECT_EQ(entry.from, T("2025-07-02T00:00:00Z"));
  EXPECT_EQ(entry.until, T("2025-07-19T10:00:35Z"));
  entry.until = T("2025-07-03T00:00:00Z");
  EXPECT_TRUE(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-02T12:00:00Z"), &checked).ok());
  EXPECT_EQ(entry.from, T("2025-07-02T00:00:00Z"));  // served
  EXPECT_TRUE(VerifyDcap(q, c, IntelTrustAnchors(), T("2025-07-03T00:00:00Z"), &checked).ok());
  EXPECT_EQ(entry.from, T("2025-07-03T00:00:00Z"));  // verified again
  EXPECT_EQ(entry.until, T("2025-07-19T10:00:35Z"));
}

TEST(VerifyDcap, RejectsTheSameQuoteOutsideTheCollateralWindow) {
  const Collateral c = Load(testing::kDcapCollateral);
  const Bytes q = ReadBytes(testing::kDcapQuote);
  Status s = VerifyError(q, c, T("2025-07-19T10:00:35Z"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s.message(), "pck_crl: not valid at 2025-07-19T10:00:35Z")) << s.message();
  s = VerifyError(q, c, T("2025-06-19T10:32:26Z"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s.message(), "qe_identity: not valid at")) << s.message();
  s = VerifyError(q, c, T("2031-01-01T00:00:00Z"));
  EXPECT_TRUE(Contains(s.message(), "tcb_info: not valid at")) << s.message();
}

TEST(VerifyDcap, GoTdxGuestV5QuoteIsUpToDate) {
  const DcapVerification v =
      Verify(testing::kGoV5Quote, testing::kGoV5Collateral, testing::GoV5Time());
  EXPECT_EQ(v.quote.header.version, 5);
  EXPECT_EQ(v.tcb.status, TcbStatus::kUpToDate);
  EXPECT_EQ(v.tcb.tdx_module_identity_id, "TDX_01");
  EXPECT_EQ(v.pck_crl, PckCrlStatus::kChecked);
  ASSERT_TRUE(v.tcb.tdx_level_index.has_value());
  EXPECT_EQ(
      FormatRfc3339Utc(
          Load(testing::kGoV5Collateral).tcb_info.tcb_levels[*v.tcb.tdx_level_index].tcb_date),
      "2024-11-13T00:00:00Z");
}

TEST(VerifyDcap, GoTdxGuestV4SetIsNotSupported) {
  // The README: PCK SGX components [3,3,2,2,2,1,0,2] are below every level.
  const DcapVerification v =
      Verify(testing::kGoV4Quote, testing::kGo2023Collateral, testing::Go2023Time());
  EXPECT_EQ(v.tcb.status, TcbStatus::kNotSupported);
  EXPECT_FALSE(v.tcb.sgx_level_index.has_value());
  EXPECT_EQ(v.pck_crl, PckCrlStatus::kChecked);
  EXPECT_EQ(v.tcb.qe.status, TcbStatus::kUpToDate);
  bool noted = false;
  for (const std::string& n : v.notes) noted |= Contains(n, "no TCB level matches the platform");
  EXPECT_TRUE(noted);
}

TEST(VerifyDcap, DcapQvlOutdatedQuoteMatchesNoLevel) {
  const DcapVerification v = Verify(testing::kDcapOutdatedQuote, testing::kDcapOutdatedCollateral,
                                    testing::DcapOutdatedTime());
  EXPECT_EQ(v.tcb.status, TcbStatus::kNotSupported);
  EXPECT_FALSE(v.tcb.sgx_level_index.has_value());
}

TEST(VerifyDcap, TrusteeQuote6IsOutOfDateWithoutPckCrl) {
  const DcapVerification v =
      Verify(testing::kTrusteeQuote6, testing::kTrusteeCollateral, testing::TrusteeTime());
  EXPECT_EQ(v.tcb.status, TcbStatus::kOutOfDate);
  EXPECT_EQ(v.tcb.tdx_module_identity_id, "TDX_03");
  EXPECT_EQ(v.tcb.tdx_module_status, TcbStatus::kUpToDate);
  EXPECT_EQ(v.tcb.qe.status, TcbStatus::kUpToDate);
  EXPECT_EQ(v.pck.pce_svn, 11);
  // PCESVN 11 is below the 2024-03-13 level's 13: the 2018-01-04 level matches.
  EXPECT_EQ(v.tcb.tdx_level_index, 1u);
  EXPECT_EQ(v.pck_crl, PckCrlStatus::kMissing);
  ASSERT_FALSE(v.notes.empty());
  EXPECT_TRUE(Contains(v.notes[0], "PCK CRL missing")) << v.notes[0];
  EXPECT_TRUE(Contains(v.notes[0], "NOT checked")) << v.notes[0];
}

TEST(VerifyDcap, TrusteeDebugQuoteVerifiesCryptographically) {
  const DcapVerification v =
      Verify(testing::kTrusteeDebugQuote, testing::kGo2023Collateral, testing::Go2023Time());
  EXPECT_EQ(v.quote.body.TdAttributes() & kTdAttributeDebug, 1u);  // the policy's job
}

TEST(VerifyDcap, PckCrlFromAnotherIssuerCountsAsMissing) {
  Collateral c = Load(testing::kDcapCollateral);
  // The root CRL stands in for "a CRL, but not from the PCK CA".
  c.pck_crl = c.root_ca_crl;
  const DcapVerification v =
      Must(VerifyDcap(ReadBytes(testing::kDcapQuote), c, IntelTrustAnchors(), testing::DcapTime()));
  EXPECT_EQ(v.pck_crl, PckCrlStatus::kMissing);
  EXPECT_TRUE(Contains(v.notes[0], "PCK CRL is from 'C=US")) << v.notes[0];
}

TEST(VerifyDcap, EveryFlippedByteInTheSignedRegionIsRejected) {
  const Collateral c = Load(testing::kDcapCollateral);
  const int64_t at = testing::DcapTime();
  for (const char* file : {testing::kDcapQuote}) {
    const Bytes orig = ReadBytes(file);
    const Quote q = Must(ParseQuote(orig));
    ASSERT_GE(q.signed_region.size(), 200u);
    size_t rejected = 0;
    for (size_t i = 0; i < q.signed_region.size(); ++i) {
      for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
        Bytes b = orig;
        b[i] ^= mask;
        auto r = VerifyDcap(b, c, IntelTrustAnchors(), at);
        EXPECT_FALSE(r.ok()) << file << " byte " << i << " ^ " << int{mask};
        rejected += r.ok() ? 0 : 1;
      }
    }
    EXPECT_EQ(rejected, 2 * q.signed_region.size());
  }
}

TEST(VerifyDcap, EveryFlippedByteInTheSignatureAndCertificationDataIsRejected) {
  const Collateral c = Load(testing::kDcapCollateral);
  const int64_t at = testing::DcapTime();
  const Bytes orig = ReadBytes(testing::kDcapQuote);
  const Quote q = Must(ParseQuote(orig));
  // From the signature data length to the end of the signature data: the
  // signature, attestation key, QE report, its signature, QE auth data and
  // the PCK chain (including its trailing NUL).
  size_t tested = 0;
  for (size_t i = q.signature_data_offset; i < q.quote_length; ++i) {
    Bytes b = orig;
    b[i] ^= 0x01;
    auto r = VerifyDcap(b, c, IntelTrustAnchors(), at);
    EXPECT_FALSE(r.ok()) << "byte " << i;
    ++tested;
    if ((i - q.signature_data_offset) % 7 == 0) {  // and a whole-byte flip on a stride
      b = orig;
      b[i] ^= 0xff;
      EXPECT_FALSE(VerifyDcap(b, c, IntelTrustAnchors(), at).ok()) << "byte " << i << " ^ 0xff";
    }
  }
  EXPECT_GE(tested, 4000u);
  // Trailing padding is outside the quote and not signed: ignored.
  Bytes b = orig;
  b.back() ^= 0x01;
  EXPECT_TRUE(VerifyDcap(b, c, IntelTrustAnchors(), at).ok());
}

TEST(VerifyDcap, FlippedBytesInTheV5SignedRegionAreRejected) {
  const Collateral c = Load(testing::kGoV5Collateral);
  const Bytes orig = ReadBytes(testing::kGoV5Quote);
  const Quote q = Must(ParseQuote(orig));
  for (size_t i = 0; i < q.signed_region.size(); i += 3) {
    Bytes b = orig;
    b[i] ^= 0x04;
    EXPECT_FALSE(VerifyDcap(b, c, IntelTrustAnchors(), testing::GoV5Time()).ok()) << i;
  }
}

TEST(VerifyDcap, UnknownRootIsRejected) {
  const auto ca = Must(
      crypto::CreateCertificateAuthority("Intel SGX Root CA", T("2018-01-01T00:00:00Z"), 36500));
  const auto other = Must(crypto::ParseCertificatesPem(ca.cert_pem));
  TrustAnchors anchors{other[0], {}};
  const Status s = VerifyError(ReadBytes(testing::kDcapQuote), Load(testing::kDcapCollateral),
                               testing::DcapTime(), anchors);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(s.message(), "which is not the pinned Intel SGX Root CA")) << s.message();
}

TEST(VerifyDcap, SimulationRootNeverCoversTheIntelRoot) {
  TrustAnchors anchors{PinnedIntelRoot(), {PinnedIntelRoot()}};
  const Status s = VerifyError(ReadBytes(testing::kDcapQuote), Load(testing::kDcapCollateral),
                               testing::DcapTime(), anchors);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  // A real quote with an unrelated simulation root configured is still real.
  const auto ca =
      Must(crypto::CreateCertificateAuthority("dev root", T("2020-01-01T00:00:00Z"), 3650));
  TrustAnchors with_dev{PinnedIntelRoot(), Must(crypto::ParseCertificatesPem(ca.cert_pem))};
  const DcapVerification v =
      Must(VerifyDcap(ReadBytes(testing::kDcapQuote), Load(testing::kDcapCollateral), with_dev,
                      testing::DcapTime()));
  EXPECT_FALSE(v.simulated);
}

TEST(VerifyDcap, TamperedCollateralIsRejected) {
  const Bytes q = ReadBytes(testing::kDcapQuote);
  const int64_t at = testing::DcapTime();
  Collateral c = Load(testing::kDcapCollateral);
  c.tcb_info_signed.body += " ";  // one byte more than Intel signed
  Status s = VerifyError(q, c, at);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(s.message(), "tcb_info: signature does not verify")) << s.message();

  c = Load(testing::kDcapCollateral);
  c.qe_identity_signed.signature[5] ^= 1;
  EXPECT_TRUE(Contains(VerifyError(q, c, at).message(), "qe_identity: signature does not verify"));

  // A collateral "signer" that chains to the root but is not the TCB Signing
  // certificate is refused before any signature is checked: the PCK CA, and
  // the PCK leaf (whose key lives on a platform).
  c = Load(testing::kDcapCollateral);
  const Quote parsed = Must(ParseQuote(q));
  std::string pem = parsed.pck_chain_pem;
  pem.pop_back();
  const auto pck_chain = Must(crypto::ParseCertificatesPem(pem));
  c.tcb_info_issuer_chain = {pck_chain[1], pck_chain[2]};
  s = VerifyError(q, c, at);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(s.message(), "is not a TCB Signing certificate")) << s.message();
  c.tcb_info_issuer_chain = pck_chain;
  s = VerifyError(q, c, at);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(s.message(), "tcb_info issuer chain")) << s.message();

  // Collateral for another platform.
  s = VerifyError(q, Load(testing::kTrusteeCollateral), testing::TrusteeTime());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s.message(), "FMSPC 00a06d080000")) << s.message();

  // No root CRL.
  c = Load(testing::kDcapCollateral);
  c.root_ca_crl.clear();
  EXPECT_EQ(VerifyError(q, c, at).code(), StatusCode::kFailedPrecondition);
}

TEST(VerifyDcap, PckChainMustBeThreeCertificatesInCanonicalPem) {
  const Collateral c = Load(testing::kDcapCollateral);
  const int64_t at = testing::DcapTime();
  const Bytes orig = ReadBytes(testing::kDcapQuote);
  const Quote q = Must(ParseQuote(orig));
  std::string pem = q.pck_chain_pem;
  pem.pop_back();  // the NUL
  // Without the trailing NUL: still canonical, still fine.
  EXPECT_TRUE(VerifyDcap(WithPckChain(orig, pem), c, IntelTrustAnchors(), at).ok());
  // CRLF line ends decode to the same certificates but are not what the QE writes.
  std::string crlf;
  for (char ch : pem) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  Status s = VerifyError(WithPckChain(orig, crlf), c, at);
  EXPECT_TRUE(Contains(s.message(), "not in canonical PEM form")) << s.message();
  // Two NULs.
  s = VerifyError(WithPckChain(orig, pem + std::string(2, '\0')), c, at);
  EXPECT_FALSE(s.ok());
  // Leaf and CA only.
  const size_t last = pem.rfind("-----BEGIN CERTIFICATE-----");
  s = VerifyError(WithPckChain(orig, pem.substr(0, last)), c, at);
  EXPECT_TRUE(Contains(s.message(), "has 2 certificates")) << s.message();
  // The chain's root must be the pinned root itself.
  const auto ca = Must(
      crypto::CreateCertificateAuthority("Intel SGX Root CA", T("2018-01-01T00:00:00Z"), 36500));
  s = VerifyError(WithPckChain(orig, pem.substr(0, last) + ca.cert_pem), c, at);
  EXPECT_TRUE(Contains(s.message(), "not the pinned Intel SGX Root CA")) << s.message();
}

TEST(VerifyDcap, QeVendorIdMustBeIntels) {
  Bytes b = ReadBytes(testing::kDcapQuote);
  b[12] ^= 1;
  const Status s = VerifyError(b, Load(testing::kDcapCollateral), testing::DcapTime());
  EXPECT_TRUE(Contains(s.message(), "QE vendor id")) << s.message();
}

}  // namespace
}  // namespace cce::attest
