// Private to src/gate: what the parsers extract from one item and hand to
// the detectors, and the parsers' signatures. A parser never executes,
// never follows an outside reference and stays within Policy's limits; a
// file it cannot parse is an error the scanner turns into a holding finding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gate/gate.h"
#include "gate/policy.h"

namespace cce::gate {

enum class FileType {
  kEmpty,
  kCsv,
  kTsv,
  kJson,
  kJsonLines,
  kYaml,
  kText,
  kMarkdown,
  kHtml,
  kSvg,
  kPng,
  kJpeg,
  kPdf,
  kXlsx,
  kSqlite,
  kNpy,
  kNpz,
  kPickle,
  kGzip,
  kBzip2,
  kXz,
  kZip,
  kTar,
  kUnknown,
};
std::string_view FileTypeName(FileType type);  // "csv", ..., "unknown"
// By content only (the name is a hint to tell CSV from TSV text at most).
FileType DetectType(std::string_view bytes, std::string_view name);

// A numeric array in a model artifact (NPY, NPZ member, pickle).
struct NumericArray {
  std::string file;
  std::string location;         // "array 'coef_'", "byte 128"
  std::vector<uint64_t> shape;  // row-major; a 2-D array's rows are records
  std::vector<double> values;   // capped by the parser (say so in a finding if cut)
};

// Text to scan for copies and encodings: one span, lines are records.
struct TextSpan {
  std::string file;
  uint64_t offset = 0;  // of text[0] in the item (for "byte N" locations)
  // Where the span is when a byte offset says little (a JSON pointer
  // "/rows/3/name", "PNG chunk tEXt at byte 33"); empty: "byte <offset>".
  std::string location;
  std::string text;  // UTF-8 (parsers decode UTF-16 and strip markup)
};

// A nested item to scan in turn: an archive member, a decompressed stream,
// a decoded base64 run, a PDF stream, an XLSX part.
struct Child {
  std::string name;      // appended to the parent's path after '!'
  std::string location;  // where in the parent it was found
  std::string bytes;
};

struct Parsed {
  std::vector<TextSpan> texts;
  std::vector<Table> tables;
  std::vector<NumericArray> arrays;
  std::vector<Child> children;
  std::vector<Finding> findings;  // parser-level: covert channels, bombs, truncation
};

struct Item {
  std::string path;
  std::string_view bytes;
  int depth = 0;  // 0 for an output file
};

// Each parser: bytes of one item -> Parsed. An error (kInvalidArgument
// naming the byte offset and what was expected) means "cannot parse": the
// scanner holds the item. Budget: `expand_budget` bytes may still be
// produced as children/decoded text; parsers decrement it and report a
// bomb finding instead of exceeding it.
struct ParseContext {
  const Policy& policy;
  uint64_t& expand_budget;
};
using ParseFn = Status (*)(const Item& item, ParseContext& ctx, Parsed* out);

// Text formats (text_parsers.cc).
Status ParseCsv(const Item& item, ParseContext& ctx, Parsed* out);   // and TSV (delimiter sniffed)
Status ParseJson(const Item& item, ParseContext& ctx, Parsed* out);  // and JSON Lines
Status ParseYaml(const Item& item, ParseContext& ctx, Parsed* out);
Status ParseText(const Item& item, ParseContext& ctx, Parsed* out);  // text, Markdown, logs
Status ParseHtml(const Item& item, ParseContext& ctx, Parsed* out);  // HTML and SVG (XML text)
// Images and documents (media_parsers.cc).
Status ParsePng(const Item& item, ParseContext& ctx, Parsed* out);
Status ParseJpeg(const Item& item, ParseContext& ctx, Parsed* out);
Status ParsePdf(const Item& item, ParseContext& ctx, Parsed* out);
// Containers (container_parsers.cc).
Status ParseGzip(const Item& item, ParseContext& ctx, Parsed* out);
Status ParseBzip2(const Item& item, ParseContext& ctx, Parsed* out);
Status ParseXz(const Item& item, ParseContext& ctx, Parsed* out);
Status ParseZip(const Item& item, ParseContext& ctx, Parsed* out);  // and NPZ
Status ParseTar(const Item& item, ParseContext& ctx, Parsed* out);
Status ParseXlsx(const Item& item, ParseContext& ctx, Parsed* out);
// Data and model files (data_parsers.cc).
Status ParseSqlite(const Item& item, ParseContext& ctx, Parsed* out);
Status ParseNpy(const Item& item, ParseContext& ctx, Parsed* out);
Status ParsePickle(const Item& item, ParseContext& ctx, Parsed* out);

// Encoded runs inside text (encodings.cc): base64 (standard and URL-safe,
// line-wrapped or split), base32 and hex runs of at least
// policy.min_encoded_chars, decoded into children named "base64@<offset>",
// "base32@<offset>", "hex@<offset>". An exhausted expand budget is an
// "encoding.bomb" finding in `findings` (when given).
void FindEncodedRuns(const TextSpan& span, ParseContext& ctx, std::vector<Child>* out,
                     std::vector<Finding>* findings = nullptr);
// The same over a view of text at `base_offset` in `file` (parsers that
// search text they hand over only as table cells: CSV, JSON).
void FindEncodedRunsIn(std::string_view text, uint64_t base_offset, const std::string& file,
                       const std::string& location, ParseContext& ctx, std::vector<Child>* out,
                       std::vector<Finding>* findings);

// Shannon entropy in bits per byte.
double EntropyBitsPerByte(std::string_view bytes);

}  // namespace cce::gate
