#include "gate/content.h"

namespace cce::gate {

std::string Table::RowLocation(size_t row) const {
  std::string out = "row " + std::to_string(row + 1);
  if (row < row_lines.size() && row_lines[row] > 0) {
    out += " (line " + std::to_string(row_lines[row]) + ")";
  }
  if (!name.empty()) out = "table '" + name + "', " + out;
  return out;
}

std::string Table::CellLocation(size_t row, size_t column) const {
  std::string out = RowLocation(row) + ", column " + std::to_string(column + 1);
  if (column < header.size() && !header[column].empty()) {
    std::string h = header[column].substr(0, 64);
    for (char& c : h) {
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    out += " '" + h + "'";
  }
  return out;
}

}  // namespace cce::gate
