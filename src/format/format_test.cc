#include "format/format.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>

#include "base/temp_dir_testing.h"

namespace cce::format {
namespace {

namespace fs = std::filesystem;

DatasetKey TestKey(uint8_t base = 0) {
  std::array<uint8_t, 32> k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(base + i);
  return std::move(DatasetKey::FromBytes(k).value());
}

using ::cce::testing::TempDir;

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
  h.kind = FileKind::kManifest;
  h.key_id.fill(7);
  h.salt.fill(9);
  h.plaintext_size = 123456789;
  auto bytes = h.Serialize();
  auto parsed = FileHeader::Parse(bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(bytes[8], 2);    // format version 2
  EXPECT_EQ(bytes[10], 12);  // block size exponent: 4 KiB, the only one
  EXPECT_EQ(parsed->kind, FileKind::kManifest);
  EXPECT_EQ(parsed->plaintext_size, 123456789u);
  EXPECT_EQ(parsed->salt, h.salt);

  auto bad = bytes;
  bad[8] = 3;
  auto e = FileHeader::Parse(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "header byte 8: version 3, expected 2");
  // Version 1 was dropped: the error says so and what to do.
  bad[8] = 1;
  e = FileHeader::Parse(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(e.status().message(),
            "header byte 8: version 1 (dropped in format v2, 2026-12): re-encrypt the plaintext "
            "with this cce");
  // One segment size: 4 KiB (exponent 12); v1's 16 (64 KiB) and others are refused.
  for (uint8_t exponent : {uint8_t{11}, uint8_t{13}, uint8_t{16}, uint8_t{24}, uint8_t{30}}) {
    bad = bytes;
    bad[10] = exponent;
    EXPECT_NE(FileHeader::Parse(bad).status().message().find("header byte 10"), std::string::npos)
        << int{exponent};
  }
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
  auto w = FileCipher::ForWriting(key, FileKind::kData, 10000);
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
  auto other = FileCipher::ForWriting(key, FileKind::kData, 10000);
  ASSERT_TRUE(other.ok());
  auto other_r = FileCipher::ForReading(key, other->header_bytes(), FileKind::kData);
  EXPECT_FALSE(other_r->OpenSegment(0, sealed[0], out).ok());
  // Kind and key are checked before any segment.
  EXPECT_FALSE(FileCipher::ForReading(key, w->header_bytes(), FileKind::kManifest).ok());
  auto wrong = FileCipher::ForReading(TestKey(1), w->header_bytes(), FileKind::kData);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("wrong key"), std::string::npos);
}

TEST(FileCipher, WritesFourKiBSegments) {
  auto w = FileCipher::ForWriting(TestKey(), FileKind::kData, 10);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->geometry().segment_size, 4096u);
  EXPECT_EQ(w->header_bytes()[10], kBlockExponent);
}

// ---- The run API ----

// A file of `size` bytes sealed segment by segment (the reference for runs).
struct SealedFile {
  std::vector<uint8_t> plain;
  std::vector<uint8_t> file;  // header and all segments, as on disk
};
SealedFile SealBySegment(const FileCipher& w, std::mt19937_64& rng) {
  const Geometry& g = w.geometry();
  SealedFile f;
  f.plain.resize(g.plaintext_size);
  for (auto& b : f.plain) b = static_cast<uint8_t>(rng());
  f.file.assign(w.header_bytes().begin(), w.header_bytes().end());
  f.file.resize(g.CiphertextSize());
  for (uint64_t i = 0; i < g.SegmentCount(); ++i) {
    size_t n = g.PlainSegmentSize(i);
    EXPECT_TRUE(w.SealSegment(i, {f.plain.data() + i * g.segment_size, n},
                              {f.file.data() + g.SegmentOffset(i), n + kTagSize})
                    .ok());
  }
  return f;
}

std::span<const uint8_t> RunOf(const std::vector<uint8_t>& file, const Geometry& g, uint64_t first,
                               uint64_t count) {
  return std::span(file).subspan(g.SegmentOffset(first), g.RunSealedSize(first, count));
}

bool AllZero(std::span<const uint8_t> s) {
  return std::all_of(s.begin(), s.end(), [](uint8_t b) { return b == 0; });
}

TEST(RunApi, SealsAndOpensLikeSegmentBySegment) {
  std::mt19937_64 rng(3);
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, uint64_t{4095}, uint64_t{4096}, uint64_t{4097},
                        uint64_t{5 * 4096 + 7}, uint64_t{300 * 4096}}) {
    SCOPED_TRACE(size);
    auto w = FileCipher::ForWriting(TestKey(), FileKind::kData, size);
    ASSERT_TRUE(w.ok());
    const Geometry& g = w->geometry();
    SealedFile f = SealBySegment(*w, rng);
    const uint64_t n = g.SegmentCount();
    EXPECT_EQ(g.RunPlainSize(0, n), size);
    EXPECT_EQ(kHeaderSize + g.RunSealedSize(0, n), g.CiphertextSize());
    // Sealing the whole file as one run gives the same bytes.
    std::vector<uint8_t> run(g.RunSealedSize(0, n));
    ASSERT_TRUE(w->SealRun(0, n, f.plain, run).ok());
    EXPECT_TRUE(std::equal(run.begin(), run.end(), f.file.begin() + kHeaderSize));
    auto r = FileCipher::ForReading(TestKey(), w->header_bytes(), FileKind::kData);
    ASSERT_TRUE(r.ok());
    // Every run shape: whole file, single segments, runs ending at the last segment.
    std::vector<std::pair<uint64_t, uint64_t>> runs = {{0, n}, {0, 1}, {n - 1, 1}};
    if (n > 2) runs.insert(runs.end(), {{1, n - 1}, {1, n - 2}, {n / 2, n - n / 2}});
    for (auto [first, count] : runs) {
      SCOPED_TRACE(std::to_string(first) + "+" + std::to_string(count));
      auto sealed = RunOf(f.file, g, first, count);
      std::vector<uint8_t> out(g.RunPlainSize(first, count), 0xee);
      ASSERT_TRUE(r->OpenRun(first, count, sealed, out).ok());
      EXPECT_TRUE(std::equal(out.begin(), out.end(), f.plain.begin() + first * 4096));
      // In place: the plaintext ends up at the front of the sealed buffer.
      std::vector<uint8_t> buf(sealed.begin(), sealed.end());
      ASSERT_TRUE(r->OpenRun(first, count, buf, std::span(buf).first(out.size())).ok());
      EXPECT_TRUE(std::equal(out.begin(), out.end(), buf.begin()));
      // Sealing a sub-run gives the file's bytes of that run.
      std::vector<uint8_t> resealed(sealed.size());
      ASSERT_TRUE(w->SealRun(first, count,
                             std::span(f.plain).subspan(first * 4096, out.size()), resealed)
                      .ok());
      EXPECT_TRUE(std::equal(resealed.begin(), resealed.end(), sealed.begin()));
    }
  }
}

TEST(RunApi, TamperedRunsAreDataLossNamingTheSegmentAndLeaveNoPlaintext) {
  std::mt19937_64 rng(5);
  const uint64_t size = 6 * 4096 + 100;  // 7 segments
  auto w = FileCipher::ForWriting(TestKey(), FileKind::kData, size);
  ASSERT_TRUE(w.ok());
  const Geometry& g = w->geometry();
  SealedFile f = SealBySegment(*w, rng);
  auto r = FileCipher::ForReading(TestKey(), w->header_bytes(), FileKind::kData);
  ASSERT_TRUE(r.ok());
  const uint64_t n = g.SegmentCount();
  const auto whole = RunOf(f.file, g, 0, n);
  auto open = [&](uint64_t first, uint64_t count, std::vector<uint8_t> sealed,
                  const std::string& want) {
    SCOPED_TRACE(want);
    std::vector<uint8_t> out(g.RunPlainSize(first, count), 0xee);
    Status s = r->OpenRun(first, count, sealed, out);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
    EXPECT_NE(s.message().find(want), std::string::npos) << s.message();
    EXPECT_TRUE(AllZero(out)) << "plaintext left in the output";
    // The same in place: nothing of the run's plaintext is left anywhere.
    std::vector<uint8_t> buf = sealed;
    if (buf.size() >= out.size()) {
      s = r->OpenRun(first, count, buf, std::span(buf).first(out.size()));
      EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
      EXPECT_TRUE(AllZero(buf)) << "plaintext left in place";
    }
  };
  const size_t seg = 4096 + kTagSize;
  // A flipped ciphertext byte and a flipped tag byte in segment 3.
  std::vector<uint8_t> t(whole.begin(), whole.end());
  t[3 * seg + 10] ^= 1;
  open(0, n, t, "segment 3: authentication failed");
  t.assign(whole.begin(), whole.end());
  t[4 * seg - 1] ^= 0x80;
  open(0, n, t, "segment 3: authentication failed");
  // Segments 1 and 2 swapped.
  t.assign(whole.begin(), whole.end());
  std::swap_ranges(t.begin() + seg, t.begin() + 2 * seg, t.begin() + 2 * seg);
  open(0, n, t, "segment 1: authentication failed");
  // A run presented one segment later (off by one).
  open(2, 3, {whole.begin() + seg, whole.begin() + 4 * seg}, "segment 2: authentication failed");
  // Truncated at a segment boundary: the last segment is missing.
  open(0, n, {whole.begin(), whole.end() - 100 - kTagSize}, "segment 6: truncated");
  // Truncated mid-segment, and a run of full segments cut short.
  open(0, n, {whole.begin(), whole.end() - 1}, "segment 6: truncated");
  open(0, 4, {whole.begin(), whole.begin() + 3 * seg + 5}, "segment 3: truncated");
  // A middle segment presented as the last one (a file cut at a boundary).
  auto cut_header = w->header();
  cut_header.plaintext_size = 3 * 4096;
  auto cut = FileCipher::ForReading(TestKey(), cut_header.Serialize(), FileKind::kData);
  ASSERT_TRUE(cut.ok());
  {
    std::vector<uint8_t> out(4096);
    EXPECT_EQ(cut->OpenRun(2, 1, whole.subspan(2 * seg, seg), out).code(), StatusCode::kDataLoss);
  }
  // A segment spliced in from another file of the same key and size.
  auto other = FileCipher::ForWriting(TestKey(), FileKind::kData, size);
  ASSERT_TRUE(other.ok());
  SealedFile of = SealBySegment(*other, rng);
  t.assign(whole.begin(), whole.end());
  std::copy_n(of.file.begin() + static_cast<ptrdiff_t>(g.SegmentOffset(4)), seg,
              t.begin() + 4 * static_cast<ptrdiff_t>(seg));
  open(0, n, t, "segment 4: authentication failed");
  // Beyond the last segment.
  {
    std::vector<uint8_t> out(4096);
    Status s = r->OpenRun(n, 1, whole.first(seg), out);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("beyond the last segment 6"), std::string::npos) << s.message();
    EXPECT_EQ(r->OpenRun(5, 3, whole.first(2 * seg), out).code(), StatusCode::kDataLoss);
  }
  // Caller errors: wrong output size, a sealed buffer longer than the run,
  // an output overlapping the input other than exactly in place.
  {
    std::vector<uint8_t> out(2 * 4096 + 1);
    EXPECT_EQ(r->OpenRun(0, 2, whole.first(2 * seg), out).code(), StatusCode::kInvalidArgument);
    out.resize(2 * 4096);
    EXPECT_EQ(r->OpenRun(0, 2, whole.first(2 * seg + 1), out).code(),
              StatusCode::kInvalidArgument);
    std::vector<uint8_t> buf(whole.begin(), whole.begin() + 2 * seg + 8);
    EXPECT_EQ(r->OpenRun(0, 2, std::span(buf).first(2 * seg), std::span(buf).subspan(8, 2 * 4096))
                  .code(),
              StatusCode::kInvalidArgument);
    std::vector<uint8_t> plain(2 * 4096), sealed_out(2 * seg);
    EXPECT_EQ(w->SealRun(0, 2, plain, std::span(sealed_out).first(2 * seg - 1)).code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(w->SealRun(6, 2, std::span(plain).first(100), sealed_out).code(),
              StatusCode::kInvalidArgument);
  }
}

// The per-thread context holds one file key at a time: alternating files,
// copies, a cipher replaced by another in the same storage, and many threads
// must each get their own file's key.
TEST(RunApi, ThePerThreadContextAlwaysHoldsTheRightFileKey) {
  std::mt19937_64 rng(9);
  const uint64_t size = 3 * 4096 + 5;
  std::vector<FileCipher> writers;
  std::vector<SealedFile> files;
  for (uint8_t k = 0; k < 4; ++k) {
    auto w = FileCipher::ForWriting(TestKey(k % 2), FileKind::kData, size);
    ASSERT_TRUE(w.ok());
    files.push_back(SealBySegment(*w, rng));
    writers.push_back(std::move(*w));
  }
  const Geometry& g = writers[0].geometry();
  const uint64_t n = g.SegmentCount();
  auto check = [&](const FileCipher& c, size_t i) {
    std::vector<uint8_t> out(size);
    Status s = c.OpenRun(0, n, RunOf(files[i].file, g, 0, n), out);
    return s.ok() && out == files[i].plain;
  };
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < writers.size(); ++i) EXPECT_TRUE(check(writers[i], i)) << i;
  }
  FileCipher copy = writers[2];
  EXPECT_TRUE(check(copy, 2));
  EXPECT_TRUE(check(writers[1], 1));
  EXPECT_TRUE(check(copy, 2));
  // A new cipher built where an old one lived (same address) is keyed anew.
  std::optional<FileCipher> slot;
  for (size_t i = 0; i < writers.size(); ++i) {
    slot.reset();
    slot.emplace(FileCipher::ForReading(TestKey(i % 2), writers[i].header_bytes(),
                                        FileKind::kData)
                     .value());
    EXPECT_TRUE(check(*slot, i)) << i;
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < 200; ++j) {
        size_t i = static_cast<size_t>(t + j) % writers.size();
        if (!check(writers[i], i)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(Manifest, StrictParsingNamesTheField) {
  Manifest m;
  m.dataset_id = "ds";
  m.segment_size = 4096;
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
  EXPECT_EQ(replace("\"segment_size\":4096", "\"segment_size\":65536"),
            "manifest.segment_size: 65536, expected 4096 (the only segment size in format v2)");
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

TEST(Dataset, RoundTripsInterestingTrees) {
  std::mt19937_64 rng(42);
  TempDir t("format-test");
  size_t seg = kBlockSize;
  std::map<std::string, std::string> want;
  for (const auto& f : InterestingTree(seg)) {
    want[f.path] = RandomData(rng, f.size);
    WriteFile(fs::path(t.path()) / "src" / f.path, want[f.path]);
  }
  fs::create_directories(fs::path(t.path()) / "src/empty-dir");
  DatasetKey key = TestKey();
  EncryptOptions o;
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

TEST(Dataset, RefusesToOverwriteAndLeavesNothingOnFailure) {
  TempDir t("format-test");
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
  TempDir t("format-test");
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
  TempDir t("format-test");
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
  TempDir t("format-test");
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
  ASSERT_EQ(doc["vectors"].size(), 6u);
  for (const auto& v : doc["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    auto plain = crypto::FromHex(v["plaintext_hex"].get<std::string>()).value();
    auto want = crypto::FromHex(v["ciphertext_hex"].get<std::string>()).value();
    auto kind = static_cast<FileKind>(v["kind"].get<int>());
    // The vectors name the header's byte 10; format v2 has only 12 (4 KiB).
    ASSERT_EQ(v["segment_exponent"].get<int>(), kBlockExponent);
    auto w = FileCipher::ForWritingWithSalt(*key, kind, plain.size(), salt);
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
    // The run API reproduces and opens the same bytes in one call.
    const uint64_t n = g.SegmentCount();
    std::vector<uint8_t> run(g.RunSealedSize(0, n));
    ASSERT_TRUE(w->SealRun(0, n, plain, run).ok());
    EXPECT_TRUE(std::equal(run.begin(), run.end(), want.begin() + kHeaderSize));
    std::fill(out.begin(), out.end(), 0);
    ASSERT_TRUE(r->OpenRun(0, n, std::span(want).subspan(kHeaderSize), out).ok());
    EXPECT_EQ(out, plain);
    if (kind == FileKind::kManifest) {
      auto m = Manifest::FromJson({reinterpret_cast<const char*>(plain.data()), plain.size()});
      ASSERT_TRUE(m.ok()) << m.status().message();
      EXPECT_EQ(m->entries.size(), 2u);
    }
  }
  // Headers the reference refuses are refused here too, for the same reason.
  ASSERT_EQ(doc["refused_headers"].size(), 3u);
  for (const auto& v : doc["refused_headers"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    auto h = crypto::FromHex(v["header_hex"].get<std::string>()).value();
    auto r = FileCipher::ForReading(*key, h, FileKind::kData);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find(v["error"].get<std::string>()), std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace cce::format
