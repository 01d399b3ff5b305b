// Tests of the SQLite, NPY and pickle parsers (data_parsers.cc). Inputs are
// the files tests/data/gate/data/make_data.py made with the stdlib sqlite3
// and pickle modules (see its README), plus hostile inputs built here.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "gate/content.h"

namespace cce::gate {
namespace {

std::string DataFile(const std::string& name) {
  const std::string path = std::string(CCE_SOURCE_DIR) + "/tests/data/gate/data/" + name;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing test input " << path << " (run make_data.py there)";
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Result {
  Status status;
  Parsed parsed;
  uint64_t budget_left = 0;
};

Result RunParser(ParseFn fn, std::string_view bytes, uint64_t budget = uint64_t{1} << 30,
                 const Policy& policy = Policy()) {
  Result r;
  r.budget_left = budget;
  ParseContext ctx{policy, r.budget_left};
  Item item{"out/file", bytes, 0};
  r.status = fn(item, ctx, &r.parsed);
  return r;
}

bool HasText(const Parsed& p, std::string_view needle) {
  for (const TextSpan& t : p.texts)
    if (t.text.find(needle) != std::string::npos) return true;
  return false;
}
const TextSpan* TextWith(const Parsed& p, std::string_view needle) {
  for (const TextSpan& t : p.texts)
    if (t.text.find(needle) != std::string::npos) return &t;
  return nullptr;
}
const Finding* FindingOf(const Parsed& p, std::string_view detector) {
  for (const Finding& f : p.findings)
    if (f.detector == detector) return &f;
  return nullptr;
}
const Child* ChildNamed(const Parsed& p, std::string_view name) {
  for (const Child& c : p.children)
    if (c.name == name) return &c;
  return nullptr;
}
std::string Findings(const Parsed& p) {
  std::string s;
  for (const Finding& f : p.findings) s += f.detector + " [" + f.location + "] " + f.message + "\n";
  return s;
}

// ---------------------------------------------------------------------------
// NPY

std::string Npy(const std::string& dict, const std::string& data, int version = 1,
                const std::string& padding = "") {
  std::string header = dict;
  const size_t len_size = version == 1 ? 2 : 4;
  if (padding.empty()) {
    while ((8 + len_size + header.size() + 1) % 64 != 0) header += ' ';
  } else {
    header += padding;
  }
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(version) + '\0';
  for (size_t i = 0; i < len_size; ++i) out += static_cast<char>(header.size() >> (8 * i) & 0xFF);
  return out + header + data;
}

std::string F8(std::initializer_list<double> values) {
  std::string s;
  for (double v : values) s.append(reinterpret_cast<const char*>(&v), 8);
  return s;
}

TEST(ParseNpy, ReadsNumericArraysInRowMajorOrder) {
  Result r = RunParser(ParseNpy, DataFile("f8_2d.npy"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.parsed.arrays.size(), 1u);
  const NumericArray& a = r.parsed.arrays[0];
  EXPECT_EQ(a.shape, (std::vector<uint64_t>{3, 4}));
  ASSERT_EQ(a.values.size(), 12u);
  EXPECT_DOUBLE_EQ(a.values[0], 0.5);
  EXPECT_DOUBLE_EQ(a.values[11], 11.5);
  EXPECT_EQ(a.file, "out/file");
  EXPECT_EQ(a.location, "array data at byte 128");
  EXPECT_TRUE(r.parsed.findings.empty()) << Findings(r.parsed);
  EXPECT_TRUE(r.parsed.children.empty());
}

TEST(ParseNpy, TransposesFortranOrder) {
  Result r = RunParser(ParseNpy, DataFile("i4_fortran.npy"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.parsed.arrays.size(), 1u);
  EXPECT_EQ(r.parsed.arrays[0].shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(r.parsed.arrays[0].values, (std::vector<double>{1, 2, 3, 4, 5, 6}));

  // A 3-D Fortran array: element (i, j, k) is stored at i + 2j + 6k.
  std::string data;
  for (int k = 0; k < 2; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) data += static_cast<char>(100 * i + 10 * j + k);
  r = RunParser(ParseNpy,
                Npy("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3, 2), }", data));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const std::vector<double>& v = r.parsed.arrays[0].values;
  ASSERT_EQ(v.size(), 12u);
  EXPECT_EQ(v[1], 1);    // (0, 0, 1)
  EXPECT_EQ(v[2], 10);   // (0, 1, 0)
  EXPECT_EQ(v[6], 100);  // (1, 0, 0)
  EXPECT_EQ(v[11], 121);
}

TEST(ParseNpy, ReadsEveryNumericDtype) {
  struct Case {
    const char* file;
    std::vector<double> values;
  } cases[] = {
      {"f4_big.npy", {1.5, -2.0, 1e10}},
      {"f2.npy", {1.0, -0.5, 65504.0}},
      {"b1.npy", {1, 0, 0, 1}},
      {"u1_v2.npy", {1, 2, 3, 255}},
  };
  for (const Case& c : cases) {
    Result r = RunParser(ParseNpy, DataFile(c.file));
    ASSERT_TRUE(r.status.ok()) << c.file << ": " << r.status.message();
    ASSERT_EQ(r.parsed.arrays.size(), 1u) << c.file;
    EXPECT_EQ(r.parsed.arrays[0].values, c.values) << c.file;
  }
  const std::string i8 =
      std::string("\xfe\xff\xff\xff\xff\xff\xff\xff", 8) +  // -2
      std::string("\x00\x00\x00\x00\x00\x00\x00\x07", 8);   // 7 (big-endian below)
  Result r = RunParser(
      ParseNpy, Npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", i8.substr(0, 8)));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.parsed.arrays[0].values, std::vector<double>{-2});
  r = RunParser(ParseNpy,
                Npy("{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", i8.substr(8)));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.parsed.arrays[0].values, std::vector<double>{7});
  r = RunParser(ParseNpy,
                Npy("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", F8({1.5, -2.5})));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.parsed.arrays[0].shape, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(r.parsed.arrays[0].values, (std::vector<double>{1.5, -2.5}));
}

TEST(ParseNpy, UnicodeArraysBecomeTextRows) {
  Result r = RunParser(ParseNpy, DataFile("strings.npy"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.parsed.texts.size(), 1u);
  EXPECT_EQ(r.parsed.texts[0].text, "P-1000,person0.s0@examp\nP-1001,Person1 Surname7\n");
  EXPECT_EQ(r.parsed.texts[0].offset, 128u);
  EXPECT_TRUE(r.parsed.arrays.empty());
}

TEST(ParseNpy, SimpleStructuredArraysAreRecords) {
  Result r = RunParser(ParseNpy, DataFile("structured.npy"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.parsed.arrays.size(), 1u);
  EXPECT_EQ(r.parsed.arrays[0].shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(r.parsed.arrays[0].values, (std::vector<double>{34, 52000.5, 41, 61000.25}));
  // Nested or string fields cannot be checked: held.
  r = RunParser(ParseNpy,
                Npy("{'descr': [('name', '<U4'), ('age', '<i8')], 'fortran_order': False, "
                    "'shape': (1,), }",
                    std::string(24, 'a')));
  EXPECT_FALSE(r.status.ok());
  r = RunParser(ParseNpy, Npy("{'descr': [('a', '<f8', (2,))], 'fortran_order': False, "
                              "'shape': (1,), }",
                              F8({1, 2})));
  EXPECT_FALSE(r.status.ok());
}

TEST(ParseNpy, ObjectArraysHandTheirPickleOn) {
  Result r = RunParser(ParseNpy, DataFile("object.npy"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Finding* f = FindingOf(r.parsed, "type");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->hard);
  EXPECT_DOUBLE_EQ(f->score, 0.2);
  const Child* c = ChildNamed(r.parsed, "object-array");
  ASSERT_NE(c, nullptr);
  Result inner = RunParser(ParsePickle, c->bytes);
  ASSERT_TRUE(inner.status.ok()) << inner.status.message();
  EXPECT_TRUE(HasText(inner.parsed, "P-1002"));
}

TEST(ParseNpy, HeaderPaddingThatIsNotSpaceIsCovert) {
  Result r = RunParser(ParseNpy, DataFile("covert_padding.npy"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Finding* f = FindingOf(r.parsed, "covert.npy");
  ASSERT_NE(f, nullptr) << Findings(r.parsed);
  EXPECT_TRUE(f->hard);
  EXPECT_EQ(f->file, "out/file");
  const Child* c = ChildNamed(r.parsed, "npy-header-padding");
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c->bytes.find("secret: P-1000"), std::string::npos);
  // The array itself is still read.
  ASSERT_EQ(r.parsed.arrays.size(), 1u);
  // Spaces only (however many) are not.
  r = RunParser(ParseNpy, Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", F8({1}),
                              1, std::string(300, ' ')));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(FindingOf(r.parsed, "covert.npy"), nullptr);
}

TEST(ParseNpy, BytesAfterTheDataAreCovert) {
  Result r = RunParser(ParseNpy, DataFile("trailing.npy"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Finding* f = FindingOf(r.parsed, "covert.npy");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  EXPECT_EQ(f->offset, 144);
  const Child* c = ChildNamed(r.parsed, "npy-trailing");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->bytes, "P-1000,Person0 Surname0,person0.s0@example.org");
}

TEST(ParseNpy, ChildrenSpendTheExpansionBudget) {
  const std::string bytes = DataFile("trailing.npy");
  Result r = RunParser(ParseNpy, bytes, 10);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(ChildNamed(r.parsed, "npy-trailing"), nullptr);
  const Finding* bomb = FindingOf(r.parsed, "encoding.bomb");
  ASSERT_NE(bomb, nullptr);
  EXPECT_TRUE(bomb->hard);
  EXPECT_EQ(r.budget_left, 10u);
  r = RunParser(ParseNpy, bytes, 1000);
  EXPECT_EQ(r.budget_left, 1000u - 46u);
}

TEST(ParseNpy, MalformedFilesAreErrorsNamingTheByte) {
  struct Case {
    std::string bytes;
    std::string message;
  } cases[] = {
      {DataFile("short_data.npy"), "NPY: byte 128: shape (3, 4) needs 96 bytes"},
      {DataFile("huge_shape.npy"), "overflows"},
      {Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }", F8({1})),
       "needs 8796093022208 bytes"},
      {"\x93NUMPZ\x01\x00\x10\x00", "NPY: byte 0: expected the magic"},
      {std::string("\x93NUMPY\x04\x00\x10\x00", 10), "NPY: byte 6: unsupported format version 4.0"},
      {std::string("\x93NUMPY\x01\x00\xff\x00{}", 12), "runs past the end of the file"},
      {std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12), "over the limit"},
      {Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 'hidden'}", F8({1})),
       "has key 'x'"},
      {Npy("{'descr': '<f8', 'shape': (1,), }", F8({1})), "lacks one of"},
      {Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", F8({1})), "non-negative"},
      {Npy("{'descr': '<x8', 'fortran_order': False, 'shape': (1,), }", F8({1})),
       "unsupported dtype '<x8'"},
      {Npy("['descr']", ""), "not a dict"},
      {Npy("{'descr': '<f8', 'fortran_order': False, 'shape': " + std::string(100, '(') + "1" +
               std::string(100, ')') + "}",
           F8({1})),
       "nesting deeper"},
      {Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), ", F8({1})), "the header ends"},
  };
  for (const Case& c : cases) {
    Result r = RunParser(ParseNpy, c.bytes);
    ASSERT_FALSE(r.status.ok()) << c.message;
    EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status.message().find(c.message), std::string::npos)
        << r.status.message() << " (expected: " << c.message << ")";
  }
}

TEST(ParseNpy, EveryTruncationIsAnErrorNotACrash) {
  for (const char* name : {"f8_2d.npy", "strings.npy", "structured.npy", "object.npy"}) {
    const std::string bytes = DataFile(name);
    for (size_t n = 0; n < bytes.size(); ++n) {
      Result r = RunParser(ParseNpy, std::string_view(bytes).substr(0, n));
      if (std::string(name) != "object.npy") {
        EXPECT_FALSE(r.status.ok()) << name << " at " << n;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Pickle

TEST(ParsePickle, RecordsOfEveryProtocolBecomeTextRows) {
  for (int proto = 0; proto <= 5; ++proto) {
    SCOPED_TRACE("protocol " + std::to_string(proto));
    Result r = RunParser(ParsePickle, DataFile("records_p" + std::to_string(proto) + ".pkl"));
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    EXPECT_TRUE(r.parsed.findings.empty()) << Findings(r.parsed);
    const TextSpan* id = TextWith(r.parsed, "P-1019");
    ASSERT_NE(id, nullptr);
    EXPECT_NE(id->location.find("pickle "), std::string::npos);
    EXPECT_TRUE(HasText(r.parsed, "person7.s10@example.org"));
    // The record as one line, so a copied row is seen as a row.
    EXPECT_TRUE(HasText(r.parsed, "P-1001,Person1 Surname7,person1.s7@example.org,21,30137.5"));
    // A string's span points at its opcode.
    bool located = false;
    for (const TextSpan& t : r.parsed.texts)
      located = located || (t.text == "P-1000" &&
                            t.location == "pickle opcode at byte " + std::to_string(t.offset));
    EXPECT_TRUE(located);
  }
}

TEST(ParsePickle, NumberListsBecomeArrays) {
  for (int proto = 0; proto <= 5; ++proto) {
    SCOPED_TRACE("protocol " + std::to_string(proto));
    Result r = RunParser(ParsePickle, DataFile("numbers_p" + std::to_string(proto) + ".pkl"));
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    ASSERT_EQ(r.parsed.arrays.size(), 2u);
    EXPECT_EQ(r.parsed.arrays[0].shape, (std::vector<uint64_t>{2, 3}));
    EXPECT_EQ(r.parsed.arrays[0].values, (std::vector<double>{0.5, 1.25, -3, 2, 4.5, 6.75}));
    EXPECT_EQ(r.parsed.arrays[1].shape, (std::vector<uint64_t>{3}));
    EXPECT_EQ(r.parsed.arrays[1].values, (std::vector<double>{0.1, 0.2, 0.3}));
    EXPECT_TRUE(HasText(r.parsed, "intercept"));
  }
}

TEST(ParsePickle, NumpyArraysAreRecognisedInEveryProtocol) {
  for (int proto = 0; proto <= 5; ++proto) {
    SCOPED_TRACE("protocol " + std::to_string(proto));
    Result r = RunParser(ParsePickle, DataFile("ndarray_p" + std::to_string(proto) + ".pkl"));
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    EXPECT_TRUE(r.parsed.findings.empty()) << Findings(r.parsed);
    ASSERT_EQ(r.parsed.arrays.size(), 2u);
    EXPECT_EQ(r.parsed.arrays[0].shape, (std::vector<uint64_t>{2, 3}));
    EXPECT_EQ(r.parsed.arrays[0].values, (std::vector<double>{1.5, 2.5, 3.5, 4.5, 5.5, 6.5}));
    EXPECT_EQ(r.parsed.arrays[0].location.rfind("pickle ndarray at byte ", 0), 0u);
    // Fortran order, transposed.
    EXPECT_EQ(r.parsed.arrays[1].values, (std::vector<double>{1, 2, 3, 4, 5, 6}));
    // A '<U8' array is text; numpy's raw bytes are not handed on again.
    EXPECT_TRUE(HasText(r.parsed, "P-1000\nP-1001\n"));
    EXPECT_TRUE(r.parsed.children.empty());
  }
}

TEST(ParsePickle, AScikitLearnModelIsAllowedAndItsArraysRead) {
  for (int proto = 0; proto <= 5; ++proto) {
    SCOPED_TRACE("protocol " + std::to_string(proto));
    Result r = RunParser(ParsePickle, DataFile("model_p" + std::to_string(proto) + ".pkl"));
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    EXPECT_TRUE(r.parsed.findings.empty()) << Findings(r.parsed);
    ASSERT_EQ(r.parsed.arrays.size(), 1u);
    EXPECT_EQ(r.parsed.arrays[0].values, (std::vector<double>{1.5, 2.5, 3.5, 4.5, 5.5, 6.5}));
    EXPECT_TRUE(HasText(r.parsed, "age\nzip\nsalary\n"));  // an object array's strings
  }
}

TEST(ParsePickle, ImportsOutsideTheAllowlistHold) {
  Result r = RunParser(ParsePickle, DataFile("evil_os_system.pkl"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Finding* f = FindingOf(r.parsed, "type");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  EXPECT_NE(f->message.find("pickle imports posix.system"), std::string::npos) << f->message;
  EXPECT_EQ(f->location, "pickle opcode at byte " + std::to_string(f->offset));

  r = RunParser(ParsePickle, DataFile("evil_eval_p4.pkl"));  // STACK_GLOBAL
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  f = FindingOf(r.parsed, "type");
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->message.find("builtins.eval"), std::string::npos) << f->message;

  struct Case {
    std::string module, name;
    bool allowed;
  } cases[] = {
      {"numpy.core.multiarray", "_reconstruct", true},
      {"numpy", "dtype", true},
      {"collections", "OrderedDict", true},
      {"copyreg", "_reconstructor", true},
      {"torch._utils", "_rebuild_tensor_v2", true},
      {"torch", "FloatStorage", true},
      {"sklearn.ensemble._forest", "RandomForestClassifier", true},
      {"sklearn.tree._tree", "Tree", true},
      {"pandas._libs.internals", "_unpickle_block", true},
      {"pandas.core.indexes.base", "_new_Index", true},
      {"builtins", "getattr", false},
      {"builtins", "eval", false},
      {"os", "system", false},
      {"subprocess", "Popen", false},
      {"numpy", "load", false},
      {"numpy", "memmap", false},
      {"numpy.testing._private.utils", "runstring", false},
      {"numpy.core._ufunc_reconstruct", "_ufunc_reconstruct", false},
      {"pandas.io.pytables", "HDFStore", false},
      {"sklearn.datasets", "fetch_openml", false},
      {"sklearn.utils", "Bunch.__init__", false},
      {"sklearn.utils", "resample", false},
      {"numpy", "dtype\nos", false},
  };
  for (const Case& c : cases) {
    const std::string pkl = "c" + c.module + "\n" + c.name + "\n)R.";
    r = RunParser(ParsePickle, pkl);
    if (c.name.find('\n') != std::string::npos) {
      // A name with a newline cannot be written with GLOBAL; use STACK_GLOBAL.
      const std::string s = "\x80\x04\x8c" + std::string(1, static_cast<char>(c.module.size())) +
                            c.module + "\x8c" + std::string(1, static_cast<char>(c.name.size())) +
                            c.name + "\x93)R.";
      r = RunParser(ParsePickle, s);
    }
    ASSERT_TRUE(r.status.ok()) << c.module << "." << c.name << ": " << r.status.message();
    EXPECT_EQ(FindingOf(r.parsed, "type") == nullptr, c.allowed) << c.module << "." << c.name;
  }
  // INST imports too; EXT codes name an unknown import.
  r = RunParser(ParsePickle, std::string("(ios\nsystem\n."));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_NE(FindingOf(r.parsed, "type"), nullptr);
  r = RunParser(ParsePickle, std::string("\x80\x02\x82\x07)R.", 7));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_NE(FindingOf(r.parsed, "type"), nullptr);
  EXPECT_TRUE(FindingOf(r.parsed, "type")->hard);
}

TEST(ParsePickle, TextOpcodesAreDecoded) {
  // Protocol 0: STRING with escapes, UNICODE raw-unicode-escape, INT/LONG/FLOAT lines.
  Result r = RunParser(ParsePickle,
                       std::string("(lp0\nS'a\\x41\\n\\'q'\np1\naV\\u00e9t\\u00e9 caf\xe9\np2\n"
                                   "aI01\naL123456789012345678901234567890L\naF1.5\na."));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(HasText(r.parsed, "aA\n'q"));
  EXPECT_TRUE(HasText(r.parsed, "\xc3\xa9t\xc3\xa9 caf\xc3\xa9"));
  EXPECT_TRUE(HasText(r.parsed, "True,1.2345678901234568e+29,1.5"));
  // Binary bytes: a long one is a child of its own, text bytes are text.
  const std::string blob(5000, '\x01');
  const std::string p = "\x80\x03(B" + std::string("\x88\x13\x00\x00", 4) + blob + "C\x05hello" +
                        std::string("C\x03\x00\x01\x02l.", 7);
  r = RunParser(ParsePickle, p);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(HasText(r.parsed, "hello"));
  ASSERT_EQ(r.parsed.children.size(), 2u);
  EXPECT_EQ(r.parsed.children[0].name, "bytes@3");
  EXPECT_EQ(r.parsed.children[0].bytes, blob);
  EXPECT_EQ(r.parsed.children[1].name, "pickle-short-bytes");
  EXPECT_EQ(r.parsed.children[1].bytes, std::string("\x00\x01\x02", 3));
}

TEST(ParsePickle, SeveralPicklesAndTrailingBytes) {
  Result r = RunParser(ParsePickle, DataFile("two_pickles.pkl"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(HasText(r.parsed, "first"));
  EXPECT_TRUE(HasText(r.parsed, "second"));
  EXPECT_TRUE(r.parsed.findings.empty());

  r = RunParser(ParsePickle, DataFile("trailing.pkl"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Finding* f = FindingOf(r.parsed, "covert.pickle");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  const Child* c = ChildNamed(r.parsed, "pickle-trailing");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->bytes, "hidden after STOP: P-1003,P-1004");
}

TEST(ParsePickle, RecursiveStructuresAreFine) {
  Result r = RunParser(ParsePickle, DataFile("recursive.pkl"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(HasText(r.parsed, "Person3 Surname8"));
  // A list holding itself 100000 times through the memo.
  std::string p = "\x80\x04]\x94(";
  for (int i = 0; i < 100000; ++i) p += std::string("h\0", 2);
  p += "e.";
  r = RunParser(ParsePickle, p);
  EXPECT_TRUE(r.status.ok()) << r.status.message();
}

TEST(ParsePickle, ReferencesToOneLongStringAreABombNotACopyPerReference) {
  // A numpy object array of 200000 memo references to one 1 MiB string:
  // 200 GiB as text from a 1.4 MiB file.
  auto str = [](const std::string& s) {
    return std::string("\x8c") + static_cast<char>(s.size()) + s;
  };
  std::string p = "\x80\x04";
  p += str("numpy.core.multiarray") + str("_reconstruct") + "\x93";
  p += str("numpy") + str("ndarray") + "\x93" + std::string("K\0\x85", 3) +
       "C\x01"
       "b\x87R";
  p += "(K\x01J" + std::string("\x40\x0d\x03\x00", 4) + "\x85";  // (1, (200000,), ...
  p += str("numpy") + str("dtype") + "\x93" + str("O8") + "\x89\x88\x87R";
  p += "(K\x03" + str("|") + "NNNJ" + std::string(4, '\xff') + "J" + std::string(4, '\xff') +
       "K\x3ftb";  // dtype state, BUILD
  p += "\x89](X" + std::string("\x00\x00\x10\x00", 4) + std::string(1 << 20, 'x') + "\x94";
  for (int i = 0; i < 199999; ++i) p += std::string("h\0", 2);
  p += "etb.";  // APPENDS, the state tuple, BUILD
  Result r = RunParser(ParsePickle, p, uint64_t{64} << 20);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Finding* f = FindingOf(r.parsed, "encoding.bomb");
  ASSERT_NE(f, nullptr) << Findings(r.parsed);
  EXPECT_TRUE(f->hard);
  uint64_t text = 0;
  for (const TextSpan& t : r.parsed.texts) text += t.text.size();
  EXPECT_LE(text, uint64_t{64} << 20);
  EXPECT_TRUE(HasText(r.parsed, "xxxx"));  // the string itself, once
}

TEST(ParsePickle, HostileInputsAreBoundedErrors) {
  struct Case {
    std::string bytes;
    std::string message;
  } cases[] = {
      {std::string(70000, '('), "nested MARKs"},
      {std::string(1100000, ']'), "stack deeper than"},
      {"\x80\x04h\x07.", "pickle: byte 2: memo key 7 was never stored"},
      {"\x80\x04\xff.", "pickle: byte 2: unknown opcode 0xff"},
      {"\x80\x09N.", "unsupported protocol 9"},
      {std::string("\x80\x04X\xff\xff\xff\x00"
                   "abc.",
                   11),
       "pickle: byte 2: opcode 0x58 needs 16777215 more bytes"},
      {std::string("\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff", 11),
       "needs 18446744073709551615"},
      {"\x80\x04N", "ends without a STOP"},
      {"\x80\x04.", "stack underflow"},
      {"\x80\x04NNa.", "adds items to a None"},
      {"\x80\x04(NNNd.", "odd number"},
      {std::string("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", 13), "FRAME runs past"},
      {"I12x\n.", "is not a number"},
  };
  for (const Case& c : cases) {
    Result r = RunParser(ParsePickle, c.bytes);
    ASSERT_FALSE(r.status.ok()) << c.message;
    EXPECT_NE(r.status.message().find(c.message), std::string::npos)
        << r.status.message() << " (expected: " << c.message << ")";
  }
  // Every prefix of real pickles: an error or a result, never a crash.
  for (const char* name : {"model_p0.pkl", "model_p2.pkl", "ndarray_p5.pkl", "records_p4.pkl"}) {
    const std::string bytes = DataFile(name);
    for (size_t n = 0; n + 1 < bytes.size(); ++n) {
      Result r = RunParser(ParsePickle, std::string_view(bytes).substr(0, n));
      EXPECT_FALSE(r.status.ok()) << name << " cut at " << n;
    }
  }
}

TEST(ParsePickle, ArrayValuesAreCappedWithAFinding) {
  // 17 lists of 1000 references to one row of 1000 floats each: 1M values
  // per ~11 KB, 17M together, over the 16M-value cap.
  std::string p = "\x80\x04(";
  for (int k = 0; k < 17; ++k) {
    p += "](";
    for (int i = 0; i < 1000; ++i) p += "G" + std::string(8, '\x3f');
    p += "e\x94](";  // the row is memo k
    for (int i = 0; i < 1000; ++i) p += "h" + std::string(1, static_cast<char>(k));
    p += "e";
  }
  p += "l.";
  Result r = RunParser(ParsePickle, p);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Finding* f = FindingOf(r.parsed, "limits");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  uint64_t total = 0;
  for (const NumericArray& a : r.parsed.arrays) total += a.values.size();
  EXPECT_EQ(total, uint64_t{16} << 20);
}

// ---------------------------------------------------------------------------
// SQLite

// A database made by SQLite itself, in memory, as file bytes.
std::string MakeDb(const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(db, "main", &size, 0);
  std::string out(reinterpret_cast<const char*>(bytes), static_cast<size_t>(size));
  sqlite3_free(bytes);
  sqlite3_close(db);
  return out;
}

const Table* TableNamed(const Parsed& p, std::string_view name) {
  for (const Table& t : p.tables)
    if (t.name == name) return &t;
  return nullptr;
}

TEST(ParseSqlite, TablesAndSchemaAreRead) {
  Result r = RunParser(ParseSqlite, DataFile("people.sqlite"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Table* people = TableNamed(r.parsed, "people");
  ASSERT_NE(people, nullptr);
  EXPECT_EQ(people->file, "out/file");
  EXPECT_EQ(people->header, (std::vector<std::string>{"id", "name", "email", "age", "salary"}));
  ASSERT_EQ(people->rows.size(), 200u);
  EXPECT_EQ(people->rows[1], (std::vector<std::string>{"P-1001", "Person1 Surname7",
                                                       "person1.s7@example.org", "21", "30137.5"}));
  EXPECT_EQ(people->row_lines.size(), 200u);
  const Table* counts = TableNamed(r.parsed, "counts");
  ASSERT_NE(counts, nullptr);
  EXPECT_EQ(counts->rows[1][2], "text blob");  // a BLOB that is text stays in the cell
  const Child* blobs = ChildNamed(r.parsed, "sqlite-short-blobs");
  ASSERT_NE(blobs, nullptr);
  EXPECT_EQ(blobs->bytes, std::string("\x00\x01\x02"
                                      "binary",
                                      9));
  // Views and triggers are text (never executed).
  const TextSpan* view = TextWith(r.parsed, "CREATE VIEW adults");
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->location, "sqlite_schema: view 'adults'");
  EXPECT_TRUE(HasText(r.parsed, "band = 'P-9999'"));
  // A database written in one go has no unused bytes to report.
  EXPECT_TRUE(r.parsed.findings.empty()) << Findings(r.parsed);
}

TEST(ParseSqlite, DeletedRowsInFreeSpaceAreHandedOn) {
  const std::string bytes = DataFile("people_deleted.sqlite");
  Result r = RunParser(ParseSqlite, bytes);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Table* people = TableNamed(r.parsed, "people");
  ASSERT_NE(people, nullptr);
  EXPECT_EQ(people->rows.size(), 134u);
  for (const std::vector<std::string>& row : people->rows) ASSERT_NE(row[0], "P-1197");
  const Child* free_space = ChildNamed(r.parsed, "sqlite-free-space");
  ASSERT_NE(free_space, nullptr);
  EXPECT_NE(free_space->bytes.find("person197.s1@example.org"), std::string::npos);
  // The deleted row, carved whole: the copy detector sees a row.
  EXPECT_TRUE(HasText(r.parsed, "P-1197,Person197 Surname1,person197.s1@example.org,67,57087.5\n"));
  const Finding* f = FindingOf(r.parsed, "covert.sqlite");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard) << f->message;  // more than an eighth of the file is dead data
  // The same rule releases a database that a few dead bytes stand in.
  Policy lenient;
  lenient.max_trailing_bytes = 1 << 20;
  r = RunParser(ParseSqlite, bytes, uint64_t{1} << 30, lenient);
  ASSERT_TRUE(r.status.ok());
  ASSERT_NE(FindingOf(r.parsed, "covert.sqlite"), nullptr);
  EXPECT_FALSE(FindingOf(r.parsed, "covert.sqlite")->hard);
}

TEST(ParseSqlite, AnInsertOnlyDatabaseIsNotHeldForItsFreeSpace) {
  Result r = RunParser(ParseSqlite, DataFile("insert_only.sqlite"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_NE(TableNamed(r.parsed, "summary"), nullptr);
  EXPECT_EQ(TableNamed(r.parsed, "summary")->rows.size(), 5000u);
  for (const Finding& f : r.parsed.findings) {
    EXPECT_FALSE(f.hard) << f.message;
    EXPECT_LE(f.score, 0.2);
  }
}

TEST(ParseSqlite, WalModeFilesAreRead) {
  Result r = RunParser(ParseSqlite, DataFile("wal.sqlite"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_NE(TableNamed(r.parsed, "t"), nullptr);
  EXPECT_EQ(TableNamed(r.parsed, "t")->rows.size(), 50u);
}

TEST(ParseSqlite, FreelistPagesAndTrailingPagesAreFreeSpace) {
  // secure_delete off: a dropped table's pages go to the freelist intact.
  std::string big =
      "PRAGMA secure_delete=OFF; CREATE TABLE keep(a); INSERT INTO keep VALUES (1);"
      "CREATE TABLE gone(a TEXT); BEGIN;";
  for (int i = 0; i < 300; ++i)
    big += "INSERT INTO gone VALUES ('secret-row-" + std::to_string(i) + "-xxxxxxxxxxxx');";
  big += "COMMIT; DROP TABLE gone;";
  const std::string bytes = MakeDb(big);
  Result r = RunParser(ParseSqlite, bytes);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Child* c = ChildNamed(r.parsed, "sqlite-free-space");
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c->bytes.find("secret-row-299"), std::string::npos);
  EXPECT_TRUE(HasText(r.parsed, "secret-row-150-xxxxxxxxxxxx"));

  // A page appended after the database's end (header page count valid).
  const std::string clean = MakeDb("CREATE TABLE t(a); INSERT INTO t VALUES (1);");
  const uint32_t page = static_cast<uint32_t>(static_cast<unsigned char>(clean[16]) << 8 |
                                              static_cast<unsigned char>(clean[17]));
  r = RunParser(ParseSqlite, clean);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(FindingOf(r.parsed, "covert.sqlite"), nullptr) << Findings(r.parsed);
  std::string extra(page, 'Z');
  r = RunParser(ParseSqlite, clean + extra);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Finding* f = FindingOf(r.parsed, "covert.sqlite");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  EXPECT_EQ(f->offset, static_cast<int64_t>(clean.size()));
  ASSERT_NE(ChildNamed(r.parsed, "sqlite-free-space"), nullptr);
  EXPECT_EQ(ChildNamed(r.parsed, "sqlite-free-space")->bytes, extra);
  // Non-zero reserved header bytes (72..91) are unused space too.
  std::string header = clean;
  header[80] = 'X';
  r = RunParser(ParseSqlite, header);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_NE(ChildNamed(r.parsed, "sqlite-free-space"), nullptr);
  EXPECT_EQ(ChildNamed(r.parsed, "sqlite-free-space")->bytes.find('X'), 8u);
}

TEST(ParseSqlite, VirtualTablesAreNotRunButTheirShadowTablesAreRead) {
  const std::string bytes = MakeDb(
      "CREATE VIRTUAL TABLE docs USING fts5(body);"
      "INSERT INTO docs VALUES ('note about P-1042 Person42 Surname3');");
  Result r = RunParser(ParseSqlite, bytes);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(TableNamed(r.parsed, "docs"), nullptr);
  const Table* content = TableNamed(r.parsed, "docs_content");
  ASSERT_NE(content, nullptr);
  ASSERT_EQ(content->rows.size(), 1u);
  EXPECT_EQ(content->rows[0].back(), "note about P-1042 Person42 Surname3");
}

TEST(ParseSqlite, ViewsAreNeverRunAndGeneratedColumnsOnlyInnocuously) {
  // The view would divide by zero / recurse if it ran; it is text only.
  const std::string bytes = MakeDb(
      "CREATE TABLE g(a INTEGER, b INTEGER GENERATED ALWAYS AS (abs(a)) VIRTUAL);"
      "INSERT INTO g(a) VALUES (-3);"
      "CREATE VIEW v AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
      "SELECT x FROM c;");
  Result r = RunParser(ParseSqlite, bytes);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_NE(TableNamed(r.parsed, "g"), nullptr);
  EXPECT_EQ(TableNamed(r.parsed, "g")->rows[0], (std::vector<std::string>{"-3", "3"}));
  EXPECT_EQ(TableNamed(r.parsed, "v"), nullptr);
  EXPECT_TRUE(HasText(r.parsed, "WITH RECURSIVE c(x)"));
}

TEST(ParseSqlite, RowsAreCappedWithAFinding) {
  const std::string bytes = MakeDb(
      "CREATE TABLE big(a INTEGER);"
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1048600)"
      "INSERT INTO big SELECT x FROM c;");
  Result r = RunParser(ParseSqlite, bytes);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  const Finding* f = FindingOf(r.parsed, "limits");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  EXPECT_EQ(TableNamed(r.parsed, "big")->rows.size(), size_t{1} << 20);
}

TEST(ParseSqlite, BadHeadersAreErrorsNamingTheByte) {
  const std::string good = DataFile("people.sqlite");
  auto with = [&](size_t at, std::string_view bytes) {
    std::string s = good;
    s.replace(at, bytes.size(), bytes);
    return s;
  };
  struct Case {
    std::string bytes;
    std::string message;
  } cases[] = {
      {"SQLite format 2", "SQLite: byte 0: expected the magic"},
      {with(16, std::string("\x03\xe8", 2)), "SQLite: byte 16: page size 1000"},
      {with(16, std::string("\x00\x80", 2)), "SQLite: byte 16: page size 128"},
      {good.substr(0, good.size() - 100), "is not a multiple of the page size"},
      {with(28, std::string("\x00\x00\x10\x00", 4)), "SQLite: byte 28: the header says 4096 pages"},
      {with(21, "A"), "SQLite: byte 21: payload fractions"},
      {with(18, std::string("\x03", 1)), "SQLite: byte 18"},
      {with(56, std::string("\x00\x00\x00\x09", 4)), "SQLite: byte 56: text encoding 9"},
  };
  for (const Case& c : cases) {
    Result r = RunParser(ParseSqlite, c.bytes);
    ASSERT_FALSE(r.status.ok()) << c.message;
    EXPECT_NE(r.status.message().find(c.message), std::string::npos)
        << r.status.message() << " (expected: " << c.message << ")";
  }
}

TEST(ParseSqlite, CorruptPagesAreErrorsNotCrashes) {
  const std::string good = DataFile("people_deleted.sqlite");
  // A b-tree page whose type byte is wrong: quick_check or the walk refuses it.
  std::string bad = good;
  bad[4096] = 0x07;
  Result r = RunParser(ParseSqlite, bad);
  EXPECT_FALSE(r.status.ok());
  // Rowids out of order in a leaf: only quick_check notices.
  auto be = [&](size_t at, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | static_cast<unsigned char>(good[at + i]);
    return v;
  };
  ASSERT_EQ(good[4096], 5);  // page 2, the root of 'people', is a table interior page
  const size_t leaf = (be(4096 + be(4096 + 12, 2), 4) - 1) * 4096;
  ASSERT_EQ(good[leaf], 13);
  bad = good;
  std::swap(bad[leaf + 8], bad[leaf + 10]);
  std::swap(bad[leaf + 9], bad[leaf + 11]);
  r = RunParser(ParseSqlite, bad);
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("SQLite: quick_check: "), std::string::npos)
      << r.status.message();
  // Random byte changes past the header: whatever the outcome, no crash and
  // nothing but an error or a result.
  uint64_t seed = 42;
  int errors = 0;
  for (int round = 0; round < 300; ++round) {
    std::string s = good;
    for (int k = 0; k < 4; ++k) {
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      const size_t at = 100 + (seed >> 33) % (s.size() - 100);
      s[at] = static_cast<char>(seed >> 13);
    }
    Result m = RunParser(ParseSqlite, s);
    errors += !m.status.ok();
  }
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace cce::gate
