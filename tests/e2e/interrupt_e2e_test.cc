// Interrupted `cce dataset encrypt|decrypt` runs leave no plaintext or
// ciphertext behind: SIGINT/SIGTERM remove the staging directory (exit
// 128+signal), and the leftover of a SIGKILLed run is removed by the next run
// on the same destination (docs/format.md §7).
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "e2e/harness.h"

namespace cce::e2e {
namespace {

namespace fs = std::filesystem;

CommandResult Cce(std::vector<std::string> args) {
  args.insert(args.begin(), BinPath("cce"));
  return RunCommand(args);
}

// Entries of `dir` whose name starts with `prefix`.
std::vector<std::string> Named(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(prefix)) out.push_back(name);
  }
  return out;
}

// Bytes under `dir` (0 if it vanished meanwhile).
uint64_t TreeBytes(const fs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code sec;
    if (it->is_regular_file(sec)) n += it->file_size(sec);
  }
  return n;
}

// Waits until a ".NAME.partial-*" staging directory under `parent` holds more
// than 4 MiB, i.e. the run is well under way. True once it does.
bool WaitForStagedBytes(const std::string& parent, const std::string& name, BackgroundProcess& p) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline && p.running()) {
    for (const std::string& d : Named(parent, "." + name + ".partial-")) {
      if (TreeBytes(fs::path(parent) / d) > (uint64_t{4} << 20)) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A 3 GiB sparse file: costs no disk to read, and takes the single-threaded
// run far longer than the test needs to interrupt it.
void MakeSparseTree(const std::string& src, uint64_t bytes) {
  fs::create_directories(src + "/sub");
  WriteFile(src + "/sub/small.csv", "a,b\n1,2\n");
  int fd = ::open((src + "/big.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(bytes)), 0);
  ::close(fd);
}

TEST(DatasetInterrupt, SigintDuringEncryptRemovesPartialOutputAndExits130) {
  TempDir t;
  MakeSparseTree(t / "src", uint64_t{3} << 30);
  ASSERT_EQ(Cce({"key", "generate", "--out", t / "k"}).exit_code, 0);
  BackgroundProcess p({BinPath("cce"), "dataset", "encrypt", "--key", t / "k", "--threads", "1",
                       t / "src", t / "enc"});
  ASSERT_TRUE(WaitForStagedBytes(t.path(), "enc", p)) << "the run never got under way: " << p.Err();
  EXPECT_EQ(p.Stop(SIGINT, 20000), 130) << p.Err();
  EXPECT_NE(p.Err().find("interrupted"), std::string::npos) << p.Err();
  EXPECT_TRUE(Named(t.path(), ".enc.partial-").empty()) << "partial ciphertext left behind";
  EXPECT_FALSE(fs::exists(t / "enc"));
}

TEST(DatasetInterrupt, SigtermDuringDecryptRemovesPartialPlaintext) {
  TempDir t;
  MakeSparseTree(t / "src", uint64_t{320} << 20);
  ASSERT_EQ(Cce({"key", "generate", "--out", t / "k"}).exit_code, 0);
  auto enc = Cce({"dataset", "encrypt", "--key", t / "k", t / "src", t / "enc"});
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  // 4 KiB segments and one thread: the slowest decrypt, so it is still running.
  BackgroundProcess p({BinPath("cce"), "dataset", "decrypt", "--key", t / "k", "--threads", "1",
                       t / "enc", t / "plain"});
  ASSERT_TRUE(WaitForStagedBytes(t.path(), "plain", p)) << "never got under way: " << p.Err();
  EXPECT_EQ(p.Stop(SIGTERM, 20000), 128 + SIGTERM) << p.Err();
  EXPECT_TRUE(Named(t.path(), ".plain.partial-").empty()) << "partial plaintext left behind";
  EXPECT_FALSE(fs::exists(t / "plain"));
}

// What a SIGKILLed run leaves: a staging directory with its (no longer
// locked) marker and some output. The next run on the same destination
// removes it; a directory that is not ours (no marker), or whose marker is
// still locked by a live run, is left alone.
TEST(DatasetInterrupt, NextRunRemovesLeftoverOfKilledRun) {
  TempDir t;
  WriteFile(t / "src/a.txt", "hello\n");
  ASSERT_EQ(Cce({"key", "generate", "--out", t / "k"}).exit_code, 0);
  const std::string killed = t / ".enc.partial-0123456789ab";
  WriteFile(killed + "/.cce-partial", "");
  WriteFile(killed + "/objects/0123", std::string(1 << 16, 'x'));
  const std::string foreign = t / ".enc.partial-aaaaaaaaaaaa";
  WriteFile(foreign + "/keep.txt", "not made by cce");
  const std::string live = t / ".enc.partial-bbbbbbbbbbbb";
  WriteFile(live + "/.cce-partial", "");
  int lock_fd = ::open((live + "/.cce-partial").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(lock_fd, 0);
  ASSERT_EQ(::flock(lock_fd, LOCK_EX), 0);  // as a run still in progress holds it

  auto enc = Cce({"dataset", "encrypt", "--key", t / "k", t / "src", t / "enc"});
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  EXPECT_FALSE(fs::exists(killed)) << "leftover of the killed run not removed";
  EXPECT_TRUE(fs::exists(foreign + "/keep.txt"));
  EXPECT_TRUE(fs::exists(live + "/.cce-partial"));
  EXPECT_FALSE(fs::exists(t / "enc/.cce-partial")) << "the marker must not be committed";
  ::close(lock_fd);

  // Same for decrypt, once the live run has "died" (lock released).
  const std::string killed_plain = t / ".plain.partial-cafecafecafe";
  WriteFile(killed_plain + "/.cce-partial", "");
  WriteFile(killed_plain + "/a.txt", "hel");
  auto dec = Cce({"dataset", "decrypt", "--key", t / "k", t / "enc", t / "plain"});
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_FALSE(fs::exists(killed_plain));
  EXPECT_EQ(ReadFile(t / "plain/a.txt"), "hello\n");
  EXPECT_FALSE(fs::exists(t / "plain/.cce-partial"));
  EXPECT_TRUE(fs::exists(live)) << "only runs on the same destination are cleaned";
}

// On a terminal the progress line shows an ETA; Ctrl-C ends that line before
// the "interrupted" message (which starts its own line), and the exit status
// is 130. The run is on a pseudo-terminal, as a user's shell would give it.
TEST(DatasetInterrupt, ProgressLineOnATerminalEndsBeforeTheInterruptMessage) {
  TempDir t;
  MakeSparseTree(t / "src", uint64_t{3} << 30);
  ASSERT_EQ(Cce({"key", "generate", "--out", t / "k"}).exit_code, 0);
  const std::string cce = BinPath("cce"), key = t / "k", src = t / "src", dst = t / "enc";
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(cce.c_str(), cce.c_str(), "dataset", "encrypt", "--key", key.c_str(), "--threads", "1",
            src.c_str(), dst.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string out;
  bool interrupted = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (std::chrono::steady_clock::now() > deadline) break;
    if (::poll(&p, 1, 200) > 0) {
      char buf[4096];
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;  // EIO: the child closed the terminal
      out.append(buf, static_cast<size_t>(n));
    }
    // The bar has been drawn with a rate and an estimate: interrupt.
    const size_t eta = out.rfind("ETA ");
    if (!interrupted && eta != std::string::npos && out.compare(eta, 5, "ETA ?") != 0) {
      ASSERT_EQ(::kill(pid, SIGINT), 0);
      interrupted = true;
    }
  }
  int status = 0;
  if (!interrupted) ::kill(pid, SIGKILL);
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(master);
  ASSERT_TRUE(interrupted) << "no progress line with an ETA on the terminal: " << out;
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 130) << out;
  EXPECT_NE(out.find("encrypt ["), std::string::npos) << out;
  EXPECT_NE(out.find(" files  "), std::string::npos) << out;
  const size_t msg = out.find("cce: encrypt interrupted");
  ASSERT_NE(msg, std::string::npos) << out;
  ASSERT_GT(msg, 0u);
  EXPECT_EQ(out[msg - 1], '\n') << "the message does not start its own line: " << out;
  EXPECT_TRUE(out.ends_with("\n")) << out;
  EXPECT_FALSE(fs::exists(dst));
}

}  // namespace
}  // namespace cce::e2e
