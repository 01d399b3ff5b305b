// Tests of the text parsers (CSV/TSV, JSON/JSON Lines, YAML, text with
// Markdown and SQL tables, HTML/SVG) and of the encoded-run search.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "gate/content.h"

namespace cce::gate {

namespace {

struct Harness {
  Policy policy;
  uint64_t budget = uint64_t{1} << 30;
  Parsed out;
  Status status;

  Status Run(ParseFn fn, std::string_view bytes, std::string path = "out/file") {
    out = Parsed{};
    path_ = std::move(path);
    Item item;
    item.path = path_;
    item.bytes = bytes;
    ParseContext ctx{policy, budget};
    status = fn(item, ctx, &out);
    return status;
  }
  std::vector<Child> Runs(const std::string& text, uint64_t offset = 0, std::string location = "") {
    TextSpan span;
    span.file = "out/file";
    span.offset = offset;
    span.location = std::move(location);
    span.text = text;
    ParseContext ctx{policy, budget};
    std::vector<Child> children;
    FindEncodedRuns(span, ctx, &children);
    return children;
  }
  std::string path_;
};

std::string Base64(std::string_view in, bool url = false, bool pad = true) {
  const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8) | static_cast<uint8_t>(in[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(alphabet[(v >> (6 * k)) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = uint32_t{static_cast<uint8_t>(in[i])} << 16;
    if (i + 1 < in.size()) v |= uint32_t{static_cast<uint8_t>(in[i + 1])} << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (i + 1 < in.size()) out.push_back(alphabet[(v >> 6) & 63]);
    if (pad) out.append(i + 1 < in.size() ? "=" : "==");
  }
  return out;
}

std::string Base32(std::string_view in) {
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint64_t acc = 0;
  int bits = 0;
  for (char c : in) {
    acc = (acc << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(alphabet[(acc >> bits) & 31]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (5 - bits)) & 31]);
  while (out.size() % 8) out.push_back('=');
  return out;
}

std::string Hex(std::string_view in, std::string_view sep = "", std::string_view prefix = "") {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (i > 0) out.append(sep);
    out.append(prefix);
    out.push_back(digits[static_cast<uint8_t>(in[i]) >> 4]);
    out.push_back(digits[static_cast<uint8_t>(in[i]) & 15]);
  }
  return out;
}

std::string Utf16(std::string_view ascii, bool little_endian, bool bom) {
  std::string out;
  if (bom) out += little_endian ? std::string("\xFF\xFE", 2) : std::string("\xFE\xFF", 2);
  for (char c : ascii) {
    if (little_endian) {
      out.push_back(c);
      out.push_back('\0');
    } else {
      out.push_back('\0');
      out.push_back(c);
    }
  }
  return out;
}

const std::string kPeople =
    "id,name,email,dob,zip,salary\n"
    "1001,Alice Smith,alice.smith@example.com,1985-03-02,94110,123456\n"
    "1002,Bob Jones,bob.jones@example.org,1979-11-23,10001,98765\n"
    "1003,Carol White,carol.w@example.net,1990-07-14,60614,87654\n";

bool HasChild(const std::vector<Child>& children, std::string_view bytes) {
  for (const auto& c : children) {
    if (c.bytes == bytes) return true;
  }
  return false;
}

// ------------------------------------------------------------------ CSV --

TEST(ParseCsv, HeaderRowsAndLines) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseCsv, "id,name,age\n1,Alice,34\n2,Bob,45\n").ok()) << h.status.ToString();
  ASSERT_EQ(h.out.tables.size(), 1u);
  const Table& t = h.out.tables[0];
  EXPECT_EQ(t.file, "out/file");
  EXPECT_EQ(t.header, (std::vector<std::string>{"id", "name", "age"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"2", "Bob", "45"}));
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{2, 3}));
  // The header is also text (it is not a record for the copy detectors).
  ASSERT_EQ(h.out.texts.size(), 1u);
  EXPECT_EQ(h.out.texts[0].text, "id,name,age\n");
  EXPECT_EQ(h.out.texts[0].location, "line 1 (header)");
}

TEST(ParseCsv, DataLookingFirstRowIsData) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseCsv, "1001,Alice Smith,alice@example.com\n1002,Bob,bob@example.org\n").ok());
  const Table& t = h.out.tables[0];
  EXPECT_TRUE(t.header.empty());
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][1], "Alice Smith");
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(h.out.texts.empty());
  // Names with an '@' or duplicates are not a header either.
  ASSERT_TRUE(h.Run(ParseCsv, "name,name\nx,y\n").ok());
  EXPECT_TRUE(h.out.tables[0].header.empty());
  ASSERT_TRUE(h.Run(ParseCsv, "Alice,alice@example.com\nBob,bob@example.com\n").ok());
  EXPECT_TRUE(h.out.tables[0].header.empty());
}

TEST(ParseCsv, SniffsDelimiters) {
  Harness h;
  const std::pair<const char*, std::vector<std::string>> cases[] = {
      {"a;b;c\n1,5;2,5;3\n4;5;6\n", {"1,5", "2,5", "3"}},
      {"a\tb\tc\n1\t2, x\t3\n4\t5\t6\n", {"1", "2, x", "3"}},
      {"a|b|c\n1|2|3\n4|5|6\n", {"1", "2", "3"}},
      {"a,b,c\n1,2,3\n4,5,6\n", {"1", "2", "3"}},
  };
  for (const auto& [text, first] : cases) {
    ASSERT_TRUE(h.Run(ParseCsv, text).ok());
    EXPECT_EQ(h.out.tables[0].header, (std::vector<std::string>{"a", "b", "c"})) << text;
    EXPECT_EQ(h.out.tables[0].rows[0], first) << text;
  }
}

TEST(ParseCsv, QuotedNewlinesAndEscapedQuotes) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseCsv, "a,b\n\"x\ny\",\"he said \"\"hi\"\"\"\n3,4\n").ok()) << h.status.ToString();
  const Table& t = h.out.tables[0];
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][0], "x\ny");
  EXPECT_EQ(t.rows[0][1], "he said \"hi\"");
  EXPECT_EQ(t.rows[1][0], "3");
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{2, 4}));  // the quoted newline counts
}

TEST(ParseCsv, CrlfBomRaggedAndEmptyCells) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseCsv, "\xEF\xBB\xBFid,v\r\n1,\r\n2,3,4\r\n\r\n5\r\n").ok());
  const Table& t = h.out.tables[0];
  EXPECT_EQ(t.header, (std::vector<std::string>{"id", "v", ""}));  // padded to the widest row
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"1", ""}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"2", "3", "4"}));
  EXPECT_EQ(t.rows[2], (std::vector<std::string>{"5"}));
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{2, 3, 5}));
}

TEST(ParseCsv, DecodesUtf16) {
  Harness h;
  for (bool le : {true, false}) {
    for (bool bom : {true, false}) {
      ASSERT_TRUE(h.Run(ParseCsv, Utf16("name,age\nAlice,34\n", le, bom)).ok()) << le << bom;
      ASSERT_EQ(h.out.tables.size(), 1u);
      EXPECT_EQ(h.out.tables[0].header, (std::vector<std::string>{"name", "age"})) << le << bom;
      ASSERT_EQ(h.out.tables[0].rows.size(), 1u);
      EXPECT_EQ(h.out.tables[0].rows[0], (std::vector<std::string>{"Alice", "34"})) << le << bom;
    }
  }
  // Non-ASCII: U+00E9 and a surrogate pair (U+1F600).
  std::string le = std::string("\xFF\xFE", 2) + std::string("x\0,\0\xE9\0\n\0" "1\0,\0\x3D\xD8\x00\xDE", 16);
  ASSERT_TRUE(h.Run(ParseCsv, le).ok()) << h.status.ToString();
  EXPECT_EQ(h.out.tables[0].rows[0][0], "1");
  EXPECT_EQ(h.out.tables[0].rows[0][1], "\xF0\x9F\x98\x80");
  // An unpaired surrogate is an error naming its byte.
  ASSERT_FALSE(h.Run(ParseCsv, std::string("\xFF\xFE" "a\0\x00\xD8" "b\0", 8)).ok());
  EXPECT_NE(h.status.message().find("byte 4"), std::string::npos) << h.status.message();
}

TEST(ParseCsv, UnterminatedQuoteIsAnErrorNamingTheByte) {
  Harness h;
  const Status s = h.Run(ParseCsv, "a,b\n1,\"open\n2,3\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("byte 6"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("line 2"), std::string::npos) << s.message();
}

TEST(ParseCsv, InvalidUtf8IsAnErrorNamingTheByte) {
  Harness h;
  for (const std::string& bad : {std::string("a,b\n1,\xC3\x28\n"), std::string("a,b\n1,\xC0\x80\n"),
                                std::string("a,b\n1,\xED\xA0\x80\n")}) {
    const Status s = h.Run(ParseCsv, bad);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("invalid UTF-8 at byte 6"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(h.Run(ParseCsv, "a,b\n1,caf\xC3\xA9\n").ok());
}

TEST(ParseCsv, FindsBase64InCells) {
  Harness h;
  const std::string payload = Base64(kPeople);
  const std::string csv = "id,blob\n1," + payload + "\n2,x\n";
  ASSERT_TRUE(h.Run(ParseCsv, csv).ok());
  ASSERT_EQ(h.out.children.size(), 1u);
  EXPECT_EQ(h.out.children[0].bytes, kPeople);
  EXPECT_EQ(h.out.children[0].name, "base64@10");
  EXPECT_EQ(h.out.children[0].location, "byte 10");
}

TEST(ParseCsv, BudgetExhaustedIsABombFinding) {
  Harness h;
  h.budget = 10;
  const std::string csv = "id,blob\n1," + Base64(kPeople) + "\n";
  ASSERT_TRUE(h.Run(ParseCsv, csv).ok());
  EXPECT_TRUE(h.out.children.empty());
  ASSERT_EQ(h.out.findings.size(), 1u);
  EXPECT_EQ(h.out.findings[0].detector, "encoding.bomb");
  EXPECT_TRUE(h.out.findings[0].hard);
  EXPECT_EQ(h.budget, 0u);
}

TEST(ParseCsv, NumericCsvHasNoEncodedRuns) {
  Harness h;
  std::string csv = "a,b,c,d\n";
  for (int i = 0; i < 2000; ++i) {
    csv += std::to_string(i * 7919 % 100000) + "," + std::to_string(i * 31 % 97) + ".25," +
           std::to_string(123456789012345LL + i) + ",-" + std::to_string(i % 13) + "e-3\n";
  }
  csv += "1," + std::string(60, '9') + ",3,4\n";  // a long number
  ASSERT_TRUE(h.Run(ParseCsv, csv).ok());
  EXPECT_EQ(h.out.tables[0].rows.size(), 2001u);
  EXPECT_TRUE(h.out.children.empty());
}

// Throughput on a 100 MB numeric CSV: run with --gtest_also_run_disabled_tests.
TEST(ParseCsv, DISABLED_Throughput) {
  std::string csv = "a,b,c,d,e,f,g,h\n";
  uint64_t x = 88172645463325252ULL;
  while (csv.size() < 100 * kMiB) {
    for (int k = 0; k < 8; ++k) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      csv += std::to_string(x % 100000);
      csv += k == 7 ? '\n' : ',';
    }
  }
  Harness h;
  // CPU time: the build machine is shared.
  const std::clock_t start = std::clock();
  ASSERT_TRUE(h.Run(ParseCsv, csv).ok());
  const double secs = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
  std::printf("ParseCsv: %zu bytes, %zu rows in %.3f s CPU = %.0f MB/s\n", csv.size(),
              h.out.tables[0].rows.size(), secs, static_cast<double>(csv.size()) / secs / 1e6);
  Harness e;
  const std::clock_t start2 = std::clock();
  const std::vector<Child> runs = e.Runs(csv);
  const double secs2 = static_cast<double>(std::clock() - start2) / CLOCKS_PER_SEC;
  std::printf("FindEncodedRuns alone: %zu runs, %.0f MB/s\n", runs.size(), static_cast<double>(csv.size()) / secs2 / 1e6);
}

// ----------------------------------------------------------------- JSON --

TEST(ParseJson, ArrayOfRecordsIsATable) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseJson, R"({"rows":[{"id":1,"name":"Alice","score":1.50},
    {"name":"Bob","id":2,"extra":true},{"id":3,"addr":{"zip":"94110","city":"SF"}}]})")
                  .ok())
      << h.status.ToString();
  ASSERT_EQ(h.out.tables.size(), 1u);
  const Table& t = h.out.tables[0];
  EXPECT_EQ(t.name, "/rows");
  EXPECT_EQ(t.header, (std::vector<std::string>{"id", "name", "score", "extra", "addr.zip", "addr.city"}));
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"1", "Alice", "1.50", "", "", ""}));  // as written
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"2", "Bob", "", "true", "", ""}));
  EXPECT_EQ(t.rows[2], (std::vector<std::string>{"3", "", "", "", "94110", "SF"}));
}

TEST(ParseJson, ArrayOfArraysIsATable) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseJson, R"({"columns":["a","b"],"data":[["x",1],["y",2e3]],"m":[[1,2],[3,4]]})").ok());
  ASSERT_EQ(h.out.tables.size(), 2u);
  EXPECT_EQ(h.out.tables[0].name, "/data");
  EXPECT_TRUE(h.out.tables[0].header.empty());
  EXPECT_EQ(h.out.tables[0].rows[1], (std::vector<std::string>{"y", "2e3"}));
  ASSERT_TRUE(h.Run(ParseJson, R"([["name","age"],["Alice",34],["Bob",45]])").ok());
  ASSERT_EQ(h.out.tables.size(), 1u);
  EXPECT_EQ(h.out.tables[0].header, (std::vector<std::string>{"name", "age"}));
  EXPECT_EQ(h.out.tables[0].rows.size(), 2u);
}

TEST(ParseJson, StringsAreTextWithJsonPointers) {
  Harness h;
  const std::string blob = Base64(kPeople);
  const std::string doc = R"({"meta":{"a/b":{"~x":")" + blob + R"("}},"tags":["red","green"]})";
  ASSERT_TRUE(h.Run(ParseJson, doc).ok());
  const TextSpan* blob_span = nullptr;
  const TextSpan* tags = nullptr;
  for (const auto& s : h.out.texts) {
    if (s.text == blob) blob_span = &s;
    if (s.text == "red\ngreen") tags = &s;
  }
  ASSERT_NE(blob_span, nullptr);
  EXPECT_EQ(blob_span->location, "/meta/a~1b/~0x");
  EXPECT_EQ(blob_span->offset, doc.find(blob) - 1);  // the opening quote
  ASSERT_NE(tags, nullptr);
  EXPECT_EQ(tags->location, "/tags");
  // The scanner decodes the blob from its span.
  std::vector<Child> children = h.Runs(blob_span->text, blob_span->offset, blob_span->location);
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0].bytes, kPeople);
  EXPECT_EQ(children[0].location, "/meta/a~1b/~0x (byte " + std::to_string(doc.find(blob) - 1) + ")");
}

TEST(ParseJson, ChunkedBase64InAnArrayIsJoined) {
  Harness h;
  const std::string blob = Base64(kPeople);
  std::string doc = R"({"parts":[)";
  for (size_t i = 0; i < blob.size(); i += 4) doc += (i ? ", \"" : "\"") + blob.substr(i, 4) + "\"";
  doc += "]}";
  ASSERT_TRUE(h.Run(ParseJson, doc).ok());
  std::vector<Child> children;
  for (const auto& s : h.out.texts) {
    for (auto& c : h.Runs(s.text, s.offset, s.location)) children.push_back(std::move(c));
  }
  EXPECT_TRUE(HasChild(children, kPeople));
}

TEST(ParseJson, JsonLinesIsOneTable) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseJson, "{\"id\":1,\"name\":\"Alice Smith-Jones\"}\n\n{\"id\":2,\"name\":\"Bob\"}\n"
                               "{\"id\":3,\"zip\":\"10001\"}\n")
                  .ok())
      << h.status.ToString();
  ASSERT_EQ(h.out.tables.size(), 1u);
  const Table& t = h.out.tables[0];
  EXPECT_EQ(t.header, (std::vector<std::string>{"id", "name", "zip"}));
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[2], (std::vector<std::string>{"3", "", "10001"}));
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{1, 3, 4}));
  ASSERT_EQ(h.out.texts.size(), 1u);  // the long name
  EXPECT_EQ(h.out.texts[0].location, "line 1 /name");
  // An error on a later line names the line.
  ASSERT_FALSE(h.Run(ParseJson, "{\"a\":1}\n{\"a\":2}\n{\"a\":\n").ok());
  EXPECT_NE(h.status.message().find("JSON Lines: line 3"), std::string::npos) << h.status.message();
}

TEST(ParseJson, DepthIsBounded) {
  Harness h;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  ASSERT_FALSE(h.Run(ParseJson, deep).ok());
  EXPECT_NE(h.status.message().find("nesting deeper than 256"), std::string::npos) << h.status.message();
  const std::string ok = std::string(200, '[') + std::string(200, ']');
  EXPECT_TRUE(h.Run(ParseJson, ok).ok()) << h.status.ToString();
  std::string objects;
  for (int i = 0; i < 300; ++i) objects += "{\"a\":";
  objects += "1" + std::string(300, '}');
  EXPECT_FALSE(h.Run(ParseJson, objects).ok());
}

TEST(ParseJson, SyntaxErrorsNameTheByte) {
  Harness h;
  ASSERT_FALSE(h.Run(ParseJson, "{\"a\": tru}").ok());
  EXPECT_NE(h.status.message().find("JSON: byte 9"), std::string::npos) << h.status.message();
  ASSERT_FALSE(h.Run(ParseJson, "").ok());
  ASSERT_FALSE(h.Run(ParseJson, "{\"a\":\"\xC3\x28\"}").ok());
  EXPECT_NE(h.status.message().find("byte 6"), std::string::npos) << h.status.message();
}

// ----------------------------------------------------------------- YAML --

TEST(ParseYaml, UnquotesScalarsAndFindsRecords) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseYaml, "# people\n- name: 'Alice O''Neil'\n  age: 34\n  tags:\n    - x\n"
                               "- name: \"Bob \\\"B\\\"\"\n  age: 45\n  zip: 10001\n")
                  .ok());
  ASSERT_EQ(h.out.texts.size(), 1u);
  EXPECT_NE(h.out.texts[0].text.find("name: Alice O'Neil\n"), std::string::npos) << h.out.texts[0].text;
  EXPECT_NE(h.out.texts[0].text.find("name: Bob \"B\"\n"), std::string::npos) << h.out.texts[0].text;
  ASSERT_EQ(h.out.tables.size(), 1u);
  const Table& t = h.out.tables[0];
  EXPECT_EQ(t.header, (std::vector<std::string>{"name", "age", "tags", "zip"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"Alice O'Neil", "34", "", ""}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"Bob \"B\"", "45", "", "10001"}));
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{2, 6}));
}

TEST(ParseYaml, MappingIsTextOnly) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseYaml, "key: 'abc'\nlist:\n  - one\n  - two\nmsg: \"a\\tb\"\n").ok());
  EXPECT_TRUE(h.out.tables.empty());
  EXPECT_EQ(h.out.texts[0].text, "key: abc\nlist:\n  - one\n  - two\nmsg: a\tb\n");
  ASSERT_FALSE(h.Run(ParseYaml, "a: \xFF\n").ok());
}

// ----------------------------------------------------------------- text --

TEST(ParseText, PlainTextIsOneSpan) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseText, "2024-01-01 INFO started\nno tables here | really\n").ok());
  ASSERT_EQ(h.out.texts.size(), 1u);
  EXPECT_EQ(h.out.texts[0].text, "2024-01-01 INFO started\nno tables here | really\n");
  EXPECT_TRUE(h.out.tables.empty());
  ASSERT_TRUE(h.Run(ParseText, Utf16("hello\n", true, true)).ok());
  EXPECT_EQ(h.out.texts[0].text, "hello\n");
}

TEST(ParseText, MarkdownPipeTable) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseText, "# Results\n\n| group | n |\n|:---|---:|\n| a \\| b | 12 |\n| c | 40 |\n\nend\n").ok());
  ASSERT_EQ(h.out.tables.size(), 1u);
  const Table& t = h.out.tables[0];
  EXPECT_EQ(t.header, (std::vector<std::string>{"group", "n"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"a | b", "12"}));
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{5, 6}));
}

TEST(ParseText, SqlInsertIsATable) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseText, "-- dump\nCREATE TABLE people (id int);\n"
                               "INSERT INTO `people` (`id`, name, note) VALUES (1, 'O''Neil', NULL),\n"
                               "  (2, 'a,b)', 'x\\'y');\ninsert into people values (3, 'C', 'z');\n")
                  .ok());
  ASSERT_EQ(h.out.tables.size(), 1u);
  const Table& t = h.out.tables[0];
  EXPECT_EQ(t.name, "people");
  EXPECT_EQ(t.header, (std::vector<std::string>{"id", "name", "note"}));
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"1", "O'Neil", ""}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"2", "a,b)", "x'y"}));
  EXPECT_EQ(t.rows[2], (std::vector<std::string>{"3", "C", "z"}));
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{3, 4, 5}));
}

// ----------------------------------------------------------------- HTML --

TEST(ParseHtml, TextEntitiesAttributesCommentsScripts) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseHtml, "<!DOCTYPE html><html><head><title>T &amp; C</title>"
                               "<style>.x{color:red}</style></head><body><p>Fish &amp; chips &#x41;&#66;&lt;"
                               "</p><!-- secret note --><img alt=\"a photo\" title='t1' data-row=\"1001,Alice\" "
                               "class=\"hidden\"><a href=\"https://example.com/?a=1&amp;b=2\">link</a>"
                               "<script>var s = \"in script\";</script></body></html>")
                  .ok());
  ASSERT_EQ(h.out.texts.size(), 1u);
  const std::string& text = h.out.texts[0].text;
  for (const char* want : {"T & C", "Fish & chips AB<", "secret note", "a photo", "t1", "1001,Alice",
                           "https://example.com/?a=1&b=2", "link", "in script", ".x{color:red}"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << " in " << text;
  }
  EXPECT_EQ(text.find("hidden"), std::string::npos);  // class is not text
  EXPECT_EQ(text.find("<p>"), std::string::npos);
}

TEST(ParseHtml, TableWithHeaderCells) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseHtml, "<table>\n<tr><th>group</th><th>n</th></tr>\n<tr><td>a &amp; b</td><td>12</td></tr>\n"
                               "<tr><td>c<td>40\n</table>")
                  .ok());
  ASSERT_EQ(h.out.tables.size(), 1u);
  const Table& t = h.out.tables[0];
  EXPECT_EQ(t.header, (std::vector<std::string>{"group", "n"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"a & b", "12"}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"c", "40"}));
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{3, 4}));
}

TEST(ParseHtml, DataUriBecomesAChild) {
  Harness h;
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "rest of the image bytes";
  const std::string doc = "<p>x</p><img src=\"data:image/png;base64," + Base64(png) + "\">";
  ASSERT_TRUE(h.Run(ParseHtml, doc).ok());
  ASSERT_EQ(h.out.children.size(), 1u);
  EXPECT_EQ(h.out.children[0].bytes, png);
  EXPECT_EQ(h.out.children[0].name, "data-uri@" + std::to_string(doc.find("data:")));
  // The payload is not also left in the text (it would be decoded twice).
  EXPECT_EQ(h.out.texts[0].text.find(Base64(png)), std::string::npos);
}

TEST(ParseHtml, SvgTextAndXlink) {
  Harness h;
  ASSERT_TRUE(h.Run(ParseHtml, "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><text x=\"1\">"
                               "Label 42</text><a xlink:href=\"#target\"/><![CDATA[raw <b>cdata</b>]]></svg>")
                  .ok());
  const std::string& text = h.out.texts[0].text;
  EXPECT_NE(text.find("Label 42"), std::string::npos);
  EXPECT_NE(text.find("#target"), std::string::npos);
  EXPECT_NE(text.find("raw <b>cdata</b>"), std::string::npos);
}

TEST(ParseHtml, MalformedMarkupIsTolerated) {
  Harness h;
  for (const char* doc : {"<div><p>unclosed <b", "<<<>>>", "<a href=\"never closed", "</td></tr></table>x",
                          "<table><table><tr><td>1", "<!-- open comment", "<script>no end", "&#xFFFFFFFF; &bogus;"}) {
    EXPECT_TRUE(h.Run(ParseHtml, doc).ok()) << doc;
  }
  std::string nested;
  for (int i = 0; i < 1000; ++i) nested += "<table><tr><td>";
  EXPECT_TRUE(h.Run(ParseHtml, nested).ok());
  EXPECT_FALSE(h.Run(ParseHtml, "<p>\xFF</p>").ok());
}

// ------------------------------------------------------- encoded runs --

TEST(FindEncodedRuns, Base64StandardAndUrlSafe) {
  Harness h;
  const std::string prefix = "result: ";
  std::vector<Child> c = h.Runs(prefix + Base64(kPeople) + " done", 100);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].bytes, kPeople);
  EXPECT_EQ(c[0].name, "base64@108");
  EXPECT_EQ(c[0].location, "byte 108");
  const std::string binary = std::string("\xfb\xff\xfe\x01\x02", 5) + kPeople;
  c = h.Runs("x=" + Base64(binary, /*url=*/true, /*pad=*/false) + ";");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].bytes, binary);
}

TEST(FindEncodedRuns, Base64WrappedOrSplit) {
  Harness h;
  const std::string b = Base64(kPeople);
  for (size_t width : {76u, 64u, 16u, 4u}) {
    std::string wrapped;
    for (size_t i = 0; i < b.size(); i += width) wrapped += b.substr(i, width) + "\r\n";
    std::vector<Child> c = h.Runs("begin\n" + wrapped + "end\n");
    ASSERT_EQ(c.size(), 1u) << width;
    EXPECT_EQ(c[0].bytes, kPeople) << width;
  }
  // Chunks of varying lengths, quoted and comma-separated, with literal \n.
  std::string chunks = "parts = [";
  for (size_t i = 0, k = 0; i < b.size(); i += 5 + k % 7, ++k) chunks += "'" + b.substr(i, 5 + k % 7) + "',\\n ";
  chunks += "]";
  std::vector<Child> c = h.Runs(chunks);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].bytes, kPeople);
}

TEST(FindEncodedRuns, Base32) {
  Harness h;
  std::vector<Child> c = h.Runs("otp " + Base32(kPeople) + " end");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].bytes, kPeople);
  EXPECT_EQ(c[0].name, "base32@4");
}

TEST(FindEncodedRuns, HexContiguousAndSeparated) {
  Harness h;
  const std::string data = kPeople.substr(0, 80);
  for (const auto& [text, at] : std::vector<std::pair<std::string, size_t>>{
           {"hex: " + Hex(data) + "\n", 5},
           {"dump " + Hex(data, " ") + " end", 5},
           {"mac " + Hex(data, ":") + ".", 4},
           {"s = \"" + Hex(data, "", "\\x") + "\";", 5},
           {"{" + Hex(data, ", ", "0x") + "}", 1},
           {"upper " + [&] { std::string u = Hex(data, " "); for (auto& ch : u) ch = static_cast<char>(toupper(ch)); return u; }(), 6},
       }) {
    std::vector<Child> c = h.Runs(text);
    ASSERT_EQ(c.size(), 1u) << text;
    EXPECT_EQ(c[0].bytes, data) << text;
    EXPECT_EQ(c[0].name, "hex@" + std::to_string(at)) << text;
  }
  // Hex of ASCII digits is all digits, and still decoded.
  std::vector<Child> c = h.Runs("n=" + Hex("123456789012345678901234567890") + ";");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].bytes, "123456789012345678901234567890");
}

TEST(FindEncodedRuns, Sha256DigestIsDecoded) {
  Harness h;
  std::vector<Child> c = h.Runs("sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].bytes.size(), 32u);
}

TEST(FindEncodedRuns, OrdinaryTextIsNotDecoded) {
  Harness h;
  const char* texts[] = {
      "The quick brown fox jumps over the lazy dog and then runs away into the forest, quickly "
      "followed by the hunter who had been waiting there since the early morning of that day.",
      "In 2023 we had 42 cases and 17 deaths in total across The United Kingdom And France And Spain "
      "And Portugal And Italy And Germany And Austria And Switzerland in 2024 and 2025 too.",
      "AbstractSingletonProxyFactoryBeanGetObjectTypeForTheInstanceOfTheWholeApplicationContext",
      "/home/user/projects/DataAnalysis/results/2023/Figures/plot1/final/version/three/output.png",
      "123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890",
      "1234 5678 9012 3456 7890 1234 5678 9012 3456 7890 1234 5678 9012 3456 7890 1234 5678 9012",
      "ID,VALUE\n10,20\n30,40\n50,60\n70,80\n90,11\n12,13\n14,15\n16,17\n18,19\n21,22\n23,24\n",
      "THIS IS A SHOUTED HEADLINE ABOUT THE RESULTS OF THE ANALYSIS THAT WE RAN LAST WEEK ON DATA",
      "550e8400-e29b-41d4-a716-446655440000 6ba7b810-9dad-11d1-80b4-00c04fd430c8 "
      "6ba7b811-9dad-11d1-80b4-00c04fd430c8",
      "mean_age_by_region_and_sex_and_year_and_month_adjusted_for_population_weights_v2",
  };
  for (const char* text : texts) {
    EXPECT_TRUE(h.Runs(text).empty()) << text;
  }
  // Numbers before '=' or '\\' (once looped forever).
  EXPECT_TRUE(h.Runs("x=1, 5=5 77\\9 a=b 12==").empty());
}

TEST(FindEncodedRuns, MinimumLengthIsThePolicys) {
  Harness h;
  const std::string b = Base64(kPeople.substr(0, 30));  // 40 characters
  EXPECT_TRUE(h.Runs("v " + b + " w").empty());
  h.policy.min_encoded_chars = 32;
  EXPECT_EQ(h.Runs("v " + b + " w").size(), 1u);
}

TEST(FindEncodedRuns, BudgetIsChargedAndBounded) {
  Harness h;
  const std::string b = Base64(kPeople);
  h.budget = 1000;
  ASSERT_EQ(h.Runs(b).size(), 1u);
  EXPECT_EQ(h.budget, 1000 - kPeople.size());
  h.budget = 50;
  EXPECT_TRUE(h.Runs(b).empty());
  EXPECT_EQ(h.budget, 0u);  // exhausted: the scanner reports the bomb
  // With findings (as the parsers use it).
  h.budget = uint64_t{1} << 30;
  h.policy.max_child_bytes = 100;
  ParseContext ctx{h.policy, h.budget};
  std::vector<Child> children;
  std::vector<Finding> findings;
  FindEncodedRunsIn(b + " and " + b, 7, "f", "", ctx, &children, &findings);
  EXPECT_TRUE(children.empty());
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].detector, "encoding.bomb");
  EXPECT_EQ(findings[0].file, "f");
  EXPECT_TRUE(findings[0].hard);
}

TEST(EntropyBitsPerByte, KnownValues) {
  EXPECT_DOUBLE_EQ(EntropyBitsPerByte(""), 0);
  EXPECT_DOUBLE_EQ(EntropyBitsPerByte(std::string(100, 'a')), 0);
  EXPECT_DOUBLE_EQ(EntropyBitsPerByte("abab"), 1);
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_DOUBLE_EQ(EntropyBitsPerByte(all), 8);
}


// ------------------------------------------------------- robustness --

// Mutated documents through every parser: no crash, errors are
// kInvalidArgument, tables keep one line per row, the budget only shrinks.
TEST(TextParsers, SurviveMutatedInput) {
  const std::string blob = Base64(kPeople);
  const std::vector<std::string> seeds = {
      kPeople,
      "a,\"b\"\"c\",d\n\"x\ny\",2,3\n",
      R"({"rows":[{"a":1,"b":"x","c":{"d":[1,2,{"e":null}]}},[1,"2"],"s"],"k":")" + blob + R"("})",
      "{\"a\":1}\n[1,2]\n\"s\"\n",
      "- a: 'x''y'\n  b: \"q\\u0041\"\n- a: 2\nkey: |\n  text\n",
      "| a | b |\n|---|---|\n| 1 | 2 |\nINSERT INTO t (a,b) VALUES (1,'x'),(2,'y');\n",
      "<table><tr><th>a</th></tr><tr><td>1</td></tr></table><img src=\"data:image/png;base64," + blob +
          "\"><!-- c --><script>x</script>&#x41;&amp;",
      "hex " + Hex(kPeople.substr(0, 40), " ") + " \\x41\\x42 " + blob + "\n" + Base32(kPeople),
  };
  const ParseFn parsers[] = {ParseCsv, ParseJson, ParseYaml, ParseText, ParseHtml};
  const char specials[] = "\"'<>[]{},;:=\\\n\r\t&#|-/+x0\xC3\xFF";
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  auto next = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  for (int iter = 0; iter < 1500; ++iter) {
    std::string doc = seeds[next() % seeds.size()];
    const int edits = 1 + static_cast<int>(next() % 8);
    for (int k = 0; k < edits && !doc.empty(); ++k) {
      const size_t at = next() % doc.size();
      switch (next() % 4) {
        case 0: doc[at] = specials[next() % (sizeof specials - 1)]; break;
        case 1: doc.insert(at, 1, specials[next() % (sizeof specials - 1)]); break;
        case 2: doc.erase(at, next() % 16); break;
        default: doc.insert(at, doc.substr(next() % doc.size(), next() % 64)); break;
      }
    }
    for (ParseFn fn : parsers) {
      Harness h;
      h.budget = 1 << 20;
      const Status s = h.Run(fn, doc);
      if (!s.ok()) {
        EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
        continue;
      }
      EXPECT_LE(h.budget, uint64_t{1} << 20);
      for (const auto& t : h.out.tables) EXPECT_EQ(t.row_lines.size(), t.rows.size());
      for (const auto& span : h.out.texts) {
        std::vector<Child> c = h.Runs(span.text, span.offset, span.location);
        for (const auto& child : c) EXPECT_LE(child.bytes.size(), span.text.size());
      }
    }
  }
}

}  // namespace
}  // namespace cce::gate
