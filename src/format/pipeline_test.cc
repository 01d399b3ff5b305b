#include "format/pipeline.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "base/temp_dir_testing.h"

namespace cce::format {
namespace {

namespace fs = std::filesystem;

DatasetKey TestKey() {
  std::array<uint8_t, 32> k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(0x40 + i);
  return std::move(DatasetKey::FromBytes(k).value());
}

// The test's directory, with src/ (plaintext) and obj/ (sealed objects).
class TempDir : public cce::testing::TempDir {
 public:
  TempDir() : cce::testing::TempDir("pipeline-test") {
    fs::create_directories(path() + "/src");
    fs::create_directories(path() + "/obj");
  }
};

std::string RandomData(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

void WriteFile(const std::string& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
}

std::string ReadWhole(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Opens a sealed object the way readers do and returns its plaintext.
std::string Unseal(const std::string& path, const DatasetKey& key, const SealJob& job) {
  std::string c = ReadWhole(path);
  auto bytes = reinterpret_cast<const uint8_t*>(c.data());
  EXPECT_GE(c.size(), kHeaderSize) << path;
  if (c.size() < kHeaderSize) return {};
  EXPECT_EQ(crypto::Sha256({bytes, kHeaderSize}), job.header_sha256) << path;
  auto cipher = FileCipher::ForReading(key, {bytes, kHeaderSize}, FileKind::kData);
  EXPECT_TRUE(cipher.ok()) << cipher.status().message();
  if (!cipher.ok()) return {};
  const Geometry& g = cipher->geometry();
  EXPECT_EQ(c.size(), g.CiphertextSize()) << path;
  std::string plain(g.plaintext_size, '\0');
  Status s = cipher->OpenRun(0, g.SegmentCount(), {bytes + kHeaderSize, c.size() - kHeaderSize},
                             {reinterpret_cast<uint8_t*>(plain.data()), plain.size()});
  EXPECT_TRUE(s.ok()) << path << ": " << s.message();
  return plain;
}

struct Tree {
  std::vector<SealJob> jobs;
  std::vector<std::string> data;
};

Tree MakeTree(const TempDir& t, const std::vector<size_t>& sizes, uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  Tree tree;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::string name = "f" + std::to_string(i);
    tree.data.push_back(RandomData(rng, sizes[i]));
    WriteFile(t.path() + "/src/" + name, tree.data.back());
    tree.jobs.push_back({t.path() + "/src/" + name, t.path() + "/obj/" + name, sizes[i], {}});
  }
  return tree;
}

constexpr size_t kIo = kSealIoBytes;

TEST(SealFiles, SealsEverySizeAroundBlockAndIoBoundaries) {
  TempDir t;
  Tree tree = MakeTree(t, {0, 1, 4095, 4096, 4097, kIo - 1, kIo, kIo + 1, 3 * kIo + 4097});
  for (unsigned threads : {1u, 2u, 5u}) {
    for (const auto& j : tree.jobs) fs::remove(j.dst);
    SealOptions o;
    o.threads = threads;
    std::vector<Progress> seen;
    o.progress = [&](const Progress& p) { seen.push_back(p); };
    Status s = SealFiles(tree.jobs, TestKey(), o);
    ASSERT_TRUE(s.ok()) << s.message();
    for (size_t i = 0; i < tree.jobs.size(); ++i) {
      EXPECT_EQ(Unseal(tree.jobs[i].dst, TestKey(), tree.jobs[i]), tree.data[i])
          << "size " << tree.jobs[i].size << ", threads " << threads;
    }
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back().bytes_done, seen.back().bytes_total);
    EXPECT_EQ(seen.back().files_done, tree.jobs.size());
  }
}

// Many small files share one work item (and one buffer); each still gets its
// own header, key and object. More files than pieces per item, and sizes that
// do not pack evenly into the buffer.
TEST(SealFiles, PacksManySmallFilesWithoutMixingThem) {
  TempDir t;
  std::mt19937_64 rng(9);
  std::vector<size_t> sizes;
  for (int i = 0; i < 400; ++i) sizes.push_back(rng() % 70000);
  sizes.push_back(kIo);  // a whole-buffer file in between
  for (int i = 0; i < 50; ++i) sizes.push_back(rng() % 5000);
  Tree tree = MakeTree(t, sizes, 9);
  SealOptions o;
  o.threads = 2;
  ASSERT_TRUE(SealFiles(tree.jobs, TestKey(), o).ok());
  std::map<std::string, int> salts;
  for (size_t i = 0; i < tree.jobs.size(); ++i) {
    EXPECT_EQ(Unseal(tree.jobs[i].dst, TestKey(), tree.jobs[i]), tree.data[i]) << i;
    ++salts[ReadWhole(tree.jobs[i].dst).substr(28, kSaltSize)];
  }
  EXPECT_EQ(salts.size(), tree.jobs.size());  // a fresh salt (file key) per file
}

TEST(SealFiles, ReadErrorNamesTheFileAndTheByte) {
  TempDir t;
  Tree tree = MakeTree(t, {5000, 3 * kIo, 7000});
  SealOptions o;
  const std::string bad = tree.jobs[1].src;
  o.pread = [&](int fd, void* buf, size_t n, off_t off) -> ssize_t {
    if (off >= static_cast<off_t>(kIo)) {
      // Only the middle file fails: identify it by its size.
      struct stat st {};
      if (::fstat(fd, &st) == 0 && st.st_size == static_cast<off_t>(3 * kIo)) {
        errno = EIO;
        return -1;
      }
    }
    return ::pread(fd, buf, n, off);
  };
  Status s = SealFiles(tree.jobs, TestKey(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(bad + ": read at byte " + std::to_string(kIo)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("Input/output error"), std::string::npos) << s.message();
}

TEST(SealFiles, FileThatGrowsWhileReadFailsNamingIt) {
  TempDir t;
  Tree tree = MakeTree(t, {100, 2 * kIo + 10, 100});
  const std::string victim = tree.jobs[1].src;
  bool grown = false;
  SealOptions o;
  o.pread = [&](int fd, void* buf, size_t n, off_t off) -> ssize_t {
    if (off >= static_cast<off_t>(kIo) && !grown) {
      grown = true;  // a writer appends while we read (the reader is one thread)
      std::ofstream(victim, std::ios::binary | std::ios::app) << "more";
    }
    return ::pread(fd, buf, n, off);
  };
  Status s = SealFiles(tree.jobs, TestKey(), o);
  ASSERT_TRUE(grown);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find(victim + ": changed size while encrypting"), std::string::npos)
      << s.message();
}

TEST(SealFiles, FileThatShrinksWhileReadFailsNamingItAndTheByte) {
  TempDir t;
  Tree tree = MakeTree(t, {2 * kIo + 10});
  const std::string victim = tree.jobs[0].src;
  bool cut = false;
  SealOptions o;
  o.pread = [&](int fd, void* buf, size_t n, off_t off) -> ssize_t {
    if (off >= static_cast<off_t>(kIo) && !cut) {
      cut = true;
      fs::resize_file(victim, kIo + 100);
    }
    return ::pread(fd, buf, n, off);
  };
  Status s = SealFiles(tree.jobs, TestKey(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find(victim + ": changed size while encrypting: ends at byte " +
                             std::to_string(kIo + 100)),
            std::string::npos)
      << s.message();
}

TEST(SealFiles, FileWithAnotherSizeThanListedFails) {
  TempDir t;
  Tree tree = MakeTree(t, {10});
  tree.jobs[0].size = 11;  // listed before a writer truncated it
  Status s = SealFiles(tree.jobs, TestKey(), {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(tree.jobs[0].src + ": changed size while encrypting: 10 bytes"),
            std::string::npos)
      << s.message();
}

// Cancelling mid-file stops within about one I/O run: no further reads.
TEST(SealFiles, CancelMidFileStopsWithinOneRun) {
  TempDir t;
  Tree tree = MakeTree(t, {16 * kIo, 5, 5});
  std::atomic<bool> cancel{false};
  int reads_after_cancel = 0;
  SealOptions o;
  o.cancel = &cancel;
  o.pread = [&](int fd, void* buf, size_t n, off_t off) -> ssize_t {
    if (cancel) ++reads_after_cancel;
    if (off >= static_cast<off_t>(2 * kIo)) cancel = true;
    return ::pread(fd, buf, n, off);
  };
  Status s = SealFiles(tree.jobs, TestKey(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("interrupted"), std::string::npos) << s.message();
  EXPECT_EQ(reads_after_cancel, 0);
  EXPECT_FALSE(fs::exists(tree.jobs[1].dst));  // later files are never started
}

TEST(SealFiles, ExistingObjectIsNotOverwritten) {
  TempDir t;
  Tree tree = MakeTree(t, {10});
  WriteFile(tree.jobs[0].dst, "someone else's");
  Status s = SealFiles(tree.jobs, TestKey(), {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(tree.jobs[0].dst), std::string::npos) << s.message();
  EXPECT_EQ(ReadWhole(tree.jobs[0].dst), "someone else's");
}

// Through EncryptDataset: a run cancelled while it encrypts a large file
// leaves neither the destination nor its staging directory.
TEST(EncryptDataset, CancelMidFileRemovesThePartialOutput) {
  TempDir t;
  std::mt19937_64 rng(3);
  WriteFile(t.path() + "/src/big", RandomData(rng, 48 * kIo));
  std::atomic<bool> cancel{false};
  EncryptOptions o;
  o.cancel = &cancel;
  uint64_t done_at_cancel = 0;
  // The first progress call comes as the pipeline starts.
  o.progress = [&](const Progress& p) {
    if (!cancel) done_at_cancel = p.bytes_done;
    cancel = true;
  };
  auto r = EncryptDataset(t.path() + "/src", t.path() + "/enc", TestKey(), o);
  ASSERT_FALSE(r.ok()) << "finished " << done_at_cancel << " bytes before the first progress call";
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("interrupted"), std::string::npos);
  EXPECT_FALSE(fs::exists(t.path() + "/enc"));
  for (const auto& e : fs::directory_iterator(t.path())) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".enc.partial-")) << e.path();
  }
}

TEST(EncryptDataset, RoundTripsSizesAroundTheIoRun) {
  TempDir t;
  std::mt19937_64 rng(5);
  std::map<std::string, std::string> want;
  for (size_t n : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, kIo - 1, kIo,
                   kIo + 1, 2 * kIo - 1}) {
    std::string name = "d/s" + std::to_string(n);
    want[name] = RandomData(rng, n);
    fs::create_directories(t.path() + "/src/d");
    WriteFile(t.path() + "/src/" + name, want[name]);
  }
  auto e = EncryptDataset(t.path() + "/src", t.path() + "/enc", TestKey(), {});
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto d = DecryptDataset(t.path() + "/enc", t.path() + "/out", TestKey(), {});
  ASSERT_TRUE(d.ok()) << d.status().message();
  for (const auto& [name, data] : want) EXPECT_EQ(ReadWhole(t.path() + "/out/" + name), data);
}

}  // namespace
}  // namespace cce::format
