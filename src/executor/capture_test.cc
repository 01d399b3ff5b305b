#include "executor/capture.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace cce::executor {
namespace {

namespace fs = std::filesystem;

class Capture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cce-capture-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_;
};

TEST_F(Capture, KeepsAtMostTheCapAndCountsTheRest) {
  auto sink = CappedSink::Create(dir_ + "/stdout", 10);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  std::string a = "hello ", b = "world, and more";
  ASSERT_TRUE(sink->Write({reinterpret_cast<const uint8_t*>(a.data()), a.size()}).ok());
  EXPECT_FALSE(sink->truncated());
  ASSERT_TRUE(sink->Write({reinterpret_cast<const uint8_t*>(b.data()), b.size()}).ok());
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(Slurp(dir_ + "/stdout"), "hello worl");
  EXPECT_EQ(sink->written(), 10u);
  EXPECT_EQ(sink->total(), a.size() + b.size());
  EXPECT_TRUE(sink->truncated());
  EXPECT_FALSE(sink->Write({reinterpret_cast<const uint8_t*>(a.data()), a.size()}).ok());
}

TEST_F(Capture, DrainsAPipeToEofSoTheWriterNeverBlocks) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  constexpr size_t kTotal = 4 << 20;  // far more than a pipe buffer
  std::thread writer([fd = p[1]] {
    std::string chunk(65536, 'z');
    for (size_t done = 0; done < kTotal; done += chunk.size()) {
      if (::write(fd, chunk.data(), chunk.size()) < 0) break;
    }
    ::close(fd);
  });
  auto sink = CappedSink::Create(dir_ + "/stderr", 1000);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE(sink->Drain(p[0]).ok());
  writer.join();
  ::close(p[0]);
  EXPECT_EQ(sink->total(), kTotal);
  EXPECT_EQ(fs::file_size(dir_ + "/stderr"), 1000u);
}

TEST_F(Capture, RefusesExistingFilesAndSymlinks) {
  std::ofstream(dir_ + "/exists") << "x";
  auto again = CappedSink::Create(dir_ + "/exists", 10);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  fs::create_symlink(dir_ + "/target", dir_ + "/link");
  EXPECT_FALSE(CappedSink::Create(dir_ + "/link", 10).ok());
  EXPECT_FALSE(fs::exists(dir_ + "/target"));
}

}  // namespace
}  // namespace cce::executor
