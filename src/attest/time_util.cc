#include "attest/time_util.h"

namespace cce::attest {
namespace {

bool Digits(std::string_view s, size_t at, size_t n, int& out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (era-based civil day
// count; valid for every year we accept).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool IsLeap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

std::string Pad(int64_t v, size_t width) {
  std::string s = std::to_string(v);
  return s.size() >= width ? s : std::string(width - s.size(), '0') + s;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

}  // namespace

StatusOr<int64_t> ParseRfc3339Utc(std::string_view s) {
  const auto bad = [&](std::string_view why) {
    std::string shown(s.substr(0, 40));
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    return InvalidArgument("time '" + shown + (s.size() > 40 ? "...'" : "'") + ": " +
                           std::string(why) +
                           " (want RFC 3339, e.g. 2025-07-01T02:00:00Z or "
                           "2025-07-01T04:00:00.5+02:00)");
  };
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!Digits(s, 0, 4, year) || s.size() < 19 || s[4] != '-' || !Digits(s, 5, 2, month) ||
      s[7] != '-' || !Digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !Digits(s, 11, 2, hour) || s[13] != ':' || !Digits(s, 14, 2, minute) || s[16] != ':' ||
      !Digits(s, 17, 2, second)) {
    return bad("malformed");
  }
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return bad("empty fraction");
  }
  const std::string_view zone = s.substr(i);
  int64_t offset_seconds = 0;
  if (zone == "Z" || zone == "z") {
    offset_seconds = 0;
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    int oh = 0;
    int om = 0;
    if (!Digits(zone, 1, 2, oh) || !Digits(zone, 4, 2, om)) return bad("malformed UTC offset");
    if (oh > 23 || om > 59) return bad("UTC offset out of range (at most 23:59)");
    offset_seconds = (zone[0] == '-' ? -1 : 1) * (int64_t{oh} * 3600 + int64_t{om} * 60);
  } else {
    return bad("malformed: expected 'Z' or a UTC offset like +02:00 after the time");
  }
  if (year < 1970) return bad("before 1970-01-01T00:00:00Z");
  if (month < 1 || month > 12) return bad("month out of range");
  if (day < 1 || day > DaysInMonth(year, month)) {
    return bad("day out of range for " + Pad(year, 4) + "-" + Pad(month, 2));
  }
  if (hour > 23 || minute > 59) return bad("hour or minute out of range");
  // RFC 3339 allows a leap second (:60); unix time has none, so it counts as :59.
  if (second > 60) return bad("second out of range");
  if (second == 60) second = 59;
  const int64_t local = DaysFromCivil(year, month, day) * 86400 + int64_t{hour} * 3600 +
                        int64_t{minute} * 60 + second;
  const int64_t t = local - offset_seconds;
  if (t < 0) return bad("before 1970-01-01T00:00:00Z");
  return t;
}

std::string FormatRfc3339Utc(int64_t t) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  // Inverse of DaysFromCivil.
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp + (mp < 10 ? 3 : -9);
  y += m <= 2 ? 1 : 0;
  if (y < 0 || y > 9999) return t < 0 ? "0000-01-01T00:00:00Z" : "9999-12-31T23:59:59Z";
  return Pad(y, 4) + "-" + Pad(m, 2) + "-" + Pad(d, 2) + "T" + Pad(secs / 3600, 2) + ":" +
         Pad(secs / 60 % 60, 2) + ":" + Pad(secs % 60, 2) + "Z";
}

}  // namespace cce::attest
