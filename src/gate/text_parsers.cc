// Text formats: CSV/TSV, JSON and JSON Lines, YAML, plain text (Markdown
// pipe tables, SQL INSERT dumps) and HTML/SVG. Every parser decodes the
// item to UTF-8 first (UTF-8 BOM skipped; UTF-16 LE/BE by BOM or by its NUL
// pattern; invalid encoding is an error naming the byte), never follows a
// reference, and runs in one linear pass without recursion.
//
// Offsets ("byte N") are of the item's bytes for UTF-8 input; for UTF-16
// input they are of the UTF-8 text it decodes to.
//
// CSV header rule: the first row is a header when every cell (trimmed) is
// name-like (starts with a letter, '_' or '#'; letters, digits, space and
// _ . - ( ) [ ] / % # : only; at most 64 characters; no '@') and the cells
// are distinct. Otherwise the header is empty and the first row is data.
// Because a header is not a record for the copy detectors, the header line
// is also handed over as a TextSpan ("line 1 (header)").
//
// Encoded runs: the scanner searches TextSpans; tables are not text, so the
// CSV parser searches its whole text itself (children "base64@N", ...).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gate/content.h"

namespace cce::gate {

namespace {

inline uint8_t U(char c) { return static_cast<uint8_t>(c); }
inline bool IsAsciiAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Index of the first invalid UTF-8 byte, or npos.
size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, min = 0x10000;
    } else {
      return i;
    }
    if (i + len > n) return i;
    uint32_t cp = c & (0xFF >> (len + 1));
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

// The item as UTF-8 text.
struct DecodedText {
  std::string_view text;
  std::string storage;  // UTF-16 input decoded
  uint64_t base = 0;    // offset of text[0] in the item (BOM skipped)
  bool over_budget = false;
};

Status DecodeText(const Item& item, const char* format, ParseContext& ctx, Parsed* out,
                  DecodedText* dt) {
  std::string_view b = item.bytes;
  int utf16 = 0;  // 1 LE, 2 BE
  if (b.size() >= 3 && b.substr(0, 3) == "\xEF\xBB\xBF") {
    dt->base = 3;
    b.remove_prefix(3);
  } else if (b.size() >= 2 && U(b[0]) == 0xFF && U(b[1]) == 0xFE) {
    utf16 = 1, dt->base = 2;
  } else if (b.size() >= 2 && U(b[0]) == 0xFE && U(b[1]) == 0xFF) {
    utf16 = 2, dt->base = 2;
  } else if (b.size() >= 4) {
    // No BOM: the NUL pattern of mostly-ASCII UTF-16.
    const size_t probe = std::min<size_t>(b.size(), 4096) & ~size_t{1};
    size_t even_nul = 0, odd_nul = 0;
    for (size_t i = 0; i < probe; i += 2) {
      even_nul += b[i] == 0;
      odd_nul += b[i + 1] == 0;
    }
    const size_t pairs = probe / 2;
    if (odd_nul * 10 >= pairs * 3 && even_nul * 50 <= pairs) utf16 = 1;
    if (even_nul * 10 >= pairs * 3 && odd_nul * 50 <= pairs) utf16 = 2;
  }
  if (utf16 == 0) {
    const size_t bad = FindInvalidUtf8(b);
    if (bad != std::string_view::npos) {
      return InvalidArgument(std::string(format) + ": invalid UTF-8 at byte " +
                             std::to_string(dt->base + bad));
    }
    dt->text = b;
    return Status::Ok();
  }
  b = item.bytes.substr(dt->base);
  if (b.size() % 2) {
    return InvalidArgument(std::string(format) + ": UTF-16 text has an odd number of bytes (" +
                           std::to_string(item.bytes.size()) + ")");
  }
  // UTF-8 is at most 1.5x UTF-16: charge that before decoding.
  const uint64_t need = b.size() / 2 * 3;
  if (need > ctx.expand_budget || need > ctx.policy.max_child_bytes) {
    Finding f;
    f.detector = "encoding.bomb";
    f.file = item.path;
    f.location = "byte 0";
    f.offset = 0;
    f.score = 1;
    f.hard = true;
    f.message = std::string(format) + ": decoding this UTF-16 text would exceed the scan's decoding budget";
    out->findings.push_back(std::move(f));
    dt->over_budget = true;
    return Status::Ok();
  }
  dt->storage.reserve(need);
  for (size_t i = 0; i < b.size(); i += 2) {
    auto unit = [&](size_t k) -> uint32_t {
      return utf16 == 1 ? static_cast<uint32_t>(U(b[k]) | (U(b[k + 1]) << 8))
                        : static_cast<uint32_t>((U(b[k]) << 8) | U(b[k + 1]));
    };
    uint32_t cp = unit(i);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      const uint32_t lo = i + 3 < b.size() ? unit(i + 2) : 0;
      if (lo < 0xDC00 || lo > 0xDFFF) {
        return InvalidArgument(std::string(format) + ": UTF-16 high surrogate without a low one at byte " +
                               std::to_string(dt->base + i));
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      i += 2;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return InvalidArgument(std::string(format) + ": UTF-16 unpaired low surrogate at byte " +
                             std::to_string(dt->base + i));
    }
    AppendUtf8(cp, &dt->storage);
  }
  ctx.expand_budget -= std::min<uint64_t>(ctx.expand_budget, dt->storage.size());
  dt->text = dt->storage;
  dt->base = 0;
  return Status::Ok();
}

TextSpan MakeSpan(const Item& item, uint64_t offset, std::string location, std::string text) {
  TextSpan span;
  span.file = item.path;
  span.offset = offset;
  span.location = std::move(location);
  span.text = std::move(text);
  return span;
}

void PadRows(Table* t) {
  size_t width = t->header.size();
  for (const auto& r : t->rows) width = std::max(width, r.size());
  if (!t->header.empty()) t->header.resize(width);
}

// ------------------------------------------------------------------ CSV --

bool NameLike(std::string_view cell) {
  cell = Trim(cell);
  if (cell.empty() || cell.size() > 64) return false;
  const char f = cell[0];
  if (!(IsAsciiAlpha(f) || f == '_' || f == '#' || U(f) >= 0x80)) return false;
  for (char c : cell) {
    if (IsAsciiAlpha(c) || IsDigit(c) || U(c) >= 0x80) continue;
    if (std::strchr(" _.-()[]/%#:", c) == nullptr || c == 0) return false;
  }
  return true;
}

bool LooksLikeHeader(const std::vector<std::string>& row) {
  if (row.empty()) return false;
  for (const auto& c : row) {
    if (!NameLike(c)) return false;
  }
  std::vector<std::string_view> sorted;
  sorted.reserve(row.size());
  for (const auto& c : row) sorted.push_back(Trim(c));
  std::sort(sorted.begin(), sorted.end());
  return std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
}

// The delimiter among , TAB ; | whose count per line (outside quotes) is the
// most consistent over the first lines; ',' when none occurs.
char SniffDelimiter(std::string_view t) {
  constexpr char kCandidates[] = {',', '\t', ';', '|'};
  constexpr size_t kMaxLines = 50;
  std::vector<std::array<uint32_t, 4>> lines;
  std::array<uint32_t, 4> cur{};
  bool quoted = false;
  const size_t limit = std::min<size_t>(t.size(), 64 * 1024);
  for (size_t i = 0; i < limit && lines.size() < kMaxLines; ++i) {
    const char c = t[i];
    if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && (c == '\n' || c == '\r')) {
      if (c == '\r' && i + 1 < limit && t[i + 1] == '\n') ++i;
      lines.push_back(cur);
      cur = {};
    } else if (!quoted) {
      for (size_t k = 0; k < 4; ++k) cur[k] += c == kCandidates[k];
    }
  }
  if (cur != std::array<uint32_t, 4>{} || lines.empty()) lines.push_back(cur);
  char best = ',';
  size_t best_score = 0;
  uint32_t best_mode = 0;
  for (size_t k = 0; k < 4; ++k) {
    std::unordered_map<uint32_t, size_t> freq;
    for (const auto& l : lines) ++freq[l[k]];
    uint32_t mode = 0;
    size_t mode_lines = 0;
    for (const auto& [count, nlines] : freq) {
      if (count > 0 && (nlines > mode_lines || (nlines == mode_lines && count > mode))) {
        mode = count, mode_lines = nlines;
      }
    }
    if (mode == 0) continue;
    if (mode_lines > best_score || (mode_lines == best_score && mode > best_mode)) {
      best = kCandidates[k], best_score = mode_lines, best_mode = mode;
    }
  }
  return best;
}

}  // namespace

Status ParseCsv(const Item& item, ParseContext& ctx, Parsed* out) {
  DecodedText dt;
  RETURN_IF_ERROR(DecodeText(item, "CSV", ctx, out, &dt));
  if (dt.over_budget) return Status::Ok();
  const std::string_view t = dt.text;
  const char delim = SniffDelimiter(t);
  std::array<bool, 256> stop{};
  stop[U(delim)] = stop['\n'] = stop['\r'] = true;

  Table table;
  table.file = item.path;
  const char* d = t.data();
  const size_t n = t.size();
  size_t pos = 0;
  uint64_t line = 1;
  size_t width = 0;
  size_t header_end = 0;
  bool first_row = true;
  std::vector<std::string> row;
  const size_t lines_estimate = static_cast<size_t>(std::count(d, d + n, '\n')) + 1;
  table.rows.reserve(lines_estimate);
  table.row_lines.reserve(lines_estimate);
  while (pos < n) {
    if (d[pos] == '\n' || d[pos] == '\r') {  // blank line
      if (d[pos] == '\r' && pos + 1 < n && d[pos + 1] == '\n') ++pos;
      ++pos;
      ++line;
      continue;
    }
    const uint64_t row_line = line;
    row.reserve(width);
    for (;;) {
      if (pos < n && d[pos] == '"') {
        const size_t open = pos++;
        std::string cell;
        for (;;) {
          const void* q = pos < n ? std::memchr(d + pos, '"', n - pos) : nullptr;
          if (q == nullptr) {
            return InvalidArgument("CSV: quoted field opened at byte " + std::to_string(dt.base + open) +
                                   " (line " + std::to_string(row_line) + ") is not closed before the end");
          }
          const size_t qi = static_cast<size_t>(static_cast<const char*>(q) - d);
          line += static_cast<uint64_t>(std::count(d + pos, d + qi, '\n'));
          cell.append(d + pos, qi - pos);
          pos = qi + 1;
          if (pos < n && d[pos] == '"') {
            cell.push_back('"');
            ++pos;
            continue;
          }
          break;
        }
        // Tolerated: characters between the closing quote and the delimiter.
        const size_t s = pos;
        while (pos < n && !stop[U(d[pos])]) ++pos;
        cell.append(d + s, pos - s);
        row.push_back(std::move(cell));
      } else {
        const size_t s = pos;
        while (pos < n && !stop[U(d[pos])]) ++pos;
        row.emplace_back(d + s, pos - s);
      }
      if (pos < n && d[pos] == delim) {
        ++pos;
        if (pos >= n) {
          row.emplace_back();
          break;
        }
        continue;
      }
      if (pos < n) {  // end of line
        if (d[pos] == '\r' && pos + 1 < n && d[pos + 1] == '\n') ++pos;
        ++pos;
        ++line;
      }
      break;
    }
    width = std::max(width, row.size());
    if (first_row && LooksLikeHeader(row)) {
      table.header = std::move(row);
      for (auto& h : table.header) h = std::string(Trim(h));
      header_end = pos;
    } else {
      table.rows.push_back(std::move(row));
      table.row_lines.push_back(row_line);
    }
    first_row = false;
    row = {};
  }
  if (!table.header.empty()) {
    out->texts.push_back(MakeSpan(item, dt.base, "line 1 (header)", std::string(t.substr(0, header_end))));
  }
  const size_t search_from = header_end;
  PadRows(&table);
  out->tables.push_back(std::move(table));
  FindEncodedRunsIn(t.substr(search_from), dt.base + search_from, item.path, "", ctx, &out->children,
                    &out->findings);
  return Status::Ok();
}

// ----------------------------------------------------------------- JSON --

namespace {

constexpr size_t kMaxJsonDepth = 256;
constexpr size_t kOwnSpanChars = 16;         // record cells this long also become TextSpans
constexpr size_t kMaxLooseBytes = 1 << 20;   // a container's joined short strings per span

// An input iterator that publishes how far nlohmann's lexer has read, so
// the handler can give strings their byte offsets.
class TrackingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;
  TrackingIterator(const char* p, const char** mirror) : p_(p), mirror_(mirror) {}
  reference operator*() const { return *p_; }
  TrackingIterator& operator++() {
    ++p_;
    *mirror_ = p_;
    return *this;
  }
  TrackingIterator operator++(int) {
    TrackingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const TrackingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const TrackingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  const char** mirror_;
};

struct TableBuild {
  int kind = 0;  // 1: records (objects), 2: rows (arrays)
  std::unordered_map<std::string, size_t> columns;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<uint64_t> row_lines;
  bool first_row_all_strings = true;
  bool later_non_string = false;
};

struct Frame {
  bool is_array = false;
  bool virtual_root = false;  // JSON Lines: the lines as one array
  size_t ptr_len = 0;         // this container's pointer is pointer_[0, ptr_len)
  uint64_t index = 0;
  std::string key;            // object: the current member's key
  int table_frame = -1;       // the array frame whose table this record/row feeds
  int record_frame = -1;      // the record object (for nested, flattened objects)
  bool row_array = false;
  std::string key_prefix;     // flattened nested objects: "outer."
  std::vector<std::string> row;
  bool row_all_strings = true;
  std::unique_ptr<TableBuild> table;
  std::string loose;
  uint64_t loose_offset = 0;
  size_t loose_count = 0;
};

class JsonHandler {
 public:
  JsonHandler(const Item& item, std::string_view text, uint64_t base, Parsed* out)
      : item_(item), text_(text), base_(base), out_(out) {}

  // JSON Lines: all lines are elements of one virtual root array.
  void BeginLines() {
    Frame root;
    root.is_array = true;
    root.virtual_root = true;
    root.table = std::make_unique<TableBuild>();
    frames_.push_back(std::move(root));
  }
  void SetLine(uint64_t line, size_t line_offset) {
    line_ = line;
    line_offset_ = line_offset;
    pointer_.clear();
  }
  void EndLines() {
    if (!frames_.empty()) CloseFrame();
  }

  const char** cursor() { return &cursor_; }
  const std::string& error() const { return error_; }

  // --- nlohmann SAX interface ---
  bool null() { return Scalar("", false); }
  bool boolean(bool v) { return Scalar(v ? "true" : "false", false); }
  bool number_integer(int64_t v) { return Scalar(std::to_string(v), false); }
  bool number_unsigned(uint64_t v) { return Scalar(std::to_string(v), false); }
  bool number_float(double /*v*/, const std::string& text) { return Scalar(text, false); }
  bool binary(nlohmann::json::binary_t& /*v*/) { return true; }
  bool string(std::string& v) { return Scalar(std::move(v), true); }

  bool key(std::string& k) {
    Frame& f = frames_.back();
    pointer_.resize(f.ptr_len);
    pointer_.push_back('/');
    for (char c : k) {
      if (c == '~') {
        pointer_ += "~0";
      } else if (c == '/') {
        pointer_ += "~1";
      } else {
        pointer_.push_back(c);
      }
    }
    if (f.record_frame < 0) AddLoose(&f, k);
    f.key = std::move(k);
    return true;
  }

  bool start_object(size_t /*n*/) { return Open(false); }
  bool end_object() { return CloseFrame(); }
  bool start_array(size_t /*n*/) { return Open(true); }
  bool end_array() { return CloseFrame(); }

  bool parse_error(size_t position, const std::string& /*last_token*/, const nlohmann::detail::exception& ex) {
    if (error_.empty()) {
      std::string what = ex.what();
      const size_t colon = what.find("]: ");
      const size_t msg = what.find(": ", what.find("parse error"));
      if (msg != std::string::npos) what = what.substr(msg + 2);
      else if (colon != std::string::npos) what = what.substr(colon + 3);
      error_ = "byte " + std::to_string(base_ + line_offset_ + (position > 0 ? position - 1 : 0)) + ": " + what;
    }
    return false;
  }

 private:
  // Byte offset (in the item) of the string token just read.
  uint64_t StringOffset() const {
    const char* end = cursor_ != nullptr ? cursor_ : text_.data();
    size_t e = static_cast<size_t>(end - text_.data());
    if (e == 0) return base_;
    size_t k = e - 1;  // the closing quote
    while (k > 0) {
      --k;
      if (text_[k] != '"') continue;
      size_t bs = 0;
      while (k >= bs + 1 && text_[k - bs - 1] == '\\') ++bs;
      if (bs % 2 == 0) break;
    }
    return base_ + k;
  }

  std::string Location() const {
    if (line_ == 0) return pointer_;
    return pointer_.empty() ? "line " + std::to_string(line_) : "line " + std::to_string(line_) + " " + pointer_;
  }

  std::string ContainerLocation(const Frame& f) const {
    std::string p = pointer_.substr(0, f.ptr_len);
    if (line_ == 0) return p;
    return p.empty() ? "line " + std::to_string(line_) : "line " + std::to_string(line_) + " " + p;
  }

  void AddLoose(Frame* f, const std::string& s) {
    if (f->loose_count == 0) f->loose_offset = StringOffset();
    f->loose.append(s);
    f->loose.push_back('\n');
    ++f->loose_count;
    if (f->loose.size() >= kMaxLooseBytes) FlushLoose(f);
  }

  void FlushLoose(Frame* f) {
    if (f->loose_count == 0) return;
    f->loose.pop_back();
    out_->texts.push_back(MakeSpan(item_, f->loose_offset, ContainerLocation(*f), std::move(f->loose)));
    f->loose.clear();
    f->loose_count = 0;
  }

  void OwnSpan(const std::string& s) {
    out_->texts.push_back(MakeSpan(item_, StringOffset(), Location(), s));
  }

  // Called before every value: the value's pointer.
  void BeginValue() {
    if (frames_.empty()) return;
    Frame& f = frames_.back();
    if (!f.is_array) return;  // key() set it
    if (f.virtual_root) {
      pointer_.clear();
      ++f.index;
      return;
    }
    pointer_.resize(f.ptr_len);
    pointer_.push_back('/');
    pointer_ += std::to_string(f.index++);
  }

  size_t Column(TableBuild* t, const std::string& name) {
    auto [it, fresh] = t->columns.try_emplace(name, t->header.size());
    if (fresh) t->header.push_back(name);
    return it->second;
  }

  bool Scalar(std::string value, bool is_string) {
    BeginValue();
    if (frames_.empty()) {  // a scalar document
      if (is_string) OwnSpan(value);
      return true;
    }
    Frame& f = frames_.back();
    if (f.record_frame >= 0) {
      Frame& rec = frames_[static_cast<size_t>(f.record_frame)];
      TableBuild* t = frames_[static_cast<size_t>(f.table_frame)].table.get();
      const size_t col = Column(t, f.key_prefix + f.key);
      if (rec.row.size() <= col) rec.row.resize(col + 1);
      if (is_string && value.size() >= kOwnSpanChars) OwnSpan(value);
      rec.row[col] = std::move(value);
    } else if (f.row_array) {
      if (is_string && value.size() >= kOwnSpanChars) OwnSpan(value);
      f.row_all_strings = f.row_all_strings && is_string;
      f.row.push_back(std::move(value));
    } else if (is_string) {
      if (!f.is_array && value.size() >= kOwnSpanChars) {
        OwnSpan(value);
      } else {
        AddLoose(&f, value);
      }
    }
    return true;
  }

  bool Open(bool is_array) {
    BeginValue();
    if (frames_.size() >= kMaxJsonDepth) {
      error_ = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels at byte " +
               std::to_string(base_ + static_cast<uint64_t>((cursor_ ? cursor_ : text_.data()) - text_.data()));
      return false;
    }
    Frame child;
    child.is_array = is_array;
    child.ptr_len = pointer_.size();
    if (!frames_.empty()) {
      const int parent_index = static_cast<int>(frames_.size() - 1);
      Frame& parent = frames_.back();
      if (parent.is_array && !parent.row_array && parent.table) {
        TableBuild* t = parent.table.get();
        if (t->kind == 0) t->kind = is_array ? 2 : 1;
        if (t->kind == 1 && !is_array) {
          child.table_frame = parent_index;
          child.record_frame = static_cast<int>(frames_.size());
        } else if (t->kind == 2 && is_array) {
          child.table_frame = parent_index;
          child.row_array = true;
        }
      } else if (!parent.is_array && parent.record_frame >= 0 && !is_array) {
        child.table_frame = parent.table_frame;
        child.record_frame = parent.record_frame;
        child.key_prefix = parent.key_prefix + parent.key + ".";
      }
    }
    if (is_array && !child.row_array) child.table = std::make_unique<TableBuild>();
    frames_.push_back(std::move(child));
    return true;
  }

  bool CloseFrame() {
    Frame& f = frames_.back();
    FlushLoose(&f);
    const uint64_t row_line = line_;
    if (f.record_frame == static_cast<int>(frames_.size() - 1)) {
      TableBuild* t = frames_[static_cast<size_t>(f.table_frame)].table.get();
      t->rows.push_back(std::move(f.row));
      t->row_lines.push_back(row_line);
    } else if (f.row_array) {
      TableBuild* t = frames_[static_cast<size_t>(f.table_frame)].table.get();
      if (t->rows.empty()) {
        t->first_row_all_strings = f.row_all_strings;
      } else if (!f.row_all_strings) {
        t->later_non_string = true;
      }
      t->rows.push_back(std::move(f.row));
      t->row_lines.push_back(row_line);
    }
    if (f.table && !f.table->rows.empty()) {
      TableBuild& b = *f.table;
      Table table;
      table.file = item_.path;
      table.name = f.virtual_root ? "" : pointer_.substr(0, f.ptr_len);
      if (b.kind == 1) {
        table.header = std::move(b.header);
      } else if (b.first_row_all_strings && b.later_non_string) {
        table.header = std::move(b.rows.front());
        b.rows.erase(b.rows.begin());
        b.row_lines.erase(b.row_lines.begin());
      }
      table.rows = std::move(b.rows);
      table.row_lines = std::move(b.row_lines);
      const size_t width = table.header.size();
      if (b.kind == 1) {
        for (auto& r : table.rows) r.resize(width);
      }
      PadRows(&table);
      out_->tables.push_back(std::move(table));
    }
    frames_.pop_back();
    return true;
  }

  const Item& item_;
  std::string_view text_;
  uint64_t base_;
  Parsed* out_;
  std::vector<Frame> frames_;
  std::string pointer_;
  const char* cursor_ = nullptr;
  uint64_t line_ = 0;  // JSON Lines: 1-based line of the current value
  size_t line_offset_ = 0;
  std::string error_;
};

// Parses `text` (one JSON value, or a line of JSON Lines) into `h`.
bool SaxParse(std::string_view text, JsonHandler* h) {
  const char** cursor = h->cursor();
  *cursor = text.data();
  TrackingIterator first(text.data(), cursor), last(text.data() + text.size(), cursor);
  try {
    return nlohmann::json::sax_parse(first, last, h, nlohmann::json::input_format_t::json, true, false);
  } catch (const std::exception& e) {
    return false;
  }
}

}  // namespace

Status ParseJson(const Item& item, ParseContext& ctx, Parsed* out) {
  DecodedText dt;
  RETURN_IF_ERROR(DecodeText(item, "JSON", ctx, out, &dt));
  if (dt.over_budget) return Status::Ok();
  const std::string_view t = dt.text;
  std::string whole_error;
  {
    Parsed attempt;
    JsonHandler h(item, t, dt.base, &attempt);
    if (SaxParse(t, &h)) {
      for (auto& x : attempt.texts) out->texts.push_back(std::move(x));
      for (auto& x : attempt.tables) out->tables.push_back(std::move(x));
      return Status::Ok();
    }
    whole_error = h.error().empty() ? "not a JSON value" : h.error();
  }
  // JSON Lines: one value per non-blank line.
  Parsed attempt;
  JsonHandler h(item, t, dt.base, &attempt);
  h.BeginLines();
  size_t pos = 0;
  uint64_t line = 0;
  bool any = false;
  while (pos < t.size()) {
    size_t nl = t.find('\n', pos);
    if (nl == std::string_view::npos) nl = t.size();
    ++line;
    const std::string_view l = t.substr(pos, nl - pos);
    if (!Trim(l).empty()) {
      h.SetLine(line, pos);
      if (!SaxParse(l, &h)) {
        if (!any) return InvalidArgument("JSON: " + whole_error);
        return InvalidArgument("JSON Lines: line " + std::to_string(line) + ": " +
                               (h.error().empty() ? "not a JSON value" : h.error()));
      }
      any = true;
    }
    pos = nl + 1;
  }
  if (!any) return InvalidArgument("JSON: " + whole_error);
  h.EndLines();
  for (auto& x : attempt.texts) out->texts.push_back(std::move(x));
  for (auto& x : attempt.tables) out->tables.push_back(std::move(x));
  return Status::Ok();
}

// ----------------------------------------------------------------- YAML --

namespace {

// Appends a YAML quoted scalar's content starting at t[i] (the quote);
// returns the index after the closing quote (or the end: tolerated).
size_t Unquote(std::string_view t, size_t i, std::string* out) {
  const char q = t[i++];
  while (i < t.size()) {
    const char c = t[i];
    if (c == q) {
      if (q == '\'' && i + 1 < t.size() && t[i + 1] == '\'') {
        out->push_back('\'');
        i += 2;
        continue;
      }
      return i + 1;
    }
    if (q == '"' && c == '\\' && i + 1 < t.size()) {
      const char e = t[i + 1];
      i += 2;
      switch (e) {
        case 'n': out->push_back('\n'); break;
        case 't': out->push_back('\t'); break;
        case 'r': out->push_back('\r'); break;
        case '0': out->push_back('\0'); break;
        case 'x': case 'u': case 'U': {
          const size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          size_t k = 0;
          for (; k < len && i + k < t.size(); ++k) {
            const char h = t[i + k];
            const int v = IsDigit(h) ? h - '0' : (Lower(h) >= 'a' && Lower(h) <= 'f') ? Lower(h) - 'a' + 10 : -1;
            if (v < 0) break;
            cp = cp * 16 + static_cast<uint32_t>(v);
          }
          i += k;
          AppendUtf8(cp, out);
          break;
        }
        case '\n': break;  // escaped line break
        default: out->push_back(e); break;
      }
      continue;
    }
    out->push_back(c);
    ++i;
  }
  return i;
}

}  // namespace

Status ParseYaml(const Item& item, ParseContext& ctx, Parsed* out) {
  DecodedText dt;
  RETURN_IF_ERROR(DecodeText(item, "YAML", ctx, out, &dt));
  if (dt.over_budget) return Status::Ok();
  const std::string_view t = dt.text;
  std::string text;
  text.reserve(t.size());
  // Records: "- key: value" at indentation d, then "key: value" at d + 2.
  Table table;
  table.file = item.path;
  std::unordered_map<std::string, size_t> columns;
  std::vector<std::string> row;
  bool in_record = false;
  size_t record_indent = 0;
  uint64_t record_line = 0;
  bool table_done = false;  // only the document's top-level sequence
  auto end_record = [&] {
    if (in_record) {
      table.rows.push_back(std::move(row));
      table.row_lines.push_back(record_line);
      row = {};
      in_record = false;
    }
  };
  size_t pos = 0;
  uint64_t line = 0;
  while (pos < t.size()) {
    size_t nl = t.find('\n', pos);
    if (nl == std::string_view::npos) nl = t.size();
    ++line;
    std::string_view l = t.substr(pos, nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    // The text: quoted scalars unquoted (a quote opens a scalar after
    // start of line, space, ':', '-', '[', '{' or ',').
    const size_t text_line_start = text.size();
    size_t i = 0;
    size_t next_pos = nl + 1;
    while (i < l.size()) {
      const char c = l[i];
      const bool opens = (c == '"' || c == '\'') &&
                         (i == 0 || std::strchr(" :-[{,\t", l[i - 1]) != nullptr);
      if (opens) {
        // A quoted scalar may span lines: unquote over the rest of the text.
        const size_t abs = pos + i;
        const size_t end = Unquote(t, abs, &text);
        if (end > pos + l.size()) {  // continued past this line
          next_pos = end;
          const size_t nl2 = t.find('\n', end);
          const size_t stop = nl2 == std::string_view::npos ? t.size() : nl2;
          text.append(t.substr(end, stop - end));
          line += static_cast<uint64_t>(std::count(t.data() + pos + l.size(), t.data() + end, '\n'));
          next_pos = stop + 1;
          i = l.size();
          break;
        }
        i = end - pos;
        continue;
      }
      text.push_back(c);
      ++i;
    }
    text.push_back('\n');
    // Table records on the line's unquoted form.
    const std::string_view shown(text.data() + text_line_start, text.size() - text_line_start - 1);
    const size_t indent = l.find_first_not_of(' ');
    const std::string_view body = indent == std::string_view::npos ? std::string_view() : l.substr(indent);
    const bool blank_or_comment = body.empty() || body[0] == '#' || body.substr(0, 3) == "---";
    if (!table_done && !blank_or_comment) {
      std::string_view content;
      bool starts = false;
      if (body.size() >= 2 && body[0] == '-' && body[1] == ' ' && (!in_record ? indent == 0 : indent == record_indent)) {
        end_record();
        starts = true;
        record_indent = indent;
        record_line = line;
        in_record = true;
        content = Trim(shown.substr(std::min(shown.size(), shown.find('-') + 1)));
      } else if (in_record && indent == record_indent + 2) {
        content = Trim(shown);
      } else if (in_record && indent > record_indent + 2) {
        content = {};  // nested: not a flat record's field
      } else {
        end_record();
        if (!table.rows.empty() || indent == 0) table_done = !table.rows.empty();
      }
      if (!content.empty()) {
        const size_t colon = content.find(": ");
        const bool bare = !content.empty() && content.back() == ':';
        if (colon != std::string_view::npos || bare) {
          const std::string key(Trim(content.substr(0, bare && colon == std::string_view::npos ? content.size() - 1 : colon)));
          const std::string value = colon == std::string_view::npos ? "" : std::string(Trim(content.substr(colon + 2)));
          auto [it, fresh] = columns.try_emplace(key, table.header.size());
          if (fresh) table.header.push_back(key);
          if (row.size() <= it->second) row.resize(it->second + 1);
          row[it->second] = value;
        } else if (starts) {
          in_record = false;  // "- scalar": a list, not records
        }
      }
    }
    pos = next_pos;
  }
  end_record();
  out->texts.push_back(MakeSpan(item, dt.base, "", std::move(text)));
  if (!table.rows.empty() && !table.header.empty()) {
    for (auto& r : table.rows) r.resize(table.header.size());
    out->tables.push_back(std::move(table));
  }
  return Status::Ok();
}

// ------------------------------------------------ text, Markdown and SQL --

namespace {

std::vector<std::string> SplitPipeRow(std::string_view l) {
  l = Trim(l);
  if (!l.empty() && l.front() == '|') l.remove_prefix(1);
  if (!l.empty() && l.back() == '|' && !(l.size() >= 2 && l[l.size() - 2] == '\\')) l.remove_suffix(1);
  std::vector<std::string> cells;
  std::string cell;
  for (size_t i = 0; i < l.size(); ++i) {
    if (l[i] == '\\' && i + 1 < l.size() && l[i + 1] == '|') {
      cell.push_back('|');
      ++i;
    } else if (l[i] == '|') {
      cells.emplace_back(Trim(cell));
      cell.clear();
    } else {
      cell.push_back(l[i]);
    }
  }
  cells.emplace_back(Trim(cell));
  return cells;
}

bool IsPipeSeparator(std::string_view l) {
  l = Trim(l);
  if (l.find('-') == std::string_view::npos || l.find('|') == std::string_view::npos) return false;
  for (char c : l) {
    if (c != '|' && c != '-' && c != ':' && c != ' ' && c != '\t') return false;
  }
  return true;
}

void MarkdownTables(const Item& item, std::string_view t, Parsed* out) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos <= t.size()) {
    size_t nl = t.find('\n', pos);
    if (nl == std::string_view::npos) nl = t.size();
    std::string_view l = t.substr(pos, nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(l);
    pos = nl + 1;
  }
  int count = 0;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (lines[i].find('|') == std::string_view::npos || !IsPipeSeparator(lines[i + 1])) continue;
    Table table;
    table.file = item.path;
    table.name = "table " + std::to_string(++count);
    table.header = SplitPipeRow(lines[i]);
    size_t j = i + 2;
    for (; j < lines.size() && lines[j].find('|') != std::string_view::npos && !Trim(lines[j]).empty(); ++j) {
      table.rows.push_back(SplitPipeRow(lines[j]));
      table.row_lines.push_back(j + 1);
    }
    PadRows(&table);
    out->tables.push_back(std::move(table));
    i = j - 1;
  }
}

bool MatchWordCi(std::string_view t, size_t i, std::string_view word) {
  if (i + word.size() > t.size()) return false;
  for (size_t k = 0; k < word.size(); ++k) {
    if (Lower(t[i + k]) != word[k]) return false;
  }
  const size_t e = i + word.size();
  return e >= t.size() || !(IsAsciiAlpha(t[e]) || IsDigit(t[e]) || t[e] == '_');
}

size_t SkipSpace(std::string_view t, size_t i) {
  while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
  return i;
}

// An SQL identifier, possibly quoted and schema-qualified; returns the end.
size_t SqlName(std::string_view t, size_t i, std::string* name) {
  name->clear();
  for (;;) {
    if (i < t.size() && (t[i] == '`' || t[i] == '"' || t[i] == '[')) {
      const char close = t[i] == '[' ? ']' : t[i];
      const size_t e = t.find(close, i + 1);
      if (e == std::string_view::npos) return std::string_view::npos;
      name->append(t.substr(i + 1, e - i - 1));
      i = e + 1;
    } else {
      const size_t s = i;
      while (i < t.size() && (IsAsciiAlpha(t[i]) || IsDigit(t[i]) || t[i] == '_' || t[i] == '$' || U(t[i]) >= 0x80)) ++i;
      if (i == s) return std::string_view::npos;
      name->append(t.substr(s, i - s));
    }
    if (i < t.size() && t[i] == '.') {
      name->push_back('.');
      ++i;
      continue;
    }
    return i;
  }
}

// Parses "(v, 'str', NULL, ...)" at t[i] == '('; returns the end or npos.
size_t SqlTuple(std::string_view t, size_t i, uint64_t* line, std::vector<std::string>* row) {
  ++i;
  std::string cell;
  for (;;) {
    i = SkipSpace(t, i);
    if (i >= t.size()) return std::string_view::npos;
    cell.clear();
    if (t[i] == '\'') {
      ++i;
      for (;;) {
        if (i >= t.size()) return std::string_view::npos;
        const char c = t[i];
        if (c == '\'' && i + 1 < t.size() && t[i + 1] == '\'') {
          cell.push_back('\'');
          i += 2;
        } else if (c == '\'') {
          ++i;
          break;
        } else if (c == '\\' && i + 1 < t.size()) {
          const char e = t[i + 1];
          cell.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '0' ? '\0' : e);
          i += 2;
        } else {
          if (c == '\n') ++*line;
          cell.push_back(c);
          ++i;
        }
      }
    } else {
      int depth = 0;  // function calls: NOW(), X'..'
      const size_t s = i;
      while (i < t.size() && (depth > 0 || (t[i] != ',' && t[i] != ')'))) {
        if (t[i] == '(') ++depth;
        if (t[i] == ')') --depth;
        ++i;
      }
      cell = std::string(Trim(t.substr(s, i - s)));
      if (cell.size() == 4 && Lower(cell[0]) == 'n' && Lower(cell[1]) == 'u' && Lower(cell[2]) == 'l' &&
          Lower(cell[3]) == 'l') {
        cell.clear();
      }
    }
    row->push_back(cell);
    i = SkipSpace(t, i);
    if (i >= t.size()) return std::string_view::npos;
    if (t[i] == ',') {
      ++i;
      continue;
    }
    if (t[i] == ')') return i + 1;
    return std::string_view::npos;
  }
}

void SqlInserts(const Item& item, std::string_view t, Parsed* out) {
  std::unordered_map<std::string, size_t> by_name;  // table name -> index in out->tables
  uint64_t line = 1;
  size_t line_counted = 0;
  size_t i = 0;
  while (i < t.size()) {
    if (Lower(t[i]) != 'i' || (i > 0 && (IsAsciiAlpha(t[i - 1]) || t[i - 1] == '_')) ||
        !MatchWordCi(t, i, "insert")) {
      ++i;
      continue;
    }
    line += static_cast<uint64_t>(std::count(t.data() + line_counted, t.data() + i, '\n'));
    line_counted = i;
    size_t j = SkipSpace(t, i + 6);
    if (MatchWordCi(t, j, "ignore")) j = SkipSpace(t, j + 6);
    if (!MatchWordCi(t, j, "into")) {
      ++i;
      continue;
    }
    j = SkipSpace(t, j + 4);
    std::string name;
    j = SqlName(t, j, &name);
    if (j == std::string_view::npos) {
      ++i;
      continue;
    }
    j = SkipSpace(t, j);
    std::vector<std::string> columns;
    if (j < t.size() && t[j] == '(') {
      uint64_t unused = 0;
      const size_t e = SqlTuple(t, j, &unused, &columns);
      if (e == std::string_view::npos) {
        ++i;
        continue;
      }
      for (auto& c : columns) {
        if (c.size() >= 2 && (c.front() == '`' || c.front() == '"' || c.front() == '[')) c = c.substr(1, c.size() - 2);
      }
      j = SkipSpace(t, e);
    }
    if (!MatchWordCi(t, j, "values")) {
      ++i;
      continue;
    }
    j = SkipSpace(t, j + 6);
    auto [it, fresh] = by_name.try_emplace(name, out->tables.size());
    if (fresh) {
      Table table;
      table.file = item.path;
      table.name = name;
      table.header = columns;
      out->tables.push_back(std::move(table));
    }
    Table& table = out->tables[it->second];
    if (table.header.empty() && !columns.empty()) table.header = columns;
    while (j < t.size() && t[j] == '(') {
      line += static_cast<uint64_t>(std::count(t.data() + line_counted, t.data() + j, '\n'));
      line_counted = j;
      const uint64_t row_line = line;
      std::vector<std::string> row;
      uint64_t inner_lines = 0;
      const size_t e = SqlTuple(t, j, &inner_lines, &row);
      if (e == std::string_view::npos) break;
      table.rows.push_back(std::move(row));
      table.row_lines.push_back(row_line);
      j = SkipSpace(t, e);
      if (j < t.size() && t[j] == ',') j = SkipSpace(t, j + 1);
    }
    i = std::max(j, i + 1);
  }
  for (auto& [name, index] : by_name) PadRows(&out->tables[index]);
}

}  // namespace

Status ParseText(const Item& item, ParseContext& ctx, Parsed* out) {
  DecodedText dt;
  RETURN_IF_ERROR(DecodeText(item, "text", ctx, out, &dt));
  if (dt.over_budget) return Status::Ok();
  MarkdownTables(item, dt.text, out);
  SqlInserts(item, dt.text, out);
  out->texts.push_back(MakeSpan(item, dt.base, "", std::string(dt.text)));
  return Status::Ok();
}

// ----------------------------------------------------------------- HTML --

namespace {

struct NamedEntity {
  const char* name;
  uint32_t cp;
};
constexpr NamedEntity kEntities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", 0xA0},
    {"copy", 0xA9}, {"reg", 0xAE}, {"eacute", 0xE9}, {"egrave", 0xE8}, {"agrave", 0xE0},
    {"ccedil", 0xE7}, {"uuml", 0xFC}, {"ouml", 0xF6}, {"auml", 0xE4}, {"szlig", 0xDF},
    {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026}, {"lsquo", 0x2018},
    {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"euro", 0x20AC},
    {"pound", 0xA3}, {"times", 0xD7}, {"deg", 0xB0}, {"plusmn", 0xB1}, {"middot", 0xB7},
    {"shy", 0xAD}, {"zwj", 0x200D}, {"zwnj", 0x200C}, {"colon", ':'}, {"sol", '/'},
    {"equals", '='}, {"plus", '+'}, {"comma", ','}, {"period", '.'}, {"semi", ';'},
};

// Appends s with character references decoded; data: URI payloads are left
// out (they become children, see DataUris).
void AppendDecoded(std::string_view s, std::string* out) {
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '&') {
      size_t j = i + 1;
      uint32_t cp = 0;
      bool ok = false;
      if (j < s.size() && s[j] == '#') {
        ++j;
        const bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
        if (hex) ++j;
        const size_t start = j;
        while (j < s.size() && j - start < 8) {
          const char h = s[j];
          int v = IsDigit(h) ? h - '0' : -1;
          if (hex && v < 0 && Lower(h) >= 'a' && Lower(h) <= 'f') v = Lower(h) - 'a' + 10;
          if (v < 0) break;
          cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
          ++j;
        }
        ok = j > start;
      } else {
        const size_t start = j;
        while (j < s.size() && j - start < 10 && (IsAsciiAlpha(s[j]) || IsDigit(s[j]))) ++j;
        const std::string_view name = s.substr(start, j - start);
        for (const auto& e : kEntities) {
          if (name == e.name) {
            cp = e.cp;
            ok = true;
            break;
          }
        }
      }
      if (ok) {
        if (j < s.size() && s[j] == ';') ++j;
        AppendUtf8(cp, out);
        i = j;
        continue;
      }
    }
    if ((c == 'd' || c == 'D') && i + 5 < s.size() && Lower(s[i + 1]) == 'a' && Lower(s[i + 2]) == 't' &&
        Lower(s[i + 3]) == 'a' && s[i + 4] == ':') {
      const size_t b = s.substr(0, std::min(s.size(), i + 136)).find(";base64,", i);
      if (b != std::string_view::npos &&
          s.substr(i, b - i).find_first_of(" \t\n\"'<>") == std::string_view::npos) {
        size_t j = b + 8;
        while (j < s.size() && (IsAsciiAlpha(s[j]) || IsDigit(s[j]) || std::strchr("+/=_-\r\n\t ", s[j]) != nullptr) && s[j] != 0) ++j;
        out->append(s.substr(i, b + 8 - i));
        out->append("[payload]");
        i = j;
        continue;
      }
    }
    out->push_back(c);
    ++i;
  }
}

// data:<type>;base64,<payload> anywhere in the document -> a child each.
void DataUris(const Item& item, std::string_view t, uint64_t base, ParseContext& ctx, Parsed* out) {
  size_t i = 0;
  while ((i = t.find(";base64,", i)) != std::string_view::npos) {
    // Back to "data:" (at most 128 characters of media type).
    size_t s = i;
    while (s > 0 && i - s < 128 && t[s - 1] != ':' && std::strchr(" \t\n\"'<>(", t[s - 1]) == nullptr) --s;
    if (s < 5 || t[s - 1] != ':' || Lower(t[s - 5]) != 'd' || Lower(t[s - 4]) != 'a' || Lower(t[s - 3]) != 't' ||
        Lower(t[s - 2]) != 'a') {
      i += 8;
      continue;
    }
    size_t j = i + 8;
    std::string chars;
    while (j < t.size()) {
      const char c = t[j];
      if (IsAsciiAlpha(c) || IsDigit(c) || c == '+' || c == '/' || c == '-' || c == '_') {
        chars.push_back(c);
      } else if (c != '\r' && c != '\n' && c != ' ' && c != '\t' && c != '=') {
        break;
      }
      ++j;
    }
    const uint64_t size = chars.size() * 3 / 4;
    if (size > ctx.expand_budget || size > ctx.policy.max_child_bytes) {
      Finding f;
      f.detector = "encoding.bomb";
      f.file = item.path;
      f.offset = static_cast<int64_t>(base + s - 5);
      f.location = "byte " + std::to_string(base + s - 5);
      f.score = 1;
      f.hard = true;
      f.message = "a data: URI would decode to more than the scan's decoding budget";
      out->findings.push_back(std::move(f));
      ctx.expand_budget = 0;
      return;
    }
    ctx.expand_budget -= size;
    std::string bytes;
    bytes.reserve(size + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : chars) {
      int v = IsAsciiAlpha(c) ? (c <= 'Z' ? c - 'A' : c - 'a' + 26) : IsDigit(c) ? c - '0' + 52
              : (c == '+' || c == '-') ? 62 : 63;
      acc = (acc << 6) | static_cast<uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes.push_back(static_cast<char>((acc >> bits) & 0xff));
      }
    }
    Child child;
    child.name = "data-uri@" + std::to_string(base + s - 5);
    child.location = "byte " + std::to_string(base + s - 5);
    child.bytes = std::move(bytes);
    out->children.push_back(std::move(child));
    i = j;
  }
}

bool IsBlockTag(std::string_view name) {
  static constexpr std::string_view kBlocks[] = {
      "p", "div", "br", "tr", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table",
      "section", "article", "header", "footer", "pre", "blockquote", "hr", "title", "text",
      "tspan", "desc", "dt", "dd", "caption", "thead", "tbody", "tfoot", "option", "form"};
  for (auto b : kBlocks) {
    if (name == b) return true;
  }
  return false;
}

bool TextAttribute(std::string_view name) {
  return name == "alt" || name == "title" || name == "href" || name == "xlink:href" || name == "src" ||
         name == "content" || name == "value" || name == "placeholder" || name == "aria-label" ||
         name == "label" || name == "summary" || name.substr(0, 5) == "data-";
}

constexpr size_t kMaxNestedTables = 64;

struct HtmlTable {
  Table table;
  bool first_row_all_th = true;
  size_t rows_seen = 0;
  bool in_row = false;
  bool in_cell = false;
  bool row_all_th = true;
  std::vector<std::string> row;
};

}  // namespace

Status ParseHtml(const Item& item, ParseContext& ctx, Parsed* out) {
  DecodedText dt;
  RETURN_IF_ERROR(DecodeText(item, "HTML", ctx, out, &dt));
  if (dt.over_budget) return Status::Ok();
  const std::string_view t = dt.text;
  std::string text;
  text.reserve(t.size() / 2);
  std::vector<HtmlTable> tables;  // open tables, innermost last
  int table_count = 0;
  uint64_t line = 1;
  size_t line_counted = 0;
  auto current_line = [&](size_t at) {
    line += static_cast<uint64_t>(std::count(t.data() + line_counted, t.data() + at, '\n'));
    line_counted = at;
    return line;
  };
  auto append_text = [&](std::string_view s) {
    const size_t before = text.size();
    AppendDecoded(s, &text);
    if (!tables.empty() && tables.back().in_cell) {
      tables.back().row.back().append(text, before, std::string::npos);
    }
  };
  auto end_cell = [&](HtmlTable& h) {
    if (h.in_cell) {
      h.row.back() = std::string(Trim(h.row.back()));
      h.in_cell = false;
    }
  };
  auto end_row = [&](HtmlTable& h) {
    end_cell(h);
    if (h.in_row) {
      if (!h.row.empty()) {
        if (h.rows_seen == 0) h.first_row_all_th = h.row_all_th;
        ++h.rows_seen;
        h.table.rows.push_back(std::move(h.row));
      } else {
        h.table.row_lines.pop_back();
      }
      h.row = {};
      h.in_row = false;
    }
  };
  auto close_table = [&] {
    HtmlTable& h = tables.back();
    end_row(h);
    if (!h.table.rows.empty()) {
      if (h.first_row_all_th) {
        h.table.header = std::move(h.table.rows.front());
        h.table.rows.erase(h.table.rows.begin());
        h.table.row_lines.erase(h.table.row_lines.begin());
      }
      PadRows(&h.table);
      out->tables.push_back(std::move(h.table));
    }
    tables.pop_back();
  };

  size_t i = 0;
  while (i < t.size()) {
    const size_t lt = t.find('<', i);
    const size_t stop = lt == std::string_view::npos ? t.size() : lt;
    if (stop > i) append_text(t.substr(i, stop - i));
    if (lt == std::string_view::npos) break;
    i = lt;
    if (t.substr(i, 4) == "<!--") {
      size_t e = t.find("-->", i + 4);
      if (e == std::string_view::npos) e = t.size();
      text.push_back('\n');
      AppendDecoded(t.substr(i + 4, e - i - 4), &text);
      text.push_back('\n');
      i = std::min(t.size(), e + 3);
      continue;
    }
    if (t.substr(i, 9) == "<![CDATA[") {
      size_t e = t.find("]]>", i + 9);
      if (e == std::string_view::npos) e = t.size();
      append_text(t.substr(i + 9, e - i - 9));
      i = std::min(t.size(), e + 3);
      continue;
    }
    if (i + 1 < t.size() && (t[i + 1] == '!' || t[i + 1] == '?')) {
      const size_t e = t.find('>', i);
      i = e == std::string_view::npos ? t.size() : e + 1;
      continue;
    }
    const bool closing = i + 1 < t.size() && t[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    const size_t name_start = j;
    while (j < t.size() && (IsAsciiAlpha(t[j]) || IsDigit(t[j]) || t[j] == ':' || t[j] == '-' || t[j] == '_')) ++j;
    if (j == name_start) {  // a lone '<': text
      text.push_back('<');
      ++i;
      continue;
    }
    std::string name(t.substr(name_start, j - name_start));
    for (auto& c : name) c = Lower(c);
    // Attributes, to the tag's '>' (quotes respected).
    while (j < t.size() && t[j] != '>') {
      while (j < t.size() && (t[j] == ' ' || t[j] == '\t' || t[j] == '\n' || t[j] == '\r' || t[j] == '/')) ++j;
      const size_t an = j;
      while (j < t.size() && t[j] != '=' && t[j] != '>' && t[j] != ' ' && t[j] != '\t' && t[j] != '\n' &&
             t[j] != '\r' && t[j] != '/') {
        ++j;
      }
      std::string attr(t.substr(an, j - an));
      for (auto& c : attr) c = Lower(c);
      size_t k = j;
      while (k < t.size() && (t[k] == ' ' || t[k] == '\t' || t[k] == '\n' || t[k] == '\r')) ++k;
      if (k < t.size() && t[k] == '=') {
        ++k;
        while (k < t.size() && (t[k] == ' ' || t[k] == '\t' || t[k] == '\n' || t[k] == '\r')) ++k;
        size_t vs = k, ve;
        if (k < t.size() && (t[k] == '"' || t[k] == '\'')) {
          const size_t e = t.find(t[k], k + 1);
          vs = k + 1;
          ve = e == std::string_view::npos ? t.size() : e;
          j = std::min(t.size(), ve + 1);
        } else {
          while (k < t.size() && t[k] != '>' && t[k] != ' ' && t[k] != '\t' && t[k] != '\n' && t[k] != '\r') ++k;
          ve = k;
          j = k;
        }
        if (TextAttribute(attr)) {
          text.push_back('\n');
          AppendDecoded(t.substr(vs, ve - vs), &text);
          text.push_back('\n');
        }
      } else if (j == an) {
        if (j < t.size() && t[j] != '>') ++j;  // stray character
      }
    }
    i = std::min(t.size(), j + 1);
    if (closing) {
      if (name == "table" && !tables.empty()) {
        close_table();
      } else if (!tables.empty() && (name == "td" || name == "th")) {
        end_cell(tables.back());
      } else if (!tables.empty() && name == "tr") {
        end_row(tables.back());
      }
      if (IsBlockTag(name) || name == "td" || name == "th") text.push_back('\n');
      continue;
    }
    if (name == "script" || name == "style" || name == "textarea" || name == "title") {
      // Raw text to the matching end tag.
      size_t e = i;
      for (;;) {
        e = t.find("</", e);
        if (e == std::string_view::npos) {
          e = t.size();
          break;
        }
        if (e + 2 + name.size() <= t.size()) {
          bool match = true;
          for (size_t k = 0; k < name.size(); ++k) match = match && Lower(t[e + 2 + k]) == name[k];
          if (match) break;
        }
        e += 2;
      }
      text.push_back('\n');
      if (name == "script" || name == "style") {
        AppendDecoded(t.substr(i, e - i), &text);  // no entities in raw text, but harmless
      } else {
        append_text(t.substr(i, e - i));
      }
      text.push_back('\n');
      const size_t close = e < t.size() ? t.find('>', e) : std::string_view::npos;
      i = close == std::string_view::npos ? t.size() : close + 1;
      continue;
    }
    if (name == "table") {
      if (tables.size() < kMaxNestedTables) {
        HtmlTable h;
        h.table.file = item.path;
        h.table.name = "table " + std::to_string(++table_count);
        tables.push_back(std::move(h));
      }
    } else if (name == "tr" && !tables.empty()) {
      HtmlTable& h = tables.back();
      end_row(h);
      h.in_row = true;
      h.row_all_th = true;
      h.table.row_lines.push_back(current_line(lt));
    } else if ((name == "td" || name == "th") && !tables.empty()) {
      HtmlTable& h = tables.back();
      end_cell(h);
      if (!h.in_row) {
        h.in_row = true;
        h.row_all_th = true;
        h.table.row_lines.push_back(current_line(lt));
      }
      h.row.emplace_back();
      h.in_cell = true;
      h.row_all_th = h.row_all_th && name == "th";
      text.push_back('\t');
    }
    if (IsBlockTag(name)) text.push_back('\n');
  }
  while (!tables.empty()) close_table();
  DataUris(item, t, dt.base, ctx, out);
  out->texts.push_back(MakeSpan(item, dt.base, "", std::move(text)));
  return Status::Ok();
}

}  // namespace cce::gate
