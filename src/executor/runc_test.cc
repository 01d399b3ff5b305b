// runc_test: the runc driver against Debian's real runc and a busybox-static
// rootfs with a small hand-written config (user namespace, read-only root).
// Needs root and runc (LABELS root; CI runs it as root).
#include "executor/runc.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/fd.h"

namespace cce::executor {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kBusybox[] = "/bin/busybox";  // Debian busybox-static

class RuncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "runc_test needs root (it runs real containers)";
    ASSERT_EQ(access(kBusybox, X_OK), 0) << kBusybox << " missing: install busybox-static";
    char tmpl[] = "/tmp/runc_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // The mapped container user (host uid 101000) must traverse to rootfs.
    ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
    bundle_ = dir_ + "/bundle";
    std::string rootfs = bundle_ + "/rootfs";
    for (const char* d : {"", "/bin", "/proc", "/dev", "/sys", "/tmp"}) {
      fs::create_directories(rootfs + d);
      chmod((rootfs + d).c_str(), 0755);
    }
    chmod(bundle_.c_str(), 0755);
    fs::copy_file(kBusybox, rootfs + "/bin/busybox");
    chmod((rootfs + "/bin/busybox").c_str(), 0755);
    for (const char* applet : {"sh", "echo", "sleep", "cat", "head", "tail", "dd", "yes"}) {
      fs::create_symlink("busybox", rootfs + "/bin/" + applet);
    }
    auto runc = Runc::Create("runc", dir_ + "/state");
    ASSERT_TRUE(runc.ok()) << runc.status().ToString();
    runc_.emplace(std::move(*runc));
    MakeSinks(1 << 20, 1 << 20);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // A minimal config: the namespaces and mappings of the real policy, a
  // read-only root, memory/pids limits in cgroupsPath.
  void WriteConfig(const std::vector<std::string>& args, const std::string& cgroup,
                   int64_t memory_bytes = 256 << 20) {
    json mounts = json::array({
        {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/tmp"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "nodev", "size=262144k"}}},
    });
    json config = {
        {"ociVersion", "1.0.2"},
        {"process",
         {{"terminal", false},
          {"user", {{"uid", 1000}, {"gid", 1000}}},
          {"args", args},
          {"env", {"PATH=/bin"}},
          {"cwd", "/"},
          {"noNewPrivileges", true},
          {"capabilities",
           {{"bounding", json::array()},
            {"effective", json::array()},
            {"permitted", json::array()},
            {"inheritable", json::array()},
            {"ambient", json::array()}}}}},
        {"root", {{"path", "rootfs"}, {"readonly", true}}},
        {"hostname", "runc-test"},
        {"mounts", mounts},
        {"linux",
         {{"uidMappings", {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}}},
          {"gidMappings", {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}}},
          {"namespaces",
           {{{"type", "pid"}},
            {{"type", "ipc"}},
            {{"type", "uts"}},
            {{"type", "mount"}},
            {{"type", "network"}},
            {{"type", "user"}}}},
          {"cgroupsPath", cgroup},
          {"resources",
           {{"memory", {{"limit", memory_bytes}, {"swap", memory_bytes}}},
            {"pids", {{"limit", 64}}}}}}},
    };
    std::ofstream(bundle_ + "/config.json") << config.dump(1);
  }

  void MakeSinks(uint64_t out_cap, uint64_t err_cap) {
    out_.reset();
    err_.reset();
    fs::remove(dir_ + "/stdout");
    fs::remove(dir_ + "/stderr");
    auto out = CappedSink::Create(dir_ + "/stdout", out_cap);
    auto err = CappedSink::Create(dir_ + "/stderr", err_cap);
    ASSERT_TRUE(out.ok() && err.ok());
    out_.emplace(std::move(*out));
    err_.emplace(std::move(*err));
  }

  std::string ReadBack(const std::optional<CappedSink>& sink) {
    StatusOr<std::string> s = ReadFile(sink->path(), 16 << 20);
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : "";
  }

  RuncRunRequest Request(const std::string& id, const std::string& cgroup) {
    RuncRunRequest r;
    r.bundle_dir = bundle_;
    r.container_id = id;
    r.stdout_sink = &*out_;
    r.stderr_sink = &*err_;
    r.timeout = std::chrono::seconds(30);
    r.cgroup_path = cgroup;
    return r;
  }

  void ExpectGone(const std::string& id, const std::string& cgroup) {
    StatusOr<bool> exists = runc_->Exists(id);
    ASSERT_TRUE(exists.ok());
    EXPECT_FALSE(*exists) << "runc state dir entry left for " << id;
    EXPECT_TRUE(fs::is_empty(dir_ + "/state")) << "state root not empty";
    // runc makes the cgroup in every hierarchy it finds (blkio, devices,
    // name=systemd, the unified mount ...), not only the ones we limit.
    for (const auto& h : fs::directory_iterator("/sys/fs/cgroup")) {
      std::string d = h.path().string() + cgroup;
      EXPECT_FALSE(fs::exists(d)) << d << " left";
    }
  }

  std::string dir_, bundle_;
  std::optional<Runc> runc_;
  std::optional<CappedSink> out_, err_;
};

TEST_F(RuncTest, PropagatesExitCodeAndCapturesOutput) {
  std::string cg = "/cce/workload/runc-test-exit";
  WriteConfig({"/bin/sh", "-c", "echo hello; echo oops >&2; exit 7"}, cg);
  auto r = runc_->Run(Request("runc-test-exit", cg));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 7);
  EXPECT_EQ(r->signal, 0);
  EXPECT_FALSE(r->timed_out);
  EXPECT_FALSE(r->oom_killed);
  EXPECT_EQ(ReadBack(out_), "hello\n");
  EXPECT_EQ(ReadBack(err_), "oops\n");
  EXPECT_EQ(r->stdout_bytes, 6u);
  EXPECT_FALSE(r->stdout_truncated);
  ExpectGone("runc-test-exit", cg);
}

TEST_F(RuncTest, RunsAsTheMappedUnprivilegedUser) {
  std::string cg = "/cce/workload/runc-test-uid";
  WriteConfig({"/bin/sh", "-c", "cat /proc/self/uid_map; cat /proc/self/status"}, cg);
  auto r = runc_->Run(Request("runc-test-uid", cg));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  std::string out = ReadBack(out_);
  EXPECT_NE(out.find("100000"), std::string::npos) << out;
  EXPECT_NE(out.find("Uid:\t1000\t1000\t1000\t1000"), std::string::npos) << out;
  EXPECT_NE(out.find("CapEff:\t0000000000000000"), std::string::npos) << out;
  EXPECT_NE(out.find("NoNewPrivs:\t1"), std::string::npos) << out;
}

TEST_F(RuncTest, CapsOutputAndNeverBlocksTheWriter) {
  std::string cg = "/cce/workload/runc-test-cap";
  // 4 MiB on stdout against a 1000-byte cap: the rest is drained, not kept.
  WriteConfig({"/bin/sh", "-c", "head -c 4194304 /dev/zero; echo done >&2"}, cg);
  MakeSinks(1000, 1 << 20);
  RuncRunRequest req = Request("runc-test-cap", cg);
  auto r = runc_->Run(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(r->stdout_truncated);
  EXPECT_EQ(r->stdout_bytes, 1000u);
  EXPECT_EQ(ReadBack(out_).size(), 1000u);
  EXPECT_FALSE(r->stderr_truncated);
  EXPECT_EQ(ReadBack(err_), "done\n");
}

TEST_F(RuncTest, TimeoutKillsTheContainer) {
  std::string cg = "/cce/workload/runc-test-timeout";
  WriteConfig({"/bin/sh", "-c", "echo started; sleep 600"}, cg);
  RuncRunRequest req = Request("runc-test-timeout", cg);
  req.timeout = std::chrono::milliseconds(1500);
  auto start = std::chrono::steady_clock::now();
  auto r = runc_->Run(req);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_LT(took, 12.0);
  EXPECT_GE(took, 1.4);
  EXPECT_EQ(ReadBack(out_), "started\n");
  ExpectGone("runc-test-timeout", cg);
}

TEST_F(RuncTest, CancelFdKillsTheContainer) {
  std::string cg = "/cce/workload/runc-test-cancel";
  WriteConfig({"/bin/sleep", "600"}, cg);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd cancel_r(p[0]);
  UniqueFd cancel_w(p[1]);
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    cancel_w.reset();  // EOF on the read end
  });
  RuncRunRequest req = Request("runc-test-cancel", cg);
  req.cancel_fd = cancel_r.get();
  auto r = runc_->Run(req);
  closer.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  ExpectGone("runc-test-cancel", cg);
}

TEST_F(RuncTest, ReportsOomKill) {
  std::string cg = "/cce/workload/runc-test-oom";
  // tail -c keeps 150 MB in anonymous memory against a 32 MiB limit.
  WriteConfig({"/bin/sh", "-c", "head -c 200000000 /dev/zero | tail -c 150000000 >/dev/null"}, cg,
              32 << 20);
  auto r = runc_->Run(Request("runc-test-oom", cg));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->oom_killed) << "exit " << r->exit_code << " signal " << r->signal;
  ExpectGone("runc-test-oom", cg);
}

TEST_F(RuncTest, NoOomReportedWithoutOne) {
  std::string cg = "/cce/workload/runc-test-nooom";
  WriteConfig({"/bin/sh", "-c", "head -c 20000000 /dev/zero | tail -c 1000000 >/dev/null"}, cg,
              64 << 20);
  auto r = runc_->Run(Request("runc-test-nooom", cg));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_FALSE(r->oom_killed);
}

TEST_F(RuncTest, RuncFailureIsAnErrorNamingTheCause) {
  std::string cg = "/cce/workload/runc-test-fail";
  WriteConfig({"/bin/no-such-program"}, cg);
  auto r = runc_->Run(Request("runc-test-fail", cg));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("no-such-program"), std::string::npos)
      << r.status().ToString();
  ExpectGone("runc-test-fail", cg);
}

TEST_F(RuncTest, RefusesBadIdsAndLeftovers) {
  RuncRunRequest req = Request("../etc", "");
  auto r = runc_->Run(req);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  fs::create_directory(dir_ + "/state/leftover");
  r = runc_->Run(Request("leftover", ""));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
}

TEST(Runc, CreateNamesAMissingBinary) {
  auto r = Runc::Create("/nonexistent/runc", "/tmp/runc_test_unused");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/runc"), std::string::npos);
}

TEST(Runc, StateRootIsPrivate) {
  char tmpl[] = "/tmp/runc_root.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string root = std::string(tmpl) + "/a/b";
  auto r = Runc::Create("runc", root);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  fs::remove_all(tmpl);
}

}  // namespace
}  // namespace cce::executor
