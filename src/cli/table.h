// Text tables for the `cce` list commands (`dataset list`, `rentals`,
// `job list`, `image list`, `audit list`, `review list`, ...): a header row,
// then one row per item, each column padded with spaces to its widest cell
// and separated from the next by two spaces. Lines never end in whitespace,
// so `awk`, `cut -c` and a reader's eye all work; cells are single-line:
// a control byte (tab, newline, ESC, DEL) in a value the plane returned is
// shown as '?', so a value cannot break the layout or drive the terminal.
// An empty cell is shown as '-'.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cce::cli {

class Table {
 public:
  // header: the column names, upper case by convention ("NAME", "PRICE/DAY").
  explicit Table(std::vector<std::string> header);

  // Adds a row. A row with fewer cells than the header gets '-' for the
  // rest; cells beyond the header's columns are dropped.
  void AddRow(std::vector<std::string> cells);

  size_t rows() const { return rows_.size(); }

  // The header line and every row, each ending in "\n"; the last column is
  // not padded. Widths count UTF-8 code points, not bytes.
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// `s` as one table cell: control bytes (< 0x20, 0x7f) as '?', "" as "-".
std::string TableCell(std::string_view s);

// The number of UTF-8 code points in `s` (bytes that do not continue one).
size_t DisplayWidth(std::string_view s);

}  // namespace cce::cli
