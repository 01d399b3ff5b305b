#include "image/blob_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "image/image_testing.h"

namespace cce::image {
namespace {

namespace fs = std::filesystem;
using testing::RandomData;
using testing::TempDir;

size_t CountFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++n;
  }
  return n;
}

void ExpectMessageHas(const Status& s, const std::string& needle) {
  EXPECT_NE(s.message().find(needle), std::string::npos)
      << "message: " << s.message() << "\nexpected to contain: " << needle;
}

constexpr char kEmptySha[] =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(Digest, ParsesOnlyLowerCaseSha256) {
  auto ok = Digest::Parse(kEmptySha);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->str(), kEmptySha);
  EXPECT_EQ(ok->hex(), std::string(kEmptySha).substr(7));
  EXPECT_EQ(Digest::Of(""), *ok);

  auto sha512 = Digest::Parse("sha512:" + std::string(128, 'a'));
  ASSERT_FALSE(sha512.ok());
  EXPECT_EQ(sha512.status().code(), StatusCode::kInvalidArgument);
  ExpectMessageHas(sha512.status(), "unsupported algorithm 'sha512'");

  std::string upper = kEmptySha;
  upper[10] = 'B';
  for (const std::string& bad :
       {upper, std::string("sha256:abc"), std::string(kEmptySha) + "0",
        std::string(kEmptySha).substr(7), std::string("sha256:") + std::string(63, 'a') + "g",
        std::string(""), std::string("SHA256:") + std::string(64, 'a')}) {
    EXPECT_FALSE(Digest::Parse(bad).ok()) << bad;
  }
}

TEST(BlobStore, PutThenHasSizeOpenVerify) {
  TempDir dir("blob-store-test");
  auto store = BlobStore::Create(dir.path() + "/store");
  ASSERT_TRUE(store.ok()) << store.status().message();
  std::string data = RandomData(3 << 20, 1);  // several copy chunks
  Digest d = Digest::Of(data);
  EXPECT_FALSE(store->Has(d));
  EXPECT_EQ(store->Size(d).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Open(d).status().code(), StatusCode::kNotFound);

  auto put = store->PutBytes(data, d);
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(*put, d);
  EXPECT_TRUE(store->Has(d));
  EXPECT_EQ(store->Path(d), dir.path() + "/store/blobs/sha256/" + std::string(d.hex()));
  ASSERT_TRUE(store->Size(d).ok());
  EXPECT_EQ(*store->Size(d), data.size());
  auto fd = store->Open(d);
  ASSERT_TRUE(fd.ok());
  auto back = ReadAll(fd->get(), data.size(), "blob");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
  EXPECT_TRUE(store->Verify(d).ok());
  struct stat st {};
  ASSERT_EQ(::stat(store->Path(d).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(CountFiles(dir.path() + "/store/tmp"), 0u);
}

TEST(BlobStore, WrongExpectedDigestLeavesNothingBehind) {
  TempDir dir("blob-store-test");
  auto store = BlobStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  std::string data = RandomData(100000, 2);
  Digest actual = Digest::Of(data);
  Digest claimed = Digest::Of("something else");
  auto put = store->PutBytes(data, claimed);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), StatusCode::kDataLoss);
  ExpectMessageHas(put.status(), claimed.str());
  ExpectMessageHas(put.status(), actual.str());
  EXPECT_FALSE(store->Has(claimed));
  EXPECT_FALSE(store->Has(actual));
  EXPECT_EQ(CountFiles(dir.path() + "/blobs/sha256"), 0u);
  EXPECT_EQ(CountFiles(dir.path() + "/tmp"), 0u);
}

TEST(BlobStore, OverLimitLeavesNothingBehind) {
  TempDir dir("blob-store-test");
  auto store = BlobStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  std::string data = RandomData(5000, 3);
  BufferSource source(data);
  auto put = store->Put(source, Digest::Of(data), 4999);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), StatusCode::kInvalidArgument);
  ExpectMessageHas(put.status(), "4999");
  EXPECT_EQ(CountFiles(dir.path() + "/blobs/sha256"), 0u);
  EXPECT_EQ(CountFiles(dir.path() + "/tmp"), 0u);
}

TEST(BlobStore, PutFromFdAndIdempotentRePut) {
  TempDir dir("blob-store-test");
  auto store = BlobStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  std::string data = RandomData(70000, 4);
  std::string src = dir.path() + "/src";
  std::ofstream(src, std::ios::binary) << data;
  Digest d = Digest::Of(data);
  for (int i = 0; i < 2; ++i) {
    UniqueFd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    auto put = store->PutFromFd(fd.get(), d, data.size());
    ASSERT_TRUE(put.ok()) << put.status().message();
  }
  EXPECT_TRUE(store->Verify(d).ok());
  EXPECT_EQ(CountFiles(dir.path() + "/blobs/sha256"), 1u);
  EXPECT_EQ(CountFiles(dir.path() + "/tmp"), 0u);
}

TEST(BlobStore, ConcurrentPutsOfTheSameBlob) {
  TempDir dir("blob-store-test");
  auto store = BlobStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  std::string data = RandomData(2 << 20, 5);
  Digest d = Digest::Of(data);
  constexpr int kThreads = 8;
  std::vector<Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 4; ++round) {
        auto put = store->PutBytes(data, d);
        if (!put.ok()) {
          results[static_cast<size_t>(t)] = put.status();
          return;
        }
        // A reader racing the writers always sees the whole blob.
        auto fd = store->Open(d);
        if (!fd.ok()) {
          results[static_cast<size_t>(t)] = fd.status();
          return;
        }
        auto back = ReadAll(fd->get(), data.size(), "blob");
        if (!back.ok() || *back != data) {
          results[static_cast<size_t>(t)] = Internal("reader saw a partial blob");
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(store->Verify(d).ok());
  EXPECT_EQ(CountFiles(dir.path() + "/blobs/sha256"), 1u);
  EXPECT_EQ(CountFiles(dir.path() + "/tmp"), 0u);
}

TEST(BlobStore, VerifyDetectsAChangedFile) {
  TempDir dir("blob-store-test");
  auto store = BlobStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  std::string data = RandomData(10000, 6);
  Digest d = Digest::Of(data);
  ASSERT_TRUE(store->PutBytes(data, d).ok());
  std::string path = store->Path(d);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  data[1234] ^= 1;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  Status s = store->Verify(d);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  ExpectMessageHas(s, d.str());
  ExpectMessageHas(s, Digest::Of(data).str());

  // Put repairs it: the freshly verified copy replaces the bad one.
  data[1234] ^= 1;
  ASSERT_TRUE(store->PutBytes(data, d).ok());
  EXPECT_TRUE(store->Verify(d).ok());
}

TEST(BlobStore, PutRequiresAnExpectedDigest) {
  TempDir dir("blob-store-test");
  auto store = BlobStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store->PutBytes("x", Digest()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(store->Has(Digest()));
}

// An upload (the plane's O_TMPFILE body under ROOT/tmp) becomes the blob
// itself: the same inode, so the store never holds a second copy of it.
TEST(BlobStore, AdoptLinksAnAnonymousUploadInsteadOfCopyingIt) {
  TempDir dir("blob-store-test");
  auto store = BlobStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  const std::string data = RandomData(3 << 20, 7);
  const Digest d = Digest::Of(data);
  UniqueFd fd(::open((dir.path() + "/tmp").c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid()) << "O_TMPFILE: " << std::strerror(errno);
  ASSERT_EQ(::write(fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  auto adopted = store->Adopt(fd.get(), d, 8 << 20);
  ASSERT_TRUE(adopted.ok()) << adopted.status().message();
  struct stat upload {};
  struct stat blob {};
  ASSERT_EQ(::fstat(fd.get(), &upload), 0);
  ASSERT_EQ(::stat(store->Path(d).c_str(), &blob), 0);
  EXPECT_EQ(upload.st_ino, blob.st_ino) << "the upload was copied, not linked";
  EXPECT_EQ(blob.st_mode & 0777, 0444u);
  EXPECT_TRUE(store->Verify(d).ok());
  EXPECT_EQ(CountFiles(dir.path() + "/tmp"), 0u);
  auto listed = store->List();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<Digest>{d});
  ASSERT_TRUE(store->Remove(d).ok());
  EXPECT_FALSE(store->Has(d));
  EXPECT_TRUE(store->Remove(d).ok()) << "removing an absent blob is not an error";
}

TEST(BlobStore, AdoptOfWrongBytesOrAFileWithANameKeepsItsPromises) {
  TempDir dir("blob-store-test");
  auto store = BlobStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  const std::string data = RandomData(4096, 8);
  UniqueFd anon(::open((dir.path() + "/tmp").c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  ASSERT_TRUE(anon.valid());
  ASSERT_EQ(::write(anon.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  const Digest other = Digest::Of("other");
  auto wrong = store->Adopt(anon.get(), other, 1 << 20);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kDataLoss);
  ExpectMessageHas(wrong.status(), Digest::Of(data).str());
  EXPECT_FALSE(store->Has(other));
  EXPECT_EQ(CountFiles(dir.path() + "/tmp"), 0u);
  EXPECT_EQ(store->Adopt(anon.get(), Digest::Of(data), 100).status().code(),
            StatusCode::kInvalidArgument);  // over max_bytes
  // A file someone has a name for is copied, never linked.
  const std::string named = dir.path() + "/named";
  { std::ofstream(named, std::ios::binary) << data; }
  UniqueFd fd(::open(named.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  auto copied = store->Adopt(fd.get(), Digest::Of(data), 1 << 20);
  ASSERT_TRUE(copied.ok()) << copied.status().message();
  struct stat a {};
  struct stat b {};
  ASSERT_EQ(::stat(named.c_str(), &a), 0);
  ASSERT_EQ(::stat(store->Path(Digest::Of(data)).c_str(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);
  EXPECT_NE(a.st_mode & 0200, 0u) << "the caller's own file was changed";
}

}  // namespace
}  // namespace cce::image
