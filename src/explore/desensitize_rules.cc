#include "explore/desensitize_rules.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace cce::explore::internal {
namespace {

constexpr int kWidthLevels = 17;  // width, 2*width, ..., 2^16*width, then "*"
constexpr double kMaxBucket = 9e15;

std::string FormatNumber(double v) {
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.10g", v);
  }
  return buf;
}

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

int64_t ParseInt(std::string_view s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// Code points in a UTF-8 string (bytes that are not continuation bytes).
size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

// Byte offset where code point `n` starts (s.size() if there are fewer).
size_t CodePointOffset(std::string_view s, size_t n) {
  size_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) {
      if (seen == n) return i;
      ++seen;
    }
  }
  return s.size();
}

bool Digits(std::string_view s, size_t at, size_t n, int* out) {
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

unsigned DaysInMonth(int y, unsigned m) {
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return kDays[m - 1];
}

Status ValueError(const TableReader* reader, size_t col, const ColumnPolicy& p,
                  const std::string& what) {
  const std::string where = reader ? reader->Where(col) : std::string("(value)");
  return InvalidArgument(where + ": column '" + p.name + "' (" +
                         std::string(ColumnActionName(p.action)) + "): " + what);
}

std::string Quoted(std::string_view s) {
  if (s.size() > 40) return "'" + std::string(s.substr(0, 40)) + "...'";
  return "'" + std::string(s) + "'";
}

}  // namespace

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

// --- ColumnRule ---------------------------------------------------------------

ColumnRule::ColumnRule(const ColumnPolicy* policy, const KeyedHash* mac, const KeyedHash* shift_mac)
    : p_(policy), mac_(mac), shift_mac_(shift_mac) {
  if (p_->action == ColumnAction::kGeneralize) {
    if (!p_->bands.empty()) {
      const size_t n = p_->bands.size() - 1;
      int j = 0;
      while (((n - 1) >> j) != 0) ++j;
      band_levels_ = j + 1;
      levels_ = band_levels_ + 1;
    } else if (p_->width > 0) {
      levels_ = kWidthLevels + 1;
    } else {
      levels_ = p_->prefix + 1;
    }
  } else if (p_->action == ColumnAction::kDate) {
    levels_ = 4 - static_cast<int>(p_->truncate);
  }
}

std::string ColumnRule::DescribeLevel(int level) const {
  const ColumnPolicy& p = *p_;
  if (levels_ > 1 && level == levels_ - 1) return "*";
  switch (p.action) {
    case ColumnAction::kGeneralize:
      if (!p.bands.empty()) {
        return level == 0 ? "bands as declared"
                          : "bands merged in runs of " + std::to_string(1 << level);
      }
      if (p.width > 0) return "width " + FormatNumber(p.width * std::ldexp(1.0, level));
      return "prefix " + std::to_string(p.prefix - level);
    case ColumnAction::kDate:
      if (p.shift_days_max > 0 && level == 0 && p.truncate == DateUnit::kDay) {
        return "shifted up to " + std::to_string(p.shift_days_max) + " days";
      }
      return std::string(
                 DateUnitName(static_cast<DateUnit>(static_cast<int>(p.truncate) + level))) +
             (p.shift_days_max > 0 ? " (shifted)" : "");
    case ColumnAction::kTopK: return "top " + std::to_string(p.top_k);
    case ColumnAction::kMask: return "last " + std::to_string(p.keep_last) + " kept";
    case ColumnAction::kHash: return "HMAC-SHA256, " + std::to_string(p.length) + " hex digits";
    default: return "";
  }
}

Status ColumnRule::Key(const Value& v, std::string_view entity, std::string_view row_id,
                       bool no_shift, std::string* key, const TableReader* reader,
                       size_t col) const {
  key->clear();
  switch (v.kind) {
    case ValueKind::kAbsent: *key = "a"; return Status::Ok();
    case ValueKind::kNull: *key = "n"; return Status::Ok();
    case ValueKind::kString:
      if (v.text.empty()) {
        *key = "e";
        return Status::Ok();
      }
      break;
    default: break;
  }
  const ColumnPolicy& p = *p_;
  switch (p.action) {
    case ColumnAction::kDrop:
    case ColumnAction::kKeep:
      *key += v.kind == ValueKind::kNumber ? 'N' : v.kind == ValueKind::kBool ? 'B' : 's';
      key->append(v.text);
      return Status::Ok();
    case ColumnAction::kHash:
    case ColumnAction::kTopK:
      *key += 's';
      key->append(v.text);
      return Status::Ok();
    case ColumnAction::kMask: {
      *key += 's';
      const size_t n = CodePoints(v.text);
      const size_t keep =
          n > static_cast<size_t>(p.keep_last) ? static_cast<size_t>(p.keep_last) : 0;
      key->append(n - keep, '*');
      key->append(v.text.substr(CodePointOffset(v.text, n - keep)));
      return Status::Ok();
    }
    case ColumnAction::kGeneralize: {
      *key += 's';
      if (p.prefix > 0) {
        const size_t n = CodePoints(v.text);
        key->append(v.text.substr(0, CodePointOffset(v.text, static_cast<size_t>(p.prefix))));
        *key += '\0';
        AppendInt(key, static_cast<int64_t>(n));
        return Status::Ok();
      }
      if (v.kind == ValueKind::kBool)
        return ValueError(reader, col, p, "expected a number, got a boolean");
      double x = 0;
      const char* b = v.text.data();
      const char* e = b + v.text.size();
      if (b != e && *b == '+') ++b;
      auto r = std::from_chars(b, e, x);
      if (r.ec != std::errc() || r.ptr != e || !std::isfinite(x)) {
        return ValueError(reader, col, p, "expected a number, got " + Quoted(v.text));
      }
      if (!p.bands.empty()) {
        if (x < p.bands.front()) {
          *key += '<';
        } else if (x >= p.bands.back()) {
          *key += '>';
        } else {
          const auto it = std::upper_bound(p.bands.begin(), p.bands.end(), x);
          AppendInt(key, static_cast<int64_t>(it - p.bands.begin()) - 1);
        }
      } else {
        const double bucket = std::floor(x / p.width);
        if (std::fabs(bucket) > kMaxBucket) {
          return ValueError(reader, col, p,
                            "value " + Quoted(v.text) + " is out of range for width");
        }
        AppendInt(key, static_cast<int64_t>(bucket));
      }
      return Status::Ok();
    }
    case ColumnAction::kDate: {
      const std::string_view t = v.text;
      int y = 0, m = 0, d = 0;
      if (t.size() < 10 || !Digits(t, 0, 4, &y) || t[4] != '-' || !Digits(t, 5, 2, &m) ||
          t[7] != '-' || !Digits(t, 8, 2, &d) || m < 1 || m > 12 || d < 1 ||
          static_cast<unsigned>(d) > DaysInMonth(y, static_cast<unsigned>(m)) ||
          (t.size() > 10 && t[10] != 'T' && t[10] != ' ')) {
        return ValueError(reader, col, p,
                          "expected a date YYYY-MM-DD (optionally followed by 'T' or ' ' and a "
                          "time), got " +
                              Quoted(t));
      }
      int64_t yy = y;
      unsigned mm = static_cast<unsigned>(m), dd = static_cast<unsigned>(d);
      if (p.shift_days_max > 0 && !no_shift) {
        const crypto::Sha256Digest h = !p.entity.empty() && !entity.empty()
                                           ? shift_mac_->Mac("entity\n", entity)
                                           : shift_mac_->Mac("row\n", row_id);
        uint64_t r = 0;
        for (int i = 0; i < 8; ++i) r = (r << 8) | h[static_cast<size_t>(i)];
        const uint64_t span = 2 * static_cast<uint64_t>(p.shift_days_max) + 1;
        const int64_t shift = static_cast<int64_t>(r % span) - p.shift_days_max;
        CivilFromDays(DaysFromCivil(yy, mm, dd) + shift, &yy, &mm, &dd);
      }
      char buf[32];
      const int n =
          std::snprintf(buf, sizeof buf, "s%04lld-%02u-%02u", static_cast<long long>(yy), mm, dd);
      const size_t keep = p.truncate == DateUnit::kDay     ? 11
                          : p.truncate == DateUnit::kMonth ? 8
                                                           : 5;
      key->append(buf, std::min(static_cast<size_t>(n), keep));
      return Status::Ok();
    }
  }
  return Internal("unknown action");
}

void ColumnRule::Render(std::string_view key, int level, std::string* out, ValueKind* kind) const {
  out->clear();
  const char k = key.empty() ? 'a' : key[0];
  switch (k) {
    case 'a': *kind = ValueKind::kAbsent; return;
    case 'n': *kind = ValueKind::kNull; return;
    case 'e': *kind = ValueKind::kString; return;
    case 'N':
      *kind = ValueKind::kNumber;
      out->append(key.substr(1));
      return;
    case 'B':
      *kind = ValueKind::kBool;
      out->append(key.substr(1));
      return;
    default: *kind = ValueKind::kString;
  }
  const std::string_view payload = key.substr(1);
  const ColumnPolicy& p = *p_;
  if (levels_ > 1 && level >= levels_ - 1) {
    *out = "*";
    return;
  }
  switch (p.action) {
    case ColumnAction::kDrop:
    case ColumnAction::kKeep:
    case ColumnAction::kMask: out->append(payload); return;
    case ColumnAction::kHash: {
      const crypto::Sha256Digest d = mac_->Mac(payload);
      static const char kHex[] = "0123456789abcdef";
      for (int i = 0; i < p.length; ++i) {
        const uint8_t byte = d[static_cast<size_t>(i / 2)];
        *out += kHex[i % 2 == 0 ? byte >> 4 : byte & 0xf];
      }
      return;
    }
    case ColumnAction::kTopK:
      if (top_.count(std::string(key))) {
        out->append(payload);
      } else {
        *out = p.other;
      }
      return;
    case ColumnAction::kGeneralize: {
      if (p.prefix > 0) {
        const size_t nul = payload.rfind('\0');
        const std::string_view prefix = payload.substr(0, nul);
        const size_t len = static_cast<size_t>(ParseInt(payload.substr(nul + 1)));
        const size_t keep = static_cast<size_t>(p.prefix - level);
        const std::string_view kept = prefix.substr(0, CodePointOffset(prefix, keep));
        out->append(kept);
        const size_t shown = CodePoints(kept);
        if (len > shown) out->append(len - shown, '*');
        return;
      }
      if (!p.bands.empty()) {
        if (payload == "<") {
          *out = "<" + FormatNumber(p.bands.front());
          return;
        }
        if (payload == ">") {
          *out = ">=" + FormatNumber(p.bands.back());
          return;
        }
        const int64_t n = static_cast<int64_t>(p.bands.size()) - 1;
        const int64_t i = ParseInt(payload) >> level;
        const int64_t lo = i << level;
        const int64_t hi = std::min((i + 1) << level, n);
        *out = "[" + FormatNumber(p.bands[static_cast<size_t>(lo)]) + "," +
               FormatNumber(p.bands[static_cast<size_t>(hi)]) + ")";
        return;
      }
      const int64_t b = ParseInt(payload) >> level;
      const double w = p.width * std::ldexp(1.0, level);
      *out = "[" + FormatNumber(static_cast<double>(b) * w) + "," +
             FormatNumber(static_cast<double>(b + 1) * w) + ")";
      return;
    }
    case ColumnAction::kDate: {
      const int unit = static_cast<int>(p.truncate) + level;
      const size_t keep = unit == 0 ? 10 : unit == 1 ? 7 : 4;
      out->append(payload.substr(0, std::min(keep, payload.size())));
      return;
    }
  }
}

}  // namespace cce::explore::internal
