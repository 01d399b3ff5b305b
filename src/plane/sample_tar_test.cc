#include "plane/sample_tar.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "base/fd.h"
#include "plane/sample_tar_testing.h"

namespace cce::plane {
namespace {

using testing::MakeTar;
using testing::TarDir;
using testing::TarFile;
using testing::TarMember;

// The tar handed over in pieces of `piece` bytes, as a file would be read.
BundleTar::Source Pieces(std::string tar, size_t piece) {
  auto state = std::make_shared<std::pair<std::string, size_t>>(std::move(tar), 0);
  return [state, piece]() -> StatusOr<crypto::ByteSpan> {
    const size_t n = std::min(piece, state->first.size() - state->second);
    crypto::ByteSpan out(reinterpret_cast<const uint8_t*>(state->first.data()) + state->second, n);
    state->second += n;
    return out;
  };
}

class SampleTarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = ::testing::TempDir() + "sample_tar_XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    root_ = t;
    ASSERT_EQ(::mkdir((root_ + "/out").c_str(), 0700), 0);
    dir_ = UniqueFd(::open((root_ + "/out").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir_.valid());
  }
  void TearDown() override {
    dir_.reset();
    UniqueFd parent(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_TRUE(RemoveSampleTree(parent.get(), "out").ok());
    ::rmdir(root_.c_str());
  }
  // Unpacks into an emptied out/.
  StatusOr<UnpackedSample> Unpack(const std::vector<TarMember>& members, SampleLimits limits = {}) {
    Empty();
    return UnpackSampleTar(Pieces(MakeTar(members), 700), dir_.get(), "sample of 'claims'", limits);
  }
  void Empty() {
    dir_.reset();
    UniqueFd parent(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_TRUE(RemoveSampleTree(parent.get(), "out").ok());
    EXPECT_EQ(::mkdir((root_ + "/out").c_str(), 0700), 0);
    dir_ = UniqueFd(::open((root_ + "/out").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  bool Exists(const std::string& rel) {
    struct stat st {};
    return ::lstat((root_ + "/out/" + rel).c_str(), &st) == 0;
  }
  mode_t Mode(const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat((root_ + "/out/" + rel).c_str(), &st), 0) << rel;
    return st.st_mode & 07777;
  }

  std::string root_;
  UniqueFd dir_;
};

TEST_F(SampleTarTest, UnpacksFilesAndDirectoriesReadOnlyWithTheirDigests) {
  auto r =
      Unpack({TarDir("./"), TarDir("./tables/"), TarFile("./tables/people.csv", "id,age\n1,40\n"),
              TarFile("README.txt", "hello"), TarFile("deep/er/x.jsonl", "{}\n")});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->files.size(), 3u);
  EXPECT_EQ(r->files[0].path, "README.txt");  // sorted bytewise
  EXPECT_EQ(r->files[1].path, "deep/er/x.jsonl");
  EXPECT_EQ(r->files[2].path, "tables/people.csv");
  EXPECT_EQ(r->files[0].size, 5u);
  EXPECT_EQ(r->files[0].sha256,
            crypto::ToHex(crypto::Sha256(crypto::AsBytes(std::string("hello")))));
  EXPECT_EQ(r->total_bytes, 5u + 12u + 3u);
  EXPECT_EQ(r->files_digest, SampleFilesDigest(r->files));
  EXPECT_EQ(Mode("README.txt"), 0444);
  EXPECT_EQ(Mode("tables"), 0555);
  EXPECT_EQ(Mode("deep/er"), 0555);
  EXPECT_EQ(Mode("tables/people.csv"), 0444);
}

TEST(SampleFilesDigest, IsTheDocumentedListingHash) {
  // docs/explore/samples.md: "cce-sample-files-v1\n" then "<sha256> <size> <path>\n".
  std::vector<SampleFile> files = {{"a.csv", 3, std::string(64, 'a')},
                                   {"b/c", 0, std::string(64, 'b')}};
  const std::string text = "cce-sample-files-v1\n" + std::string(64, 'a') + " 3 a.csv\n" +
                           std::string(64, 'b') + " 0 b/c\n";
  EXPECT_EQ(SampleFilesDigest(files), crypto::Sha256(crypto::AsBytes(text)));
  files[0].size = 4;
  EXPECT_NE(SampleFilesDigest(files), crypto::Sha256(crypto::AsBytes(text)));
}

TEST_F(SampleTarTest, RefusesASymlinkNamingTheMember) {
  auto r = Unpack({TarFile("a.csv", "x"), {"link.csv", "/etc/shadow", TarMember::Kind::kSymlink}});
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'link.csv': a symbolic link"), std::string::npos)
      << r.status().message();
}

TEST_F(SampleTarTest, RefusesAHardLinkNamingTheMember) {
  auto r = Unpack({TarFile("a.csv", "x"), {"b.csv", "a.csv", TarMember::Kind::kHardlink}});
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'b.csv': a hard link"), std::string::npos)
      << r.status().message();
}

TEST_F(SampleTarTest, RefusesDevicesAndFifos) {
  auto dev = Unpack({{"null", "", TarMember::Kind::kCharDevice}});
  ASSERT_EQ(dev.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dev.status().message().find("'null': a device"), std::string::npos);
  auto fifo = Unpack({{"pipe", "", TarMember::Kind::kFifo}});
  ASSERT_EQ(fifo.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(fifo.status().message().find("'pipe'"), std::string::npos);
  EXPECT_FALSE(Exists("null"));
  EXPECT_FALSE(Exists("pipe"));
}

TEST_F(SampleTarTest, RefusesDotDotAndAbsoluteNamesBeforeWritingThem) {
  auto up = Unpack({TarFile("../escape.csv", "x")});
  ASSERT_EQ(up.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(up.status().message().find("'../escape.csv': a '..' part"), std::string::npos)
      << up.status().message();
  auto mid = Unpack({TarFile("a/../../escape.csv", "x")});
  EXPECT_EQ(mid.status().code(), StatusCode::kInvalidArgument);
  auto abs = Unpack({TarFile("/etc/cron.d/x", "x")});
  ASSERT_EQ(abs.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(abs.status().message().find("'/etc/cron.d/x': an absolute path"), std::string::npos)
      << abs.status().message();
  struct stat st {};
  EXPECT_NE(::lstat((root_ + "/escape.csv").c_str(), &st), 0);
}

TEST_F(SampleTarTest, RefusesLongNamesControlCharactersAndDuplicates) {
  auto long_name = Unpack({TarFile(std::string(256, 'n'), "x")});
  ASSERT_EQ(long_name.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(long_name.status().message().find("256 bytes"), std::string::npos);
  EXPECT_TRUE(SampleMemberPath(std::string(255, 'n')).ok());
  EXPECT_EQ(Unpack({TarFile("a\nb", "x")}).status().code(), StatusCode::kInvalidArgument);
  auto dup = Unpack({TarFile("a.csv", "x"), TarFile("a.csv", "y")});
  ASSERT_EQ(dup.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dup.status().message().find("duplicate"), std::string::npos);
}

TEST_F(SampleTarTest, RefusesAPathUnderAFile) {
  auto r = Unpack({TarFile("a", "x"), TarFile("a/b.csv", "y")});
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'a' is a file"), std::string::npos) << r.status().message();
}

TEST_F(SampleTarTest, EnforcesTheFileAndByteLimitsBeforeWriting) {
  SampleLimits few;
  few.max_files = 2;
  auto files = Unpack({TarFile("a", "1"), TarFile("b", "2"), TarFile("c", "3")}, few);
  ASSERT_EQ(files.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(files.status().message().find("'c': more than 2 files"), std::string::npos);
  EXPECT_FALSE(Exists("c"));
  SampleLimits small;
  small.max_bytes = 10;
  auto bytes = Unpack({TarFile("a", "123456"), TarFile("b", "123456")}, small);
  ASSERT_EQ(bytes.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(bytes.status().message().find("'b'"), std::string::npos);
  EXPECT_FALSE(Exists("b"));
  // Exactly at the limit is fine.
  EXPECT_TRUE(Unpack({TarFile("c", "1234567890")}, small).ok());
}

TEST_F(SampleTarTest, RefusesATruncatedOrMalformedTar) {
  std::string tar = MakeTar({TarFile("a.csv", std::string(5000, 'x'))});
  auto cut = UnpackSampleTar(Pieces(tar.substr(0, 2048), 512), dir_.get(), "sample", {});
  EXPECT_EQ(cut.status().code(), StatusCode::kInvalidArgument) << cut.status().message();
  auto junk = UnpackSampleTar(Pieces(std::string(4096, 'j'), 512), dir_.get(), "sample", {});
  EXPECT_EQ(junk.status().code(), StatusCode::kInvalidArgument) << junk.status().message();
}

TEST_F(SampleTarTest, RemoveSampleTreeRemovesReadOnlyTreesAndNeverFollowsLinks) {
  ASSERT_TRUE(Unpack({TarFile("d/e/f.csv", "x")}).ok());
  // A symlink planted in the tree (by hand) is removed, not followed.
  ASSERT_EQ(::mkdir((root_ + "/keep").c_str(), 0700), 0);
  ASSERT_EQ(::close(::open((root_ + "/keep/file").c_str(), O_CREAT | O_WRONLY, 0600)), 0);
  ASSERT_EQ(::chmod((root_ + "/out/d").c_str(), 0755), 0);
  ASSERT_EQ(::symlink((root_ + "/keep").c_str(), (root_ + "/out/d/link").c_str()), 0);
  EXPECT_TRUE(RemoveSampleTree(dir_.get(), "d").ok());
  EXPECT_FALSE(Exists("d"));
  struct stat st {};
  EXPECT_EQ(::lstat((root_ + "/keep/file").c_str(), &st), 0);
  EXPECT_TRUE(RemoveSampleTree(dir_.get(), "absent").ok());
  ::unlink((root_ + "/keep/file").c_str());
  ::rmdir((root_ + "/keep").c_str());
}

}  // namespace
}  // namespace cce::plane
