// The Output Gate (docs/gate.md): scores an output's disclosure risk. Every
// file is typed by content, parsed (never executed), unpacked and decoded
// recursively within bounds, and handed to detectors (type and size policy,
// exact data copies, encodings, covert channels, statistical disclosure
// control on tables, memorised rows in model artifacts). Each finding names
// the file and the place in it; the verdict is "release" only at or under
// the policy's threshold with no hard-hold finding.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gate/policy.h"

namespace cce::gate {

struct Finding {
  std::string detector;  // e.g. "type", "copy.row", "encoding", "covert.png", "sdc.small_cell"
  // The file in the output; a nested item is "<outer>!<member>", a decoded
  // one "<outer>!base64@<byte offset>".
  std::string file;
  std::string
      location;  // in that file: "row 3, column 'age'", "byte 1024", "chunk tEXt at byte 33"
  // The same place, structured where it applies (-1: not applicable), so a
  // console can highlight it: a table's data row and column (0-based), a
  // text's 1-based line, a byte offset in the item.
  int64_t row = -1;
  int64_t column = -1;
  int64_t line = -1;
  int64_t offset = -1;
  double score = 0;   // this finding's risk, in [0, 1]
  bool hard = false;  // holds the output whatever the combined score
  std::string message;
};

enum class Verdict { kRelease, kHold };
std::string_view VerdictName(Verdict verdict);  // "release", "hold"

struct Report {
  Verdict verdict = Verdict::kHold;
  double score = 1;  // combined: 1 - prod(1 - finding.score), in [0, 1]
  std::vector<Finding> findings;
  uint64_t files = 0;          // items scanned, nested ones included
  uint64_t bytes_scanned = 0;  // bytes of all items scanned
};
// {"verdict", "score", "findings": [{"detector","file","location","score","message","hard"}
// plus "row"/"column"/"line"/"offset" where set]}
nlohmann::json ReportToJson(const Report& report);

// One file of an output, as the gate sees it.
struct OutputFile {
  std::string path;  // relative, '/'-separated
  std::string bytes;
};

// Reads every regular file under `dir` (symlinks, devices and FIFOs are
// findings, not followed). Errors: kInvalidArgument naming the path when
// the directory cannot be read or is over the policy's bundle caps.
StatusOr<std::vector<OutputFile>> ReadOutputDir(const std::string& dir, const Policy& policy);
// The files of an agent bundle (a POSIX tar, docs/agent.md) in memory,
// without the agent's own manifest.json and result.json.
StatusOr<std::vector<OutputFile>> ReadOutputBundle(std::string_view tar, const Policy& policy);

class ReferenceIndex;

// A table: CSV/TSV, an XLSX sheet, a SQLite table, a JSON array of records.
struct Table {
  std::string file;                 // item path
  std::string name;                 // sheet or table name ("" for CSV)
  std::vector<std::string> header;  // column names ("" where unnamed)
  std::vector<std::vector<std::string>> rows;
  // Row r (0-based) starts at this line of the file (CSV), or 0 when lines
  // do not apply; used for locations.
  std::vector<uint64_t> row_lines;
  std::string RowLocation(size_t row) const;                  // "row 3 (line 4)"
  std::string CellLocation(size_t row, size_t column) const;  // "row 3 (line 4), column 2 'age'"
};

struct ScanInputs {
  std::vector<OutputFile> files;
  // Keyed fingerprints of the datasets the job read (none: copy and
  // memorisation checks have nothing to compare against).
  std::vector<const ReferenceIndex*> references;
  // Tables the same consumer was released earlier on the same datasets
  // (differencing).
  std::vector<Table> released_tables;
  // Findings the caller already has (a reference it could not load): they
  // count like the detectors' own.
  std::vector<Finding> findings;
};

// Scans an output. Never fails: whatever cannot be parsed or exceeds a
// bound is a finding that holds.
Report Scan(const ScanInputs& inputs, const Policy& policy);

// The tables an output releases (what later scans difference against).
std::vector<Table> ExtractTables(const std::vector<OutputFile>& files, const Policy& policy);

}  // namespace cce::gate
