#include "base/subprocess.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>

#include "base/fd.h"

namespace cce {
namespace {

TEST(SubprocessTest, ExitCodeAndOutput) {
  auto r = RunAndCapture({.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status.code, 3);
  EXPECT_FALSE(r->status.success());
  EXPECT_EQ(r->output, "out\nerr\n");
  EXPECT_EQ(r->status.ToString(), "exit code 3");
}

TEST(SubprocessTest, EnvironmentIsEmptyUnlessGiven) {
  setenv("CCE_SUBPROCESS_TEST_SECRET", "leak", 1);
  auto r = RunAndCapture({.argv = {"/usr/bin/env"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "");
  r = RunAndCapture({.argv = {"/usr/bin/env"}, .env = {"A=1"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "A=1\n");
  unsetenv("CCE_SUBPROCESS_TEST_SECRET");
}

TEST(SubprocessTest, OnlyNamedDescriptorsReachTheChild) {
  // An fd without O_CLOEXEC in the parent must still not reach the child.
  int opened = open("/dev/null", O_RDONLY);
  ASSERT_GE(opened, 0);
  const int stray = fcntl(opened, F_DUPFD, 50);  // high, so not confused with ls's own
  close(opened);
  ASSERT_GE(stray, 50);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  UniqueFd r(p[0]), w(p[1]);
  ASSERT_TRUE(
      WriteFull(w.get(), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("secret"), 6))
          .ok());
  w.reset();
  auto out = RunAndCapture(
      {.argv = {"/bin/sh", "-c", "cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '"},
       .fds = {{3, r.get()}}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // ls shows 0 1 2 3 and the one it opens for /proc/self/fd, never the stray.
  EXPECT_EQ(out->output.substr(0, 6), "secret");
  EXPECT_EQ(out->output.find(" " + std::to_string(stray) + " "), std::string::npos) << out->output;
  EXPECT_NE(out->output.find(" 3 "), std::string::npos) << out->output;
  close(stray);
}

TEST(SubprocessTest, MissingProgramIsAnError) {
  auto s = Subprocess::Spawn({.argv = {"/nonexistent/prog"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("/nonexistent/prog"), std::string::npos);
  s = Subprocess::Spawn({.argv = {"no-such-program-cce"}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

TEST(SubprocessTest, WaitForTimesOutThenSignalKills) {
  auto s = Subprocess::Spawn({.argv = {"/bin/sleep", "30"}, .new_session = true});
  ASSERT_TRUE(s.ok());
  auto w = s->WaitFor(std::chrono::milliseconds(50));
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->has_value());
  ASSERT_TRUE(s->Signal(SIGTERM).ok());
  auto done = s->Wait();
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->signal, SIGTERM);
  EXPECT_EQ(done->ShellCode(), 128 + SIGTERM);
}

TEST(SubprocessTest, DestructorKillsAndReaps) {
  pid_t pid;
  {
    auto s = Subprocess::Spawn({.argv = {"/bin/sleep", "30"}});
    ASSERT_TRUE(s.ok());
    pid = s->pid();
  }
  EXPECT_NE(kill(pid, 0), 0);  // reaped: no such process (not even a zombie)
}

}  // namespace
}  // namespace cce
