#include "cli/progress.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace cce::cli {
namespace {

TEST(HumanDuration, RoundedForPeople) {
  EXPECT_EQ(HumanDuration(0), "0.0 s");
  EXPECT_EQ(HumanDuration(0.4321), "0.4 s");
  EXPECT_EQ(HumanDuration(1.23456), "1.2 s");
  EXPECT_EQ(HumanDuration(9.96), "10 s");
  EXPECT_EQ(HumanDuration(42.4), "42 s");
  EXPECT_EQ(HumanDuration(59.6), "1 min 00 s");
  EXPECT_EQ(HumanDuration(185), "3 min 05 s");
  EXPECT_EQ(HumanDuration(3599.4), "59 min 59 s");
  EXPECT_EQ(HumanDuration(7620), "2 h 07 min");
  EXPECT_EQ(HumanDuration(-1), "?");
  EXPECT_EQ(HumanDuration(std::numeric_limits<double>::infinity()), "?");
  EXPECT_EQ(HumanDuration(std::nan("")), "?");
  EXPECT_EQ(HumanDuration(1e30), "?");  // a stalled transfer's estimate
  EXPECT_EQ(HumanDuration(35999000), "9999 h 43 min");
}

TEST(HumanRate, AtMostThreeFigures) {
  EXPECT_EQ(HumanRate(0), "0 B/s");
  EXPECT_EQ(HumanRate(512), "512 B/s");
  EXPECT_EQ(HumanRate(1023.7), "1.00 KiB/s");
  EXPECT_EQ(HumanRate(850.0 * 1024 * 1024), "850 MiB/s");
  EXPECT_EQ(HumanRate(12.5 * 1024 * 1024), "12.5 MiB/s");
  EXPECT_EQ(HumanRate(3.07 * 1024 * 1024 * 1024), "3.07 GiB/s");
  EXPECT_EQ(HumanRate(123456789.123), "118 MiB/s");
  EXPECT_EQ(HumanRate(-5), "?");
}

TEST(HumanBytes, BinaryUnitsOneDecimal) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(uint64_t{3} << 30), "3.0 GiB");
}

TEST(ProgressLine, ShowsRateAndEta) {
  const uint64_t mib = 1 << 20;
  // 100 MiB of 400 MiB in 2 s: 50 MiB/s, 300 MiB to go: 6 s.
  EXPECT_EQ(ProgressLine("encrypt", 100 * mib, 400 * mib, 1, 4, 2.0),
            "encrypt [#######.......................]  25%  100.0 MiB/400.0 MiB  1/4 files  "
            "50.0 MiB/s  ETA 6.0 s");
  // Long runs: minutes.
  EXPECT_NE(ProgressLine("x", 1 * mib, 400 * mib, 0, 1, 2.0).find("ETA 13 min 18 s"),
            std::string::npos);
}

TEST(ProgressLine, NoEstimateYetAndNoneWhenDone) {
  EXPECT_NE(ProgressLine("x", 0, 100, 0, 1, 5.0).find("ETA ?"), std::string::npos);
  EXPECT_NE(ProgressLine("x", 10, 100, 0, 1, 0.1).find("ETA ?"), std::string::npos);
  const std::string done = ProgressLine("x", 100, 100, 1, 1, 2.0);
  EXPECT_EQ(done.find("ETA"), std::string::npos) << done;
  EXPECT_NE(done.find("100%"), std::string::npos) << done;
  // Nothing to do: complete, not a division by zero.
  EXPECT_NE(ProgressLine("x", 0, 0, 0, 0, 0).find("100%"), std::string::npos);
}

TEST(ProgressLine, NeverEndsInWhitespace) {
  for (uint64_t done : {uint64_t{0}, uint64_t{50}, uint64_t{100}}) {
    const std::string l = ProgressLine("push", done, 100, 0, 2, 1.0);
    ASSERT_FALSE(l.empty());
    EXPECT_NE(l.back(), ' ') << l;
  }
}

}  // namespace
}  // namespace cce::cli
