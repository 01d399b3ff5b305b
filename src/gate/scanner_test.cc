// The scanner's own rules: types by content, the type and size policy,
// bounds on nesting, items and decoded bytes, the combined score and the
// verdict. The parsers and detectors have their own tests.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "gate/content.h"
#include "gate/gate.h"

namespace cce::gate {
namespace {

std::string Random(size_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

std::string Gzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Report ScanFiles(std::vector<OutputFile> files, const Policy& policy = {}) {
  ScanInputs in;
  in.files = std::move(files);
  return Scan(in, policy);
}

bool HasFinding(const Report& r, const std::string& detector, bool hard = true) {
  for (const Finding& f : r.findings) {
    if (f.detector == detector && f.hard == hard) return true;
  }
  return false;
}

std::string Describe(const Report& r) {
  return ReportToJson(r).dump(1);
}

TEST(GateDetectType, BinaryFormatsByMagicNotByName) {
  EXPECT_EQ(DetectType("\x89PNG\r\n\x1a\nxxxx", "a.csv"), FileType::kPng);
  EXPECT_EQ(DetectType("\xFF\xD8\xFF\xE0", "a.txt"), FileType::kJpeg);
  EXPECT_EQ(DetectType("%PDF-1.7\n", "a.png"), FileType::kPdf);
  EXPECT_EQ(DetectType(Gzip("hello"), "a.csv"), FileType::kGzip);
  EXPECT_EQ(DetectType("BZh91AY&SY", "x"), FileType::kBzip2);
  EXPECT_EQ(DetectType(std::string("\xFD"
                                   "7zXZ\0\0",
                                   7),
                       "x"),
            FileType::kXz);
  EXPECT_EQ(DetectType(std::string("SQLite format 3\0", 16) + "xx", "x"), FileType::kSqlite);
  EXPECT_EQ(DetectType("\x93NUMPY\x01\x00", "x"), FileType::kNpy);
  EXPECT_EQ(DetectType("\x80\x04\x95", "x"), FileType::kPickle);
  std::string tar(1024, '\0');
  tar.replace(257, 5, "ustar");
  EXPECT_EQ(DetectType(tar, "x"), FileType::kTar);
  EXPECT_EQ(DetectType(Random(4096), "report.csv"), FileType::kUnknown);
  EXPECT_EQ(DetectType("", "x"), FileType::kEmpty);
}

TEST(GateDetectType, TextFormatsByContent) {
  EXPECT_EQ(DetectType("a,b,c\n1,2,3\n4,5,6\n", "out.txt"), FileType::kCsv);
  EXPECT_EQ(DetectType("a\tb\n1\t2\n", "x"), FileType::kTsv);
  EXPECT_EQ(DetectType("a;b\n1;2\n3;4\n", "x"), FileType::kCsv);
  EXPECT_EQ(DetectType("{\"a\": [1, 2]}", "x"), FileType::kJson);
  EXPECT_EQ(DetectType("{\"a\": 1}\n{\"a\": 2}\n", "x"), FileType::kJsonLines);
  EXPECT_EQ(DetectType("[INFO] started\n[INFO] done\n", "x"), FileType::kText);
  EXPECT_EQ(DetectType("model: x\nrate: 0.1\nseed: 4\n", "x"), FileType::kYaml);
  EXPECT_EQ(DetectType("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", "x"), FileType::kMarkdown);
  EXPECT_EQ(DetectType("<!doctype html><html><body>hi</body></html>", "x"), FileType::kHtml);
  EXPECT_EQ(DetectType("<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>", "x"),
            FileType::kSvg);
  EXPECT_EQ(DetectType("The quick brown fox, as usual, jumps.\nNothing else here.\n", "x"),
            FileType::kText);
  // UTF-16 (with and without a BOM) is text too.
  std::string u16 = "\xFF\xFE";
  for (char c : std::string("id,name\n1,Ann\n2,Bob\n")) u16 += std::string{c, '\0'};
  EXPECT_EQ(DetectType(u16, "x"), FileType::kCsv);
}

TEST(GateScan, CleanTextIsReleasedWithScoreZero) {
  Report r = ScanFiles({{"notes.txt", "All groups had at least ten patients.\n"}});
  EXPECT_EQ(r.verdict, Verdict::kRelease) << Describe(r);
  EXPECT_EQ(r.score, 0);
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.files, 1u);
}

TEST(GateScan, UnknownBinaryIsHeldAndHighEntropyNamedAsSuch) {
  Report r = ScanFiles({{"results.dat", Random(8192)}});
  EXPECT_EQ(r.verdict, Verdict::kHold);
  ASSERT_TRUE(HasFinding(r, "covert.entropy")) << Describe(r);
  EXPECT_EQ(r.findings[0].file, "results.dat");
  Report low = ScanFiles({{"blob.bin", std::string(2000, '\x01') + std::string(2000, '\x02')}});
  EXPECT_EQ(low.verdict, Verdict::kHold);
  EXPECT_TRUE(HasFinding(low, "type")) << Describe(low);
}

TEST(GateScan, TypesOutsideThePolicyAreHeld) {
  Policy p;
  p.allowed_types = {"text"};
  Report r = ScanFiles({{"t.csv", "a,b\n1,2\n3,4\n"}}, p);
  EXPECT_EQ(r.verdict, Verdict::kHold);
  EXPECT_TRUE(HasFinding(r, "type")) << Describe(r);
  EXPECT_NE(r.findings[0].message.find("'csv' is not allowed"), std::string::npos);
}

TEST(GateScan, SizeCapsHoldWithoutScanning) {
  Policy p;
  p.max_file_bytes = 10;
  Report r = ScanFiles({{"a.txt", "more than ten bytes of text\n"}}, p);
  EXPECT_EQ(r.verdict, Verdict::kHold);
  EXPECT_TRUE(HasFinding(r, "limits")) << Describe(r);
  Policy q;
  q.max_bundle_bytes = 10;
  r = ScanFiles({{"a.txt", "hello\n"}, {"b.txt", "world!\n"}}, q);
  EXPECT_TRUE(HasFinding(r, "limits")) << Describe(r);
  Policy n;
  n.max_files = 1;
  r = ScanFiles({{"a.txt", "a\n"}, {"b.txt", "b\n"}}, n);
  EXPECT_TRUE(HasFinding(r, "limits")) << Describe(r);
}

TEST(GateScan, NestingDeeperThanThePolicyIsHeld) {
  std::string s = "just text\n";
  for (int i = 0; i < 4; ++i) s = Gzip(s);
  Policy p;
  p.max_depth = 2;
  Report r = ScanFiles({{"x.gz", s}}, p);
  EXPECT_EQ(r.verdict, Verdict::kHold);
  EXPECT_TRUE(HasFinding(r, "encoding.depth")) << Describe(r);
  p.max_depth = 6;
  r = ScanFiles({{"x.gz", s}}, p);
  EXPECT_EQ(r.verdict, Verdict::kRelease) << Describe(r);
}

TEST(GateScan, TheItemBoundStopsTheScanAndHolds) {
  Policy p;
  p.max_items = 1;
  Report r = ScanFiles({{"a.txt", "a\n"}, {"b.txt", "b\n"}}, p);
  EXPECT_EQ(r.verdict, Verdict::kHold);
  EXPECT_TRUE(HasFinding(r, "limits")) << Describe(r);
}

TEST(GateScan, OpaqueDecodedBytesAddUpAcrossRuns) {
  // Each base64 run alone is small; together they carry 3 KiB of ciphertext.
  std::string text;
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int run = 0; run < 12; ++run) {
    std::string raw = Random(256, static_cast<uint32_t>(run + 7));
    std::string enc;
    for (size_t i = 0; i + 2 < raw.size(); i += 3) {
      const uint32_t v = (uint8_t(raw[i]) << 16) | (uint8_t(raw[i + 1]) << 8) | uint8_t(raw[i + 2]);
      for (int k = 18; k >= 0; k -= 6) enc += kB64[(v >> k) & 63];
    }
    text += "chunk " + std::to_string(run) + ": " + enc + "\n";
  }
  Report r = ScanFiles({{"log.txt", text}});
  EXPECT_EQ(r.verdict, Verdict::kHold);
  EXPECT_TRUE(HasFinding(r, "encoding.opaque")) << Describe(r);
  // One short decoded run is not enough to hold.
  Report one = ScanFiles({{"log.txt", text.substr(0, text.find('\n') + 1)}});
  EXPECT_FALSE(HasFinding(one, "encoding.opaque")) << Describe(one);
}

TEST(GateScan, LongHighEntropyTextRunsAreAnEncoding) {
  std::string run;
  std::mt19937 rng(5);
  for (int i = 0; i < 2000; ++i) run += static_cast<char>('!' + rng() % 85);  // base85-like
  Report r = ScanFiles({{"blob.txt", "header line\n" + run + "\n"}});
  EXPECT_EQ(r.verdict, Verdict::kHold);
  EXPECT_TRUE(HasFinding(r, "covert.text_entropy")) << Describe(r);
  std::string prose;
  while (prose.size() < 4000) prose += "the patients were seen twice in the period ";
  EXPECT_FALSE(HasFinding(ScanFiles({{"p.txt", prose}}), "covert.text_entropy"));
}

TEST(GateScan, CallerFindingsCountAndAHoldAlwaysSaysWhy) {
  ScanInputs in;
  in.files = {{"a.txt", "fine\n"}};
  Finding soft;
  soft.detector = "x";
  soft.score = 0.4;
  in.findings = {soft};
  Policy p;
  p.threshold = 0.5;
  Report r = Scan(in, p);
  EXPECT_EQ(r.verdict, Verdict::kRelease);
  EXPECT_DOUBLE_EQ(r.score, 0.4);
  in.findings.push_back(soft);  // 1 - 0.6 * 0.6 = 0.64 > 0.5
  r = Scan(in, p);
  EXPECT_EQ(r.verdict, Verdict::kHold);
  EXPECT_NEAR(r.score, 0.64, 1e-9);
  in.findings = {soft};
  in.findings[0].hard = true;  // a hard finding holds whatever the score
  in.findings[0].score = 0;
  r = Scan(in, p);
  EXPECT_EQ(r.verdict, Verdict::kHold);
  EXPECT_FALSE(r.findings.empty());
}

TEST(GateScan, ReportJsonHasTheDocumentedShape) {
  Report r = ScanFiles({{"results.dat", Random(4096)}});
  nlohmann::json j = ReportToJson(r);
  EXPECT_EQ(j["verdict"], "hold");
  ASSERT_TRUE(j["score"].is_number());
  ASSERT_TRUE(j["findings"].is_array());
  ASSERT_FALSE(j["findings"].empty());
  for (const char* key : {"detector", "file", "location", "score", "message", "hard"}) {
    EXPECT_TRUE(j["findings"][0].contains(key)) << key;
  }
}

TEST(GateReadOutputDir, ReadsFilesAndRefusesSymlinks) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("gate-dir-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "sub" / "a.csv") << "x,y\n1,2\n";
  std::ofstream(dir / "b.txt") << "hello\n";
  auto files = ReadOutputDir(dir.string(), Policy{});
  ASSERT_TRUE(files.ok()) << files.status().message();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "b.txt");
  EXPECT_EQ((*files)[1].path, "sub/a.csv");
  EXPECT_EQ((*files)[1].bytes, "x,y\n1,2\n");
  fs::create_symlink("/etc/passwd", dir / "link");
  auto refused = ReadOutputDir(dir.string(), Policy{});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("link: not a regular file"), std::string::npos)
      << refused.status().message();
  fs::remove_all(dir);
  EXPECT_FALSE(ReadOutputDir(dir.string(), Policy{}).ok());
}

}  // namespace
}  // namespace cce::gate
