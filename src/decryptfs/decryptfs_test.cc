// End-to-end tests of build/bin/cce-decryptfs: real FUSE mounts of real
// encrypted datasets on temp dirs. They need root and /dev/fuse (this
// machine and CI); without /dev/fuse they fail, loudly, rather than skip.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/temp_dir_testing.h"
#include "format/format.h"

namespace cce {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kBinary = std::string(CCE_BIN_DIR) + "/cce-decryptfs";
constexpr uint32_t kSeg = format::kBlockSize;

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteWholeFile(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  for (; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x01);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

bool IsMounted(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string dev, point;
    fields >> dev >> point;
    if (point == mountpoint) return true;
  }
  return false;
}

using ::cce::testing::TempDir;

// Reads a whole file through the mount; returns errno of the first failure.
int ReadErrno(const std::string& path, std::string* out) {
  out->clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[1 << 16];
  int err = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return err;
}

struct Result {
  int exit_code = -1;  // 128 + signal if killed
  std::string err;
};

// One cce-decryptfs process: spawned with the key on a pipe (fd 3) or a key
// file, stderr captured to a file. The destructor unmounts and reaps it,
// whatever happened in the test.
class DecryptFsProcess {
 public:
  struct Args {
    std::string enc, mnt;
    const format::DatasetKey* key = nullptr;  // passed through a pipe as --key-fd 3
    std::string key_file;                     // or --key-file
    bool foreground = true;
    std::vector<std::string> extra;
  };

  explicit DecryptFsProcess(Args a) : args_(std::move(a)) {
    err_path_ = args_.mnt + ".stderr";
    std::vector<std::string> argv = {kBinary};
    if (args_.key != nullptr) {
      argv.insert(argv.end(), {"--key-fd", "3"});
    } else {
      argv.insert(argv.end(), {"--key-file", args_.key_file});
    }
    if (args_.foreground) argv.push_back("--foreground");
    argv.insert(argv.end(), args_.extra.begin(), args_.extra.end());
    argv.insert(argv.end(), {args_.enc, args_.mnt});

    int pipefd[2] = {-1, -1};
    if (args_.key != nullptr) {
      if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
      crypto::SecretBytes contents = args_.key->EncodeKeyFile();
      if (::write(pipefd[1], contents.data(), contents.size()) !=
          static_cast<ssize_t>(contents.size())) {
        throw std::runtime_error("write key to pipe");
      }
      ::close(pipefd[1]);
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(err, STDERR_FILENO);
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, STDIN_FILENO);
      ::dup2(null, STDOUT_FILENO);
      if (pipefd[0] == 3) {
        ::fcntl(3, F_SETFD, 0);  // dup2 onto itself would keep O_CLOEXEC
      } else if (pipefd[0] >= 0) {
        ::dup2(pipefd[0], 3);  // the copy does not inherit O_CLOEXEC
      }
      std::vector<char*> cargv;
      for (auto& s : argv) cargv.push_back(s.data());
      cargv.push_back(nullptr);
      char* empty_env[] = {nullptr};
      ::execve(cargv[0], cargv.data(), empty_env);
      ::_exit(127);
    }
    if (pipefd[0] >= 0) ::close(pipefd[0]);
  }

  ~DecryptFsProcess() {
    if (IsMounted(args_.mnt)) ::umount2(args_.mnt.c_str(), MNT_DETACH);
    if (IsMounted(args_.mnt)) {
      std::string cmd = "fusermount3 -u -z '" + args_.mnt + "' 2>/dev/null";
      int ignored = std::system(cmd.c_str());
      (void)ignored;
    }
    if (!exited_ && pid_ > 0) {
      if (!WaitExit(5s)) {
        ::kill(pid_, SIGKILL);
        WaitExit(5s);
      }
    }
    // Sanitizer builds: any report from the server fails the test.
    std::string err = stderr_text();
    if (err.find("Sanitizer") != std::string::npos) ADD_FAILURE() << "cce-decryptfs: " << err;
  }

  pid_t pid() const { return pid_; }

  // Waits until the mount appears; false if the process exited first (or
  // took longer than 20 s).
  bool WaitMounted() {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (IsMounted(args_.mnt)) return true;
      if (!exited_ && args_.foreground && Reap(false)) return IsMounted(args_.mnt);
      if (!args_.foreground && !exited_ && Reap(false)) return IsMounted(args_.mnt);
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  // Waits for the process to exit; false on timeout.
  bool WaitExit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!exited_ && std::chrono::steady_clock::now() < deadline) {
      if (Reap(false)) break;
      std::this_thread::sleep_for(10ms);
    }
    return exited_;
  }

  Result result() const {
    Result r;
    r.exit_code = exit_code_;
    r.err = ReadWholeFile(err_path_);
    return r;
  }
  std::string stderr_text() const { return ReadWholeFile(err_path_); }
  bool exited() const { return exited_; }

 private:
  bool Reap(bool block) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r != pid_) return false;
    exited_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  Args args_;
  std::string err_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

// Runs the binary to completion (for usage errors and refused mounts).
Result RunToExit(const std::vector<std::string>& args, const std::string& err_path,
                 std::string* out_text = nullptr) {
  std::string out_path = err_path + ".out";
  pid_t pid = ::fork();
  if (pid == 0) {
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(err, STDERR_FILENO);
    ::dup2(out, STDOUT_FILENO);
    std::vector<std::string> argv = {kBinary};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& s : argv) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = ReadWholeFile(err_path);
  if (out_text != nullptr) *out_text = ReadWholeFile(out_path);
  return r;
}

// A plaintext tree with the sizes that matter around segment boundaries,
// deep paths and non-ASCII names, and its encryption.
class DecryptFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // No silent skip: a missing /dev/fuse is a failure with a clear cause.
    ASSERT_EQ(::access("/dev/fuse", R_OK | W_OK), 0)
        << "/dev/fuse is missing or not accessible (" << std::strerror(errno)
        << "): the DecryptFS tests need FUSE; run them as root on a machine with /dev/fuse";
    ASSERT_EQ(::access(kBinary.c_str(), X_OK), 0) << kBinary << " is not built";
    auto key = format::DatasetKey::Generate();
    ASSERT_TRUE(key.ok());
    key_.emplace(std::move(*key));
    plain_dir_ = tmp_.path() + "/plain";
    const std::vector<std::pair<std::string, size_t>> files = {
        {"empty.bin", 0},
        {"one.bin", 1},
        {"seg-minus-1.bin", kSeg - 1},
        {"seg.bin", kSeg},
        {"seg-plus-1.bin", kSeg + 1},
        {"big.bin", 5 * (size_t{1} << 20) + 4321},
        {"a/b/c/d/e/f/g/h/deep.txt", 777},
        {"données/日本語 ファイル.csv", 3 * kSeg + 17},
        {"emoji 😀 dir/naïve résumé.txt", 4096},
        {"dir with spaces/file with spaces", 12345},
    };
    for (const auto& [path, size] : files) {
      plain_[path] = RandomBytes(size, std::hash<std::string>{}(path));
      WriteWholeFile(plain_dir_ + "/" + path, plain_[path]);
    }
    fs::create_directories(plain_dir_ + "/empty dir");
    ::chmod((plain_dir_ + "/one.bin").c_str(), 0640);
    enc_ = tmp_.path() + "/enc";
    format::EncryptOptions eo;
    eo.threads = 2;
    auto s = format::EncryptDataset(plain_dir_, enc_, *key_, eo);
    ASSERT_TRUE(s.ok()) << s.status().message();
    auto m = format::ReadManifest(enc_, *key_);
    ASSERT_TRUE(m.ok()) << m.status().message();
    manifest_ = std::move(*m);
    mnt_ = tmp_.path() + "/mnt";
    fs::create_directories(mnt_);
  }

  std::string ObjectOf(const std::string& path) {
    for (const auto& e : manifest_.entries) {
      if (e.path == path) return format::ObjectPath(enc_, e.id);
    }
    ADD_FAILURE() << "no manifest entry " << path;
    return "";
  }

  std::unique_ptr<DecryptFsProcess> Mount(std::vector<std::string> extra = {},
                                          bool foreground = true) {
    DecryptFsProcess::Args a;
    a.enc = enc_;
    a.mnt = mnt_;
    a.key = &*key_;
    a.foreground = foreground;
    a.extra = std::move(extra);
    return std::make_unique<DecryptFsProcess>(std::move(a));
  }

  TempDir tmp_{"decryptfs-test"};
  std::optional<format::DatasetKey> key_;
  std::string plain_dir_, enc_, mnt_;
  format::Manifest manifest_;
  std::map<std::string, std::string> plain_;
};

TEST_F(DecryptFsTest, EveryFileReadsBackIdenticalWithItsAttributes) {
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  for (const auto& [path, data] : plain_) {
    std::string got;
    ASSERT_EQ(ReadErrno(mnt_ + "/" + path, &got), 0) << path;
    EXPECT_TRUE(got == data) << path << ": " << got.size() << " bytes, expected " << data.size();
    struct stat st {};
    ASSERT_EQ(::stat((mnt_ + "/" + path).c_str(), &st), 0) << path;
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(static_cast<size_t>(st.st_size), data.size());
    EXPECT_EQ(st.st_mode & 0222, 0u) << path << ": write bits shown";
    EXPECT_EQ(st.st_uid, ::getuid());
    EXPECT_EQ(st.st_gid, ::getgid());
    EXPECT_EQ(st.st_nlink, 1u);
  }
  struct stat st {};
  ASSERT_EQ(::stat((mnt_ + "/one.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0440u);

  // The directory tree matches, names included.
  std::set<std::string> want, got;
  for (const auto& e : fs::recursive_directory_iterator(plain_dir_)) {
    want.insert(fs::relative(e.path(), plain_dir_).string() + (e.is_directory() ? "/" : ""));
  }
  for (const auto& e : fs::recursive_directory_iterator(mnt_)) {
    got.insert(fs::relative(e.path(), mnt_).string() + (e.is_directory() ? "/" : ""));
  }
  EXPECT_EQ(got, want);
  ASSERT_EQ(::stat((mnt_ + "/a").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_nlink, 3u);
  EXPECT_EQ(::stat((mnt_ + "/nonexistent").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);

  // Mount options and file system type.
  std::ifstream mounts("/proc/self/mounts");
  std::string line, found;
  while (std::getline(mounts, line)) {
    if (line.find(" " + mnt_ + " ") != std::string::npos) found = line;
  }
  EXPECT_NE(found.find("cce-decryptfs " + mnt_ + " fuse.cce ro,"), std::string::npos) << found;
  EXPECT_NE(found.find("nosuid"), std::string::npos) << found;
  EXPECT_NE(found.find("nodev"), std::string::npos) << found;
  EXPECT_NE(found.find("default_permissions"), std::string::npos) << found;
}

TEST_F(DecryptFsTest, RandomPreadsMatchPlaintext) {
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  std::map<std::string, int> fds;
  for (const auto& [path, data] : plain_) {
    int fd = ::open((mnt_ + "/" + path).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    fds[path] = fd;
  }
  std::mt19937_64 rng(42);
  std::vector<std::string> names;
  for (const auto& [path, data] : plain_) names.push_back(path);
  std::string buf;
  int checked = 0;
  for (int i = 0; i < 1500; ++i) {
    const std::string& path = names[rng() % names.size()];
    const std::string& data = plain_[path];
    uint64_t off = data.empty() ? 0 : rng() % (data.size() + 100);
    size_t len = rng() % 3 == 0 ? rng() % (3 * kSeg) + 1 : rng() % 5000 + 1;
    buf.assign(len, '\0');
    ssize_t n = ::pread(fds[path], buf.data(), len, static_cast<off_t>(off));
    ASSERT_GE(n, 0) << path << " off " << off << ": " << std::strerror(errno);
    std::string want = off >= data.size() ? "" : data.substr(off, len);
    ASSERT_EQ(static_cast<size_t>(n), want.size()) << path << " off " << off << " len " << len;
    ASSERT_TRUE(buf.compare(0, want.size(), want) == 0) << path << " off " << off;
    ++checked;
  }
  for (auto& [path, fd] : fds) ::close(fd);
  EXPECT_EQ(checked, 1500);
}

TEST_F(DecryptFsTest, EightConcurrentReadersSeeCorrectBytes) {
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  const std::string& big = plain_["big.bin"];
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) + 100);
      int fd = ::open((mnt_ + "/big.bin").c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        ++failures;
        return;
      }
      std::string buf;
      for (int i = 0; i < 300; ++i) {
        uint64_t off = rng() % big.size();
        size_t len = rng() % (2 * kSeg) + 1;
        buf.assign(len, '\0');
        ssize_t n = ::pread(fd, buf.data(), len, static_cast<off_t>(off));
        size_t want = std::min<size_t>(len, big.size() - off);
        if (n != static_cast<ssize_t>(want) || buf.compare(0, want, big, off, want) != 0) {
          ++failures;
        }
      }
      ::close(fd);
      // And every other file whole.
      for (const auto& [path, data] : plain_) {
        std::string got;
        if (ReadErrno(mnt_ + "/" + path, &got) != 0 || got != data) ++failures;
      }
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(DecryptFsTest, TamperedSegmentReadsAsEioWhileOtherSegmentsStayReadable) {
  // Tamper before mounting: nothing of the file is in any cache.
  const std::string& big = plain_["big.bin"];
  format::Geometry g{kSeg, big.size()};
  FlipByte(ObjectOf("big.bin"), g.SegmentOffset(20) + 1234);
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  int fd = ::open((mnt_ + "/big.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::string buf(kSeg, '\0');
  // Inside the bad segment, and a range straddling into it.
  errno = 0;
  EXPECT_EQ(::pread(fd, buf.data(), 100, 20 * kSeg + 50), -1);
  EXPECT_EQ(errno, EIO);
  // Straddling into it: the kernel may return the good bytes before the bad
  // segment (a short read), then the error; never a byte of segment 20.
  errno = 0;
  ssize_t straddle = ::pread(fd, buf.data(), kSeg, 20 * kSeg - 10);
  if (straddle >= 0) {
    EXPECT_LE(straddle, 10);
    EXPECT_TRUE(buf.compare(0, static_cast<size_t>(straddle), big, 20 * kSeg - 10,
                            static_cast<size_t>(straddle)) == 0);
    errno = 0;
    EXPECT_EQ(::pread(fd, buf.data(), kSeg, 20 * kSeg - 10 + straddle), -1);
  }
  EXPECT_EQ(errno, EIO);
  // Every other segment of the same file reads correctly, before and after.
  for (uint64_t s = 0; s < g.SegmentCount(); ++s) {
    if (s == 20) continue;
    size_t n = g.PlainSegmentSize(s);
    ssize_t got = ::pread(fd, buf.data(), n, static_cast<off_t>(s * kSeg));
    ASSERT_EQ(got, static_cast<ssize_t>(n)) << "segment " << s << ": " << std::strerror(errno);
    ASSERT_TRUE(buf.compare(0, n, big, s * kSeg, n) == 0) << "segment " << s;
  }
  ::close(fd);
  // Reading the whole file fails with EIO, after a correct prefix only.
  std::string got;
  EXPECT_EQ(ReadErrno(mnt_ + "/big.bin", &got), EIO);
  EXPECT_LE(got.size(), 20u * kSeg);
  EXPECT_TRUE(big.compare(0, got.size(), got) == 0);
  // Other files are unaffected.
  EXPECT_EQ(ReadErrno(mnt_ + "/seg.bin", &got), 0);
  EXPECT_TRUE(got == plain_["seg.bin"]);
  // One log line names the file and the segment.
  std::string err = p->stderr_text();
  EXPECT_NE(err.find("'big.bin'"), std::string::npos) << err;
  EXPECT_NE(err.find("segment 20: authentication failed"), std::string::npos) << err;
}

TEST_F(DecryptFsTest, TamperedHeaderFailsOpenWithEio) {
  FlipByte(ObjectOf("seg.bin"), 40);  // inside the salt
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  std::string got;
  EXPECT_EQ(ReadErrno(mnt_ + "/seg.bin", &got), EIO);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(ReadErrno(mnt_ + "/one.bin", &got), 0);
  EXPECT_NE(p->stderr_text().find("header digest differs"), std::string::npos) << p->stderr_text();
}

TEST_F(DecryptFsTest, TamperedManifestRefusesToMount) {
  FlipByte(enc_ + "/manifest.cce", 150);
  for (bool foreground : {true, false}) {
    SCOPED_TRACE(foreground ? "foreground" : "detached");
    auto p = Mount({}, foreground);
    ASSERT_TRUE(p->WaitExit(20s));
    Result r = p->result();
    EXPECT_EQ(r.exit_code, 3) << r.err;  // authentication failed, as from `cce dataset verify`
    EXPECT_NE(r.err.find("manifest.cce"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("authentication failed"), std::string::npos) << r.err;
    EXPECT_FALSE(IsMounted(mnt_));
  }
}

TEST_F(DecryptFsTest, WrongKeyRefusesToMount) {
  auto other = format::DatasetKey::Generate();
  ASSERT_TRUE(other.ok());
  DecryptFsProcess::Args a;
  a.enc = enc_;
  a.mnt = mnt_;
  a.key = &*other;
  DecryptFsProcess p(std::move(a));
  ASSERT_TRUE(p.WaitExit(20s));
  Result r = p.result();
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("wrong key"), std::string::npos) << r.err;
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(DecryptFsTest, MissingObjectRefusesToMount) {
  fs::remove(ObjectOf("one.bin"));
  auto p = Mount();
  ASSERT_TRUE(p->WaitExit(20s));
  EXPECT_EQ(p->result().exit_code, 3);  // data loss
  EXPECT_NE(p->result().err.find("object missing"), std::string::npos) << p->result().err;
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(DecryptFsTest, KeyIsNotInCommandLineOrEnvironment) {
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  std::string hex = crypto::ToHex(key_->bytes());
  crypto::SecretBytes keyfile = key_->EncodeKeyFile();
  std::string proc = "/proc/" + std::to_string(p->pid());
  std::string cmdline = ReadWholeFile(proc + "/cmdline");
  std::string environ_text = ReadWholeFile(proc + "/environ");
  ASSERT_FALSE(cmdline.empty());
  EXPECT_NE(cmdline.find("--key-fd"), std::string::npos);
  for (const std::string& text : {cmdline, environ_text}) {
    EXPECT_EQ(text.find(hex), std::string::npos);
    EXPECT_EQ(text.find("cce4long-dataset-key"), std::string::npos);
  }
  // The key pipe was read and closed: fd 3 is not left open.
  EXPECT_FALSE(fs::exists(proc + "/fd/3") &&
               fs::read_symlink(proc + "/fd/3").string().find("pipe:") == 0);
}

TEST_F(DecryptFsTest, WritesFailWithReadOnlyFileSystem) {
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  const std::string f = mnt_ + "/seg.bin";
  errno = 0;
  EXPECT_EQ(::open(f.c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(::open(f.c_str(), O_RDWR), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(::open(f.c_str(), O_RDONLY | O_TRUNC), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(::open((mnt_ + "/new").c_str(), O_WRONLY | O_CREAT, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(::mkdir((mnt_ + "/newdir").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(::unlink(f.c_str()), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(::truncate(f.c_str(), 0), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(::chmod(f.c_str(), 0777), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(::rename(f.c_str(), (mnt_ + "/x").c_str()), -1);
  EXPECT_EQ(errno, EROFS);
  std::string got;
  EXPECT_EQ(ReadErrno(f, &got), 0);
  EXPECT_TRUE(got == plain_["seg.bin"]);
}

TEST_F(DecryptFsTest, SigtermUnmountsCleanlyAndExitsZero) {
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  // Even with a file held open.
  int fd = ::open((mnt_ + "/big.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char c;
  ASSERT_EQ(::pread(fd, &c, 1, 0), 1);
  ASSERT_EQ(::kill(p->pid(), SIGTERM), 0);
  ASSERT_TRUE(p->WaitExit(20s)) << "cce-decryptfs did not exit after SIGTERM";
  ::close(fd);
  EXPECT_EQ(p->result().exit_code, 0) << p->result().err;
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(DecryptFsTest, ExternalUnmountStopsTheServerCleanly) {
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  ASSERT_EQ(std::system(("fusermount3 -u '" + mnt_ + "'").c_str()), 0);
  ASSERT_TRUE(p->WaitExit(20s));
  EXPECT_EQ(p->result().exit_code, 0) << p->result().err;
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(DecryptFsTest, DetachesOnlyAfterTheMountIsUp) {
  auto p = Mount({}, /*foreground=*/false);
  ASSERT_TRUE(p->WaitExit(20s));
  ASSERT_EQ(p->result().exit_code, 0) << p->result().err;
  // The caller's process has exited and the mount is already there.
  ASSERT_TRUE(IsMounted(mnt_));
  std::string got;
  EXPECT_EQ(ReadErrno(mnt_ + "/big.bin", &got), 0);
  EXPECT_TRUE(got == plain_["big.bin"]);
  ASSERT_EQ(std::system(("fusermount3 -u '" + mnt_ + "'").c_str()), 0);
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(DecryptFsTest, KeyFileFlagAndAllowOtherWork) {
  std::string key_file = tmp_.path() + "/dataset.key";
  crypto::SecretBytes contents = key_->EncodeKeyFile();
  WriteWholeFile(key_file,
                 std::string(reinterpret_cast<const char*>(contents.data()), contents.size()));
  ::chmod(key_file.c_str(), 0600);
  DecryptFsProcess::Args a;
  a.enc = enc_;
  a.mnt = mnt_;
  a.key_file = key_file;
  a.extra = {"-o", "allow_other"};
  DecryptFsProcess p(std::move(a));
  ASSERT_TRUE(p.WaitMounted()) << p.result().err;
  EXPECT_NE(ReadWholeFile("/proc/self/mounts").find(mnt_ + " fuse.cce ro,"), std::string::npos);
  std::string mounts = ReadWholeFile("/proc/self/mounts");
  EXPECT_NE(mounts.find("allow_other"), std::string::npos) << mounts;
  std::string got;
  EXPECT_EQ(ReadErrno(mnt_ + "/données/日本語 ファイル.csv", &got), 0);
  EXPECT_TRUE(got == plain_["données/日本語 ファイル.csv"]);
}

TEST_F(DecryptFsTest, StatfsDescribesAReadOnlyFileSystem) {
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  struct statvfs sv {};
  ASSERT_EQ(::statvfs(mnt_.c_str(), &sv), 0);
  EXPECT_NE(sv.f_flag & ST_RDONLY, 0u);
  EXPECT_EQ(sv.f_bfree, 0u);
  EXPECT_GT(sv.f_blocks, 0u);
}

// ---- Mount safety (issue 10, findings 8 and 9) ----

class DecryptFsSafetyTest : public DecryptFsTest {
 protected:
  std::string KeyFile() {
    std::string key_file = tmp_.path() + "/dataset.key";
    if (!fs::exists(key_file)) {
      crypto::SecretBytes contents = key_->EncodeKeyFile();
      WriteWholeFile(key_file,
                     std::string(reinterpret_cast<const char*>(contents.data()), contents.size()));
      ::chmod(key_file.c_str(), 0600);
    }
    return key_file;
  }
  // Runs a detached (default) mount to its exit; any mount it leaves is
  // removed at the end of the test.
  Result MountToExit(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--key-file", KeyFile()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {enc_, mnt_});
    return RunToExit(args, tmp_.path() + "/run.err");
  }
  void TearDown() override {
    for (int i = 0; i < 4 && IsMounted(mnt_); ++i) ::umount2(mnt_.c_str(), MNT_DETACH);
  }
};

TEST_F(DecryptFsSafetyTest, RefusesNonEmptyMountPointUnlessNonempty) {
  WriteWholeFile(mnt_ + "/precious.txt", "hidden by a mount");
  Result r = MountToExit({});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("-o nonempty"), std::string::npos) << r.err;
  EXPECT_FALSE(IsMounted(mnt_));
  EXPECT_EQ(ReadWholeFile(mnt_ + "/precious.txt"), "hidden by a mount");

  auto p = Mount({"-o", "nonempty"});
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  std::string got;
  EXPECT_EQ(ReadErrno(mnt_ + "/seg.bin", &got), 0);
}

TEST_F(DecryptFsSafetyTest, RefusesAlreadyMountedMountPoint) {
  auto first = Mount();
  ASSERT_TRUE(first->WaitMounted()) << first->result().err;
  Result again = MountToExit({});
  EXPECT_EQ(again.exit_code, 2) << again.err;
  EXPECT_NE(again.err.find("already a mount point"), std::string::npos) << again.err;
  // Exactly one mount at mnt_: the first one, still serving.
  std::string mounts = ReadWholeFile("/proc/self/mounts");
  size_t count = 0;
  for (size_t at = mounts.find(" " + mnt_ + " "); at != std::string::npos;
       at = mounts.find(" " + mnt_ + " ", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << mounts;
  std::string got;
  EXPECT_EQ(ReadErrno(mnt_ + "/one.bin", &got), 0);
}

// `$(cce-decryptfs ...)` and any caller reading its stdout/stderr through a
// pipe must see EOF once the parent returns: the detached server keeps none
// of the caller's stdio, and logs to --log-file instead.
TEST_F(DecryptFsSafetyTest, DetachedServerReleasesCallerPipesAndLogsToFile) {
  const std::string log = tmp_.path() + "/decryptfs.log";
  std::vector<std::string> argv = {kBinary, "--key-file", KeyFile(), "--log-file", log, enc_, mnt_};
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::dup2(pipefd[1], STDERR_FILENO);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string output;
  bool eof = false;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!eof && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{pipefd[0], POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n == 0) eof = true;
    if (n > 0) output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_TRUE(eof) << "the detached server still holds the caller's stdout/stderr pipe";
  ASSERT_TRUE(IsMounted(mnt_)) << output;

  // Runtime messages reach the log file.
  FlipByte(ObjectOf("big.bin"), format::kHeaderSize + 10);
  std::string got;
  EXPECT_EQ(ReadErrno(mnt_ + "/big.bin", &got), EIO);
  std::string logged;
  for (int i = 0; i < 100 && logged.find("big.bin") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
    logged = ReadWholeFile(log);
  }
  EXPECT_NE(logged.find("big.bin"), std::string::npos) << "log file: " << logged;
  ASSERT_EQ(std::system(("fusermount3 -u '" + mnt_ + "'").c_str()), 0);
}

TEST_F(DecryptFsSafetyTest, MinVersionAndExpectedDatasetIdRefuseTheMount) {
  Result old = MountToExit({"--min-version", "2"});
  EXPECT_EQ(old.exit_code, 3) << old.err;
  EXPECT_NE(old.err.find("dataset version 1, expected at least 2"), std::string::npos) << old.err;
  EXPECT_FALSE(IsMounted(mnt_));

  Result other = MountToExit({"--expect-dataset-id", "another-dataset"});
  EXPECT_EQ(other.exit_code, 3) << other.err;
  EXPECT_NE(other.err.find("expected 'another-dataset'"), std::string::npos) << other.err;
  EXPECT_FALSE(IsMounted(mnt_));

  Result bad = MountToExit({"--min-version", "x"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--min-version: expected an integer"), std::string::npos) << bad.err;

  auto p = Mount({"--expect-dataset-id", manifest_.dataset_id, "--min-version", "1"});
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
}

// A SIGKILLed server leaves a dead mount ("transport endpoint is not
// connected"); the error says how to recover, and after fusermount3 -u the
// mount works again (docs/decryptfs.md).
TEST_F(DecryptFsSafetyTest, KilledServerErrorNamesTheRecovery) {
  auto p = Mount();
  ASSERT_TRUE(p->WaitMounted()) << p->result().err;
  ::kill(p->pid(), SIGKILL);
  ASSERT_TRUE(p->WaitExit(5s));
  Result r = MountToExit({});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("fusermount3 -u " + mnt_), std::string::npos) << r.err;
  ASSERT_EQ(std::system(("fusermount3 -u '" + mnt_ + "'").c_str()), 0);
  auto again = Mount();
  ASSERT_TRUE(again->WaitMounted()) << again->result().err;
}

TEST(DecryptFsCli, UsageErrorsExitTwoAndNameTheFlag) {
  TempDir tmp("decryptfs-test");
  std::string err = tmp.path() + "/err";
  std::string out;
  Result help = RunToExit({"--help"}, err, &out);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(out.find("Usage: cce-decryptfs"), std::string::npos) << out;

  Result no_key = RunToExit({tmp.path(), tmp.path()}, err);
  EXPECT_EQ(no_key.exit_code, 2);
  EXPECT_NE(no_key.err.find("--key-fd"), std::string::npos) << no_key.err;

  Result both = RunToExit({"--key-fd", "0", "--key-file", "k", tmp.path(), tmp.path()}, err);
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("exactly one of --key-fd"), std::string::npos) << both.err;

  Result bad_fd = RunToExit({"--key-fd", "abc", tmp.path(), tmp.path()}, err);
  EXPECT_EQ(bad_fd.exit_code, 2);
  EXPECT_NE(bad_fd.err.find("--key-fd: expected an integer"), std::string::npos) << bad_fd.err;

  Result closed_fd = RunToExit({"--key-fd", "77", tmp.path(), tmp.path()}, err);
  EXPECT_EQ(closed_fd.exit_code, 2);
  EXPECT_NE(closed_fd.err.find("--key-fd 77: not an open file descriptor"), std::string::npos)
      << closed_fd.err;

  Result threads = RunToExit({"--key-fd", "0", "--threads", "0", tmp.path(), tmp.path()}, err);
  EXPECT_EQ(threads.exit_code, 2);
  EXPECT_NE(threads.err.find("--threads"), std::string::npos) << threads.err;

  Result opt = RunToExit({"--key-fd", "0", "-o", "rw", tmp.path(), tmp.path()}, err);
  EXPECT_EQ(opt.exit_code, 2);
  EXPECT_NE(opt.err.find("-o: unsupported mount option 'rw'"), std::string::npos) << opt.err;

  Result unknown = RunToExit({"--bogus"}, err);
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown option '--bogus'"), std::string::npos) << unknown.err;

  Result one_arg = RunToExit({"--key-fd", "0", tmp.path()}, err);
  EXPECT_EQ(one_arg.exit_code, 2);
  EXPECT_NE(one_arg.err.find("ENCRYPTED_DIR and MOUNTPOINT"), std::string::npos) << one_arg.err;

  Result missing_file =
      RunToExit({"--key-file", tmp.path() + "/nokey", tmp.path(), tmp.path()}, err);
  EXPECT_EQ(missing_file.exit_code, 1);
  EXPECT_NE(missing_file.err.find("nokey"), std::string::npos) << missing_file.err;
}

}  // namespace
}  // namespace cce
