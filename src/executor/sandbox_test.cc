// sandbox_test: `cce sandbox run` end to end through the real CLI binary,
// real runc, mounts, cgroups, seccomp and Landlock, with a busybox-static
// rootfs (dir:) and an OCI layout built here. Needs root (LABELS root).
#include "executor/sandbox.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "base/subprocess.h"
#include "crypto/crypto.h"

namespace cce::executor {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kBusybox[] = "/bin/busybox";  // Debian busybox-static
const std::vector<std::string> kApplets = {"sh",   "echo",  "cat", "ls", "mkdir", "sleep",
                                           "head", "touch", "id",  "wc", "grep",  "env"};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Spit(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
}

std::string Sha256Hex(const std::string& data) {
  return crypto::ToHex(
      crypto::Sha256(crypto::ByteSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size())));
}

la_ssize_t AppendToString(archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

// A layer tar holding busybox and its applets (as symlinks) under bin/.
std::string BusyboxLayer() {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, AppendToString, nullptr), ARCHIVE_OK);
  auto add = [&](const std::string& name, int type, mode_t perm, const std::string& data,
                 const std::string& link) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, static_cast<unsigned>(type));
    archive_entry_set_perm(e, perm);
    if (type == AE_IFREG) archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    if (type == AE_IFLNK) archive_entry_set_symlink(e, link.c_str());
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    if (!data.empty()) archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  };
  add("bin/", AE_IFDIR, 0755, "", "");
  add("bin/busybox", AE_IFREG, 0755, Slurp(kBusybox), "");
  for (const std::string& applet : kApplets) add("bin/" + applet, AE_IFLNK, 0777, "", "busybox");
  add("etc/", AE_IFDIR, 0755, "", "");
  add("etc/motd", AE_IFREG, 0644, "from the image\n", "");
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// An OCI image layout with one busybox image; returns its manifest digest.
std::string WriteOciLayout(const fs::path& dir) {
  fs::create_directories(dir / "blobs/sha256");
  auto put = [&](const std::string& blob) {
    std::string hex = Sha256Hex(blob);
    Spit(dir / "blobs/sha256" / hex, blob);
    return "sha256:" + hex;
  };
  std::string layer = BusyboxLayer();
  std::string layer_digest = put(layer);
  std::string config = json{{"architecture", "amd64"},
                            {"os", "linux"},
                            {"config",
                             {{"Entrypoint", {"/bin/sh", "-c"}},
                              {"Cmd", {"echo from-image > /output/y"}},
                              {"Env", {"PATH=/bin", "GREETING=hello"}},
                              {"WorkingDir", "/etc"}}},
                            {"rootfs", {{"type", "layers"}, {"diff_ids", {layer_digest}}}}}
                           .dump();
  std::string config_digest = put(config);
  std::string manifest = json{{"schemaVersion", 2},
                              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                              {"config",
                               {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                                {"digest", config_digest},
                                {"size", config.size()}}},
                              {"layers",
                               {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                                 {"digest", layer_digest},
                                 {"size", layer.size()}}}}}
                             .dump();
  std::string manifest_digest = put(manifest);
  Spit(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  Spit(dir / "index.json",
       json{{"schemaVersion", 2},
            {"manifests",
             {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
               {"digest", manifest_digest},
               {"size", manifest.size()},
               {"annotations", {{"org.opencontainers.image.ref.name", "1.0"}}}}}}}
           .dump());
  return manifest_digest;
}

struct CliRun {
  int exit_code = -1;
  std::string output;  // stdout + stderr of `cce`
  json result;         // the --output-format json line, if any
};

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "sandbox_test needs root (runc, mounts, cgroups)";
    ASSERT_EQ(access(kBusybox, X_OK), 0) << kBusybox << " missing: install busybox-static";
    ASSERT_EQ(access(cce_.c_str(), X_OK), 0) << cce_ << " missing: build the cce target";
    char tmpl[] = "/tmp/sandbox_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    ASSERT_EQ(chmod(base_.c_str(), 0711), 0);
    work_ = base_ + "/work";
    fs::create_directory(work_);
    ASSERT_EQ(chmod(work_.c_str(), 0711), 0);
    // A rootfs used as dir: (never modified: the sandbox overlays it).
    rootfs_ = base_ + "/rootfs";
    fs::create_directories(rootfs_ + "/bin");
    fs::create_directories(rootfs_ + "/etc");
    fs::copy_file(kBusybox, rootfs_ + "/bin/busybox");
    for (const std::string& applet : kApplets)
      fs::create_symlink("busybox", rootfs_ + "/bin/" + applet);
    Spit(rootfs_ + "/etc/motd", "from the rootfs\n");
    fs::permissions(rootfs_, fs::perms(0755));
    // A dataset directory anybody may write on the host: only the read-only
    // mount can stop the container from writing it.
    data_ = base_ + "/data";
    fs::create_directory(data_);
    Spit(data_ + "/f", "dataset bytes\n");
    fs::permissions(data_, fs::perms(0777));
    fs::permissions(data_ + "/f", fs::perms(0666));
  }

  void TearDown() override {
    if (!base_.empty()) {
      // Nothing of the sandbox is left behind, whatever the test did.
      EXPECT_TRUE(fs::is_empty(work_)) << "work dir not cleaned";
      // Whatever a failing run left (mounts included) goes before remove_all,
      // which would otherwise descend into a leftover mount.
      Status cleaned = CleanupSandbox(work_, job_);
      EXPECT_TRUE(cleaned.ok()) << cleaned.ToString();
      for (const auto& h : fs::directory_iterator("/sys/fs/cgroup")) {
        fs::path cg = h.path() / "cce/workload" / job_;
        EXPECT_FALSE(fs::exists(cg)) << cg << " left";
      }
      EXPECT_FALSE(fs::exists("/run/cce/runc/cce-" + job_)) << "runc state left";
      EXPECT_EQ(Slurp("/proc/self/mountinfo").find(base_), std::string::npos) << "a mount left";
      fs::remove_all(base_);
    }
  }

  // signal_after > 0: `signal` is sent to cce that long after it started.
  CliRun Cce(std::vector<std::string> args, std::chrono::milliseconds signal_after = {},
             int signal = SIGTERM) {
    std::vector<std::string> argv = {cce_, "sandbox", "run", "--work-dir", work_, "--job-id", job_};
    argv.insert(argv.end(), args.begin(), args.end());
    CliRun r;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    UniqueFd rd(p[0]);
    UniqueFd wr(p[1]);
    SpawnOptions opts;
    opts.argv = argv;
    opts.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    opts.fds = {{1, wr.get()}, {2, wr.get()}};
    StatusOr<Subprocess> child = Subprocess::Spawn(opts);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    if (!child.ok()) return r;
    wr.reset();
    std::thread signaller;
    if (signal_after.count() > 0) {
      pid_t pid = child->pid();
      signaller = std::thread([pid, signal_after, signal] {
        std::this_thread::sleep_for(signal_after);
        kill(pid, signal);
      });
    }
    StatusOr<std::string> out = ReadAll(rd.get(), 1 << 20, "cce output");
    if (out.ok()) r.output = *out;
    StatusOr<ExitStatus> st = child->Wait();
    if (signaller.joinable()) signaller.join();
    EXPECT_TRUE(st.ok());
    if (st.ok()) r.exit_code = st->ShellCode();
    size_t brace = r.output.rfind("\n{");
    size_t start =
        r.output.rfind('{', 0) == 0 ? 0 : (brace == std::string::npos ? brace : brace + 1);
    if (start != std::string::npos) r.result = json::parse(r.output.substr(start), nullptr, false);
    return r;
  }

  // The common arguments: a dir: image, the output dir, JSON summary.
  std::vector<std::string> Args(std::vector<std::string> command,
                                std::vector<std::string> extra = {},
                                const std::string& timeout = "60") {
    std::vector<std::string> a = {"--image",         "dir:" + rootfs_, "--output",  out_,
                                  "--output-format", "json",           "--timeout", timeout};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back("--");
    a.insert(a.end(), command.begin(), command.end());
    return a;
  }

  std::vector<std::string> Sh(const std::string& script, std::vector<std::string> extra = {},
                              const std::string& timeout = "60") {
    return Args({"/bin/sh", "-c", script}, std::move(extra), timeout);
  }

  json Manifest() { return json::parse(Slurp(out_ + "/manifest.json"), nullptr, false); }

  const std::string cce_ = std::string(CCE_BIN_DIR) + "/cce";
  std::string base_, work_, rootfs_, data_;
  std::string out_ = "/dev/null/unset";
  std::string job_ = "sandbox-test-" + std::to_string(getpid());

  void SetOut(const std::string& name) { out_ = base_ + "/" + name; }
};

TEST_F(SandboxTest, OutputFilesLandWithTheirDigestsAndStdoutIsCaptured) {
  SetOut("out");
  CliRun r =
      Cce(Sh("echo hi > /output/x; mkdir /output/sub; echo there > /output/sub/y; "
             "echo to-stdout; echo to-stderr >&2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Slurp(out_ + "/files/x"), "hi\n");
  EXPECT_EQ(Slurp(out_ + "/files/sub/y"), "there\n");
  EXPECT_EQ(Slurp(out_ + "/stdout.txt"), "to-stdout\n");
  EXPECT_EQ(Slurp(out_ + "/stderr.txt"), "to-stderr\n");
  json m = Manifest();
  ASSERT_TRUE(m.is_object());
  std::map<std::string, std::string> digests;
  for (const json& f : m["files"]) digests[f["path"]] = f["sha256"];
  EXPECT_EQ(digests["files/x"], Sha256Hex("hi\n"));
  EXPECT_EQ(digests["files/sub/y"], Sha256Hex("there\n"));
  EXPECT_EQ(digests["stdout.txt"], Sha256Hex("to-stdout\n"));
  EXPECT_EQ(digests["stderr.txt"], Sha256Hex("to-stderr\n"));
  EXPECT_EQ(m["exit_code"], 0);
  EXPECT_EQ(r.result["exit_code"], 0);
  EXPECT_EQ(r.result["files"], 2);
  // dir: images are used through an overlay: the rootfs itself is untouched.
  EXPECT_FALSE(fs::exists(rootfs_ + "/output"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/.cce"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/proc"));
}

TEST_F(SandboxTest, ExitCodeIsTheContainers) {
  SetOut("out");
  CliRun r = Cce(Sh("exit 7"));
  EXPECT_EQ(r.exit_code, 7) << r.output;
  EXPECT_EQ(r.result["exit_code"], 7);
}

TEST_F(SandboxTest, RootAndEtcAreNotWritable) {
  SetOut("out");
  CliRun r =
      Cce(Sh("touch /evil && exit 10; echo x > /etc/motd && exit 11; "
             "mkdir /bin/new && exit 12; echo ok > /tmp/t && echo ok > /output/o && exit 0; "
             "exit 13"));
  EXPECT_EQ(r.exit_code, 0) << r.output << Slurp(out_ + "/stderr.txt");
  EXPECT_EQ(Slurp(rootfs_ + "/etc/motd"), "from the rootfs\n");
  EXPECT_FALSE(fs::exists(rootfs_ + "/evil"));
}

TEST_F(SandboxTest, DataIsReadOnlyAtItsMountPath) {
  SetOut("out");
  CliRun r = Cce(Sh(
      "cat /data/ds/f > /output/copy && cat /mnt/other/f > /output/copy2 || exit 20; "
      "echo x >> /data/ds/f && exit 21; touch /data/ds/new && exit 22; "
      "touch /mnt/other/new && exit 23; exit 0",
      {"--data", "ds=" + data_, "--data", "other=" + data_, "--mount-path", "other=/mnt/other"}));
  EXPECT_EQ(r.exit_code, 0) << r.output << Slurp(out_ + "/stderr.txt");
  EXPECT_EQ(Slurp(out_ + "/files/copy"), "dataset bytes\n");
  EXPECT_EQ(Slurp(out_ + "/files/copy2"), "dataset bytes\n");
  EXPECT_EQ(Slurp(data_ + "/f"), "dataset bytes\n");
  EXPECT_FALSE(fs::exists(data_ + "/new"));
}

TEST_F(SandboxTest, OnlyLoopbackNetwork) {
  SetOut("out");
  CliRun r = Cce(Sh("cat /proc/net/dev"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string dev = Slurp(out_ + "/stdout.txt");
  std::vector<std::string> ifaces;
  std::stringstream ss(dev);
  std::string line;
  while (std::getline(ss, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    ifaces.push_back(name);
  }
  EXPECT_EQ(ifaces, std::vector<std::string>{"lo"}) << dev;
}

TEST_F(SandboxTest, TimeoutExits124AndCleansUp) {
  SetOut("out");
  auto start = std::chrono::steady_clock::now();
  CliRun r = Cce(Sh("echo started; sleep 600", {}, "1"));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 124) << r.output;
  EXPECT_EQ(r.result["timed_out"], true);
  EXPECT_LT(took, 20.0);
  EXPECT_EQ(Slurp(out_ + "/stdout.txt"), "started\n");
  EXPECT_EQ(Manifest()["timed_out"], true);
}

TEST_F(SandboxTest, SigtermCancelsTheContainerAndCleansUp) {
  SetOut("out");
  CliRun r = Cce(Sh("echo started; sleep 600"), std::chrono::milliseconds(1500));
  EXPECT_EQ(r.exit_code, 124) << r.output;
  EXPECT_EQ(r.result["cancelled"], true);
  EXPECT_EQ(Slurp(out_ + "/stdout.txt"), "started\n");
}

TEST_F(SandboxTest, CleanupSandboxRemovesWhatAKilledRunLeft) {
  SetOut("out");
  // SIGKILL: cce cannot clean up; the container keeps running under runc.
  CliRun r = Cce(Sh("sleep 600"), std::chrono::milliseconds(1500), SIGKILL);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_TRUE(fs::exists("/run/cce/runc/cce-" + job_));
  EXPECT_FALSE(fs::is_empty(work_));
  Status cleaned = CleanupSandbox(work_, job_);
  ASSERT_TRUE(cleaned.ok()) << cleaned.ToString();
  EXPECT_TRUE(fs::is_empty(work_));
  // TearDown checks the runc state, the cgroups and the mounts are gone.
}

TEST_F(SandboxTest, RunsAnOciLayoutImageWithItsEntrypointEnvAndWorkdir) {
  std::string digest = WriteOciLayout(base_ + "/layout");
  SetOut("out1");
  // No command: the image's entrypoint + cmd.
  CliRun r = Cce({"--image", "oci:" + base_ + "/layout:1.0", "--output", out_, "--output-format",
                  "json", "--expect-digest", digest});
  ASSERT_EQ(r.exit_code, 0) << r.output << Slurp(out_ + "/stderr.txt");
  EXPECT_EQ(Slurp(out_ + "/files/y"), "from-image\n");
  EXPECT_EQ(r.result["image_manifest_digest"], digest);
  EXPECT_EQ(Manifest()["image_manifest_digest"], digest);

  SetOut("out2");
  r = Cce({"--image", "oci:" + base_ + "/layout", "--output", out_, "--env", "EXTRA=1", "--",
           "/bin/sh", "-c", "echo $GREETING $EXTRA $(pwd) > /output/env; cat motd"});
  ASSERT_EQ(r.exit_code, 0) << r.output << Slurp(out_ + "/stderr.txt");
  EXPECT_EQ(Slurp(out_ + "/files/env"), "hello 1 /etc\n");
  EXPECT_EQ(Slurp(out_ + "/stdout.txt"), "from the image\n");
}

TEST_F(SandboxTest, RefusesAnImageWithAnotherDigest) {
  WriteOciLayout(base_ + "/layout");
  SetOut("out");
  CliRun r = Cce({"--image", "oci:" + base_ + "/layout", "--output", out_, "--expect-digest",
                  "sha256:" + std::string(64, '0'), "--", "/bin/sh", "-c", "echo ran"});
  EXPECT_EQ(r.exit_code, 3) << r.output;  // kDataLoss
  EXPECT_FALSE(fs::exists(out_ + "/stdout.txt"));
}

TEST_F(SandboxTest, SetupErrorsUseTheCliExitCodesAndLeaveNothing) {
  SetOut("out");
  fs::create_directory(out_);
  Spit(out_ + "/already", "x");
  CliRun r = Cce(Sh("echo ran"));
  EXPECT_EQ(r.exit_code, 1) << r.output;  // output dir not empty: kFailedPrecondition
  EXPECT_NE(r.output.find("not empty"), std::string::npos) << r.output;

  SetOut("out2");
  r = Cce({"--image", "dir:" + base_ + "/missing", "--output", out_, "--", "/bin/sh"});
  EXPECT_EQ(r.exit_code, 2) << r.output;

  r = Cce({"--image", "dir:" + rootfs_, "--output", out_, "--data", "bad name=" + data_, "--",
           "/bin/sh"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("data[0].name"), std::string::npos) << r.output;
}

TEST_F(SandboxTest, AMountPointThroughAnImageSymlinkIsRefusedNotFollowedOnTheHost) {
  // The image is untrusted: its /data points at a host directory. Creating
  // the mount point /data/ds must not mkdir in that host directory.
  std::string victim = base_ + "/victim";
  fs::create_directory(victim);
  fs::create_symlink(victim, rootfs_ + "/data");
  SetOut("out");
  CliRun r = Cce(Sh("echo ran", {"--data", "ds=" + data_}));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("/data"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::is_empty(victim)) << "a mount point was created through the image's symlink";
  EXPECT_FALSE(fs::exists(out_ + "/stdout.txt"));
}

TEST_F(SandboxTest, PolicyFileCapsOutputAndStdout) {
  std::string policy = base_ + "/policy.yaml";
  Spit(policy, "output:\n  max_mib: 1\nmax_stdout_bytes: 100\n");
  SetOut("out");
  CliRun r =
      Cce(Sh("head -c 3000000 /dev/zero > /output/big; echo write=$? >&2; "
             "head -c 5000 /dev/zero; exit 0",
             {"--policy", policy}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(Slurp(out_ + "/stderr.txt").find("write=1"), std::string::npos)
      << Slurp(out_ + "/stderr.txt");
  EXPECT_LE(fs::file_size(out_ + "/files/big"), 1u << 20);
  EXPECT_EQ(fs::file_size(out_ + "/stdout.txt"), 100u);
  EXPECT_EQ(r.result["stdout_truncated"], true);
  EXPECT_EQ(Manifest()["stdout_truncated"], true);
}

TEST_F(SandboxTest, HelpDescribesTheVerb) {
  CliRun r = Cce({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("Usage: cce sandbox run"), std::string::npos) << r.output;
}

TEST(SandboxExitCode, FollowsCoreutilsTimeoutAndShells) {
  SandboxResult r;
  r.exit_code = 3;
  EXPECT_EQ(SandboxExitCode(r), 3);
  r.exit_code = -1;
  r.signal = 9;
  EXPECT_EQ(SandboxExitCode(r), 137);
  r.timed_out = true;
  EXPECT_EQ(SandboxExitCode(r), 124);
}

}  // namespace
}  // namespace cce::executor
