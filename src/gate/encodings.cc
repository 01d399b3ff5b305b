// Encoded runs inside text: base64 (standard and URL-safe, padded or not,
// wrapped or split into chunks), base32 and hex (contiguous or byte pairs),
// decoded into children the scanner rescans. One linear pass per family.
//
// Rules (docs/gate.md):
// - A *segment* is a maximal run of base64-alphabet characters
//   [A-Za-z0-9+/_-], optionally ended by '=' padding. Segments separated by
//   a *soft separator* (at most 16 characters of whitespace, quotes, commas
//   and backslash escapes such as a literal "\n") form a *group*: this is how
//   line-wrapped base64 and JSON arrays of chunks ["QUJD","REVG",...] are
//   rejoined. Anything else (':', ';', '.', '(', a padded segment, '=' inside
//   a token) ends the group.
// - Prose must not be decoded: a segment made of letters only, in one case or
//   capitalised, of at most 20 characters is *wordlike*. Wordlike segments are
//   trimmed from both ends of a group, and three in a row split it.
// - A group (its segments' characters joined) of at least
//   policy.min_encoded_chars characters is decoded as
//     hex     when it is all hex digits of one case, has a letter a-f (or, all
//             digits, decodes to printable text: long numbers are not hex);
//     base32  when it is all A-Z2-7 (or a-z2-7) with >= 5% digits;
//     base64  when >= 20% upper case, >= 10% lower case, >= 2% digits or
//             + / - _, and >= 30% of adjacent letter pairs switch case
//             (base64 of any data scores ~0.5, English ~0.01, CamelCase ~0.35
//             but without digits).
// - Hex byte pairs separated by spaces, colons or newlines ("de ad be ef",
//   "de:ad:be:ef"), or prefixed ("\xde\xad", "0xde, 0xad") are a second
//   pass: at least min_encoded_chars hex digits in one run.
// Every decoded byte is charged to ctx.expand_budget; a run that would
// exceed it (or policy.max_child_bytes) stops the search with an
// "encoding.bomb" finding and leaves the budget at 0.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "gate/content.h"

namespace cce::gate {

namespace {

constexpr size_t kLong = 16;  // a segment this long is a run's line or chunk
constexpr size_t kShort = 8;  // shorter: maybe another field next to the run

enum : uint8_t { kOther = 0, kB64 = 1, kPad = 2, kSoft = 3, kBackslash = 4 };

constexpr std::array<uint8_t, 256> MakeClassTable() {
  std::array<uint8_t, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = kB64;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = kB64;
  for (int c = '0'; c <= '9'; ++c) t[c] = kB64;
  t['+'] = t['/'] = t['-'] = t['_'] = kB64;
  t['='] = kPad;
  t[' '] = t['\t'] = t['\r'] = t['\n'] = t['"'] = t['\''] = t[','] = kSoft;
  t['\\'] = kBackslash;
  return t;
}
constexpr std::array<uint8_t, 256> kClass = MakeClassTable();

constexpr std::array<bool, 256> MakeStopTable() {
  std::array<bool, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  t['+'] = t['/'] = t['_'] = t['='] = t['\\'] = true;
  return t;
}
constexpr std::array<bool, 256> kStop = MakeStopTable();

// Whether 8 bytes may hold a kStop character: any byte >= 0x40 (letters,
// '_', '\\', and non-ASCII), or '+', '/' or '='. Skips numeric text fast.
inline bool MayStop(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  auto has_byte = [&](uint64_t b) {
    const uint64_t x = w ^ (kOnes * b);
    return ((x - kOnes) & ~x & kHigh) != 0;
  };
  return (w & 0xC0C0C0C0C0C0C0C0ULL) != 0 || has_byte('+') || has_byte('/') || has_byte('=');
}

constexpr std::array<bool, 256> MakeAlnumTable() {
  std::array<bool, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  return t;
}
constexpr std::array<bool, 256> kAlnum = MakeAlnumTable();

constexpr std::array<int8_t, 256> MakeB64Table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 26; ++i) t['A' + i] = static_cast<int8_t>(i);
  for (int i = 0; i < 26; ++i) t['a' + i] = static_cast<int8_t>(26 + i);
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<int8_t>(52 + i);
  t['+'] = t['-'] = 62;
  t['/'] = t['_'] = 63;
  return t;
}
constexpr std::array<int8_t, 256> kB64Value = MakeB64Table();

constexpr std::array<int8_t, 256> MakeHexTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<int8_t>(i);
  for (int i = 0; i < 6; ++i) t['a' + i] = t['A' + i] = static_cast<int8_t>(10 + i);
  return t;
}
constexpr std::array<int8_t, 256> kHexValue = MakeHexTable();

inline uint8_t U(char c) { return static_cast<uint8_t>(c); }
inline bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
inline bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Character statistics of a group (or one segment).
struct Stats {
  uint64_t chars = 0, upper = 0, lower = 0, digit = 0, special = 0;
  uint64_t letter_pairs = 0, case_switches = 0;
  uint64_t hex_lower = 0, hex_upper = 0;  // letters a-f / A-F
  uint64_t b32_upper = 0, b32_lower = 0;  // letters in a base32 alphabet case
  bool non_hex = false, non_b32 = false;  // a character outside the alphabet
  void Add(const Stats& o) {
    chars += o.chars; upper += o.upper; lower += o.lower; digit += o.digit; special += o.special;
    letter_pairs += o.letter_pairs; case_switches += o.case_switches;
    hex_lower += o.hex_lower; hex_upper += o.hex_upper;
    b32_upper += o.b32_upper; b32_lower += o.b32_lower;
    non_hex = non_hex || o.non_hex;
    non_b32 = non_b32 || o.non_b32;
  }
};

Stats SegmentStats(std::string_view s) {
  Stats st;
  st.chars = s.size();
  char prev = 0;
  for (char c : s) {
    if (IsUpper(c)) {
      ++st.upper;
      if (c <= 'F') ++st.hex_upper; else st.non_hex = true;
      ++st.b32_upper;
    } else if (IsLower(c)) {
      ++st.lower;
      if (c <= 'f') ++st.hex_lower; else st.non_hex = true;
      ++st.b32_lower;
    } else if (IsDigit(c)) {
      ++st.digit;
      if (c < '2' || c > '7') st.non_b32 = true;
    } else {
      ++st.special;
      st.non_hex = true;
      st.non_b32 = true;
    }
    if ((IsUpper(prev) || IsLower(prev)) && (IsUpper(c) || IsLower(c))) {
      ++st.letter_pairs;
      if (IsUpper(prev) != IsUpper(c)) ++st.case_switches;
    }
    prev = c;
  }
  return st;
}

// Letters only, one case or capitalised, short: an ordinary word.
bool Wordlike(std::string_view s, const Stats& st) {
  if (s.size() > 20 || st.digit + st.special > 0) return false;
  if (st.upper == 0 || st.lower == 0) return true;
  return st.upper == 1 && IsUpper(s[0]);
}

enum class Kind { kNone, kHex, kBase32, kBase64 };

bool PrintableMostly(std::string_view bytes) {
  if (bytes.empty()) return false;
  size_t printable = 0;
  for (char c : bytes) {
    const uint8_t b = U(c);
    if ((b >= 0x20 && b < 0x7f) || b == '\n' || b == '\r' || b == '\t') ++printable;
  }
  return printable * 10 >= bytes.size() * 9;
}

std::string DecodeHex(std::string_view digits) {
  std::string out;
  out.reserve(digits.size() / 2);
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<char>((kHexValue[U(digits[i])] << 4) | kHexValue[U(digits[i + 1])]));
  }
  return out;
}

std::string DecodeBase64(std::string_view chars) {
  std::string out;
  out.reserve(chars.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : chars) {
    acc = (acc << 6) | static_cast<uint32_t>(kB64Value[U(c)]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

int Base32Value(char c) {
  if (IsUpper(c)) return c - 'A';
  if (IsLower(c)) return c - 'a';
  if (c >= '2' && c <= '7') return 26 + (c - '2');
  return 0;
}

std::string DecodeBase32(std::string_view chars) {
  std::string out;
  out.reserve(chars.size() * 5 / 8 + 5);
  uint64_t acc = 0;
  int bits = 0;
  for (char c : chars) {
    acc = (acc << 5) | static_cast<uint64_t>(Base32Value(c));
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

class RunFinder {
 public:
  RunFinder(std::string_view text, uint64_t base_offset, const std::string& file,
            const std::string& location, ParseContext& ctx, std::vector<Child>* out,
            std::vector<Finding>* findings)
      : text_(text), base_(base_offset), file_(file), location_(location), ctx_(ctx), out_(out),
        findings_(findings), min_chars_(std::max<size_t>(ctx.policy.min_encoded_chars, 8)) {}

  void Run() {
    SegmentPass();
    if (!stopped_) HexPairPass();
  }

 private:
  // --- pass 1: base64 / base32 / contiguous hex groups ---
  void SegmentPass() {
    const size_t n = text_.size();
    size_t i = 0;
    while (i < n && !stopped_) {
      if (!in_group_) {
        // Fast path outside groups: skip to a letter, + / _ = or \\, then
        // back to the start of its token. Numbers start no group (long ones
        // are the hex pass's).
        const size_t from = i;
        while (i + 8 <= n && !MayStop(text_.data() + i)) i += 8;
        while (i < n && !kStop[U(text_[i])]) ++i;
        if (i >= n) break;
        while (i > from && kClass[U(text_[i - 1])] == kB64) --i;
      }
      const uint8_t cls = kClass[U(text_[i])];
      if (cls != kB64) {
        // Separators: soft ones (and backslash escapes) keep the group open.
        size_t j = i;
        bool soft = true;
        while (j < n) {
          const uint8_t c = kClass[U(text_[j])];
          if (c == kSoft) {
            ++j;
          } else if (c == kBackslash && j + 1 < n &&
                     (text_[j + 1] == 'n' || text_[j + 1] == 'r' || text_[j + 1] == 't')) {
            j += 2;
          } else {
            break;
          }
          if (j - i > 16) soft = false;
        }
        if (j == i) {  // a hard character ('=' inside a token, ':', ';', ...)
          soft = false;
          ++j;
        }
        if (!soft || j >= n || kClass[U(text_[j])] != kB64) EndGroup();
        i = j;
        continue;
      }
      size_t e = i;
      bool digits_only = true;
      while (e < n && kClass[U(text_[e])] == kB64) {
        digits_only = digits_only && (IsDigit(text_[e]) || (e == i && (text_[e] == '-' || text_[e] == '+')));
        ++e;
      }
      // Numbers start no group: this keeps numeric CSV fast and out of
      // base64 groups.
      if (!in_group_ && digits_only) {
        i = e;
        continue;
      }
      size_t pad_end = e;
      while (pad_end < n && text_[pad_end] == '=' && pad_end - e < 6) ++pad_end;
      const std::string_view seg = text_.substr(i, e - i);
      // "data:...;base64," prefixes and similar labels never join a payload.
      if (seg.size() == 6 && e < n && text_[e] == ',' &&
          (seg == "base64" || seg == "BASE64" || seg == "Base64")) {
        EndGroup();
        i = e + 1;
        continue;
      }
      AddSegment(i, e, seg, pad_end > e);
      if (pad_end > e) {
        EndGroup();
        i = pad_end;
        continue;
      }
      i = e;
    }
    EndGroup();
  }

  void AddSegment(size_t begin, size_t end, std::string_view seg, bool padded) {
    const Stats st = SegmentStats(seg);
    const bool word = !padded && Wordlike(seg, st);
    if (!in_group_) {
      if (word) return;  // groups start at a non-word segment
      StartGroup(begin, end, st);
      return;
    }
    if (word) {
      CommitHeld();
      pending_.Add(st);
      ++pending_words_;
      return;
    }
    const bool is_long = seg.size() >= kLong;
    // A short token before a long one starts no group ("1,<base64>" in CSV).
    if (is_long && group_segments_ == 1 && pending_words_ == 0 && !held_ &&
        group_end_ - group_begin_ < kShort) {
      StartGroup(begin, end, st);
      return;
    }
    if (held_) {
      if (is_long) {  // long, short, long: the short one is another field
        held_ = false;
        EndGroup();
        StartGroup(begin, end, st);
        return;
      }
      CommitHeld();
    }
    if (pending_words_ >= 3) {
      EndGroup();
      StartGroup(begin, end, st);
      return;
    }
    if (!is_long && seg.size() < kShort && pending_words_ == 0 && last_len_ >= kLong) {
      held_ = true;  // the last line of a wrapped run, or the next field
      held_stats_ = st;
      held_end_ = end;
      return;
    }
    group_.Add(pending_);
    group_.Add(st);
    group_segments_ += pending_words_ + 1;
    pending_ = Stats{};
    pending_words_ = 0;
    group_end_ = end;
    last_len_ = seg.size();
  }

  void StartGroup(size_t begin, size_t end, const Stats& st) {
    in_group_ = true;
    group_begin_ = begin;
    group_end_ = end;
    group_ = st;
    group_segments_ = 1;
    pending_ = Stats{};
    pending_words_ = 0;
    held_ = false;
    last_len_ = end - begin;
  }

  void CommitHeld() {
    if (!held_) return;
    held_ = false;
    group_.Add(held_stats_);
    ++group_segments_;
    group_end_ = held_end_;
    last_len_ = 0;
  }

  void EndGroup() {
    if (!in_group_) return;
    CommitHeld();
    in_group_ = false;
    if (group_.chars < min_chars_) return;
    const Kind kind = Classify(group_);
    if (kind == Kind::kNone) return;
    // Short hex tokens ("de ad be ef") are the pair pass's.
    if (kind == Kind::kHex && group_.chars < 8 * static_cast<uint64_t>(group_segments_)) return;
    if (kind == Kind::kHex && group_.hex_lower + group_.hex_upper == 0) {
      // Digits only: a long number unless it is one token whose start
      // decodes to text (hex of ASCII digits is all digits).
      if (group_segments_ != 1) return;
      const size_t probe = std::min<size_t>(group_end_ - group_begin_, 256) & ~size_t{1};
      if (!PrintableMostly(DecodeHex(text_.substr(group_begin_, probe)))) return;
    }
    // Rebuild the group's characters, skipping separators and escapes.
    std::string chars;
    chars.reserve(group_.chars);
    for (size_t k = group_begin_; k < group_end_; ++k) {
      const char c = text_[k];
      if (kClass[U(c)] == kB64) {
        chars.push_back(c);
      } else if (c == '\\') {
        ++k;  // the escape's letter
      }
    }
    std::string decoded;
    const char* family = "";
    switch (kind) {
      case Kind::kHex:
        if (chars.size() % 2) chars.pop_back();
        family = "hex";
        if (!Charge(chars.size() / 2, family)) return;
        decoded = DecodeHex(chars);
        break;
      case Kind::kBase32:
        family = "base32";
        if (!Charge(chars.size() * 5 / 8, family)) return;
        decoded = DecodeBase32(chars);
        break;
      case Kind::kBase64:
        if (chars.size() % 4 == 1) chars.pop_back();
        family = "base64";
        if (!Charge(chars.size() * 3 / 4, family)) return;
        decoded = DecodeBase64(chars);
        break;
      case Kind::kNone:
        return;
    }
    Emit(family, group_begin_, std::move(decoded));
  }

  static Kind Classify(const Stats& s) {
    const double n = static_cast<double>(s.chars);
    if (!s.non_hex && (s.hex_lower == 0 || s.hex_upper == 0)) return Kind::kHex;
    if (!s.non_b32 && (s.b32_lower == 0 || s.b32_upper == 0) &&
        static_cast<double>(s.digit) >= 0.05 * n) {
      return Kind::kBase32;
    }
    if (static_cast<double>(s.upper) >= 0.2 * n && static_cast<double>(s.lower) >= 0.1 * n &&
        static_cast<double>(s.digit + s.special) >= 0.02 * n && s.letter_pairs > 0 &&
        static_cast<double>(s.case_switches) >= 0.3 * static_cast<double>(s.letter_pairs)) {
      return Kind::kBase64;
    }
    return Kind::kNone;
  }

  // --- pass 2: hex byte pairs with separators or prefixes, and long
  // numbers that are hex of ASCII digits ---
  void HexPairPass() {
    const size_t n = text_.size();
    std::string digits;
    size_t run_begin = 0, last_end = 0;
    bool any_letter = false, prefixed = false;
    char sep = 0;  // the run's separator kind: ' ', ':' or ','
    auto flush = [&] {
      if (digits.size() >= min_chars_ && (any_letter || prefixed || PrintableMostly(DecodeHex(digits)))) {
        if (Charge(digits.size() / 2, "hex")) Emit("hex", run_begin, DecodeHex(digits));
      }
      digits.clear();
      any_letter = prefixed = false;
      sep = 0;
    };
    size_t i = 0;
    while (i < n && !stopped_) {
      if (!kAlnum[U(text_[i])]) {
        ++i;
        continue;
      }
      size_t e = i;
      bool all_digits = true;
      while (e < n && kAlnum[U(text_[e])]) {
        all_digits = all_digits && IsDigit(text_[e]);
        ++e;
      }
      const size_t len = e - i;
      size_t start = i, hex_at = i;
      bool pre = false, token = false;
      if (len == 2) {
        token = true;
      } else if (len == 4 && text_[i] == '0' && (text_[i + 1] == 'x' || text_[i + 1] == 'X')) {
        token = pre = true;
        hex_at = i + 2;
      } else if (len == 3 && (text_[i] == 'x' || text_[i] == 'X') && i > 0 && text_[i - 1] == '\\') {
        token = pre = true;
        start = i - 1;
        hex_at = i + 1;
      }
      token = token && kHexValue[U(text_[hex_at])] >= 0 && kHexValue[U(text_[hex_at + 1])] >= 0;
      if (!token) {
        if (!digits.empty()) flush();
        if (all_digits && len >= min_chars_) {
          // A long number: hex only if its start decodes to text.
          const size_t even = len & ~size_t{1};
          const std::string_view number = text_.substr(i, even);
          if (PrintableMostly(DecodeHex(number.substr(0, std::min<size_t>(even, 256)))) &&
              Charge(even / 2, "hex")) {
            Emit("hex", i, DecodeHex(number));
          }
        }
        i = e;
        continue;
      }
      if (!digits.empty()) {
        // The separator since the last token must be the run's own kind.
        bool ok = pre == prefixed && start - last_end <= 4;
        char kind = 0;
        for (size_t k = last_end; ok && k < start; ++k) {
          const char c = text_[k];
          if (c == ':' || (c == ',' && prefixed)) {
            kind = kind == 0 || kind == c ? c : '?';
          } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            ok = false;
          }
        }
        if (kind == 0) kind = ' ';
        if (start == last_end && !(pre && text_[start] == '\\')) ok = false;
        if (kind == '?' || (sep != 0 && kind != sep)) ok = false;
        if (!ok) {
          flush();
        } else {
          sep = kind;
        }
      }
      if (digits.empty()) {
        run_begin = start;
        prefixed = pre;
      }
      digits.push_back(text_[hex_at]);
      digits.push_back(text_[hex_at + 1]);
      any_letter = any_letter || !IsDigit(text_[hex_at]) || !IsDigit(text_[hex_at + 1]);
      last_end = e;
      i = e;
    }
    if (!digits.empty()) flush();
  }

  // --- output ---
  bool Charge(uint64_t bytes, const char* family) {
    if (stopped_) return false;
    if (bytes > ctx_.expand_budget || bytes > ctx_.policy.max_child_bytes) {
      stopped_ = true;
      const bool child_cap = bytes <= ctx_.expand_budget;
      ctx_.expand_budget = 0;
      if (findings_ != nullptr) {
        Finding f;
        f.detector = "encoding.bomb";
        f.file = file_;
        f.location = Where(0);
        f.score = 1;
        f.hard = true;
        f.message = std::string("decoding ") + family + " runs would produce more than the " +
                    (child_cap ? "per-item limit (max_child_bytes)" : "scan's decoding budget (max_expanded_bytes)") +
                    "; the rest of this text was not decoded";
        findings_->push_back(std::move(f));
      }
      return false;
    }
    ctx_.expand_budget -= bytes;
    return true;
  }

  std::string Where(size_t pos) const {
    std::string where = "byte " + std::to_string(base_ + pos);
    if (!location_.empty()) where = location_ + " (" + where + ")";
    return where;
  }

  void Emit(const char* family, size_t pos, std::string bytes) {
    if (bytes.empty()) return;
    Child child;
    child.name = std::string(family) + "@" + std::to_string(base_ + pos);
    child.location = Where(pos);
    child.bytes = std::move(bytes);
    out_->push_back(std::move(child));
  }

  std::string_view text_;
  uint64_t base_;
  const std::string& file_;
  const std::string& location_;
  ParseContext& ctx_;
  std::vector<Child>* out_;
  std::vector<Finding>* findings_;
  size_t min_chars_;
  bool stopped_ = false;

  bool in_group_ = false;
  size_t group_begin_ = 0, group_end_ = 0;
  Stats group_, pending_;
  int pending_words_ = 0;
  int group_segments_ = 0;
  size_t last_len_ = 0;  // of the last segment committed to the group
  bool held_ = false;    // a short segment after a long one, not yet committed
  Stats held_stats_;
  size_t held_end_ = 0;
};

}  // namespace

void FindEncodedRunsIn(std::string_view text, uint64_t base_offset, const std::string& file,
                       const std::string& location, ParseContext& ctx, std::vector<Child>* out,
                       std::vector<Finding>* findings) {
  RunFinder(text, base_offset, file, location, ctx, out, findings).Run();
}

void FindEncodedRuns(const TextSpan& span, ParseContext& ctx, std::vector<Child>* out,
                     std::vector<Finding>* findings) {
  FindEncodedRunsIn(span.text, span.offset, span.file, span.location, ctx, out, findings);
}

double EntropyBitsPerByte(std::string_view bytes) {
  if (bytes.empty()) return 0;
  std::array<uint64_t, 256> counts{};
  for (char c : bytes) ++counts[U(c)];
  const double n = static_cast<double>(bytes.size());
  double h = 0;
  for (uint64_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c) / n;
    h -= p * std::log2(p);
  }
  return h;
}

}  // namespace cce::gate
