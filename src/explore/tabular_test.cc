#include "explore/tabular.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace cce::explore {
namespace {

using Rows = std::vector<std::vector<std::string>>;

StatusOr<Rows> ReadCsv(const std::string& data, std::vector<std::string>* columns = nullptr) {
  ASSIGN_OR_RETURN(auto r, TableReader::FromString(data, "t.csv", TableFormat::kCsv));
  Rows rows;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, r->Next());
    if (!more) break;
    std::vector<std::string> row;
    for (const Value& v : r->values()) row.emplace_back(v.text);
    rows.push_back(std::move(row));
  }
  if (columns) *columns = r->columns();
  return rows;
}

std::string CsvError(const std::string& data) {
  auto rows = ReadCsv(data);
  return rows.ok() ? std::string("(no error)") : rows.status().message();
}

TEST(CsvReader, QuotesEscapesEmbeddedNewlinesAndCrlf) {
  std::vector<std::string> cols;
  auto rows = ReadCsv(
      "\xef\xbb\xbfname,note,n\r\n"
      "\"Smith, J\",\"said \"\"hi\"\"\",1\r\n"
      "plain,\"two\nlines\",2\r\n"
      "\r\n"
      ",,\n"
      "last,x,3",
      &cols);
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_EQ(cols, (std::vector<std::string>{"name", "note", "n"}));
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[0], (std::vector<std::string>{"Smith, J", "said \"hi\"", "1"}));
  EXPECT_EQ((*rows)[1], (std::vector<std::string>{"plain", "two\nlines", "2"}));
  EXPECT_EQ((*rows)[2], (std::vector<std::string>{"", "", ""}));
  EXPECT_EQ((*rows)[3], (std::vector<std::string>{"last", "x", "3"}));
}

TEST(CsvReader, ErrorsNameLineAndColumn) {
  EXPECT_EQ(CsvError("a,b\n1,2\n3,x\"y\n"),
            "t.csv:3:4: expected no '\"' inside an unquoted field (quote the whole field and "
            "double the quote)");
  EXPECT_EQ(CsvError("a,b\n1,2,3\n"), "t.csv:2:1: expected 2 fields (as in the header), got 3");
  EXPECT_EQ(CsvError("a,b\n\"x\ny\",2\n3\n"),
            "t.csv:4:1: expected 2 fields (as in the header), got 1");
  EXPECT_EQ(CsvError("a,b\n1,\"open\n"),
            "t.csv:2:3: expected a closing '\"' for this quoted field, got the end of the file");
  EXPECT_EQ(CsvError("a,b\n\"q\"x,1\n"),
            "t.csv:2:4: expected ',' or the end of the line after the closing '\"', got 'x'");
  EXPECT_EQ(CsvError("a,b\n1,2\r3,4\n"), "t.csv:2:4: expected '\\n' after '\\r'");
  EXPECT_EQ(CsvError("a,a\n"), "t.csv:1:3: duplicate column 'a'");
  EXPECT_EQ(CsvError("a,,c\n"), "t.csv:1:3: expected a column name, got an empty one");
  EXPECT_EQ(CsvError(""), "t.csv:1:1: expected a header row, got an empty file");
}

// Rows that straddle the reader's 1 MiB buffer, quoted newlines included,
// read from a file come out whole.
TEST(CsvReader, StreamsAFileAcrossBufferBoundaries) {
  char tmpl[] = "/tmp/cce-tabular-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/big.csv";
  std::string expected_note;
  {
    std::ofstream out(path, std::ios::binary);
    out << "id,note\r\n";
    for (int i = 0; i < 60000; ++i) {
      out << i << ",\"line one of " << i << "\r\nline \"\"two\"\", padded "
          << std::string(static_cast<size_t>(i % 37), 'x') << "\"\r\n";
    }
  }
  auto r = TableReader::OpenFile(path, "big.csv", TableFormat::kCsv);
  ASSERT_TRUE(r.ok()) << r.status().message();
  int n = 0;
  for (;; ++n) {
    auto more = (*r)->Next();
    ASSERT_TRUE(more.ok()) << more.status().message();
    if (!*more) break;
    ASSERT_EQ((*r)->values()[0].text, std::to_string(n));
    ASSERT_EQ((*r)->values()[1].text, "line one of " + std::to_string(n) +
                                          "\r\nline \"two\", padded " +
                                          std::string(static_cast<size_t>(n % 37), 'x'));
    ASSERT_EQ((*r)->row_line(), static_cast<uint64_t>(2 + 2 * n));
  }
  EXPECT_EQ(n, 60000);
  std::filesystem::remove_all(tmpl);
}

TEST(JsonLinesReader, TypesEscapesAndAbsentKeys) {
  auto r = TableReader::FromString(
      "{\"a\": \"x\\\"y\\u00e9\\ud83d\\ude00\", \"b\": -1.5e3, \"c\": true}\n"
      "\n"
      "{\"b\": null, \"d\": \"new\"}\r\n"
      "{}",
      "t.jsonl", TableFormat::kJsonLines);
  ASSERT_TRUE(r.ok());
  auto more = (*r)->Next();
  ASSERT_TRUE(more.ok() && *more) << more.status().message();
  EXPECT_EQ((*r)->values()[0].text, "x\"y\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ((*r)->values()[1].text, "-1.5e3");
  EXPECT_EQ((*r)->values()[1].kind, ValueKind::kNumber);
  EXPECT_EQ((*r)->values()[2].kind, ValueKind::kBool);
  more = (*r)->Next();
  ASSERT_TRUE(more.ok() && *more) << more.status().message();
  EXPECT_EQ((*r)->row_line(), 3u);
  EXPECT_EQ((*r)->columns(), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ((*r)->values()[0].kind, ValueKind::kAbsent);
  EXPECT_EQ((*r)->values()[1].kind, ValueKind::kNull);
  EXPECT_EQ((*r)->values()[3].text, "new");
  more = (*r)->Next();
  ASSERT_TRUE(more.ok() && *more);
  more = (*r)->Next();
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
}

std::string JsonError(const std::string& data) {
  auto r = TableReader::FromString(data, "t.jsonl", TableFormat::kJsonLines);
  if (!r.ok()) return r.status().message();
  for (;;) {
    auto more = (*r)->Next();
    if (!more.ok()) return more.status().message();
    if (!*more) return "(no error)";
  }
}

TEST(JsonLinesReader, ErrorsNameLineAndColumn) {
  EXPECT_EQ(JsonError("{\"a\":1}\n{\"a\": {\"b\": 2}}\n"),
            "t.jsonl:2:7: expected a string, number, true, false or null (nested objects and "
            "arrays are not supported)");
  EXPECT_EQ(JsonError("{\"a\":1, \"a\":2}"), "t.jsonl:1:9: duplicate key 'a'");
  EXPECT_EQ(JsonError("[1,2]"), "t.jsonl:1:1: expected '{' (one JSON object per line), got '['");
  EXPECT_EQ(JsonError("{\"a\":01}"), "t.jsonl:1:7: expected ',' or '}' after the value, got '1'");
  EXPECT_EQ(
      JsonError("{\"a\":\"\\x\"}"),
      "t.jsonl:1:8: expected a JSON escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), got 'x'");
  EXPECT_EQ(JsonError("{\"a\":\"\\udc00\"}"), "t.jsonl:1:7: expected a high surrogate first");
  EXPECT_EQ(JsonError("{\"a\":1} x"),
            "t.jsonl:1:9: expected the end of the line after the object, got 'x'");
  EXPECT_EQ(JsonError("{\"a\":\"open}\n"),
            "t.jsonl:1:12: expected a closing '\"', got the end of the line");
}

TEST(TableWriter, CsvQuotesOnlyWhatNeedsIt) {
  std::string out;
  std::vector<std::string> cols = {"a", "b,c"};
  auto w = TableWriter::ToString(&out, TableFormat::kCsv, cols);
  std::vector<Value> row = {{"plain", ValueKind::kString}, {"say \"x\"\nnow", ValueKind::kString}};
  ASSERT_TRUE(w->Write(cols, row).ok());
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(out, "a,\"b,c\"\nplain,\"say \"\"x\"\"\nnow\"\n");
  std::vector<std::string> back_cols;
  auto back = ReadCsv(out, &back_cols);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back_cols, cols);
  EXPECT_EQ((*back)[0], (std::vector<std::string>{"plain", "say \"x\"\nnow"}));
}

TEST(TableWriter, JsonLinesKeepsTypesAndOmitsAbsent) {
  std::string out;
  std::vector<std::string> cols = {"s", "n", "b", "z", "gone"};
  auto w = TableWriter::ToString(&out, TableFormat::kJsonLines, cols);
  std::vector<Value> row = {{"a\"\x01", ValueKind::kString},
                            {"12.5", ValueKind::kNumber},
                            {"false", ValueKind::kBool},
                            {"", ValueKind::kNull},
                            {"", ValueKind::kAbsent}};
  ASSERT_TRUE(w->Write(cols, row).ok());
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(out, "{\"s\":\"a\\\"\\u0001\",\"n\":12.5,\"b\":false,\"z\":null}\n");
}

TEST(TableFormat, ByExtension) {
  EXPECT_EQ(*TableFormatForPath("x/y.csv"), TableFormat::kCsv);
  EXPECT_EQ(*TableFormatForPath("y.jsonl"), TableFormat::kJsonLines);
  EXPECT_FALSE(TableFormatForPath("y.json").ok());
}

}  // namespace
}  // namespace cce::explore
