#include "executor/apparmor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <span>
#include <string>

#include "base/fd.h"
#include "base/subprocess.h"
#include "base/temp_dir_testing.h"
#include "executor/policy.h"

namespace cce::executor {
namespace {

constexpr const char* kParser = "/usr/sbin/apparmor_parser";

using ::cce::testing::TempDir;

// Compiles `profile` with apparmor_parser without loading it into a kernel
// (-Q --skip-kernel-load, -K no cache): exit 0 means it is valid policy.
RunResult Compile(const std::string& profile) {
  TempDir dir("apparmor-test");
  EXPECT_FALSE(dir.path().empty());
  std::string file = dir.path() + "/profile";
  EXPECT_TRUE(WriteNewFile(file,
                           std::span<const uint8_t>(
                               reinterpret_cast<const uint8_t*>(profile.data()), profile.size()),
                           0600)
                  .ok());
  SpawnOptions o;
  o.argv = {kParser, "-Q", "-K", file};
  StatusOr<RunResult> r = RunAndCapture(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : RunResult{};
}

void RequireParser() {
  // A missing parser fails the test (Debian package `apparmor`, in `make deps`).
  ASSERT_EQ(access(kParser, X_OK), 0) << kParser << " missing: install the Debian package apparmor";
}

TEST(RenderAppArmorProfile, CompilesWithApparmorParser) {
  RequireParser();
  StatusOr<std::string> p =
      RenderAppArmorProfile(IsolationPolicy{}, "cce-job-42", {"/data/census", "/data/b"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  RunResult r = Compile(*p);
  EXPECT_TRUE(r.status.success()) << r.status.ToString() << "\n" << r.output << "\n" << *p;
}

TEST(RenderAppArmorProfile, ABrokenProfileFailsToCompile) {
  // The check above can fail: the same profile with one rule damaged is refused.
  RequireParser();
  StatusOr<std::string> p = RenderAppArmorProfile(IsolationPolicy{}, "cce-job-42", {});
  ASSERT_TRUE(p.ok());
  std::string broken = *p;
  size_t at = broken.find("  deny mount,\n");
  ASSERT_NE(at, std::string::npos);
  broken.replace(at, 14, "  deny mount\n");
  RunResult r = Compile(broken);
  EXPECT_FALSE(r.status.success()) << r.output;
  EXPECT_NE(r.output.find("error"), std::string::npos) << r.output;
}

TEST(RenderAppArmorProfile, ConfinesWritesMountsSignalsAndSockets) {
  StatusOr<std::string> p = RenderAppArmorProfile(IsolationPolicy{}, "cce-job-1", {"/data/x"});
  ASSERT_TRUE(p.ok());
  for (const char* rule :
       {"profile cce-job-1 flags=(attach_disconnected,mediate_deleted) {", "  /** mrix,\n",
        "  /output/** rwlk,\n", "  /tmp/** rwlk,\n", "  deny /data/x/** wl,\n",
        "  deny @{PROC}/sys/kernel/** wl,\n", "  deny @{PROC}/sys/** wl,\n", "  deny /sys/** wl,\n",
        "  deny mount,\n", "  deny umount,\n", "  deny pivot_root,\n", "  deny capability,\n",
        "  deny network raw,\n", "  deny network packet,\n",
        "  signal (send, receive) peer=cce-job-1,\n",
        "  ptrace (trace, read, tracedby, readby) peer=cce-job-1,\n"}) {
    EXPECT_NE(p->find(rule), std::string::npos) << "missing: " << rule << "\n" << *p;
  }
  // No write permission anywhere but the writable places: every rule granting
  // 'w' is under /output, /tmp, /dev/shm or one of the character devices.
  size_t pos = 0;
  while ((pos = p->find('\n', pos)) != std::string::npos) {
    size_t end = p->find('\n', pos + 1);
    if (end == std::string::npos) break;
    std::string line = p->substr(pos + 1, end - pos - 1);
    pos = end;
    if (line.rfind("  /", 0) != 0) continue;  // only allow rules on paths
    std::string perms = line.substr(line.rfind(' ') + 1);
    if (perms.find('w') == std::string::npos) continue;
    bool writable_place = line.rfind("  /output/", 0) == 0 || line.rfind("  /tmp/", 0) == 0 ||
                          line.rfind("  /dev/shm/", 0) == 0 || line.rfind("  /dev/", 0) == 0;
    EXPECT_TRUE(writable_place) << "write granted by: " << line;
  }
}

TEST(RenderAppArmorProfile, RefusesInjection) {
  IsolationPolicy policy;
  EXPECT_FALSE(RenderAppArmorProfile(policy, "x { capability, }", {}).ok());
  EXPECT_FALSE(RenderAppArmorProfile(policy, "", {}).ok());
  StatusOr<std::string> r = RenderAppArmorProfile(policy, "ok", {"/data/x,\n  /** w"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("data_paths[0]"), std::string::npos);
  EXPECT_FALSE(RenderAppArmorProfile(policy, "ok", {"/data/*"}).ok());
  EXPECT_FALSE(RenderAppArmorProfile(policy, "ok", {"/data/../etc"}).ok());
  IsolationPolicy weak;
  weak.capabilities = {"CAP_SYS_ADMIN"};
  EXPECT_FALSE(RenderAppArmorProfile(weak, "ok", {}).ok());
}

TEST(DetectMacLayer, ReadsTheLsmList) {
  EXPECT_EQ(MacLayerFromLsmList("lockdown,capability,landlock,bpf"), MacLayer::kLandlock);
  EXPECT_EQ(MacLayerFromLsmList("lockdown,capability,landlock,yama,apparmor,bpf\n"),
            MacLayer::kAppArmor);
  EXPECT_EQ(MacLayerFromLsmList("capability,selinux"), MacLayer::kSelinux);
  EXPECT_EQ(MacLayerFromLsmList("capability,landlock,selinux"), MacLayer::kLandlock);
  EXPECT_EQ(MacLayerFromLsmList("capability,yama"), MacLayer::kNone);
  EXPECT_EQ(MacLayerFromLsmList("capability,notlandlock"), MacLayer::kNone);
  EXPECT_EQ(DetectMacLayer("/nonexistent/lsm"), MacLayer::kUnknown);

  TempDir dir("apparmor-test");
  std::string file = dir.path() + "/lsm";
  std::string text = "lockdown,capability,landlock,bpf";
  ASSERT_TRUE(WriteNewFile(file,
                           std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()),
                                                    text.size()),
                           0600)
                  .ok());
  EXPECT_EQ(DetectMacLayer(file), MacLayer::kLandlock);
  // This host: whatever it has, the answer is one we act on or refuse.
  MacLayer host = DetectMacLayer();
  std::cout << "this host's MAC layer: " << MacLayerName(host) << "\n";
}

}  // namespace
}  // namespace cce::executor
