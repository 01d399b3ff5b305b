// The escape probe run on the host with no sandbox at all, to show each probe
// can report ESCAPED (and so the confined run can fail), and as `nobody` with
// no_new_privs, to show the privileged probes report BLOCKED when the
// privilege is missing. Also shows the confined run's checks fire on an
// unconfined report and on an output copied by following links.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "e2e/harness.h"
#include "escape_harness.h"

namespace cce::escape_test {
namespace {

namespace fs = std::filesystem;
using cce::e2e::CommandResult;
using cce::e2e::RunCommand;
using cce::e2e::TempDir;
using cce::e2e::WriteFile;

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// Unconfined, each bomb runs to its limit: keep them small.
const std::vector<std::string> kSmallLimits = {"--fork-limit",    "64", "--mem-limit-mib",    "32",
                                               "--tmp-limit-mib", "8",  "--output-limit-mib", "8"};

std::vector<std::string> HostArgs(const HostTargets& host) {
  std::vector<std::string> args = host.ProbeArgs(host.output_dir, host.data_dir);
  args.insert(args.end(), kSmallLimits.begin(), kSmallLimits.end());
  return args;
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Host features a probe needs before it can escape at all. A probe listed
// here may report BLOCKED unconfined only when the host lacks the feature.
bool HostLacksFeatureFor(const std::string& probe, std::string* why) {
  if (probe == "proc_sysrq" && !Exists("/proc/sysrq-trigger")) {
    *why = "no /proc/sysrq-trigger (kernel without CONFIG_MAGIC_SYSRQ)";
    return true;
  }
  if (probe == "kexec_load" && !Exists("/sys/kernel/kexec_loaded")) {
    *why = "no /sys/kernel/kexec_loaded (kernel without kexec)";
    return true;
  }
  if (probe == "init_module" && !Exists("/proc/modules")) {
    *why = "no /proc/modules (kernel without module support)";
    return true;
  }
  if (probe == "swapon" && !Exists("/proc/swaps")) {
    *why = "no /proc/swaps (kernel without swap)";
    return true;
  }
  if (probe == "io_uring" && ReadTrimmed("/proc/sys/kernel/io_uring_disabled") == "2") {
    *why = "kernel.io_uring_disabled=2";
    return true;
  }
  return false;
}

class EscapeUnconfined : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "the escape suite runs as root (ctest label 'root')";
    ASSERT_TRUE(Exists(ProbePath())) << ProbePath() << " missing: build target cce-escape-probe";
    names_ = ProbeNames();
    ASSERT_GE(names_.size(), 25u) << "cce-escape-probe --list";
  }
  std::vector<std::string> names_;
};

TEST_F(EscapeUnconfined, RootOnTheHostEscapesEveryProbe) {
  HostTargets host;
  CommandResult r = RunCommand(Concat({ProbePath()}, HostArgs(host)));
  SCOPED_TRACE("probe stdout:\n" + r.out + "\nstderr:\n" + r.err);
  EXPECT_EQ(r.exit_code, 1) << "exit 1 means: something escaped";
  ProbeReport report = ParseProbeOutput(r.out);
  EXPECT_TRUE(report.malformed.empty());
  EXPECT_TRUE(report.duplicates.empty());
  int escaped = 0;
  for (const auto& name : names_) {
    auto it = report.probes.find(name);
    ASSERT_NE(it, report.probes.end()) << name << ": no PROBE line";
    const ProbeLine& line = it->second;
    if (name.rfind("output_", 0) == 0) {
      EXPECT_EQ(line.verdict, "PLANTED") << name << ": " << line.detail;
      continue;
    }
    std::string why;
    if (line.verdict == "BLOCKED" && HostLacksFeatureFor(name, &why)) {
      std::cout << "note: " << name << " BLOCKED on this host: " << why << "\n";
      continue;
    }
    EXPECT_EQ(line.verdict, "ESCAPED") << name << ": " << line.detail;
    ++escaped;
  }
  // The list, each shown able to report ESCAPED on any Linux host.
  for (const char* must : {"mount",          "unshare_user", "setns_init",
                           "ptrace_outside", "kill_outside", "read_proc1_environ",
                           "write_root",     "write_etc",    "write_data",
                           "mknod",          "open_dev",     "raw_socket",
                           "packet_socket",  "tcp_plane",    "tcp_loopback",
                           "runtime_socket", "bpf",          "perf_event_open",
                           "userfaultfd",    "keyctl",       "open_by_handle_at",
                           "memfd_exec",     "setuid0",      "capabilities",
                           "no_new_privs",   "seccomp_mode", "fork_bomb",
                           "memory_bomb",    "fill_tmp",     "fill_output"}) {
    EXPECT_EQ(report.probes[must].verdict, "ESCAPED") << must << ": " << report.probes[must].detail;
  }
  ASSERT_TRUE(report.has_summary);
  EXPECT_EQ(report.escaped, escaped);
  EXPECT_EQ(report.error, 0);

  // Planted as the test expects, and nothing else left behind.
  EXPECT_EQ(fs::read_symlink(host.output_dir + "/link"), host.host_file);
  struct stat st {};
  ASSERT_EQ(::lstat((host.output_dir + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(host.output_dir)) left.insert(e.path().filename());
  EXPECT_EQ(left, (std::set<std::string>{"fifo", "link", "link_dir", "link_root", "sock"}));
  std::set<std::string> data_left;
  for (const auto& e : fs::directory_iterator(host.data_dir)) data_left.insert(e.path().filename());
  EXPECT_EQ(data_left, std::set<std::string>{"data.csv"});
  for (const char* dir : {"/", "/etc", "/tmp"}) {
    for (const auto& e : fs::directory_iterator(dir)) {
      EXPECT_EQ(e.path().filename().string().find("cce-probe"), std::string::npos)
          << "left behind: " << e.path();
    }
  }
  std::ifstream mounts("/proc/self/mountinfo");
  std::string mountinfo{std::istreambuf_iterator<char>(mounts), {}};
  EXPECT_EQ(mountinfo.find("cce-probe"), std::string::npos) << "a probe mount was left";
  std::string why;
  EXPECT_TRUE(host.outside.Untouched(&why)) << why;
  // The probe proves access without printing what it could read.
  for (const auto& canary : host.Canaries()) {
    EXPECT_EQ(r.out.find(canary), std::string::npos);
  }
}

// The confined run's checks, fed this unconfined run, must complain: the
// suite can fail.
TEST_F(EscapeUnconfined, ConfinedChecksFireOnAnUnconfinedRun) {
  HostTargets host;
  CommandResult r = RunCommand(Concat({ProbePath()}, HostArgs(host)));
  std::vector<std::string> problems = ConfinedProblems(ParseProbeOutput(r.out), names_);
  EXPECT_GE(problems.size(), 25u);
  bool mentions_mount = false;
  for (const auto& p : problems) mentions_mount |= p.rfind("mount: ESCAPED", 0) == 0;
  EXPECT_TRUE(mentions_mount) << "the mount probe's escape is reported";

  // An output copied naively (links followed, specials kept) is caught by
  // both output checks.
  TempDir naive;
  fs::create_directories(naive / "files");
  fs::copy_symlink(host.output_dir + "/link", naive / "files/link");
  ASSERT_EQ(::mkfifo((naive / "files/fifo").c_str(), 0644), 0);
  std::ifstream followed(host.output_dir + "/link", std::ios::binary);
  WriteFile(naive / "files/followed-link",
            std::string{std::istreambuf_iterator<char>(followed), {}});
  EXPECT_FALSE(SpecialFiles(naive.path()).empty());
  EXPECT_FALSE(FilesContaining(naive.path(), {host.canary_host_file}).empty());
  // And a clean tree passes them.
  TempDir clean;
  WriteFile(clean / "files/result.csv", "x\n");
  EXPECT_TRUE(SpecialFiles(clean.path()).empty());
  EXPECT_TRUE(FilesContaining(clean.path(), {host.canary_host_file}).empty());
}

// Without privileges (nobody, no_new_privs, no capabilities) the privileged
// probes must report BLOCKED: the probe does not just say ESCAPED always.
TEST_F(EscapeUnconfined, UnprivilegedUserIsBlockedFromPrivilegedProbes) {
  HostTargets host;
  ::chmod(host.output_dir.c_str(), 01777);
  ASSERT_TRUE(Exists("/usr/bin/setpriv")) << "setpriv (util-linux) is needed";
  CommandResult r =
      RunCommand(Concat({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                         "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", ProbePath()},
                        HostArgs(host)));
  SCOPED_TRACE("probe stdout:\n" + r.out + "\nstderr:\n" + r.err);
  ProbeReport report = ParseProbeOutput(r.out);
  ASSERT_TRUE(report.has_summary);
  std::vector<std::string> blocked = {"capabilities",
                                      "no_new_privs",
                                      "setuid0",
                                      "mount",
                                      "unshare_net",
                                      "setns_init",
                                      "chroot",
                                      "hostname",
                                      "ptrace_outside",
                                      "kill_outside",
                                      "read_proc1_environ",
                                      "write_root",
                                      "write_etc",
                                      "write_data",
                                      "read_other_dataset",
                                      "mknod",
                                      "open_dev",
                                      "proc_sys",
                                      "sys_write",
                                      "raw_socket",
                                      "packet_socket",
                                      "open_by_handle_at",
                                      "reboot",
                                      "swapon"};
  if (ReadTrimmed("/proc/sys/kernel/unprivileged_bpf_disabled") != "0") blocked.push_back("bpf");
  for (const auto& name : blocked) {
    EXPECT_EQ(report.probes[name].verdict, "BLOCKED") << name << ": " << report.probes[name].detail;
  }
  std::string why;
  EXPECT_TRUE(host.outside.Untouched(&why)) << why;
}

TEST_F(EscapeUnconfined, OnlyRunsTheNamedProbesAndRefusesUnknownNames) {
  CommandResult r = RunCommand({ProbePath(), "--only", "no_new_privs,capabilities"});
  ProbeReport report = ParseProbeOutput(r.out);
  EXPECT_EQ(report.probes.size(), 2u) << r.out;
  EXPECT_EQ(report.probes.count("no_new_privs"), 1u);
  EXPECT_EQ(report.probes.count("capabilities"), 1u);

  CommandResult bad = RunCommand({ProbePath(), "--only", "mount,no_such_probe"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("no_such_probe"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.out.find("PROBE"), std::string::npos) << "nothing runs on a usage error";

  // A probe that cannot run for want of its argument is an ERROR, not BLOCKED.
  CommandResult missing = RunCommand({ProbePath(), "--only", "tcp_plane"});
  EXPECT_EQ(ParseProbeOutput(missing.out).probes["tcp_plane"].verdict, "ERROR") << missing.out;
  EXPECT_EQ(missing.exit_code, 2);
}

}  // namespace
}  // namespace cce::escape_test
