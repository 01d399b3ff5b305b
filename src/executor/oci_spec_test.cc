#include "executor/oci_spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>

namespace cce::executor {
namespace {

using nlohmann::json;

json FakeSeccomp() {
  return json{{"defaultAction", "SCMP_ACT_ERRNO"},
              {"defaultErrnoRet", 1},
              {"architectures", json::array({"SCMP_ARCH_X86_64"})},
              {"syscalls",
               json::array({{{"names", json::array({"read"})}, {"action", "SCMP_ACT_ALLOW"}}})}};
}

RunSpec Spec() {
  RunSpec s;
  s.rootfs = "/work/job-1/rootfs";
  s.args = {"python3", "/app/main.py"};
  s.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  s.cwd = "/app";
  s.datasets = {{"/run/cce/mnt/census", "/data/census"}, {"/run/cce/mnt/b", "/data/b"}};
  s.output_host_dir = "/work/job-1/output";
  s.mac = MacLayer::kLandlock;
  s.sandbox_init_host_path = "/usr/lib/cce/cce-sandbox-init";
  s.seccomp = FakeSeccomp();
  s.cgroups_path = "/cce/workload/job-1";
  return s;
}

json Render(const IsolationPolicy& p = IsolationPolicy{}, const RunSpec& s = Spec()) {
  StatusOr<json> c = RenderRuntimeConfig(p, s);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : json::object();
}

const json* FindMount(const json& config, const std::string& destination) {
  for (const json& m : config["mounts"]) {
    if (m["destination"] == destination) return &m;
  }
  return nullptr;
}

bool HasOption(const json& mount, const std::string& option) {
  const json& o = mount["options"];
  return std::find(o.begin(), o.end(), option) != o.end();
}

TEST(RenderRuntimeConfig, UserNamespaceMapsToUnprivilegedHostIds) {
  json c = Render();
  json expected = json::array({{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}});
  EXPECT_EQ(c["linux"]["uidMappings"], expected);
  EXPECT_EQ(c["linux"]["gidMappings"], expected);
  EXPECT_EQ(c["process"]["user"]["uid"], 1000);
  EXPECT_EQ(c["process"]["user"]["gid"], 1000);
  EXPECT_EQ(c["process"]["user"]["additionalGids"], json::array());
}

TEST(RenderRuntimeConfig, NoCapabilityInAnySet) {
  json caps = Render()["process"]["capabilities"];
  for (const char* set : {"bounding", "effective", "inheritable", "permitted", "ambient"}) {
    ASSERT_TRUE(caps.contains(set)) << set << " missing: runc would not clear it";
    EXPECT_EQ(caps[set], json::array()) << set;
  }
}

TEST(RenderRuntimeConfig, NoNewPrivilegesReadOnlyRootAndEveryNamespace) {
  json c = Render();
  EXPECT_EQ(c["process"]["noNewPrivileges"], true);
  EXPECT_EQ(c["process"]["terminal"], false);
  EXPECT_EQ(c["root"]["readonly"], true);
  EXPECT_EQ(c["root"]["path"], "/work/job-1/rootfs");
  std::vector<std::string> types;
  for (const json& ns : c["linux"]["namespaces"]) {
    EXPECT_FALSE(ns.contains("path")) << "a namespace joined instead of new: " << ns.dump();
    types.push_back(ns["type"]);
  }
  std::sort(types.begin(), types.end());
  EXPECT_EQ(types,
            (std::vector<std::string>{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}));
  EXPECT_EQ(c["hostname"], "cce-job");
}

TEST(RenderRuntimeConfig, Rlimits) {
  IsolationPolicy p;
  p.output_max_bytes = 10 * kMiB;
  json rl = Render(p)["process"]["rlimits"];
  auto find = [&](const std::string& type) -> json {
    for (const json& r : rl) {
      if (r["type"] == type) return r;
    }
    return {};
  };
  EXPECT_EQ(find("RLIMIT_NOFILE"),
            (json{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}));
  EXPECT_EQ(find("RLIMIT_CORE"), (json{{"type", "RLIMIT_CORE"}, {"hard", 0}, {"soft", 0}}));
  EXPECT_EQ(find("RLIMIT_FSIZE")["hard"], 10 * kMiB);
  EXPECT_EQ(find("RLIMIT_FSIZE")["soft"], 10 * kMiB);
  EXPECT_EQ(find("RLIMIT_MEMLOCK")["hard"], 64 * 1024);
}

TEST(RenderRuntimeConfig, MaskedAndReadOnlyPaths) {
  json c = Render();
  for (const std::string& m : MandatoryMaskedPaths()) {
    EXPECT_NE(std::find(c["linux"]["maskedPaths"].begin(), c["linux"]["maskedPaths"].end(), m),
              c["linux"]["maskedPaths"].end())
        << m;
  }
  for (const std::string& r : MandatoryReadonlyPaths()) {
    EXPECT_NE(std::find(c["linux"]["readonlyPaths"].begin(), c["linux"]["readonlyPaths"].end(), r),
              c["linux"]["readonlyPaths"].end())
        << r;
  }
}

TEST(RenderRuntimeConfig, DatasetsReadOnlyOutputTheOnlyPersistentWritablePlace) {
  json c = Render();
  for (const char* d : {"/data/census", "/data/b"}) {
    const json* m = FindMount(c, d);
    ASSERT_NE(m, nullptr) << d;
    EXPECT_EQ((*m)["type"], "bind");
    for (const char* o : {"bind", "ro", "nosuid", "nodev", "noexec"}) {
      EXPECT_TRUE(HasOption(*m, o)) << d << " " << o;
    }
    EXPECT_FALSE(HasOption(*m, "rbind")) << "a recursive bind could expose writable submounts";
    EXPECT_FALSE(HasOption(*m, "rw"));
  }
  EXPECT_EQ((*FindMount(c, "/data/census"))["source"], "/run/cce/mnt/census");
  const json* out = FindMount(c, "/output");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ((*out)["source"], "/work/job-1/output");
  for (const char* o : {"bind", "rw", "nosuid", "nodev", "noexec"}) {
    EXPECT_TRUE(HasOption(*out, o)) << o;
  }
  // Every other mount is read-only or a size-capped tmpfs / kernel fs.
  for (const json& m : c["mounts"]) {
    std::string dest = m["destination"];
    if (dest == "/output") continue;
    if (m["type"] == "bind") {
      EXPECT_TRUE(HasOption(m, "ro")) << dest;
      EXPECT_TRUE(HasOption(m, "nosuid")) << dest;
    } else if (m["type"] == "tmpfs") {
      bool sized = std::any_of(m["options"].begin(), m["options"].end(), [](const json& o) {
        return o.get<std::string>().rfind("size=", 0) == 0;
      });
      EXPECT_TRUE(sized) << dest << " tmpfs without a size";
      EXPECT_TRUE(HasOption(m, "nosuid")) << dest;
    }
  }
  const json* sys = FindMount(c, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_TRUE(HasOption(*sys, "ro"));
}

TEST(RenderRuntimeConfig, TmpIsASizeCappedTmpfs) {
  IsolationPolicy p;
  p.tmp_max_bytes = 32 * kMiB;
  json c = Render(p);
  const json* tmp = FindMount(c, "/tmp");
  ASSERT_NE(tmp, nullptr);
  EXPECT_EQ((*tmp)["type"], "tmpfs");
  EXPECT_TRUE(HasOption(*tmp, "size=" + std::to_string(32 * kMiB)));
  EXPECT_TRUE(HasOption(*tmp, "nosuid"));
  EXPECT_TRUE(HasOption(*tmp, "nodev"));
  EXPECT_FALSE(HasOption(*tmp, "noexec"));  // tmp_exec defaults to true (docs/isolation.md)
  p.tmp_exec = false;
  EXPECT_TRUE(HasOption(*FindMount(Render(p), "/tmp"), "noexec"));
  const json* shm = FindMount(c, "/dev/shm");
  ASSERT_NE(shm, nullptr);
  EXPECT_TRUE(HasOption(*shm, "size=" + std::to_string(64 * kMiB)));
  EXPECT_TRUE(HasOption(*shm, "noexec"));
}

TEST(RenderRuntimeConfig, CgroupResources) {
  IsolationPolicy p;
  p.memory_mib = 300;
  p.pids_max = 77;
  p.cpus = 1.5;
  json c = Render(p);
  json r = c["linux"]["resources"];
  EXPECT_EQ(r["memory"]["limit"], 300 * kMiB);
  EXPECT_EQ(r["memory"]["swap"], 300 * kMiB);  // memory+swap == memory: no swap
  EXPECT_EQ(r["pids"]["limit"], 77);
  EXPECT_EQ(r["cpu"]["quota"], 150000);
  EXPECT_EQ(r["cpu"]["period"], 100000);
  EXPECT_EQ(r["devices"], json::array({{{"allow", false}, {"access", "rwm"}}}));
  EXPECT_EQ(c["linux"]["cgroupsPath"], "/cce/workload/job-1");
  EXPECT_EQ(c["process"]["oomScoreAdj"], 1000);
}

TEST(RenderRuntimeConfig, NoExtraDevicesNoSysctlSeccompAttached) {
  json c = Render();
  EXPECT_FALSE(c["linux"].contains("devices")) << "only runc's default devices";
  EXPECT_FALSE(c["linux"].contains("sysctl"));
  EXPECT_EQ(c["linux"]["seccomp"], FakeSeccomp());
  for (const json& m : c["mounts"]) {
    EXPECT_NE(m["type"], "devpts") << "no terminal, no devpts";
  }
}

TEST(RenderRuntimeConfig, LandlockHelperRunsFirst) {
  json c = Render();
  json args = c["process"]["args"];
  ASSERT_GE(args.size(), 3u);
  EXPECT_EQ(args[0], kSandboxInitPath);
  // Writes only to /output, /tmp, /dev/shm and the /dev sinks: never all of
  // /dev, which would grant device ioctls too.
  EXPECT_EQ(args, json::array({kSandboxInitPath, "--ro", "/", "--rw", "/output", "--rw", "/tmp",
                               "--rw", "/dev/null", "--rw", "/dev/zero", "--rw", "/dev/full",
                               "--rw", "/dev/shm", "--", "python3", "/app/main.py"}));
  const json* helper = FindMount(c, kSandboxInitPath);
  ASSERT_NE(helper, nullptr);
  EXPECT_EQ((*helper)["source"], "/usr/lib/cce/cce-sandbox-init");
  EXPECT_TRUE(HasOption(*helper, "ro"));
  EXPECT_FALSE(c["process"].contains("apparmorProfile"));
}

TEST(RenderRuntimeConfig, AppArmorProfileWhenTheHostHasAppArmor) {
  RunSpec s = Spec();
  s.mac = MacLayer::kAppArmor;
  s.apparmor_profile = "cce-job-1";
  json c = Render(IsolationPolicy{}, s);
  EXPECT_EQ(c["process"]["apparmorProfile"], "cce-job-1");
  EXPECT_EQ(c["process"]["args"], json::array({"python3", "/app/main.py"}));
  EXPECT_EQ(FindMount(c, kSandboxInitPath), nullptr);
}

TEST(RenderRuntimeConfig, RefusesToRunWithoutAMacLayer) {
  for (MacLayer m : {MacLayer::kNone, MacLayer::kUnknown, MacLayer::kSelinux}) {
    RunSpec s = Spec();
    s.mac = m;
    StatusOr<json> c = RenderRuntimeConfig(IsolationPolicy{}, s);
    ASSERT_FALSE(c.ok()) << MacLayerName(m);
    EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  }
}

TEST(RenderRuntimeConfig, RefusesAWeakenedPolicy) {
  IsolationPolicy p;
  p.capabilities = {"CAP_SYS_ADMIN"};
  StatusOr<json> c = RenderRuntimeConfig(p, Spec());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("capabilities"), std::string::npos);
}

TEST(ValidateRunSpec, NamesTheBadField) {
  auto error = [](const std::function<void(RunSpec&)>& change) {
    RunSpec s = Spec();
    change(s);
    Status st = ValidateRunSpec(s);
    return st.ok() ? std::string() : st.message();
  };
  EXPECT_EQ(error([](RunSpec&) {}), "");
  struct Case {
    std::function<void(RunSpec&)> change;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[](RunSpec& s) { s.rootfs = "rootfs"; }, "rootfs"},
      {[](RunSpec& s) { s.rootfs = "/a/../b"; }, "rootfs"},
      {[](RunSpec& s) { s.args.clear(); }, "args"},
      {[](RunSpec& s) { s.env.emplace_back("NOEQUALS"); }, "env[2]"},
      {[](RunSpec& s) { s.env.emplace_back("BAD-NAME=1"); }, "env[2]"},
      {[](RunSpec& s) { s.cwd = "app"; }, "cwd"},
      {[](RunSpec& s) { s.hostname = "a b"; }, "hostname"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/"; }, "datasets[1].container_path"},
      {[](RunSpec& s) { s.datasets[1].container_path = "data"; }, "datasets[1].container_path"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/proc/x"; }, "under /proc"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/sys"; }, "under /sys"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/dev/shm"; }, "under /dev"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/output/x"; }, "under /output"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/tmp"; }, "under /tmp"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/.cce"; }, "under /.cce"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/data/../etc"; }, "datasets[1]"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/data/census"; }, "also datasets[0]"},
      {[](RunSpec& s) { s.datasets[1].container_path = "/data/census/sub"; }, "nests"},
      {[](RunSpec& s) { s.datasets[0].host_dir = ""; }, "datasets[0].host_dir"},
      {[](RunSpec& s) { s.output_host_dir = "out"; }, "output_host_dir"},
      {[](RunSpec& s) { s.sandbox_init_host_path = ""; }, "sandbox_init_host_path"},
      {[](RunSpec& s) { s.seccomp = json(); }, "seccomp"},
      {[](RunSpec& s) { s.seccomp["defaultAction"] = "SCMP_ACT_ALLOW"; }, "seccomp.defaultAction"},
      {[](RunSpec& s) { s.cgroups_path = "cce/x"; }, "cgroups_path"},
  };
  for (const Case& c : cases) {
    std::string e = error(c.change);
    EXPECT_NE(e.find(c.expect), std::string::npos)
        << "expected '" << c.expect << "' in '" << e << "'";
  }
}

}  // namespace
}  // namespace cce::executor
