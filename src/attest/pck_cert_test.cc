// Tests for the SGX extension reader on the PCK leaves of real quotes.
#include "attest/pck_cert.h"

#include <gtest/gtest.h>

#include "attest/quote.h"
#include "attest/test_util.h"
#include "crypto/x509.h"

namespace cce::attest {
namespace {

using crypto::Bytes;
using crypto::ToHex;
using testing::Contains;
using testing::Must;

std::vector<crypto::Certificate> ChainOf(const char* quote_file) {
  const Quote q = Must(ParseQuote(testing::ReadBytes(quote_file)));
  std::string pem = q.pck_chain_pem;
  if (!pem.empty() && pem.back() == '\0') pem.pop_back();
  return Must(crypto::ParseCertificatesPem(pem));
}

std::string Svns(const std::array<uint8_t, 16>& a, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(a[i]);
  return s;
}

TEST(PckExtensions, ReadsFmspcPceIdAndTcbFromRealLeaves) {
  struct Case {
    const char* quote;
    const char* fmspc;
    const char* sgx_prefix;  // first 8 SGX components
    int pce_svn;             // -1: not asserted
  };
  const Case cases[] = {
      {testing::kGoV4Quote, "50806f000000", "3,3,2,2,2,1,0,2", -1},
      {testing::kDcapOutdatedQuote, "90c06f000000", "3,3,2,2,4,1,0,3", 13},
      {testing::kTrusteeQuote6, "00a06d080000", nullptr, 11},
      {testing::kDcapQuote, "b0c06f000000", nullptr, -1},
      {testing::kGoV5Quote, "90c06f000000", nullptr, -1},
      {testing::kCosQuote, "00806f050000", nullptr, -1},
  };
  for (const Case& c : cases) {
    const auto chain = ChainOf(c.quote);
    const PckExtensions e = Must(ParsePckExtensions(chain[0].der()));
    EXPECT_EQ(ToHex(e.fmspc), c.fmspc) << c.quote;
    EXPECT_EQ(ToHex(e.pce_id), "0000") << c.quote;
    if (c.sgx_prefix != nullptr) {
      EXPECT_EQ(Svns(e.sgx_tcb_components, 8), c.sgx_prefix);
    }
    if (c.pce_svn >= 0) {
      EXPECT_EQ(e.pce_svn, c.pce_svn) << c.quote;
    }
    // Intel's PCK certificates repeat the components as the CPUSVN.
    EXPECT_EQ(e.cpu_svn, e.sgx_tcb_components) << c.quote;
  }
}

TEST(PckExtensions, CaCertificateHasNone) {
  const auto chain = ChainOf(testing::kDcapQuote);
  auto r = ParsePckExtensions(chain[1].der());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "no Intel SGX extension"));
}

TEST(PckExtensions, RejectsEveryTruncationAndTrailingBytes) {
  const auto chain = ChainOf(testing::kDcapQuote);
  const Bytes& der = chain[0].der();
  for (size_t len = 0; len < der.size(); ++len) {
    EXPECT_FALSE(ParsePckExtensions(crypto::ByteSpan(der.data(), len)).ok()) << len;
  }
  Bytes longer = der;
  longer.push_back(0);
  auto r = ParsePckExtensions(longer);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "trailing bytes"));
}

TEST(PckExtensions, RejectsARepeatedFieldAndNamesIt) {
  // Rewrite the PCE-ID entry's OID (…1.13.1.3) into a second FMSPC OID
  // (…1.13.1.4): same length, so the DER stays well formed.
  const auto chain = ChainOf(testing::kDcapQuote);
  Bytes der = chain[0].der();
  const Bytes pce_oid = {0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01, 0x03};
  auto it = std::search(der.begin(), der.end(), pce_oid.begin(), pce_oid.end());
  ASSERT_NE(it, der.end());
  *(it + 11) = 0x04;
  auto r = ParsePckExtensions(der);
  ASSERT_FALSE(r.ok());
  // The PCE-ID value is 2 bytes, the FMSPC 6: either message names the field.
  EXPECT_TRUE(Contains(r.status().message(), "FMSPC")) << r.status().message();
}

}  // namespace
}  // namespace cce::attest
