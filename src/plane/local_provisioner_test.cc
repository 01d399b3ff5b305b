// The local provisioner for real (root: namespaces, mounts, cgroups): a
// stand-in agent (local_provisioner_fake_agent.cc) reports what it sees from
// inside its "VM" into the job's log, and the test checks that it could reach
// the plane only through its Unix socket, got the credential on fd 3 only,
// ran in cce/platform/<job> on a tmpfs work dir, and that nothing is left
// once it exits or is destroyed. The plane here is an http::Server with a
// /healthz route on TCP and on the agent socket, and a real SqliteStore.
#include "plane/local_provisioner.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "crypto/x509.h"
#include "executor/cgroups.h"
#include "http/server.h"
#include "plane/config.h"
#include "plane/job_engine.h"
#include "plane/service_world.h"
#include "store/sqlite_store.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using store::JobState;
using testing::Must;

void WriteString(const std::string& path, std::string_view s) {
  ASSERT_TRUE(WriteNewFile(path, {reinterpret_cast<const uint8_t*>(s.data()), s.size()}, 0600).ok())
      << path;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The "REPORT key=value" lines of a job's log.
std::map<std::string, std::string> Reports(const std::string& log) {
  std::map<std::string, std::string> out;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("REPORT ", 0) != 0) continue;
    const size_t eq = line.find('=');
    out[line.substr(7, eq - 7)] = line.substr(eq + 1);
  }
  return out;
}

// A process that has not exited (a zombie has: orphans wait for pid 1 to reap them).
bool Running(pid_t pid) {
  const std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

class LocalProvisionerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Root is a prerequisite, not an excuse to pass: CI runs this as root.
    ASSERT_EQ(::geteuid(), 0u) << "local_provisioner_test needs root (namespaces, mounts, "
                                  "cgroups); run it as root (label 'root')";
    char tmpl[] = "/tmp/cce-lp-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    work_root_ = "/run/cce-lp-test-" + std::to_string(::getpid()) + "/jobs";
    auto ca = Must(crypto::CreateCertificateAuthority("lp ca", ::time(nullptr) - 3600, 2), "ca");
    auto cert = Must(crypto::IssueServerCertificate(ca, "cce-plane", {"localhost"}, {"127.0.0.1"},
                                                    ::time(nullptr) - 3600, 2),
                     "cert");
    WriteString(dir_ + "/ca.crt", ca.cert_pem);
    WriteString(dir_ + "/server.crt", cert.cert_pem);
    WriteString(
        dir_ + "/server.key",
        std::string_view(reinterpret_cast<const char*>(cert.key_pem.data()), cert.key_pem.size()));

    http::ServerOptions o;
    o.tls_cert_chain_file = dir_ + "/server.crt";
    o.tls_key_file = dir_ + "/server.key";
    o.limits.io_threads = 1;
    o.limits.worker_threads = 2;
    http::Route r;
    r.method = "GET";
    r.pattern = "/healthz";
    r.handle = [](http::Request& req) {
      http::Response res;
      res.body = "ok from " + req.remote_addr.substr(0, 5);
      return res;
    };
    server_ = Must(http::Server::Create(std::move(o), {r}), "server");
    tcp_port_ = Must(server_->Listen("127.0.0.1", 0), "listen");
    Status unix_listen = server_->ListenUnix(dir_ + "/agent.sock", 0600);
    ASSERT_TRUE(unix_listen.ok()) << unix_listen.message();
    runner_ = std::thread([this] { server_->Run(); });

    store::SqliteStoreOptions so;
    so.path = dir_ + "/plane.db";
    so.checkpoint_file = dir_ + "/checkpoints.log";
    db_ = Must(store::SqliteStore::Open(so), "store");
    store::User u;
    u.name = "carol";
    u.role = store::Role::kConsumer;
    consumer_ = Must(db_->CreateUser(u, Rec("user.add", "user:carol")), "user").id;
    log_file_ = std::tmpfile();
    log_ = std::make_unique<Logger>(false, Logger::Level::kDebug, log_file_);
    provisioner_ = Must(MakeLocalProvisioner(Options(), *db_, clock_, *log_), "provisioner");
  }

  void TearDown() override {
    provisioner_.reset();  // kills any agent left
    if (server_) {
      server_->Stop();
      if (runner_.joinable()) runner_.join();
      server_.reset();
    }
    db_.reset();
    if (log_file_ != nullptr) std::fclose(log_file_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::remove_all(fs::path(work_root_).parent_path(), ec);
  }

  LocalProvisionerOptions Options() const {
    LocalProvisionerOptions o;
    o.agent_path = CCE_FAKE_AGENT;
    o.agent_socket = dir_ + "/agent.sock";
    o.ca_file = dir_ + "/ca.crt";
    o.work_root = work_root_;
    o.tmpfs_mib = 96;
    o.log_dir = dir_ + "/logs/jobs";
    o.memory_bytes = int64_t{512} << 20;
    o.pids_max = 256;
    return o;
  }

  store::AuditRecord Rec(const std::string& action, const std::string& object) const {
    store::AuditRecord a;
    a.at = clock_.NowUnix();
    a.actor = "test";
    a.action = action;
    a.object = object;
    a.decision = store::AuditDecision::kInfo;
    return a;
  }

  // A job walked to `state` as the engine and an agent would leave it.
  store::Job MakeJob(const std::string& id, JobState state) {
    store::Job job = testing::SubmittedJob(id, consumer_, clock_.NowUnix());
    job.datasets = {"d"};
    Must(db_->CreateJob(job, Rec("job.submit", "job:" + id)), "job");
    const JobState path[] = {JobState::kSubmitted, JobState::kAuthorized, JobState::kProvisioning,
                             JobState::kAttested, JobState::kRunning};
    for (size_t i = 0; i + 1 < std::size(path) && path[i] != state; ++i) {
      Must(db_->TransitionJob(id, path[i], path[i + 1], "test", Rec("job.step", "job:" + id)),
           "transition");
    }
    return Must(db_->GetJob(id), "get job");
  }

  std::string Credential(const std::string& mode) const {
    return "fake-credential mode=" + mode + " tcp_port=" + std::to_string(tcp_port_);
  }
  std::string LogOf(const std::string& id) const {
    return ReadText(dir_ + "/logs/jobs/" + id + ".log");
  }

  // Waits (up to 30 s) for `pred`.
  template <class P>
  bool WaitFor(P pred) {
    for (int i = 0; i < 300; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return pred();
  }

  // The host's pids of the job's platform cgroup.
  std::vector<pid_t> PlatformPids(const std::string& id) {
    return Must(executor::Cgroup::Adopt("cce/platform/" + id), "adopt").Processes();
  }

  // Nothing of the job is left on the host.
  void ExpectNothingLeft(const std::string& id) {
    for (const char* prefix : {"cce/platform/", "cce/workload/"}) {
      auto cg = Must(executor::Cgroup::Adopt(prefix + id), "adopt");
      for (const std::string& d : cg.Dirs()) EXPECT_FALSE(fs::exists(d)) << d;
    }
    const std::string mountinfo = ReadText("/proc/self/mountinfo");
    EXPECT_EQ(mountinfo.find(work_root_), std::string::npos) << mountinfo;
    EXPECT_EQ(mountinfo.find(dir_ + "/agent.sock"), std::string::npos);
    EXPECT_FALSE(fs::exists(work_root_ + "/" + id));
  }

  SystemClock clock_;
  std::string dir_;
  std::string work_root_;
  std::unique_ptr<http::Server> server_;
  std::thread runner_;
  int tcp_port_ = 0;
  std::unique_ptr<store::SqliteStore> db_;
  int64_t consumer_ = 0;
  std::FILE* log_file_ = nullptr;
  std::unique_ptr<Logger> log_;
  std::unique_ptr<Provisioner> provisioner_;
};

TEST_F(LocalProvisionerTest, AgentReachesOnlyThePlaneSocketAndGetsTheCredentialOnFd3) {
  const std::string id = "job-00000000000000b1";
  store::Job job = MakeJob(id, JobState::kProvisioning);
  const std::string credential = Credential("ok");
  Status started = provisioner_->Provision(job, credential);
  ASSERT_TRUE(started.ok()) << started.message();
  EXPECT_EQ(provisioner_->Active(), std::vector<std::string>{id});
  ASSERT_TRUE(WaitFor([&] { return Reports(LogOf(id)).count("done") == 1; })) << LogOf(id);
  const auto r = Reports(LogOf(id));

  // Its network namespace holds lo and nothing else: the host's 127.0.0.1
  // (where the plane's TCP port is) is not reachable...
  EXPECT_EQ(r.at("ifaces"), "lo");
  EXPECT_EQ(r.at("tcp_connect").rfind("refused:", 0), 0u) << r.at("tcp_connect");
  // ...but the plane is, through /run/cce/plane.sock, over verified TLS.
  EXPECT_EQ(r.at("healthz"), "200:ok from unix:");
  EXPECT_NE(r.at("argv").find("--plane unix:/run/cce/plane.sock"), std::string::npos);
  // The credential is on fd 3 and nowhere else; no other plane fd leaked.
  EXPECT_EQ(r.at("fd3_sha256"), crypto::ToHex(crypto::Sha256(crypto::AsBytes(credential))));
  EXPECT_EQ(LogOf(id).find("fake-credential"), std::string::npos);
  EXPECT_EQ(r.at("argv").find("fake-credential"), std::string::npos) << r.at("argv");
  EXPECT_EQ(r.at("env").find("fake-credential"), std::string::npos) << r.at("env");
  EXPECT_EQ(r.at("fd4_open"), "0");
  // In the platform cgroup, in every hierarchy the agent is listed in.
  const std::string cgroups = r.at("cgroups");
  EXPECT_NE(cgroups.find("/cce/platform/" + id), std::string::npos) << cgroups;
  std::istringstream lines(cgroups);
  for (std::string line; std::getline(lines, line, ',');) {
    if (line.find(":memory:") != std::string::npos || line.find(":pids:") != std::string::npos) {
      EXPECT_NE(line.find("/cce/platform/" + id), std::string::npos) << line;
    }
  }
  // A tmpfs work dir of the configured size, its cwd.
  EXPECT_EQ(r.at("workdir_tmpfs"), "1");
  EXPECT_EQ(r.at("workdir_bytes"), std::to_string(uint64_t{96} << 20));
  EXPECT_EQ(r.at("cwd"), work_root_ + "/" + id);

  // It exited without an output while RUNNING...: the job failed with why.
  ASSERT_TRUE(WaitFor([&] { return Must(db_->GetJob(id), "job").state == JobState::kFailed; }));
  EXPECT_EQ(Must(db_->GetJob(id), "job").reason, "agent exited: exit status 0");
  provisioner_->Destroy(id);
  EXPECT_TRUE(provisioner_->Active().empty());
  ExpectNothingLeft(id);
  // The plaintext it wrote lived only in its tmpfs.
  EXPECT_FALSE(fs::exists(work_root_ + "/" + id + "/plaintext.txt"));
}

TEST_F(LocalProvisionerTest, AFailingAgentFailsTheJobWithItsExitStatusAndAnAuditRecord) {
  const std::string id = "job-00000000000000b2";
  Status started = provisioner_->Provision(MakeJob(id, JobState::kRunning), Credential("exit3"));
  ASSERT_TRUE(started.ok()) << started.message();
  ASSERT_TRUE(WaitFor([&] { return Must(db_->GetJob(id), "job").state == JobState::kFailed; }));
  EXPECT_EQ(Must(db_->GetJob(id), "job").reason, "agent exited: exit status 3");
  store::AuditFilter f;
  f.object = "job:" + id;
  bool audited = false;
  for (const auto& e : Must(db_->ListAudit(f), "audit")) {
    if (e.record.action == "job.fail" && e.record.actor == "provisioner:local" &&
        e.record.details_json.find("agent exited: exit status 3") != std::string::npos) {
      audited = true;
    }
  }
  EXPECT_TRUE(audited);
  // The watcher tore it all down already; Destroy only forgets it.
  ASSERT_TRUE(WaitFor([&] { return !fs::exists(work_root_ + "/" + id); }));
  provisioner_->Destroy(id);
  ExpectNothingLeft(id);
}

TEST_F(LocalProvisionerTest, DestroyKillsARunningAgentAndEverythingItStarted) {
  const std::string id = "job-00000000000000b3";
  Status started = provisioner_->Provision(MakeJob(id, JobState::kRunning), Credential("sleep"));
  ASSERT_TRUE(started.ok()) << started.message();
  ASSERT_TRUE(WaitFor([&] { return Reports(LogOf(id)).count("ready") == 1; })) << LogOf(id);
  const auto r = Reports(LogOf(id));
  // The agent is the init of its own PID namespace, its child pid 2 there.
  EXPECT_EQ(r.at("pid"), "1");
  EXPECT_EQ(r.at("child_pid"), "2");
  const std::vector<pid_t> pids = PlatformPids(id);  // as the host sees them
  ASSERT_EQ(pids.size(), 2u);
  for (pid_t p : pids) EXPECT_TRUE(Running(p)) << p;
  // A workload cgroup such as runc would make for the consumer's container.
  auto workload = Must(executor::Cgroup::Create("cce/workload/" + id, {}), "workload cgroup");
  provisioner_->Destroy(id);
  EXPECT_TRUE(provisioner_->Active().empty());
  for (pid_t p : pids) EXPECT_FALSE(Running(p)) << p;
  ExpectNothingLeft(id);
  // Destroyed by the engine's decision: the provisioner does not fail it too.
  EXPECT_EQ(Must(db_->GetJob(id), "job").state, JobState::kRunning);
  provisioner_->Destroy(id);  // idempotent
}

// The engine's side: a job cancelled (by the API, outside the engine) or
// past its deadline has its agent destroyed by the engine's next pass.
TEST_F(LocalProvisionerTest, EngineDestroysTheAgentOfACancelledOrExpiredJob) {
  EngineDeps deps;
  deps.db = db_.get();
  deps.provisioner = provisioner_.get();
  deps.clock = &clock_;
  deps.log = log_.get();
  JobEngine engine(deps);  // not started: the test runs its steps

  const std::string cancelled = "job-00000000000000c1";
  Status started =
      provisioner_->Provision(MakeJob(cancelled, JobState::kRunning), Credential("sleep"));
  ASSERT_TRUE(started.ok()) << started.message();
  ASSERT_TRUE(WaitFor([&] { return Reports(LogOf(cancelled)).count("ready") == 1; }));
  const std::vector<pid_t> agent = PlatformPids(cancelled);
  ASSERT_FALSE(agent.empty());
  EXPECT_EQ(engine.DestroyFinished(), 0);  // still RUNNING: left alone
  EXPECT_TRUE(Running(agent[0]));
  ASSERT_TRUE(db_->TransitionJob(cancelled, JobState::kRunning, JobState::kCancelled, "cancelled",
                                 Rec("job.cancel", "job:" + cancelled))
                  .ok());
  EXPECT_EQ(engine.DestroyFinished(), 1);
  for (pid_t p : agent) EXPECT_FALSE(Running(p)) << p;
  EXPECT_TRUE(provisioner_->Active().empty());
  ExpectNothingLeft(cancelled);
  EXPECT_EQ(Must(db_->GetJob(cancelled), "job").state, JobState::kCancelled);

  const std::string overdue = "job-00000000000000c2";
  store::Job job = MakeJob(overdue, JobState::kRunning);
  started = provisioner_->Provision(job, Credential("sleep"));
  ASSERT_TRUE(started.ok()) << started.message();
  ASSERT_TRUE(WaitFor([&] { return Reports(LogOf(overdue)).count("ready") == 1; }));
  const std::vector<pid_t> agent2 = PlatformPids(overdue);
  ASSERT_FALSE(agent2.empty());
  ASSERT_EQ(engine.ExpireOverdue(), 0);
  EXPECT_TRUE(Running(agent2[0]));
  // An engine whose clock is past the job's deadline.
  struct LaterClock : Clock {
    int64_t at = 0;
    int64_t NowUnix() const override { return at; }
  } later;
  later.at = job.deadline + 1;
  deps.clock = &later;
  JobEngine late_engine(deps);
  EXPECT_EQ(late_engine.ExpireOverdue(), 1);
  for (pid_t p : agent2) EXPECT_FALSE(Running(p)) << p;
  EXPECT_TRUE(provisioner_->Active().empty());
  ExpectNothingLeft(overdue);
  const store::Job failed = Must(db_->GetJob(overdue), "job");
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_NE(failed.reason.find("deadline passed"), std::string::npos) << failed.reason;
}

TEST_F(LocalProvisionerTest, ResumeAfterARestartKillsLeftoversAndFailsTheJobWithoutANewAgent) {
  const std::string id = "job-00000000000000b4";
  store::Job job = MakeJob(id, JobState::kRunning);
  // What a previous plane left: a process in the platform cgroup, a work dir.
  auto platform = Must(executor::Cgroup::Create("cce/platform/" + id, {}), "cgroup");
  const pid_t orphan = ::fork();
  ASSERT_GE(orphan, 0);
  if (orphan == 0) {
    for (;;) ::pause();
  }
  ASSERT_TRUE(platform.AddProcess(orphan).ok());
  fs::create_directories(work_root_ + "/" + id);

  ASSERT_TRUE(provisioner_->Resume(job).ok());
  int status = 0;
  ASSERT_EQ(::waitpid(orphan, &status, 0), orphan);
  EXPECT_TRUE(WIFSIGNALED(status));
  const store::Job after = Must(db_->GetJob(id), "job");
  EXPECT_EQ(after.state, JobState::kFailed);
  EXPECT_NE(after.reason.find("plane restarted while the job ran"), std::string::npos)
      << after.reason;
  EXPECT_TRUE(provisioner_->Active().empty());  // no second agent
  EXPECT_FALSE(fs::exists(dir_ + "/logs/jobs/" + id + ".log"));
  ExpectNothingLeft(id);
}

TEST_F(LocalProvisionerTest, OptionsAreCheckedAndNamed) {
  LocalProvisionerOptions o = Options();
  o.agent_path = dir_ + "/no-such-agent";
  auto p = MakeLocalProvisioner(o, *db_, clock_, *log_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("provisioner.local.agent_path"), std::string::npos)
      << p.status().message();
  o = Options();
  o.work_root = "relative/jobs";
  p = MakeLocalProvisioner(o, *db_, clock_, *log_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("provisioner.local.work_root"), std::string::npos);
}

// plane.yaml: `provisioner.backend: local` and its settings, errors naming
// the field.
TEST(LocalProvisionerConfig, ParsesAndNamesBadFields) {
  char tmpl[] = "/tmp/cce-lp-config-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto load = [&](const std::string& yaml) {
    fs::remove(dir + "/plane.yaml");
    WriteString(dir + "/plane.yaml", yaml);
    return LoadConfig(dir);
  };
  auto ok = load(
      "agent_socket: sockets/agent.sock\n"
      "provisioner:\n  backend: local\n  local:\n    agent_path: /opt/cce/cce-agent\n"
      "    work_root: /run/jobs\n    tmpfs_mib: 512\n    memory_mib: 1024\n"
      "    pids_max: 100\n");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->provisioner_backend, "local");
  EXPECT_EQ(ok->local_agent_path, "/opt/cce/cce-agent");
  EXPECT_EQ(ok->local_work_root, "/run/jobs");
  EXPECT_EQ(ok->local_tmpfs_mib, 512);
  EXPECT_EQ(ok->local_memory_mib, 1024);
  EXPECT_EQ(ok->local_pids_max, 100);
  EXPECT_EQ(ok->Path(ok->agent_socket), dir + "/sockets/agent.sock");
  // The rendered default file loads back as the defaults.
  PlaneConfig defaults;
  auto rendered = load(RenderConfig(defaults));
  ASSERT_TRUE(rendered.ok()) << rendered.status().message();
  EXPECT_EQ(rendered->local_work_root, "/run/cce/jobs");
  EXPECT_EQ(rendered->local_agent_path, "");
  EXPECT_EQ(rendered->agent_socket, "agent.sock");

  const std::pair<std::string, std::string> bad[] = {
      {"provisioner:\n  backend: vm\n", "provisioner.backend: 'vm': expected one of"},
      {"provisioner:\n  local:\n    work_root: jobs\n", "provisioner.local.work_root"},
      {"provisioner:\n  local:\n    agent_path: cce-agent\n", "provisioner.local.agent_path"},
      {"provisioner:\n  local:\n    tmpfs_mib: 1\n", "provisioner.local.tmpfs_mib"},
      {"provisioner:\n  local:\n    swap: 1\n", "provisioner.local.swap: unknown field"},
      {"agent_socket: " + std::string(120, 'a') + "\n", "agent_socket"},
  };
  for (const auto& [yaml, want] : bad) {
    auto c = load(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.status().message().find(want), std::string::npos)
        << yaml << " -> " << c.status().message();
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST_F(LocalProvisionerTest, ASetupFailureIsReportedAndLeavesNothing) {
  // The agent socket is gone (the plane is not listening): Provision fails
  // before any agent runs, naming the socket, and cleans up.
  LocalProvisionerOptions o = Options();
  o.agent_socket = dir_ + "/absent.sock";
  auto p = Must(MakeLocalProvisioner(o, *db_, clock_, *log_), "provisioner");
  const std::string id = "job-00000000000000b5";
  Status s = p->Provision(MakeJob(id, JobState::kProvisioning), Credential("ok"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(dir_ + "/absent.sock"), std::string::npos) << s.message();
  EXPECT_TRUE(p->Active().empty());
  ExpectNothingLeft(id);
}

}  // namespace
}  // namespace cce::plane
