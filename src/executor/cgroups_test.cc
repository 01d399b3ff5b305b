// Real cgroups on this host (root, v1/hybrid here; v2 in CI images that have
// it) plus the v1 and v2 file writes against fake hierarchy roots.
#include "executor/cgroups.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/fd.h"

namespace cce::executor {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Put(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

// A forked child that waits for one byte on a pipe, then runs `body` and
// exits with its return value. Lets the parent place it in a cgroup first.
class Child {
 public:
  template <typename F>
  explicit Child(F body) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(p[1]);
      char c;
      if (::read(p[0], &c, 1) != 1) ::_exit(90);
      ::_exit(body());
    }
    ::close(p[0]);
    go_ = p[1];
  }
  ~Child() {
    if (go_ >= 0) ::close(go_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void Go() {
    (void)!::write(go_, "g", 1);
    ::close(go_);
    go_ = -1;
  }
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  bool reaped_ = false;
};

class RealCgroup : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "cgroups_test needs root (run in CI as root)";
    auto roots = DetectCgroupRoots();
    ASSERT_TRUE(roots.ok()) << roots.status().ToString();
    roots_ = *roots;
    base_ = "cce/test-" + std::to_string(::getpid());
  }
  void TearDown() override {
    auto all = Cgroup::Adopt(base_, roots_);
    ASSERT_TRUE(all.ok());
    EXPECT_TRUE(all->Destroy().ok());
  }
  StatusOr<Cgroup> Make(const std::string& leaf, const CgroupLimits& limits) {
    return Cgroup::Create(base_ + "/" + leaf, limits, roots_);
  }

  CgroupRoots roots_;
  std::string base_;
};

TEST_F(RealCgroup, DetectsThisHost) {
  auto mode = DetectCgroupMode();
  ASSERT_TRUE(mode.ok()) << mode.status().ToString();
  EXPECT_EQ(mode.ok() ? *mode : CgroupMode::kV1, roots_.mode);
  if (roots_.mode == CgroupMode::kV2) {
    EXPECT_EQ(roots_.unified, "/sys/fs/cgroup");
  } else {
    EXPECT_TRUE(roots_.v1.count("memory")) << "no v1 memory hierarchy";
    EXPECT_TRUE(roots_.v1.count("pids")) << "no v1 pids hierarchy";
  }
}

TEST_F(RealCgroup, PlacesAProcessAndKillsItOnDestroy) {
  auto cg = Make("job", CgroupLimits{64 << 20, 32, 0.5});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  Child child([] {
    ::pause();
    return 0;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  std::string proc = Slurp("/proc/" + std::to_string(child.pid()) + "/cgroup");
  if (roots_.mode == CgroupMode::kV2) {
    EXPECT_NE(proc.find("0::/" + base_ + "/job\n"), std::string::npos) << proc;
  } else {
    EXPECT_NE(proc.find(":memory:/" + base_ + "/job\n"), std::string::npos) << proc;
    EXPECT_NE(proc.find(":pids:/" + base_ + "/job\n"), std::string::npos) << proc;
    EXPECT_NE(proc.find(":freezer:/" + base_ + "/job\n"), std::string::npos) << proc;
  }
  std::vector<pid_t> pids = cg->Processes();
  EXPECT_EQ(pids, std::vector<pid_t>{child.pid()});

  ASSERT_TRUE(cg->Destroy().ok());
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  for (const auto& dir : cg->Dirs()) EXPECT_FALSE(fs::exists(dir)) << dir;
  EXPECT_TRUE(cg->Destroy().ok()) << "Destroy must be idempotent";
  EXPECT_TRUE(cg->Processes().empty());
}

TEST_F(RealCgroup, WritesTheLimits) {
  auto cg = Make("limits", CgroupLimits{48 << 20, 17, 1.5});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  if (roots_.mode == CgroupMode::kV2) {
    std::string dir = roots_.unified + "/" + cg->path();
    EXPECT_EQ(Slurp(dir + "/memory.max"), std::to_string(48 << 20) + "\n");
    EXPECT_EQ(Slurp(dir + "/pids.max"), "17\n");
    EXPECT_EQ(Slurp(dir + "/cpu.max"), "150000 100000\n");
  } else {
    std::string mem = roots_.v1.at("memory") + "/" + cg->path();
    EXPECT_EQ(Slurp(mem + "/memory.limit_in_bytes"), std::to_string(48 << 20) + "\n");
    if (fs::exists(mem + "/memory.memsw.limit_in_bytes")) {
      EXPECT_EQ(Slurp(mem + "/memory.memsw.limit_in_bytes"), std::to_string(48 << 20) + "\n");
    }
    EXPECT_EQ(Slurp(roots_.v1.at("pids") + "/" + cg->path() + "/pids.max"), "17\n");
    EXPECT_EQ(Slurp(roots_.v1.at("cpu") + "/" + cg->path() + "/cpu.cfs_quota_us"), "150000\n");
  }
}

TEST_F(RealCgroup, PidsLimitStopsForks) {
  auto cg = Make("pids", CgroupLimits{0, 4, 0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  // The child is pid 1 of 4; it tries 10 more forks. Returns the successes.
  Child child([] {
    int ok = 0;
    for (int i = 0; i < 10; ++i) {
      pid_t p = ::fork();
      if (p == 0) {
        ::pause();
        ::_exit(0);
      }
      if (p > 0) ++ok;
    }
    return ok;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  int status = child.Wait();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 3) << "forks past pids.max=4 must fail";
  // The grandchildren are still in the cgroup: KillAll finds and kills them.
  EXPECT_EQ(cg->Processes().size(), 3u);
  ASSERT_TRUE(cg->KillAll().ok());
  EXPECT_TRUE(cg->Processes().empty());
}

int AllocateAndTouch(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 2;
  std::memset(p, 1, bytes);
  return 0;
}

TEST_F(RealCgroup, MemoryLimitKillsTheHog) {
  constexpr size_t kHog = 256 << 20;
  // Control: outside the cgroup the same allocation succeeds.
  Child free_child([] { return AllocateAndTouch(kHog); });
  free_child.Go();
  int free_status = free_child.Wait();
  ASSERT_TRUE(WIFEXITED(free_status) && WEXITSTATUS(free_status) == 0) << free_status;

  auto cg = Make("mem", CgroupLimits{32 << 20, 0, 0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  Child hog([] { return AllocateAndTouch(kHog); });
  ASSERT_TRUE(cg->AddProcess(hog.pid()).ok());
  hog.Go();
  int status = hog.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "expected an OOM kill, got status " << status;
}

TEST_F(RealCgroup, KillAllStopsAForkingTree) {
  auto cg = Make("tree", CgroupLimits{0, 64, 0});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  Child child([] {
    while (true) {
      pid_t p = ::fork();
      if (p == 0) continue;  // the child keeps forking too
      ::usleep(1000);
    }
    return 0;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  ::usleep(100 * 1000);
  EXPECT_GT(cg->Processes().size(), 1u);
  ASSERT_TRUE(cg->Destroy().ok());
  child.Wait();
  EXPECT_TRUE(cg->Processes().empty());
  for (const auto& dir : cg->Dirs()) EXPECT_FALSE(fs::exists(dir)) << dir;
}

TEST_F(RealCgroup, DestroySweepsEveryHierarchyLikeRuncMakes) {
  // runc makes the workload's directory in every hierarchy (blkio, devices,
  // cpuset, systemd, unified on hybrid); cleanup must remove all of them.
  std::vector<std::string> made;
  for (const auto& [name, root] : roots_.v1) made.push_back(root + "/" + base_ + "/runc-like/sub");
  if (roots_.mode != CgroupMode::kV1) {
    made.push_back(roots_.unified + "/" + base_ + "/runc-like/sub");
  }
  for (const auto& dir : made) ASSERT_TRUE(fs::create_directories(dir) || fs::exists(dir)) << dir;
  auto cg = Cgroup::Adopt("/" + base_ + "/runc-like", roots_);
  ASSERT_TRUE(cg.ok());
  ASSERT_TRUE(cg->Destroy().ok());
  for (const auto& dir : made) {
    EXPECT_FALSE(fs::exists(fs::path(dir).parent_path())) << dir;
  }
}

TEST(CgroupPath, RejectsMalformedPaths) {
  CgroupRoots roots;
  roots.unified = "/nonexistent";
  for (const char* bad :
       {"", "/", "..", "cce/../x", "cce//x", "cce/./x", "cce/x/", "a b", "cce/\n"}) {
    auto cg = Cgroup::Adopt(bad, roots);
    EXPECT_FALSE(cg.ok()) << "'" << bad << "'";
    if (!cg.ok()) {
      EXPECT_EQ(cg.status().code(), StatusCode::kInvalidArgument);
    }
  }
  auto ok = Cgroup::Adopt("/cce/workload/job-1", roots);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->path(), "cce/workload/job-1");
}

class FakeRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cce-cgfake-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_;
};

TEST_F(FakeRoot, V2WritesControllersAndLimits) {
  // What the kernel would present: control files in every directory.
  for (const std::string& dir : {root_, root_ + "/cce", root_ + "/cce/workload"}) {
    Put(dir + "/cgroup.controllers", "cpuset cpu io memory pids\n");
    Put(dir + "/cgroup.subtree_control", "");
  }
  std::string leaf = root_ + "/cce/workload/job-1";
  for (const char* f : {"memory.max", "memory.swap.max", "pids.max", "cpu.max", "cgroup.procs"}) {
    Put(leaf + "/" + f, "");
  }
  CgroupRoots roots;
  roots.mode = CgroupMode::kV2;
  roots.unified = root_;
  auto cg = Cgroup::Create("/cce/workload/job-1", CgroupLimits{1 << 30, 100, 2}, roots);
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  for (const std::string& dir : {root_, root_ + "/cce", root_ + "/cce/workload"}) {
    EXPECT_EQ(Slurp(dir + "/cgroup.subtree_control"), "+cpu +memory +pids") << dir;
  }
  EXPECT_EQ(Slurp(leaf + "/memory.max"), "1073741824");
  EXPECT_EQ(Slurp(leaf + "/memory.swap.max"), "0");
  EXPECT_EQ(Slurp(leaf + "/pids.max"), "100");
  EXPECT_EQ(Slurp(leaf + "/cpu.max"), "200000 100000");
  ASSERT_TRUE(cg->AddProcess(4242).ok());
  EXPECT_EQ(Slurp(leaf + "/cgroup.procs"), "4242");
  EXPECT_EQ(cg->Dirs(), std::vector<std::string>{leaf});
}

TEST_F(FakeRoot, V2MissingControllerFailsAndRollsBack) {
  for (const std::string& dir : {root_, root_ + "/cce"}) {
    Put(dir + "/cgroup.controllers", "cpu memory\n");  // no pids
    Put(dir + "/cgroup.subtree_control", "");
  }
  CgroupRoots roots;
  roots.mode = CgroupMode::kV2;
  roots.unified = root_;
  auto cg = Cgroup::Create("cce/job-2", CgroupLimits{0, 10, 0}, roots);
  ASSERT_FALSE(cg.ok());
  EXPECT_EQ(cg.status().code(), StatusCode::kNotFound);
  EXPECT_NE(cg.status().message().find("'pids'"), std::string::npos) << cg.status().ToString();
  EXPECT_FALSE(fs::exists(root_ + "/cce/job-2")) << "the directory Create made must be removed";
  EXPECT_TRUE(fs::exists(root_ + "/cce")) << "a directory Create did not make must stay";
}

TEST_F(FakeRoot, V2UnwritableLimitFailsClosed) {
  Put(root_ + "/cgroup.controllers", "memory\n");
  Put(root_ + "/cgroup.subtree_control", "");
  CgroupRoots roots;
  roots.mode = CgroupMode::kV2;
  roots.unified = root_;
  // The leaf is new, so memory.max does not exist: the limit cannot be set.
  auto cg = Cgroup::Create("job-3", CgroupLimits{1 << 20, 0, 0}, roots);
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.status().message().find("memory.max"), std::string::npos) << cg.status().ToString();
  EXPECT_FALSE(fs::exists(root_ + "/job-3"));
}

TEST_F(FakeRoot, V1WritesEachHierarchy) {
  CgroupRoots roots;
  roots.mode = CgroupMode::kV1;
  for (const char* c : {"memory", "pids", "cpu", "freezer"}) roots.v1[c] = root_ + "/" + c;
  roots.v1["cpuacct"] = root_ + "/cpu";  // shared mount
  std::string rel = "cce/platform/agent-1";
  for (const char* f : {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness",
                        "cgroup.procs"}) {
    Put(root_ + "/memory/" + rel + "/" + f, "");
  }
  Put(root_ + "/pids/" + rel + "/pids.max", "");
  Put(root_ + "/pids/" + rel + "/cgroup.procs", "");
  for (const char* f : {"cpu.cfs_period_us", "cpu.cfs_quota_us", "cgroup.procs"}) {
    Put(root_ + "/cpu/" + rel + "/" + f, "");
  }
  Put(root_ + "/freezer/" + rel + "/cgroup.procs", "");
  auto cg = Cgroup::Create(rel, CgroupLimits{256 << 20, 50, 0.25}, roots);
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  std::string mem = root_ + "/memory/" + rel;
  EXPECT_EQ(Slurp(mem + "/memory.limit_in_bytes"), "268435456");
  EXPECT_EQ(Slurp(mem + "/memory.memsw.limit_in_bytes"), "268435456");
  EXPECT_EQ(Slurp(mem + "/memory.swappiness"), "0");
  EXPECT_EQ(Slurp(root_ + "/pids/" + rel + "/pids.max"), "50");
  EXPECT_EQ(Slurp(root_ + "/cpu/" + rel + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(Slurp(root_ + "/cpu/" + rel + "/cpu.cfs_quota_us"), "25000");
  EXPECT_EQ(cg->Dirs().size(), 4u) << "cpu and cpuacct share one directory";
  ASSERT_TRUE(cg->AddProcess(77).ok());
  for (const auto& dir : cg->Dirs()) EXPECT_EQ(Slurp(dir + "/cgroup.procs"), "77") << dir;
}

TEST_F(FakeRoot, V1LimitWithoutItsHierarchyFails) {
  CgroupRoots roots;
  roots.mode = CgroupMode::kV1;
  roots.v1["memory"] = root_ + "/memory";
  fs::create_directories(root_ + "/memory");
  auto cg = Cgroup::Create("job", CgroupLimits{0, 10, 0}, roots);
  ASSERT_FALSE(cg.ok());
  EXPECT_EQ(cg.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(root_ + "/memory/job"));
}

}  // namespace
}  // namespace cce::executor
