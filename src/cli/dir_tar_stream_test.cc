// The CLI's streamed tar of a sample directory is what the plane's unpacker
// (plane/sample_tar.h) accepts, byte for byte, whatever the read sizes.
#include "cli/dir_tar_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "plane/sample_tar.h"

namespace cce::cli {
namespace {

namespace fs = std::filesystem;

class DirTarStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = ::testing::TempDir() + "dir_tar_XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    root_ = t;
    fs::create_directories(root_ + "/in/tables/nested");
    fs::create_directories(root_ + "/in/empty");
    Write("in/a.csv", "id,x\n1,2\n");
    Write("in/tables/people.jsonl", std::string(70000, 'p'));                    // several pieces
    Write("in/tables/nested/" + std::string(120, 'n') + ".csv", "long name\n");  // pax path
    Write("in/zero.bin", "");
  }
  void TearDown() override {
    std::error_code ec;
    for (auto& e : fs::recursive_directory_iterator(root_, ec)) {
      fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(root_, ec);
  }
  void Write(const std::string& rel, const std::string& bytes) {
    std::ofstream(root_ + "/" + rel, std::ios::binary) << bytes;
  }
  // The whole stream, read `piece` bytes at a time.
  static std::string Drain(DirTarStream& s, size_t piece) {
    std::string out;
    std::vector<uint8_t> buf(piece);
    for (;;) {
      auto n = s.Read(buf);
      EXPECT_TRUE(n.ok()) << n.status().message();
      if (!n.ok() || *n == 0) return out;
      out.append(reinterpret_cast<const char*>(buf.data()), *n);
    }
  }
  std::string root_;
};

TEST_F(DirTarStreamTest, ThePlaneUnpacksWhatItStreams) {
  for (size_t piece : {size_t{1}, size_t{511}, size_t{4096}, size_t{1} << 20}) {
    SCOPED_TRACE(piece);
    auto s = DirTarStream::Open(root_ + "/in");
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->file_count(), 4u);
    EXPECT_EQ(s->total_file_bytes(), 9u + 70000u + 10u);
    const std::string tar = Drain(*s, piece);
    EXPECT_EQ(tar.size() % 512, 0u);
    EXPECT_EQ(s->file_bytes_sent(), s->total_file_bytes());
    const std::string out = root_ + "/out" + std::to_string(piece);
    ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
    UniqueFd fd(::open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    bool given = false;
    auto unpacked = plane::UnpackSampleTar(
        [&]() -> StatusOr<crypto::ByteSpan> {
          if (given) return crypto::ByteSpan();
          given = true;
          return crypto::AsBytes(tar);
        },
        fd.get(), "sample", {});
    ASSERT_TRUE(unpacked.ok()) << unpacked.status().message();
    ASSERT_EQ(unpacked->files.size(), 4u);
    EXPECT_EQ(unpacked->files[0].path, "a.csv");
    EXPECT_EQ(unpacked->files[1].path, "tables/nested/" + std::string(120, 'n') + ".csv");
    EXPECT_EQ(unpacked->files[2].path, "tables/people.jsonl");
    EXPECT_EQ(unpacked->files[2].sha256,
              crypto::ToHex(crypto::Sha256(crypto::AsBytes(std::string(70000, 'p')))));
    EXPECT_EQ(unpacked->files[3].path, "zero.bin");
    EXPECT_TRUE(fs::is_directory(out + "/empty"));
  }
}

TEST_F(DirTarStreamTest, TheSameTreeGivesTheSameBytes) {
  auto a = DirTarStream::Open(root_ + "/in");
  auto b = DirTarStream::Open(root_ + "/in");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(Drain(*a, 1000), Drain(*b, 333));
}

TEST_F(DirTarStreamTest, RefusesASymlinkOrFifoNamingIt) {
  ASSERT_EQ(::symlink("/etc/passwd", (root_ + "/in/tables/link").c_str()), 0);
  auto s = DirTarStream::Open(root_ + "/in");
  ASSERT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("tables/link: a symbolic link"), std::string::npos)
      << s.status().message();
  ASSERT_EQ(::unlink((root_ + "/in/tables/link").c_str()), 0);
  ASSERT_EQ(::mkfifo((root_ + "/in/pipe").c_str(), 0600), 0);
  EXPECT_EQ(DirTarStream::Open(root_ + "/in").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(DirTarStreamTest, AFileThatChangesWhileSendingIsAnError) {
  auto s = DirTarStream::Open(root_ + "/in");
  ASSERT_TRUE(s.ok());
  Write("in/zero.bin", "grown");
  std::vector<uint8_t> buf(1 << 20);
  Status last = Status::Ok();
  for (;;) {
    auto n = s->Read(buf);
    if (!n.ok()) {
      last = n.status();
      break;
    }
    if (*n == 0) break;
  }
  EXPECT_EQ(last.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(last.message().find("zero.bin: changed"), std::string::npos) << last.message();
}

}  // namespace
}  // namespace cce::cli
