// OutputStore: outputs sealed segment by segment, read back a segment at a
// time, with every way a stored file can be damaged or moved detected.
#include "plane/output_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "format/format.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;

constexpr size_t kBlock = 4096;         // the format's segment size (format v2)
constexpr size_t kSegment = 64 * 1024;  // the store's run of 16 segments, read at once
constexpr char kJob[] = "job-0123456789abcdef";

std::string Pattern(size_t n, uint8_t seed = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) % 251);
  return s;
}

std::string Digest(const std::string& s) {
  return "sha256:" + crypto::ToHex(crypto::Sha256(crypto::AsBytes(s)));
}

class OutputStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cce-output-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(CreateFileMasterKey(dir_ + "/master.key").ok());
    auto mk = LoadFileMasterKey(dir_ + "/master.key");
    ASSERT_TRUE(mk.ok()) << mk.status().message();
    mk_ = std::move(*mk);
    auto store = OutputStore::Open(dir_ + "/outputs", *mk_);
    ASSERT_TRUE(store.ok());
    store_.emplace(std::move(*store));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string PathOf(const std::string& job) { return dir_ + "/outputs/" + job + ".sealed"; }
  std::string ReadRaw(const std::string& job) {
    std::ifstream in(PathOf(job), std::ios::binary);
    return {(std::istreambuf_iterator<char>(in)), {}};
  }
  void WriteRaw(const std::string& job, const std::string& bytes) {
    std::ofstream(PathOf(job), std::ios::binary | std::ios::trunc) << bytes;
  }
  // Where the segments start: magic, key length, sealed key, format header.
  static size_t SegmentsStart(const std::string& raw) {
    size_t wrapped = (static_cast<uint8_t>(raw[8]) << 8) | static_cast<uint8_t>(raw[9]);
    return 10 + wrapped + format::kHeaderSize;
  }
  // Reads the whole output through the reader; the first error is returned.
  StatusOr<std::string> ReadAllOf(const std::string& job, const std::string& digest) {
    ASSIGN_OR_RETURN(std::unique_ptr<OutputReader> r, store_->Open(job, digest));
    std::string out;
    for (;;) {
      ASSIGN_OR_RETURN(crypto::ByteSpan piece, r->Next());
      if (piece.empty()) break;
      EXPECT_LE(piece.size(), kSegment);
      out.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<MasterKey> mk_;
  std::optional<OutputStore> store_;
};

TEST_F(OutputStoreTest, RoundTripsAcrossSegmentBoundariesWithTheDigestOfThePlaintext) {
  for (size_t n : {size_t{0}, size_t{1}, kBlock - 1, kBlock, kBlock + 1, kSegment - 1, kSegment,
                   3 * kSegment + 7}) {
    std::string data = Pattern(n);
    size_t at = 0;
    auto stored = store_->Put(kJob, n, [&](std::span<uint8_t> out) {
      std::memcpy(out.data(), data.data() + at, out.size());
      at += out.size();
      return Status::Ok();
    });
    ASSERT_TRUE(stored.ok()) << stored.status().message();
    EXPECT_EQ(stored->blob_ref, std::string("outputs/") + kJob + ".sealed");
    EXPECT_EQ(stored->size, n);
    EXPECT_EQ(stored->digest, Digest(data));
    auto back = ReadAllOf(kJob, stored->digest);
    ASSERT_TRUE(back.ok()) << n << ": " << back.status().message();
    EXPECT_TRUE(*back == data) << n;
    // No plaintext at rest, and no temporary file left over.
    if (n > 64) {
      EXPECT_EQ(ReadRaw(kJob).find(data.substr(0, 64)), std::string::npos);
    }
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir_ + "/outputs")) files += e.is_regular_file();
    EXPECT_EQ(files, 1u);
  }
}

TEST_F(OutputStoreTest, FailingSourceLeavesNoFile) {
  auto stored = store_->Put(kJob, 2 * kSegment + 1, [n = 0](std::span<uint8_t>) mutable {
    return ++n == 2 ? Internal("generator broke") : Status::Ok();
  });
  EXPECT_FALSE(stored.ok());
  EXPECT_TRUE(fs::is_empty(dir_ + "/outputs"));
}

TEST_F(OutputStoreTest, TruncatedOrExtendedFilesAreDataLossBeforeAnyByte) {
  std::string data = Pattern(3 * kSegment + 100);
  ASSERT_TRUE(store_->Put(kJob, crypto::AsBytes(data)).ok());
  const std::string raw = ReadRaw(kJob);
  // The whole last segment gone (a cut at a segment boundary), a partial
  // cut, and extra bytes at the end.
  for (const std::string& damaged : {raw.substr(0, raw.size() - 100 - format::kTagSize),
                                     raw.substr(0, raw.size() - 1), raw + "x"}) {
    WriteRaw(kJob, damaged);
    auto r = store_->Open(kJob, Digest(data));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().message();
  }
}

TEST_F(OutputStoreTest, SwappedOrAlteredSegmentsAreDataLossNamingTheSegment) {
  std::string data = Pattern(3 * kSegment + 100);
  ASSERT_TRUE(store_->Put(kJob, crypto::AsBytes(data)).ok());
  const std::string raw = ReadRaw(kJob);
  const size_t start = SegmentsStart(raw);
  const size_t seg = kBlock + format::kTagSize;
  std::string swapped = raw;
  std::copy_n(raw.begin() + static_cast<std::ptrdiff_t>(start + seg), seg,
              swapped.begin() + static_cast<std::ptrdiff_t>(start + 2 * seg));
  std::copy_n(raw.begin() + static_cast<std::ptrdiff_t>(start + 2 * seg), seg,
              swapped.begin() + static_cast<std::ptrdiff_t>(start + seg));
  WriteRaw(kJob, swapped);
  auto r = ReadAllOf(kJob, Digest(data));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("segment 1"), std::string::npos) << r.status().message();

  std::string flipped = raw;
  flipped[start + 2 * seg + 5] = static_cast<char>(flipped[start + 2 * seg + 5] ^ 1);
  WriteRaw(kJob, flipped);
  r = ReadAllOf(kJob, Digest(data));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
}

TEST_F(OutputStoreTest, AFileMovedToAnotherJobDoesNotOpen) {
  std::string data = Pattern(100);
  ASSERT_TRUE(store_->Put(kJob, crypto::AsBytes(data)).ok());
  const std::string other = "job-fedcba9876543210";
  fs::rename(PathOf(kJob), PathOf(other));
  auto r = store_->Open(other, "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().message();
}

TEST_F(OutputStoreTest, DigestMismatchWithholdsTheLastSegment) {
  std::string data = Pattern(2 * kSegment + 10);
  ASSERT_TRUE(store_->Put(kJob, crypto::AsBytes(data)).ok());
  auto r = store_->Open(kJob, Digest("something else"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto first = (*r)->Next();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), kSegment);
  auto second = (*r)->Next();
  ASSERT_TRUE(second.ok());
  auto last = (*r)->Next();
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(last.status().message().find("recorded digest"), std::string::npos);
  // With the right digest (or none) it reads to the end.
  EXPECT_TRUE(ReadAllOf(kJob, Digest(data)).ok());
  EXPECT_TRUE(ReadAllOf(kJob, "").ok());
}

TEST_F(OutputStoreTest, TheUnsegmentedFormatOfEarlierBuildsIsAClearError) {
  // What earlier builds wrote: the master key's Seal of the whole bundle.
  auto sealed =
      mk_->Seal(crypto::AsBytes(std::string("old output")), std::string("output:") + kJob);
  ASSERT_TRUE(sealed.ok());
  WriteRaw(kJob, std::string(sealed->begin(), sealed->end()));
  auto r = store_->Open(kJob, "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("earlier plane builds"), std::string::npos)
      << r.status().message();
}

TEST_F(OutputStoreTest, JobIdsMustBePlainNames) {
  for (const char* bad : {"", "../x", "a/b", "job.x"}) {
    EXPECT_EQ(store_->Put(bad, crypto::AsBytes(std::string("x"))).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Open(bad, "").status().code(), StatusCode::kInvalidArgument);
  }
}

// ---- OutputWriter (push-style, for uploads) ----------------------------------

bool NoPartialFiles(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".partial-") != std::string::npos) return false;
  }
  return true;
}

TEST_F(OutputStoreTest, WriterTakesOddPiecesAcrossSegmentsAndReadsBack) {
  const std::string data = Pattern(3 * kSegment + 1234, 7);
  auto w = store_->Create(kJob, data.size());
  ASSERT_TRUE(w.ok()) << w.status().message();
  // Pieces that straddle segment boundaries in every way, including empty ones.
  size_t at = 0;
  size_t step = 1;
  while (at < data.size()) {
    const size_t n = std::min(step, data.size() - at);
    ASSERT_TRUE((*w)->Write(crypto::AsBytes(std::string_view(data).substr(at, n))).ok());
    ASSERT_TRUE((*w)->Write({}).ok());
    at += n;
    step = step * 3 + 17;
  }
  EXPECT_EQ((*w)->written(), data.size());
  auto stored = (*w)->Finish();
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  EXPECT_EQ(stored->size, data.size());
  EXPECT_EQ(stored->digest, Digest(data));
  EXPECT_EQ(stored->blob_ref, std::string("outputs/") + kJob + ".sealed");
  auto back = ReadAllOf(kJob, Digest(data));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(*back == data);
}

TEST_F(OutputStoreTest, WriterOfEmptyAndExactSegmentOutputs) {
  for (size_t n : {size_t{0}, kSegment, 2 * kSegment}) {
    const std::string data = Pattern(n, 3);
    auto w = store_->Create(kJob, n);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(crypto::AsBytes(data)).ok());
    auto stored = (*w)->Finish();
    ASSERT_TRUE(stored.ok()) << n << ": " << stored.status().message();
    auto back = ReadAllOf(kJob, stored->digest);
    ASSERT_TRUE(back.ok()) << n << ": " << back.status().message();
    EXPECT_EQ(back->size(), n);
  }
}

TEST_F(OutputStoreTest, WriterRefusesTooManyOrTooFewBytesAndLeavesNothing) {
  {
    auto w = store_->Create(kJob, 10);
    ASSERT_TRUE(w.ok());
    auto over = (*w)->Write(crypto::AsBytes(Pattern(11)));
    EXPECT_EQ(over.code(), StatusCode::kInvalidArgument);
    // Dead after an error, even for a write that would fit.
    EXPECT_FALSE((*w)->Write(crypto::AsBytes(Pattern(1))).ok());
    EXPECT_FALSE((*w)->Finish().ok());
  }
  {
    auto w = store_->Create(kJob, 10);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(crypto::AsBytes(Pattern(9))).ok());
    auto short_finish = (*w)->Finish();
    ASSERT_FALSE(short_finish.ok());
    EXPECT_NE(short_finish.status().message().find("9 bytes received, 10 announced"),
              std::string::npos)
        << short_finish.status().message();
  }
  EXPECT_FALSE(fs::exists(PathOf(kJob)));
  EXPECT_TRUE(NoPartialFiles(dir_ + "/outputs"));
}

TEST_F(OutputStoreTest, AbandonedWriterLeavesNothingAndKeepsAnEarlierOutput) {
  ASSERT_TRUE(store_->Put(kJob, crypto::AsBytes(std::string("earlier"))).ok());
  {
    auto w = store_->Create(kJob, 5 * kSegment);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(crypto::AsBytes(Pattern(2 * kSegment + 5))).ok());
    EXPECT_FALSE(NoPartialFiles(dir_ + "/outputs"));  // it is being written
  }                                                   // abandoned
  EXPECT_TRUE(NoPartialFiles(dir_ + "/outputs"));
  auto back = ReadAllOf(kJob, "");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "earlier");
}

TEST_F(OutputStoreTest, WriterRefusesADigestOtherThanTheExpectedOneAndStoresNothing) {
  const std::string data = Pattern(kSegment + 10, 1);
  auto w = store_->Create(kJob, data.size());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write(crypto::AsBytes(data)).ok());
  auto r = (*w)->Finish(Digest(data + "x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not the announced"), std::string::npos);
  EXPECT_FALSE(fs::exists(PathOf(kJob)));
  EXPECT_TRUE(NoPartialFiles(dir_ + "/outputs"));
  // The right digest is accepted.
  auto w2 = store_->Create(kJob, data.size());
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE((*w2)->Write(crypto::AsBytes(data)).ok());
  EXPECT_TRUE((*w2)->Finish(Digest(data)).ok());
}

}  // namespace
}  // namespace cce::plane
