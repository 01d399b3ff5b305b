// Test-only helpers for src/attest tests: reading the vectors in
// tests/data/tdx and the fixed verification times of each collateral set.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "attest/time_util.h"
#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::attest::testing {

inline std::string TdxDataPath(const std::string& relative) {
  return std::string(CCE_SOURCE_DIR) + "/tests/data/tdx/" + relative;
}

inline std::string ReadText(const std::string& relative) {
  const std::string path = TdxDataPath(relative);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline crypto::Bytes ReadBytes(const std::string& relative) {
  const std::string s = ReadText(relative);
  return {s.begin(), s.end()};
}

inline int64_t T(const char* rfc3339) {
  auto t = ParseRfc3339Utc(rfc3339);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : 0;
}

template <typename T>
T Must(StatusOr<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
  return std::move(r).value();
}

// The vectors (see tests/data/tdx/README.md).
inline constexpr const char* kDcapQuote = "dcap-qvl/tdx_quote";
inline constexpr const char* kDcapCollateral = "dcap-qvl/tdx_quote_collateral.json";
inline constexpr const char* kDcapOutdatedQuote = "dcap-qvl/tdx_quote_outdated";
inline constexpr const char* kDcapOutdatedCollateral =
    "dcap-qvl/tdx_quote_outdated_collateral.json";
inline constexpr const char* kGoV4Quote = "tdx_prod_quote_SPR_E4.dat";
inline constexpr const char* kGo2023Collateral = "collateral/go-tdx-guest-2023";
inline constexpr const char* kGoV5Quote = "go-tdx-guest/quote_v5_sample.dat";
inline constexpr const char* kGoV5Collateral = "collateral/go-tdx-guest-v5-2026";
inline constexpr const char* kCosQuote = "go-tdx-guest/ccel/cos-113-tdx-quote.dat";
inline constexpr const char* kTrusteeDebugQuote = "trustee/tdx_quote_4.dat";
inline constexpr const char* kTrusteeV5Quote = "trustee/tdx_quote_5.dat";
inline constexpr const char* kTrusteeQuote6 = "trustee/tdx_quote_6.dat";
inline constexpr const char* kTrusteeCollateral = "collateral/trustee-2025";
inline constexpr const char* kAzureQuote = "trustee/az-tdx-vtpm-td-quote.bin";

// Times inside each set's all-valid window.
inline int64_t DcapTime() {
  return T("2025-07-01T00:00:00Z");
}
inline int64_t Go2023Time() {
  return T("2023-07-01T01:00:00Z");
}
inline int64_t GoV5Time() {
  return T("2026-02-25T00:00:00Z");
}
inline int64_t TrusteeTime() {
  return T("2025-11-01T00:00:00Z");
}
inline int64_t DcapOutdatedTime() {
  return T("2026-03-01T00:00:00Z");
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace cce::attest::testing
