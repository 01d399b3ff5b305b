// Runs the real static cce-sandbox-init on the host (no container) around a
// probe (this test binary re-executed with CCE_LANDLOCK_PROBE set), and shows
// each denial both confined (denied) and unconfined (allowed), so every test
// fails if the helper stops enforcing. Needs root? No, but CI runs it as root
// with the other executor tests; it needs a kernel with Landlock enabled.
#include "executor/landlock.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "base/fd.h"

namespace cce::executor {
namespace {

// ---- The probe: runs before main() when CCE_LANDLOCK_PROBE is set ------------
// "OP ARG": exits 0 on success, else the errno of the failed call.
int RunProbe(const char* spec) {
  std::string s(spec);
  std::string op = s.substr(0, s.find(' '));
  std::string arg = s.find(' ') == std::string::npos ? "" : s.substr(s.find(' ') + 1);
  if (op == "write") {
    int fd = ::open(arg.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    if (::write(fd, "probe", 5) != 5) return errno;
    ::close(fd);
    return 0;
  }
  if (op == "read") {
    int fd = ::open(arg.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    char c;
    if (::read(fd, &c, 1) < 0) return errno;
    ::close(fd);
    return 0;
  }
  if (op == "connect") {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(arg.c_str())));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return errno;
    return 0;
  }
  if (op == "bind") {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return errno;
    return 0;
  }
  if (op == "kill-parent") {
    return ::kill(::getppid(), 0) == 0 ? 0 : errno;
  }
  if (op == "abstract") {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, arg.data(), arg.size());
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + arg.size());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) return errno;
    return 0;
  }
  return 200;
}

[[maybe_unused]] const int kProbeHook = [] {
  if (const char* spec = std::getenv("CCE_LANDLOCK_PROBE")) ::_exit(RunProbe(spec));
  return 0;
}();

// ---- Harness ------------------------------------------------------------------

const std::string kHelper = std::string(CCE_BIN_DIR) + "/cce-sandbox-init";

std::string SelfExe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

struct Result {
  int exit_code = -1;  // -1: killed by a signal
  std::string err;     // the child's stderr
};

// Forks; the child runs `argv` with CCE_LANDLOCK_PROBE=probe. `deny_landlock`
// installs a seccomp filter first making landlock_create_ruleset fail ENOSYS,
// i.e. a kernel without Landlock.
Result RunChild(const std::vector<std::string>& argv, const std::string& probe,
                bool deny_landlock = false) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 2);
    ::setenv("CCE_LANDLOCK_PROBE", probe.c_str(), 1);
    if (deny_landlock) {
      scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
      if (!ctx ||
          seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset), 0) !=
              0 ||
          seccomp_load(ctx) != 0) {
        ::_exit(99);
      }
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(98);
  }
  ::close(pipefd[1]);
  Result r;
  auto out = ReadAll(pipefd[0], 1 << 20, "child stderr");
  ::close(pipefd[0]);
  if (out.ok()) r.err = *out;
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class LandlockHelper : public ::testing::Test {
 protected:
  void SetUp() override {
    auto abi = landlock::LandlockAbi();
    ASSERT_TRUE(abi.ok()) << "this test needs a kernel with Landlock enabled (lsm=...landlock): "
                          << abi.status().ToString();
    abi_ = *abi;
    ASSERT_EQ(::access(kHelper.c_str(), X_OK), 0) << kHelper << " missing: build cce-sandbox-init";
    self_ = SelfExe();
    ASSERT_FALSE(self_.empty());
    char tmpl[] = "/tmp/cce-landlock-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    rw_ = base_ + "/rw";
    outside_ = base_ + "/outside";
    std::filesystem::create_directories(rw_);
    std::filesystem::create_directories(outside_);
  }
  void TearDown() override {
    if (!base_.empty()) std::filesystem::remove_all(base_);
  }
  std::vector<std::string> Confined() const {
    return {kHelper, "--ro", "/", "--rw", rw_, "--", self_};
  }
  std::vector<std::string> Unconfined() const { return {self_}; }

  int abi_ = 0;
  std::string self_, base_, rw_, outside_;
};

TEST_F(LandlockHelper, WriteOutsideRwPathsIsDenied) {
  std::string target = outside_ + "/f";
  EXPECT_EQ(RunChild(Unconfined(), "write " + target).exit_code, 0) << "probe itself is broken";
  std::filesystem::remove(target);
  Result r = RunChild(Confined(), "write " + target);
  EXPECT_EQ(r.exit_code, EACCES) << r.err;
  EXPECT_FALSE(std::filesystem::exists(target));
}

TEST_F(LandlockHelper, WriteInsideRwPathSucceeds) {
  Result r = RunChild(Confined(), "write " + rw_ + "/f");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(rw_ + "/f"));
}

TEST_F(LandlockHelper, ReadOnlyPathsAreReadable) {
  Result r = RunChild(Confined(), "read /proc/self/exe");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string f = outside_ + "/data";
  ASSERT_TRUE(WriteNewFile(f, std::span<const uint8_t>(), 0644).ok());
  EXPECT_EQ(RunChild(Confined(), "read " + f).exit_code, 0);
  EXPECT_EQ(RunChild(Confined(), "write " + f).exit_code, EACCES);
}

TEST_F(LandlockHelper, TcpConnectAndBindAreDenied) {
  if (abi_ < 4)
    GTEST_FAIL() << "Landlock ABI " << abi_ << " < 4: no TCP restriction on this kernel";
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  std::string port = std::to_string(ntohs(a.sin_port));

  EXPECT_EQ(RunChild(Unconfined(), "connect " + port).exit_code, 0);
  Result r = RunChild(Confined(), "connect " + port);
  EXPECT_EQ(r.exit_code, EACCES) << r.err;
  EXPECT_EQ(RunChild(Unconfined(), "bind 0").exit_code, 0);
  EXPECT_EQ(RunChild(Confined(), "bind 0").exit_code, EACCES);
}

TEST_F(LandlockHelper, SignalsOutsideTheSandboxAreDenied) {
  if (abi_ < 6) GTEST_FAIL() << "Landlock ABI " << abi_ << " < 6: no signal scoping on this kernel";
  EXPECT_EQ(RunChild(Unconfined(), "kill-parent").exit_code, 0);
  Result r = RunChild(Confined(), "kill-parent");
  EXPECT_EQ(r.exit_code, EPERM) << r.err;
}

TEST_F(LandlockHelper, AbstractUnixSocketsOutsideAreDenied) {
  if (abi_ < 6) GTEST_FAIL() << "Landlock ABI " << abi_ << " < 6: no abstract socket scoping";
  UniqueFd srv(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(srv.valid());
  std::string name = "cce-landlock-test-" + std::to_string(::getpid());
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(::bind(srv.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(::listen(srv.get(), 8), 0);
  EXPECT_EQ(RunChild(Unconfined(), "abstract " + name).exit_code, 0);
  Result r = RunChild(Confined(), "abstract " + name);
  EXPECT_EQ(r.exit_code, EPERM) << r.err;
}

TEST_F(LandlockHelper, RefusesToRunWithoutLandlock) {
  std::string target = rw_ + "/ran";
  Result r = RunChild(Confined(), "write " + target, /*deny_landlock=*/true);
  EXPECT_EQ(r.exit_code, 126) << r.err;
  EXPECT_NE(r.err.find("Landlock unavailable"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ENOSYS"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(target)) << "the command ran unconfined";
}

TEST_F(LandlockHelper, SetupAndExecFailuresHaveTheirExitCodes) {
  Result missing = RunChild({kHelper, "--ro", "/", "--rw", base_ + "/nope", "--", self_}, "read /");
  EXPECT_EQ(missing.exit_code, 126);
  EXPECT_NE(missing.err.find(base_ + "/nope"), std::string::npos) << missing.err;
  EXPECT_EQ(RunChild({kHelper, "--ro", "/", self_}, "read /").exit_code, 126);  // no "--"
  EXPECT_EQ(RunChild({kHelper, "--ro", "relative", "--", self_}, "read /").exit_code, 126);
  EXPECT_EQ(RunChild({kHelper, "--bogus", "--", self_}, "read /").exit_code, 126);
  Result noexec = RunChild({kHelper, "--ro", "/", "--", "no-such-command-cce"}, "read /");
  EXPECT_EQ(noexec.exit_code, 127);
  EXPECT_NE(noexec.err.find("no-such-command-cce"), std::string::npos) << noexec.err;
}

TEST_F(LandlockHelper, RwRuleOnAFileGrantsOnlyFileRights) {
  // /dev/null-style: a single writable file, not its directory.
  std::string f = outside_ + "/sink";
  ASSERT_TRUE(WriteNewFile(f, std::span<const uint8_t>(), 0644).ok());
  std::vector<std::string> argv = {kHelper, "--ro", "/", "--rw", f, "--", self_};
  EXPECT_EQ(RunChild(argv, "write " + f).exit_code, 0);
  EXPECT_EQ(RunChild(argv, "write " + outside_ + "/other").exit_code, EACCES);
}

TEST_F(LandlockHelper, VerboseSummaryIsOneJsonLine) {
  std::vector<std::string> argv = {kHelper, "--verbose", "--ro", "/", "--rw", rw_, "--", self_};
  Result r = RunChild(argv, "read /proc/self/exe");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.rfind("{\"landlock_abi\":" + std::to_string(abi_), 0), 0u) << r.err;
  EXPECT_NE(r.err.find("\"rw\":[\"" + rw_ + "\"]"), std::string::npos) << r.err;
  Result quiet = RunChild(Confined(), "read /proc/self/exe");
  EXPECT_EQ(quiet.err, "");
}

TEST(LandlockPolicy, HandlesEveryRightOfEachAbi) {
  EXPECT_EQ(landlock::HandledFs(1), 0x1fffu);
  EXPECT_EQ(landlock::HandledFs(2), 0x3fffu);
  EXPECT_EQ(landlock::HandledFs(4), 0x7fffu);
  EXPECT_EQ(landlock::HandledFs(7), 0xffffu);
  EXPECT_EQ(landlock::HandledNet(3), 0u);
  EXPECT_EQ(landlock::HandledNet(4), 3u);
  EXPECT_EQ(landlock::Scoped(5), 0u);
  EXPECT_EQ(landlock::Scoped(6), 3u);
  EXPECT_EQ(landlock::ReadOnlyAccess(7) & landlock::kFsWriteFile, 0u);
}

}  // namespace
}  // namespace cce::executor
