// explore/tabular: streaming readers and writers for the two table formats
// the desensitizer handles, CSV (RFC 4180: a header row, quoted fields with
// "" escapes and embedded newlines, LF or CRLF) and JSON Lines (one flat
// object per line). Memory is bounded by the longest row, never the file.
// Errors name the position: "FILE:LINE:COL: expected ...".
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/fd.h"
#include "base/status.h"

namespace cce::explore {

enum class TableFormat { kCsv, kJsonLines };

// "*.csv" -> kCsv, "*.jsonl" -> kJsonLines; anything else kInvalidArgument.
StatusOr<TableFormat> TableFormatForPath(std::string_view path);

// What a cell holds. CSV cells are always kString (an empty field is the
// empty string); JSON Lines values keep their JSON type, and a key the row
// does not have is kAbsent.
enum class ValueKind : uint8_t { kAbsent, kNull, kString, kNumber, kBool };

struct Value {
  std::string_view text;  // unescaped string, or the number/true/false as written
  ValueKind kind = ValueKind::kAbsent;
};

inline constexpr size_t kMaxRowBytes = 16 << 20;

class TableReader {
 public:
  // Reads the file at `path`; `name` is how messages call it. For CSV the
  // header row is read here.
  // Errors: kIo if the file cannot be opened; kInvalidArgument for a bad
  // header (empty, duplicate or empty column names: "NAME:1:COL: ...").
  static StatusOr<std::unique_ptr<TableReader>> OpenFile(const std::string& path,
                                                         const std::string& name,
                                                         TableFormat format);
  // The same over bytes in memory (tests, fuzzing).
  static StatusOr<std::unique_ptr<TableReader>> FromString(std::string data,
                                                           const std::string& name,
                                                           TableFormat format);
  ~TableReader();
  TableReader(const TableReader&) = delete;
  TableReader& operator=(const TableReader&) = delete;

  // Column names: the CSV header, or for JSON Lines every key seen so far in
  // order of first appearance (a row may add keys; values() grows with it).
  const std::vector<std::string>& columns() const { return columns_; }

  // Reads the next row. Returns false at the end of the input. values()[i]
  // is column i's value; views stay valid until the next call. Blank lines
  // are skipped.
  // Errors (kInvalidArgument, "NAME:LINE:COL: expected ..."): a field count
  // that differs from the header's, a stray quote, an unterminated quoted
  // field, a bare CR, a row over kMaxRowBytes; JSON that is not one flat
  // object per line (nested values, duplicate keys, bad escapes or numbers,
  // invalid UTF-8 in \u escapes). kIo for read errors.
  StatusOr<bool> Next();
  const std::vector<Value>& values() const { return values_; }

  // "NAME:LINE:COL" of column i's value in the current row (of the row start
  // if the row lacks it).
  std::string Where(size_t column) const;
  // "NAME:LINE" of the current row.
  std::string WhereRow() const;
  uint64_t row_line() const { return row_line_; }
  uint64_t bytes_consumed() const { return consumed_; }
  const std::string& name() const { return name_; }

 private:
  TableReader(std::string name, TableFormat format);
  enum class Parse { kRow, kNeedMore, kEnd };
  Status Fill();
  Status ReadHeader();
  StatusOr<Parse> ParseCsv(bool header);
  StatusOr<Parse> ParseJson();
  Status Error(uint64_t abs_pos, uint64_t line, uint64_t line_start, const std::string& what) const;
  size_t ColumnIndex(std::string_view key);

  std::string name_;
  TableFormat format_;
  UniqueFd fd_;
  bool eof_ = false;
  std::vector<char> buf_;
  size_t begin_ = 0;  // unconsumed bytes are buf_[begin_, end_)
  size_t end_ = 0;
  uint64_t buf_offset_ = 0;  // file offset of buf_[0]
  uint64_t consumed_ = 0;
  uint64_t line_ = 1;        // line at begin_
  uint64_t line_start_ = 0;  // file offset where line_ starts
  uint64_t row_line_ = 0;
  std::vector<std::string> columns_;
  std::unordered_map<std::string, size_t> column_index_;
  std::vector<Value> values_;
  // Per value in the current row: its file offset, line and line start, and
  // where its text lives (buffer or scratch_) until the row is complete.
  struct Cell {
    uint64_t pos = 0;
    uint64_t line = 0;
    uint64_t line_start = 0;
    size_t offset = 0;  // into buf_ or scratch_
    size_t size = 0;
    bool scratch = false;
    ValueKind kind = ValueKind::kString;
  };
  std::vector<Cell> cells_;  // CSV: by field index; JSON: by column index
  std::vector<uint8_t> present_;
  std::string scratch_;
};

// Writes rows as CSV (header first; fields quoted only when they contain a
// comma, quote, CR or LF) or as JSON Lines (kAbsent values are omitted;
// kNumber/kBool/kNull written as such, the rest as strings). Buffered; the
// file is created new (0644) and fsynced on Close.
class TableWriter {
 public:
  // Errors: kIo if `path` cannot be created (or exists).
  static StatusOr<std::unique_ptr<TableWriter>> Create(const std::string& path, TableFormat format,
                                                       std::span<const std::string> columns);
  // Appends to *out instead of a file (tests, fuzzing).
  static std::unique_ptr<TableWriter> ToString(std::string* out, TableFormat format,
                                               std::span<const std::string> columns);
  ~TableWriter();
  TableWriter(const TableWriter&) = delete;
  TableWriter& operator=(const TableWriter&) = delete;

  // values[i] belongs to names[i]. CSV ignores names (the header fixed the
  // order) and writes kAbsent/kNull as empty fields.
  Status Write(std::span<const std::string> names, std::span<const Value> values);
  Status Close();
  uint64_t bytes_written() const { return written_; }

 private:
  TableWriter(TableFormat format, std::string* out);
  Status Flush();
  void AppendCsv(std::string_view s);
  void AppendJsonString(std::string_view s);

  TableFormat format_;
  UniqueFd fd_;
  std::string path_;
  std::string* out_ = nullptr;
  std::string buf_;
  uint64_t written_ = 0;
};

}  // namespace cce::explore
