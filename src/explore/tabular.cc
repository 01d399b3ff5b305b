#include "explore/tabular.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace cce::explore {
namespace {

constexpr size_t kInitialBuffer = 1 << 20;
constexpr size_t kFlushBytes = 1 << 20;
constexpr size_t kMaxColumns = 10000;

// Bytes that end an unquoted CSV field or are not allowed in one.
constexpr std::array<bool, 256> MakeCsvSpecial() {
  std::array<bool, 256> t{};
  t[static_cast<unsigned char>(',')] = true;
  t[static_cast<unsigned char>('\n')] = true;
  t[static_cast<unsigned char>('\r')] = true;
  t[static_cast<unsigned char>('"')] = true;
  return t;
}
constexpr std::array<bool, 256> kCsvSpecial = MakeCsvSpecial();

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

std::string Printable(char c) {
  if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02x", static_cast<unsigned char>(c));
  return buf;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

StatusOr<TableFormat> TableFormatForPath(std::string_view path) {
  if (EndsWith(path, ".csv")) return TableFormat::kCsv;
  if (EndsWith(path, ".jsonl")) return TableFormat::kJsonLines;
  return InvalidArgument(std::string(path) + ": not a .csv or .jsonl file");
}

TableReader::TableReader(std::string name, TableFormat format)
    : name_(std::move(name)), format_(format) {}

TableReader::~TableReader() = default;

StatusOr<std::unique_ptr<TableReader>> TableReader::OpenFile(const std::string& path,
                                                             const std::string& name,
                                                             TableFormat format) {
  std::unique_ptr<TableReader> r(new TableReader(name, format));
  r->fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!r->fd_.valid()) return ErrnoStatus(name, errno);
  r->buf_.resize(kInitialBuffer);
  RETURN_IF_ERROR(r->ReadHeader());
  return r;
}

StatusOr<std::unique_ptr<TableReader>> TableReader::FromString(std::string data,
                                                               const std::string& name,
                                                               TableFormat format) {
  std::unique_ptr<TableReader> r(new TableReader(name, format));
  r->end_ = data.size();
  r->buf_.assign(data.begin(), data.end());
  r->eof_ = true;
  RETURN_IF_ERROR(r->ReadHeader());
  return r;
}

Status TableReader::Fill() {
  if (eof_) return Status::Ok();
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    buf_offset_ += begin_;
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size()) {
    if (buf_.size() >= kMaxRowBytes) {
      return InvalidArgument(name_ + ":" + std::to_string(line_) + ": a row is longer than " +
                             std::to_string(kMaxRowBytes) + " bytes");
    }
    buf_.resize(buf_.size() * 2);
  }
  for (;;) {
    const ssize_t n = ::read(fd_.get(), buf_.data() + end_, buf_.size() - end_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(name_ + ": read", errno);
    }
    if (n == 0) eof_ = true;
    end_ += static_cast<size_t>(n);
    return Status::Ok();
  }
}

Status TableReader::Error(uint64_t abs_pos, uint64_t line, uint64_t line_start,
                          const std::string& what) const {
  return InvalidArgument(name_ + ":" + std::to_string(line) + ":" +
                         std::to_string(abs_pos - line_start + 1) + ": " + what);
}

std::string TableReader::Where(size_t column) const {
  if (column < cells_.size() && column < present_.size() && present_[column]) {
    const Cell& c = cells_[column];
    return name_ + ":" + std::to_string(c.line) + ":" + std::to_string(c.pos - c.line_start + 1);
  }
  return WhereRow();
}

std::string TableReader::WhereRow() const {
  return name_ + ":" + std::to_string(row_line_);
}

Status TableReader::ReadHeader() {
  // A UTF-8 byte order mark is not part of the first column's name.
  while (end_ - begin_ < 3 && !eof_) RETURN_IF_ERROR(Fill());
  if (end_ - begin_ >= 3 && std::memcmp(buf_.data() + begin_, "\xef\xbb\xbf", 3) == 0) {
    begin_ += 3;
    line_start_ = buf_offset_ + begin_;
  }
  if (format_ == TableFormat::kJsonLines) return Status::Ok();
  for (;;) {
    ASSIGN_OR_RETURN(Parse p, ParseCsv(/*header=*/true));
    if (p == Parse::kNeedMore) {
      RETURN_IF_ERROR(Fill());
      continue;
    }
    if (p == Parse::kEnd)
      return InvalidArgument(name_ + ":1:1: expected a header row, got an empty file");
    return Status::Ok();
  }
}

StatusOr<bool> TableReader::Next() {
  for (;;) {
    ASSIGN_OR_RETURN(Parse p, format_ == TableFormat::kCsv ? ParseCsv(false) : ParseJson());
    if (p == Parse::kRow) return true;
    if (p == Parse::kEnd) return false;
    RETURN_IF_ERROR(Fill());
  }
}

StatusOr<TableReader::Parse> TableReader::ParseCsv(bool header) {
  const char* b = buf_.data();
  size_t p = begin_;
  uint64_t line = line_;
  uint64_t line_start = line_start_;
  auto abs = [&](size_t i) { return buf_offset_ + i; };
  // Blank lines between rows are skipped.
  for (;;) {
    if (p == end_) {
      if (!eof_) return Parse::kNeedMore;
      begin_ = p;
      consumed_ = abs(p);
      return Parse::kEnd;
    }
    if (b[p] == '\n') {
      ++p;
      ++line;
      line_start = abs(p);
      continue;
    }
    if (b[p] == '\r') {
      if (p + 1 == end_ && !eof_) return Parse::kNeedMore;
      if (p + 1 < end_ && b[p + 1] == '\n') {
        p += 2;
        ++line;
        line_start = abs(p);
        continue;
      }
      return Error(abs(p), line, line_start, "expected '\\n' after '\\r'");
    }
    break;
  }
  const uint64_t row_line = line;
  const uint64_t row_pos = abs(p);
  const uint64_t row_line_start = line_start;
  scratch_.clear();
  size_t n = 0;
  for (;;) {
    if (n == cells_.size()) {
      if (n >= kMaxColumns) return Error(abs(p), line, line_start, "more than 10000 fields");
      cells_.emplace_back();
    }
    Cell& c = cells_[n];
    c.pos = abs(p);
    c.line = line;
    c.line_start = line_start;
    c.kind = ValueKind::kString;
    if (p < end_ && b[p] == '"') {
      ++p;
      size_t seg = p;
      bool escaped = false;
      const size_t scratch_at = scratch_.size();
      for (;;) {
        while (p < end_ && b[p] != '"') {
          if (b[p] == '\n') {
            ++line;
            line_start = abs(p + 1);
          }
          ++p;
        }
        if (p == end_) {
          if (!eof_) return Parse::kNeedMore;
          return Error(c.pos, c.line, c.line_start,
                       "expected a closing '\"' for this quoted field, got the end of the file");
        }
        if (p + 1 == end_ && !eof_) return Parse::kNeedMore;
        if (p + 1 < end_ && b[p + 1] == '"') {
          escaped = true;
          scratch_.append(b + seg, p + 1 - seg);  // up to and including one quote
          p += 2;
          seg = p;
          continue;
        }
        break;  // the closing quote
      }
      if (escaped) {
        scratch_.append(b + seg, p - seg);
        c.scratch = true;
        c.offset = scratch_at;
        c.size = scratch_.size() - scratch_at;
      } else {
        c.scratch = false;
        c.offset = seg;
        c.size = p - seg;
      }
      ++p;  // past the closing quote
      if (p < end_ && b[p] != ',' && b[p] != '\n' && b[p] != '\r') {
        return Error(
            abs(p), line, line_start,
            "expected ',' or the end of the line after the closing '\"', got " + Printable(b[p]));
      }
    } else {
      const size_t start = p;
      while (p < end_ && !kCsvSpecial[static_cast<unsigned char>(b[p])]) ++p;
      if (p < end_ && b[p] == '"') {
        return Error(abs(p), line, line_start,
                     "expected no '\"' inside an unquoted field (quote the whole field and "
                     "double the quote)");
      }
      if (p == end_ && !eof_) return Parse::kNeedMore;
      c.scratch = false;
      c.offset = start;
      c.size = p - start;
    }
    ++n;
    if (p == end_) break;  // end of file ends the row
    if (b[p] == ',') {
      ++p;
      continue;
    }
    if (b[p] == '\n') {
      ++p;
      ++line;
      line_start = abs(p);
      break;
    }
    // '\r'
    if (p + 1 == end_ && !eof_) return Parse::kNeedMore;
    if (p + 1 < end_ && b[p + 1] == '\n') {
      p += 2;
      ++line;
      line_start = abs(p);
      break;
    }
    return Error(abs(p), line, line_start, "expected '\\n' after '\\r'");
  }
  auto view = [&](const Cell& c) {
    return c.scratch ? std::string_view(scratch_).substr(c.offset, c.size)
                     : std::string_view(b + c.offset, c.size);
  };
  if (header) {
    for (size_t i = 0; i < n; ++i) {
      std::string name(view(cells_[i]));
      if (name.empty()) {
        return Error(cells_[i].pos, cells_[i].line, cells_[i].line_start,
                     "expected a column name, got an empty one");
      }
      if (!column_index_.emplace(name, i).second) {
        return Error(cells_[i].pos, cells_[i].line, cells_[i].line_start,
                     "duplicate column '" + name + "'");
      }
      columns_.push_back(std::move(name));
    }
    values_.resize(n);
    present_.assign(n, 1);
  } else {
    if (n != columns_.size()) {
      return Error(row_pos, row_line, row_line_start,
                   "expected " + std::to_string(columns_.size()) +
                       " fields (as in the header), got " + std::to_string(n));
    }
    for (size_t i = 0; i < n; ++i) values_[i] = Value{view(cells_[i]), ValueKind::kString};
  }
  row_line_ = row_line;
  begin_ = p;
  line_ = line;
  line_start_ = line_start;
  consumed_ = abs(p);
  return Parse::kRow;
}

size_t TableReader::ColumnIndex(std::string_view key) {
  auto it = column_index_.find(std::string(key));
  if (it != column_index_.end()) return it->second;
  if (columns_.size() >= kMaxColumns) return SIZE_MAX;
  const size_t i = columns_.size();
  columns_.emplace_back(key);
  column_index_.emplace(columns_.back(), i);
  values_.emplace_back();
  cells_.emplace_back();
  present_.push_back(0);
  return i;
}

StatusOr<TableReader::Parse> TableReader::ParseJson() {
  const char* b = buf_.data();
  size_t p = begin_;
  uint64_t line = line_;
  uint64_t line_start = line_start_;
  auto abs = [&](size_t i) { return buf_offset_ + i; };
  size_t le = 0;  // end of the row's line (the '\n' or end_)
  for (;;) {
    if (p == end_) {
      if (!eof_) return Parse::kNeedMore;
      begin_ = p;
      consumed_ = abs(p);
      return Parse::kEnd;
    }
    const void* nl = std::memchr(b + p, '\n', end_ - p);
    if (nl == nullptr && !eof_) return Parse::kNeedMore;
    le = nl ? static_cast<size_t>(static_cast<const char*>(nl) - b) : end_;
    size_t q = p;
    while (q < le && (IsJsonSpace(b[q]))) ++q;
    if (q < le) break;
    // A blank line.
    p = le == end_ ? le : le + 1;
    ++line;
    line_start = abs(p);
  }
  const uint64_t row_line = line;
  auto err = [&](size_t at, const std::string& what) {
    return Error(abs(at), line, line_start, what);
  };
  scratch_.clear();
  std::fill(present_.begin(), present_.end(), 0);
  std::fill(values_.begin(), values_.end(), Value{});
  while (p < le && IsJsonSpace(b[p])) ++p;
  if (b[p] != '{') return err(p, "expected '{' (one JSON object per line), got " + Printable(b[p]));
  ++p;
  // Parses a JSON string at b[p] == '"'; leaves p past the closing quote.
  auto parse_string = [&](Cell& c) -> Status {
    ++p;
    const size_t start = p;
    while (p < le && b[p] != '"' && b[p] != '\\' && static_cast<unsigned char>(b[p]) >= 0x20) ++p;
    if (p < le && b[p] == '"') {
      c.scratch = false;
      c.offset = start;
      c.size = p - start;
      ++p;
      return Status::Ok();
    }
    const size_t at = scratch_.size();
    scratch_.append(b + start, p - start);
    for (;;) {
      if (p >= le) return err(p, "expected a closing '\"', got the end of the line");
      const char ch = b[p];
      if (ch == '"') break;
      if (static_cast<unsigned char>(ch) < 0x20) {
        return err(p, "expected an escaped control character, got " + Printable(ch));
      }
      if (ch != '\\') {
        scratch_ += ch;
        ++p;
        continue;
      }
      if (p + 1 >= le) return err(p, "expected an escape after '\\'");
      const char e = b[p + 1];
      p += 2;
      switch (e) {
        case '"': scratch_ += '"'; break;
        case '\\': scratch_ += '\\'; break;
        case '/': scratch_ += '/'; break;
        case 'b': scratch_ += '\b'; break;
        case 'f': scratch_ += '\f'; break;
        case 'n': scratch_ += '\n'; break;
        case 'r': scratch_ += '\r'; break;
        case 't': scratch_ += '\t'; break;
        case 'u': {
          auto hex4 = [&](size_t at4, uint32_t* out) -> bool {
            if (at4 + 4 > le) return false;
            uint32_t v = 0;
            for (size_t i = 0; i < 4; ++i) {
              const int d = HexDigit(b[at4 + i]);
              if (d < 0) return false;
              v = v * 16 + static_cast<uint32_t>(d);
            }
            *out = v;
            return true;
          };
          uint32_t cp = 0;
          if (!hex4(p, &cp)) return err(p - 2, "expected 4 hex digits after '\\u'");
          p += 4;
          if (cp >= 0xdc00 && cp <= 0xdfff) return err(p - 6, "expected a high surrogate first");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo = 0;
            if (p + 2 > le || b[p] != '\\' || b[p + 1] != 'u' || !hex4(p + 2, &lo) || lo < 0xdc00 ||
                lo > 0xdfff) {
              return err(p - 6, "expected a low surrogate '\\uDC00'..'\\uDFFF' after this one");
            }
            p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          AppendUtf8(scratch_, cp);
          break;
        }
        default:
          return err(p - 1,
                     "expected a JSON escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), got " +
                         Printable(e));
      }
    }
    c.scratch = true;
    c.offset = at;
    c.size = scratch_.size() - at;
    ++p;
    return Status::Ok();
  };
  auto skip_ws = [&] {
    while (p < le && IsJsonSpace(b[p])) ++p;
  };
  skip_ws();
  if (p < le && b[p] == '}') {
    ++p;
  } else {
    for (;;) {
      skip_ws();
      if (p >= le || b[p] != '"') {
        return err(p, "expected a '\"' starting a key, got " +
                          (p >= le ? std::string("the end of the line") : Printable(b[p])));
      }
      Cell key;
      const size_t key_pos = p;
      RETURN_IF_ERROR(parse_string(key));
      const std::string_view key_text =
          key.scratch ? std::string_view(scratch_).substr(key.offset, key.size)
                      : std::string_view(b + key.offset, key.size);
      const size_t col = ColumnIndex(key_text);
      if (col == SIZE_MAX) return err(key_pos, "more than 10000 distinct keys");
      if (present_[col]) return err(key_pos, "duplicate key '" + std::string(key_text) + "'");
      skip_ws();
      if (p >= le || b[p] != ':') return err(p, "expected ':' after the key");
      ++p;
      skip_ws();
      if (p >= le) return err(p, "expected a value, got the end of the line");
      Cell& c = cells_[col];
      c.pos = abs(p);
      c.line = line;
      c.line_start = line_start;
      const char ch = b[p];
      if (ch == '"') {
        RETURN_IF_ERROR(parse_string(c));
        c.kind = ValueKind::kString;
      } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
        const size_t start = p;
        if (b[p] == '-') ++p;
        if (p < le && b[p] == '0') {
          ++p;
        } else if (p < le && b[p] >= '1' && b[p] <= '9') {
          while (p < le && b[p] >= '0' && b[p] <= '9') ++p;
        } else {
          return err(p, "expected a digit in this number");
        }
        if (p < le && b[p] == '.') {
          ++p;
          if (p >= le || b[p] < '0' || b[p] > '9') return err(p, "expected a digit after '.'");
          while (p < le && b[p] >= '0' && b[p] <= '9') ++p;
        }
        if (p < le && (b[p] == 'e' || b[p] == 'E')) {
          ++p;
          if (p < le && (b[p] == '+' || b[p] == '-')) ++p;
          if (p >= le || b[p] < '0' || b[p] > '9')
            return err(p, "expected a digit in the exponent");
          while (p < le && b[p] >= '0' && b[p] <= '9') ++p;
        }
        c.scratch = false;
        c.offset = start;
        c.size = p - start;
        c.kind = ValueKind::kNumber;
      } else if (le - p >= 4 && std::memcmp(b + p, "true", 4) == 0) {
        c = Cell{c.pos, c.line, c.line_start, p, 4, false, ValueKind::kBool};
        p += 4;
      } else if (le - p >= 5 && std::memcmp(b + p, "false", 5) == 0) {
        c = Cell{c.pos, c.line, c.line_start, p, 5, false, ValueKind::kBool};
        p += 5;
      } else if (le - p >= 4 && std::memcmp(b + p, "null", 4) == 0) {
        c = Cell{c.pos, c.line, c.line_start, p, 0, false, ValueKind::kNull};
        p += 4;
      } else if (ch == '{' || ch == '[') {
        return err(p,
                   "expected a string, number, true, false or null (nested objects and "
                   "arrays are not supported)");
      } else {
        return err(p, "expected a JSON value, got " + Printable(ch));
      }
      present_[col] = 1;
      skip_ws();
      if (p < le && b[p] == ',') {
        ++p;
        continue;
      }
      if (p < le && b[p] == '}') {
        ++p;
        break;
      }
      return err(p, "expected ',' or '}' after the value, got " +
                        (p >= le ? std::string("the end of the line") : Printable(b[p])));
    }
  }
  skip_ws();
  if (p < le)
    return err(p, "expected the end of the line after the object, got " + Printable(b[p]));
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (!present_[i]) continue;
    const Cell& c = cells_[i];
    values_[i].kind = c.kind;
    values_[i].text = c.scratch ? std::string_view(scratch_).substr(c.offset, c.size)
                                : std::string_view(b + c.offset, c.size);
  }
  p = le == end_ ? le : le + 1;
  row_line_ = row_line;
  begin_ = p;
  line_ = line + 1;
  line_start_ = abs(p);
  consumed_ = abs(p);
  return Parse::kRow;
}

// ---------------------------------------------------------------------------

TableWriter::TableWriter(TableFormat format, std::string* out) : format_(format), out_(out) {}

TableWriter::~TableWriter() = default;

StatusOr<std::unique_ptr<TableWriter>> TableWriter::Create(const std::string& path,
                                                           TableFormat format,
                                                           std::span<const std::string> columns) {
  std::unique_ptr<TableWriter> w(new TableWriter(format, nullptr));
  w->fd_ =
      UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!w->fd_.valid()) return ErrnoStatus("create " + path, errno);
  w->path_ = path;
  w->buf_.reserve(kFlushBytes + 4096);
  if (format == TableFormat::kCsv) {
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i) w->buf_ += ',';
      w->AppendCsv(columns[i]);
    }
    w->buf_ += '\n';
  }
  return w;
}

std::unique_ptr<TableWriter> TableWriter::ToString(std::string* out, TableFormat format,
                                                   std::span<const std::string> columns) {
  std::unique_ptr<TableWriter> w(new TableWriter(format, out));
  if (format == TableFormat::kCsv) {
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i) w->buf_ += ',';
      w->AppendCsv(columns[i]);
    }
    w->buf_ += '\n';
  }
  return w;
}

void TableWriter::AppendCsv(std::string_view s) {
  // A leading byte order mark is quoted so that a reader at the start of the
  // file does not take it for the file's own and drop it.
  bool quote = s.substr(0, 3) == "\xef\xbb\xbf";
  for (char c : s) {
    if (kCsvSpecial[static_cast<unsigned char>(c)]) {
      quote = true;
      break;
    }
  }
  if (!quote) {
    buf_.append(s);
    return;
  }
  buf_ += '"';
  for (char c : s) {
    if (c == '"') buf_ += '"';
    buf_ += c;
  }
  buf_ += '"';
}

void TableWriter::AppendJsonString(std::string_view s) {
  buf_ += '"';
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    buf_.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': buf_ += "\\\""; break;
      case '\\': buf_ += "\\\\"; break;
      case '\n': buf_ += "\\n"; break;
      case '\r': buf_ += "\\r"; break;
      case '\t': buf_ += "\\t"; break;
      default: {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\u%04x", c);
        buf_ += esc;
      }
    }
  }
  buf_.append(s.data() + run, s.size() - run);
  buf_ += '"';
}

Status TableWriter::Write(std::span<const std::string> names, std::span<const Value> values) {
  if (format_ == TableFormat::kCsv) {
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) buf_ += ',';
      AppendCsv(values[i].text);
    }
    buf_ += '\n';
  } else {
    buf_ += '{';
    bool first = true;
    for (size_t i = 0; i < values.size() && i < names.size(); ++i) {
      const Value& v = values[i];
      if (v.kind == ValueKind::kAbsent) continue;
      if (!first) buf_ += ',';
      first = false;
      AppendJsonString(names[i]);
      buf_ += ':';
      switch (v.kind) {
        case ValueKind::kNull: buf_ += "null"; break;
        case ValueKind::kNumber:
        case ValueKind::kBool: buf_.append(v.text); break;
        default: AppendJsonString(v.text);
      }
    }
    buf_ += "}\n";
  }
  if (buf_.size() >= kFlushBytes) return Flush();
  return Status::Ok();
}

Status TableWriter::Flush() {
  written_ += buf_.size();
  if (out_ != nullptr) {
    out_->append(buf_);
    buf_.clear();
    return Status::Ok();
  }
  Status s = WriteFull(fd_.get(), {reinterpret_cast<const uint8_t*>(buf_.data()), buf_.size()});
  buf_.clear();
  if (!s.ok()) return s.WithContext(path_);
  return Status::Ok();
}

Status TableWriter::Close() {
  RETURN_IF_ERROR(Flush());
  if (fd_.valid()) {
    if (::fsync(fd_.get()) != 0) return ErrnoStatus("fsync " + path_, errno);
    fd_.reset();
  }
  return Status::Ok();
}

}  // namespace cce::explore
