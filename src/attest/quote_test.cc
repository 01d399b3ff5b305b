// Tests for the TDX quote parser on real quotes: fields against the facts in
// tests/data/tdx/README.md, trailing data, and every malformation naming its
// offset and field.
#include "attest/quote.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "attest/test_util.h"

namespace cce::attest {
namespace {

using crypto::Bytes;
using crypto::ToHex;
using testing::Contains;
using testing::Must;
using testing::ReadBytes;

std::string ParseError(const Bytes& b) {
  auto q = ParseQuote(b);
  EXPECT_FALSE(q.ok());
  if (q.ok()) return "";
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
  return q.status().message();
}

void PutU16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}
void PutU32(Bytes& b, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

TEST(ParseQuote, ReadsDcapQvlV4Quote) {
  const Bytes b = ReadBytes(testing::kDcapQuote);
  const Quote q = Must(ParseQuote(b));
  EXPECT_EQ(q.header.version, 4);
  EXPECT_EQ(q.header.attestation_key_type, 2);
  EXPECT_EQ(q.header.tee_type, 0x81u);
  EXPECT_EQ(q.header.qe_vendor_id, kIntelQeVendorId);
  EXPECT_EQ(q.body_type, kBodyTypeTdx10);
  EXPECT_EQ(ToHex(q.body.mr_td),
            "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b"
            "2538873118b7");
  EXPECT_EQ(ToHex(q.body.td_attributes), "0000001000000000");
  EXPECT_EQ(q.body.TdAttributes(), uint64_t{1} << 28);
  EXPECT_TRUE(ToHex(q.body.mr_seam).starts_with("5b38e33a"));
  EXPECT_TRUE(ToHex(q.body.mr_seam).ends_with("207b00c1"));
  EXPECT_FALSE(q.body.tee_tcb_svn2.has_value());
  EXPECT_FALSE(q.body.mr_service_td.has_value());
  EXPECT_EQ(q.signed_region.size(), 48u + 584u);
  EXPECT_TRUE(std::equal(q.signed_region.begin(), q.signed_region.end(), b.begin()));
  EXPECT_EQ(q.signature_data_offset, 632u);
  EXPECT_EQ(q.quote_length, 636u + 4300u);
  EXPECT_EQ(q.trailing_bytes, 70u);  // zero padding to 5006 bytes
  EXPECT_EQ(q.qe_report.isv_svn, 6);
  EXPECT_EQ(q.qe_report.isv_prod_id, 2);
  EXPECT_EQ(q.qe_auth_data.size(), 32u);
  EXPECT_TRUE(q.pck_chain_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
  EXPECT_EQ(q.pck_chain_pem.back(), '\0');  // the QE writes a trailing NUL
  EXPECT_TRUE(std::equal(q.qe_report.raw.begin(), q.qe_report.raw.end(), b.begin() + 770));
}

TEST(ParseQuote, ReadsV5Tdx15Quotes) {
  const Quote q = Must(ParseQuote(ReadBytes(testing::kGoV5Quote)));
  EXPECT_EQ(q.header.version, 5);
  EXPECT_EQ(q.body_type, kBodyTypeTdx15);
  EXPECT_EQ(ToHex(q.body.mr_td),
            "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8"
            "f750c3bc8f876");
  EXPECT_EQ(ToHex(q.body.td_attributes), "0000001000000000");
  EXPECT_TRUE(ToHex(q.body.tee_tcb_svn).starts_with("0b0104"));
  ASSERT_TRUE(q.body.tee_tcb_svn2.has_value());
  EXPECT_TRUE(ToHex(*q.body.tee_tcb_svn2).starts_with("0d0104"));
  // v5 signs the body type and size too.
  EXPECT_EQ(q.signed_region.size(), 48u + 6u + 648u);
  EXPECT_EQ(q.trailing_bytes, 0u);

  const Quote t = Must(ParseQuote(ReadBytes(testing::kTrusteeV5Quote)));
  ASSERT_TRUE(t.body.mr_service_td.has_value());
  EXPECT_TRUE(ToHex(*t.body.mr_service_td).starts_with("383c87d3"));
  EXPECT_TRUE(ToHex(*t.body.mr_service_td).ends_with("7a5a033d"));
  EXPECT_TRUE(ToHex(t.body.mr_td).starts_with("dfba221b"));
}

TEST(ParseQuote, ToleratesTrailingBytesAndZeroPadding) {
  // 39 bytes of text after the signature data.
  const Quote a = Must(ParseQuote(ReadBytes(testing::kGoV4Quote)));
  EXPECT_EQ(a.trailing_bytes, 39u);
  EXPECT_EQ(a.quote_length, 4935u);
  EXPECT_TRUE(ToHex(a.body.mr_td).starts_with("6363b804"));
  EXPECT_EQ(ToHex(a.body.td_attributes), "0000004000000000");
  // Zero padding to 8000 bytes.
  const Quote c = Must(ParseQuote(ReadBytes(testing::kCosQuote)));
  EXPECT_EQ(c.quote_length, 4935u);
  EXPECT_EQ(c.trailing_bytes, 8000u - 4935u);
  EXPECT_EQ(c.body.report_data, ReportData{});
  // The DEBUG quote and the Azure one parse too.
  const Quote d = Must(ParseQuote(ReadBytes(testing::kTrusteeDebugQuote)));
  EXPECT_EQ(d.body.TdAttributes() & kTdAttributeDebug, 1u);
  EXPECT_TRUE(ParseQuote(ReadBytes(testing::kAzureQuote)).ok());
  EXPECT_TRUE(ParseQuote(ReadBytes(testing::kTrusteeQuote6)).ok());
}

TEST(ParseQuote, RejectsEveryTruncation) {
  for (const char* file : {testing::kDcapQuote, testing::kGoV5Quote}) {
    const Bytes b = ReadBytes(file);
    const Quote q = Must(ParseQuote(b));
    for (size_t len = 0; len < q.quote_length; ++len) {
      auto r = ParseQuote(crypto::ByteSpan(b.data(), len));
      ASSERT_FALSE(r.ok()) << file << " truncated to " << len;
      ASSERT_TRUE(Contains(r.status().message(), "quote offset ")) << r.status().message();
    }
  }
}

// A prefix of the quote with the enclosing length fields shrunk to match, so
// that parsing reaches the field at `len` and finds it truncated there.
Bytes TruncateConsistently(const Bytes& b, const Quote& q, size_t len) {
  Bytes out(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(len));
  const size_t sig_len_at = q.signature_data_offset;
  const size_t cert_size_at = sig_len_at + 4 + 64 + 64 + 2;
  const size_t pck_size_at = cert_size_at + 4 + 384 + 64 + 2 + q.qe_auth_data.size() + 2;
  if (len >= sig_len_at + 4) PutU32(out, sig_len_at, static_cast<uint32_t>(len - sig_len_at - 4));
  if (len >= cert_size_at + 4) {
    PutU32(out, cert_size_at, static_cast<uint32_t>(len - cert_size_at - 4));
  }
  if (len >= pck_size_at + 4)
    PutU32(out, pck_size_at, static_cast<uint32_t>(len - pck_size_at - 4));
  return out;
}

TEST(ParseQuote, TruncationAtEachFieldBoundaryNamesTheField) {
  struct Boundary {
    size_t offset;
    const char* field;
  };
  const auto check = [](const char* file, const std::vector<Boundary>& boundaries) {
    const Bytes b = ReadBytes(file);
    const Quote q = Must(ParseQuote(b));
    for (const Boundary& bd : boundaries) {
      const std::string msg = ParseError(TruncateConsistently(b, q, bd.offset));
      EXPECT_TRUE(Contains(
          msg, "quote offset " + std::to_string(bd.offset) + ": " + bd.field + ": truncated"))
          << file << " at " << bd.offset << ": " << msg;
    }
  };
  // v4: header, body, then the signature data and the QE certification data.
  check(testing::kDcapQuote, {{0, "version"},
                              {2, "attestation key type"},
                              {4, "TEE type"},
                              {8, "QE SVN"},
                              {10, "PCE SVN"},
                              {12, "QE vendor id"},
                              {28, "user data"},
                              {48, "TD report body"},
                              {632, "signature data length"},
                              {636, "quote signature"},
                              {700, "attestation key"},
                              {764, "certification data type"},
                              {766, "certification data size"},
                              {770, "QE report"},
                              {1154, "QE report signature"},
                              {1218, "QE authentication data size"},
                              {1220, "QE authentication data"},
                              {1252, "PCK certification data type"},
                              {1254, "PCK certification data size"}});
  // v5 adds the body type and size before a 648-byte body.
  check(testing::kGoV5Quote, {{48, "body type"},
                              {50, "body size"},
                              {54, "TD report body"},
                              {702, "signature data length"},
                              {706, "quote signature"},
                              {840, "QE report"},
                              {1322, "PCK certification data type"}});
  // An empty PCK chain (size 0) is its own error.
  const Bytes b = ReadBytes(testing::kDcapQuote);
  const Quote q = Must(ParseQuote(b));
  EXPECT_TRUE(Contains(ParseError(TruncateConsistently(b, q, 1258)),
                       "quote offset 1254: PCK certification data size: is zero"));
}

TEST(ParseQuote, RejectsUnsupportedHeaderValuesNamingOffsetAndField) {
  const Bytes orig = ReadBytes(testing::kDcapQuote);
  Bytes b = orig;
  PutU16(b, 0, 3);
  EXPECT_EQ(ParseError(b), "quote offset 0: version: 3 is not supported (want 4 or 5)");
  b = orig;
  PutU16(b, 2, 3);
  EXPECT_EQ(ParseError(b),
            "quote offset 2: attestation key type: 3 is not supported (want 2 = "
            "ECDSA-256-with-P-256)");
  b = orig;
  PutU32(b, 4, 0);
  EXPECT_EQ(ParseError(b), "quote offset 4: TEE type: 0 is not TDX (want 129 = 0x81)");
  b = orig;
  PutU16(b, 764, 5);
  EXPECT_TRUE(Contains(ParseError(b), "quote offset 764: certification data type: 5 is not"));
  b = orig;
  PutU32(b, 766, 4165);
  EXPECT_TRUE(Contains(ParseError(b), "quote offset 766: certification data size: declares 4165"));
  b = orig;
  PutU16(b, 1252, 3);
  EXPECT_TRUE(Contains(ParseError(b), "quote offset 1252: PCK certification data type: 3 is not"));
  b = orig;
  PutU32(b, 632, 4299);
  EXPECT_TRUE(Contains(ParseError(b), "quote offset 766: certification data size"));
  b = orig;
  PutU32(b, 632, 0xffffffff);
  EXPECT_TRUE(Contains(ParseError(b), "quote offset 636: signature data: truncated"));
}

TEST(ParseQuote, RejectsBadV5BodyTypeAndSize) {
  const Bytes orig = ReadBytes(testing::kGoV5Quote);
  Bytes b = orig;
  PutU16(b, 48, 1);  // an SGX enclave report body
  EXPECT_EQ(ParseError(b),
            "quote offset 48: body type: 1 is not supported (want 2 = TDX 1.0 or 3 = TDX 1.5 TD "
            "report)");
  b = orig;
  PutU32(b, 50, 584);
  EXPECT_EQ(ParseError(b), "quote offset 50: body size: 584 does not match body type 3 (want 648)");
  b = orig;
  PutU16(b, 48, 2);  // type 2 but a 648-byte size
  EXPECT_TRUE(
      Contains(ParseError(b), "quote offset 50: body size: 648 does not match body type 2"));
}

}  // namespace
}  // namespace cce::attest
