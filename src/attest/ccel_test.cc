// Tests for the CC event log: the go-tdx-guest COS-113 vector replays to the
// RTMRs of the quote taken on the same TD.
#include "attest/ccel.h"

#include <gtest/gtest.h>

#include <set>

#include "attest/test_util.h"

namespace cce::attest {
namespace {

using crypto::Bytes;
using testing::Contains;
using testing::Must;
using testing::ReadBytes;

constexpr const char* kTable = "go-tdx-guest/ccel/ccel_table.dat";
constexpr const char* kLog = "go-tdx-guest/ccel/ccel_data.dat";

TEST(CcelTable, ParsesTheAcpiTable) {
  const CcelTable t = Must(ParseCcelTable(ReadBytes(kTable)));
  EXPECT_EQ(t.cc_type, 2);  // TDX
  EXPECT_EQ(t.oem_id, "INTEL ");
  EXPECT_EQ(t.log_area_minimum_length, 0x40000u);
  EXPECT_EQ(ReadBytes(kLog).size(), t.log_area_minimum_length);
  EXPECT_EQ(t.log_area_start_address, 0xbedbf000u);
}

TEST(CcelTable, RejectsBadChecksumSignatureAndLength) {
  const Bytes orig = ReadBytes(kTable);
  Bytes b = orig;
  b[40] ^= 1;
  EXPECT_EQ(ParseCcelTable(b).status().message(),
            "CCEL table offset 9: checksum: bytes do not sum to zero");
  b = orig;
  b[0] = 'X';
  EXPECT_TRUE(Contains(ParseCcelTable(b).status().message(), "signature: is not 'CCEL'"));
  EXPECT_TRUE(Contains(ParseCcelTable(crypto::ByteSpan(orig.data(), 40)).status().message(),
                       "CCEL table offset 4: length"));
}

TEST(CcEventLog, ReplayEqualsRtmr0To2OfTheQuote) {
  const CcEventLog log = Must(ParseCcEventLog(ReadBytes(kLog)));
  ASSERT_EQ(log.algorithms.size(), 1u);
  EXPECT_EQ(log.algorithms[0].first, kTpmAlgSha384);
  EXPECT_EQ(log.used_bytes, 18101u);
  std::set<uint32_t> indexes;
  for (const CcEvent& e : log.events) indexes.insert(e.mr_index);
  EXPECT_EQ(indexes, (std::set<uint32_t>{1, 2, 3}));  // MR index i extends RTMR[i-1]

  const std::array<Measurement, 4> rtmr = Must(ReplayRtmrs(log));
  const Quote q = Must(ParseQuote(ReadBytes(testing::kCosQuote)));
  EXPECT_EQ(rtmr[0], q.body.rtmr[0]);
  EXPECT_EQ(rtmr[1], q.body.rtmr[1]);
  EXPECT_EQ(rtmr[2], q.body.rtmr[2]);
  EXPECT_EQ(rtmr[3], Measurement{});  // nothing extended RTMR3 at boot
  EXPECT_EQ(q.body.rtmr[3], Measurement{});
  EXPECT_TRUE(CompareRtmrs(rtmr, q.body).empty());
  EXPECT_EQ(crypto::ToHex(rtmr[0]).substr(0, 16), "3fa2f61f395b7f5f");
}

TEST(CcEventLog, AChangedEventChangesTheReplay) {
  CcEventLog log = Must(ParseCcEventLog(ReadBytes(kLog)));
  const Quote q = Must(ParseQuote(ReadBytes(testing::kCosQuote)));
  for (CcEvent& e : log.events) {
    if (e.mr_index == 2 && e.event_type != kEvNoAction) {
      (*e.sha384)[0] ^= 1;
      break;
    }
  }
  const auto diff = CompareRtmrs(Must(ReplayRtmrs(log)), q.body);
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_TRUE(diff[0].starts_with("RTMR1: event log replays to ")) << diff[0];
  // An event for MRTD (index 0) cannot be replayed.
  log.events[1].mr_index = 0;
  EXPECT_TRUE(Contains(ReplayRtmrs(log).status().message(), "event MR index 0 is not an RTMR"));
}

TEST(CcEventLog, RejectsMalformedLogsNamingTheOffset) {
  const Bytes orig = ReadBytes(kLog);
  Bytes b = orig;
  b[32] = 'X';  // Spec ID signature
  EXPECT_EQ(ParseCcEventLog(b).status().message(),
            "CC event log offset 32: Spec ID signature: is not 'Spec ID Event03'");
  // Every truncation inside the used part fails (the fill after it is optional).
  const CcEventLog log = Must(ParseCcEventLog(orig));
  for (size_t len = 0; len < log.used_bytes; len += 17) {
    const crypto::ByteSpan prefix(orig.data(), len);
    auto r = ParseCcEventLog(prefix);
    if (r.ok()) {
      // A prefix that ends exactly at an event boundary is a valid shorter log.
      EXPECT_LT(r->events.size(), log.events.size()) << len;
    } else {
      EXPECT_TRUE(Contains(r.status().message(), "CC event log offset")) << len;
    }
  }
  b = orig;
  b[log.used_bytes + 100] = 0;  // garbage inside the 0xFF fill
  EXPECT_TRUE(Contains(ParseCcEventLog(b).status().message(), "fill is followed by other bytes"));
  b = orig;
  b[log.events[3].offset + 8] = 2;  // digest count
  EXPECT_TRUE(Contains(ParseCcEventLog(b).status().message(),
                       "offset " + std::to_string(log.events[3].offset + 8) + ": digest count"));
}

}  // namespace
}  // namespace cce::attest
