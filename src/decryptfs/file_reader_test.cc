#include "decryptfs/file_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

namespace cce::decryptfs {
namespace {

namespace fs = std::filesystem;

constexpr uint8_t kExponent = 12;  // 4 KiB segments: many segments from small files
constexpr uint32_t kSeg = 1u << kExponent;

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "cce-reader-test-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x20);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

std::string Gather(const ReadReply& r) {
  std::string out;
  for (const iovec& v : r.iov()) out.append(static_cast<const char*>(v.iov_base), v.iov_len);
  return out;
}

class SegmentReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = format::DatasetKey::Generate();
    ASSERT_TRUE(key.ok());
    key_ = std::make_unique<format::DatasetKey>(std::move(*key));
    std::string src = dir_.path() + "/plain";
    fs::create_directories(src);
    for (auto [name, size] :
         std::vector<std::pair<std::string, size_t>>{{"empty", 0},
                                                     {"one", 1},
                                                     {"seg-1", kSeg - 1},
                                                     {"seg", kSeg},
                                                     {"seg+1", kSeg + 1},
                                                     {"big", 37 * kSeg + 123}}) {
      plain_[name] = RandomBytes(size, static_cast<unsigned>(size) + 7);
      std::ofstream(src + "/" + name, std::ios::binary) << plain_[name];
    }
    enc_ = dir_.path() + "/enc";
    format::EncryptOptions eo;
    eo.segment_exponent = kExponent;
    eo.threads = 2;
    auto s = format::EncryptDataset(src, enc_, *key_, eo);
    ASSERT_TRUE(s.ok()) << s.status().message();
    auto m = format::ReadManifest(enc_, *key_);
    ASSERT_TRUE(m.ok()) << m.status().message();
    manifest_ = std::move(*m);
  }

  const format::ManifestEntry& Entry(const std::string& name) {
    for (const auto& e : manifest_.entries) {
      if (e.path == name) return e;
    }
    throw std::runtime_error("no entry " + name);
  }

  StatusOr<std::shared_ptr<OpenFile>> Open(const std::string& name, bool direct = true) {
    return OpenFile::Open(enc_, Entry(name), *key_, Index(name), kSeg, direct);
  }
  uint64_t Index(const std::string& name) {
    uint64_t i = 2;
    for (const auto& e : manifest_.entries) {
      if (e.path == name) return i;
      ++i;
    }
    return 0;
  }

  StatusOr<std::string> Read(SegmentReader& r, const std::shared_ptr<OpenFile>& f, uint64_t off,
                             size_t len) {
    ReadReply reply;
    RETURN_IF_ERROR(r.Read(f, off, len, &reply));
    EXPECT_EQ(reply.size(), Gather(reply).size());
    return Gather(reply);
  }

  TempDir dir_;
  std::unique_ptr<format::DatasetKey> key_;
  std::string enc_;
  format::Manifest manifest_;
  std::map<std::string, std::string> plain_;
};

TEST_F(SegmentReaderTest, RandomRangesMatchPlaintextWithAndWithoutCache) {
  for (bool direct : {true, false}) {
    for (size_t cache_bytes : {size_t{0}, size_t{3} * (kSeg + 16), size_t{1} << 20}) {
      SCOPED_TRACE("cache bytes " + std::to_string(cache_bytes) +
                   (direct ? " O_DIRECT" : " buffered"));
      SegmentCache cache(cache_bytes, kSeg + format::kTagSize, 4);
      SegmentReader reader(&cache, ReaderOptions{});
      std::mt19937_64 rng(cache_bytes);
      for (const auto& [name, data] : plain_) {
        auto f = Open(name, direct);
        ASSERT_TRUE(f.ok()) << f.status().message();
        EXPECT_EQ((*f)->direct(), direct) << "/tmp should allow O_DIRECT";
        for (int i = 0; i < 200; ++i) {
          uint64_t off = data.empty() ? 0 : rng() % (data.size() + 10);
          size_t len = rng() % 4 == 0 ? rng() % (6 * kSeg) : rng() % 300 + 1;
          auto got = Read(reader, *f, off, len);
          ASSERT_TRUE(got.ok()) << got.status().message();
          std::string want = off >= data.size() ? "" : data.substr(off, len);
          ASSERT_EQ(*got, want) << name << " off " << off << " len " << len;
        }
        auto whole = Read(reader, *f, 0, data.size() + 1);
        ASSERT_TRUE(whole.ok());
        EXPECT_EQ(*whole, data) << name;
      }
    }
  }
}

TEST_F(SegmentReaderTest, SmallReadsWithinASegmentHitTheCache) {
  SegmentCache cache(1 << 20, kSeg + format::kTagSize, 4);
  ReaderOptions ro;
  ro.readahead_segments = 0;
  SegmentReader reader(&cache, ro);
  auto f = Open("big");
  ASSERT_TRUE(f.ok());
  for (uint64_t off = 5 * kSeg; off < 6 * kSeg; off += 512)
    ASSERT_TRUE(Read(reader, *f, off, 512).ok());
  EXPECT_EQ(cache.stats().hits, kSeg / 512 - 1);
}

TEST_F(SegmentReaderTest, SequentialReaderGetsSegmentsDecryptedAhead) {
  SegmentCache cache(1 << 20, kSeg + format::kTagSize, 4);
  ReaderOptions ro;
  ro.readahead_segments = 8;
  ro.readahead_job_segments = 4;
  SegmentReader reader(&cache, ro);
  auto f = Open("big");
  ASSERT_TRUE(f.ok());
  std::string got;
  for (uint64_t off = 0; off < plain_["big"].size(); off += kSeg) {
    auto part = Read(reader, *f, off, kSeg);
    ASSERT_TRUE(part.ok()) << part.status().message();
    got += *part;
    // Give read-ahead a moment so that later reads find their segments.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(got, plain_["big"]);
  EXPECT_GT(cache.stats().hits + cache.stats().waits, 10u);
}

TEST_F(SegmentReaderTest, TamperedSegmentFailsOnlyReadsThatCoverIt) {
  const format::ManifestEntry& e = Entry("big");
  format::Geometry g{kSeg, e.size};
  FlipByte(format::ObjectPath(enc_, e.id), g.SegmentOffset(7) + 100);
  for (bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "O_DIRECT" : "buffered");
    SegmentCache cache(1 << 20, kSeg + format::kTagSize, 4);
    SegmentReader reader(&cache, ReaderOptions{});
    auto f = Open("big", direct);
    ASSERT_TRUE(f.ok());
    for (int attempt = 0; attempt < 2; ++attempt) {  // the failure is not cached
      auto bad = Read(reader, *f, 7 * kSeg + 10, 20);
      ASSERT_FALSE(bad.ok());
      EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
      EXPECT_NE(bad.status().message().find("'big'"), std::string::npos) << bad.status().message();
      EXPECT_NE(bad.status().message().find("segment 7"), std::string::npos)
          << bad.status().message();
    }
    // A read spanning the bad segment fails as a whole.
    EXPECT_FALSE(Read(reader, *f, 5 * kSeg, 4 * kSeg).ok());
    // Its neighbours still read correctly.
    auto before = Read(reader, *f, 0, 7 * kSeg);
    ASSERT_TRUE(before.ok()) << before.status().message();
    EXPECT_EQ(*before, plain_["big"].substr(0, 7 * kSeg));
    auto after = Read(reader, *f, 8 * kSeg, 1 << 20);
    ASSERT_TRUE(after.ok()) << after.status().message();
    EXPECT_EQ(*after, plain_["big"].substr(8 * kSeg));
  }
}

TEST_F(SegmentReaderTest, TruncatedLowerObjectIsDataLossNotShortRead) {
  // Opened while intact, truncated afterwards.
  auto direct = Open("big", true);
  auto buffered = Open("big", false);
  ASSERT_TRUE(direct.ok() && buffered.ok());
  const format::ManifestEntry& e = Entry("big");
  format::Geometry g{kSeg, e.size};
  fs::resize_file(format::ObjectPath(enc_, e.id), g.SegmentOffset(30) + 5);
  for (const auto* f : {&*direct, &*buffered}) {
    SegmentCache cache(1 << 20, kSeg + format::kTagSize, 4);
    SegmentReader reader(&cache, ReaderOptions{});
    auto tail = Read(reader, *f, 29 * kSeg, 3 * kSeg);
    ASSERT_FALSE(tail.ok());
    EXPECT_NE(tail.status().message().find("segment 30"), std::string::npos)
        << tail.status().message();
    auto head = Read(reader, *f, 0, 2 * kSeg);
    ASSERT_TRUE(head.ok());
    EXPECT_EQ(*head, plain_["big"].substr(0, 2 * kSeg));
  }
}

TEST_F(SegmentReaderTest, EmptyFileTagIsCheckedAtOpen) {
  ASSERT_TRUE(Open("empty").ok());
  const format::ManifestEntry& e = Entry("empty");
  FlipByte(format::ObjectPath(enc_, e.id), format::kHeaderSize + 3);
  auto f = Open("empty");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
}

TEST_F(SegmentReaderTest, ConcurrentReadersShareTheCacheCorrectly) {
  SegmentCache cache(16 * (kSeg + format::kTagSize), kSeg + format::kTagSize, 4);
  SegmentReader reader(&cache, ReaderOptions{});
  auto f = Open("big");
  ASSERT_TRUE(f.ok());
  const std::string& data = plain_["big"];
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t));
      for (int i = 0; i < 300; ++i) {
        uint64_t off = t % 2 == 0 ? (i * kSeg / 2) % data.size() : rng() % data.size();
        size_t len = rng() % (3 * kSeg) + 1;
        ReadReply reply;
        Status s = reader.Read(*f, off, len, &reply);
        if (!s.ok() || Gather(reply) != data.substr(off, len)) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace cce::decryptfs
