#include "gate/fingerprint.h"

#include <gtest/gtest.h>
#include <time.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "gate/normalize.h"

namespace cce::gate {
namespace {

// ---------------------------------------------------------------------------
// A synthetic people table, built the same way in every test.

struct Person {
  std::string id, name, email, dob, zip, city;
  double salary = 0;   // cents
  double balance = 0;  // cents
  double risk = 0;     // 6 decimals
};

std::string Syllables(std::mt19937_64& rng, int n) {
  static const char* kParts[] = {"ka",  "lo",  "mi",   "ren", "sta", "vor", "dil",
                                 "ben", "tra", "quin", "zel", "po",  "nar", "gus",
                                 "fey", "wil", "hop",  "dra", "sen", "mur"};
  std::string s;
  for (int i = 0; i < n; ++i) s += kParts[rng() % 20];
  s[0] = static_cast<char>(s[0] - 32);
  return s;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::vector<Person> MakePeople(size_t n, uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::vector<Person> people;
  for (size_t i = 0; i < n; ++i) {
    Person p;
    char id[16];
    std::snprintf(id, sizeof id, "P%07llu",
                  static_cast<unsigned long long>(1000000 + rng() % 9000000));
    p.id = id + std::to_string(i % 10);  // unique enough, not dense
    const std::string first = Syllables(rng, 2), last = Syllables(rng, 3);
    p.name = first + " " + last;
    std::string lower = first + "." + last + std::to_string(i);
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    p.email = lower + "@example.org";
    char dob[16];
    std::snprintf(dob, sizeof dob, "%04d-%02d-%02d", 1940 + static_cast<int>(rng() % 65),
                  1 + static_cast<int>(rng() % 12), 1 + static_cast<int>(rng() % 28));
    p.dob = dob;
    p.zip = std::to_string(10000 + (rng() % 40) * 7);
    static const char* kCities[] = {"Springfield", "Riverton", "Lakeside", "Hillview", "Oakdale"};
    p.city = kCities[rng() % 5];
    p.salary = 20000 + static_cast<double>(rng() % 13000000) / 100.0;
    p.balance = static_cast<double>(rng() % 100000000) / 100.0 + 1000;
    p.risk = static_cast<double>(rng() % 1000000) / 1000000.0 + 0.000001;
    people.push_back(p);
  }
  return people;
}

std::string PeopleCsv(const std::vector<Person>& people) {
  std::string csv = "id,name,email,dob,zip,city,salary,balance,risk_score\n";
  for (const Person& p : people) {
    csv += p.id + ",\"" + p.name + "\"," + p.email + "," + p.dob + "," + p.zip + "," + p.city +
           "," + Fixed(p.salary, 2) + "," + Fixed(p.balance, 2) + "," + Fixed(p.risk, 6) + "\n";
  }
  return csv;
}

const uint8_t kKey[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
crypto::ByteSpan Key() {
  return {kKey, sizeof kKey};
}

ReferenceIndex BuildIndex(const std::vector<Person>& people, const Policy& policy = Policy{}) {
  ReferenceIndex::Builder builder("people", Key(), policy);
  Status s = builder.AddFile("people.csv", PeopleCsv(people));
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto index = builder.Finish();
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  return std::move(index).value();
}

class FingerprintTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    people_ = new std::vector<Person>(MakePeople(2000));
    index_ = new ReferenceIndex(BuildIndex(*people_));
  }
  static void TearDownTestSuite() {
    delete index_;
    delete people_;
  }
  std::vector<Finding> Detect(const Collected& out, const Policy& policy = Policy{}) {
    std::vector<Finding> findings;
    DetectCopies(out, {index_}, policy, &findings);
    return findings;
  }
  static const Person& P(size_t i) { return (*people_)[i]; }
  static std::vector<Person>* people_;
  static ReferenceIndex* index_;
};
std::vector<Person>* FingerprintTest::people_ = nullptr;
ReferenceIndex* FingerprintTest::index_ = nullptr;

std::vector<const Finding*> Of(const std::vector<Finding>& findings, std::string_view detector) {
  std::vector<const Finding*> out;
  for (const Finding& f : findings) {
    if (f.detector == detector) out.push_back(&f);
  }
  return out;
}
bool AnyHard(const std::vector<Finding>& findings) {
  for (const Finding& f : findings) {
    if (f.hard) return true;
  }
  return false;
}
std::string Dump(const std::vector<Finding>& findings) {
  std::string s;
  for (const Finding& f : findings) {
    s += f.detector + (f.hard ? " HARD " : " ") + std::to_string(f.score) + " " + f.file + " [" +
         f.location + "] " + f.message + "\n";
  }
  return s;
}

TextSpan Text(std::string file, std::string text) {
  TextSpan span;
  span.file = std::move(file);
  span.text = std::move(text);
  return span;
}

// ---------------------------------------------------------------------------
// Normalisation.

std::vector<std::string> FormsOf(std::string_view text) {
  std::string folded;
  normalize::Fold(text, &folded);
  std::vector<std::string_view> tokens;
  normalize::Tokenize(folded, &tokens);
  normalize::Forms forms;
  for (std::string_view t : tokens) normalize::AddTokenForms(t, true, &forms);
  std::vector<std::string> out;
  for (size_t i = 0; i < forms.size(); ++i) out.emplace_back(forms.at(i));
  return out;
}

TEST(Normalize, NumberFormatsCanonicalise) {
  const std::vector<std::string> want = {"n12345e4"};
  EXPECT_EQ(FormsOf("1234.5"), want);
  EXPECT_EQ(FormsOf("\"1,234.50\""), want);
  EXPECT_EQ(FormsOf("1.2345e3"), want);
  EXPECT_EQ(FormsOf("+1234.500"), want);
  EXPECT_EQ(FormsOf("1.2345E+03"), want);
  EXPECT_EQ(FormsOf("\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93\xEF\xBC\x94.5"), want);  // fullwidth 1234
  EXPECT_EQ(FormsOf("0.00012"), (std::vector<std::string>{"n12e-3"}));
  // A code with leading zeros keeps its raw form, and as a number is 123.
  EXPECT_EQ(FormsOf("00123"), (std::vector<std::string>{"n123e3", "t00123"}));
  // Thousands groups only when they are groups.
  EXPECT_EQ(FormsOf("1234,5678"), (std::vector<std::string>{"n1234e4", "n5678e4"}));
}

TEST(Normalize, DatesCanonicalise) {
  EXPECT_EQ(FormsOf("2023-01-25"), (std::vector<std::string>{"d20230125"}));
  EXPECT_EQ(FormsOf("25/01/2023"), (std::vector<std::string>{"d20230125"}));
  EXPECT_EQ(FormsOf("01/25/2023"), (std::vector<std::string>{"d20230125"}));
  EXPECT_EQ(FormsOf("25.01.2023"), (std::vector<std::string>{"d20230125"}));
  EXPECT_EQ(FormsOf("2023-01-25T10:00:00Z")[0], "d20230125");
  // Ambiguous: both readings.
  EXPECT_EQ(FormsOf("05/01/2023"), (std::vector<std::string>{"d20230105", "d20230501"}));
}

TEST(Normalize, TextFolding) {
  // Zero-width space, soft hyphen, BOM, bidi control inside; NBSP and case.
  EXPECT_EQ(FormsOf("Jo\xE2\x80\x8Bhn.Sm\xC2\xADith\xEF\xBB\xBF@Ex\xE2\x80\xAE"
                    "ample.org"),
            (std::vector<std::string>{"tjohn.smith@example.org"}));
  EXPECT_EQ(FormsOf("\xC3\x89mile\xC2\xA0Zola"),
            (std::vector<std::string>{"t\xC3\xA9mile", "tzola"}));
  EXPECT_EQ(FormsOf("\xE2\x80\x9CO'Brien\xE2\x80\x9D, "), (std::vector<std::string>{"to'brien"}));
  EXPECT_EQ(FormsOf("555-123-4567"), (std::vector<std::string>{"t555-123-4567", "t5551234567"}));
}

TEST(Normalize, PlainNumberShapeAgreesWithTheForms) {
  std::mt19937_64 rng(3);
  const char* fixed[] = {"0",    "0.0", "-5",      "+1234.500", "1.5e3",
                         "7E-2", "100", "0.00012", "42.",       "123456789012345678901234"};
  std::vector<std::string> cases(std::begin(fixed), std::end(fixed));
  for (int i = 0; i < 2000; ++i) {
    char buf[64];
    std::snprintf(
        buf, sizeof buf, i % 3 == 0 ? "%.*e" : "%.*f", static_cast<int>(rng() % 8),
        static_cast<double>(rng() % 100000000) / std::pow(10.0, static_cast<double>(rng() % 10)));
    cases.push_back(buf);
  }
  for (const std::string& c : cases) {
    uint32_t strength = 0;
    uint16_t shape = 0;
    ASSERT_TRUE(normalize::PlainNumberShape(c, &strength, &shape)) << c;
    std::string folded;
    normalize::Fold(c, &folded);
    std::vector<std::string_view> tokens;
    normalize::Tokenize(folded, &tokens);
    ASSERT_EQ(tokens.size(), 1u) << c;
    normalize::Forms forms;
    normalize::AddTokenForms(tokens[0], true, &forms);
    ASSERT_EQ(forms.size(), 1u) << c;
    EXPECT_EQ(forms.spans[0].strength, strength) << c;
    EXPECT_EQ(forms.spans[0].shape, shape) << c;
  }
  uint32_t strength = 0;
  uint16_t shape = 0;
  for (const char* not_plain : {"00123", "1,234", "2023-01-05", "12a", "", "-", "1.2.3", "1e"}) {
    EXPECT_FALSE(normalize::PlainNumberShape(not_plain, &strength, &shape)) << not_plain;
  }
}

TEST(Normalize, MemoFormIsFloat32Rounding) {
  normalize::Forms a, b;
  ASSERT_TRUE(normalize::AddMemoForm(52345.67, &a));
  ASSERT_TRUE(normalize::AddMemoForm(static_cast<double>(static_cast<float>(52345.67)), &b));
  EXPECT_EQ(a.at(0), b.at(0));
  EXPECT_EQ(a.at(0), "m523457e5");
  EXPECT_FALSE(normalize::AddMemoForm(0, &a));
}

// ---------------------------------------------------------------------------
// Reference files.

TEST(ReferenceBuilder, RejectsMalformedFilesNamingTheLine) {
  Policy policy;
  {
    ReferenceIndex::Builder b("d", Key(), policy);
    Status s = b.AddFile("a.csv", "x,y\n1,\"unterminated\n2,3\n");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("a.csv: line 2: unterminated quoted field"), std::string::npos)
        << s.message();
  }
  {
    ReferenceIndex::Builder b("d", Key(), policy);
    Status s = b.AddFile("a.csv", "x,y\n1,2\n1,2,3\n");
    EXPECT_NE(s.message().find("a.csv: line 3: 3 fields, expected 2"), std::string::npos)
        << s.message();
  }
  {
    ReferenceIndex::Builder b("d", Key(), policy);
    Status s = b.AddFile("a.jsonl", "{\"a\":1}\n[1,2]\n");
    EXPECT_NE(s.message().find("a.jsonl: line 2: expected a JSON object"), std::string::npos)
        << s.message();
  }
  {
    ReferenceIndex::Builder b("d", Key(), policy);
    Status s = b.AddFile("a.csv", std::string("x,y\n1,\0\n", 8));
    EXPECT_NE(s.message().find("a.csv: line 2: NUL byte"), std::string::npos) << s.message();
  }
  {
    ReferenceIndex::Builder b("d", Key(), policy);
    EXPECT_EQ(b.AddFile("a.csv", "\n\n").code(), StatusCode::kInvalidArgument);
  }
  {
    const uint8_t short_key[16] = {};
    ReferenceIndex::Builder b("d", crypto::ByteSpan(short_key, 16), policy);
    Status s = b.AddFile("a.csv", "x\n1\n");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("fingerprint key: 16 bytes, expected 32"), std::string::npos);
  }
}

TEST(ReferenceBuilder, JsonLinesAndDirectory) {
  const std::vector<Person> people = MakePeople(300, 11);
  std::string jsonl;
  for (const Person& p : people) {
    jsonl += "{\"id\":\"" + p.id + "\",\"person\":{\"name\":\"" + p.name + "\",\"email\":\"" +
             p.email + "\"},\"salary\":" + Fixed(p.salary, 2) + "}\n";
  }
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "fp_ref_dir";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "sub");
  std::ofstream(dir / "sub" / "people.jsonl") << jsonl;
  std::ofstream(dir / "notes.txt") << "ignored";
  auto index = ReferenceIndex::FromDirectory(dir.string(), Policy{});
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(index->dataset(), "fp_ref_dir");
  EXPECT_EQ(index->rows(), 300u);
  EXPECT_GE(index->cells(), 900u);
  Collected out;
  out.texts.push_back(
      Text("o.txt", people[5].email + " " + people[6].email + " " + people[7].email));
  std::vector<Finding> findings;
  DetectCopies(out, {&*index}, Policy{}, &findings);
  ASSERT_EQ(Of(findings, "copy.identifier").size(), 1u) << Dump(findings);
  EXPECT_NE(findings[0].message.find("3 distinct identifier values"), std::string::npos);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(ReferenceIndex::FromDirectory(dir.string(), Policy{}).status().code(),
            StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Copied rows.

TEST_F(FingerprintTest, CopiedRowWithReorderedColumnsIsHeld) {
  Collected out;
  Table t;
  t.file = "result.csv";
  t.header = {"salary", "mail", "who", "key"};
  for (size_t i : {10, 11})
    t.rows.push_back({Fixed(P(i).salary, 2), P(i).email, P(i).name, P(i).id});
  t.row_lines = {2, 3};
  out.tables.push_back(t);
  const auto findings = Detect(out);
  const auto rows = Of(findings, "copy.row");
  ASSERT_EQ(rows.size(), 2u) << Dump(findings);
  EXPECT_TRUE(rows[0]->hard);
  EXPECT_EQ(rows[0]->file, "result.csv");
  EXPECT_EQ(rows[0]->location, "row 1 (line 2)");
  EXPECT_EQ(rows[0]->row, 0);
  EXPECT_NE(rows[0]->message.find("line 12 of 'people.csv' of dataset 'people'"), std::string::npos)
      << rows[0]->message;
  // Never the value itself.
  for (const Finding& f : findings) {
    EXPECT_EQ(f.message.find(P(10).email), std::string::npos);
    EXPECT_EQ(f.message.find(P(10).id), std::string::npos);
  }
}

TEST_F(FingerprintTest, CopiedRowInOtherFormatsIsHeld) {
  const Person& p = P(42);
  const std::string d = p.dob;  // yyyy-mm-dd -> dd.mm.yyyy
  const std::string dob = d.substr(8, 2) + "." + d.substr(5, 2) + "." + d.substr(0, 4);
  char sci[32];
  std::snprintf(sci, sizeof sci, "%.9e", p.balance);
  Collected out;
  // Upper case, quoted, scientific notation, another date form, thousands
  // separators, semicolons: one text line.
  std::string salary = Fixed(p.salary, 2);
  const size_t point = salary.find('.');
  if (point > 3) salary.insert(point - 3, ",");
  std::string name = p.name;
  for (char& c : name) c = static_cast<char>(std::toupper(c));
  out.texts.push_back(Text(
      "log.txt", "intro\n'" + name + "'; \"" + salary + "\"; " + sci + "; born " + dob + "\n"));
  const auto findings = Detect(out);
  const auto rows = Of(findings, "copy.row");
  ASSERT_EQ(rows.size(), 1u) << Dump(findings);
  EXPECT_EQ(rows[0]->location, "line 2");
  EXPECT_EQ(rows[0]->line, 2);
  EXPECT_EQ(rows[0]->offset, 6);
}

TEST_F(FingerprintTest, FullwidthDigitsAndZeroWidthCharactersStillMatch) {
  const Person& p = P(77);
  std::string fullwidth_salary;
  for (char c : Fixed(p.salary, 2)) {
    if (c >= '0' && c <= '9') {
      fullwidth_salary += "\xEF\xBC";
      fullwidth_salary.push_back(static_cast<char>(0x90 + (c - '0')));
    } else {
      fullwidth_salary += "\xEF\xBC\x8E";  // fullwidth full stop
    }
  }
  std::string email = p.email;
  email.insert(3, "\xE2\x80\x8B");  // zero-width space
  email.insert(8, "\xE2\x80\x8D");  // zero-width joiner
  Collected out;
  out.texts.push_back(
      Text("x.md", "| " + email + " | " + fullwidth_salary + " | " + p.dob + " | " + p.id + " |"));
  const auto findings = Detect(out);
  ASSERT_EQ(Of(findings, "copy.row").size(), 1u) << Dump(findings);
}

TEST_F(FingerprintTest, ZeroWidthIdentifiersAddUp) {
  Collected out;
  std::string text;
  for (size_t i : {100, 200, 300}) {
    std::string email = P(i).email;
    email.insert(2, "\xE2\x80\x8B");
    text += "contact: " + email + "\n";
  }
  // As a parser hands over UTF-16 text: decoded, with its BOM.
  out.texts.push_back(Text("contacts.txt", "\xEF\xBB\xBF" + text));
  const auto findings = Detect(out);
  const auto ids = Of(findings, "copy.identifier");
  ASSERT_EQ(ids.size(), 1u) << Dump(findings);
  EXPECT_TRUE(ids[0]->hard);
  EXPECT_NE(ids[0]->message.find("contacts.txt (line 1)"), std::string::npos) << ids[0]->message;
  EXPECT_TRUE(Of(findings, "copy.row").empty());
}

TEST_F(FingerprintTest, ColumnSpreadOverFileNamesAddsUp) {
  Collected out;
  for (size_t i = 0; i < 50; ++i) {
    out.paths.push_back("out/part_" + std::to_string(i) + "/" + P(500 + i).id + ".txt");
  }
  const auto findings = Detect(out);
  const auto ids = Of(findings, "copy.identifier");
  ASSERT_EQ(ids.size(), 1u) << Dump(findings);
  EXPECT_TRUE(ids[0]->hard);
  EXPECT_NE(ids[0]->message.find("50 distinct identifier values"), std::string::npos)
      << ids[0]->message;
  EXPECT_EQ(ids[0]->location, "file name");
  // Names as "last_first.csv" in file names too.
  Collected names;
  for (size_t i = 0; i < 5; ++i) {
    const std::string& n = P(600 + i).name;
    const size_t sp = n.find(' ');
    names.paths.push_back("people/" + n.substr(sp + 1) + "_" + n.substr(0, sp) + ".csv");
  }
  const auto name_findings = Detect(names);
  ASSERT_FALSE(Of(name_findings, "copy.cell").empty()) << Dump(name_findings);
}

TEST_F(FingerprintTest, OneCellPerFileOverManyFilesAddsUp) {
  Collected out;
  for (size_t i = 0; i < 30; ++i)
    out.texts.push_back(Text("f" + std::to_string(i) + ".txt", "value: " + P(900 + i).name));
  const auto findings = Detect(out);
  ASSERT_EQ(Of(findings, "copy.identifier").size(), 1u) << Dump(findings);
  const auto cells = Of(findings, "copy.cell");
  ASSERT_EQ(cells.size(), 1u);
  EXPECT_TRUE(cells[0]->hard);
}

TEST_F(FingerprintTest, SingleIdentifierIsNotAHardHold) {
  Collected out;
  out.texts.push_back(Text("note.txt", "example user: " + P(3).email + "\n"));
  const auto findings = Detect(out);
  EXPECT_FALSE(AnyHard(findings)) << Dump(findings);
  EXPECT_TRUE(Of(findings, "copy.identifier").empty());
  const auto cells = Of(findings, "copy.cell");
  ASSERT_EQ(cells.size(), 1u) << Dump(findings);
  EXPECT_DOUBLE_EQ(cells[0]->score, 0.02);
  EXPECT_EQ(cells[0]->location, "line 1");
}

TEST_F(FingerprintTest, AggregatesAreNotCopies) {
  // Mean and total salary, counts and date ranges by zip and by city: what
  // an analysis legitimately releases.
  std::map<std::string, std::vector<const Person*>> by_zip, by_city;
  for (const Person& p : *people_) {
    by_zip[p.zip].push_back(&p);
    by_city[p.city].push_back(&p);
  }
  Table t;
  t.file = "by_zip.csv";
  t.header = {"zip", "n", "mean_salary", "total_balance", "max_risk"};
  for (const auto& [zip, group] : by_zip) {
    double sum = 0, balance = 0, risk = 0;
    for (const Person* p : group) {
      sum += p->salary;
      balance += p->balance;
      risk = std::max(risk, p->risk);
    }
    t.rows.push_back({zip, std::to_string(group.size()),
                      Fixed(sum / static_cast<double>(group.size()), 2), Fixed(balance, 2),
                      Fixed(risk, 6)});
  }
  Table c;
  c.file = "by_city.csv";
  c.header = {"city", "n", "min_dob", "max_dob", "median_salary"};
  for (const auto& [city, group] : by_city) {
    std::vector<const Person*> g = group;
    std::sort(g.begin(), g.end(), [](auto* a, auto* b) { return a->dob < b->dob; });
    c.rows.push_back({city, std::to_string(g.size()), g.front()->dob, g.back()->dob, "61234.50"});
  }
  Collected out;
  out.tables = {t, c};
  out.texts.push_back(
      Text("summary.md", "# Salaries\nMean salary was 85,123.40 across 2000 people aged 20-85.\n"));
  out.paths = {"by_zip.csv", "by_city.csv", "summary.md"};
  const auto findings = Detect(out);
  EXPECT_TRUE(Of(findings, "copy.row").empty()) << Dump(findings);
  EXPECT_FALSE(AnyHard(findings)) << Dump(findings);
}

TEST_F(FingerprintTest, DenseColumnsDoNotCountAlone) {
  // Dates and amounts that cover their range densely (birth dates here) are
  // hit by chance by any list of dates: a calendar is not a copy.
  std::mt19937_64 rng(8);
  std::string text;
  for (int i = 0; i < 600; ++i) {
    char d[16];
    std::snprintf(d, sizeof d, "%04d-%02d-%02d\n", 1940 + static_cast<int>(rng() % 65),
                  1 + static_cast<int>(rng() % 12), 1 + static_cast<int>(rng() % 28));
    text += d;
  }
  Collected out;
  out.texts.push_back(Text("calendar.txt", text));
  const auto findings = Detect(out);
  EXPECT_FALSE(AnyHard(findings)) << Dump(findings);
  EXPECT_TRUE(Of(findings, "copy.cell").empty()) << Dump(findings);
}

TEST_F(FingerprintTest, RowThresholdsArePolicy) {
  // Two cells of one row on a record: not a copied row at row_min_cells 3...
  Collected out;
  out.texts.push_back(Text("a.txt", P(20).email + " " + P(20).id));
  EXPECT_TRUE(Of(Detect(out), "copy.row").empty());
  // ...but one at 2.
  Policy two;
  two.row_min_cells = 2;
  two.row_min_fraction = 0.2;
  EXPECT_EQ(Of(Detect(out, two), "copy.row").size(), 1u);
  // Four of its seven distinctive cells: the fraction decides.
  Policy strict;
  strict.row_min_fraction = 0.9;
  Collected three;
  three.texts.push_back(Text(
      "b.txt", P(21).email + " " + P(21).id + " " + P(21).name + " " + Fixed(P(21).salary, 2)));
  EXPECT_EQ(Of(Detect(three), "copy.row").size(), 1u);
  EXPECT_TRUE(Of(Detect(three, strict), "copy.row").empty());
  // rows_hold: below it the finding is soft.
  Policy lenient;
  lenient.rows_hold = 5;
  const auto soft = Detect(three, lenient);
  ASSERT_EQ(Of(soft, "copy.row").size(), 1u);
  EXPECT_FALSE(Of(soft, "copy.row")[0]->hard);
}

TEST(FingerprintRows, RowMinCellsGuardsRowsWithFewDistinctiveCells) {
  // Rows with two distinctive cells (code, e-mail); the rest is common.
  std::string csv = "code,email,city,plan\n";
  for (int i = 0; i < 500; ++i) {
    csv += "C" + std::to_string(700000 + i * 37) + ",user" + std::to_string(i) + "@mail.example," +
           (i % 2 ? "Oslo" : "Bergen") + ",basic\n";
  }
  ReferenceIndex::Builder builder("accounts", Key(), Policy{});
  ASSERT_TRUE(builder.AddFile("accounts.csv", csv).ok());
  auto index = builder.Finish();
  ASSERT_TRUE(index.ok());
  Collected out;
  out.texts.push_back(
      Text("a.txt", "C" + std::to_string(700000 + 9 * 37) + " user9@mail.example Oslo basic"));
  std::vector<Finding> findings;
  DetectCopies(out, {&*index}, Policy{}, &findings);
  EXPECT_TRUE(Of(findings, "copy.row").empty()) << Dump(findings);
  Policy two;
  two.row_min_cells = 2;
  findings.clear();
  DetectCopies(out, {&*index}, two, &findings);
  EXPECT_EQ(Of(findings, "copy.row").size(), 1u) << Dump(findings);
}

// ---------------------------------------------------------------------------
// Memorised rows.

NumericArray Weights(std::vector<uint64_t> shape, uint64_t seed) {
  NumericArray a;
  a.file = "model.npz!coef.npy";
  a.location = "array 'coef'";
  a.shape = shape;
  size_t n = 1;
  for (uint64_t d : shape) n *= d;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0, 1);
  for (size_t i = 0; i < n; ++i) a.values.push_back(static_cast<double>(dist(rng)));
  return a;
}

TEST_F(FingerprintTest, MemorisedRowsInFloat32WeightsAreHeld) {
  NumericArray a = Weights({64, 4}, 1);
  for (size_t k : {3, 17, 40}) {
    const Person& p = P(k * 10);
    a.values[k * 4 + 0] = static_cast<double>(static_cast<float>(p.risk));
    a.values[k * 4 + 1] = static_cast<double>(static_cast<float>(p.salary));
    a.values[k * 4 + 3] = static_cast<double>(static_cast<float>(p.balance));
  }
  Collected out;
  out.arrays.push_back(a);
  const auto findings = Detect(out);
  const auto memo = Of(findings, "model.memorised_row");
  ASSERT_EQ(memo.size(), 3u) << Dump(findings);
  EXPECT_TRUE(memo[0]->hard);
  EXPECT_EQ(memo[0]->location, "array 'coef', row 3");
  EXPECT_NE(memo[0]->message.find("line 32 of 'people.csv'"), std::string::npos)
      << memo[0]->message;
  // A flat (1-D) array with one row's values side by side.
  NumericArray flat = Weights({500}, 2);
  flat.values[100] = static_cast<double>(static_cast<float>(P(7).balance));
  flat.values[101] = static_cast<double>(static_cast<float>(P(7).salary));
  flat.values[103] = static_cast<double>(static_cast<float>(P(7).risk));
  Collected out1;
  out1.arrays.push_back(flat);
  ASSERT_EQ(Of(Detect(out1), "model.memorised_row").size(), 1u);
}

TEST_F(FingerprintTest, OrdinaryWeightsAreNotMemorised) {
  Collected out;
  out.arrays.push_back(Weights({1000, 8}, 3));
  // Column means of the data: aggregates, not rows.
  NumericArray means;
  means.file = "model.npy";
  means.shape = {3};
  double s = 0, b = 0, r = 0;
  for (const Person& p : *people_) {
    s += p.salary;
    b += p.balance;
    r += p.risk;
  }
  means.values = {s / 2000, b / 2000, r / 2000};
  out.arrays.push_back(means);
  const auto findings = Detect(out);
  EXPECT_TRUE(findings.empty()) << Dump(findings);
}

// ---------------------------------------------------------------------------
// Serialization.

TEST_F(FingerprintTest, SerializeRoundTrip) {
  const std::string bytes = index_->Serialize();
  ASSERT_EQ(bytes.substr(0, 6), "CCEFP1");
  // The key is not in it.
  EXPECT_EQ(bytes.find(std::string(reinterpret_cast<const char*>(kKey), sizeof kKey)),
            std::string::npos);
  // Nor any value.
  EXPECT_EQ(bytes.find(P(1).email), std::string::npos);
  auto back = ReferenceIndex::Deserialize(bytes, Key());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->dataset(), "people");
  EXPECT_EQ(back->rows(), index_->rows());
  EXPECT_EQ(back->cells(), index_->cells());
  EXPECT_EQ(back->Serialize(), bytes);
  Collected out;
  out.texts.push_back(Text("a.txt", P(5).email + "," + P(5).name + "," + P(5).id));
  std::vector<Finding> findings;
  DetectCopies(out, {&*back}, Policy{}, &findings);
  EXPECT_EQ(Of(findings, "copy.row").size(), 1u) << Dump(findings);
  // Another key: refused.
  uint8_t other[32] = {9};
  auto wrong = ReferenceIndex::Deserialize(bytes, crypto::ByteSpan(other, 32));
  EXPECT_EQ(wrong.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(wrong.status().message().find("key does not match"), std::string::npos);
}

TEST_F(FingerprintTest, DeserializeRejectsCorruptedBytes) {
  const std::string bytes = index_->Serialize();
  std::mt19937_64 rng(5);
  for (int i = 0; i < 300; ++i) {
    std::string bad = bytes;
    const size_t at = i < 100 ? static_cast<size_t>(i) : rng() % bad.size();
    bad[at] = static_cast<char>(bad[at] ^ (1 + rng() % 255));
    auto r = ReferenceIndex::Deserialize(bad, Key());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << "flipped byte " << at;
  }
  for (size_t len :
       {size_t{0}, size_t{5}, size_t{7}, size_t{40}, bytes.size() / 2, bytes.size() - 1}) {
    auto r = ReferenceIndex::Deserialize(std::string_view(bytes).substr(0, len), Key());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << "truncated to " << len;
  }
  auto longer = ReferenceIndex::Deserialize(bytes + "x", Key());
  EXPECT_EQ(longer.status().code(), StatusCode::kDataLoss);
}

// Corruption behind a valid trailer (a forged or buggy writer): every
// length and index is still checked, without allocating from it.
std::string Resealed(std::string body) {
  body.resize(body.size() - 32);
  const crypto::Sha256Digest d = crypto::Sha256(crypto::AsBytes(body));
  return body + std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

TEST_F(FingerprintTest, DeserializeChecksStructureBehindAValidTrailer) {
  const std::string bytes = index_->Serialize();
  std::mt19937_64 rng(6);
  size_t rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string bad = bytes;
    const size_t at = rng() % (bad.size() - 32);
    bad[at] = static_cast<char>(bad[at] ^ (1 + rng() % 255));
    auto r = ReferenceIndex::Deserialize(Resealed(bad), Key());
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 100u);
  // A row count far beyond the bytes present.
  const size_t rows_at = 7 + 12 + 4 + 6 + 4 + 4 + 10;  // header, "people", one file "people.csv"
  std::string huge = bytes;
  ASSERT_EQ(static_cast<uint8_t>(huge[rows_at]), index_->rows() & 0xff);
  huge[rows_at + 5] = 1;  // 2^40 rows
  auto r = ReferenceIndex::Deserialize(Resealed(huge), Key());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("rows, more than the bytes left hold"), std::string::npos)
      << r.status().message();
}

// Fingerprints rest in sealed index files, so their values must never change
// (a new HMAC implementation, a refactoring): pinned here. The key check
// (the u64 before the SHA-256 trailer) is the first 8 bytes, big-endian, of
// HMAC-SHA256(kKey, "\x01cce4long fingerprint key check"), computed
// independently with Python's hmac; the trailer covers every entry and shape
// fingerprint of a small fixed index, recorded with the original
// implementation (hand-built ipad/opad SHA-256 states).
TEST(FingerprintValues, ArePinned) {
  const ReferenceIndex index = BuildIndex(MakePeople(20));
  ASSERT_GT(index.cells(), 20u);  // entry fingerprints are in the pinned bytes
  const std::string bytes = index.Serialize();
  ASSERT_GT(bytes.size(), 40u);
  uint64_t check = 0;
  for (int i = 7; i >= 0; --i) {
    check = (check << 8) | static_cast<uint8_t>(bytes[bytes.size() - 40 + static_cast<size_t>(i)]);
  }
  EXPECT_EQ(check, 0xdbcb53cb72f48c72u);
  const std::string trailer = bytes.substr(bytes.size() - 32);
  EXPECT_EQ(crypto::ToHex(crypto::AsBytes(trailer)),
            "35b0d1e5ec6c64cb52a4e727130bbdaa870889fc55bab692ef16eb2aee0a47f1");
}

// ---------------------------------------------------------------------------
// Throughput (printed, not asserted). CPU time of this thread: the machine
// running the tests is shared.

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

TEST(FingerprintPerformance, MatchesCsvOutputAgainstA100kRowReference) {
  const std::vector<Person> people = MakePeople(100000, 99);
  const double t0 = ThreadCpuSeconds();
  ReferenceIndex index = BuildIndex(people);
  const double t1 = ThreadCpuSeconds();
  // An output table: ids of other people, repeated categories, counts and
  // measurements; ~64 MB as CSV.
  std::mt19937_64 rng(4);
  Table t;
  t.file = "big.csv";
  t.header = {"group", "city", "n", "score", "estimate", "ratio", "note"};
  size_t bytes = 0;
  static const char* kCities[] = {"Springfield", "Riverton", "Lakeside", "Hillview", "Oakdale"};
  while (bytes < 64 * kMiB) {
    std::vector<std::string> row = {"g" + std::to_string(rng() % 500),
                                    kCities[rng() % 5],
                                    std::to_string(rng() % 1000),
                                    Fixed(static_cast<double>(rng() % 10000) / 100, 2),
                                    Fixed(static_cast<double>(rng() % 1000000) / 1000, 3),
                                    Fixed(static_cast<double>(rng() % 100) / 100, 2),
                                    "ok"};
    for (const std::string& c : row) bytes += c.size() + 1;
    t.rows.push_back(std::move(row));
  }
  Collected out;
  out.tables.push_back(std::move(t));
  std::vector<Finding> findings;
  const double t2 = ThreadCpuSeconds();
  DetectCopies(out, {&index}, Policy{}, &findings);
  const double t3 = ThreadCpuSeconds();
  const double build_s = t1 - t0;
  const double match_s = t3 - t2;
  std::printf(
      "[perf] index of %llu rows, %llu cells built in %.2f s CPU; matched %.1f MB of CSV cells in "
      "%.3f s CPU: %.0f MB/s\n",
      static_cast<unsigned long long>(index.rows()), static_cast<unsigned long long>(index.cells()),
      build_s, static_cast<double>(bytes) / 1e6, match_s,
      static_cast<double>(bytes) / 1e6 / match_s);
  EXPECT_FALSE(AnyHard(findings)) << Dump(findings);
  // Unique decimals throughout (every token hashed): the worst case.
  Table u;
  u.file = "unique.csv";
  size_t ubytes = 0;
  while (ubytes < 8 * kMiB) {
    std::vector<std::string> row;
    for (int k = 0; k < 6; ++k)
      row.push_back(Fixed(static_cast<double>(rng() % 100000000) / 1000, 3));
    for (const std::string& c : row) ubytes += c.size() + 1;
    u.rows.push_back(std::move(row));
  }
  Collected uo;
  uo.tables.push_back(std::move(u));
  findings.clear();
  const double t4 = ThreadCpuSeconds();
  DetectCopies(uo, {&index}, Policy{}, &findings);
  const double unique_s = ThreadCpuSeconds() - t4;
  std::printf("[perf] all-unique decimals: %.1f MB in %.3f s CPU: %.0f MB/s\n",
              static_cast<double>(ubytes) / 1e6, unique_s,
              static_cast<double>(ubytes) / 1e6 / unique_s);
}

}  // namespace
}  // namespace cce::gate
