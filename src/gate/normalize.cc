// Normalisation of reference cells and output text (rules: fingerprint.cc).
#include "gate/normalize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cce::gate::normalize {
namespace {

// ASCII folding: lower case; quotes and control characters to ' '.
constexpr std::array<char, 128> MakeAsciiFold() {
  std::array<char, 128> t{};
  for (int c = 0; c < 128; ++c) {
    char out = static_cast<char>(c);
    if (c >= 'A' && c <= 'Z') out = static_cast<char>(c + 32);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '`') out = ' ';
    t[static_cast<size_t>(c)] = out;
  }
  return t;
}
constexpr std::array<char, 128> kAsciiFold = MakeAsciiFold();

// Decodes one UTF-8 sequence at text[i]; returns its length, 0 if invalid.
size_t DecodeUtf8(std::string_view text, size_t i, uint32_t* cp) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t c = b(i);
  const size_t left = text.size() - i;
  auto cont = [&](size_t k) { return (b(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF && left >= 2 && cont(i + 1)) {
    *cp = ((c & 0x1Fu) << 6) | (b(i + 1) & 0x3Fu);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF && left >= 3 && cont(i + 1) && cont(i + 2)) {
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
    *cp = ((c & 0x0Fu) << 12) | ((b(i + 1) & 0x3Fu) << 6) | (b(i + 2) & 0x3Fu);
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4 && left >= 4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;
    if (c == 0xF4 && b(i + 1) >= 0x90) return 0;
    *cp = ((c & 0x07u) << 18) | ((b(i + 1) & 0x3Fu) << 12) | ((b(i + 2) & 0x3Fu) << 6) |
          (b(i + 3) & 0x3Fu);
    return 4;
  }
  return 0;
}

bool IsInvisible(uint32_t cp) {
  return cp == 0xAD || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF || cp == 0x034F;
}

bool IsSpaceLike(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0xA0) || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 ||
         cp == 0xAB || cp == 0xBB || (cp >= 0x201A && cp <= 0x201F) || cp == 0x2039 ||
         cp == 0x203A || cp == 0xFFFD;
}

uint16_t TextShape(uint32_t strength) {
  return static_cast<uint16_t>((1u << 12) | std::min<uint32_t>(strength, 4095));
}
uint16_t NumberShape(uint32_t kind, const TokenInfo& info) {
  const uint32_t sig = std::min<uint32_t>(info.significant, 31);
  const auto exp = static_cast<uint32_t>(std::clamp(info.exponent, -64, 63) + 64);
  return static_cast<uint16_t>((kind << 12) | (sig << 7) | exp);
}
constexpr uint16_t kDateShape = 3 << 12;

// Byte classes for Tokenize: word (letters, digits, any non-ASCII byte),
// inner punctuation, or other.
enum : uint8_t { kOther = 0, kWordByte = 1, kDigitByte = 3, kInnerByte = 4 };
constexpr std::array<uint8_t, 256> MakeByteClass() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t k = kOther;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) k = kWordByte;
    if (c >= '0' && c <= '9') k = kDigitByte;
    if (c == '.' || c == '-' || c == '_' || c == '@' || c == '+' || c == '\'') k = kInnerByte;
    t[static_cast<size_t>(c)] = k;
  }
  return t;
}
constexpr std::array<uint8_t, 256> kByteClass = MakeByteClass();

inline bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
inline bool IsWord(char c) {
  return (kByteClass[static_cast<uint8_t>(c)] & kWordByte) != 0;
}

// A number: digits[.digits][e[+-]digits], commas as thousands separators
// already validated by Tokenize. Fills `info` and the canonical form.
bool ParseNumber(std::string_view s, TokenInfo* info, std::string* canonical, bool want_value) {
  if (s.empty() || s.size() > 64 || !IsDigit(s[0])) return false;
  char digits[72];
  size_t n = 0;
  size_t int_digits = 0;
  size_t i = 0;
  for (; i < s.size() && (IsDigit(s[i]) || s[i] == ','); ++i) {
    if (s[i] != ',') digits[n++] = s[i];
  }
  int_digits = n;
  bool has_point = false;
  if (i < s.size() && s[i] == '.') {
    has_point = true;
    ++i;
    for (; i < s.size() && IsDigit(s[i]); ++i) digits[n++] = s[i];
  }
  int exp10 = 0;
  bool has_exp = false;
  if (i < s.size() && s[i] == 'e') {
    has_exp = true;
    ++i;
    bool neg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    const size_t start = i;
    for (; i < s.size() && IsDigit(s[i]) && i - start < 4; ++i) exp10 = exp10 * 10 + (s[i] - '0');
    if (i == start || exp10 > 400) return false;
    if (neg) exp10 = -exp10;
  }
  if (i != s.size()) return false;
  size_t first = 0;
  while (first < n && digits[first] == '0') ++first;
  info->is_number = true;
  info->leading_zero = int_digits > 1 && digits[0] == '0' && !has_point && !has_exp;
  if (first == n) {
    info->significant = 0;
    info->value = 0;
    canonical->append("0");
    return true;
  }
  size_t last = n - 1;
  while (digits[last] == '0') --last;
  info->significant = static_cast<uint32_t>(last - first + 1);
  const int point = static_cast<int>(int_digits);
  const int exponent = point - static_cast<int>(first) + exp10;
  info->last_digit_exp = point - static_cast<int>(last) - 1 + exp10;
  info->exponent = exponent;
  canonical->append(digits + first, last - first + 1);
  canonical->push_back('e');
  char exp_text[8];
  int nexp = 0;
  unsigned magnitude = static_cast<unsigned>(exponent < 0 ? -exponent : exponent);
  do {
    exp_text[nexp++] = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude > 0 && nexp < 6);
  if (exponent < 0) canonical->push_back('-');
  while (nexp > 0) canonical->push_back(exp_text[--nexp]);
  if (!want_value) return true;
  // The value, for column statistics: mantissa digits as 0.d1d2... scaled.
  double mantissa = 0;
  for (size_t k = first; k <= last && k < first + 17; ++k)
    mantissa = mantissa * 10 + (digits[k] - '0');
  const int scale = exponent - static_cast<int>(std::min<size_t>(last - first + 1, 17));
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  if (scale >= 0 && scale <= 22) {
    info->value = mantissa * kPow10[scale];
  } else if (scale < 0 && scale >= -22) {
    info->value = mantissa / kPow10[-scale];
  } else {
    info->value = mantissa * std::pow(10.0, scale);
  }
  return true;
}

int ParseField(std::string_view f) {
  if (f.empty() || f.size() > 4) return -1;
  int v = 0;
  for (char c : f) {
    if (!IsDigit(c)) return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

void AppendDate(int y, int m, int d, Forms* forms) {
  char buf[16];
  const int len = std::snprintf(buf, sizeof buf, "d%04d%02d%02d", y, m, d);
  forms->spans.push_back(
      {static_cast<uint32_t>(forms->buf.size()), static_cast<uint32_t>(len), 8, kDateShape});
  forms->buf.append(buf, static_cast<size_t>(len));
}

bool ValidDate(int y, int m, int d) {
  return y >= 1000 && y <= 2999 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

// Dates (documented rule): yyyy-mm-dd / yyyy/mm/dd / yyyy.mm.dd; dd.mm.yyyy
// and dd-mm-yyyy are day first; nn/nn/yyyy is day first when the first
// field is over 12, month first when the second is, and both readings when
// either could be (a match on either counts).
bool AddDateForms(std::string_view s, Forms* forms) {
  if (s.size() > 10 && s[10] == 't' && s.size() <= 40) s = s.substr(0, 10);  // ISO date-time
  if (s.size() < 8 || s.size() > 10) return false;
  char sep = 0;
  for (char c : s) {
    if (c == '-' || c == '/' || c == '.') {
      if (sep != 0 && c != sep) return false;
      sep = c;
    } else if (!IsDigit(c)) {
      return false;
    }
  }
  if (sep == 0) return false;
  const size_t p1 = s.find(sep);
  const size_t p2 = s.find(sep, p1 + 1);
  if (p2 == std::string_view::npos || s.find(sep, p2 + 1) != std::string_view::npos) return false;
  const std::string_view a = s.substr(0, p1), b = s.substr(p1 + 1, p2 - p1 - 1),
                         c = s.substr(p2 + 1);
  const int x = ParseField(a), y = ParseField(b), z = ParseField(c);
  if (x < 0 || y < 0 || z < 0 || b.empty() || b.size() > 2) return false;
  if (a.size() == 4 && c.size() <= 2) {
    if (!ValidDate(x, y, z)) return false;
    AppendDate(x, y, z, forms);
    return true;
  }
  if (c.size() != 4 || a.size() > 2) return false;
  if (sep != '/') {
    if (!ValidDate(z, y, x)) return false;
    AppendDate(z, y, x, forms);
    return true;
  }
  bool any = false;
  if (ValidDate(z, y, x)) {
    AppendDate(z, y, x, forms);
    any = true;
  }
  if (x != y && ValidDate(z, x, y)) {
    AppendDate(z, x, y, forms);
    any = true;
  }
  return any;
}

void AppendForm(char kind, std::string_view body, uint32_t strength, Forms* forms) {
  forms->spans.push_back({static_cast<uint32_t>(forms->buf.size()),
                          static_cast<uint32_t>(body.size() + 1), strength, TextShape(strength)});
  forms->buf.push_back(kind);
  forms->buf.append(body);
}

}  // namespace

void Fold(std::string_view text, std::string* out) {
  // Folding never lengthens text (every rule maps a sequence to one no
  // longer), so write into room made once.
  const size_t base = out->size();
  out->resize(base + text.size());
  char* w = out->data() + base;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c < 0x80) {
      *w++ = kAsciiFold[c];
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t len = DecodeUtf8(text, i, &cp);
    if (len == 0) {
      *w++ = ' ';
      ++i;
      continue;
    }
    if (IsInvisible(cp)) {
      // dropped: "jo\u200bhn" is "john"
    } else if (cp >= 0xFF01 && cp <= 0xFF5E) {
      *w++ = kAsciiFold[cp - 0xFEE0];
    } else if (IsSpaceLike(cp)) {
      *w++ = ' ';
    } else if (cp == 0x2018 || cp == 0x2019 || cp == 0x02BC) {
      *w++ = '\'';
    } else if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) {
      const uint32_t lower = cp + 0x20;  // two bytes, as the input
      *w++ = static_cast<char>(0xC0 | (lower >> 6));
      *w++ = static_cast<char>(0x80 | (lower & 0x3F));
    } else {
      std::memcpy(w, text.data() + i, len);
      w += len;
    }
    i += len;
  }
  out->resize(static_cast<size_t>(w - out->data()));
}

void Tokenize(std::string_view s, std::vector<std::string_view>* tokens) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (!IsWord(s[i])) {
      ++i;
      continue;
    }
    const size_t start = i;
    bool digits_commas = true;  // token so far is digits and thousands commas
    size_t group = 0;           // digits since the last comma (or start)
    bool had_comma = false;
    // Fast path: letters and digits only (most tokens).
    while (i < n && kByteClass[static_cast<uint8_t>(s[i])] == kWordByte) {
      digits_commas = false;
      ++i;
    }
    while (i < n && kByteClass[static_cast<uint8_t>(s[i])] == kDigitByte) {
      ++group;
      ++i;
    }
    while (i < n) {
      const char c = s[i];
      const uint8_t k = kByteClass[static_cast<uint8_t>(c)];
      if (k == kDigitByte) {
        ++group;
        ++i;
      } else if (k == kWordByte) {
        digits_commas = false;
        ++i;
      } else if (k == kInnerByte) {
        digits_commas = false;
        ++i;
      } else if (c == '/' && i > start && IsDigit(s[i - 1]) && i + 1 < n && IsDigit(s[i + 1])) {
        digits_commas = false;
        ++i;
      } else if (c == ',' && digits_commas && group >= 1 && (had_comma ? group == 3 : group <= 3) &&
                 i + 3 < n && IsDigit(s[i + 1]) && IsDigit(s[i + 2]) && IsDigit(s[i + 3]) &&
                 (i + 4 >= n || !IsDigit(s[i + 4]))) {
        had_comma = true;
        group = 0;
        ++i;
      } else {
        break;
      }
    }
    size_t end = i;
    while (end > start && !IsWord(s[end - 1])) --end;
    tokens->push_back(s.substr(start, end - start));
  }
}

uint32_t TextStrength(std::string_view folded) {
  uint32_t n = 0;
  for (char c : folded) {
    const auto b = static_cast<uint8_t>(c);
    if ((b & 0xC0) != 0x80 && c != ' ') ++n;
  }
  return n;
}

TokenInfo AddTokenForms(std::string_view token, bool numeric_of_leading_zero, Forms* forms,
                        bool want_value) {
  TokenInfo info;
  if (token.empty()) return info;
  if (IsDigit(token[0]) && AddDateForms(token, forms)) {
    info.is_date = true;
    return info;
  }
  if (IsDigit(token[0])) {
    const size_t mark = forms->buf.size();
    forms->buf.push_back('n');
    if (ParseNumber(token, &info, &forms->buf, want_value)) {
      if (info.leading_zero && !numeric_of_leading_zero) {
        forms->buf.resize(mark);
      } else {
        forms->spans.push_back({static_cast<uint32_t>(mark),
                                static_cast<uint32_t>(forms->buf.size() - mark), info.significant,
                                NumberShape(2, info)});
      }
      if (info.leading_zero) AppendForm('t', token, static_cast<uint32_t>(token.size()), forms);
      return info;
    }
    forms->buf.resize(mark);
    info = TokenInfo{};
  }
  AppendForm('t', token, TextStrength(token), forms);
  // Digits grouped by '-' or '.' (phone numbers, account numbers): also as
  // bare digits, so "555-123-4567" matches "555.123.4567".
  size_t digits = 0;
  bool grouped = true;
  for (char c : token) {
    if (IsDigit(c)) {
      ++digits;
    } else if (c != '-' && c != '.') {
      grouped = false;
      break;
    }
  }
  if (grouped && digits >= 7 && digits != token.size() && digits <= 32) {
    char buf[40];
    size_t k = 0;
    buf[k++] = 't';
    for (char c : token) {
      if (IsDigit(c)) buf[k++] = c;
    }
    forms->spans.push_back({static_cast<uint32_t>(forms->buf.size()), static_cast<uint32_t>(k),
                            static_cast<uint32_t>(digits),
                            TextShape(static_cast<uint32_t>(digits))});
    forms->buf.append(buf, k);
  }
  return info;
}

bool PlainNumberShape(std::string_view s, uint32_t* strength, uint16_t* shape) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n && s[i] == ' ') ++i;
  if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
  if (i >= n || !IsDigit(s[i])) return false;
  if (s[i] == '0' && i + 1 < n && IsDigit(s[i + 1])) return false;  // leading zeros: a code too
  int point = -1, first = -1, last = -1, count = 0;
  for (; i < n && (IsDigit(s[i]) || (s[i] == '.' && point < 0)); ++i) {
    if (s[i] == '.') {
      point = count;
      continue;
    }
    if (s[i] != '0') {
      if (first < 0) first = count;
      last = count;
    }
    ++count;
  }
  if (point < 0) point = count;
  int exp10 = 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    const size_t start = i;
    for (; i < n && IsDigit(s[i]) && i - start < 4; ++i) exp10 = exp10 * 10 + (s[i] - '0');
    if (i == start || exp10 > 400) return false;
    if (neg) exp10 = -exp10;
  }
  while (i < n && s[i] == ' ') ++i;
  if (i != n || count > 64) return false;
  TokenInfo info;
  if (first >= 0) {
    info.significant = static_cast<uint32_t>(last - first + 1);
    info.exponent = point - first + exp10;
  }
  *strength = info.significant;
  *shape = NumberShape(2, info);
  return true;
}

void AddJoinedForm(const std::string_view* tokens, size_t count, Forms* forms) {
  const size_t mark = forms->buf.size();
  forms->buf.push_back('t');
  uint32_t strength = 0;
  for (size_t k = 0; k < count; ++k) {
    if (k > 0) forms->buf.push_back(' ');
    forms->buf.append(tokens[k]);
    strength += TextStrength(tokens[k]);
  }
  forms->spans.push_back({static_cast<uint32_t>(mark),
                          static_cast<uint32_t>(forms->buf.size() - mark), strength,
                          TextShape(strength)});
}

bool AddMemoForm(double value, Forms* forms) {
  if (!std::isfinite(value) || value == 0) return false;
  const auto f = static_cast<float>(value);
  if (!std::isfinite(f) || f == 0) return false;
  char buf[48];
  int len = std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(std::fabs(f)));
  if (len <= 0 || static_cast<size_t>(len) >= sizeof buf) return false;
  TokenInfo info;
  const size_t mark = forms->buf.size();
  forms->buf.push_back('m');
  if (!ParseNumber(std::string_view(buf, static_cast<size_t>(len)), &info, &forms->buf, false)) {
    forms->buf.resize(mark);
    return false;
  }
  forms->spans.push_back({static_cast<uint32_t>(mark),
                          static_cast<uint32_t>(forms->buf.size() - mark), info.significant,
                          NumberShape(4, info)});
  return true;
}

}  // namespace cce::gate::normalize
