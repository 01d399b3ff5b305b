#include "executor/seccomp.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "base/fd.h"
#include "executor/policy.h"

namespace cce::executor {
namespace {

using nlohmann::json;

const std::string kProfile = std::string(CCE_SOURCE_DIR) + "/data/seccomp/docker-default.json";

json DockerProfile() {
  StatusOr<json> j = LoadDockerSeccompProfile(kProfile);
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? *j : json();
}

SeccompTarget X86Target() {
  SeccompTarget t;
  t.machine = "x86_64";
  t.kernel_major = 6;
  t.kernel_minor = 18;
  return t;
}

// name -> the rules (action, has args) that mention it.
struct Mention {
  std::string action;
  bool conditional = false;
  int errno_ret = -1;
};
std::multimap<std::string, Mention> Mentions(const json& profile) {
  std::multimap<std::string, Mention> out;
  for (const json& rule : profile["syscalls"]) {
    Mention m;
    m.action = rule["action"].get<std::string>();
    m.conditional = rule.contains("args") && !rule["args"].empty();
    if (rule.contains("errnoRet")) m.errno_ret = rule["errnoRet"].get<int>();
    for (const json& n : rule["names"]) out.emplace(n.get<std::string>(), m);
  }
  return out;
}

bool AllowedUnconditionally(const json& profile, const std::string& name) {
  auto m = Mentions(profile);
  auto [b, e] = m.equal_range(name);
  return std::any_of(b, e, [](const auto& kv) {
    return kv.second.action == "SCMP_ACT_ALLOW" && !kv.second.conditional;
  });
}

bool AllowedAtAll(const json& profile, const std::string& name) {
  auto m = Mentions(profile);
  auto [b, e] = m.equal_range(name);
  return std::any_of(b, e, [](const auto& kv) { return kv.second.action == "SCMP_ACT_ALLOW"; });
}

json Tightened() {
  StatusOr<json> resolved = ResolveDockerSeccomp(DockerProfile(), X86Target());
  EXPECT_TRUE(resolved.ok()) << resolved.status().ToString();
  if (!resolved.ok()) return {};
  StatusOr<json> t = TightenSeccomp(*resolved, {"getcpu"});
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : json();
}

TEST(ResolveDockerSeccomp, FlattensArchitecturesAndStripsConditions) {
  StatusOr<json> r = ResolveDockerSeccomp(DockerProfile(), X86Target());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["architectures"],
            json::array({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  EXPECT_FALSE(r->contains("archMap"));
  EXPECT_EQ((*r)["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ((*r)["defaultErrnoRet"], 1);
  for (const json& rule : (*r)["syscalls"]) {
    for (const auto& [key, value] : rule.items()) {
      EXPECT_TRUE(key == "names" || key == "action" || key == "errnoRet" || key == "args")
          << "left over key " << key << " in " << rule.dump();
    }
  }
  EXPECT_TRUE(AllowedUnconditionally(*r, "read"));
  EXPECT_TRUE(AllowedUnconditionally(*r, "write"));
  EXPECT_TRUE(AllowedUnconditionally(*r, "arch_prctl"));  // includes arches amd64
  EXPECT_FALSE(AllowedAtAll(*r, "s390_runtime_instr"));   // includes arches s390
  EXPECT_FALSE(AllowedAtAll(*r, "open_by_handle_at"));    // includes CAP_DAC_READ_SEARCH
}

TEST(ResolveDockerSeccomp, EmptyCapabilitiesDropEveryCapSysAdminOnlySyscall) {
  json docker = DockerProfile();
  // Names Docker allows only with CAP_SYS_ADMIN: in an includes.caps rule and
  // in no rule without a caps condition.
  std::set<std::string> admin_only, unconditional;
  for (const json& rule : docker["syscalls"]) {
    bool admin = rule.contains("includes") && rule["includes"].contains("caps") &&
                 rule["includes"]["caps"] == json::array({"CAP_SYS_ADMIN"});
    bool has_caps = rule.contains("includes") && rule["includes"].contains("caps");
    for (const json& n : rule["names"]) {
      if (admin) admin_only.insert(n.get<std::string>());
      if (!has_caps && rule["action"] == "SCMP_ACT_ALLOW") unconditional.insert(n);
    }
  }
  for (const std::string& n : unconditional) admin_only.erase(n);
  ASSERT_GT(admin_only.size(), 15u);  // mount, umount2, unshare, setns, bpf, fsopen, ...
  ASSERT_TRUE(admin_only.count("mount"));

  StatusOr<json> r = ResolveDockerSeccomp(docker, X86Target());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const std::string& n : admin_only) {
    EXPECT_FALSE(AllowedAtAll(*r, n)) << n << " is allowed without CAP_SYS_ADMIN";
  }
  // With CAP_SYS_ADMIN they come back: the condition is evaluated, not ignored.
  SeccompTarget admin = X86Target();
  admin.capabilities = {"CAP_SYS_ADMIN"};
  StatusOr<json> with_admin = ResolveDockerSeccomp(docker, admin);
  ASSERT_TRUE(with_admin.ok());
  EXPECT_TRUE(AllowedUnconditionally(*with_admin, "mount"));
  // And clone is only the flag-filtered rule without it.
  EXPECT_TRUE(AllowedAtAll(*r, "clone"));
  EXPECT_FALSE(AllowedUnconditionally(*r, "clone"));
}

TEST(ResolveDockerSeccomp, MinKernelIsEvaluated) {
  SeccompTarget old = X86Target();
  old.kernel_major = 4;
  old.kernel_minor = 4;
  StatusOr<json> r = ResolveDockerSeccomp(DockerProfile(), old);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(AllowedAtAll(*r, "process_vm_readv"));  // includes minKernel 4.8
  StatusOr<json> n = ResolveDockerSeccomp(DockerProfile(), X86Target());
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(AllowedAtAll(*n, "process_vm_readv"));  // ... which is why Tighten removes it
}

TEST(ResolveDockerSeccomp, FailsClosedOnWhatItDoesNotUnderstand) {
  json p = DockerProfile();
  p["syscalls"][0]["includes"] = {{"os", "linux"}};
  StatusOr<json> r = ResolveDockerSeccomp(p, X86Target());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("syscalls[0].includes.os"), std::string::npos)
      << r.status().message();

  p = DockerProfile();
  p["syscalls"][3]["action"] = "SCMP_ACT_MAYBE";
  r = ResolveDockerSeccomp(p, X86Target());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("syscalls[3].action"), std::string::npos);

  p = DockerProfile();
  p["archMap"] = json::array({{{"architecture", "SCMP_ARCH_AARCH64"}}});
  r = ResolveDockerSeccomp(p, X86Target());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("SCMP_ARCH_X86_64"), std::string::npos);

  p = DockerProfile();
  p["syscalls"][2]["args"][0]["op"] = "SCMP_CMP_SOMETIMES";
  r = ResolveDockerSeccomp(p, X86Target());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("syscalls[2].args[0].op"), std::string::npos);
}

TEST(TightenSeccomp, DeniesEveryTightenedSyscall) {
  json t = Tightened();
  ASSERT_TRUE(t.is_object());
  auto mentions = Mentions(t);
  std::vector<std::string> denied = TightenedDenies();
  denied.emplace_back("getcpu");  // the extra deny
  for (const std::string& n : denied) {
    EXPECT_FALSE(AllowedAtAll(t, n)) << n;
    auto [b, e] = mentions.equal_range(n);
    ASSERT_NE(b, e) << n << " has no explicit deny rule";
    for (auto it = b; it != e; ++it) {
      EXPECT_EQ(it->second.action, "SCMP_ACT_ERRNO") << n;
      EXPECT_EQ(it->second.errno_ret, 1) << n;  // EPERM
    }
  }
  for (const char* n : {"io_uring_setup", "userfaultfd", "bpf", "perf_event_open", "keyctl",
                        "ptrace", "unshare", "setns", "mount", "kexec_load", "init_module"}) {
    EXPECT_NE(std::find(denied.begin(), denied.end(), n), denied.end()) << n;
  }
  // clone3 gets ENOSYS so glibc falls back to clone.
  auto [b, e] = mentions.equal_range("clone3");
  ASSERT_NE(b, e);
  EXPECT_EQ(b->second.action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(b->second.errno_ret, 38);
  EXPECT_FALSE(AllowedAtAll(t, "clone3"));
}

TEST(TightenSeccomp, FiltersArgumentsAndKeepsWhatProgramsNeed) {
  json t = Tightened();
  ASSERT_TRUE(t.is_object());
  EXPECT_EQ(t["architectures"], json::array({"SCMP_ARCH_X86_64"}));
  for (const char* n : {"read", "write", "openat", "execve", "mmap", "futex", "exit_group",
                        "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
                        "prctl", "seccomp"}) {
    EXPECT_TRUE(AllowedUnconditionally(t, n)) << n;
  }
  for (const char* n : {"clone", "personality", "socket", "memfd_create"}) {
    EXPECT_TRUE(AllowedAtAll(t, n)) << n;
    EXPECT_FALSE(AllowedUnconditionally(t, n)) << n << " must be argument-filtered";
  }
  bool clone_masked = false;
  for (const json& rule : t["syscalls"]) {
    if (rule["names"] == json::array({"clone"})) {
      ASSERT_EQ(rule["args"].size(), 1u);
      EXPECT_EQ(rule["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
      EXPECT_EQ(rule["args"][0]["value"], 0x7E020000u);  // CLONE_NEW* flags
      EXPECT_EQ(rule["args"][0]["valueTwo"], 0u);
      clone_masked = true;
    }
  }
  EXPECT_TRUE(clone_masked);
}

TEST(TightenSeccomp, RefusesAProfileThatAllowsByDefault) {
  json p = {{"defaultAction", "SCMP_ACT_ALLOW"},
            {"architectures", json::array({"SCMP_ARCH_X86_64"})},
            {"syscalls", json::array()}};
  StatusOr<json> t = TightenSeccomp(p, {});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("defaultAction"), std::string::npos);
  p["defaultAction"] = "SCMP_ACT_ERRNO";
  EXPECT_FALSE(TightenSeccomp(p, {"bad name"}).ok());
}

TEST(BuildSeccompProfile, ShippedProfileNextToTheBinaries) {
  StatusOr<std::string> path = DefaultSeccompProfilePath();
  ASSERT_TRUE(path.ok());
  EXPECT_NE(path->find("/share/cce/seccomp/docker-default.json"), std::string::npos);
  ASSERT_EQ(access(path->c_str(), R_OK), 0)
      << *path << ": the build must copy data/seccomp there (target cce_seccomp_data)";
  IsolationPolicy policy;
  StatusOr<json> p = BuildSeccompProfile(*path, policy);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE(AllowedAtAll(*p, "ptrace"));
  StatusOr<json> missing = BuildSeccompProfile("/nonexistent/profile.json", policy);
  EXPECT_FALSE(missing.ok());
}

// ---- The profile in the kernel ------------------------------------------------
// Loads the tightened OCI profile with libseccomp the way runc does (rules
// whose action is the default action are skipped, as runc does; unknown names
// are skipped) in a forked child and calls the syscalls for real.

uint32_t ActionOf(const json& rule_or_profile, const char* action_key, const char* errno_key) {
  std::string a = rule_or_profile[action_key].get<std::string>();
  int e = rule_or_profile.contains(errno_key) ? rule_or_profile[errno_key].get<int>() : 1;
  if (a == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (a == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(static_cast<uint16_t>(e));
  if (a == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (a == "SCMP_ACT_KILL" || a == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL;
  if (a == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (a == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare OpOf(const std::string& op) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  return SCMP_CMP_MASKED_EQ;
}

// Returns "" or what failed.
std::string LoadWithLibseccomp(const json& p) {
  uint32_t def = ActionOf(p, "defaultAction", "defaultErrnoRet");
  scmp_filter_ctx ctx = seccomp_init(def);
  if (ctx == nullptr) return "seccomp_init";
  std::unique_ptr<void, void (*)(void*)> guard(ctx, [](void* c) { seccomp_release(c); });
  for (const json& rule : p["syscalls"]) {
    uint32_t act = ActionOf(rule, "action", "errnoRet");
    if (act == def) continue;
    std::vector<scmp_arg_cmp> cmps;
    if (rule.contains("args")) {
      for (const json& a : rule["args"]) {
        cmps.push_back(scmp_arg_cmp{a["index"].get<unsigned>(), OpOf(a["op"]),
                                    a["value"].get<uint64_t>(), a["valueTwo"].get<uint64_t>()});
      }
    }
    for (const json& n : rule["names"]) {
      int nr = seccomp_syscall_resolve_name(n.get<std::string>().c_str());
      if (nr == __NR_SCMP_ERROR) continue;
      int rc =
          seccomp_rule_add_array(ctx, act, nr, static_cast<unsigned>(cmps.size()), cmps.data());
      if (rc != 0) return "rule " + n.get<std::string>() + ": " + std::strerror(-rc);
    }
  }
  if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) != 0) return "NNP";
  int rc = seccomp_load(ctx);
  if (rc != 0) return std::string("seccomp_load: ") + std::strerror(-rc);
  return "";
}

// Runs `probe` in a child under the profile; returns its errno (0 = success).
int ErrnoUnder(const json& profile, const std::function<long()>& probe) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string err = LoadWithLibseccomp(profile);
    int result = 0;
    if (!err.empty()) {
      result = -1000;
    } else {
      errno = 0;
      long r = probe();
      result = r < 0 ? errno : 0;
    }
    (void)!write(fds[1], &result, sizeof result);
    _exit(0);
  }
  close(fds[1]);
  int result = -2;
  if (read(fds[0], &result, sizeof result) != sizeof result) result = -3;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return result;
}

TEST(TightenSeccomp, KernelEnforcesTheTightenedProfile) {
  json t = Tightened();
  ASSERT_TRUE(t.is_object());
  ASSERT_EQ(ErrnoUnder(t, [] { return static_cast<long>(getpid()); }), 0)
      << "the profile did not load or blocks getpid";
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_io_uring_setup, 1, nullptr); }), EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_userfaultfd, 0); }), EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_keyctl, 0, 0, 0, 0, 0); }), EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_bpf, 0, nullptr, 0); }), EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return static_cast<long>(unshare(CLONE_NEWUSER)); }), EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_ptrace, 0, 0, 0, 0); }), EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_clone3, nullptr, 0); }), ENOSYS);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0); }),
            EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return static_cast<long>(socket(AF_PACKET, SOCK_RAW, 0)); }), EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return static_cast<long>(socket(AF_INET, SOCK_RAW, 1)); }), EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_memfd_create, "x", 0); }), EPERM);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_personality, 0x0040000); }), EPERM);
  // ... and what ordinary programs need still works.
  EXPECT_EQ(ErrnoUnder(t, [] { return static_cast<long>(socket(AF_INET, SOCK_STREAM, 0)); }), 0);
  EXPECT_EQ(ErrnoUnder(t, [] { return static_cast<long>(socket(AF_UNIX, SOCK_DGRAM, 0)); }), 0);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_memfd_create, "x", 0x0008u); }), 0);
  EXPECT_EQ(ErrnoUnder(t, [] { return syscall(SYS_personality, 0xffffffffu); }), 0);
  EXPECT_EQ(ErrnoUnder(t,
                       [] {
                         auto c = static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
                         if (c == 0) _exit(0);
                         if (c > 0) waitpid(c, nullptr, 0);
                         return static_cast<long>(c);
                       }),
            0);
  // The untightened Docker profile lets ptrace through on this kernel: the
  // check above is Tighten's doing (this is how the test can fail).
  StatusOr<json> docker = ResolveDockerSeccomp(DockerProfile(), X86Target());
  ASSERT_TRUE(docker.ok());
  EXPECT_NE(
      ErrnoUnder(*docker, [] { return syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0); }),
      EPERM);
}

}  // namespace
}  // namespace cce::executor
