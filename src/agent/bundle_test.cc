#include "agent/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/fd.h"

namespace cce::agent {
namespace {

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cce-bundle-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(mkdir((dir_ + "/in").c_str(), 0755), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& rel, const std::string& data) {
    std::filesystem::create_directories(std::filesystem::path(dir_ + "/in/" + rel).parent_path());
    std::ofstream(dir_ + "/in/" + rel) << data;
  }

  // Packs in/ into a new file; returns its bytes (empty on error, *status set).
  std::string Pack(Status* status, const BundleLimits& limits = {}) {
    const std::string out = dir_ + "/out-" + std::to_string(++packs_) + ".tar";
    UniqueFd fd(open(out.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    auto packed = PackBundle(dir_ + "/in", fd.get(), limits, "result.json", "{}\n");
    *status = packed.status();
    if (!packed.ok()) return "";
    auto bytes = ReadFile(out, 1 << 20);
    EXPECT_TRUE(bytes.ok());
    EXPECT_EQ(bytes->size(), packed->size);
    return *bytes;
  }

  struct Entry {
    std::string path;
    int type = 0;
    int mode = 0;
    int64_t mtime = -1;
    std::string data;
  };
  static std::vector<Entry> Entries(const std::string& tar) {
    std::vector<Entry> out;
    archive* a = archive_read_new();
    archive_read_support_format_tar(a);
    EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
    archive_entry* e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      Entry x{archive_entry_pathname(e), static_cast<int>(archive_entry_filetype(e)),
              static_cast<int>(archive_entry_perm(e)), archive_entry_mtime(e), ""};
      x.data.resize(static_cast<size_t>(archive_entry_size(e)));
      if (!x.data.empty()) archive_read_data(a, x.data.data(), x.data.size());
      out.push_back(x);
    }
    archive_read_free(a);
    return out;
  }

  std::string dir_;
  int packs_ = 0;
};

TEST_F(BundleTest, PacksSortedDeterministicEntries) {
  Write("files/b.csv", "b\n");
  Write("files/a/deep.txt", "deep\n");
  Write("stdout.txt", "out\n");
  chmod((dir_ + "/in/files/b.csv").c_str(), 04755);  // modes are normalized
  Status s;
  const std::string first = Pack(&s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const std::string second = Pack(&s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(first, second) << "the same output must give the same bytes";
  auto entries = Entries(first);
  std::vector<std::string> paths;
  for (const auto& e : entries) {
    paths.push_back(e.path);
    EXPECT_EQ(e.mtime, 0) << e.path;
    EXPECT_EQ(e.mode, e.type == AE_IFDIR ? 0755 : 0644) << e.path;
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"result.json", "files/", "files/a/",
                                             "files/a/deep.txt", "files/b.csv", "stdout.txt"}));
  EXPECT_EQ(entries[0].data, "{}\n");
  EXPECT_EQ(entries[3].data, "deep\n");
}

TEST_F(BundleTest, RefusesSymlinksAndSpecialFiles) {
  Write("files/ok.txt", "ok\n");
  ASSERT_EQ(symlink("/etc/hostname", (dir_ + "/in/files/link").c_str()), 0);
  Status s;
  EXPECT_TRUE(Pack(&s).empty());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("files/link"), std::string::npos) << s.ToString();

  ASSERT_EQ(unlink((dir_ + "/in/files/link").c_str()), 0);
  ASSERT_EQ(mkfifo((dir_ + "/in/files/fifo").c_str(), 0644), 0);
  alarm(10);  // a FIFO must be refused, never opened and waited on
  EXPECT_TRUE(Pack(&s).empty());
  alarm(0);
  EXPECT_NE(s.message().find("files/fifo"), std::string::npos) << s.ToString();
}

TEST_F(BundleTest, LimitsAreErrors) {
  Write("files/big", std::string(4096, 'x'));
  Status s;
  BundleLimits small;
  small.max_bytes = 1000;
  EXPECT_TRUE(Pack(&s, small).empty());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  BundleLimits few;
  few.max_entries = 2;
  EXPECT_TRUE(Pack(&s, few).empty());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace cce::agent
