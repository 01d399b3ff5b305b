// libFuzzer target: the CSV and JSON Lines readers (tabular.h) on the same
// bytes, and a round trip: whatever a reader accepts, written back by
// TableWriter and read again, gives the same rows.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "explore/tabular.h"

namespace {

using namespace cce::explore;

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::pair<std::string, ValueKind>>> rows;
};

bool ReadAll(const std::string& bytes, TableFormat format, Table* t) {
  auto r = TableReader::FromString(bytes, "fuzz", format);
  if (!r.ok()) return false;
  for (int i = 0; i < 100000; ++i) {
    auto more = (*r)->Next();
    if (!more.ok()) return false;
    if (!*more) break;
    std::vector<std::pair<std::string, ValueKind>> row;
    for (const Value& v : (*r)->values()) row.emplace_back(std::string(v.text), v.kind);
    if (row.size() != (*r)->columns().size()) __builtin_trap();
    t->rows.push_back(std::move(row));
  }
  t->columns = (*r)->columns();
  return true;
}

void RoundTrip(const std::string& bytes, TableFormat format) {
  Table a;
  if (!ReadAll(bytes, format, &a)) return;
  std::string out;
  auto w = TableWriter::ToString(&out, format, a.columns);
  for (auto& row : a.rows) {
    std::vector<Value> values;
    for (auto& [text, kind] : row) values.push_back(Value{text, kind});
    while (values.size() < a.columns.size()) values.push_back(Value{});
    if (!w->Write(a.columns, values).ok()) __builtin_trap();
  }
  if (!w->Close().ok()) __builtin_trap();
  Table b;
  if (!ReadAll(out, format, &b)) __builtin_trap();  // what we write, we read
  if (format == TableFormat::kCsv) {
    if (b.columns != a.columns) __builtin_trap();
    // Rows of one empty field are blank lines, which the reader skips.
    if (a.columns.size() != 1 && b.rows != a.rows) __builtin_trap();
  } else {
    // JSON Lines: the same values under the same names (key order may
    // differ).
    if (b.rows.size() != a.rows.size()) __builtin_trap();
    size_t j = 0;
    for (auto& row : a.rows) {
      // Rows read before a key first appeared have fewer values: absent.
      for (size_t c = 0; c < row.size(); ++c) {
        const auto& [text, kind] = row[c];
        if (kind == ValueKind::kAbsent) continue;
        size_t bc = 0;
        while (bc < b.columns.size() && b.columns[bc] != a.columns[c]) ++bc;
        if (bc >= b.rows[j].size() || b.rows[j][bc].first != text || b.rows[j][bc].second != kind) {
          __builtin_trap();
        }
      }
      ++j;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  RoundTrip(bytes, TableFormat::kCsv);
  RoundTrip(bytes, TableFormat::kJsonLines);
  return 0;
}
