#include "format/format.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

namespace cce::format {
namespace {

namespace fs = std::filesystem;

DatasetKey TestKey(uint8_t base = 0) {
  std::array<uint8_t, 32> k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(base + i);
  return std::move(DatasetKey::FromBytes(k).value());
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cce-format-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

std::string ReadWhole(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string RandomData(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(FileHeader, RoundTripsAndNamesTheBadByte) {
  FileHeader h;
  h.segment_exponent = 14;
  h.kind = FileKind::kManifest;
  h.key_id.fill(7);
  h.salt.fill(9);
  h.plaintext_size = 123456789;
  auto bytes = h.Serialize();
  auto parsed = FileHeader::Parse(bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->segment_exponent, 14);
  EXPECT_EQ(parsed->kind, FileKind::kManifest);
  EXPECT_EQ(parsed->plaintext_size, 123456789u);
  EXPECT_EQ(parsed->salt, h.salt);

  auto bad = bytes;
  bad[8] = 2;
  auto e = FileHeader::Parse(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "header byte 8: version 2, expected 1");
  bad = bytes;
  bad[10] = 30;
  EXPECT_NE(FileHeader::Parse(bad).status().message().find("header byte 10"), std::string::npos);
  bad = bytes;
  bad[0] ^= 1;
  EXPECT_NE(FileHeader::Parse(bad).status().message().find("header byte 0"), std::string::npos);
  EXPECT_FALSE(FileHeader::Parse(std::span(bytes).first(67)).ok());
}

TEST(DatasetKey, KeyFileRoundTripAndErrors) {
  DatasetKey k = TestKey();
  crypto::SecretBytes text = k.EncodeKeyFile();
  std::string s(reinterpret_cast<const char*>(text.data()), text.size());
  EXPECT_EQ(s,
            "cce4long-dataset-key-v1 "
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
  auto back = DatasetKey::ParseKeyFile(s, "k");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->id(), k.id());
  auto bad = DatasetKey::ParseKeyFile(s.substr(0, 30) + "g" + s.substr(31), "k.key");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "k.key: byte 30: expected a hex digit");
  EXPECT_FALSE(DatasetKey::ParseKeyFile("hello", "k").ok());
  EXPECT_FALSE(DatasetKey::ParseKeyFile(s.substr(0, s.size() - 3), "k").ok());
}

TEST(FileCipher, SegmentsDetectReorderTruncationAndWrongFile) {
  DatasetKey key = TestKey();
  auto w = FileCipher::ForWriting(key, FileKind::kData, 10000, 12);
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->geometry().SegmentCount(), 3u);
  std::vector<std::vector<uint8_t>> sealed;
  for (uint64_t i = 0; i < 3; ++i) {
    std::vector<uint8_t> plain(w->geometry().PlainSegmentSize(i), static_cast<uint8_t>(i));
    sealed.emplace_back(plain.size() + kTagSize);
    ASSERT_TRUE(w->SealSegment(i, plain, sealed.back()).ok());
  }
  auto r = FileCipher::ForReading(key, w->header_bytes(), FileKind::kData);
  ASSERT_TRUE(r.ok());
  std::vector<uint8_t> out(4096);
  ASSERT_TRUE(r->OpenSegment(0, sealed[0], out).ok());
  EXPECT_EQ(out[100], 0);
  // Segment 1 presented as segment 0: different nonce.
  EXPECT_EQ(r->OpenSegment(0, sealed[1], out).code(), StatusCode::kDataLoss);
  // A full middle segment presented as the final one (truncation): last flag.
  auto h2 = w->header();
  h2.plaintext_size = 8192;
  auto shorter = FileCipher::ForReading(key, h2.Serialize(), FileKind::kData);
  ASSERT_TRUE(shorter.ok());
  EXPECT_FALSE(shorter->OpenSegment(1, sealed[1], out).ok());
  // Another file's cipher (other salt) rejects this file's segment.
  auto other = FileCipher::ForWriting(key, FileKind::kData, 10000, 12);
  ASSERT_TRUE(other.ok());
  auto other_r = FileCipher::ForReading(key, other->header_bytes(), FileKind::kData);
  EXPECT_FALSE(other_r->OpenSegment(0, sealed[0], out).ok());
  // Kind and key are checked before any segment.
  EXPECT_FALSE(FileCipher::ForReading(key, w->header_bytes(), FileKind::kManifest).ok());
  auto wrong = FileCipher::ForReading(TestKey(1), w->header_bytes(), FileKind::kData);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("wrong key"), std::string::npos);
}

TEST(Manifest, StrictParsingNamesTheField) {
  Manifest m;
  m.dataset_id = "ds";
  m.segment_size = 65536;
  m.created_at = "2026-11-25T00:00:00Z";
  ManifestEntry d;
  d.path = "dir";
  d.type = ManifestEntry::Type::kDirectory;
  ManifestEntry f;
  f.path = "dir/a.csv";
  f.id = std::string(32, 'a');
  m.entries = {d, f};
  std::string json = m.ToJson();
  auto back = Manifest::FromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->entries[1].path, "dir/a.csv");

  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = json;
    s.replace(s.find(from), from.size(), to);
    return Manifest::FromJson(s).status().message();
  };
  EXPECT_EQ(replace("\"mode\"", "\"mdoe\""), "manifest: entries[0].mdoe: unknown field");
  EXPECT_EQ(replace("dir/a.csv", "dir/../a.csv"),
            "manifest: entries[1].path: path component '..' is not allowed");
  EXPECT_EQ(replace(std::string(32, 'a'), "xyz"),
            "manifest: entries[1].id: expected 32 lower-case hex digits");
  EXPECT_EQ(replace("\"dir\",\"type\"", "\"zdir\",\"type\""),
            "manifest: entries[1].path: not in strictly increasing order (duplicate or unsorted)");
  EXPECT_EQ(Manifest::FromJson("{").status().message(), "manifest: not valid JSON");
}

struct TreeFile {
  std::string path;
  size_t size;
};

// Sizes around segment boundaries, deep paths, unicode names.
std::vector<TreeFile> InterestingTree(size_t seg) {
  return {{"empty", 0},
          {"one", 1},
          {"seg-minus-1", seg - 1},
          {"seg", seg},
          {"seg-plus-1", seg + 1},
          {"a/b/c/d/e/f/g/deep.bin", 3 * seg + 7},
          {"données/日本語/файл.csv", 2 * seg},
          {"big.bin", 5 * 1024 * 1024 + 13}};
}

TEST(Dataset, RoundTripsInterestingTreesAtSeveralSegmentSizes) {
  std::mt19937_64 rng(42);
  for (uint8_t exponent : {uint8_t{12}, uint8_t{16}}) {
    TempDir t;
    size_t seg = size_t{1} << exponent;
    std::map<std::string, std::string> want;
    for (const auto& f : InterestingTree(seg)) {
      want[f.path] = RandomData(rng, f.size);
      WriteFile(fs::path(t.path()) / "src" / f.path, want[f.path]);
    }
    fs::create_directories(fs::path(t.path()) / "src/empty-dir");
    DatasetKey key = TestKey();
    EncryptOptions o;
    o.segment_exponent = exponent;
    o.threads = 3;
    auto s = EncryptDataset(t.path() + "/src", t.path() + "/enc", key, o);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->files, want.size());
    // No plaintext name appears in the encrypted tree.
    for (const auto& e : fs::recursive_directory_iterator(t.path() + "/enc")) {
      std::string name = e.path().filename().string();
      EXPECT_TRUE(name == kManifestName || name == kObjectsDir || name.size() == 32) << name;
    }
    auto v = VerifyDataset(t.path() + "/enc", key, {});
    ASSERT_TRUE(v.ok()) << v.status().message();
    auto d = DecryptDataset(t.path() + "/enc", t.path() + "/out", key, {});
    ASSERT_TRUE(d.ok()) << d.status().message();
    for (const auto& [path, data] : want) {
      EXPECT_EQ(ReadWhole(fs::path(t.path()) / "out" / path), data) << path;
    }
    EXPECT_TRUE(fs::is_directory(fs::path(t.path()) / "out/empty-dir"));
  }
}

TEST(Dataset, RefusesToOverwriteAndLeavesNothingOnFailure) {
  TempDir t;
  WriteFile(fs::path(t.path()) / "src/a", "hello");
  DatasetKey key = TestKey();
  ASSERT_TRUE(EncryptDataset(t.path() + "/src", t.path() + "/enc", key, {}).ok());
  auto again = EncryptDataset(t.path() + "/src", t.path() + "/enc", key, {});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  // A symlink in the source is refused, and no dataset (or temp dir) remains.
  fs::create_symlink("/etc/passwd", fs::path(t.path()) / "src/link");
  auto bad = EncryptDataset(t.path() + "/src", t.path() + "/enc2", key, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("src/link"), std::string::npos);
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(t.path())) ++entries;
  EXPECT_EQ(entries, 2u);  // src and enc only
  // A failed decrypt leaves no destination either.
  fs::resize_file(fs::path(t.path()) / "enc/manifest.cce", 50);
  EXPECT_FALSE(DecryptDataset(t.path() + "/enc", t.path() + "/out", key, {}).ok());
  EXPECT_FALSE(fs::exists(fs::path(t.path()) / "out"));
}

// Names in `dir` that start with `prefix`.
size_t CountNamed(const std::string& dir, const std::string& prefix) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with(prefix)) ++n;
  }
  return n;
}

TEST(Dataset, CancelledRunRemovesItsStagingDirectory) {
  TempDir t;
  std::mt19937_64 rng(7);
  WriteFile(fs::path(t.path()) / "src/a.bin", RandomData(rng, 3 << 20));
  DatasetKey key = TestKey();
  std::atomic<bool> cancel{true};
  EncryptOptions o;
  o.cancel = &cancel;
  auto enc = EncryptDataset(t.path() + "/src", t.path() + "/enc", key, o);
  ASSERT_FALSE(enc.ok());
  EXPECT_EQ(enc.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(enc.status().message().find("interrupted"), std::string::npos);
  EXPECT_EQ(CountNamed(t.path(), ".enc.partial-"), 0u);
  EXPECT_FALSE(fs::exists(fs::path(t.path()) / "enc"));

  ASSERT_TRUE(EncryptDataset(t.path() + "/src", t.path() + "/enc", key, {}).ok());
  EXPECT_FALSE(fs::exists(fs::path(t.path()) / "enc" / kPartialMarkerName));
  ReadOptions r;
  r.cancel = &cancel;
  auto dec = DecryptDataset(t.path() + "/enc", t.path() + "/out", key, r);
  ASSERT_FALSE(dec.ok());
  EXPECT_EQ(CountNamed(t.path(), ".out.partial-"), 0u);
  EXPECT_FALSE(fs::exists(fs::path(t.path()) / "out"));
}

// A killed run's staging directory (marker present, lock gone) is removed by
// the next run on the same destination; others are left alone.
TEST(Dataset, NextRunRemovesStagingDirectoryOfAKilledRun) {
  TempDir t;
  WriteFile(fs::path(t.path()) / "src/a", "x");
  const fs::path dead = fs::path(t.path()) / ".enc.partial-00112233aabb";
  WriteFile(dead / kPartialMarkerName, "");
  WriteFile(dead / "objects/junk", std::string(4096, 'p'));
  const fs::path unmarked = fs::path(t.path()) / ".enc.partial-ffffffffffff";
  WriteFile(unmarked / "mine", "user data");
  const fs::path other_dst = fs::path(t.path()) / ".other.partial-00112233aabb";
  WriteFile(other_dst / kPartialMarkerName, "");
  DatasetKey key = TestKey();
  ASSERT_TRUE(EncryptDataset(t.path() + "/src", t.path() + "/enc", key, {}).ok());
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(unmarked / "mine"));
  EXPECT_TRUE(fs::exists(other_dst));
}

TEST(Dataset, RejectsRollbackOfWholeDatasetWhenVersionIsExpected) {
  TempDir t;
  WriteFile(fs::path(t.path()) / "src/a", "v1");
  DatasetKey key = TestKey();
  EncryptOptions o;
  o.dataset_id = "claims";
  o.dataset_version = 3;
  ASSERT_TRUE(EncryptDataset(t.path() + "/src", t.path() + "/enc", key, o).ok());
  ReadOptions r;
  r.expect_dataset_id = "claims";
  r.min_dataset_version = 3;
  EXPECT_TRUE(VerifyDataset(t.path() + "/enc", key, r).ok());
  r.min_dataset_version = 4;
  auto old = VerifyDataset(t.path() + "/enc", key, r);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("rolled back"), std::string::npos);
  r.min_dataset_version.reset();
  r.expect_dataset_id = "other";
  EXPECT_FALSE(VerifyDataset(t.path() + "/enc", key, r).ok());
}

// docs/format.md's vectors, produced by the independent Python reference in
// tests/data/format/check_vectors.py: this implementation must match them
// byte for byte, both sealing (with the fixed salt) and opening.
TEST(FormatVectors, MatchTheIndependentReference) {
  std::string text = ReadWhole(std::string(CCE_SOURCE_DIR) + "/tests/data/format/vectors.json");
  auto doc = nlohmann::json::parse(text);
  auto key = DatasetKey::FromBytes(crypto::FromHex(doc["key_hex"].get<std::string>()).value());
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(crypto::ToHex(key->id()), doc["key_id_hex"].get<std::string>());
  auto salt = crypto::FromHex(doc["salt_hex"].get<std::string>()).value();
  ASSERT_EQ(doc["vectors"].size(), 5u);
  for (const auto& v : doc["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    auto plain = crypto::FromHex(v["plaintext_hex"].get<std::string>()).value();
    auto want = crypto::FromHex(v["ciphertext_hex"].get<std::string>()).value();
    auto kind = static_cast<FileKind>(v["kind"].get<int>());
    auto w = FileCipher::ForWritingWithSalt(*key, kind, plain.size(),
                                            v["segment_exponent"].get<uint8_t>(), salt);
    ASSERT_TRUE(w.ok());
    const Geometry& g = w->geometry();
    std::vector<uint8_t> got(w->header_bytes().begin(), w->header_bytes().end());
    got.resize(g.CiphertextSize());
    for (uint64_t i = 0; i < g.SegmentCount(); ++i) {
      size_t n = g.PlainSegmentSize(i);
      ASSERT_TRUE(w->SealSegment(i, {plain.data() + i * g.segment_size, n},
                                 {got.data() + g.SegmentOffset(i), n + kTagSize})
                      .ok());
    }
    EXPECT_EQ(crypto::ToHex(got), crypto::ToHex(want));
    auto r = FileCipher::ForReading(*key, std::span(want).first(kHeaderSize), kind);
    ASSERT_TRUE(r.ok());
    std::vector<uint8_t> out(plain.size());
    for (uint64_t i = 0; i < g.SegmentCount(); ++i) {
      size_t n = g.PlainSegmentSize(i);
      ASSERT_TRUE(r->OpenSegment(i, std::span(want).subspan(g.SegmentOffset(i), n + kTagSize),
                                 {out.data() + i * g.segment_size, n})
                      .ok());
    }
    EXPECT_EQ(out, plain);
    if (kind == FileKind::kManifest) {
      auto m = Manifest::FromJson({reinterpret_cast<const char*>(plain.data()), plain.size()});
      ASSERT_TRUE(m.ok()) << m.status().message();
      EXPECT_EQ(m->entries.size(), 2u);
    }
  }
}

}  // namespace
}  // namespace cce::format
