// Data and model files for the Output Gate: SQLite databases, NPY arrays
// and pickles. Nothing here executes the file: a database is opened as a
// read-only in-memory copy behind an authorizer and a step budget, and a
// pickle is walked opcode by opcode over a simulated stack of plain values
// (no import, no call). Every loop is bounded by the bytes present and by
// the limits below; whatever cannot be checked completely is a finding.
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "gate/content.h"

namespace cce::gate {
namespace {

using u8 = unsigned char;

// Array values one item may produce (all its arrays together): 128 MiB of
// doubles. More are cut, with a hard finding (the rest went unchecked).
constexpr uint64_t kMaxArrayValues = uint64_t{16} << 20;
// Binary blobs (pickle bytes, SQLite BLOB cells) at least this long become
// children of their own, so the scanner types them (an embedded gzip, PNG);
// shorter ones are gathered into one child so thousands of them do not
// become thousands of items.
constexpr size_t kOwnChildBytes = 4096;
// Printable runs this long in SQLite free space are handed on as text.
constexpr size_t kMinRunChars = 4;
// Strings of one pickle emitted as a TextSpan each; the rest are batched.
constexpr size_t kMaxSingleSpans = 4096;
constexpr size_t kBatchSpanBytes = size_t{64} * 1024;

// NPY.
constexpr uint64_t kMaxNpyHeader = 1 << 20;  // numpy itself refuses > 10000 by default
constexpr size_t kMaxNpyDims = 64;           // numpy's NPY_MAXDIMS
constexpr int kMaxLiteralDepth = 16;

// Pickle.
constexpr size_t kMaxPickleValues = size_t{4} << 20;
constexpr size_t kMaxPickleStack = size_t{1} << 20;
constexpr size_t kMaxPickleMarks = size_t{1} << 16;
constexpr size_t kMaxPickleMemo = size_t{4} << 20;
constexpr size_t kMaxPickleElements = size_t{16} << 20;
constexpr size_t kMaxRecordElements = 64;  // longer sequences are columns, not records
constexpr size_t kMaxGlobalFindings = 16;

// SQLite.
constexpr uint64_t kMaxSqliteRows = uint64_t{1} << 20;   // all tables together
constexpr uint64_t kMaxSqliteCells = uint64_t{4} << 20;  // all tables together

uint16_t Be16(const u8* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t Be32(const u8* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
uint64_t LeN(const u8* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
  return v;
}
const u8* U(std::string_view s) {
  return reinterpret_cast<const u8*>(s.data());
}

Status Bad(std::string_view format, uint64_t byte, std::string_view what) {
  return InvalidArgument(std::string(format) + ": byte " + std::to_string(byte) + ": " +
                         std::string(what));
}

// A short excerpt of untrusted bytes for a message: printable ASCII as is,
// everything else as \xNN.
std::string Excerpt(std::string_view s, size_t max = 64) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const u8 c = static_cast<u8>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string FormatDouble(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return {buf, r.ptr};
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | cp >> 6);
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | cp >> 12);
    *out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | cp >> 18);
    *out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    *out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Valid UTF-8 without control characters other than tab, CR and LF: text a
// person could read, handed on as a TextSpan rather than a binary child.
bool IsText(std::string_view s) {
  const u8* p = U(s);
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const u8 c = p[i];
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
      if (c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      min = 0x10000;
    } else {
      return false;
    }
    if (i + len > n) return false;
    uint32_t cp = c & (0xFF >> (len + 1));
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// What a parser hands on, within the item's budgets: children and decoded
// text spend ctx.expand_budget (a bomb finding instead of going over),
// arrays spend the item's array-value budget (a finding when cut).
class Emitter {
 public:
  Emitter(const Item& item, ParseContext& ctx, Parsed* out) : item_(item), ctx_(ctx), out_(out) {}

  const Item& item() const { return item_; }
  ParseContext& ctx() { return ctx_; }
  Parsed* out() { return out_; }

  void Find(std::string detector, std::string location, int64_t offset, double score, bool hard,
            std::string message) {
    Finding f;
    f.detector = std::move(detector);
    f.file = item_.path;
    f.location = std::move(location);
    f.offset = offset;
    f.score = score;
    f.hard = hard;
    f.message = std::move(message);
    out_->findings.push_back(std::move(f));
  }

  // False (and one bomb finding per item) when `n` more bytes would exceed
  // the budget or, for one child, policy.max_child_bytes.
  bool Spend(uint64_t n, bool is_child, std::string_view what, uint64_t offset) {
    const bool over_child = is_child && n > ctx_.policy.max_child_bytes;
    if (n <= ctx_.expand_budget && !over_child) {
      ctx_.expand_budget -= n;
      return true;
    }
    if (!bombed_) {
      bombed_ = true;
      Find("encoding.bomb", "byte " + std::to_string(offset), static_cast<int64_t>(offset), 1, true,
           std::string(what) + " would produce " + std::to_string(n) + " bytes, over the " +
               (over_child ? "per-member limit" : "scan's remaining expansion budget") +
               "; it was not scanned");
    }
    return false;
  }

  void Child(std::string name, std::string location, std::string bytes, uint64_t offset) {
    if (!Spend(bytes.size(), true, "child '" + name + "'", offset)) return;
    out_->children.push_back(gate::Child{std::move(name), std::move(location), std::move(bytes)});
  }

  void Text(uint64_t offset, std::string location, std::string text) {
    if (text.empty()) return;
    if (!Spend(text.size(), false, "decoded text", offset)) return;
    TextSpan span;
    span.file = item_.path;
    span.offset = offset;
    span.location = std::move(location);
    span.text = std::move(text);
    out_->texts.push_back(std::move(span));
  }

  // A binary blob found inside the item (not text): its own child when
  // long, otherwise gathered with the other short ones.
  void Blob(std::string_view bytes, const std::string& name, const std::string& location,
            uint64_t offset) {
    if (bytes.empty()) return;
    if (bytes.size() >= kOwnChildBytes) {
      Child(name, location, std::string(bytes), offset);
      return;
    }
    if (small_blobs_.empty()) small_first_ = location;
    small_blobs_.append(bytes);
    ++small_count_;
  }

  // Flushes the gathered short blobs as one child named `name`.
  void FlushBlobs(const std::string& name) {
    if (small_blobs_.empty()) return;
    std::string location =
        small_count_ == 1
            ? small_first_
            : std::to_string(small_count_) + " short binary values, the first at " + small_first_;
    Child(name, std::move(location), std::move(small_blobs_), 0);
    small_blobs_.clear();
    small_count_ = 0;
  }

  // How many of `want` array values may still be produced; a hard finding
  // the first time values are cut.
  uint64_t TakeValues(uint64_t want, const std::string& location) {
    const uint64_t got = std::min(want, values_left_);
    values_left_ -= got;
    if (got < want && !values_cut_) {
      values_cut_ = true;
      Find("limits", location, -1, 1, true,
           "numeric arrays hold more than " + std::to_string(kMaxArrayValues) +
               " values; the values after that were not checked for memorised rows");
    }
    return got;
  }

 private:
  const Item& item_;
  ParseContext& ctx_;
  Parsed* out_;
  bool bombed_ = false;
  bool values_cut_ = false;
  uint64_t values_left_ = kMaxArrayValues;
  std::string small_blobs_;
  std::string small_first_;
  uint64_t small_count_ = 0;
};

// ---------------------------------------------------------------------------
// Array element types, shared by NPY and numpy arrays inside pickles.

struct DType {
  char kind = 0;      // f i u b c U S O M m V
  uint64_t size = 0;  // itemsize in bytes
  bool big_endian = false;
  bool numeric() const {
    return kind == 'f' || kind == 'i' || kind == 'u' || kind == 'b' || kind == 'c' || kind == 'M' ||
           kind == 'm';
  }
};

// numpy type strings: "<f8", ">i4", "|b1", "|O", "<U12", "|S3", "<M8[ns]";
// `order` is used when the string has no byte-order character (a pickled
// dtype keeps it apart). Error: the string in words.
StatusOr<DType> ParseTypeString(std::string_view s, char order) {
  const std::string bad = "unsupported dtype '" + Excerpt(s) + "'";
  size_t i = 0;
  if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) order = s[i++];
  if (i >= s.size()) return InvalidArgument(bad);
  DType d;
  d.kind = s[i++];
  d.big_endian = order == '>';
  uint64_t n = 0;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9' && digits < 10) {
    n = n * 10 + static_cast<uint64_t>(s[i++] - '0');
    ++digits;
  }
  std::string_view rest = s.substr(i);
  if (d.kind == '?') {
    d.kind = 'b';
    n = digits ? n : 1;
  }
  switch (d.kind) {
    case 'f':
      if (n != 2 && n != 4 && n != 8) return InvalidArgument(bad);
      break;
    case 'i':
    case 'u':
      if (n != 1 && n != 2 && n != 4 && n != 8) return InvalidArgument(bad);
      break;
    case 'b':
      if (n != 1) return InvalidArgument(bad);
      break;
    case 'c':
      if (n != 8 && n != 16) return InvalidArgument(bad);
      break;
    case 'M':
    case 'm':
      if (n != 8) return InvalidArgument(bad);
      // "[ns]" and the like: the unit does not change the stored integers.
      if (!rest.empty() && (rest.front() != '[' || rest.back() != ']' || rest.size() > 16))
        return InvalidArgument(bad);
      rest = {};
      break;
    case 'O':
      if (digits && n != 8) return InvalidArgument(bad);
      n = 8;
      break;
    case 'U':
      if (!digits || n == 0 || n > (uint64_t{1} << 28)) return InvalidArgument(bad);
      n *= 4;
      break;
    case 'S':
    case 'a':
      d.kind = 'S';
      if (!digits || n == 0 || n > (uint64_t{1} << 30)) return InvalidArgument(bad);
      break;
    case 'V':
      if (!digits) return InvalidArgument(bad);
      break;
    default: return InvalidArgument(bad);
  }
  if (!rest.empty()) return InvalidArgument(bad);
  d.size = n;
  return d;
}

double HalfToDouble(uint16_t h) {
  const int exp = h >> 10 & 0x1F;
  const int mant = h & 0x3FF;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -24);
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(mant + 1024, exp - 25);
  }
  return (h & 0x8000) ? -v : v;
}

// One scalar of `size` bytes of a numeric kind (complex: one component).
double LoadScalar(const u8* p, char kind, uint64_t size, bool big) {
  uint64_t raw = 0;
  if (big) {
    for (uint64_t i = 0; i < size; ++i) raw = raw << 8 | p[i];
  } else {
    raw = LeN(p, size);
  }
  switch (kind) {
    case 'f':
    case 'c':
      if (size == 2) return HalfToDouble(static_cast<uint16_t>(raw));
      if (size == 4) {
        float f;
        const auto bits = static_cast<uint32_t>(raw);
        std::memcpy(&f, &bits, 4);
        return f;
      } else {
        double d;
        std::memcpy(&d, &raw, 8);
        return d;
      }
    case 'i':
    case 'M':
    case 'm': {
      const auto shift = static_cast<unsigned>(64 - 8 * size);
      return static_cast<double>(static_cast<int64_t>(raw << shift) >> shift);
    }
    case 'b': return raw != 0 ? 1 : 0;
    default:  // 'u'
      return static_cast<double>(raw);
  }
}

// Calls fn(index of the element in storage order) for the first `count`
// elements in row-major order: identity for C order; for Fortran order the
// first axis varies fastest in storage, so the row-major walk is an odometer
// over Fortran strides.
template <typename Fn>
void ForEachRowMajor(const std::vector<uint64_t>& shape, bool fortran, uint64_t count, Fn&& fn) {
  if (!fortran || shape.size() < 2) {
    for (uint64_t i = 0; i < count; ++i) fn(i);
    return;
  }
  const size_t nd = shape.size();
  std::vector<uint64_t> stride(nd), idx(nd, 0);
  uint64_t s = 1;
  for (size_t k = 0; k < nd; ++k) {
    stride[k] = s;
    s *= shape[k];
  }
  uint64_t src = 0;
  for (uint64_t i = 0; i < count; ++i) {
    fn(src);
    for (size_t k = nd; k-- > 0;) {
      if (++idx[k] < shape[k]) {
        src += stride[k];
        break;
      }
      src -= stride[k] * (shape[k] - 1);
      idx[k] = 0;
    }
  }
}

// prod(shape), or nullopt on overflow.
std::optional<uint64_t> ElementCount(const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (uint64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  }
  return n;
}

std::string ShapeString(const std::vector<uint64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// Hands on an array whose `data` holds exactly prod(shape) elements of `dt`
// (the caller checked): numeric kinds as a NumericArray (complex values as a
// trailing axis of 2), strings as one TextSpan (the last axis joined by
// ',', one line per row). Object and void kinds are the caller's.
void EmitArray(Emitter& em, std::string_view data, const DType& dt, std::vector<uint64_t> shape,
               bool fortran, uint64_t offset, const std::string& location) {
  const uint64_t count = ElementCount(shape).value_or(0);
  const u8* p = U(data);
  if (dt.numeric()) {
    const uint64_t parts = dt.kind == 'c' ? 2 : 1;
    const uint64_t part_size = dt.size / parts;
    NumericArray arr;
    arr.file = em.item().path;
    arr.location = location;
    const uint64_t take = em.TakeValues(count * parts, location);
    arr.values.reserve(take);
    ForEachRowMajor(shape, fortran, (take + parts - 1) / parts, [&](uint64_t src) {
      for (uint64_t c = 0; c < parts && arr.values.size() < take; ++c) {
        arr.values.push_back(
            LoadScalar(p + src * dt.size + c * part_size, dt.kind, part_size, dt.big_endian));
      }
    });
    if (parts == 2) shape.push_back(2);
    arr.shape = std::move(shape);
    em.out()->arrays.push_back(std::move(arr));
    return;
  }
  if (dt.kind != 'U' && dt.kind != 'S') return;
  const uint64_t row = shape.size() >= 2 && shape.back() > 0 ? shape.back() : 1;
  std::string text;
  uint64_t i = 0;
  ForEachRowMajor(shape, fortran, count, [&](uint64_t src) {
    const u8* e = p + src * dt.size;
    if (dt.kind == 'U') {
      uint64_t chars = dt.size / 4;
      auto cp_at = [&](uint64_t k) {
        return static_cast<uint32_t>(dt.big_endian ? Be32(e + 4 * k) : LeN(e + 4 * k, 4));
      };
      while (chars > 0 && cp_at(chars - 1) == 0) --chars;  // numpy pads with NULs
      for (uint64_t k = 0; k < chars; ++k) AppendUtf8(cp_at(k), &text);
    } else {
      uint64_t len = dt.size;
      while (len > 0 && e[len - 1] == 0) --len;
      text.append(reinterpret_cast<const char*>(e), len);
    }
    ++i;
    text += (i % row == 0) ? '\n' : ',';
  });
  em.Text(offset, location, std::move(text));
}

// ---------------------------------------------------------------------------
// NPY: the header is a Python dict literal; a small parser of our own reads
// strings, integers, booleans, None, tuples, lists and dicts (nothing is
// evaluated).

struct Literal {
  enum Kind { kNone, kBool, kInt, kStr, kTuple, kList, kDict } kind = kNone;
  bool truth = false;
  int64_t num = 0;
  std::string str;
  std::vector<Literal> items;  // a dict: key, value, key, value, ...
};

class LiteralParser {
 public:
  LiteralParser(std::string_view text, uint64_t base) : s_(text), base_(base) {}
  size_t pos() const { return pos_; }

  Status Parse(Literal* out, int depth = 0) {
    if (depth > kMaxLiteralDepth)
      return Err("nesting deeper than " + std::to_string(kMaxLiteralDepth));
    SkipSpace();
    if (pos_ >= s_.size()) return Err("the header ends where a value was expected");
    const char c = s_[pos_];
    if (c == '\'' || c == '"') {
      out->kind = Literal::kStr;
      return ParseString(&out->str);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseInt(out);
    if (c == '(' || c == '[' || c == '{') return ParseSequence(out, depth);
    for (auto [word, kind, truth] :
         {std::tuple{"True", Literal::kBool, true}, std::tuple{"False", Literal::kBool, false},
          std::tuple{"None", Literal::kNone, false}}) {
      const std::string_view w(word);
      if (s_.substr(pos_, w.size()) == w) {
        pos_ += w.size();
        out->kind = kind;
        out->truth = truth;
        return Status::Ok();
      }
    }
    return Err("unexpected character '" + Excerpt(s_.substr(pos_, 1)) + "'");
  }

 private:
  Status Err(const std::string& what) const { return Bad("NPY header", base_ + pos_, what); }

  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  Status ParseString(std::string* out) {
    const char quote = s_[pos_++];
    while (pos_ < s_.size() && s_[pos_] != quote) {
      char c = s_[pos_++];
      if (c == '\n') return Err("newline inside a string");
      if (c == '\\') {
        if (pos_ >= s_.size()) break;
        c = s_[pos_++];
        switch (c) {
          case 'n': c = '\n'; break;
          case 't': c = '\t'; break;
          case '\\':
          case '\'':
          case '"': break;
          default: return Err("unsupported escape in a string");
        }
      }
      *out += c;
    }
    if (pos_ >= s_.size()) return Err("unterminated string");
    ++pos_;
    return Status::Ok();
  }

  Status ParseInt(Literal* out) {
    const size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    const size_t digits = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    if (pos_ == digits) return Err("expected a digit");
    int64_t v = 0;
    auto r = std::from_chars(s_.data() + start, s_.data() + pos_, v);
    if (r.ec != std::errc()) return Err("integer out of range");
    if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 long
    out->kind = Literal::kInt;
    out->num = v;
    return Status::Ok();
  }

  Status ParseSequence(Literal* out, int depth) {
    const char open = s_[pos_++];
    const char close = open == '(' ? ')' : open == '[' ? ']' : '}';
    out->kind = open == '(' ? Literal::kTuple : open == '[' ? Literal::kList : Literal::kDict;
    bool trailing_comma = false;
    for (;;) {
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == close) {
        ++pos_;
        // (x) is x in Python, not a tuple; only (x,) is one.
        if (out->kind == Literal::kTuple && out->items.size() == 1 && !trailing_comma) {
          Literal inner = std::move(out->items[0]);
          *out = std::move(inner);
        }
        return Status::Ok();
      }
      if (!out->items.empty() && !trailing_comma)
        return Err(std::string("expected ',' or '") + close + "'");
      Literal v;
      RETURN_IF_ERROR(Parse(&v, depth + 1));
      out->items.push_back(std::move(v));
      SkipSpace();
      if (out->kind == Literal::kDict) {
        if (pos_ >= s_.size() || s_[pos_] != ':') return Err("expected ':' in a dict");
        ++pos_;
        Literal value;
        RETURN_IF_ERROR(Parse(&value, depth + 1));
        out->items.push_back(std::move(value));
        SkipSpace();
      }
      trailing_comma = pos_ < s_.size() && s_[pos_] == ',';
      if (trailing_comma) ++pos_;
      if (pos_ >= s_.size()) return Err(std::string("expected '") + close + "'");
    }
  }

  std::string_view s_;
  uint64_t base_;
  size_t pos_ = 0;
};

StatusOr<std::vector<uint64_t>> ShapeFromLiteral(const Literal& v, uint64_t at) {
  if (v.kind != Literal::kTuple && v.kind != Literal::kList)
    return Bad("NPY", at, "'shape' is not a tuple");
  if (v.items.size() > kMaxNpyDims) return Bad("NPY", at, "'shape' has more than 64 dimensions");
  std::vector<uint64_t> shape;
  for (const Literal& d : v.items) {
    if (d.kind != Literal::kInt || d.num < 0)
      return Bad("NPY", at, "'shape' holds something other than a non-negative integer");
    shape.push_back(static_cast<uint64_t>(d.num));
  }
  return shape;
}

// A structured dtype of plain numeric fields ([('a', '<f8'), ('b', '<i4')]):
// its records become rows of a 2-D array. Anything else cannot be checked.
struct Field {
  DType type;
  uint64_t offset = 0;
};
StatusOr<std::vector<Field>> StructuredFields(const Literal& descr, uint64_t at) {
  std::vector<Field> fields;
  uint64_t offset = 0;
  for (const Literal& f : descr.items) {
    if (f.kind != Literal::kTuple || f.items.size() != 2 || f.items[0].kind != Literal::kStr ||
        f.items[1].kind != Literal::kStr)
      return Bad("NPY", at,
                 "structured dtype with titles, sub-arrays or nested fields: cannot be checked");
    auto t = ParseTypeString(f.items[1].str, '|');
    if (!t.ok()) return Bad("NPY", at, t.status().message());
    if (!t->numeric() || t->kind == 'c')
      return Bad("NPY", at,
                 "structured dtype field '" + Excerpt(f.items[0].str) +
                     "' is not a plain number: cannot be checked");
    fields.push_back(Field{*t, offset});
    offset += t->size;
  }
  if (fields.empty()) return Bad("NPY", at, "structured dtype without fields");
  return fields;
}

}  // namespace

Status ParseNpy(const Item& item, ParseContext& ctx, Parsed* out) {
  Emitter em(item, ctx, out);
  const std::string_view b = item.bytes;
  static constexpr std::string_view kMagic("\x93NUMPY", 6);
  if (b.size() < 10 || b.substr(0, 6) != kMagic)
    return Bad("NPY", 0, "expected the magic \\x93NUMPY and a version");
  const int major = U(b)[6];
  const int minor = U(b)[7];
  const size_t len_size = major == 1 ? 2 : (major == 2 || major == 3) ? 4 : 0;
  if (len_size == 0 || minor != 0)
    return Bad("NPY", 6,
               "unsupported format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " (expected 1.0, 2.0 or 3.0)");
  if (b.size() < 8 + len_size) return Bad("NPY", 8, "the file ends inside the header length");
  const uint64_t header_len = LeN(U(b) + 8, len_size);
  const uint64_t header_at = 8 + len_size;
  if (header_len > kMaxNpyHeader)
    return Bad("NPY", 8,
               "header length " + std::to_string(header_len) + " is over the limit of " +
                   std::to_string(kMaxNpyHeader));
  if (header_at + header_len > b.size())
    return Bad("NPY", 8,
               "header of " + std::to_string(header_len) +
                   " bytes runs past the end of the file (" + std::to_string(b.size()) + " bytes)");
  const std::string_view header = b.substr(header_at, header_len);

  LiteralParser parser(header, header_at);
  Literal dict;
  RETURN_IF_ERROR(parser.Parse(&dict));
  if (dict.kind != Literal::kDict) return Bad("NPY", header_at, "the header is not a dict");

  // numpy pads the header with spaces and ends it with '\n'; anything else
  // there is room for a message no reader of the array ever sees.
  const std::string_view padding = header.substr(parser.pos());
  const bool covert_padding =
      std::any_of(padding.begin(), padding.end(), [](char c) { return c != ' ' && c != '\n'; });
  if (covert_padding) {
    const uint64_t at = header_at + parser.pos();
    em.Find("covert.npy", "header padding at byte " + std::to_string(at), static_cast<int64_t>(at),
            1, true,
            "the NPY header is padded with " + std::to_string(padding.size()) +
                " bytes that are not spaces (numpy writes spaces): hidden content, scanned as "
                "child 'npy-header-padding'");
    em.Child("npy-header-padding", "byte " + std::to_string(at), std::string(padding), at);
  }

  const Literal* descr = nullptr;
  const Literal* fortran = nullptr;
  const Literal* shape_lit = nullptr;
  for (size_t i = 0; i + 1 < dict.items.size(); i += 2) {
    const Literal& key = dict.items[i];
    const Literal* value = &dict.items[i + 1];
    const std::string k = key.kind == Literal::kStr ? key.str : std::string();
    const Literal** slot = k == "descr"           ? &descr
                           : k == "fortran_order" ? &fortran
                           : k == "shape"         ? &shape_lit
                                                  : nullptr;
    if (slot == nullptr || *slot != nullptr)
      return Bad("NPY", header_at,
                 "the header has key '" + Excerpt(k) +
                     "' (expected exactly 'descr', 'fortran_order' and 'shape')");
    *slot = value;
  }
  if (!descr || !fortran || !shape_lit)
    return Bad("NPY", header_at, "the header lacks one of 'descr', 'fortran_order', 'shape'");
  if (fortran->kind != Literal::kBool)
    return Bad("NPY", header_at, "'fortran_order' is not True or False");
  ASSIGN_OR_RETURN(std::vector<uint64_t> shape, ShapeFromLiteral(*shape_lit, header_at));
  const std::optional<uint64_t> count = ElementCount(shape);
  if (!count) return Bad("NPY", header_at, "shape " + ShapeString(shape) + " overflows 64 bits");

  const uint64_t data_at = header_at + header_len;
  const std::string_view data = b.substr(data_at);
  const std::string where = "array data at byte " + std::to_string(data_at);

  DType dt;
  std::vector<Field> fields;
  if (descr->kind == Literal::kStr) {
    auto t = ParseTypeString(descr->str, '|');
    if (!t.ok()) return Bad("NPY", header_at, t.status().message());
    dt = *t;
  } else if (descr->kind == Literal::kList) {
    ASSIGN_OR_RETURN(fields, StructuredFields(*descr, header_at));
    dt.kind = 'V';
    for (const Field& f : fields) dt.size += f.type.size;
  } else {
    return Bad("NPY", header_at, "'descr' is neither a type string nor a list of fields");
  }

  if (dt.kind == 'O') {
    // An object array's elements are a pickle: parsed (never loaded) as a
    // child; the file would run that pickle when loaded with allow_pickle.
    em.Find("type", where, static_cast<int64_t>(data_at), 0.2, false,
            "NPY object array: its elements are stored as a pickle (numpy loads it only with "
            "allow_pickle=True); scanned as child 'object-array'");
    em.Child("object-array", where, std::string(data), data_at);
    return Status::Ok();
  }
  if (dt.kind == 'V' && fields.empty())
    return Bad("NPY", header_at, "raw void dtype: cannot be checked");

  uint64_t need = 0;
  if (__builtin_mul_overflow(*count, dt.size, &need))
    return Bad("NPY", header_at, "shape " + ShapeString(shape) + " times the item size overflows");
  if (data.size() < need)
    return Bad("NPY", data_at,
               "shape " + ShapeString(shape) + " needs " + std::to_string(need) +
                   " bytes of data, the file holds " + std::to_string(data.size()));
  if (data.size() > need) {
    const uint64_t at = data_at + need;
    const uint64_t extra = data.size() - need;
    em.Find("covert.npy", "byte " + std::to_string(at), static_cast<int64_t>(at), 1, true,
            std::to_string(extra) +
                " bytes after the array's data (numpy never reads them): scanned as child "
                "'npy-trailing'");
    em.Child("npy-trailing", "byte " + std::to_string(at), std::string(data.substr(need)), at);
  }

  if (!fields.empty()) {
    // Records as rows: shape + (number of fields,).
    NumericArray arr;
    arr.file = item.path;
    arr.location = where;
    const uint64_t per = fields.size();
    const uint64_t take = em.TakeValues(*count * per, where);
    arr.values.reserve(take);
    const u8* p = U(data);
    ForEachRowMajor(shape, fortran->truth, (take + per - 1) / per, [&](uint64_t src) {
      for (const Field& f : fields) {
        if (arr.values.size() >= take) break;
        arr.values.push_back(
            LoadScalar(p + src * dt.size + f.offset, f.type.kind, f.type.size, f.type.big_endian));
      }
    });
    shape.push_back(per);
    arr.shape = std::move(shape);
    out->arrays.push_back(std::move(arr));
    return Status::Ok();
  }
  EmitArray(em, data.substr(0, need), dt, std::move(shape), fortran->truth, data_at, where);
  return Status::Ok();
}

namespace {

// ---------------------------------------------------------------------------
// Pickle: an opcode walker over a simulated stack. Values live in an arena
// and refer to each other by index, so memo references, shared and cyclic
// structures cost nothing and nothing recurses. Calls (REDUCE, NEWOBJ,
// BUILD...) only record which callable would have been applied to what.

// GLOBALs an ordinary pickle of plain data, numpy/pandas/scipy/sklearn or
// torch objects uses. Anything else holds: loading the file would import
// and call it on the consumer's machine. Within the packages, classes are
// allowed (not functions, which is where gadgets like
// numpy.testing...runstring live) except under submodules that read or
// write files or run code; a few unpickling helpers are named.
bool IsDottedName(std::string_view s) {
  if (s.empty() || s.size() > 200) return false;
  bool start = true;
  for (char c : s) {
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(c >= '0' && c <= '9' && !start)) return false;
    start = false;
  }
  return !start;
}

bool AllowedGlobal(std::string_view module, std::string_view name) {
  if (!IsDottedName(module) || !IsDottedName(name) || name.find('.') != std::string_view::npos)
    return false;
  auto in = [&](std::string_view m, std::initializer_list<std::string_view> names) {
    return module == m && std::find(names.begin(), names.end(), name) != names.end();
  };
  auto builtin = [&](std::string_view m) {
    return in(m, {"set", "frozenset", "bytearray", "bytes", "complex", "slice", "range", "list",
                  "dict", "tuple", "int", "float", "str", "bool", "object"});
  };
  static constexpr std::string_view kNumpyTypes[] = {
      "dtype",   "ndarray",    "matrix",      "bool_",      "int8",   "int16",   "int32",
      "int64",   "uint8",      "uint16",      "uint32",     "uint64", "float16", "float32",
      "float64", "complex64",  "complex128",  "longdouble", "str_",   "bytes_",  "object_",
      "void",    "datetime64", "timedelta64", "generic"};
  if (module == "numpy" &&
      std::find(std::begin(kNumpyTypes), std::end(kNumpyTypes), name) != std::end(kNumpyTypes))
    return true;
  if (builtin("builtins") || builtin("__builtin__")) return true;
  if (in("copyreg", {"_reconstructor", "__newobj__", "__newobj_ex__"}) ||
      in("copy_reg", {"_reconstructor", "__newobj__", "__newobj_ex__"}) ||
      in("_codecs", {"encode"}) ||
      in("collections", {"OrderedDict", "defaultdict", "deque", "Counter"}) ||
      in("datetime", {"datetime", "date", "time", "timedelta", "timezone"}) ||
      in("decimal", {"Decimal"}) || in("fractions", {"Fraction"}) || in("uuid", {"UUID"}) ||
      in("numpy.core.multiarray", {"_reconstruct", "scalar"}) ||
      in("numpy._core.multiarray", {"_reconstruct", "scalar"}) ||
      in("numpy.core.numeric", {"_frombuffer"}) || in("numpy._core.numeric", {"_frombuffer"}) ||
      in("numpy.random._pickle",
         {"__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"}) ||
      in("numpy.random", {"__RandomState_ctor"}) || in("numpy.ma.core", {"_mareconstruct"}) ||
      in("torch._utils", {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter",
                          "_rebuild_parameter_with_state"}) ||
      in("torch", {"Size", "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32",
                   "int64", "uint8", "bool", "complex64", "complex128"})) {
    return true;
  }
  if (module == "torch" && name.size() > 7 && name.substr(name.size() - 7) == "Storage")
    return true;
  if (module == "numpy.dtypes" && name.size() > 5 && name.substr(name.size() - 5) == "DType")
    return true;
  // Classes (and named unpickling helpers) in submodules of the data science
  // packages, outside the parts that touch files, the network or code.
  bool package = false;
  for (std::string_view p : {"numpy.", "pandas.", "scipy.", "sklearn."})
    package = package || module.substr(0, p.size()) == p;
  if (!package) return false;
  size_t start = 0;
  while (start <= module.size()) {
    size_t end = module.find('.', start);
    if (end == std::string_view::npos) end = module.size();
    const std::string_view part = module.substr(start, end - start);
    for (std::string_view deny : {"testing", "_testing", "tests", "f2py", "distutils", "io",
                                  "datasets", "externals", "_build_utils", "conftest", "ctypeslib",
                                  "lib", "compat", "_config", "plotting", "clipboard", "api"})
      if (part == deny) return false;
    start = end + 1;
  }
  const bool class_name = name[0] >= 'A' && name[0] <= 'Z';
  const bool helper = name.find("unpickle") != std::string_view::npos ||
                      name.substr(0, 5) == "_new_" || name.substr(0, 12) == "_reconstruct" ||
                      name == "new_block" || name == "new_block_2d";
  return class_name || helper;
}

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,
  kFloat,
  kStr,
  kBytes,
  kList,
  kTuple,
  kDict,
  kSet,
  kGlobal,
  kObject,
};

struct Value {
  Kind kind = Kind::kNone;
  bool consumed = false;  // part of a recognised numpy array: not handed on again
  bool inexact = false;   // an integer beyond 64 bits (num is approximate)
  uint32_t ref =
      0;  // kStr/kBytes: strs_; containers: seqs_; kObject: objs_; kGlobal: strs_ (module, name)
  uint64_t offset = 0;  // of the opcode that made it
  double num = 0;       // kBool/kInt/kFloat
};

constexpr uint32_t kNoValue = std::numeric_limits<uint32_t>::max();

struct Object {
  uint32_t callable = kNoValue;  // kNoValue: opaque (persistent id, out-of-band buffer, extension)
  uint32_t args = kNoValue;
  uint32_t state = kNoValue;  // BUILD
  uint32_t seq = kNoValue;    // items added by APPENDS/SETITEMS
};

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kStr: return "str";
    case Kind::kBytes: return "bytes";
    case Kind::kList: return "list";
    case Kind::kTuple: return "tuple";
    case Kind::kDict: return "dict";
    case Kind::kSet: return "set";
    case Kind::kGlobal: return "global";
    case Kind::kObject: return "object";
  }
  return "?";
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class PickleWalker {
 public:
  explicit PickleWalker(Emitter& em) : em_(em), b_(em.item().bytes) {}

  Status Walk() {
    size_t pos = 0;
    for (;;) {
      RETURN_IF_ERROR(WalkOne(pos));
      if (pos >= b_.size()) break;
      // Several pickle.dump calls into one file: each is a pickle of its own.
      if (U(b_)[pos] == 0x80) continue;
      const uint64_t extra = b_.size() - pos;
      em_.Find("covert.pickle", "byte " + std::to_string(pos), static_cast<int64_t>(pos), 1, true,
               std::to_string(extra) +
                   " bytes after the pickle's STOP opcode (never read by the unpickler): scanned "
                   "as child 'pickle-trailing'");
      em_.Child("pickle-trailing", "byte " + std::to_string(pos), std::string(b_.substr(pos)), pos);
      break;
    }
    return Status::Ok();
  }

  void Extract();

 private:
  Status Err(uint64_t at, const std::string& what) const { return Bad("pickle", at, what); }

  std::string_view Str(uint32_t v) const { return strs_[values_[v].ref]; }

  StatusOr<uint32_t> New(Kind kind, uint64_t at) {
    if (values_.size() >= kMaxPickleValues)
      return Err(at,
                 "more than " + std::to_string(kMaxPickleValues) + " objects: too large to check");
    Value v;
    v.kind = kind;
    v.offset = at;
    values_.push_back(v);
    return static_cast<uint32_t>(values_.size() - 1);
  }
  StatusOr<uint32_t> NewNumber(Kind kind, double num, bool inexact, uint64_t at) {
    ASSIGN_OR_RETURN(uint32_t v, New(kind, at));
    values_[v].num = num;
    values_[v].inexact = inexact;
    return v;
  }
  StatusOr<uint32_t> NewString(Kind kind, std::string_view s, uint64_t at) {
    ASSIGN_OR_RETURN(uint32_t v, New(kind, at));
    values_[v].ref = static_cast<uint32_t>(strs_.size());
    strs_.push_back(s);
    return v;
  }
  StatusOr<uint32_t> NewOwnedString(Kind kind, std::string s, uint64_t at) {
    owned_.push_back(std::move(s));
    return NewString(kind, owned_.back(), at);
  }
  Status CountElements(size_t n, uint64_t at) {
    elements_ += n;
    if (elements_ > kMaxPickleElements)
      return Err(at, "more than " + std::to_string(kMaxPickleElements) +
                         " container elements: too large to check");
    return Status::Ok();
  }
  StatusOr<uint32_t> NewSeq(Kind kind, const uint32_t* first, size_t n, uint64_t at) {
    RETURN_IF_ERROR(CountElements(n, at));
    ASSIGN_OR_RETURN(uint32_t v, New(kind, at));
    values_[v].ref = static_cast<uint32_t>(seqs_.size());
    seqs_.emplace_back(first, first + n);
    return v;
  }
  StatusOr<uint32_t> NewObject(uint32_t callable, uint32_t args, uint64_t at) {
    ASSIGN_OR_RETURN(uint32_t v, New(Kind::kObject, at));
    values_[v].ref = static_cast<uint32_t>(objs_.size());
    objs_.push_back(Object{callable, args, kNoValue, kNoValue});
    return v;
  }

  Status Push(uint32_t v, uint64_t at) {
    if (stack_.size() >= kMaxPickleStack)
      return Err(at, "stack deeper than " + std::to_string(kMaxPickleStack));
    stack_.push_back(v);
    return Status::Ok();
  }
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  StatusOr<uint32_t> Pop(uint64_t at) {
    if (stack_.size() <= Floor()) return Err(at, "stack underflow");
    const uint32_t v = stack_.back();
    stack_.pop_back();
    return v;
  }
  StatusOr<uint32_t> Top(uint64_t at) const {
    if (stack_.size() <= Floor()) return Err(at, "stack underflow");
    return stack_.back();
  }
  // The items since the last MARK: stack_[start, end).
  StatusOr<size_t> MarkStart(uint64_t at) const {
    if (marks_.empty()) return Err(at, "no MARK on the stack");
    return marks_.back();
  }
  void DropMark(size_t start) {
    stack_.resize(start);
    marks_.pop_back();
  }

  StatusOr<std::string_view> Take(size_t& pos, uint64_t n, uint64_t at) const {
    if (n > b_.size() - pos)
      return Err(at, "opcode 0x" + Hex(U(b_)[at]) + " needs " + std::to_string(n) +
                         " more bytes, the file ends");
    std::string_view s = b_.substr(pos, n);
    pos += n;
    return s;
  }
  StatusOr<std::string_view> Line(size_t& pos, uint64_t at) const {
    const void* nl = std::memchr(b_.data() + pos, '\n', b_.size() - pos);
    if (nl == nullptr) return Err(at, "opcode 0x" + Hex(U(b_)[at]) + ": line without a newline");
    const auto end = static_cast<size_t>(static_cast<const char*>(nl) - b_.data());
    std::string_view s = b_.substr(pos, end - pos);
    pos = end + 1;
    return s;
  }
  static std::string Hex(u8 c) {
    static constexpr char kHex[] = "0123456789abcdef";
    return {kHex[c >> 4], kHex[c & 0xF]};
  }

  StatusOr<uint64_t> MemoIndex(std::string_view line, uint64_t at) const {
    uint64_t v = 0;
    auto r = std::from_chars(line.data(), line.data() + line.size(), v);
    if (r.ec != std::errc() || r.ptr != line.data() + line.size())
      return Err(at, "memo index '" + Excerpt(line) + "' is not a number");
    return v;
  }
  Status Put(uint64_t key, uint64_t at) {
    ASSIGN_OR_RETURN(uint32_t top, Top(at));
    if (memo_.size() >= kMaxPickleMemo && memo_.find(key) == memo_.end())
      return Err(at, "more than " + std::to_string(kMaxPickleMemo) + " memo entries");
    memo_[key] = top;
    return Status::Ok();
  }
  Status Get(uint64_t key, uint64_t at) {
    auto it = memo_.find(key);
    if (it == memo_.end()) return Err(at, "memo key " + std::to_string(key) + " was never stored");
    return Push(it->second, at);
  }

  // Decimal integers as the text opcodes write them ("123", "-4", "5L").
  StatusOr<uint32_t> TextInt(std::string_view line, uint64_t at) {
    if (!line.empty() && line.back() == 'L') line.remove_suffix(1);
    int64_t v = 0;
    auto r = std::from_chars(line.data(), line.data() + line.size(), v);
    if (r.ec == std::errc() && r.ptr == line.data() + line.size())
      return NewNumber(Kind::kInt, static_cast<double>(v), false, at);
    double d = 0;
    auto rd = std::from_chars(line.data(), line.data() + line.size(), d);
    if (rd.ec != std::errc::result_out_of_range &&
        (rd.ec != std::errc() || rd.ptr != line.data() + line.size()))
      return Err(at, "integer '" + Excerpt(line) + "' is not a number");
    const bool all_digits = std::all_of(line.begin() + (line[0] == '-' ? 1 : 0), line.end(),
                                        [](char c) { return c >= '0' && c <= '9'; });
    if (!all_digits) return Err(at, "integer '" + Excerpt(line) + "' is not a number");
    return NewNumber(Kind::kInt, d, true, at);
  }

  // LONG1/LONG4: little-endian two's complement of any length.
  StatusOr<uint32_t> BinaryLong(std::string_view bytes, uint64_t at) {
    const size_t n = bytes.size();
    if (n == 0) return NewNumber(Kind::kInt, 0, false, at);
    const u8* p = U(bytes);
    if (n <= 8) {
      const auto shift = static_cast<unsigned>(64 - 8 * n);
      const int64_t v = static_cast<int64_t>(LeN(p, n) << shift) >> shift;
      return NewNumber(Kind::kInt, static_cast<double>(v), false, at);
    }
    // The top 8 bytes, scaled: close enough for a value nobody's data holds.
    const auto top = static_cast<int64_t>(LeN(p + n - 8, 8));
    return NewNumber(Kind::kInt,
                     std::ldexp(static_cast<double>(top), static_cast<int>(8 * (n - 8))), true, at);
  }

  // STRING's argument: a Python 2 repr, quoted, with backslash escapes.
  StatusOr<uint32_t> QuotedString(std::string_view line, uint64_t at) {
    if (line.size() < 2 || (line[0] != '\'' && line[0] != '"') || line.back() != line[0])
      return Err(at, "STRING argument is not quoted");
    line = line.substr(1, line.size() - 2);
    std::string s;
    s.reserve(line.size());
    for (size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (c != '\\' || i + 1 >= line.size()) {
        s += c;
        continue;
      }
      c = line[++i];
      switch (c) {
        case 'n': s += '\n'; break;
        case 't': s += '\t'; break;
        case 'r': s += '\r'; break;
        case 'a': s += '\a'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'v': s += '\v'; break;
        case '\\':
        case '\'':
        case '"': s += c; break;
        case 'x': {
          const int hi = i + 1 < line.size() ? HexDigit(line[i + 1]) : -1;
          const int lo = i + 2 < line.size() ? HexDigit(line[i + 2]) : -1;
          if (hi < 0 || lo < 0) return Err(at, "STRING argument has a bad \\x escape");
          s += static_cast<char>(hi * 16 + lo);
          i += 2;
          break;
        }
        default:
          if (c >= '0' && c <= '7') {
            int v = c - '0';
            for (int k = 0;
                 k < 2 && i + 1 < line.size() && line[i + 1] >= '0' && line[i + 1] <= '7'; ++k)
              v = v * 8 + (line[++i] - '0');
            s += static_cast<char>(v & 0xFF);
          } else {
            s += '\\';
            s += c;
          }
      }
    }
    return NewOwnedString(Kind::kStr, std::move(s), at);
  }

  // UNICODE's argument: raw-unicode-escape (\uXXXX, \UXXXXXXXX, other bytes
  // are Latin-1).
  StatusOr<uint32_t> RawUnicode(std::string_view line, uint64_t at) {
    std::string s;
    s.reserve(line.size());
    for (size_t i = 0; i < line.size(); ++i) {
      const u8 c = static_cast<u8>(line[i]);
      if (c == '\\' && i + 1 < line.size() && (line[i + 1] == 'u' || line[i + 1] == 'U')) {
        const size_t digits = line[i + 1] == 'u' ? 4 : 8;
        if (i + 2 + digits > line.size()) return Err(at, "UNICODE argument has a short \\u escape");
        uint32_t cp = 0;
        for (size_t k = 0; k < digits; ++k) {
          const int h = HexDigit(line[i + 2 + k]);
          if (h < 0) return Err(at, "UNICODE argument has a bad \\u escape");
          cp = cp << 4 | static_cast<uint32_t>(h);
        }
        AppendUtf8(cp, &s);
        i += 1 + digits;
      } else {
        AppendUtf8(c, &s);
      }
    }
    return NewOwnedString(Kind::kStr, std::move(s), at);
  }

  void CheckGlobal(std::string_view module, std::string_view name, uint64_t at) {
    if (AllowedGlobal(module, name)) return;
    const std::string full = Excerpt(module, 80) + "." + Excerpt(name, 80);
    if (!bad_globals_.insert(full).second) return;
    if (bad_globals_.size() > kMaxGlobalFindings) return;
    em_.Find("type", "pickle opcode at byte " + std::to_string(at), static_cast<int64_t>(at), 1,
             true,
             "pickle imports " + full +
                 ": loading this file would import and call it on the consumer's machine (not a "
                 "plain data, numpy, pandas, scipy, scikit-learn or torch type)");
  }

  StatusOr<uint32_t> MakeGlobal(std::string_view module, std::string_view name, uint64_t at) {
    CheckGlobal(module, name, at);
    ASSIGN_OR_RETURN(uint32_t v, New(Kind::kGlobal, at));
    values_[v].ref = static_cast<uint32_t>(strs_.size());
    strs_.push_back(module);
    strs_.push_back(name);
    return v;
  }
  bool IsGlobal(uint32_t v, std::string_view module, std::string_view name) const {
    if (v == kNoValue || values_[v].kind != Kind::kGlobal) return false;
    return strs_[values_[v].ref] == module && strs_[values_[v].ref + 1] == name;
  }
  bool IsBuiltin(uint32_t v, std::string_view name) const {
    return IsGlobal(v, "builtins", name) || IsGlobal(v, "__builtin__", name);
  }
  const std::vector<uint32_t>* SeqOf(uint32_t v) const {
    if (v == kNoValue) return nullptr;
    const Value& x = values_[v];
    if (x.kind == Kind::kList || x.kind == Kind::kTuple || x.kind == Kind::kDict ||
        x.kind == Kind::kSet)
      return &seqs_[x.ref];
    return nullptr;
  }
  const std::vector<uint32_t>* TupleOf(uint32_t v) const {
    return v != kNoValue && values_[v].kind == Kind::kTuple ? &seqs_[values_[v].ref] : nullptr;
  }

  // REDUCE / NEWOBJ / INST / OBJ: records the call. The few calls that
  // build plain values (bytes from Latin-1 text, sets, ordered dicts) are
  // turned into those values so what is inside them is seen.
  StatusOr<uint32_t> Call(uint32_t callable, uint32_t args, uint64_t at) {
    const Value& c = values_[callable];
    if (c.kind != Kind::kGlobal) {
      if (!bad_call_) {
        bad_call_ = true;
        em_.Find("type", "pickle opcode at byte " + std::to_string(at), static_cast<int64_t>(at), 1,
                 true,
                 std::string("pickle calls a ") + KindName(c.kind) +
                     " value that is not an imported class or function: it cannot be checked");
      }
      return NewObject(callable, args, at);
    }
    const std::vector<uint32_t>* a = TupleOf(args);
    if (IsGlobal(callable, "_codecs", "encode") && a && a->size() == 2 &&
        values_[(*a)[0]].kind == Kind::kStr && values_[(*a)[1]].kind == Kind::kStr &&
        Str((*a)[1]) == "latin1") {
      // Protocol 2 writes bytes as _codecs.encode(text, 'latin1').
      std::string out;
      const std::string_view s = Str((*a)[0]);
      for (size_t i = 0; i < s.size();) {
        const u8 ch = static_cast<u8>(s[i]);
        if ((ch & 0xE0) == 0xC0 && i + 1 < s.size()) {
          out += static_cast<char>((ch & 0x1F) << 6 | (static_cast<u8>(s[i + 1]) & 0x3F));
          i += 2;
        } else {
          out += static_cast<char>(ch);
          ++i;
        }
      }
      values_[(*a)[0]].consumed = true;
      values_[(*a)[1]].consumed = true;
      values_[args].consumed = true;
      return NewOwnedString(Kind::kBytes, std::move(out), at);
    }
    if ((IsBuiltin(callable, "bytes") || IsBuiltin(callable, "bytearray")) && a) {
      if (a->empty()) return NewString(Kind::kBytes, {}, at);
      if (values_[(*a)[0]].kind == Kind::kBytes) return NewString(Kind::kBytes, Str((*a)[0]), at);
    }
    if ((IsBuiltin(callable, "set") || IsBuiltin(callable, "frozenset")) && a) {
      const std::vector<uint32_t>* items = a->empty() ? nullptr : SeqOf((*a)[0]);
      if (a->empty()) return NewSeq(Kind::kSet, nullptr, 0, at);
      if (items) {
        const std::vector<uint32_t> copy = *items;
        return NewSeq(Kind::kSet, copy.data(), copy.size(), at);
      }
    }
    if (IsGlobal(callable, "collections", "OrderedDict") && a && a->empty())
      return NewSeq(Kind::kDict, nullptr, 0, at);
    return NewObject(callable, args, at);
  }

  // Where APPENDS/SETITEMS/ADDITEMS put their items.
  StatusOr<std::vector<uint32_t>*> Target(uint32_t v, uint64_t at, bool dict) {
    Value& x = values_[v];
    if (dict ? x.kind == Kind::kDict : (x.kind == Kind::kList || x.kind == Kind::kSet))
      return &seqs_[x.ref];
    if (x.kind == Kind::kObject) {
      Object& o = objs_[x.ref];
      if (o.seq == kNoValue) {
        ASSIGN_OR_RETURN(uint32_t s, NewSeq(dict ? Kind::kDict : Kind::kList, nullptr, 0, at));
        o.seq = s;
      }
      return &seqs_[values_[o.seq].ref];
    }
    return Err(at, std::string("adds items to a ") + KindName(x.kind));
  }
  Status AddItems(bool dict, uint64_t at) {
    ASSIGN_OR_RETURN(size_t start, MarkStart(at));
    const size_t n = stack_.size() - start;
    if (dict && n % 2) return Err(at, "SETITEMS with an odd number of items");
    marks_.pop_back();
    // The target is the value just below the MARK.
    if (start == 0 || start - 1 < Floor()) return Err(at, "stack underflow");
    ASSIGN_OR_RETURN(std::vector<uint32_t> * seq, Target(stack_[start - 1], at, dict));
    RETURN_IF_ERROR(CountElements(n, at));
    seq->insert(seq->end(), stack_.begin() + static_cast<std::ptrdiff_t>(start), stack_.end());
    stack_.resize(start);
    return Status::Ok();
  }
  Status MarkedSeq(Kind kind, uint64_t at) {
    ASSIGN_OR_RETURN(size_t start, MarkStart(at));
    const size_t n = stack_.size() - start;
    if (kind == Kind::kDict && n % 2) return Err(at, "DICT with an odd number of items");
    ASSIGN_OR_RETURN(uint32_t v, NewSeq(kind, stack_.data() + start, n, at));
    DropMark(start);
    return Push(v, at);
  }
  Status TopSeq(Kind kind, size_t n, uint64_t at) {
    if (stack_.size() < Floor() + n) return Err(at, "stack underflow");
    const size_t start = stack_.size() - n;
    ASSIGN_OR_RETURN(uint32_t v, NewSeq(kind, stack_.data() + start, n, at));
    stack_.resize(start);
    return Push(v, at);
  }

  Status WalkOne(size_t& pos);

  // Extraction helpers.
  std::optional<DType> NumpyDType(uint32_t v);
  std::optional<std::vector<uint64_t>> IntTuple(uint32_t v) const;
  void RecogniseNumpy(uint32_t v);
  bool IsNumber(uint32_t v) const {
    const Kind k = values_[v].kind;
    return k == Kind::kInt || k == Kind::kFloat || k == Kind::kBool;
  }
  bool IsScalar(uint32_t v) const {
    const Kind k = values_[v].kind;
    return IsNumber(v) || k == Kind::kStr || k == Kind::kNone;
  }
  std::string ScalarText(uint32_t v) const {
    const Value& x = values_[v];
    switch (x.kind) {
      case Kind::kStr: return std::string(Str(v));
      case Kind::kNone: return "";
      case Kind::kBool: return x.num != 0 ? "True" : "False";
      case Kind::kInt:
        if (!x.inexact) return std::to_string(static_cast<int64_t>(x.num));
        return FormatDouble(x.num);
      default: return FormatDouble(x.num);
    }
  }
  void EmitString(uint32_t v);
  // Whether the text of these scalars (every `step`-th) fits the expansion
  // budget; if not, the bomb finding. Checked before building the text: a
  // few bytes of memo references can name one long string many times.
  bool FitsBudget(const uint32_t* items, size_t n, size_t step, uint64_t offset) {
    uint64_t size = 0;
    for (size_t i = 0; i < n; i += step) {
      const Value& x = values_[items[i]];
      size += (x.kind == Kind::kStr ? Str(items[i]).size() : 32) + 1;
      if (size > em_.ctx().expand_budget) return em_.Spend(size, false, "pickle text", offset);
    }
    return true;
  }
  // Marks a tuple and the scalars in it as handled (numpy's bookkeeping).
  void Consume(uint32_t v) {
    if (v == kNoValue) return;
    values_[v].consumed = true;
    if (values_[v].kind != Kind::kTuple) return;
    for (uint32_t e : seqs_[values_[v].ref])
      if (IsScalar(e) || values_[e].kind == Kind::kBytes) values_[e].consumed = true;
  }
  void FlushBatch();

  Emitter& em_;
  std::string_view b_;
  std::vector<Value> values_;
  std::vector<std::vector<uint32_t>> seqs_;
  std::vector<Object> objs_;
  std::vector<std::string_view> strs_;
  std::deque<std::string> owned_;  // decoded strings (stable addresses)
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, uint32_t> memo_;
  size_t elements_ = 0;
  std::unordered_set<std::string> bad_globals_;
  bool bad_call_ = false;
  size_t spans_ = 0;
  std::string batch_;
  uint64_t batch_at_ = 0;
};

Status PickleWalker::WalkOne(size_t& pos) {
  stack_.clear();
  marks_.clear();
  memo_.clear();
  for (;;) {
    if (pos >= b_.size()) return Err(pos, "the pickle ends without a STOP opcode");
    const uint64_t at = pos;
    const u8 op = U(b_)[pos++];
    switch (op) {
      case '(':  // MARK
        if (marks_.size() >= kMaxPickleMarks)
          return Err(at, "more than " + std::to_string(kMaxPickleMarks) + " nested MARKs");
        marks_.push_back(stack_.size());
        break;
      case '.': {  // STOP
        ASSIGN_OR_RETURN(uint32_t v, Pop(at));
        (void)v;
        return Status::Ok();
      }
      case '0':  // POP
        if (stack_.size() > Floor()) {
          stack_.pop_back();
        } else {
          ASSIGN_OR_RETURN(size_t start, MarkStart(at));
          DropMark(start);
        }
        break;
      case '1': {  // POP_MARK
        ASSIGN_OR_RETURN(size_t start, MarkStart(at));
        DropMark(start);
        break;
      }
      case '2': {  // DUP
        ASSIGN_OR_RETURN(uint32_t v, Top(at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'F': {  // FLOAT
        ASSIGN_OR_RETURN(std::string_view line, Line(pos, at));
        double d = 0;
        auto r = std::from_chars(line.data(), line.data() + line.size(), d);
        if (r.ec != std::errc() || r.ptr != line.data() + line.size())
          return Err(at, "FLOAT '" + Excerpt(line) + "' is not a number");
        ASSIGN_OR_RETURN(uint32_t v, NewNumber(Kind::kFloat, d, false, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'I': {  // INT ("00"/"01": False/True)
        ASSIGN_OR_RETURN(std::string_view line, Line(pos, at));
        uint32_t v;
        if (line == "00" || line == "01") {
          ASSIGN_OR_RETURN(v, NewNumber(Kind::kBool, line == "01" ? 1 : 0, false, at));
        } else {
          ASSIGN_OR_RETURN(v, TextInt(line, at));
        }
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'L': {  // LONG
        ASSIGN_OR_RETURN(std::string_view line, Line(pos, at));
        ASSIGN_OR_RETURN(uint32_t v, TextInt(line, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'J':    // BININT
      case 'K':    // BININT1
      case 'M': {  // BININT2
        const size_t n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        ASSIGN_OR_RETURN(std::string_view s, Take(pos, n, at));
        const uint64_t raw = LeN(U(s), n);
        const double d =
            op == 'J' ? static_cast<double>(static_cast<int32_t>(raw)) : static_cast<double>(raw);
        ASSIGN_OR_RETURN(uint32_t v, NewNumber(Kind::kInt, d, false, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 0x8a:    // LONG1
      case 0x8b: {  // LONG4
        const size_t n = op == 0x8a ? 1 : 4;
        ASSIGN_OR_RETURN(std::string_view len, Take(pos, n, at));
        const auto size = static_cast<int64_t>(
            n == 1 ? LeN(U(len), 1) : static_cast<uint64_t>(static_cast<int32_t>(LeN(U(len), 4))));
        if (size < 0) return Err(at, "LONG4 with a negative length");
        ASSIGN_OR_RETURN(std::string_view s, Take(pos, static_cast<uint64_t>(size), at));
        ASSIGN_OR_RETURN(uint32_t v, BinaryLong(s, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'G': {  // BINFLOAT (big-endian double)
        ASSIGN_OR_RETURN(std::string_view s, Take(pos, 8, at));
        ASSIGN_OR_RETURN(uint32_t v,
                         NewNumber(Kind::kFloat, LoadScalar(U(s), 'f', 8, true), false, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'N':     // NONE
      case 0x88:    // NEWTRUE
      case 0x89: {  // NEWFALSE
        ASSIGN_OR_RETURN(uint32_t v, op == 'N' ? New(Kind::kNone, at)
                                               : NewNumber(Kind::kBool, op == 0x88, false, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'S': {  // STRING
        ASSIGN_OR_RETURN(std::string_view line, Line(pos, at));
        ASSIGN_OR_RETURN(uint32_t v, QuotedString(line, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'V': {  // UNICODE
        ASSIGN_OR_RETURN(std::string_view line, Line(pos, at));
        ASSIGN_OR_RETURN(uint32_t v, RawUnicode(line, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'T':     // BINSTRING
      case 'U':     // SHORT_BINSTRING
      case 'X':     // BINUNICODE
      case 0x8c:    // SHORT_BINUNICODE
      case 0x8d:    // BINUNICODE8
      case 'B':     // BINBYTES
      case 'C':     // SHORT_BINBYTES
      case 0x8e:    // BINBYTES8
      case 0x96: {  // BYTEARRAY8
        size_t n = 4;
        if (op == 'U' || op == 0x8c || op == 'C') n = 1;
        if (op == 0x8d || op == 0x8e || op == 0x96) n = 8;
        ASSIGN_OR_RETURN(std::string_view len, Take(pos, n, at));
        uint64_t size = LeN(U(len), n);
        if (op == 'T' && static_cast<int32_t>(size) < 0)
          return Err(at, "BINSTRING with a negative length");
        ASSIGN_OR_RETURN(std::string_view s, Take(pos, size, at));
        const bool bytes = op == 'B' || op == 'C' || op == 0x8e || op == 0x96;
        ASSIGN_OR_RETURN(uint32_t v, NewString(bytes ? Kind::kBytes : Kind::kStr, s, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case ')':     // EMPTY_TUPLE
      case ']':     // EMPTY_LIST
      case '}':     // EMPTY_DICT
      case 0x8f: {  // EMPTY_SET
        const Kind k = op == ')'   ? Kind::kTuple
                       : op == ']' ? Kind::kList
                       : op == '}' ? Kind::kDict
                                   : Kind::kSet;
        ASSIGN_OR_RETURN(uint32_t v, NewSeq(k, nullptr, 0, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 't': RETURN_IF_ERROR(MarkedSeq(Kind::kTuple, at)); break;   // TUPLE
      case 'l': RETURN_IF_ERROR(MarkedSeq(Kind::kList, at)); break;    // LIST
      case 'd': RETURN_IF_ERROR(MarkedSeq(Kind::kDict, at)); break;    // DICT
      case 0x91: RETURN_IF_ERROR(MarkedSeq(Kind::kSet, at)); break;    // FROZENSET
      case 0x85: RETURN_IF_ERROR(TopSeq(Kind::kTuple, 1, at)); break;  // TUPLE1
      case 0x86: RETURN_IF_ERROR(TopSeq(Kind::kTuple, 2, at)); break;  // TUPLE2
      case 0x87: RETURN_IF_ERROR(TopSeq(Kind::kTuple, 3, at)); break;  // TUPLE3
      case 'a': {                                                      // APPEND
        ASSIGN_OR_RETURN(uint32_t item, Pop(at));
        ASSIGN_OR_RETURN(uint32_t target, Top(at));
        ASSIGN_OR_RETURN(std::vector<uint32_t> * seq, Target(target, at, false));
        RETURN_IF_ERROR(CountElements(1, at));
        seq->push_back(item);
        break;
      }
      case 's': {  // SETITEM
        ASSIGN_OR_RETURN(uint32_t value, Pop(at));
        ASSIGN_OR_RETURN(uint32_t key, Pop(at));
        ASSIGN_OR_RETURN(uint32_t target, Top(at));
        ASSIGN_OR_RETURN(std::vector<uint32_t> * seq, Target(target, at, true));
        RETURN_IF_ERROR(CountElements(2, at));
        seq->push_back(key);
        seq->push_back(value);
        break;
      }
      case 'e': RETURN_IF_ERROR(AddItems(false, at)); break;   // APPENDS
      case 'u': RETURN_IF_ERROR(AddItems(true, at)); break;    // SETITEMS
      case 0x90: RETURN_IF_ERROR(AddItems(false, at)); break;  // ADDITEMS
      case 'c': {                                              // GLOBAL
        ASSIGN_OR_RETURN(std::string_view module, Line(pos, at));
        ASSIGN_OR_RETURN(std::string_view name, Line(pos, at));
        ASSIGN_OR_RETURN(uint32_t v, MakeGlobal(module, name, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ASSIGN_OR_RETURN(uint32_t name, Pop(at));
        ASSIGN_OR_RETURN(uint32_t module, Pop(at));
        if (values_[name].kind != Kind::kStr || values_[module].kind != Kind::kStr)
          return Err(at, "STACK_GLOBAL with a module or name that is not a string");
        values_[name].consumed = values_[module].consumed = true;
        ASSIGN_OR_RETURN(uint32_t v, MakeGlobal(Str(module), Str(name), at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'i': {  // INST: module and name lines, then arguments since MARK
        ASSIGN_OR_RETURN(std::string_view module, Line(pos, at));
        ASSIGN_OR_RETURN(std::string_view name, Line(pos, at));
        ASSIGN_OR_RETURN(uint32_t cls, MakeGlobal(module, name, at));
        ASSIGN_OR_RETURN(size_t start, MarkStart(at));
        ASSIGN_OR_RETURN(uint32_t args,
                         NewSeq(Kind::kTuple, stack_.data() + start, stack_.size() - start, at));
        DropMark(start);
        ASSIGN_OR_RETURN(uint32_t v, Call(cls, args, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'o': {  // OBJ: class and arguments since MARK
        ASSIGN_OR_RETURN(size_t start, MarkStart(at));
        if (stack_.size() == start) return Err(at, "OBJ without a class");
        const uint32_t cls = stack_[start];
        ASSIGN_OR_RETURN(uint32_t args, NewSeq(Kind::kTuple, stack_.data() + start + 1,
                                               stack_.size() - start - 1, at));
        DropMark(start);
        ASSIGN_OR_RETURN(uint32_t v, Call(cls, args, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'R':     // REDUCE
      case 0x81: {  // NEWOBJ
        ASSIGN_OR_RETURN(uint32_t args, Pop(at));
        ASSIGN_OR_RETURN(uint32_t callable, Pop(at));
        ASSIGN_OR_RETURN(uint32_t v, Call(callable, args, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 0x92: {  // NEWOBJ_EX
        ASSIGN_OR_RETURN(uint32_t kwargs, Pop(at));
        (void)kwargs;
        ASSIGN_OR_RETURN(uint32_t args, Pop(at));
        ASSIGN_OR_RETURN(uint32_t cls, Pop(at));
        ASSIGN_OR_RETURN(uint32_t v, Call(cls, args, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'b': {  // BUILD
        ASSIGN_OR_RETURN(uint32_t state, Pop(at));
        ASSIGN_OR_RETURN(uint32_t target, Top(at));
        if (values_[target].kind == Kind::kObject) objs_[values_[target].ref].state = state;
        break;
      }
      case 'P':     // PERSID: an object the consumer's unpickler supplies
      case 'Q':     // BINPERSID
      case 0x97: {  // NEXT_BUFFER: an out-of-band buffer (not in the file)
        if (op == 'P') {
          ASSIGN_OR_RETURN(std::string_view line, Line(pos, at));
          (void)line;
        } else if (op == 'Q') {
          ASSIGN_OR_RETURN(uint32_t pid, Pop(at));
          (void)pid;
        }
        ASSIGN_OR_RETURN(uint32_t v, NewObject(kNoValue, kNoValue, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 0x98: {  // READONLY_BUFFER
        ASSIGN_OR_RETURN(uint32_t v, Top(at));
        (void)v;
        break;
      }
      case 0x82:    // EXT1
      case 0x83:    // EXT2
      case 0x84: {  // EXT4
        const size_t n = op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
        ASSIGN_OR_RETURN(std::string_view s, Take(pos, n, at));
        const std::string key = "extension code " + std::to_string(LeN(U(s), n));
        if (bad_globals_.insert(key).second && bad_globals_.size() <= kMaxGlobalFindings)
          em_.Find("type", "pickle opcode at byte " + std::to_string(at), static_cast<int64_t>(at),
                   1, true,
                   "pickle imports whatever the consumer's copyreg registry maps " + key +
                       " to: it cannot be checked");
        ASSIGN_OR_RETURN(uint32_t v, NewObject(kNoValue, kNoValue, at));
        RETURN_IF_ERROR(Push(v, at));
        break;
      }
      case 'g':    // GET
      case 'p': {  // PUT
        ASSIGN_OR_RETURN(std::string_view line, Line(pos, at));
        ASSIGN_OR_RETURN(uint64_t key, MemoIndex(line, at));
        RETURN_IF_ERROR(op == 'g' ? Get(key, at) : Put(key, at));
        break;
      }
      case 'h':    // BINGET
      case 'j':    // LONG_BINGET
      case 'q':    // BINPUT
      case 'r': {  // LONG_BINPUT
        const size_t n = (op == 'h' || op == 'q') ? 1 : 4;
        ASSIGN_OR_RETURN(std::string_view s, Take(pos, n, at));
        const uint64_t key = LeN(U(s), n);
        RETURN_IF_ERROR((op == 'h' || op == 'j') ? Get(key, at) : Put(key, at));
        break;
      }
      case 0x94:  // MEMOIZE
        RETURN_IF_ERROR(Put(memo_.size(), at));
        break;
      case 0x80: {  // PROTO
        ASSIGN_OR_RETURN(std::string_view s, Take(pos, 1, at));
        if (U(s)[0] > 5) return Err(at, "unsupported protocol " + std::to_string(U(s)[0]));
        break;
      }
      case 0x95: {  // FRAME: a length prefix for what follows (read through)
        ASSIGN_OR_RETURN(std::string_view s, Take(pos, 8, at));
        if (LeN(U(s), 8) > b_.size() - pos) return Err(at, "FRAME runs past the end of the file");
        break;
      }
      default: return Err(at, "unknown opcode 0x" + Hex(op));
    }
  }
}

std::optional<std::vector<uint64_t>> PickleWalker::IntTuple(uint32_t v) const {
  const std::vector<uint32_t>* seq = SeqOf(v);
  if (!seq || (values_[v].kind != Kind::kTuple && values_[v].kind != Kind::kList) ||
      seq->size() > kMaxNpyDims)
    return std::nullopt;
  std::vector<uint64_t> out;
  for (uint32_t d : *seq) {
    const Value& x = values_[d];
    if (x.kind != Kind::kInt || x.inexact || x.num < 0) return std::nullopt;
    out.push_back(static_cast<uint64_t>(x.num));
  }
  return out;
}

// numpy.dtype('f8', False, True) with BUILD state (3, '<', ...).
std::optional<DType> PickleWalker::NumpyDType(uint32_t v) {
  if (v == kNoValue || values_[v].kind != Kind::kObject) return std::nullopt;
  const Object& o = objs_[values_[v].ref];
  if (!IsGlobal(o.callable, "numpy", "dtype")) return std::nullopt;
  const std::vector<uint32_t>* args = TupleOf(o.args);
  if (!args || args->empty() || values_[(*args)[0]].kind != Kind::kStr) return std::nullopt;
  char order = '|';
  const std::vector<uint32_t>* state = TupleOf(o.state);
  if (state && state->size() >= 2 && values_[(*state)[1]].kind == Kind::kStr &&
      Str((*state)[1]).size() == 1)
    order = Str((*state)[1])[0];
  auto t = ParseTypeString(Str((*args)[0]), order);
  if (!t.ok()) return std::nullopt;
  return *t;
}

// numpy arrays as numpy pickles them: _reconstruct(ndarray, (0,), b'b')
// then BUILD (version, shape, dtype, is_fortran, raw bytes); or, protocol 5,
// _frombuffer(buffer, dtype, shape, order).
void PickleWalker::RecogniseNumpy(uint32_t v) {
  const Object& o = objs_[values_[v].ref];
  uint32_t shape_v = kNoValue, dtype_v = kNoValue, data_v = kNoValue;
  bool fortran = false;
  if (IsGlobal(o.callable, "numpy.core.multiarray", "_reconstruct") ||
      IsGlobal(o.callable, "numpy._core.multiarray", "_reconstruct")) {
    const std::vector<uint32_t>* st = TupleOf(o.state);
    if (!st || (st->size() != 5 && st->size() != 4)) return;
    const size_t k = st->size() - 4;  // version 1 has a leading version number
    shape_v = (*st)[k];
    dtype_v = (*st)[k + 1];
    fortran = values_[(*st)[k + 2]].num != 0;
    data_v = (*st)[k + 3];
  } else if (IsGlobal(o.callable, "numpy.core.numeric", "_frombuffer") ||
             IsGlobal(o.callable, "numpy._core.numeric", "_frombuffer")) {
    const std::vector<uint32_t>* a = TupleOf(o.args);
    if (!a || a->size() != 4) return;
    data_v = (*a)[0];
    dtype_v = (*a)[1];
    shape_v = (*a)[2];
    fortran = values_[(*a)[3]].kind == Kind::kStr && Str((*a)[3]) == "F";
    values_[(*a)[3]].consumed = true;
  } else if (IsGlobal(o.callable, "numpy.core.multiarray", "scalar") ||
             IsGlobal(o.callable, "numpy._core.multiarray", "scalar")) {
    // One number: nothing to memorise; its raw bytes are not a blob to scan.
    const std::vector<uint32_t>* a = TupleOf(o.args);
    if (a && a->size() == 2 && values_[(*a)[1]].kind == Kind::kBytes)
      values_[(*a)[1]].consumed = true;
    return;
  } else {
    return;
  }
  std::optional<std::vector<uint64_t>> shape = IntTuple(shape_v);
  std::optional<DType> dt = NumpyDType(dtype_v);
  if (!shape || !dt) return;
  const std::string location = "pickle ndarray at byte " + std::to_string(values_[v].offset);
  const Value& data = values_[data_v];
  if (data.kind == Kind::kList && dt->kind == 'O') {
    // An object array: its elements are pickled values, laid out by shape.
    values_[shape_v].consumed = true;
    values_[data_v].consumed = true;  // its strings are still handed on one by one
    const std::vector<uint32_t>& items = seqs_[data.ref];
    if (!std::all_of(items.begin(), items.end(), [&](uint32_t x) { return IsScalar(x); })) return;
    const uint64_t row = shape->size() >= 2 && shape->back() > 0 ? shape->back() : 1;
    // Elements may all be references to one long string: size first.
    if (!FitsBudget(items.data(), items.size(), 1, values_[v].offset)) return;
    std::string text;
    for (size_t i = 0; i < items.size(); ++i) {
      text += ScalarText(items[i]);
      text += (i + 1) % row == 0 ? '\n' : ',';
    }
    em_.Text(values_[v].offset, location, std::move(text));
    return;
  }
  if (data.kind != Kind::kBytes && data.kind != Kind::kStr) return;
  const std::optional<uint64_t> count = ElementCount(*shape);
  uint64_t need = 0;
  if (!count || __builtin_mul_overflow(*count, dt->size, &need) || need != Str(data_v).size())
    return;  // inconsistent: numpy would refuse it; its bytes are scanned as a blob
  if (!dt->numeric() && dt->kind != 'U' && dt->kind != 'S') return;
  Consume(o.state);
  Consume(o.args);
  values_[shape_v].consumed = true;
  values_[data_v].consumed = true;
  EmitArray(em_, Str(data_v), *dt, std::move(*shape), fortran, values_[v].offset, location);
}

void PickleWalker::FlushBatch() {
  if (batch_.empty()) return;
  em_.Text(batch_at_, "pickle strings from opcode at byte " + std::to_string(batch_at_),
           std::move(batch_));
  batch_.clear();
}

void PickleWalker::EmitString(uint32_t v) {
  const Value& x = values_[v];
  const std::string_view s = Str(v);
  if (s.empty()) return;
  if (spans_ < kMaxSingleSpans) {
    ++spans_;
    em_.Text(x.offset, "pickle opcode at byte " + std::to_string(x.offset), std::string(s));
    return;
  }
  if (batch_.empty()) batch_at_ = x.offset;
  batch_.append(s);
  batch_ += '\n';
  if (batch_.size() >= kBatchSpanBytes) FlushBatch();
}

void PickleWalker::Extract() {
  // numpy's own bookkeeping (dtype arguments and state, _reconstruct's
  // placeholder arguments) is not content.
  for (const Value& value : values_) {
    if (value.kind != Kind::kObject) continue;
    const Object& o = objs_[value.ref];
    if (IsGlobal(o.callable, "numpy", "dtype")) {
      Consume(o.args);
      Consume(o.state);
    } else if (IsGlobal(o.callable, "numpy.core.multiarray", "_reconstruct") ||
               IsGlobal(o.callable, "numpy._core.multiarray", "_reconstruct")) {
      Consume(o.args);
    }
  }
  for (uint32_t v = 0; v < values_.size(); ++v)
    if (values_[v].kind == Kind::kObject) RecogniseNumpy(v);

  // Numbers in lists and tuples: a list of equal-length number lists is a
  // 2-D array (rows are records), then the remaining number lists 1-D.
  auto numeric_seq = [&](uint32_t v) -> const std::vector<uint32_t>* {
    const Value& x = values_[v];
    if ((x.kind != Kind::kList && x.kind != Kind::kTuple) || x.consumed) return nullptr;
    const std::vector<uint32_t>& seq = seqs_[x.ref];
    if (seq.empty()) return nullptr;
    for (uint32_t e : seq)
      if (!IsNumber(e)) return nullptr;
    return &seq;
  };
  for (uint32_t v = 0; v < values_.size(); ++v) {
    const Value& x = values_[v];
    if ((x.kind != Kind::kList && x.kind != Kind::kTuple) || x.consumed) continue;
    const std::vector<uint32_t>& rows = seqs_[x.ref];
    if (rows.empty() || rows.size() > kMaxPickleElements) continue;
    const std::vector<uint32_t>* first = numeric_seq(rows[0]);
    if (!first) continue;
    const size_t width = first->size();
    bool ok = true;
    for (uint32_t r : rows) {
      const std::vector<uint32_t>* row = r == v ? nullptr : numeric_seq(r);
      if (!row || row->size() != width) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    const std::string location = "pickle list at byte " + std::to_string(x.offset);
    NumericArray arr;
    arr.file = em_.item().path;
    arr.location = location;
    arr.shape = {rows.size(), width};
    const uint64_t take = em_.TakeValues(uint64_t{rows.size()} * width, location);
    arr.values.reserve(take);
    for (uint32_t r : rows) {
      for (uint32_t e : seqs_[values_[r].ref]) {
        if (arr.values.size() >= take) break;
        arr.values.push_back(values_[e].num);
      }
      values_[r].consumed = true;
    }
    values_[v].consumed = true;
    em_.out()->arrays.push_back(std::move(arr));
  }
  for (uint32_t v = 0; v < values_.size(); ++v) {
    const std::vector<uint32_t>* seq = numeric_seq(v);
    if (!seq || seq->size() < 2) continue;
    const std::string location = "pickle list at byte " + std::to_string(values_[v].offset);
    NumericArray arr;
    arr.file = em_.item().path;
    arr.location = location;
    arr.shape = {seq->size()};
    const uint64_t take = em_.TakeValues(seq->size(), location);
    for (size_t i = 0; i < take; ++i) arr.values.push_back(values_[(*seq)[i]].num);
    em_.out()->arrays.push_back(std::move(arr));
  }

  // Text: every string; records (short sequences of scalars holding a
  // string, a dict's values) as one line, so a copied row is seen as a row;
  // bytes that are text as text, binary bytes as blobs.
  for (uint32_t v = 0; v < values_.size(); ++v) {
    const Value& x = values_[v];
    if (x.consumed) continue;
    if (x.kind == Kind::kStr || x.kind == Kind::kBytes) {
      if (IsText(Str(v))) {
        EmitString(v);
      } else {
        em_.Blob(Str(v), "bytes@" + std::to_string(x.offset),
                 "pickle opcode at byte " + std::to_string(x.offset), x.offset);
      }
    } else if (x.kind == Kind::kList || x.kind == Kind::kTuple || x.kind == Kind::kDict) {
      const std::vector<uint32_t>& seq = seqs_[x.ref];
      const size_t step = x.kind == Kind::kDict ? 2 : 1;
      const size_t first = x.kind == Kind::kDict ? 1 : 0;
      if (seq.size() / step < 2 || seq.size() / step > kMaxRecordElements) continue;
      bool scalars = true, has_string = false;
      for (size_t i = first; i < seq.size() && scalars; i += step) {
        scalars = IsScalar(seq[i]);
        has_string = has_string || values_[seq[i]].kind == Kind::kStr;
      }
      if (!scalars || !has_string) continue;
      if (!FitsBudget(seq.data() + first, seq.size() - first, step, x.offset)) break;
      std::string line;
      for (size_t i = first; i < seq.size(); i += step) {
        if (i != first) line += ',';
        line += ScalarText(seq[i]);
      }
      em_.Text(x.offset, "pickle record at byte " + std::to_string(x.offset), std::move(line));
    }
  }
  FlushBatch();
  em_.FlushBlobs("pickle-short-bytes");
}

}  // namespace

Status ParsePickle(const Item& item, ParseContext& ctx, Parsed* out) {
  Emitter em(item, ctx, out);
  PickleWalker walker(em);
  RETURN_IF_ERROR(walker.Walk());
  walker.Extract();
  return Status::Ok();
}

namespace {

// ---------------------------------------------------------------------------
// SQLite.

struct SqliteHeader {
  uint32_t page_size = 0;
  uint32_t usable = 0;  // page_size minus the reserved bytes at each page's end
  uint32_t pages = 0;   // pages that belong to the database
  uint32_t freelist_trunk = 0;
  bool auto_vacuum = false;
};

// The 100-byte header, checked before SQLite sees the bytes. Errors name
// the byte.
StatusOr<SqliteHeader> CheckSqliteHeader(std::string_view b) {
  static constexpr std::string_view kMagic("SQLite format 3\0", 16);
  if (b.size() < 100 || b.substr(0, 16) != kMagic)
    return Bad("SQLite", 0, "expected the magic 'SQLite format 3' and a 100-byte header");
  const u8* p = U(b);
  SqliteHeader h;
  const uint32_t raw_size = Be16(p + 16);
  h.page_size = raw_size == 1 ? 65536 : raw_size;
  if (h.page_size < 512 || h.page_size > 65536 || (h.page_size & (h.page_size - 1)) != 0)
    return Bad(
        "SQLite", 16,
        "page size " + std::to_string(raw_size) + " is not a power of two between 512 and 65536");
  if ((p[18] != 1 && p[18] != 2) || (p[19] != 1 && p[19] != 2))
    return Bad("SQLite", 18, "file format versions are not 1 (legacy) or 2 (WAL)");
  if (p[21] != 64 || p[22] != 32 || p[23] != 32)
    return Bad("SQLite", 21, "payload fractions are not 64, 32, 32");
  const uint32_t reserved = p[20];
  if (h.page_size - reserved < 480)
    return Bad("SQLite", 20, "reserved bytes per page leave under 480 usable bytes");
  h.usable = h.page_size - reserved;
  if (b.size() % h.page_size != 0)
    return Bad("SQLite", 0,
               "file size " + std::to_string(b.size()) + " is not a multiple of the page size " +
                   std::to_string(h.page_size));
  const uint64_t file_pages = b.size() / h.page_size;
  if (file_pages > std::numeric_limits<uint32_t>::max() - 1)
    return Bad("SQLite", 28, "too many pages");
  h.pages = static_cast<uint32_t>(file_pages);
  const uint32_t header_pages = Be32(p + 28);
  // The header's page count is valid when the change counter matches the
  // version-valid-for number (SQLite 3.7.0 and later); else the file size is.
  if (header_pages != 0 && Be32(p + 24) == Be32(p + 92)) {
    if (header_pages > file_pages)
      return Bad("SQLite", 28,
                 "the header says " + std::to_string(header_pages) + " pages, the file holds " +
                     std::to_string(file_pages));
    h.pages = header_pages;
  }
  const uint32_t encoding = Be32(p + 56);
  if (encoding > 3)
    return Bad("SQLite", 56, "text encoding " + std::to_string(encoding) + " unknown");
  const uint32_t schema_format = Be32(p + 44);
  if (schema_format > 4)
    return Bad("SQLite", 44, "schema format " + std::to_string(schema_format) + " unknown");
  h.freelist_trunk = Be32(p + 32);
  if (h.freelist_trunk > h.pages) return Bad("SQLite", 32, "freelist trunk page past the end");
  h.auto_vacuum = Be32(p + 52) != 0;
  return h;
}

// SQLite's varint: 1-9 bytes, big-endian 7 bits each, the 9th byte whole.
bool ReadVarint(const u8* p, size_t avail, uint64_t* v, size_t* len) {
  uint64_t x = 0;
  for (size_t i = 0; i < 9; ++i) {
    if (i >= avail) return false;
    if (i == 8) {
      x = x << 8 | p[i];
      *v = x;
      *len = 9;
      return true;
    }
    x = x << 7 | (p[i] & 0x7F);
    if ((p[i] & 0x80) == 0) {
      *v = x;
      *len = i + 1;
      return true;
    }
  }
  return false;
}

struct Region {
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Carving: an intact record (header size, serial types, values) inside
// unused bytes is a deleted or stale row; it is handed on as one line,
// values joined by ',', so the copy detector sees it as a row. Bounded by
// kMaxCarveHeader bytes tried per offset and kCarveWork steps per file.
constexpr uint64_t kMaxCarveHeader = 64;
constexpr uint64_t kCarveWork = uint64_t{64} << 20;

// The record at p[0..n) if one starts there: its size, and its line.
size_t CarveRecord(const u8* p, size_t n, uint64_t* work, std::string* line) {
  uint64_t header = 0;
  size_t len = 0;
  if (!ReadVarint(p, n, &header, &len) || header < 3 || header > kMaxCarveHeader || header > n)
    return 0;
  uint64_t types[kMaxCarveHeader];
  size_t columns = 0;
  uint64_t body = 0;
  size_t at = len;
  bool text = false;
  while (at < header) {
    ++*work;
    uint64_t t = 0;
    if (!ReadVarint(p + at, header - at, &t, &len) || t == 10 || t == 11) return 0;
    at += len;
    static constexpr uint64_t kIntSize[] = {0, 1, 2, 3, 4, 6, 8, 8, 0, 0};
    const uint64_t size = t < 10 ? kIntSize[t] : (t - 12 - (t & 1)) / 2;
    if (size > n) return 0;
    body += size;
    text = text || (t >= 13 && (t & 1) && size > 0);
    types[columns++] = t;
  }
  if (at != header || columns < 2 || !text || header + body > n) return 0;
  std::string out;
  const u8* v = p + header;
  for (size_t c = 0; c < columns; ++c) {
    const uint64_t t = types[c];
    if (c) out += ',';
    if (t >= 1 && t <= 6) {
      static constexpr size_t kSize[] = {0, 1, 2, 3, 4, 6, 8};
      uint64_t raw = 0;
      for (size_t k = 0; k < kSize[t]; ++k) raw = raw << 8 | v[k];
      const auto shift = static_cast<unsigned>(64 - 8 * kSize[t]);
      out += std::to_string(static_cast<int64_t>(raw << shift) >> shift);
      v += kSize[t];
    } else if (t == 7) {
      out += FormatDouble(LoadScalar(v, 'f', 8, true));
      v += 8;
    } else if (t == 8 || t == 9) {
      out += t == 8 ? '0' : '1';
    } else if (t >= 12) {
      const uint64_t size = (t - 12 - (t & 1)) / 2;
      const std::string_view value(reinterpret_cast<const char*>(v), size);
      if (t & 1) {
        if (!IsText(value)) return 0;
        out.append(value);
      }
      v += size;
    }
  }
  *line += out;
  *line += '\n';
  return static_cast<size_t>(header + body);
}

// Walks the pages and lists the bytes SQLite does not use: freelist pages,
// the gap between a b-tree page's cell pointers and its cells, freeblocks
// (what a DELETE leaves behind), the unused tail of the last overflow page,
// reserved bytes at page ends, pages nothing refers to, and pages after the
// database's end. Each page is visited at most once.
class SqlitePageWalk {
 public:
  SqlitePageWalk(std::string_view b, const SqliteHeader& h)
      : b_(b), h_(h), role_(static_cast<size_t>(h.pages) + 1, kUnknown) {}

  Status Run(const std::vector<uint32_t>& roots) {
    if (h_.auto_vacuum) {
      // Pointer-map pages: page 2, then every usable/5 + 1 pages.
      const uint64_t step = h_.usable / 5 + 1;
      for (uint64_t pg = 2; pg <= h_.pages; pg += step) role_[pg] = kPtrMap;
    }
    const uint64_t lock_page = (uint64_t{1} << 30) / h_.page_size + 1;
    if (lock_page <= h_.pages) role_[lock_page] = kPtrMap;
    RETURN_IF_ERROR(WalkFreelist());
    RETURN_IF_ERROR(WalkBtree(1));
    for (uint32_t r : roots)
      if (r >= 1 && r <= h_.pages && role_[r] == kUnknown) RETURN_IF_ERROR(WalkBtree(r));
    for (uint64_t pg = 1; pg <= h_.pages; ++pg) {
      if (role_[pg] == kUnknown) Add(PageAt(pg), h_.usable);  // a page nothing uses
      if (h_.usable < h_.page_size) Add(PageAt(pg) + h_.usable, h_.page_size - h_.usable);
    }
    // Bytes 72..91 of the header are reserved and zero.
    Add(72, 20);
    return Status::Ok();
  }

  const std::vector<Region>& regions() const { return regions_; }

 private:
  enum Role : uint8_t { kUnknown, kBtree, kFree, kOverflow, kPtrMap };

  uint64_t PageAt(uint64_t pg) const { return (pg - 1) * h_.page_size; }
  const u8* Page(uint64_t pg) const { return U(b_) + PageAt(pg); }
  void Add(uint64_t offset, uint64_t size) {
    if (size > 0) regions_.push_back(Region{offset, size});
  }
  Status Err(uint64_t pg, uint64_t in_page, const std::string& what) const {
    return Bad("SQLite", PageAt(pg) + in_page, "page " + std::to_string(pg) + ": " + what);
  }
  Status Claim(uint64_t pg, Role role, uint64_t from) {
    if (pg < 1 || pg > h_.pages)
      return Err(from, 0, "refers to page " + std::to_string(pg) + ", past the end");
    if (role_[pg] != kUnknown)
      return Err(pg, 0, "used twice (reached again from page " + std::to_string(from) + ")");
    role_[pg] = role;
    return Status::Ok();
  }

  Status WalkFreelist() {
    uint64_t trunk = h_.freelist_trunk;
    while (trunk != 0) {
      RETURN_IF_ERROR(Claim(trunk, kFree, trunk));
      const u8* p = Page(trunk);
      const uint64_t next = Be32(p);
      const uint64_t count = Be32(p + 4);
      if (count > h_.usable / 4 - 2) return Err(trunk, 4, "freelist trunk lists too many pages");
      for (uint64_t i = 0; i < count; ++i) {
        const uint64_t leaf = Be32(p + 8 + 4 * i);
        RETURN_IF_ERROR(Claim(leaf, kFree, trunk));
        Add(PageAt(leaf), h_.usable);  // a freed page keeps what it held
      }
      Add(PageAt(trunk) + 8 + 4 * count, h_.usable - 8 - 4 * count);
      trunk = next;
    }
    return Status::Ok();
  }

  Status WalkOverflow(uint64_t first, uint64_t remaining, uint64_t from) {
    uint64_t pg = first;
    const uint64_t per_page = h_.usable - 4;
    while (remaining > 0) {
      RETURN_IF_ERROR(Claim(pg, kOverflow, from));
      const uint64_t here = std::min(remaining, per_page);
      remaining -= here;
      if (remaining == 0) {
        Add(PageAt(pg) + 4 + here, per_page - here);
        break;
      }
      from = pg;
      pg = Be32(Page(pg));
    }
    return Status::Ok();
  }

  Status WalkBtree(uint64_t root) {
    std::vector<uint64_t> pending = {root};
    RETURN_IF_ERROR(Claim(root, kBtree, root));
    while (!pending.empty()) {
      const uint64_t pg = pending.back();
      pending.pop_back();
      const u8* page = Page(pg);
      const uint64_t ho = pg == 1 ? 100 : 0;
      const uint64_t u = h_.usable;
      const u8 type = page[ho];
      if (type != 2 && type != 5 && type != 10 && type != 13)
        return Err(pg, ho, "b-tree page type " + std::to_string(type) + " unknown");
      const bool interior = type == 2 || type == 5;
      const uint64_t hdr = interior ? 12 : 8;
      const uint64_t cells = Be16(page + ho + 3);
      uint64_t content = Be16(page + ho + 5);
      if (content == 0) content = 65536;
      const uint64_t ptr_end = ho + hdr + 2 * cells;
      if (ptr_end > content || content > u)
        return Err(pg, ho, "cell pointers and cell content overlap or run past the page");
      Add(PageAt(pg) + ptr_end, content - ptr_end);  // never written since the page was made
      // Freeblocks: ascending chain inside the content area.
      uint64_t fb = Be16(page + ho + 1);
      uint64_t prev = 0;
      while (fb != 0) {
        if (fb <= prev || fb < content || fb + 4 > u)
          return Err(pg, fb, "freeblock chain is corrupt");
        const uint64_t size = Be16(page + fb + 2);
        if (size < 4 || fb + size > u) return Err(pg, fb, "freeblock size is corrupt");
        Add(PageAt(pg) + fb + 4, size - 4);  // a deleted cell's bytes
        prev = fb;
        fb = Be16(page + fb);
      }
      if (interior) {
        const uint64_t right = Be32(page + ho + 8);
        RETURN_IF_ERROR(Claim(right, kBtree, pg));
        pending.push_back(right);
      }
      for (uint64_t i = 0; i < cells; ++i) {
        uint64_t off = Be16(page + ho + hdr + 2 * i);
        if (off < content || off >= u)
          return Err(pg, ho + hdr + 2 * i, "cell pointer out of range");
        if (interior) {
          if (off + 4 > u) return Err(pg, off, "cell runs past the page");
          const uint64_t child = Be32(page + off);
          RETURN_IF_ERROR(Claim(child, kBtree, pg));
          pending.push_back(child);
          off += 4;
        }
        if (type == 5) continue;  // table interior: child and rowid only
        uint64_t payload = 0, rowid = 0;
        size_t len = 0;
        if (!ReadVarint(page + off, u - off, &payload, &len)) return Err(pg, off, "bad varint");
        off += len;
        if (type == 13) {
          if (!ReadVarint(page + off, u - off, &rowid, &len)) return Err(pg, off, "bad varint");
          off += len;
        }
        // How much of the payload is on the page (the file format's rule).
        const uint64_t max_local = type == 13 ? u - 35 : (u - 12) * 64 / 255 - 23;
        const uint64_t min_local = (u - 12) * 32 / 255 - 23;
        if (payload <= max_local) {
          if (off + payload > u) return Err(pg, off, "cell payload runs past the page");
          continue;
        }
        const uint64_t k = min_local + (payload - min_local) % (u - 4);
        const uint64_t local = k <= max_local ? k : min_local;
        if (off + local + 4 > u) return Err(pg, off, "cell payload runs past the page");
        const uint64_t first = Be32(page + off + local);
        RETURN_IF_ERROR(WalkOverflow(first, payload - local, pg));
      }
    }
    return Status::Ok();
  }

  std::string_view b_;
  const SqliteHeader& h_;
  std::vector<Role> role_;
  std::vector<Region> regions_;
};

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Only reading tables and the two pragmas we run; no functions, no ATTACH,
// nothing that writes. (The schema itself is parsed without the authorizer,
// but not executed: views and triggers are disabled and never queried.)
int Authorize(void*, int action, const char* arg1, const char*, const char*, const char*) {
  switch (action) {
    case SQLITE_READ:
    case SQLITE_SELECT: return SQLITE_OK;
    case SQLITE_PRAGMA:
      return arg1 && (std::strcmp(arg1, "quick_check") == 0 || std::strcmp(arg1, "query_only") == 0)
                 ? SQLITE_OK
                 : SQLITE_DENY;
    default: return SQLITE_DENY;
  }
}

struct StepBudget {
  uint64_t calls = 0;
  uint64_t max = 0;
};
constexpr int kProgressOps = 1000;  // VM instructions between progress callbacks
int OnProgress(void* arg) {
  auto* budget = static_cast<StepBudget*>(arg);
  return ++budget->calls > budget->max ? 1 : 0;
}

Status SqliteError(sqlite3* db, const StepBudget& budget, const std::string& what) {
  if (budget.calls > budget.max)
    return InvalidArgument("SQLite: " + what +
                           ": needs more than the step budget to read; too large or complex to "
                           "check");
  return InvalidArgument("SQLite: " + what + ": " + sqlite3_errmsg(db));
}

StatusOr<Stmt> Prepare(sqlite3* db, const StepBudget& budget, const std::string& sql,
                       const std::string& what) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr);
  Stmt stmt(raw);
  if (rc != SQLITE_OK || !stmt) return SqliteError(db, budget, what);
  return stmt;
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

// Opens a private read-only in-memory copy, hardened before the bytes are
// attached.
StatusOr<Db> OpenHardened(std::string_view bytes, const Policy& policy, StepBudget* budget) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      ":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK || !db) return Internal("SQLite: cannot open an in-memory database");
  sqlite3* d = db.get();
  int ignored = 0;
  const std::pair<int, int> configs[] = {
      {SQLITE_DBCONFIG_DEFENSIVE, 1},
      {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0},
      {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0},
      {SQLITE_DBCONFIG_ENABLE_TRIGGER, 0},
      {SQLITE_DBCONFIG_ENABLE_VIEW, 0},
      {SQLITE_DBCONFIG_ENABLE_FKEY, 0},
      {SQLITE_DBCONFIG_DQS_DDL, 0},
      {SQLITE_DBCONFIG_DQS_DML, 0},
  };
  for (auto [op, value] : configs) {
    if (sqlite3_db_config(d, op, value, &ignored) != SQLITE_OK)
      return Internal("SQLite: cannot harden the connection (db_config " + std::to_string(op) +
                      ")");
  }
  const int max_length =
      static_cast<int>(std::min<uint64_t>(policy.max_child_bytes, uint64_t{1} << 30));
  const std::pair<int, int> limits[] = {
      {SQLITE_LIMIT_LENGTH, max_length},
      {SQLITE_LIMIT_SQL_LENGTH, 1 << 20},
      {SQLITE_LIMIT_COLUMN, 2000},
      {SQLITE_LIMIT_EXPR_DEPTH, 100},
      {SQLITE_LIMIT_COMPOUND_SELECT, 4},
      {SQLITE_LIMIT_VDBE_OP, 25000},
      {SQLITE_LIMIT_FUNCTION_ARG, 8},
      {SQLITE_LIMIT_ATTACHED, 0},
      {SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 64},
      {SQLITE_LIMIT_VARIABLE_NUMBER, 16},
      {SQLITE_LIMIT_TRIGGER_DEPTH, 1},
      {SQLITE_LIMIT_WORKER_THREADS, 0},
  };
  for (auto [id, value] : limits) sqlite3_limit(d, id, value);
  // Reading is linear in the file; this is generous for that and stops a
  // database crafted to make a statement loop.
  budget->max = 100'000 + bytes.size() / 4;
  sqlite3_progress_handler(d, kProgressOps, OnProgress, budget);

  auto* copy = static_cast<unsigned char*>(sqlite3_malloc64(bytes.size()));
  if (copy == nullptr) return ResourceExhausted("SQLite: out of memory for a private copy");
  std::memcpy(copy, bytes.data(), bytes.size());
  // A WAL-mode file (versions 2/2) reads like a rollback one once the WAL is
  // gone, which it is: the output holds no -wal file we would read.
  if (copy[18] == 2) copy[18] = 1;
  if (copy[19] == 2) copy[19] = 1;
  if (sqlite3_deserialize(d, "main", copy, static_cast<sqlite3_int64>(bytes.size()),
                          static_cast<sqlite3_int64>(bytes.size()),
                          SQLITE_DESERIALIZE_READONLY | SQLITE_DESERIALIZE_FREEONCLOSE) !=
      SQLITE_OK)
    return InvalidArgument(std::string("SQLite: cannot attach the bytes: ") + sqlite3_errmsg(d));
  char* err = nullptr;
  if (sqlite3_exec(d, "PRAGMA query_only=1", nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    return Internal("SQLite: PRAGMA query_only: " + msg);
  }
  sqlite3_set_authorizer(d, Authorize, nullptr);
  return db;
}

struct SchemaEntry {
  std::string type, name, sql;
  int64_t rootpage = 0;
};

}  // namespace

Status ParseSqlite(const Item& item, ParseContext& ctx, Parsed* out) {
  Emitter em(item, ctx, out);
  const std::string_view b = item.bytes;
  ASSIGN_OR_RETURN(SqliteHeader header, CheckSqliteHeader(b));
  StepBudget budget;
  ASSIGN_OR_RETURN(Db db, OpenHardened(b, ctx.policy, &budget));
  sqlite3* d = db.get();

  {  // An inconsistent file is one SQLite and our walk might read differently.
    ASSIGN_OR_RETURN(Stmt check, Prepare(d, budget, "PRAGMA quick_check", "quick_check"));
    std::string problems;
    int rc;
    int rows = 0;
    while ((rc = sqlite3_step(check.get())) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(check.get(), 0));
      const std::string line = text ? text : "";
      if (line != "ok" && ++rows <= 3)
        problems += (problems.empty() ? "" : "; ") + Excerpt(line, 120);
    }
    if (rc != SQLITE_DONE) return SqliteError(d, budget, "quick_check");
    if (!problems.empty()) return InvalidArgument("SQLite: quick_check: " + problems);
  }

  std::vector<SchemaEntry> schema;
  {
    ASSIGN_OR_RETURN(Stmt stmt,
                     Prepare(d, budget, "SELECT type, name, rootpage, sql FROM main.sqlite_master",
                             "reading the schema"));
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      SchemaEntry e;
      auto text = [&](int col) {
        const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), col));
        return t ? std::string(t, static_cast<size_t>(sqlite3_column_bytes(stmt.get(), col)))
                 : std::string();
      };
      e.type = text(0);
      e.name = text(1);
      e.rootpage = sqlite3_column_int64(stmt.get(), 2);
      e.sql = text(3);
      schema.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) return SqliteError(d, budget, "reading the schema");
  }

  // The schema's SQL (tables, views, triggers, indexes) is text: a view or a
  // default value can carry data. It is not executed.
  std::vector<uint32_t> roots;
  for (const SchemaEntry& e : schema) {
    if (e.rootpage > 0 && e.rootpage <= header.pages)
      roots.push_back(static_cast<uint32_t>(e.rootpage));
    em.Text(0, "sqlite_schema: " + e.type + " '" + Excerpt(e.name) + "'", e.sql);
  }

  uint64_t rows_left = kMaxSqliteRows;
  uint64_t cells_left = kMaxSqliteCells;
  for (const SchemaEntry& e : schema) {
    if (e.type != "table") continue;
    // Virtual tables run module code over their shadow tables; the shadow
    // tables are ordinary tables and are read here instead.
    if (e.rootpage == 0) continue;
    const std::string what = "table '" + Excerpt(e.name) + "'";
    ASSIGN_OR_RETURN(Stmt stmt, Prepare(d, budget, "SELECT * FROM main." + QuoteIdentifier(e.name),
                                        "reading " + what));
    Table table;
    table.file = item.path;
    table.name = e.name;
    const int columns = sqlite3_column_count(stmt.get());
    for (int c = 0; c < columns; ++c) {
      const char* n = sqlite3_column_name(stmt.get(), c);
      table.header.emplace_back(n ? n : "");
    }
    int rc;
    bool cut = false;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      if (rows_left == 0 || cells_left < static_cast<uint64_t>(columns)) {
        cut = true;
        break;
      }
      --rows_left;
      cells_left -= static_cast<uint64_t>(columns);
      std::vector<std::string> row;
      row.reserve(static_cast<size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        sqlite3_stmt* s = stmt.get();
        switch (sqlite3_column_type(s, c)) {
          case SQLITE_INTEGER: row.push_back(std::to_string(sqlite3_column_int64(s, c))); break;
          case SQLITE_FLOAT: row.push_back(FormatDouble(sqlite3_column_double(s, c))); break;
          case SQLITE_TEXT: {
            const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
            row.emplace_back(t ? t : "", t ? static_cast<size_t>(sqlite3_column_bytes(s, c)) : 0);
            break;
          }
          case SQLITE_BLOB: {
            const void* p = sqlite3_column_blob(s, c);
            const std::string_view blob(static_cast<const char*>(p),
                                        p ? static_cast<size_t>(sqlite3_column_bytes(s, c)) : 0);
            if (IsText(blob)) {
              row.emplace_back(blob);
            } else {
              row.emplace_back();
              em.Blob(blob, "blob@" + Excerpt(e.name) + ":" + std::to_string(table.rows.size()),
                      what + " row " + std::to_string(table.rows.size() + 1) + " column '" +
                          Excerpt(table.header[static_cast<size_t>(c)]) + "'",
                      0);
            }
            break;
          }
          default: row.emplace_back();
        }
      }
      table.rows.push_back(std::move(row));
      table.row_lines.push_back(0);
    }
    if (!cut && rc != SQLITE_DONE) return SqliteError(d, budget, "reading " + what);
    if (cut)
      em.Find("limits", what, -1, 1, true,
              "the database holds more than " + std::to_string(kMaxSqliteRows) + " rows or " +
                  std::to_string(kMaxSqliteCells) + " cells; " + what + " from row " +
                  std::to_string(table.rows.size() + 1) + " on was not checked");
    out->tables.push_back(std::move(table));
  }
  em.FlushBlobs("sqlite-short-blobs");

  // Unused space, walked by hand: a DELETE leaves the row's bytes in a
  // freeblock or a freelist page until something overwrites them.
  SqlitePageWalk walk(b, header);
  RETURN_IF_ERROR(walk.Run(roots));
  std::string free_bytes;
  std::string runs;
  std::string carved;
  uint64_t carve_work = 0;
  uint64_t nonzero = 0;
  uint64_t regions = 0;
  const uint64_t db_end = uint64_t{header.pages} * header.page_size;
  std::vector<Region> all = walk.regions();
  if (db_end < b.size()) all.push_back(Region{db_end, b.size() - db_end});
  for (const Region& r : all) {
    const std::string_view bytes = b.substr(r.offset, r.size);
    uint64_t nz = 0;
    for (char c : bytes) nz += c != 0;
    if (nz == 0) continue;
    nonzero += nz;
    ++regions;
    free_bytes.append(bytes);
    // Whole records first (a freelist page or a moved cell keeps them
    // intact); then printable runs (as `strings` finds them), one per line,
    // for records whose start a freeblock header overwrote. A run glues a
    // record's text values together ("P-1133Person133 Surname8"), so it is
    // also given split where a digit or lower-case letter meets an
    // upper-case one.
    for (size_t i = 0; i < bytes.size() && carve_work < kCarveWork;) {
      ++carve_work;
      const size_t used = CarveRecord(U(bytes) + i, bytes.size() - i, &carve_work, &carved);
      i += used ? used : 1;
    }
    size_t run_start = 0;
    for (size_t i = 0; i <= bytes.size(); ++i) {
      const u8 c = i < bytes.size() ? static_cast<u8>(bytes[i]) : 0;
      const bool printable = (c >= 0x20 && c < 0x7f) || c >= 0x80 || c == '\t';
      if (printable) continue;
      if (i - run_start >= kMinRunChars) {
        const std::string_view run = bytes.substr(run_start, i - run_start);
        runs.append(run);
        runs += '\n';
        std::string split;
        for (size_t k = 0; k < run.size(); ++k) {
          const char a = k ? run[k - 1] : ' ';
          const char z = run[k];
          if (z >= 'A' && z <= 'Z' && ((a >= '0' && a <= '9') || (a >= 'a' && a <= 'z')))
            split += ' ';
          split += z;
        }
        if (split.size() != run.size()) {
          runs += split;
          runs += '\n';
        }
      }
      run_start = i + 1;
    }
  }
  if (db_end < b.size()) {
    em.Find("covert.sqlite", "byte " + std::to_string(db_end), static_cast<int64_t>(db_end), 1,
            b.size() - db_end > ctx.policy.max_trailing_bytes,
            std::to_string(b.size() - db_end) +
                " bytes after the database's last page (SQLite never reads them)");
  }
  if (nonzero > 0) {
    // Rule: any non-zero unused byte is worth a look (score 0.2, soft): an
    // insert-only database, as pandas.to_sql or the sqlite3 module write it,
    // has some (cells moved by page splits leave copies of live rows in the
    // gap), and those copies are live data anyway. Hold when the non-zero
    // unused bytes exceed both policy.max_trailing_bytes and an eighth of
    // the database: that much dead data is deleted rows or a hidden payload,
    // and its copies (if any) are found by the copy detector on the child.
    const bool hard = nonzero > ctx.policy.max_trailing_bytes && nonzero > db_end / 8;
    em.Find("covert.sqlite", "free space (" + std::to_string(regions) + " regions)", -1,
            hard ? 1 : 0.2, hard,
            std::to_string(nonzero) +
                " non-zero bytes in unused space (freelist pages, freeblocks of deleted rows, "
                "gaps in b-tree pages): scanned as child 'sqlite-free-space'");
    em.Child("sqlite-free-space", "free space (" + std::to_string(regions) + " regions)",
             std::move(free_bytes), 0);
    em.Text(0, "sqlite free space: records carved from unused bytes", std::move(carved));
    em.Text(0, "sqlite free space: printable runs", std::move(runs));
  }
  return Status::Ok();
}

}  // namespace cce::gate
