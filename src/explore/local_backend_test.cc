// local_backend_test: real Jupyter servers (Debian's python3-notebook) in
// real runc containers, started, observed, probed from inside and stopped
// through LocalBackend. Needs root, runc and python3-notebook (LABELS root;
// CI runs it as root). One session serves most checks to keep the test
// near 30 s; each check was seen failing with its control removed
// (docs/explore/local.md, "What was run").
#include "explore/local_backend.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "base/subprocess.h"
#include "executor/cgroups.h"
#include "explore/jupyter_status.h"

namespace cce::explore {
namespace {

namespace fs = std::filesystem;

constexpr char kId[] = "xs-00000000000000a1";
constexpr int64_t kOwnerId = 7;
constexpr uint32_t kUidBase = 230000;
constexpr char kToken[] = "test-token-0123456789abcdef";

std::string ReadAllText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The probe runs inside the session as the session's user through
// `runc exec`, with the same environment Jupyter has: what a notebook cell
// can do, this can do.
constexpr char kProbe[] = R"PY(
import json, os, sys
r = {}
r["uid"] = os.getuid()
r["gid"] = os.getgid()
status = open("/proc/self/status").read()
for line in status.splitlines():
    k, _, v = line.partition(":")
    if k in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"):
        r[k] = v.strip()
def can_read(p):
    try:
        with open(p, "rb") as f:
            f.read(1)
        return True
    except OSError as e:
        return e.strerror
def can_write(p):
    try:
        with open(p, "w") as f:
            f.write("x")
        return True
    except OSError as e:
        return e.strerror
r["exists_planted"] = os.path.exists(PLANTED)
r["read_planted"] = can_read(PLANTED + "/ciphertext.cce")
r["read_sample"] = can_read("/data/demo/rows.csv")
r["write_sample"] = can_write("/data/demo/new.csv")
def can_append(p):
    try:
        with open(p, "a") as f:
            f.write("x")
        return True
    except OSError as e:
        return e.strerror
r["append_sample"] = can_append("/data/demo/rows.csv")
r["write_home"] = can_write("/home/jovyan/probe.txt")
r["write_usr"] = can_write("/usr/probe.txt")
r["write_root"] = can_write("/probe.txt")
cfg = can_read("/etc/cce4long/session.json")
r["read_session_json"] = cfg
if cfg is True:
    r["session_json"] = json.load(open("/etc/cce4long/session.json"))
r["sdk_importable"] = True
try:
    import cce4long_probe_pkg  # stands in for cce4long in /opt/cce4long
except Exception as e:
    r["sdk_importable"] = repr(e)
r["etc"] = sorted(os.listdir("/etc"))
r["root"] = sorted(os.listdir("/"))
r["run_jupyter_mode"] = oct(os.stat("/run/jupyter").st_mode & 0o777)
try:
    import ssl, pandas, socket
    ssl.create_default_context()
    r["imports"] = True
except Exception as e:
    r["imports"] = repr(e)
print(json.dumps(r))
)PY";

// Runs a file of code in a running kernel over its connection file, as the
// notebook's frontend would (jupyter_client, python3-jupyter-client), and
// prints what the code printed.
constexpr char kKernelClient[] = R"PY(
import sys
from jupyter_client import BlockingKernelClient
kc = BlockingKernelClient(connection_file=sys.argv[1])
kc.load_connection_file()
kc.start_channels()
# Not wait_for_ready: it gives up when the heartbeat has not started yet.
import queue, time
deadline = time.time() + 30
while True:
    kc.kernel_info()
    try:
        if kc.get_shell_msg(timeout=1)["msg_type"] == "kernel_info_reply":
            break
    except queue.Empty:
        if time.time() > deadline:
            sys.exit("no kernel_info_reply within 30 s")
while True:  # drain the iopub messages of the kernel_info requests
    try:
        kc.get_iopub_msg(timeout=0.5)
    except queue.Empty:
        break
msg_id = kc.execute(open(sys.argv[2]).read())
out = []
while True:
    msg = kc.get_iopub_msg(timeout=30)
    if msg["parent_header"].get("msg_id") != msg_id:
        continue
    t = msg["msg_type"]
    if t == "stream":
        out.append(msg["content"]["text"])
    elif t == "error":
        print("ERROR", msg["content"]["ename"], msg["content"]["evalue"])
        sys.exit(1)
    elif t == "status" and msg["content"]["execution_state"] == "idle":
        break
print("".join(out))
)PY";

class LocalBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "local_backend_test needs root (runc, mounts, cgroups)";
    ASSERT_EQ(access("/usr/bin/python3", X_OK), 0) << "/usr/bin/python3 missing";
    ASSERT_TRUE(fs::exists("/usr/lib/python3/dist-packages/notebook/notebookapp.py"))
        << "python3-notebook missing: install Debian's python3-notebook (Makefile DEB_PACKAGES)";
    SpawnOptions which;
    which.argv = {"/bin/sh", "-c", "command -v runc"};
    which.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    auto w = RunAndCapture(which);
    ASSERT_TRUE(w.ok() && w->status.success()) << "runc missing: install Debian's runc";

    char tmpl[] = "/tmp/local_backend_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // Short work_root: the socket path must fit in 108 bytes.
    work_root_ = dir_ + "/w";
    // A stand-in for the plane's DATA_DIR with "ciphertext" in it, readable
    // by anyone on the host: only the mount namespace hides it.
    planted_ = dir_ + "/plane-data";
    fs::create_directories(planted_);
    std::ofstream(planted_ + "/ciphertext.cce") << "secret ciphertext";
    fs::permissions(planted_, fs::perms(0755));
    fs::permissions(planted_ + "/ciphertext.cce", fs::perms(0644));
    home_ = dir_ + "/homes/7";
    fs::create_directories(home_);
    std::ofstream(home_ + "/from-last-session.txt") << "kept";
    sample_ = dir_ + "/samples/demo";
    fs::create_directories(sample_);
    std::ofstream(sample_ + "/rows.csv") << "a,b\n1,2\n";
    for (const std::string& d : {dir_, dir_ + "/samples", dir_ + "/homes"}) {
      fs::permissions(d, fs::perms(0755));
    }
    // World-writable on the host: only the read-only bind keeps the session
    // from writing (the check below fails if the mount loses "ro").
    fs::permissions(sample_, fs::perms(0777));
    fs::permissions(sample_ + "/rows.csv", fs::perms(0666));
    sdk_ = dir_ + "/sdk";
    fs::create_directories(sdk_ + "/cce4long_probe_pkg");
    std::ofstream(sdk_ + "/cce4long_probe_pkg/__init__.py") << "VERSION = 1\n";

    options_.work_root = work_root_;
    options_.runc_root = dir_ + "/runc";
    options_.uid_base = kUidBase;
    options_.sdk_dir = sdk_;
    options_.seccomp_profile = std::string(CCE_SOURCE_DIR) + "/data/seccomp/docker-default.json";
  }

  void TearDown() override {
    if (backend_) (void)backend_->Stop(kId);
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  SessionSpec Spec() const {
    SessionSpec spec;
    spec.id = kId;
    spec.owner = "carol";
    spec.owner_id = kOwnerId;
    spec.home_dir = home_;
    spec.samples = {{"demo", sample_, "/data/demo"}};
    spec.base_url = std::string("/explore/") + kId + "/";
    spec.jupyter_token = crypto::SecretBytes::CopyOf(crypto::AsBytes(kToken));
    spec.sdk_config_json = crypto::SecretBytes::CopyOf(crypto::AsBytes(
        R"({"plane_url": "https://plane.test:8443", "ca_pem": "", "token": "sdk-tok", "session": ")" +
        std::string(kId) + "\"}"));
    spec.memory_mib = 1024;
    spec.cpus = 1;
    return spec;
  }

  // A request to Jupyter's REST API with the session's token, as the
  // plane's proxy makes it (curl, from Debian's curl package).
  nlohmann::json Curl(const Upstream& up, const std::string& method, const std::string& url,
                      const std::string& body) {
    SpawnOptions c;
    c.argv = {"curl",
              "-sS",
              "--max-time",
              "10",
              "--unix-socket",
              up.unix_socket,
              "-X",
              method,
              "-H",
              std::string("Authorization: token ") + kToken,
              url};
    if (!body.empty()) {
      c.argv.insert(c.argv.end(), {"-H", "Content-Type: application/json", "--data", body});
    }
    c.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    auto r = RunAndCapture(c);
    EXPECT_TRUE(r.ok() && r->status.success()) << (r.ok() ? r->output : r.status().ToString());
    if (!r.ok()) return {};
    return nlohmann::json::parse(r->output, nullptr, false);
  }

  // Runs the probe in the session's kernel `kernel` (started through
  // Jupyter's REST API): the client runs inside the session as its user
  // (`runc exec`), the probe runs in the kernel as a notebook cell would.
  nlohmann::json Probe(const std::string& kernel) {
    std::ofstream(home_ + "/probe.py") << "PLANTED = \"" << planted_ << "\"\n" << kProbe;
    std::ofstream(home_ + "/kernel_client.py") << kKernelClient;
    SpawnOptions exec;
    const std::string user = std::to_string(kUidBase + kOwnerId);
    exec.argv = {"runc",
                 "--root",
                 options_.runc_root,
                 "exec",
                 "--user",
                 user + ":" + user,
                 kId,
                 "/usr/bin/python3",
                 "/home/jovyan/kernel_client.py",
                 "/run/jupyter/runtime/kernel-" + kernel + ".json",
                 "/home/jovyan/probe.py"};
    exec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    auto r = RunAndCapture(exec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_TRUE(r->status.success()) << r->output << "\njupyter.log:\n"
                                     << ReadAllText(work_root_ + "/" + kId + "/log/jupyter.log");
    size_t brace = r->output.find('{');
    if (brace == std::string::npos) return {};
    return nlohmann::json::parse(r->output.substr(brace), nullptr, false);
  }

  std::string dir_, work_root_, planted_, home_, sample_, sdk_;
  LocalBackendOptions options_;
  std::optional<LocalBackend> backend_;
};

TEST_F(LocalBackendTest, JupyterRunsSandboxedAndStops) {
  auto created = LocalBackend::Create(options_);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  backend_.emplace(std::move(*created));
  SessionSpec spec = Spec();
  auto up = backend_->Start(spec);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->unix_socket, work_root_ + "/" + kId + "/run/jupyter.sock");

  // Starting the same id again is refused, and leaves the session alone.
  auto again = backend_->Start(Spec());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().ToString();

  auto seen = backend_->Observe(kId);
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->state, SessionState::kRunning) << seen->detail;
  EXPECT_EQ(seen->upstream, *up);

  // The plane's client: the right token works, a wrong one is refused by Jupyter.
  auto activity = FetchJupyterStatus(*up, spec.base_url, spec.jupyter_token);
  ASSERT_TRUE(activity.ok()) << activity.status().ToString();
  EXPECT_EQ(activity->kernels, 0);
  EXPECT_GT(activity->started, 1700000000);
  // A kernel starts inside the sandbox (ZeroMQ over Unix sockets in
  // /run/jupyter/runtime); the probe below runs in it.
  std::string kernel;
  {
    const std::string api = "http://localhost" + spec.base_url + "api/kernels";
    auto started = Curl(*up, "POST", api, "{}");
    ASSERT_TRUE(started.is_object() && started.contains("id")) << started.dump();
    kernel = started["id"].get<std::string>();
    auto busy = FetchJupyterStatus(*up, spec.base_url, spec.jupyter_token);
    ASSERT_TRUE(busy.ok()) << busy.status().ToString();
    EXPECT_EQ(busy->kernels, 1);
  }

  // The session's cgroup carries the memory limit.
  {
    auto cg = executor::Cgroup::Adopt(std::string("/cce/explore/") + kId);
    ASSERT_TRUE(cg.ok());
    bool found = false;
    for (const std::string& d : cg->Dirs()) {
      for (const char* f : {"/memory.limit_in_bytes", "/memory.max"}) {
        if (fs::exists(d + f)) {
          found = true;
          EXPECT_EQ(std::stoll(ReadAllText(d + f)), int64_t{1024} << 20) << d + f;
        }
      }
    }
    EXPECT_TRUE(found) << "no memory cgroup for the session";
  }

  auto wrong = FetchJupyterStatus(
      *up, spec.base_url, crypto::SecretBytes::CopyOf(crypto::AsBytes("wrong-token-0123456789")));
  EXPECT_EQ(wrong.status().code(), StatusCode::kPermissionDenied) << wrong.status().ToString();

  // The token is in no argv and no environment of the session's processes.
  {
    SpawnOptions ps;
    ps.argv = {"runc",
               "--root",
               options_.runc_root,
               "exec",
               "--user",
               std::to_string(kUidBase + kOwnerId),
               kId,
               "/bin/sh",
               "-c",
               "cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr '\\0' ' '"};
    ps.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    auto r = RunAndCapture(ps);
    ASSERT_TRUE(r.ok());
    EXPECT_NE(r->output.find("notebook"), std::string::npos) << r->output;
    EXPECT_EQ(r->output.find(kToken), std::string::npos) << "token in argv/env";
  }

  // The socket's directory is the session user's alone.
  struct stat st {};
  const std::string run_dir = work_root_ + "/" + kId + "/run";
  ASSERT_EQ(stat(run_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, kUidBase + kOwnerId);
  ASSERT_EQ(stat(up->unix_socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0077, 0u);
  // The home belongs to the session user now, and is private.
  ASSERT_EQ(stat(home_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUidBase + kOwnerId);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  nlohmann::json p = Probe(kernel);
  ASSERT_TRUE(p.is_object()) << p.dump();
  std::cout << "probe inside the session: " << p.dump() << "\n";
  EXPECT_EQ(p["uid"], kUidBase + kOwnerId);
  EXPECT_NE(p["uid"], 0);
  EXPECT_EQ(p["CapEff"], "0000000000000000");
  EXPECT_EQ(p["CapPrm"], "0000000000000000");
  EXPECT_EQ(p["CapBnd"], "0000000000000000");
  EXPECT_EQ(p["NoNewPrivs"], "1");
  EXPECT_EQ(p["Seccomp"], "2");
  // The plane's data dir and its ciphertext do not exist in the session.
  EXPECT_EQ(p["exists_planted"], false) << p.dump();
  EXPECT_NE(p["read_planted"], true) << p.dump();
  // Samples: readable, not writable. Home: writable. /usr and /: read-only.
  EXPECT_EQ(p["read_sample"], true) << p.dump();
  EXPECT_NE(p["write_sample"], true) << p.dump();
  EXPECT_NE(p["append_sample"], true) << p.dump();
  EXPECT_EQ(p["write_home"], true) << p.dump();
  EXPECT_NE(p["write_usr"], true) << p.dump();
  EXPECT_NE(p["write_root"], true) << p.dump();
  // The SDK's config is readable by the user; the SDK dir is importable.
  EXPECT_EQ(p["read_session_json"], true) << p.dump();
  EXPECT_EQ(p["session_json"]["session"], kId) << p.dump();
  EXPECT_EQ(p["sdk_importable"], true) << p.dump();
  EXPECT_EQ(p["imports"], true) << p.dump();
  EXPECT_EQ(p["run_jupyter_mode"], "0o700") << p.dump();
  // Nothing of the host's /etc beyond the list: no shadow, no passwd of the host.
  for (const auto& e : p["etc"]) {
    EXPECT_NE(e, "shadow");
    EXPECT_NE(e, "cce");
  }
  EXPECT_EQ(ReadAllText(home_ + "/probe.txt"), "x");
  EXPECT_FALSE(fs::exists(sample_ + "/new.csv"));
  EXPECT_EQ(ReadAllText(sample_ + "/rows.csv"), "a,b\n1,2\n");

  // A second instance (a restarted plane) finds the session.
  {
    auto other = LocalBackend::Create(options_);
    ASSERT_TRUE(other.ok());
    auto seen2 = other->Observe(kId);
    ASSERT_TRUE(seen2.ok()) << seen2.status().ToString();
    EXPECT_EQ(seen2->state, SessionState::kRunning) << seen2->detail;
    EXPECT_EQ(seen2->upstream, *up);
  }

  ASSERT_TRUE(backend_->Stop(kId).ok());
  auto gone = backend_->Observe(kId);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->state, SessionState::kGone);
  EXPECT_FALSE(fs::exists(work_root_ + "/" + kId));
  EXPECT_TRUE(fs::exists(home_ + "/from-last-session.txt"));
  EXPECT_TRUE(fs::exists(home_ + "/probe.txt"));
  EXPECT_TRUE(backend_->Stop(kId).ok()) << "Stop is idempotent";
  auto cg = executor::Cgroup::Adopt(std::string("/cce/explore/") + kId);
  ASSERT_TRUE(cg.ok());
  for (const std::string& d : cg->Dirs()) EXPECT_FALSE(fs::exists(d)) << d;
}

TEST_F(LocalBackendTest, UnknownSessionsAreGoneAndStopIsIdempotent) {
  auto backend = LocalBackend::Create(options_);
  ASSERT_TRUE(backend.ok());
  auto seen = backend->Observe("xs-ffffffffffffffff");
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->state, SessionState::kGone);
  EXPECT_TRUE(backend->Stop("xs-ffffffffffffffff").ok());
  EXPECT_EQ(backend->Observe("../etc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(backend->Stop("xs-../../../../tmp").code(), StatusCode::kInvalidArgument);
}

TEST_F(LocalBackendTest, SpecErrorsNameTheField) {
  auto created = LocalBackend::Create(options_);
  ASSERT_TRUE(created.ok());
  backend_.emplace(std::move(*created));
  struct Case {
    std::function<void(SessionSpec&)> mutate;
    const char* field;
  };
  const Case cases[] = {
      {[](SessionSpec& s) { s.id = "xs-1"; }, "spec.id"},
      {[](SessionSpec& s) { s.base_url = "/explore/other/"; }, "spec.base_url"},
      {[](SessionSpec& s) { s.home_dir = "relative"; }, "spec.home_dir"},
      {[this](SessionSpec& s) { s.home_dir = dir_ + "/missing"; }, "spec.home_dir"},
      {[](SessionSpec& s) { s.samples[0].mount_path = "/etc"; }, "spec.samples[0].mount_path"},
      {[](SessionSpec& s) { s.samples[0].dataset = "../x"; }, "spec.samples[0].dataset"},
      {[this](SessionSpec& s) { s.samples[0].host_dir = dir_ + "/nope"; },
       "spec.samples[0].host_dir"},
      {[](SessionSpec& s) {
         s.jupyter_token = crypto::SecretBytes::CopyOf(crypto::AsBytes("short"));
       },
       "spec.jupyter_token"},
      {[](SessionSpec& s) {
         s.jupyter_token =
             crypto::SecretBytes::CopyOf(crypto::AsBytes("has\"quote-0123456789abcdef"));
       },
       "spec.jupyter_token"},
      {[](SessionSpec& s) {
         s.sdk_config_json = crypto::SecretBytes::CopyOf(crypto::AsBytes("[1]"));
       },
       "spec.sdk_config_json"},
      {[](SessionSpec& s) { s.memory_mib = 1; }, "spec.memory_mib"},
      {[](SessionSpec& s) { s.cpus = 0; }, "spec.cpus"},
      {[](SessionSpec& s) { s.owner_id = -1; }, "spec.owner_id"},
  };
  for (const Case& c : cases) {
    SessionSpec spec = Spec();
    c.mutate(spec);
    auto up = backend_->Start(spec);
    ASSERT_FALSE(up.ok()) << c.field;
    EXPECT_EQ(up.status().code(), StatusCode::kInvalidArgument) << up.status().ToString();
    EXPECT_NE(up.status().message().find(c.field), std::string::npos) << up.status().ToString();
  }
  // A sample the session user could not read is refused before anything starts.
  fs::permissions(sample_, fs::perms(0700));
  auto up = backend_->Start(Spec());
  EXPECT_EQ(up.status().code(), StatusCode::kFailedPrecondition) << up.status().ToString();
  EXPECT_FALSE(fs::exists(work_root_ + "/" + kId));
}

TEST_F(LocalBackendTest, AFailedStartCleansUpAndShowsTheLog) {
  // A python that is not Jupyter: the server exits at once.
  options_.python = "/usr/bin/false";
  options_.start_timeout = std::chrono::seconds(10);
  auto created = LocalBackend::Create(options_);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  backend_.emplace(std::move(*created));
  auto up = backend_->Start(Spec());
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.status().code(), StatusCode::kInternal) << up.status().ToString();
  EXPECT_NE(up.status().message().find("exited while starting"), std::string::npos)
      << up.status().ToString();
  EXPECT_EQ(up.status().message().find(kToken), std::string::npos);
  EXPECT_FALSE(fs::exists(work_root_ + "/" + kId));
  auto seen = backend_->Observe(kId);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->state, SessionState::kGone);
}

TEST_F(LocalBackendTest, CreateRefusesBadOptions) {
  LocalBackendOptions o = options_;
  o.work_root = "relative";
  EXPECT_EQ(LocalBackend::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = options_;
  o.work_root = "/" + std::string(90, 'w');
  EXPECT_NE(LocalBackend::Create(o).status().message().find("too long"), std::string::npos);
  o = options_;
  o.uid_base = 0;
  EXPECT_NE(LocalBackend::Create(o).status().message().find("explore.local.uid_base"),
            std::string::npos);
  o = options_;
  o.python = "/home/x/python3";
  EXPECT_NE(LocalBackend::Create(o).status().message().find("explore.local.python"),
            std::string::npos);
}

}  // namespace
}  // namespace cce::explore
