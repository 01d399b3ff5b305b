#include "executor/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>

namespace cce::executor {
namespace {

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The error for `yaml`, or "" if it loads.
std::string ErrorOf(const std::string& yaml) {
  StatusOr<IsolationPolicy> p = LoadIsolationPolicy(yaml, "p.yaml");
  return p.ok() ? "" : p.status().message();
}

void ExpectRefused(const std::string& yaml, const std::string& field, const std::string& why) {
  std::string err = ErrorOf(yaml);
  EXPECT_NE(err.find(field), std::string::npos) << "yaml: " << yaml << "\nerror: " << err;
  EXPECT_NE(err.find(why), std::string::npos) << "yaml: " << yaml << "\nerror: " << err;
}

TEST(IsolationPolicy, DefaultsAreSafeAndValid) {
  IsolationPolicy p;
  EXPECT_TRUE(ValidateIsolationPolicy(p).ok()) << ValidateIsolationPolicy(p).ToString();
  EXPECT_EQ(p.uid, 1000u);
  EXPECT_EQ(p.gid, 1000u);
  EXPECT_EQ(p.host_id_base, 100000u);
  EXPECT_EQ(p.id_map_size, 65536u);
  EXPECT_TRUE(p.readonly_rootfs);
  EXPECT_TRUE(p.capabilities.empty());
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_TRUE(p.network_loopback_only);
  EXPECT_EQ(p.namespaces.size(), 7u);
  EXPECT_EQ(p.pids_max, 512);
  EXPECT_EQ(p.tmp_max_bytes, 256 * kMiB);
  EXPECT_EQ(p.output_max_bytes, 1024 * kMiB);
  EXPECT_EQ(p.rlimit_nofile, 1024u);
  for (const char* m : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                        "/sys/firmware", "/proc/scsi", "/proc/acpi", "/sys/kernel/security"}) {
    EXPECT_TRUE(Has(p.masked_paths, m)) << m;
  }
  EXPECT_TRUE(Has(p.readonly_paths, "/proc/sys"));
  EXPECT_TRUE(Has(p.readonly_paths, "/proc/sysrq-trigger"));
}

TEST(LoadIsolationPolicy, EmptyFileGivesDefaults) {
  StatusOr<IsolationPolicy> p = LoadIsolationPolicy("", "p.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->pids_max, 512);
}

TEST(LoadIsolationPolicy, ReadsEveryTunableField) {
  const char* yaml = R"(
user_namespace: {host_id_base: 200000, size: 65536}
user: {uid: 1234, gid: 2345}
readonly_rootfs: true
capabilities: []
namespaces: [pid, ipc, uts, mount, cgroup, network, user]
network: loopback
no_new_privileges: true
rlimits: {nofile: 4096, core: 0, memlock_bytes: 0}
masked_paths: [/proc/modules]
readonly_paths: [/sys/kernel/mm]
tmp: {size_mib: 64, exec: false}
shm: {size_mib: 8}
output: {max_mib: 100}
memory_mib: 512
pids_max: 128
cpus: 1.5
timeout_seconds: 60
max_stdout_bytes: 1000
max_stderr_bytes: 2000
seccomp: {extra_denies: [getcpu, getcpu]}
oom_score_adj: 900
)";
  StatusOr<IsolationPolicy> p = LoadIsolationPolicy(yaml, "p.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id_base, 200000u);
  EXPECT_EQ(p->uid, 1234u);
  EXPECT_EQ(p->gid, 2345u);
  EXPECT_EQ(p->rlimit_nofile, 4096u);
  EXPECT_EQ(p->rlimit_memlock_bytes, 0u);
  EXPECT_TRUE(Has(p->masked_paths, "/proc/modules"));
  EXPECT_TRUE(Has(p->masked_paths, "/proc/kcore"));  // added to, not replaced
  EXPECT_TRUE(Has(p->readonly_paths, "/sys/kernel/mm"));
  EXPECT_EQ(p->tmp_max_bytes, 64 * kMiB);
  EXPECT_FALSE(p->tmp_exec);
  EXPECT_EQ(p->shm_max_bytes, 8 * kMiB);
  EXPECT_EQ(p->output_max_bytes, 100 * kMiB);
  EXPECT_EQ(p->memory_mib, 512u);
  EXPECT_EQ(p->pids_max, 128);
  EXPECT_DOUBLE_EQ(p->cpus, 1.5);
  EXPECT_EQ(p->timeout_seconds, 60);
  EXPECT_EQ(p->max_stdout_bytes, 1000u);
  EXPECT_EQ(p->max_stderr_bytes, 2000u);
  EXPECT_EQ(p->seccomp_extra_denies, std::vector<std::string>{"getcpu"});
  EXPECT_EQ(p->oom_score_adj, 900);
}

// Each mandatory control: the weakening value is refused with the field named.
TEST(LoadIsolationPolicy, RefusesEveryWeakeningOfAMandatoryControl) {
  ExpectRefused("capabilities: [CAP_SYS_ADMIN]", "p.yaml:1:15: capabilities",
                "'CAP_SYS_ADMIN': the container gets no capability");
  ExpectRefused("readonly_rootfs: false", "readonly_rootfs", "always read-only");
  ExpectRefused("no_new_privileges: false", "no_new_privileges", "always set");
  ExpectRefused("namespaces: [pid, ipc, uts, mount, cgroup, user]", "namespaces",
                "'network' missing");
  ExpectRefused("namespaces: [pid, ipc, uts, mount, cgroup, network, user, time]", "namespaces",
                "'time': unknown");
  ExpectRefused("network: host", "network", "only 'loopback'");
  ExpectRefused("user: {uid: 0}", "user.uid", "must not run as root");
  ExpectRefused("user: {gid: 0}", "user.gid", "must not run as root");
  ExpectRefused("user_namespace: {host_id_base: 0}", "user_namespace.host_id_base",
                "expected an integer in 65536..");
  ExpectRefused("rlimits: {core: 1}", "rlimits.core", "expected an integer in 0..0");
  ExpectRefused("oom_score_adj: -1000", "oom_score_adj", "expected an integer in 0..1000");
  ExpectRefused("user: {uid: 70000}", "user.uid", "outside the user namespace mapping");
}

TEST(LoadIsolationPolicy, IsStrict) {
  ExpectRefused("privileged: true", "p.yaml:1:1: privileged", "unknown field");
  ExpectRefused("pids_max: 10\npids_max: 100000", "pids_max", "repeated field");
  ExpectRefused("pids_max: many", "pids_max", "expected an integer");
  ExpectRefused("pids_max: 1", "pids_max", "expected an integer in 8..");
  ExpectRefused("cpus: 0", "cpus", "0.01..1024");
  ExpectRefused("cpus: nan", "cpus", "0.01..1024");
  ExpectRefused("tmp: {exec: \"true\"}", "tmp.exec", "expected true or false");
  ExpectRefused("tmp: {size: 1}", "tmp.size", "unknown field");
  ExpectRefused("masked_paths: [relative]", "masked_paths", "expected an absolute path");
  ExpectRefused("masked_paths: [/etc/passwd]", "masked_paths", "must be under /proc or /sys");
  ExpectRefused("masked_paths: [\"/proc/a b\"]", "masked_paths", "expected an absolute path");
  ExpectRefused("seccomp: {extra_denies: [\"a;b\"]}", "seccomp.extra_denies",
                "expected a syscall name");
  ExpectRefused("[1, 2]", "(top)", "expected a mapping");
  ExpectRefused("memory_mib: [1", "p.yaml:", "");
  EXPECT_NE(ErrorOf(std::string(kMaxPolicyBytes + 1, ' ')).find("larger than"), std::string::npos);
}

TEST(ValidateIsolationPolicy, RefusesWeakenedPoliciesBuiltInCode) {
  // RenderRuntimeConfig calls this, so a policy built in code cannot skip the checks.
  auto refused = [](const std::function<void(IsolationPolicy&)>& weaken, const std::string& field) {
    IsolationPolicy p;
    weaken(p);
    Status s = ValidateIsolationPolicy(p);
    EXPECT_FALSE(s.ok()) << field;
    EXPECT_NE(s.message().find(field), std::string::npos) << s.message();
  };
  refused([](IsolationPolicy& p) { p.capabilities = {"CAP_NET_RAW"}; }, "capabilities");
  refused([](IsolationPolicy& p) { p.readonly_rootfs = false; }, "readonly_rootfs");
  refused([](IsolationPolicy& p) { p.no_new_privileges = false; }, "no_new_privileges");
  refused([](IsolationPolicy& p) { p.network_loopback_only = false; }, "network");
  refused([](IsolationPolicy& p) { p.uid = 0; }, "user.uid");
  refused([](IsolationPolicy& p) { p.host_id_base = 0; }, "host_id_base");
  refused([](IsolationPolicy& p) { p.namespaces.pop_back(); }, "namespaces");
  refused([](IsolationPolicy& p) { p.namespaces.emplace_back("pid"); }, "namespaces");
  refused(
      [](IsolationPolicy& p) {
        p.masked_paths.erase(
            std::find(p.masked_paths.begin(), p.masked_paths.end(), "/proc/kcore"));
      },
      "masked_paths");
  refused([](IsolationPolicy& p) { p.readonly_paths.clear(); }, "readonly_paths");
  refused([](IsolationPolicy& p) { p.pids_max = 0; }, "pids_max");
  refused([](IsolationPolicy& p) { p.oom_score_adj = -1; }, "oom_score_adj");
}

}  // namespace
}  // namespace cce::executor
