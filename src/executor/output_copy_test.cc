// CopyOutput against trees shaped like a hostile workload's /output: symlinks
// to host files, FIFOs, odd names, limits, and a symlink swapped in while the
// copy runs. Every test runs twice: with openat2 and with the O_NOFOLLOW
// fallback used where openat2 is missing.
#include "executor/output_copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "base/fd.h"
#include "crypto/crypto.h"

namespace cce::executor {
namespace {

namespace fs = std::filesystem;

constexpr char kSecret[] = "root:$6$TOP-SECRET-HOST-SHADOW-LINE";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Put(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// True if any file under `dir` contains `needle`.
bool TreeContains(const std::string& dir, const std::string& needle) {
  if (!fs::exists(dir)) return false;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && Slurp(e.path()).find(needle) != std::string::npos) return true;
  }
  return false;
}

bool HasSkip(const OutputManifest& m, const std::string& prefix) {
  for (const auto& s : m.skipped) {
    if (s.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

class OutputCopy : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cce-outcopy-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    src_ = base_ + "/src";
    dst_ = base_ + "/dst";
    secret_ = base_ + "/host/shadow";
    fs::create_directories(src_);
    Put(secret_, kSecret);
  }
  void TearDown() override {
    ::umount2((src_ + "/mnt").c_str(), MNT_DETACH);
    fs::remove_all(base_);
  }
  StatusOr<OutputManifest> Copy(const OutputLimits& limits = {}) {
    return internal::CopyOutputImpl(src_, dst_, limits, GetParam());
  }

  std::string base_, src_, dst_, secret_;
};

INSTANTIATE_TEST_SUITE_P(Resolve, OutputCopy, ::testing::Values(true, false),
                         [](const auto& p) { return p.param ? "openat2" : "nofollow"; });

TEST_P(OutputCopy, CopiesNestedTreeWithDigests) {
  Put(src_ + "/top.txt", "abc");
  Put(src_ + "/a/b/c.csv", "x,y\n1,2\n");
  Put(src_ + "/a/empty", "");
  fs::create_directories(src_ + "/a/emptydir");
  auto m = Copy();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->files.size(), 3u);
  EXPECT_EQ(m->files[0].path, "a/b/c.csv");
  EXPECT_EQ(m->files[1].path, "a/empty");
  EXPECT_EQ(m->files[2].path, "top.txt");
  // Known answers: SHA-256("abc") and SHA-256("").
  EXPECT_EQ(m->files[2].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(m->files[1].sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(m->files[0].size, 8u);
  EXPECT_EQ(m->total_bytes, 11u);
  EXPECT_TRUE(m->skipped.empty());
  EXPECT_EQ(Slurp(dst_ + "/a/b/c.csv"), "x,y\n1,2\n");
  EXPECT_TRUE(fs::is_directory(dst_ + "/a/emptydir"));
  EXPECT_FALSE(fs::exists(dst_ + ".partial"));
  struct stat st {};
  ASSERT_EQ(::stat((dst_ + "/top.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_P(OutputCopy, SymlinksToHostFilesAreNotFollowed) {
  fs::create_symlink(secret_, src_ + "/shadow");
  fs::create_symlink(fs::path(secret_).parent_path(), src_ + "/hostdir");
  fs::create_symlink("../host/shadow", src_ + "/relative");
  fs::create_symlink("/proc/self/root/" + secret_, src_ + "/magic");
  Put(src_ + "/ok.txt", "fine");
  // Control: the planted links really do reach the secret.
  ASSERT_EQ(Slurp(src_ + "/shadow"), kSecret);
  ASSERT_EQ(Slurp(src_ + "/relative"), kSecret);

  auto m = Copy();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_FALSE(TreeContains(dst_, kSecret)) << "host file bytes copied";
  EXPECT_EQ(m->files.size(), 1u);
  for (const char* n : {"shadow", "hostdir", "relative", "magic"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(dst_ + "/" + n))) << n;
    EXPECT_TRUE(HasSkip(*m, std::string(n) + ": symlink")) << n;
  }
}

TEST_P(OutputCopy, SpecialFilesAreSkippedWithoutBlocking) {
  ASSERT_EQ(::mkfifo((src_ + "/fifo").c_str(), 0644), 0);
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string sp = src_ + "/sock";
  std::memcpy(a.sun_path, sp.c_str(), sp.size() + 1);
  ASSERT_EQ(::bind(sock.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  Put(src_ + "/data", "d");
  ::alarm(20);  // a FIFO opened for reading without O_NONBLOCK would block forever
  auto m = Copy();
  ::alarm(0);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(HasSkip(*m, "fifo: fifo")) << ::testing::PrintToString(m->skipped);
  EXPECT_TRUE(HasSkip(*m, "sock: socket")) << ::testing::PrintToString(m->skipped);
  EXPECT_FALSE(fs::exists(fs::symlink_status(dst_ + "/fifo")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dst_ + "/sock")));
  EXPECT_EQ(Slurp(dst_ + "/data"), "d");
}

TEST_P(OutputCopy, DevicesAndMountPointsAreSkipped) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for mknod and mount (CI runs it as root)";
  ASSERT_EQ(::mknod((src_ + "/null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0);
  fs::create_directories(src_ + "/mnt");
  ASSERT_EQ(::mount("tmpfs", (src_ + "/mnt").c_str(), "tmpfs", 0, "size=1m"), 0);
  Put(src_ + "/mnt/other-fs", kSecret);
  auto m = Copy();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(HasSkip(*m, "null: character device")) << ::testing::PrintToString(m->skipped);
  EXPECT_TRUE(HasSkip(*m, "mnt: mount point")) << ::testing::PrintToString(m->skipped);
  EXPECT_FALSE(TreeContains(dst_, kSecret));
}

TEST_P(OutputCopy, HardLinkIsCopiedAsARegularFile) {
  // Acceptable by design (see output_copy.h): the workload can only link what it sees.
  ASSERT_EQ(::link(secret_.c_str(), (src_ + "/hl").c_str()), 0);
  auto m = Copy();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(Slurp(dst_ + "/hl"), kSecret);
}

TEST_P(OutputCopy, OddNamesAreSkippedAndJsonStaysValid) {
  Put(src_ + "/bad\nname", "x");
  Put(src_ + "/\xff\xfe", "x");
  Put(src_ + "/caf\xc3\xa9 \"q\".txt", "ok");
  auto m = Copy();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(HasSkip(*m, "bad\\x0aname: name is not UTF-8"))
      << ::testing::PrintToString(m->skipped);
  EXPECT_TRUE(HasSkip(*m, "\\xff\\xfe: name")) << ::testing::PrintToString(m->skipped);
  std::string json = ManifestToJson(*m);
  auto j = nlohmann::json::parse(json);  // throws on invalid JSON
  ASSERT_EQ(j["files"].size(), 1u);
  EXPECT_EQ(j["files"][0]["path"], "caf\xc3\xa9 \"q\".txt");
  EXPECT_EQ(j["files"][0]["size"], 2);
  EXPECT_EQ(j["total_bytes"], 2);
  EXPECT_EQ(j["skipped"].size(), 2u);
}

TEST_P(OutputCopy, ByteLimitFailsWholeAndLeavesNothing) {
  Put(src_ + "/a", std::string(40, 'a'));
  Put(src_ + "/b", std::string(40, 'b'));
  OutputLimits limits;
  limits.max_bytes = 60;
  auto m = Copy(limits);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(m.status().message().find("'b'"), std::string::npos) << m.status().ToString();
  EXPECT_FALSE(fs::exists(dst_));
  EXPECT_FALSE(fs::exists(dst_ + ".partial"));
  limits.max_bytes = 80;  // exactly at the limit is fine
  EXPECT_TRUE(Copy(limits).ok());
}

TEST_P(OutputCopy, CountDepthAndNameLimits) {
  for (int i = 0; i < 5; ++i) Put(src_ + "/f" + std::to_string(i), "x");
  OutputLimits few;
  few.max_files = 3;
  auto m = Copy(few);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(fs::exists(dst_));

  fs::remove_all(src_);
  Put(src_ + "/1/2/3/4/deep", "x");
  OutputLimits shallow;
  shallow.max_depth = 3;
  m = Copy(shallow);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(m.status().message().find("1/2/3/4"), std::string::npos) << m.status().ToString();
  shallow.max_depth = 4;
  EXPECT_TRUE(Copy(shallow).ok());

  fs::remove_all(src_);
  fs::remove_all(dst_);
  Put(src_ + "/" + std::string(20, 'n'), "x");
  OutputLimits short_names;
  short_names.max_name = 10;
  m = Copy(short_names);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
}

TEST_P(OutputCopy, DestinationRules) {
  Put(src_ + "/f", "x");
  fs::create_directories(dst_);
  auto m = Copy();
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kAlreadyExists);
  fs::remove_all(dst_);
  // A stale partial tree from a crash is replaced.
  Put(dst_ + ".partial/stale", "old");
  ASSERT_TRUE(Copy().ok());
  EXPECT_FALSE(fs::exists(dst_ + "/stale"));
  EXPECT_EQ(Slurp(dst_ + "/f"), "x");
  // The source itself must not be a symlink.
  fs::create_symlink(src_, base_ + "/srclink");
  auto viaLink = internal::CopyOutputImpl(base_ + "/srclink", base_ + "/d2", {}, GetParam());
  ASSERT_FALSE(viaLink.ok());
  EXPECT_EQ(viaLink.status().code(), StatusCode::kInvalidArgument);
}

// The workload (or a process that outlived it) swaps entries for symlinks to
// a host file and a host directory while the copy runs.
TEST_P(OutputCopy, SymlinkSwappedInDuringCopyIsNotFollowed) {
  constexpr int kFiles = 24;
  constexpr int kDirs = 8;
  std::string stage = base_ + "/stage";  // same filesystem, outside src
  std::string hostdir = fs::path(secret_).parent_path().string();
  Put(hostdir + "/inner", kSecret);
  for (int i = 0; i < kFiles; ++i) {
    Put(src_ + "/victim" + std::to_string(i), "harmless");
    fs::create_directories(stage);
    fs::create_symlink(secret_, stage + "/filelink" + std::to_string(i));
  }
  for (int i = 0; i < kDirs; ++i) {
    Put(src_ + "/victimdir" + std::to_string(i) + "/inner", "harmless");
    fs::create_symlink(hostdir, stage + "/dirlink" + std::to_string(i));
  }
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    // One atomic exchange per step: each entry is a regular file (directory)
    // half of the time and a symlink to the host the other half.
    auto swap = [](const std::string& a, const std::string& b) {
      ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE);
    };
    while (!stop.load()) {
      for (int i = 0; i < kFiles; ++i) {
        swap(src_ + "/victim" + std::to_string(i), stage + "/filelink" + std::to_string(i));
      }
      for (int i = 0; i < kDirs; ++i) {
        swap(src_ + "/victimdir" + std::to_string(i), stage + "/dirlink" + std::to_string(i));
      }
    }
  });
  int copies = 0;
  for (int round = 0; round < 300; ++round) {
    std::string dst = base_ + "/out" + std::to_string(round);
    auto m = internal::CopyOutputImpl(src_, dst, {}, GetParam());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ++copies;
    EXPECT_FALSE(TreeContains(dst, kSecret)) << "round " << round << ": host bytes copied";
    fs::remove_all(dst);
  }
  stop = true;
  flipper.join();
  EXPECT_EQ(copies, 300);
}

}  // namespace
}  // namespace cce::executor
