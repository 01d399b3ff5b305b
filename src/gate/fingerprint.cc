// Keyed reference fingerprints and the copy / memorisation detectors.
//
// Design (docs/gate.md, "Exact copies" and "Model artifacts"):
//
// Normalisation (normalize.h), identical for reference cells and output:
// - Text is UTF-8 (parsers decode UTF-16 first). Fullwidth forms U+FF01..FF5E
//   fold to ASCII; invisible characters (U+200B..200F, U+2060..2064, U+FEFF,
//   U+00AD, U+180E, U+034F, bidi controls U+202A..202E, U+2066..2069) are
//   dropped, so "jo<ZWSP>hn" is "john"; NBSP, the U+2000 spaces, the
//   ideographic space, control characters, quotes (" ` and typographic
//   double quotes, guillemets) and invalid UTF-8 bytes are spaces; ASCII and
//   Latin-1 letters are lower-cased; U+2018/2019 are apostrophes.
// - Tokens are maximal runs of letters/digits (any non-ASCII code point
//   counts as a letter) with inner . - _ @ + ' , '/' between digits and ','
//   in thousands groups (1,234,567.50); leading/trailing punctuation is
//   trimmed. Signs are not part of tokens (a leading '-' or '+' is dropped).
// - Numbers canonicalise to significant digits and a decimal exponent
//   ("n12345e4"): 1234.5 == "1,234.50" == 1.2345e3 == +1234.500. An integer
//   written with leading zeros ("00123") keeps its raw form ("t00123"); its
//   numeric form (== 123) is added for outputs always and for reference
//   cells only in numeric columns, so a code matches only itself while a
//   zero-padded number matches its value.
// - Dates canonicalise to "dYYYYMMDD": yyyy-mm-dd, yyyy/mm/dd, yyyy.mm.dd
//   and ISO date-times are year first; dd.mm.yyyy and dd-mm-yyyy day first;
//   nn/nn/yyyy is day first when the first field is over 12, month first
//   when the second is, and gives both readings when both fields are <= 12
//   (on both sides, so a match on either reading counts).
// - Tokens made of digits grouped by '-' or '.' (phone and account numbers)
//   also match as bare digits.
//
// Reference index (Builder, per file; files of one dataset share the index
// but each file's columns are judged on their own):
// - Each cell's forms: every token's forms, and for a cell of 2 or 3 text
//   tokens (no numbers or dates) the tokens joined by one space
//   ("john smith"), which outputs rebuild from 2-3 token shingles.
// - A form is distinctive when its strength (characters; for numbers
//   significant digits; 8 for dates) is >= min_token_chars and it occurs in
//   at most max(2, 0.1% of rows) rows of its column.
// - A numeric or date column is "dense" when its distinct values cover more
//   than 0.1% of the values possible between its minimum and maximum at its
//   precision (salaries, birth dates, sequential ids): any number in range
//   would hit one by chance, so its cells count toward copied rows (in
//   combination with the rest of the row) and memorised rows, never alone
//   as copied cells or identifiers.
// - Identifier columns: non-dense, >= 95% of rows have a whole-cell form
//   (one token, or 2-3 text tokens) that is distinct and distinctive (ids,
//   e-mails, full names, phone numbers).
// - Fingerprint of a form: HMAC-SHA256(key, kind byte + form) truncated to
//   64 bits (crypto::HmacSha256: the key's states are set up once per
//   index and checked against OpenSSL's HMAC). The index keeps sorted (fingerprint, row, column,
//   flags) entries, each row's count of distinctive cells and of
//   memorisable numeric cells, and its file and line for messages.
// - Memorisation: a numeric cell in a non-text column is also stored as the
//   form a model holds of it: the value rounded to float32 and printed with
//   6 significant digits ("m" forms, normalize::AddMemoForm), distinctive
//   under the same rule.
//
// Matching (DetectCopies), per output record: a table row (the header is a
// record too), a text line (lines over 4 KiB in overlapping 4 KiB windows),
// an item path (split on / ! . _ - and extension-less), a 2-D array's row or
// a window of values in a 1-D array. A record is made of chunks (a table
// cell, a line, a path piece); each chunk's tokens and its 2-3 token text
// shingles (within the chunk: a name split over two columns matches by its
// tokens) are fingerprinted. Table cells holding a plain number that no index
// could hold (too few significant digits, absent shape) are skipped
// unparsed, and short cells that matched nothing are remembered (bounded)
// and skipped when they recur (a bounded direct-mapped cache maps repeated
// forms to fingerprints; forms too short to be distinctive, or of a shape
// no indexed form has, are skipped before hashing; a blocked bit filter
// skips most index look-ups).
// Shapes: a form's kind and coarse shape (text: its length; numbers: count
// of significant digits and exponent). The index keeps the fingerprints of
// the shapes it holds (so the sealed index does not show them either); a
// matcher fingerprints each shape it meets once, and skips forms of shapes
// absent from the index: most output numbers never reach HMAC.
// - "copy.row": one record hits >= row_min_cells distinctive columns of one
//   reference row and >= row_min_fraction of that row's distinctive cells.
//   Hard once the distinct copied rows over the whole output reach
//   rows_hold. An aggregate (means, sums, counts) shares at most a group key
//   with a row, so it stays under row_min_cells; a group of one is SDC's.
// - "copy.identifier": distinct identifier-column values seen anywhere
//   (tables, texts, paths: counted over the whole output, so a column spread
//   one value per file adds up); hard at identifiers_hold.
// - "copy.cell": distinct distinctive non-dense cells anywhere; hard at
//   cells_hold, below it one finding scoring min(1, n * cell_score).
// - "model.memorised_values": distinct distinctive non-dense numeric cells
//   found as array values anywhere (a column of costs kept as "weights");
//   hard at cells_hold, below it scored like copy.cell.
// - "model.memorised_row": within one array row (2-D) or within a window of
//   2x the reference's widest numeric row (1-D), >= row_min_cells memo forms
//   of one reference row and >= row_min_fraction of its numeric cells; hard
//   at rows_hold.
// Messages name the dataset, reference file and line, never the value.
//
// Serialized index ("CCEFP1", little-endian): magic, version byte, u32
// min_token_chars, u32 max_join, u32 max_memo, string dataset, u32 file
// count + strings, u64 row count + rows (u32 file, u32 line, u16 cells, u16
// memo), u64 entry count + entries (u64 fp, u32 row, u16 column, u16 flags;
// sorted), u32 shape count + u64 shape fingerprints (sorted), u64 key check (fingerprint of a fixed
// string: a wrong key is detected), SHA-256 of all preceding bytes. Strings are u32 length + bytes.
#include "gate/fingerprint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "gate/normalize.h"

namespace cce::gate {
namespace {

namespace fs = std::filesystem;
using normalize::Forms;

constexpr uint16_t kIdentifier = 1;
constexpr uint16_t kDense = 2;
constexpr uint16_t kMemo = 4;
constexpr uint16_t kAllFlags = kIdentifier | kDense | kMemo;
constexpr char kMagic[] = "CCEFP1";
constexpr uint8_t kVersion = 1;
constexpr size_t kMaxColumns = 65535;
constexpr size_t kKeySize = 32;
constexpr size_t kMaxListed = 5;        // locations listed in one aggregated finding
constexpr size_t kMaxRowFindings = 50;  // copied-row findings before a summary
constexpr size_t kLineWindow = 4096;

// HMAC-SHA256 (crypto::HmacSha256) truncated to its first 64 bits,
// big-endian.
class KeyedHasher {
 public:
  explicit KeyedHasher(crypto::HmacSha256 mac) : mac_(std::move(mac)) {}

  uint64_t Fingerprint(std::string_view form) const {
    const crypto::Sha256Digest digest = mac_.Mac(form);
    uint64_t fp = 0;
    for (int i = 0; i < 8; ++i) fp = (fp << 8) | digest[i];
    return fp;
  }

 private:
  crypto::HmacSha256 mac_;
};

uint64_t ShapeFingerprint(const KeyedHasher& hasher, uint16_t shape) {
  const char form[3] = {'\x02', static_cast<char>(shape & 0xff), static_cast<char>(shape >> 8)};
  return hasher.Fingerprint(std::string_view(form, 3));
}

uint64_t KeyCheck(const KeyedHasher& hasher) {
  return hasher.Fingerprint(
      std::string_view("\x01"
                       "cce4long fingerprint key check"));
}

struct Entry {
  uint64_t fp = 0;
  uint32_t row = 0;
  uint16_t col = 0;
  uint16_t flags = 0;
};
bool operator<(const Entry& a, const Entry& b) {
  if (a.fp != b.fp) return a.fp < b.fp;
  if (a.row != b.row) return a.row < b.row;
  return a.col < b.col;
}

struct RowInfo {
  uint32_t file = 0;
  uint32_t line = 0;
  uint16_t cells = 0;  // distinctive cells
  uint16_t memo = 0;   // memorisable numeric cells
};

}  // namespace

struct ReferenceIndex::Impl {
  std::string dataset;
  std::unique_ptr<KeyedHasher> hasher;
  uint32_t min_token_chars = 4;
  uint32_t max_join = 1;  // longest text shingle a reference cell needs (1..3)
  uint32_t max_memo = 0;  // most memo cells in one row
  std::vector<std::string> files;
  std::vector<RowInfo> rows;
  std::vector<Entry> entries;  // sorted
  uint64_t cells = 0;
  // Fingerprints of the shapes (normalize::Forms::Span::shape) of indexed
  // forms, sorted: a form of another shape cannot match, so is not hashed.
  std::vector<uint64_t> shapes;
  // Blocked 2-probe bit filter over entry fingerprints (one word per
  // look-up, ~8 bits per entry).
  std::vector<uint64_t> filter;
  uint64_t filter_mask = 0;

  static uint64_t FilterBits(uint64_t fp) {
    return (uint64_t{1} << ((fp >> 40) & 63)) | (uint64_t{1} << ((fp >> 52) & 63));
  }
  void BuildFilter() {
    uint64_t words = 1 << 10;
    while (words * 8 < entries.size() && words < (uint64_t{1} << 23)) words <<= 1;
    filter.assign(words, 0);
    filter_mask = words - 1;
    for (const Entry& e : entries) filter[e.fp & filter_mask] |= FilterBits(e.fp);
  }
  bool MayContain(uint64_t fp) const {
    const uint64_t bits = FilterBits(fp);
    return (filter[fp & filter_mask] & bits) == bits;
  }
  bool HasShape(uint16_t shape) const {
    return std::binary_search(shapes.begin(), shapes.end(), ShapeFingerprint(*hasher, shape));
  }
  std::pair<const Entry*, const Entry*> Find(uint64_t fp) const {
    if (!MayContain(fp)) return {nullptr, nullptr};
    const Entry* lo = std::lower_bound(entries.data(), entries.data() + entries.size(), fp,
                                       [](const Entry& e, uint64_t v) { return e.fp < v; });
    const Entry* hi = lo;
    const Entry* end = entries.data() + entries.size();
    while (hi != end && hi->fp == fp) ++hi;
    return {lo, hi};
  }
  std::string RowName(uint32_t row) const {
    const RowInfo& r = rows[row];
    return "line " + std::to_string(r.line) + " of '" + files[r.file] + "'";
  }
};

namespace {

// ---------------------------------------------------------------------------
// Reference file readers.

using Records = std::vector<std::vector<std::string>>;

Status CheckText(const std::string& name, std::string_view bytes) {
  const size_t nul = bytes.find('\0');
  if (nul != std::string_view::npos) {
    const size_t line =
        static_cast<size_t>(
            std::count(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(nul), '\n')) +
        1;
    return InvalidArgument(name + ": line " + std::to_string(line) + ": NUL byte at byte " +
                           std::to_string(nul) + ", expected CSV/TSV or JSON Lines text");
  }
  return Status::Ok();
}

char SniffDelimiter(std::string_view bytes) {
  size_t counts[3] = {0, 0, 0};  // , \t ;
  bool quoted = false;
  for (char c : bytes) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '\n') break;
    if (c == ',') ++counts[0];
    if (c == '\t') ++counts[1];
    if (c == ';') ++counts[2];
  }
  if (counts[1] > counts[0] && counts[1] >= counts[2]) return '\t';
  if (counts[2] > counts[0]) return ';';
  return ',';
}

// RFC 4180 (with LF or CRLF line ends). `lines` gets each record's first line.
Status ReadDelimited(const std::string& name, std::string_view bytes, char delim, Records* records,
                     std::vector<uint32_t>* lines) {
  std::vector<std::string> record;
  std::string field;
  size_t i = 0;
  uint32_t line = 1;
  const size_t n = bytes.size();
  while (i < n) {
    const uint32_t record_line = line;
    record.clear();
    bool end_of_record = false;
    while (!end_of_record) {
      field.clear();
      if (i < n && bytes[i] == '"') {
        const uint32_t quote_line = line;
        ++i;
        while (true) {
          if (i >= n) {
            return InvalidArgument(name + ": line " + std::to_string(quote_line) +
                                   ": unterminated quoted field, expected a closing '\"'");
          }
          const char c = bytes[i++];
          if (c == '"') {
            if (i < n && bytes[i] == '"') {
              field.push_back('"');
              ++i;
            } else {
              break;
            }
          } else {
            if (c == '\n') ++line;
            field.push_back(c);
          }
        }
        if (i < n && bytes[i] != delim && bytes[i] != '\n' && bytes[i] != '\r') {
          return InvalidArgument(name + ": line " + std::to_string(line) +
                                 ": expected a delimiter or line end after a quoted field");
        }
      } else {
        while (i < n && bytes[i] != delim && bytes[i] != '\n') field.push_back(bytes[i++]);
        if (!field.empty() && field.back() == '\r' && (i >= n || bytes[i] == '\n'))
          field.pop_back();
      }
      record.push_back(field);
      if (i < n && bytes[i] == '\r') ++i;
      if (i >= n || bytes[i] == '\n') {
        if (i < n) {
          ++i;
          ++line;
        }
        end_of_record = true;
      } else {
        ++i;  // delimiter
      }
    }
    if (record.size() == 1 && record[0].empty()) continue;  // blank line
    if (records->empty() && record.size() > kMaxColumns) {
      return InvalidArgument(name + ": line " + std::to_string(record_line) + ": " +
                             std::to_string(record.size()) + " columns, expected at most 65535");
    }
    if (!records->empty() && record.size() != (*records)[0].size()) {
      return InvalidArgument(name + ": line " + std::to_string(record_line) + ": " +
                             std::to_string(record.size()) + " fields, expected " +
                             std::to_string((*records)[0].size()) + " as in the header");
    }
    records->push_back(record);
    lines->push_back(record_line);
  }
  if (records->empty())
    return InvalidArgument(name + ": line 1: empty file, expected a header row");
  return Status::Ok();
}

void Flatten(const nlohmann::json& value, const std::string& prefix, int depth,
             std::vector<std::pair<std::string, std::string>>* out) {
  if (value.is_object() && depth < 8) {
    for (const auto& [k, v] : value.items())
      Flatten(v, prefix.empty() ? k : prefix + "." + k, depth + 1, out);
  } else if (value.is_array() && depth < 8) {
    size_t idx = 0;
    for (const auto& v : value) Flatten(v, prefix + "." + std::to_string(idx++), depth + 1, out);
  } else if (value.is_string()) {
    out->emplace_back(prefix, value.get<std::string>());
  } else if (value.is_number()) {
    out->emplace_back(prefix, value.dump());
  } else if (!value.is_null() && !value.is_boolean()) {
    out->emplace_back(prefix, value.dump());
  }
}

// JSON Lines: one object per line; columns are the union of (flattened)
// keys in first-seen order.
Status ReadJsonLinesOrThrow(const std::string& name, std::string_view bytes, Records* records,
                            std::vector<uint32_t>* lines) {
  std::unordered_map<std::string, size_t> columns;
  records->emplace_back();  // header, filled as keys appear
  lines->push_back(0);
  size_t pos = 0;
  uint32_t line = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  while (pos < bytes.size()) {
    ++line;
    size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view text = bytes.substr(pos, end - pos);
    pos = end + 1;
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
      text.remove_suffix(1);
    if (text.empty()) continue;
    nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || !value.is_object()) {
      return InvalidArgument(name + ": line " + std::to_string(line) + ": expected a JSON object");
    }
    fields.clear();
    Flatten(value, "", 0, &fields);
    std::vector<std::string> record(columns.size());
    for (auto& [key, v] : fields) {
      auto [it, inserted] = columns.emplace(key, columns.size());
      if (inserted) {
        if (columns.size() > kMaxColumns) {
          return InvalidArgument(name + ": line " + std::to_string(line) +
                                 ": over 65535 distinct keys");
        }
        (*records)[0].push_back(key);
      }
      if (it->second >= record.size()) record.resize(it->second + 1);
      record[it->second] = std::move(v);
    }
    records->push_back(std::move(record));
    lines->push_back(line);
  }
  if (records->size() < 2)
    return InvalidArgument(name + ": line 1: no JSON object, expected JSON Lines");
  for (auto& r : *records) r.resize((*records)[0].size());
  return Status::Ok();
}

// nlohmann::json throws on a few inputs even with exceptions off at parse
// (dump of odd values): caught here, the one boundary.
Status ReadJsonLines(const std::string& name, std::string_view bytes, Records* records,
                     std::vector<uint32_t>* lines) {
  try {
    return ReadJsonLinesOrThrow(name, bytes, records, lines);
  } catch (const std::exception& e) {
    return InvalidArgument(name + ": not JSON Lines: " + e.what());
  }
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    char c = s[s.size() - suffix.size() + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != suffix[i]) return false;
  }
  return true;
}

// Which cells of a column, and with what flags, go into the index.
struct CellForms {
  Forms forms;
  int whole = -1;  // index of the whole-cell form, -1 if none
  bool numeric = false;
  double value = 0;
};

}  // namespace

// ---------------------------------------------------------------------------
// Builder.

struct ReferenceIndex::Builder::Impl {
  Policy policy;
  std::unique_ptr<ReferenceIndex::Impl> index;
  std::vector<bool> shapes = std::vector<bool>(normalize::kShapes);  // shapes indexed
  size_t key_size = 0;
  Status key_status;  // why the key could not be set up, if it could not
};

ReferenceIndex::Builder::Builder(std::string dataset, crypto::ByteSpan key, const Policy& policy)
    : impl_(std::make_unique<Impl>()) {
  impl_->policy = policy;
  impl_->index = std::make_unique<ReferenceIndex::Impl>();
  impl_->index->dataset = std::move(dataset);
  auto mac = crypto::HmacSha256::Create(key);
  if (mac.ok()) {
    impl_->index->hasher = std::make_unique<KeyedHasher>(std::move(mac).value());
  } else {
    impl_->key_status = mac.status();
  }
  impl_->key_size = key.size();
  impl_->index->min_token_chars =
      static_cast<uint32_t>(std::max<size_t>(policy.min_token_chars, 1));
}

ReferenceIndex::Builder::~Builder() = default;

Status ReferenceIndex::Builder::AddFile(const std::string& name, std::string_view bytes) {
  if (!impl_->index) return FailedPrecondition(name + ": builder already finished");
  if (impl_->key_size != kKeySize) {
    return InvalidArgument("fingerprint key: " + std::to_string(impl_->key_size) +
                           " bytes, expected 32");
  }
  RETURN_IF_ERROR(impl_->key_status);
  ReferenceIndex::Impl& index = *impl_->index;
  RETURN_IF_ERROR(CheckText(name, bytes));
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  Records records;
  std::vector<uint32_t> lines;
  size_t first = bytes.find_first_not_of(" \t\r\n");
  const bool jsonl = EndsWith(name, ".jsonl") || EndsWith(name, ".ndjson") ||
                     (!EndsWith(name, ".csv") && !EndsWith(name, ".tsv") &&
                      first != std::string_view::npos && bytes[first] == '{');
  if (jsonl) {
    RETURN_IF_ERROR(ReadJsonLines(name, bytes, &records, &lines));
  } else {
    const char delim = EndsWith(name, ".tsv") ? '\t' : SniffDelimiter(bytes);
    RETURN_IF_ERROR(ReadDelimited(name, bytes, delim, &records, &lines));
  }
  const size_t nrows = records.size() - 1;
  const size_t ncols = records[0].size();
  if (index.rows.size() + nrows > UINT32_MAX - 1) {
    return InvalidArgument(name + ": over 4294967294 reference rows in one index");
  }
  const auto file_id = static_cast<uint32_t>(index.files.size());
  index.files.push_back(name);
  const auto base_row = static_cast<uint32_t>(index.rows.size());
  for (size_t r = 0; r < nrows; ++r) index.rows.push_back({file_id, lines[r + 1], 0, 0});
  const size_t threshold = std::max<size_t>(2, nrows / 1000);
  const uint32_t min_strength = index.min_token_chars;

  std::vector<CellForms> cells(nrows);
  std::string folded;
  std::vector<std::string_view> tokens;
  std::vector<Entry> column_entries;
  for (size_t c = 0; c < ncols; ++c) {
    // Pass 1: forms of every cell, and the column's numeric statistics.
    size_t nonempty = 0, numeric = 0, leading_zero = 0;
    double lo = INFINITY, hi = -INFINITY;
    int32_t quantum_exp = INT32_MAX;
    auto build = [&](size_t r, bool numeric_of_leading_zero) {
      CellForms& cell = cells[r];
      cell = CellForms{};
      folded.clear();
      tokens.clear();
      normalize::Fold(records[r + 1][c], &folded);
      normalize::Tokenize(folded, &tokens);
      bool all_text = true;
      normalize::TokenInfo info;
      for (std::string_view t : tokens) {
        info =
            normalize::AddTokenForms(t, numeric_of_leading_zero, &cell.forms, /*want_value=*/true);
        if (info.is_number || info.is_date) all_text = false;
      }
      if (tokens.size() == 1) {
        cell.whole = cell.forms.size() > 0 ? 0 : -1;
        cell.numeric = info.is_number || info.is_date;
        if (info.is_number) {
          cell.value = info.value;
          quantum_exp = std::min(quantum_exp, info.significant > 0 ? info.last_digit_exp : 0);
        } else if (info.is_date) {
          const std::string_view d = cell.forms.at(0);  // dYYYYMMDD: days, roughly
          const int y = std::stoi(std::string(d.substr(1, 4)));
          const int m = std::stoi(std::string(d.substr(5, 2)));
          const int day = std::stoi(std::string(d.substr(7, 2)));
          cell.value = y * 372.0 + m * 31.0 + day;
          quantum_exp = std::min(quantum_exp, 0);
        }
        if (info.leading_zero) ++leading_zero;
      } else if (tokens.size() >= 2 && tokens.size() <= 3 && all_text) {
        normalize::AddJoinedForm(tokens.data(), tokens.size(), &cell.forms);
        cell.whole = static_cast<int>(cell.forms.size()) - 1;
        index.max_join = std::max<uint32_t>(index.max_join, static_cast<uint32_t>(tokens.size()));
      }
    };
    for (size_t r = 0; r < nrows; ++r) {
      build(r, false);
      if (tokens.empty()) continue;
      ++nonempty;
      if (cells[r].numeric) {
        ++numeric;
        lo = std::min(lo, cells[r].value);
        hi = std::max(hi, cells[r].value);
      }
    }
    const bool numeric_column = nonempty > 0 && numeric * 10 >= nonempty * 9;
    if (numeric_column && leading_zero * 2 < numeric) {
      for (size_t r = 0; r < nrows; ++r) {
        if (!cells[r].forms.spans.empty() && cells[r].forms.buf[0] == 't') build(r, true);
      }
    } else if (leading_zero > 0) {
      // Codes: no numeric value of their own for column statistics.
      for (size_t r = 0; r < nrows; ++r) {
        if (!cells[r].forms.spans.empty() && cells[r].forms.buf[0] == 't') cells[r].numeric = false;
      }
    }
    // Row counts of each form (a form counted once per cell).
    std::unordered_map<std::string_view, uint32_t> counts;
    counts.reserve(nrows * 2);
    std::vector<std::string_view> seen;
    for (size_t r = 0; r < nrows; ++r) {
      seen.clear();
      for (size_t k = 0; k < cells[r].forms.size(); ++k) seen.push_back(cells[r].forms.at(k));
      std::sort(seen.begin(), seen.end());
      seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
      for (std::string_view f : seen) ++counts[f];
    }
    // Dense: distinct values over the values possible in range at its precision.
    bool dense = false;
    if (numeric_column && numeric > 0) {
      std::unordered_set<double> distinct;
      for (size_t r = 0; r < nrows; ++r) {
        if (cells[r].numeric) distinct.insert(cells[r].value);
      }
      const double quantum = std::pow(10.0, quantum_exp == INT32_MAX ? 0 : quantum_exp);
      const double possible = (hi - lo) / quantum + 1;
      dense = static_cast<double>(distinct.size()) > possible * 0.001;
    }
    // Identifier column: whole-cell forms distinct and distinctive.
    size_t unique_whole = 0;
    for (size_t r = 0; r < nrows; ++r) {
      const CellForms& cell = cells[r];
      if (cell.whole < 0) continue;
      const auto span = cell.forms.spans[static_cast<size_t>(cell.whole)];
      if (span.strength >= min_strength &&
          counts[cell.forms.at(static_cast<size_t>(cell.whole))] == 1) {
        ++unique_whole;
      }
    }
    const bool identifier = !dense && nrows > 0 && unique_whole * 100 >= nrows * 95;
    // Entries.
    for (size_t r = 0; r < nrows; ++r) {
      CellForms& cell = cells[r];
      bool distinctive = false, memo = false;
      column_entries.clear();
      for (size_t k = 0; k < cell.forms.size(); ++k) {
        const std::string_view f = cell.forms.at(k);
        if (cell.forms.spans[k].strength < min_strength || counts[f] > threshold) continue;
        uint16_t flags = 0;
        if (dense && (f[0] == 'n' || f[0] == 'd')) flags |= kDense;
        if (identifier && static_cast<int>(k) == cell.whole) flags |= kIdentifier;
        column_entries.push_back({index.hasher->Fingerprint(f), base_row + static_cast<uint32_t>(r),
                                  static_cast<uint16_t>(c), flags});
        impl_->shapes[cell.forms.spans[k].shape] = true;
        distinctive = true;
      }
      // Memo form of a distinctive number (what a model stores of it).
      if (numeric_column && cell.numeric && cell.whole == 0 && cell.forms.buf[0] == 'n' &&
          distinctive) {
        Forms memo_form;
        if (normalize::AddMemoForm(cell.value, &memo_form) &&
            memo_form.spans[0].strength >= min_strength) {
          column_entries.push_back({index.hasher->Fingerprint(memo_form.at(0)),
                                    base_row + static_cast<uint32_t>(r), static_cast<uint16_t>(c),
                                    static_cast<uint16_t>(kMemo | (dense ? kDense : 0))});
          impl_->shapes[memo_form.spans[0].shape] = true;
          memo = true;
        }
      }
      index.entries.insert(index.entries.end(), column_entries.begin(), column_entries.end());
      RowInfo& row = index.rows[base_row + r];
      if (distinctive && row.cells < UINT16_MAX) ++row.cells;
      if (memo && row.memo < UINT16_MAX) ++row.memo;
    }
  }
  for (size_t r = 0; r < nrows; ++r) {
    const RowInfo& row = index.rows[base_row + r];
    index.cells += row.cells;
    index.max_memo = std::max<uint32_t>(index.max_memo, row.memo);
  }
  return Status::Ok();
}

StatusOr<ReferenceIndex> ReferenceIndex::Builder::Finish() {
  if (!impl_->index) return FailedPrecondition("fingerprint builder already finished");
  RETURN_IF_ERROR(impl_->key_status);
  std::unique_ptr<ReferenceIndex::Impl> index = std::move(impl_->index);
  std::sort(index->entries.begin(), index->entries.end());
  // One entry per (fingerprint, row, column), its flags merged.
  size_t kept = 0;
  for (size_t i = 0; i < index->entries.size(); ++i) {
    const Entry& e = index->entries[i];
    if (kept > 0) {
      Entry& last = index->entries[kept - 1];
      if (last.fp == e.fp && last.row == e.row && last.col == e.col) {
        last.flags |= e.flags;
        continue;
      }
    }
    index->entries[kept++] = e;
  }
  index->entries.resize(kept);
  for (size_t shape = 0; shape < normalize::kShapes; ++shape) {
    if (impl_->shapes[shape]) {
      index->shapes.push_back(ShapeFingerprint(*index->hasher, static_cast<uint16_t>(shape)));
    }
  }
  std::sort(index->shapes.begin(), index->shapes.end());
  index->BuildFilter();
  return ReferenceIndex(std::move(index));
}

// ---------------------------------------------------------------------------
// ReferenceIndex.

ReferenceIndex::ReferenceIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReferenceIndex::~ReferenceIndex() = default;
ReferenceIndex::ReferenceIndex(ReferenceIndex&&) noexcept = default;
ReferenceIndex& ReferenceIndex::operator=(ReferenceIndex&&) noexcept = default;

const std::string& ReferenceIndex::dataset() const {
  return impl_->dataset;
}
uint64_t ReferenceIndex::rows() const {
  return impl_->rows.size();
}
uint64_t ReferenceIndex::cells() const {
  return impl_->cells;
}

StatusOr<ReferenceIndex> ReferenceIndex::FromDirectory(const std::string& dir,
                                                       const Policy& policy) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return InvalidArgument(dir + ": not a readable directory");
  std::vector<std::string> paths;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    const std::string p = it->path().string();
    if (EndsWith(p, ".csv") || EndsWith(p, ".tsv") || EndsWith(p, ".jsonl") ||
        EndsWith(p, ".ndjson")) {
      paths.push_back(p);
    }
  }
  if (ec) return InvalidArgument(dir + ": cannot list: " + ec.message());
  if (paths.empty()) return InvalidArgument(dir + ": no .csv, .tsv, .jsonl or .ndjson file");
  std::sort(paths.begin(), paths.end());
  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::RandomSecret(32));
  std::string dataset = fs::path(dir).lexically_normal().filename().string();
  if (dataset.empty()) dataset = fs::path(dir).lexically_normal().parent_path().filename().string();
  Builder builder(dataset, key.span(), policy);
  for (const std::string& p : paths) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return InvalidArgument(p + ": cannot open");
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return InvalidArgument(p + ": read error");
    RETURN_IF_ERROR(builder.AddFile(fs::relative(p, dir, ec).string(), bytes));
  }
  return builder.Finish();
}

namespace {

void PutU16(std::string* out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Bounded little-endian reader; every read says what it expected.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  size_t offset() const { return pos_; }
  size_t left() const { return bytes_.size() - pos_; }
  Status Need(size_t n, std::string_view what) {
    if (left() < n) {
      return DataLoss("fingerprint index: byte " + std::to_string(pos_) + ": truncated, expected " +
                      std::string(what));
    }
    return Status::Ok();
  }
  uint64_t Uint(int size) {
    uint64_t v = 0;
    for (int i = 0; i < size; ++i)
      v |= uint64_t{static_cast<uint8_t>(bytes_[pos_ + static_cast<size_t>(i)])} << (8 * i);
    pos_ += static_cast<size_t>(size);
    return v;
  }
  StatusOr<uint64_t> Read(int size, std::string_view what) {
    RETURN_IF_ERROR(Need(static_cast<size_t>(size), what));
    return Uint(size);
  }
  StatusOr<std::string> String(std::string_view what) {
    ASSIGN_OR_RETURN(uint64_t n, Read(4, what));
    RETURN_IF_ERROR(Need(n, what));
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

}  // namespace

std::string ReferenceIndex::Serialize() const {
  const Impl& x = *impl_;
  std::string out;
  out.reserve(64 + x.rows.size() * 12 + x.entries.size() * 16);
  out.append(kMagic, 6);
  out.push_back(static_cast<char>(kVersion));
  PutU32(&out, x.min_token_chars);
  PutU32(&out, x.max_join);
  PutU32(&out, x.max_memo);
  PutString(&out, x.dataset);
  PutU32(&out, static_cast<uint32_t>(x.files.size()));
  for (const std::string& f : x.files) PutString(&out, f);
  PutU64(&out, x.rows.size());
  for (const RowInfo& r : x.rows) {
    PutU32(&out, r.file);
    PutU32(&out, r.line);
    PutU16(&out, r.cells);
    PutU16(&out, r.memo);
  }
  PutU64(&out, x.entries.size());
  for (const Entry& e : x.entries) {
    PutU64(&out, e.fp);
    PutU32(&out, e.row);
    PutU16(&out, e.col);
    PutU16(&out, e.flags);
  }
  PutU32(&out, static_cast<uint32_t>(x.shapes.size()));
  for (uint64_t shape : x.shapes) PutU64(&out, shape);
  PutU64(&out, KeyCheck(*x.hasher));
  const crypto::Sha256Digest digest = crypto::Sha256(crypto::AsBytes(out));
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return out;
}

StatusOr<ReferenceIndex> ReferenceIndex::Deserialize(std::string_view bytes, crypto::ByteSpan key) {
  constexpr size_t kDigest = 32;
  if (bytes.size() < 7 + kDigest || bytes.substr(0, 6) != std::string_view(kMagic, 6)) {
    return DataLoss("fingerprint index: byte 0: expected magic \"CCEFP1\"");
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kDigest);
  const crypto::Sha256Digest digest = crypto::Sha256(crypto::AsBytes(body));
  if (!crypto::ConstantTimeEquals(digest, crypto::AsBytes(bytes.substr(body.size())))) {
    return DataLoss("fingerprint index: byte " + std::to_string(body.size()) +
                    ": SHA-256 trailer mismatch (corrupted index)");
  }
  Reader in(body);
  (void)in.Uint(6);
  ASSIGN_OR_RETURN(uint64_t version, in.Read(1, "a version byte"));
  if (version != kVersion) {
    return DataLoss("fingerprint index: byte 6: version " + std::to_string(version) +
                    ", expected 1");
  }
  auto x = std::make_unique<Impl>();
  if (key.size() != kKeySize) {
    return InvalidArgument("fingerprint key: " + std::to_string(key.size()) +
                           " bytes, expected 32");
  }
  ASSIGN_OR_RETURN(crypto::HmacSha256 mac, crypto::HmacSha256::Create(key));
  x->hasher = std::make_unique<KeyedHasher>(std::move(mac));
  ASSIGN_OR_RETURN(uint64_t min_chars, in.Read(4, "min_token_chars"));
  ASSIGN_OR_RETURN(uint64_t max_join, in.Read(4, "max_join"));
  ASSIGN_OR_RETURN(uint64_t max_memo, in.Read(4, "max_memo"));
  if (min_chars == 0 || max_join < 1 || max_join > 3 || max_memo > kMaxColumns) {
    return DataLoss("fingerprint index: byte 7: header field out of range");
  }
  x->min_token_chars = static_cast<uint32_t>(min_chars);
  x->max_join = static_cast<uint32_t>(max_join);
  x->max_memo = static_cast<uint32_t>(max_memo);
  ASSIGN_OR_RETURN(x->dataset, in.String("the dataset name"));
  ASSIGN_OR_RETURN(uint64_t nfiles, in.Read(4, "a file count"));
  if (nfiles > in.left() / 4) {
    return DataLoss("fingerprint index: byte " + std::to_string(in.offset()) + ": " +
                    std::to_string(nfiles) + " files, more than the bytes left hold");
  }
  for (uint64_t i = 0; i < nfiles; ++i) {
    ASSIGN_OR_RETURN(std::string f, in.String("a file name"));
    x->files.push_back(std::move(f));
  }
  ASSIGN_OR_RETURN(uint64_t nrows, in.Read(8, "a row count"));
  if (nrows > in.left() / 12 || nrows >= UINT32_MAX) {
    return DataLoss("fingerprint index: byte " + std::to_string(in.offset()) + ": " +
                    std::to_string(nrows) + " rows, more than the bytes left hold");
  }
  x->rows.resize(nrows);
  for (RowInfo& r : x->rows) {
    const size_t at = in.offset();
    r.file = static_cast<uint32_t>(in.Uint(4));
    r.line = static_cast<uint32_t>(in.Uint(4));
    r.cells = static_cast<uint16_t>(in.Uint(2));
    r.memo = static_cast<uint16_t>(in.Uint(2));
    if (r.file >= nfiles || r.memo > r.cells) {
      return DataLoss("fingerprint index: byte " + std::to_string(at) + ": row names file " +
                      std::to_string(r.file) + ", expected < " + std::to_string(nfiles));
    }
    x->cells += r.cells;
    x->max_memo = std::max<uint32_t>(x->max_memo, r.memo);
  }
  ASSIGN_OR_RETURN(uint64_t nentries, in.Read(8, "an entry count"));
  if (nentries > in.left() / 16) {
    return DataLoss("fingerprint index: byte " + std::to_string(in.offset()) + ": " +
                    std::to_string(nentries) + " entries, more than the bytes left hold");
  }
  x->entries.resize(nentries);
  for (size_t i = 0; i < nentries; ++i) {
    const size_t at = in.offset();
    Entry& e = x->entries[i];
    e.fp = in.Uint(8);
    e.row = static_cast<uint32_t>(in.Uint(4));
    e.col = static_cast<uint16_t>(in.Uint(2));
    e.flags = static_cast<uint16_t>(in.Uint(2));
    if (e.row >= nrows || (e.flags & ~kAllFlags) != 0 || (i > 0 && !(x->entries[i - 1] < e))) {
      return DataLoss("fingerprint index: byte " + std::to_string(at) + ": entry " +
                      std::to_string(i) + " out of range or out of order");
    }
  }
  ASSIGN_OR_RETURN(uint64_t nshapes, in.Read(4, "a shape count"));
  if (nshapes > normalize::kShapes || nshapes > in.left() / 8) {
    return DataLoss("fingerprint index: byte " + std::to_string(in.offset()) + ": " +
                    std::to_string(nshapes) + " shapes, more than the bytes left hold");
  }
  for (uint64_t i = 0; i < nshapes; ++i) {
    x->shapes.push_back(in.Uint(8));
    if (i > 0 && x->shapes[i - 1] >= x->shapes[i]) {
      return DataLoss("fingerprint index: byte " + std::to_string(in.offset() - 8) + ": shape " +
                      std::to_string(i) + " out of order");
    }
  }
  ASSIGN_OR_RETURN(uint64_t check, in.Read(8, "the key check"));
  if (in.left() != 0) {
    return DataLoss("fingerprint index: byte " + std::to_string(in.offset()) + ": " +
                    std::to_string(in.left()) + " unexpected bytes before the trailer");
  }
  if (check != KeyCheck(*x->hasher)) {
    return DataLoss("fingerprint index: the key does not match this index (key check differs)");
  }
  x->BuildFilter();
  return ReferenceIndex(std::move(x));
}

// ---------------------------------------------------------------------------
// Matching.

namespace {

inline uint64_t FastHash(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  std::memcpy(&w, s.data() + i, s.size() - i);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 29;
  return h;
}

// Bounded direct-mapped cache of form -> fingerprint for one reference
// (repeated output tokens are hashed once). Holds forms of output tokens,
// in process memory only, for the duration of one DetectCopies call.
class FingerprintCache {
 public:
  static constexpr size_t kSlots = 1 << 13;  // 256 KiB: stays in the CPU cache
  static constexpr size_t kMaxForm = 21;
  struct Result {
    uint64_t fp = 0;
    bool maybe = false;  // the index's filter may hold fp
  };
  FingerprintCache() : slots_(kSlots) {}
  Result Get(const ReferenceIndex::Impl& ref, std::string_view form) {
    if (form.size() > kMaxForm) {
      const uint64_t fp = ref.hasher->Fingerprint(form);
      return {fp, ref.MayContain(fp)};
    }
    const uint64_t h = FastHash(form);
    Slot& s = slots_[h & (kSlots - 1)];
    if (s.len == form.size() + 1 && std::memcmp(s.form, form.data(), form.size()) == 0) {
      return {s.fp, s.maybe != 0};
    }
    s.fp = ref.hasher->Fingerprint(form);
    s.maybe = ref.MayContain(s.fp) ? 1 : 0;
    s.len = static_cast<uint8_t>(form.size() + 1);
    std::memcpy(s.form, form.data(), form.size());
    return {s.fp, s.maybe != 0};
  }

 private:
  struct Slot {
    uint64_t fp = 0;
    uint8_t len = 0;  // form size + 1; 0: empty
    uint8_t maybe = 0;
    char form[kMaxForm + 1] = {};
  };
  std::vector<Slot> slots_;
};

// Short table cells that matched nothing in any index (direct-mapped,
// bounded): skipped when they recur.
class InertCells {
 public:
  static constexpr size_t kSlots = 1 << 12;
  static constexpr size_t kMaxCell = 23;
  InertCells() : slots_(kSlots) {}
  bool Contains(std::string_view cell) const {
    const Slot& s = slots_[FastHash(cell) & (kSlots - 1)];
    return s.len == cell.size() + 1 && std::memcmp(s.cell, cell.data(), cell.size()) == 0;
  }
  void Insert(std::string_view cell) {
    Slot& s = slots_[FastHash(cell) & (kSlots - 1)];
    s.len = static_cast<uint8_t>(cell.size() + 1);
    std::memcpy(s.cell, cell.data(), cell.size());
  }

 private:
  struct Slot {
    uint8_t len = 0;  // cell size + 1; 0: empty
    char cell[kMaxCell] = {};
  };
  std::vector<Slot> slots_;
};

struct Hit {
  uint32_t ref = 0;
  uint32_t row = 0;
  uint16_t col = 0;
  uint16_t flags = 0;
  uint64_t fp = 0;
  uint32_t pos = 0;    // arrays: value index
  bool first = false;  // first entry of its fingerprint (cell counting)
};

struct Place {
  std::string file;
  std::string location;
  int64_t row = -1, column = -1, line = -1, offset = -1;
  std::string Describe() const { return file + " (" + location + ")"; }
};

struct Listed {
  std::unordered_set<uint64_t> keys;
  std::vector<Place> places;
  void Add(uint64_t key, const Place& place) {
    if (keys.insert(key).second && places.size() < kMaxListed) places.push_back(place);
  }
};

std::string RowLocation(const Table& t, size_t row) {
  std::string s = "row " + std::to_string(row + 1);
  if (row < t.row_lines.size() && t.row_lines[row] != 0)
    s += " (line " + std::to_string(t.row_lines[row]) + ")";
  if (!t.name.empty()) s = "table '" + t.name + "', " + s;
  return s;
}

class Matcher {
 public:
  Matcher(const std::vector<const ReferenceIndex*>& refs, const Policy& policy)
      : refs_(refs),
        policy_(policy),
        caches_(refs.size()),
        shape_state_(refs.size(), std::vector<int8_t>(normalize::kShapes, -1)),
        cells_(refs.size()),
        ids_(refs.size()),
        memo_cells_(refs.size()) {
    for (const ReferenceIndex* r : refs_) max_join_ = std::max(max_join_, r->impl().max_join);
    min_strength_ = static_cast<uint32_t>(std::max<size_t>(policy.min_token_chars, 1));
  }

  // Forms of a record: tokens of folded text, plus 2-3 token text shingles.
  // A record is built from chunks (a table cell, a text line, pieces of a
  // path): each chunk's tokens and their 2-3 token shingles are looked up
  // as it is added; EndRecord judges the record's hits.
  void BeginRecord() { hits_.clear(); }
  // Returns whether any form of the chunk may be in an index.
  bool AddChunk(std::string_view text) {
    forms_.clear();
    tokens_.clear();
    folded_.clear();
    normalize::Fold(text, &folded_);
    FinishForms();
    return Lookup(false, 0, &hits_) > 0;
  }
  void AddPathPieces(std::string_view path) {
    // Components between '/' and '!', whole, without their extension, and
    // split on . _ - (file names carry values as "smith_john.txt").
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find_first_of("/!", start);
      if (end == std::string_view::npos) end = path.size();
      std::string_view comp = path.substr(start, end - start);
      AddChunk(comp);
      const size_t dot = comp.rfind('.');
      if (dot != std::string_view::npos && dot > 0) AddChunk(comp.substr(0, dot));
      std::string pieces(comp);
      for (char& c : pieces) {
        if (c == '.' || c == '_' || c == '-') c = ' ';
      }
      AddChunk(pieces);
      start = end + 1;
    }
  }
  // A table cell: plain numbers no index could hold are skipped unparsed,
  // and short cells that matched nothing are remembered as inert (tables
  // repeat categories and codes).
  void AddCell(std::string_view cell) {
    if (InertNumber(cell)) return;
    if (cell.size() > InertCells::kMaxCell) {
      AddChunk(cell);
      return;
    }
    if (inert_.Contains(cell)) return;
    if (!AddChunk(cell)) inert_.Insert(cell);
  }
  // Tokenises everything added and appends forms (call once per record).
  void FinishForms() {
    normalize::Tokenize(folded_, &tokens_);
    text_run_.clear();
    for (std::string_view t : tokens_) {
      bool numeric = false;
      if (t.size() < min_strength_) {
        // Too short to be distinctive alone (strength <= length): no forms,
        // but a short word still joins shingles ("li wu").
        numeric = t[0] >= '0' && t[0] <= '9' &&
                  t.find_first_not_of("0123456789.,") == std::string_view::npos;
      } else {
        const normalize::TokenInfo info = normalize::AddTokenForms(t, true, &forms_);
        numeric = info.is_number || info.is_date;
      }
      if (max_join_ < 2) continue;
      if (numeric) {
        text_run_.clear();
        continue;
      }
      text_run_.push_back(t);
      const size_t n = text_run_.size();
      for (size_t k = 2; k <= std::min<size_t>(n, max_join_); ++k) {
        normalize::AddJoinedForm(text_run_.data() + (n - k), k, &forms_);
      }
    }
  }

  // A cell holding one plain number that no reference could match (too few
  // significant digits, or a shape no index holds): skipped unparsed, as
  // numbers are most of a CSV's bytes.
  bool InertNumber(std::string_view cell) {
    uint32_t strength = 0;
    uint16_t shape = 0;
    if (!normalize::PlainNumberShape(cell, &strength, &shape)) return false;
    if (strength < min_strength_) return true;
    for (size_t i = 0; i < refs_.size(); ++i) {
      const ReferenceIndex::Impl& ref = refs_[i]->impl();
      if (strength < ref.min_token_chars) continue;
      int8_t& known = shape_state_[i][shape];
      if (known < 0) known = ref.HasShape(shape) ? 1 : 0;
      if (known != 0) return false;
    }
    return true;
  }

  // Looks the record's forms up; `memo` selects the memorisation entries.
  size_t Lookup(bool memo, uint32_t pos, std::vector<Hit>* hits) {
    size_t maybe = 0;
    for (size_t i = 0; i < refs_.size(); ++i) {
      const ReferenceIndex::Impl& ref = refs_[i]->impl();
      const uint32_t min_strength = std::max(min_strength_, ref.min_token_chars);
      for (size_t k = 0; k < forms_.size(); ++k) {
        if (forms_.spans[k].strength < min_strength) continue;
        int8_t& shape = shape_state_[i][forms_.spans[k].shape];
        if (shape < 0) shape = ref.HasShape(forms_.spans[k].shape) ? 1 : 0;
        if (shape == 0) continue;
        const FingerprintCache::Result got = caches_[i].Get(ref, forms_.at(k));
        if (!got.maybe) continue;
        ++maybe;
        const uint64_t fp = got.fp;
        auto [lo, hi] = ref.Find(fp);
        for (const Entry* e = lo; e != hi; ++e) {
          if (((e->flags & kMemo) != 0) != memo) continue;
          hits->push_back({static_cast<uint32_t>(i), e->row, e->col, e->flags, fp, pos, e == lo});
        }
      }
    }
    return maybe;
  }

  // One text/table/path record; the place is only built when it matters.
  template <typename MakePlace>
  void EndRecord(const MakePlace& make_place) {
    if (hits_.empty()) return;
    const Place place = make_place();
    for (const Hit& h : hits_) {
      if ((h.flags & kIdentifier) != 0) ids_[h.ref].Add(h.fp, place);
      if (h.first && (h.flags & kDense) == 0) {
        cells_[h.ref].Add((uint64_t{h.row} << 16) | h.col, place);
      }
    }
    std::sort(hits_.begin(), hits_.end(), [](const Hit& a, const Hit& b) {
      return std::tie(a.ref, a.row, a.col) < std::tie(b.ref, b.row, b.col);
    });
    for (size_t i = 0; i < hits_.size();) {
      size_t j = i;
      size_t cols = 0;
      for (; j < hits_.size() && hits_[j].ref == hits_[i].ref && hits_[j].row == hits_[i].row;
           ++j) {
        if (j == i || hits_[j].col != hits_[j - 1].col) ++cols;
      }
      CheckRow(hits_[i].ref, hits_[i].row, cols, place, /*memo=*/false);
      i = j;
    }
  }

  void CheckRow(uint32_t ref_id, uint32_t row, size_t cols, const Place& place, bool memo) {
    const ReferenceIndex::Impl& ref = refs_[ref_id]->impl();
    const RowInfo& info = ref.rows[row];
    const size_t total = memo ? info.memo : info.cells;
    if (cols < policy_.row_min_cells ||
        static_cast<double>(cols) < policy_.row_min_fraction * static_cast<double>(total)) {
      return;
    }
    auto& seen = memo ? memo_rows_ : copied_rows_;
    if (!seen.insert((uint64_t{ref_id} << 32) | row).second) return;
    auto& found = memo ? memo_findings_ : row_findings_;
    if (found.size() >= kMaxRowFindings) return;
    Finding f;
    f.detector = memo ? "model.memorised_row" : "copy.row";
    f.file = place.file;
    f.location = place.location;
    f.row = place.row;
    f.column = place.column;
    f.line = place.line;
    f.offset = place.offset;
    f.message = std::string(memo ? "values memorise" : "record copies") + " reference row at " +
                ref.RowName(row) + " of dataset '" + ref.dataset + "' (" + std::to_string(cols) +
                " of its " + std::to_string(total) + (memo ? " numeric" : " distinctive") +
                " cells)";
    found.push_back(std::move(f));
  }

  void MatchTable(const Table& t) {
    if (!t.header.empty()) {
      BeginRecord();
      for (const std::string& h : t.header) AddChunk(h);
      EndRecord([&] {
        Place place;
        place.file = t.file;
        place.location = t.name.empty() ? "header" : "table '" + t.name + "', header";
        place.line = t.row_lines.empty() ? -1 : 1;
        return place;
      });
    }
    for (size_t r = 0; r < t.rows.size(); ++r) {
      BeginRecord();
      for (const std::string& cell : t.rows[r]) AddCell(cell);
      EndRecord([&] {
        Place place;
        place.file = t.file;
        place.location = RowLocation(t, r);
        place.row = static_cast<int64_t>(r);
        place.line = r < t.row_lines.size() && t.row_lines[r] != 0
                         ? static_cast<int64_t>(t.row_lines[r])
                         : -1;
        return place;
      });
    }
  }

  void MatchText(const TextSpan& span) {
    const std::string_view text = span.text;
    const bool own_lines = span.location.empty() && span.offset == 0;
    const std::string where = span.location.empty() ? "" : span.location + ", ";
    size_t pos = 0;
    int64_t line = 1;
    auto place_at = [&](size_t byte, std::string suffix) {
      Place place;
      place.file = span.file;
      place.line = own_lines ? line : -1;
      place.offset = static_cast<int64_t>(span.offset + byte);
      place.location = where + "line " + std::to_string(line) + suffix;
      return place;
    };
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      const std::string_view content = text.substr(pos, end - pos);
      if (content.size() <= kLineWindow) {
        BeginRecord();
        AddChunk(content);
        EndRecord([&] { return place_at(pos, ""); });
      } else {
        // Long lines (minified JSON, one-line dumps): overlapping windows
        // cut at separators.
        for (size_t w = 0; w < content.size(); w += kLineWindow / 2) {
          size_t b = w, e = std::min(content.size(), w + kLineWindow);
          while (b > 0 && b < e && content[b] != ' ' && content[b] != ',' && content[b] != '{') ++b;
          while (e < content.size() && content[e] != ' ' && content[e] != ',' &&
                 content[e] != '}' && e - w < 2 * kLineWindow) {
            ++e;
          }
          BeginRecord();
          AddChunk(content.substr(b, e - b));
          EndRecord(
              [&] { return place_at(pos + b, ", byte " + std::to_string(span.offset + pos + b)); });
          if (e >= content.size()) break;
        }
      }
      pos = end + 1;
      ++line;
    }
  }

  void MatchPath(const std::string& path) {
    BeginRecord();
    AddPathPieces(path);
    EndRecord([&] {
      Place place;
      place.file = path;
      place.location = "file name";
      return place;
    });
  }

  void MatchArray(const NumericArray& a) {
    size_t max_memo = 0;
    for (const ReferenceIndex* r : refs_) max_memo = std::max<size_t>(max_memo, r->impl().max_memo);
    if (max_memo == 0 || a.values.empty()) return;
    const size_t width = a.shape.size() >= 2 && a.shape.back() > 0 ? a.shape.back() : 0;
    std::vector<Hit> hits;
    for (size_t i = 0; i < a.values.size(); ++i) {
      forms_.clear();
      if (!normalize::AddMemoForm(a.values[i], &forms_)) continue;
      Lookup(true, static_cast<uint32_t>(std::min<size_t>(i, UINT32_MAX)), &hits);
    }
    std::sort(hits.begin(), hits.end(), [](const Hit& x, const Hit& y) {
      return std::tie(x.ref, x.row, x.pos) < std::tie(y.ref, y.row, y.pos);
    });
    Place place;
    place.file = a.file;
    // Values a model holds one per row (a column of costs as "weights")
    // never make a row; counted over the whole output like copy.cell.
    for (const Hit& h : hits) {
      if (!h.first || (h.flags & kDense) != 0) continue;
      const size_t w = width > 0 ? width : 1;
      place.location =
          (a.location.empty() ? "" : a.location + ", ") +
          (width > 0 ? "row " + std::to_string(h.pos / w) : "index " + std::to_string(h.pos));
      memo_cells_[h.ref].Add((uint64_t{h.row} << 16) | h.col, place);
    }
    const size_t window = 2 * max_memo;
    // Sliding window (two pointers, linear in hits) over each reference
    // row's hits: one array row (2-D) or `window` values (1-D); the window
    // with the most distinct columns is judged.
    std::vector<uint32_t> col_count(kMaxColumns + 1, 0);
    for (size_t i = 0; i < hits.size();) {
      size_t j = i;
      while (j < hits.size() && hits[j].ref == hits[i].ref && hits[j].row == hits[i].row) ++j;
      auto same = [&](const Hit& first, const Hit& later) {
        return width > 0 ? first.pos / width == later.pos / width : later.pos - first.pos < window;
      };
      size_t distinct = 0, best = 0, best_at = i, e = i;
      for (size_t b = i; b < j; ++b) {
        for (; e < j && same(hits[b], hits[e]); ++e) {
          if (col_count[hits[e].col]++ == 0) ++distinct;
        }
        if (distinct > best) {
          best = distinct;
          best_at = b;
        }
        if (col_count[hits[b].col]-- == 1) --distinct;
      }
      for (size_t k = i; k < e; ++k) col_count[hits[k].col] = 0;
      if (best >= policy_.row_min_cells) {
        const Hit& h = hits[best_at];
        const std::string prefix = a.location.empty() ? "" : a.location + ", ";
        place.location = width > 0 ? prefix + "row " + std::to_string(h.pos / width)
                                   : prefix + "values from index " + std::to_string(h.pos);
        CheckRow(h.ref, h.row, best, place, /*memo=*/true);
      }
      i = j;
    }
  }

  void Emit(std::vector<Finding>* findings) {
    auto finish_rows = [&](std::vector<Finding>& found, size_t total, const char* detector) {
      const bool hard = total >= policy_.rows_hold;
      const double score =
          hard ? 1.0
               : std::min(1.0,
                          0.5 + 0.5 * static_cast<double>(total) /
                                    static_cast<double>(std::max<size_t>(1, policy_.rows_hold)));
      for (Finding& f : found) {
        f.hard = hard;
        f.score = score;
        findings->push_back(std::move(f));
      }
      if (total > found.size()) {
        Finding f = findings->back();
        f.detector = detector;
        f.message = "and " + std::to_string(total - found.size()) + " more reference rows (" +
                    std::to_string(total) + " in all)";
        findings->push_back(std::move(f));
      }
    };
    finish_rows(row_findings_, copied_rows_.size(), "copy.row");
    finish_rows(memo_findings_, memo_rows_.size(), "model.memorised_row");
    auto listed = [](const Listed& l) {
      std::string s;
      for (size_t k = 0; k < l.places.size(); ++k) s += (k ? "; " : "") + l.places[k].Describe();
      if (l.keys.size() > l.places.size()) s += "; ...";
      return s;
    };
    for (size_t i = 0; i < refs_.size(); ++i) {
      const std::string& dataset = refs_[i]->dataset();
      const size_t nid = ids_[i].keys.size();
      if (nid >= policy_.identifiers_hold && nid > 0) {
        Finding f;
        f.detector = "copy.identifier";
        f.file = ids_[i].places[0].file;
        f.location = ids_[i].places[0].location;
        f.score = 1;
        f.hard = true;
        f.message = std::to_string(nid) + " distinct identifier values of dataset '" + dataset +
                    "' appear in the output, at: " + listed(ids_[i]);
        findings->push_back(std::move(f));
      }
      // Distinct copied cells (in arrays, or anywhere else): hard at
      // cells_hold, below it one finding scoring n * cell_score.
      auto cell_count = [&](const Listed& l, const char* detector, const char* cells,
                            const char* where) {
        const size_t n = l.keys.size();
        if (n == 0) return;
        Finding f;
        f.detector = detector;
        f.file = l.places[0].file;
        f.location = l.places[0].location;
        f.hard = n >= policy_.cells_hold;
        f.score = f.hard ? 1.0 : std::min(1.0, static_cast<double>(n) * policy_.cell_score);
        f.message = std::to_string(n) + " distinct distinctive " + cells + " of dataset '" +
                    dataset + "' appear " + where + ", at: " + listed(l);
        findings->push_back(std::move(f));
      };
      cell_count(memo_cells_[i], "model.memorised_values", "numeric cells",
                 "as array values (to float32 precision)");
      cell_count(cells_[i], "copy.cell", "cells", "in the output");
    }
  }

 private:
  const std::vector<const ReferenceIndex*>& refs_;
  const Policy& policy_;
  std::vector<FingerprintCache> caches_;
  InertCells inert_;
  std::vector<std::vector<int8_t>> shape_state_;  // per reference: -1 unknown, 0 absent, 1 present
  std::vector<Listed> cells_;
  std::vector<Listed> ids_;
  std::vector<Listed> memo_cells_;  // distinct non-dense reference cells found in arrays
  uint32_t max_join_ = 1;
  uint32_t min_strength_ = 4;
  Forms forms_;
  std::string folded_;
  std::vector<std::string_view> tokens_;
  std::vector<std::string_view> text_run_;
  std::vector<Hit> hits_;
  std::unordered_set<uint64_t> copied_rows_, memo_rows_;
  std::vector<Finding> row_findings_, memo_findings_;
};

}  // namespace

void DetectCopies(const Collected& output, const std::vector<const ReferenceIndex*>& references,
                  const Policy& policy, std::vector<Finding>* findings) {
  if (references.empty()) return;
  Matcher m(references, policy);
  for (const Table& t : output.tables) m.MatchTable(t);
  for (const TextSpan& s : output.texts) m.MatchText(s);
  for (const std::string& p : output.paths) m.MatchPath(p);
  for (const NumericArray& a : output.arrays) m.MatchArray(a);
  m.Emit(findings);
}

}  // namespace cce::gate
