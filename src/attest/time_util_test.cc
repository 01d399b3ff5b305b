// RFC 3339 parsing for collateral times and `cce attest verify --at`: every
// form RFC 3339 allows (offsets, 'z', fractions, leap seconds), and invalid
// dates refused with the reason.
#include "attest/time_util.h"

#include <gtest/gtest.h>

#include <string>

namespace cce::attest {
namespace {

// 2025-07-01T00:00:00Z.
constexpr int64_t kJuly1 = 1751328000;

TEST(ParseRfc3339Utc, AcceptsEveryRfc3339Form) {
  const struct {
    const char* text;
    int64_t want;
  } cases[] = {
      {"2025-07-01T00:00:00Z", kJuly1},
      {"2025-07-01t00:00:00z", kJuly1},
      {"2025-07-01 00:00:00Z", kJuly1},  // RFC 3339 §5.6 NOTE: a space for T
      {"2025-07-01T00:00:00+00:00", kJuly1},
      {"2025-07-01T00:00:00-00:00", kJuly1},
      {"2025-07-01T02:00:00+02:00", kJuly1},  // the finding's example
      {"2025-06-30T19:00:00-05:00", kJuly1},
      {"2025-07-01T05:30:00+05:30", kJuly1},
      {"2025-07-01T00:00:00.5Z", kJuly1},
      {"2025-07-01T00:00:00.999999999+00:00", kJuly1},
      {"2025-07-01T01:00:00.25+01:00", kJuly1},
      {"2016-12-31T23:59:60Z", 1483228799},  // leap second, counted as :59
      {"2024-02-29T00:00:00Z", 1709164800},
      {"1970-01-01T00:00:00Z", 0},
      {"1970-01-01T01:00:00+01:00", 0},
      {"9999-12-31T23:59:59Z", 253402300799},
  };
  for (const auto& c : cases) {
    auto t = ParseRfc3339Utc(c.text);
    ASSERT_TRUE(t.ok()) << c.text << ": " << t.status().ToString();
    EXPECT_EQ(*t, c.want) << c.text;
  }
}

TEST(ParseRfc3339Utc, RefusesInvalidTimesWithTheReason) {
  const struct {
    const char* text;
    const char* reason;
  } cases[] = {
      {"", "malformed"},
      {"2025-07-01", "malformed"},
      {"2025-07-01T00:00:00", "expected 'Z' or a UTC offset"},
      {"2025-07-01T00:00Z", "malformed"},
      {"2025/07/01T00:00:00Z", "malformed"},
      {"2025-07-01X00:00:00Z", "malformed"},
      {"2025-07-01T00:00:00.Z", "empty fraction"},
      {"2025-07-01T00:00:00+0200", "expected 'Z' or a UTC offset"},
      {"2025-07-01T00:00:00+2:00", "expected 'Z' or a UTC offset"},
      {"2025-07-01T00:00:00+02:0x", "malformed UTC offset"},
      {"2025-07-01T00:00:00+24:00", "UTC offset out of range"},
      {"2025-07-01T00:00:00+02:60", "UTC offset out of range"},
      {"2025-07-01T00:00:00ZZ", "expected 'Z' or a UTC offset"},
      {"2025-07-01T00:00:00 Z", "expected 'Z' or a UTC offset"},
      {"2025-13-01T00:00:00Z", "month out of range"},
      {"2025-00-01T00:00:00Z", "month out of range"},
      {"2025-02-29T00:00:00Z", "day out of range for 2025-02"},
      {"2025-04-31T00:00:00Z", "day out of range for 2025-04"},
      {"2025-07-00T00:00:00Z", "day out of range"},
      {"2025-07-01T24:00:00Z", "hour or minute out of range"},
      {"2025-07-01T00:60:00Z", "hour or minute out of range"},
      {"2025-07-01T00:00:61Z", "second out of range"},
      {"1969-12-31T23:59:59Z", "before 1970"},
      {"1970-01-01T00:00:00+01:00", "before 1970"},
  };
  for (const auto& c : cases) {
    auto t = ParseRfc3339Utc(c.text);
    ASSERT_FALSE(t.ok()) << c.text << " parsed as " << *t;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.reason), std::string::npos)
        << c.text << ": " << t.status().message();
    EXPECT_NE(t.status().message().find("RFC 3339"), std::string::npos) << t.status().message();
  }
}

TEST(ParseRfc3339Utc, ErrorShowsAShortPrintableExcerpt) {
  auto t = ParseRfc3339Utc(std::string("2025-07-01T00:00:00\n") + std::string(100, 'x'));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message().find('\n'), std::string::npos);
  EXPECT_EQ(t.status().message().find(std::string(30, 'x')), std::string::npos);
}

TEST(FormatRfc3339Utc, RoundTrips) {
  for (int64_t t : {int64_t{0}, kJuly1, int64_t{1483228799}, int64_t{253402300799}}) {
    auto back = ParseRfc3339Utc(FormatRfc3339Utc(t));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, t);
  }
}

}  // namespace
}  // namespace cce::attest
