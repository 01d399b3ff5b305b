// The bad-input table (issue 15): every case in tests/bad_inputs/*.cases run
// against one real plane (cce-plane serve on loopback, HTTPS with its own CA)
// holding a provider, a consumer, a reviewer, a registered dataset, a rental,
// a pushed image and a HELD job. Each case must end with its exit code (or
// HTTP status) and print every expected message. Syntax: cases.h.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bad_inputs/cases.h"
#include "base/fd.h"
#include "base/subprocess.h"
#include "e2e/plane_fixture.h"
#include "http/test_client.h"

namespace cce::bad_inputs {
namespace {

namespace fs = std::filesystem;
using e2e::BinPath;
using e2e::ReadFile;
using e2e::WriteFile;
using nlohmann::json;

constexpr auto kCaseTimeout = std::chrono::seconds(30);

std::string Clip(const std::string& s, size_t max = 1500) {
  return s.size() <= max ? s : s.substr(0, max) + "...[" + std::to_string(s.size()) + " bytes]";
}

// The plane and everything the cases refer to, set up once for all files.
class Table : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    plane_ = new e2e::PlaneFixture("fake");
    if (!plane_->up()) return;
    ok_ = Prepare();
  }
  static void TearDownTestSuite() {
    delete plane_;
    plane_ = nullptr;
  }

  static bool Prepare() {
    const e2e::TempDir& t = plane_->dir();
    auto must = [](const e2e::CommandResult& r, const char* what) {
      if (r.exit_code != 0) ADD_FAILURE() << "setup: " << what << ": " << r.err;
      return r.exit_code == 0;
    };
    tokens_["operator"] = plane_->operator_token();
    tokens_["provider"] = plane_->AddUser("pat", "provider");
    tokens_["consumer"] = plane_->AddUser("carol", "consumer");
    tokens_["reviewer"] = plane_->AddUser("rita", "reviewer");
    WriteFile(t / "plain/claims.csv", "id,cost\n1,10\n2,12\n");
    if (!must(plane_->Cce({"key", "generate", "--out", t / "claims.key"}), "key generate") ||
        !must(plane_->Cce({"key", "generate", "--out", t / "other.key"}), "key generate") ||
        !must(plane_->Cce(
                  {"dataset", "encrypt", "--key", t / "claims.key", t / "plain", t / "claims.enc"}),
              "encrypt")) {
      return false;
    }
    // A copy with one ciphertext byte flipped in its one file's object.
    fs::copy(t / "claims.enc", t / "tampered.enc", fs::copy_options::recursive);
    std::string victim;
    for (const auto& e : fs::recursive_directory_iterator(t / "tampered.enc")) {
      if (e.is_regular_file() && e.path().filename() != "manifest.cce" &&
          (victim.empty() || e.file_size() > fs::file_size(victim))) {
        victim = e.path().string();
      }
    }
    std::string bytes = ReadFile(victim);
    const size_t at = bytes.size() - 20;
    bytes[at] = static_cast<char>(bytes[at] ^ 1);
    WriteFile(victim, bytes);

    if (!plane_->Login(tokens_["provider"]) ||
        !must(plane_->Cce({"dataset", "register", "claims", "--key", t / "claims.key", "--location",
                           "file://" + (t / "claims.enc"), "--price", "2.5", "--max-days", "14"}),
              "dataset register") ||
        !plane_->Login(tokens_["consumer"]) ||
        !must(plane_->Cce({"rent", "claims", "--days", "3"}), "rent")) {
      return false;
    }
    e2e::WriteOciLayout(t, t / "app-oci", "team/stats:1.0");
    if (!must(plane_->Cce({"image", "push", t / "app-oci"}), "image push")) return false;
    WriteFile(t / "job.yaml",
              "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: {name: cohort-stats}\n"
              "spec:\n  image: team/stats:1.0\n  command: [/bin/tool]\n"
              "  datasets:\n    - {name: claims, mountPath: /data/claims}\n"
              "  resources: {cpus: 1, memoryMiB: 512, timeoutSeconds: 600, outputMaxMiB: 16}\n");
    auto submit = plane_->Cce({"job", "submit", "-f", t / "job.yaml"});
    if (!must(submit, "job submit")) return false;
    const std::string job = submit.out.substr(0, submit.out.find('\n'));
    if (!must(plane_->Cce({"job", "status", job, "--watch", "--until", "HELD"}), "job to HELD")) {
      return false;
    }
    vars_ = {
        {"PLANE", plane_->url()},       {"CA", plane_->ca()},
        {"DATA", plane_->data_dir()},   {"BIN", fs::path(BinPath("cce")).parent_path().string()},
        {"DATASET", "claims"},          {"KEY", t / "claims.key"},
        {"WRONG_KEY", t / "other.key"}, {"PLAIN", t / "plain"},
        {"ENC", t / "claims.enc"},      {"TAMPERED", t / "tampered.enc"},
        {"IMAGE", t / "app-oci"},       {"JOB", job},
        {"TOKEN", tokens_["consumer"]}, {"TLS_KEY", plane_->data_dir() + "/tls/server.key"}};
    for (const std::string& v : kVariables) {
      if (v != "WORK" && !vars_.count(v)) ADD_FAILURE() << "setup: no value for $" << v;
    }
    return true;
  }

  // Runs one case; returns "" when it passed, else what went wrong.
  static std::string RunCase(const Case& c) {
    const std::string work = plane_->dir() / ("case-" + std::to_string(counter_++));
    fs::create_directories(work + "/.home");
    std::map<std::string, std::string> vars = vars_;
    vars["WORK"] = work;
    std::string got;      // where the messages must appear
    std::string shown;    // what a failure shows
    std::string outcome;  // "exit 2" / "status 404"
    bool code_ok = false;
    if (c.is_http()) {
      auto path = Expand(c.path, vars);
      auto body = Expand(c.body.value_or(""), vars);
      if (!path.ok() || !body.ok()) return "cannot expand: " + path.status().message();
      http::ClientRequest req;
      req.method = c.method;
      req.target = *path;
      bool has_type = false;
      for (const auto& [k, v] : c.headers) {
        auto value = Expand(v, vars);
        if (!value.ok()) return value.status().message();
        req.headers.push_back({k, *value});
        has_type = has_type || strcasecmp(k.c_str(), "Content-Type") == 0;
      }
      if (c.body) {
        req.body = *body;
        if (!has_type) req.headers.push_back({"Content-Type", "application/json"});
      }
      if (c.as != "none") req.headers.push_back({"Authorization", "Bearer " + tokens_[c.as]});
      http::ClientOptions o;
      o.base_url = plane_->url();
      o.ca_file = plane_->ca();
      o.timeout = kCaseTimeout;
      http::testing::TestClient client(o);
      auto r = client.Send(req);
      if (!r) return "request failed: " + client.error().message();
      got = r->body;
      shown = "body: " + r->body;
      outcome = "status " + std::to_string(r->status);
      code_ok = r->status == *c.status;
    } else {
      auto argv = SplitCommand(c.run, vars);
      if (!argv.ok()) return argv.status().message();
      (*argv)[0] = BinPath((*argv)[0]);
      for (const auto& [name, content] : c.files) WriteFile(work + "/" + name, content);
      auto in = Expand(c.stdin_text.value_or(""), vars);
      if (!in.ok()) return in.status().message();
      WriteFile(work + "/.home/stdin", *in);
      UniqueFd in_fd(::open((work + "/.home/stdin").c_str(), O_RDONLY | O_CLOEXEC));
      UniqueFd out_fd(
          ::open((work + "/.home/stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      UniqueFd err_fd(
          ::open((work + "/.home/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      SpawnOptions so;
      so.argv = *argv;
      so.cwd = work;
      so.fds = {{0, in_fd.get()}, {1, out_fd.get()}, {2, err_fd.get()}};
      const char* path_env = std::getenv("PATH");
      so.env = {"HOME=" + work + "/.home", "LC_ALL=C.UTF-8",
                std::string("PATH=") + (path_env != nullptr ? path_env : "/usr/bin:/bin")};
      if (c.as != "none") {
        so.env.push_back("CCE_PLANE_URL=" + plane_->url());
        so.env.push_back("CCE_CA_FILE=" + plane_->ca());
        so.env.push_back("CCE_TOKEN=" + tokens_[c.as]);
      }
      auto child = Subprocess::Spawn(so);
      if (!child.ok()) return "cannot start: " + child.status().message();
      auto done = child->WaitFor(kCaseTimeout);
      if (!done.ok()) return "wait: " + done.status().message();
      if (!*done) return "still running after 30 s (killed)";
      const std::string out = ReadFile(work + "/.home/stdout");
      const std::string err = ReadFile(work + "/.home/stderr");
      got = err + "\n" + out;
      shown = "stderr: " + err + "\nstdout: " + out;
      outcome = "exit " + std::to_string((*done)->ShellCode());
      code_ok = (*done)->ShellCode() == *c.exit;
    }
    std::string problems;
    if (!code_ok) {
      problems += "got " + outcome + ", expected " +
                  (c.is_http() ? "status " + std::to_string(*c.status)
                               : "exit " + std::to_string(*c.exit)) +
                  "\n";
    }
    for (const std::string& m : c.messages) {
      auto want = Expand(m, vars);
      if (!want.ok() || got.find(*want) == std::string::npos) {
        problems += "missing message: " + (want.ok() ? *want : m) + "\n";
      }
    }
    for (const std::string& m : c.absent) {
      auto unwanted = Expand(m, vars);
      if (unwanted.ok() && got.find(*unwanted) != std::string::npos) {
        problems += "unwanted text present: " + *unwanted + "\n";
      }
    }
    if (problems.empty()) {
      std::error_code ec;
      fs::remove_all(work, ec);
      return "";
    }
    return problems + Clip(shown);
  }

  static void RunFile(const std::string& name) {
    ASSERT_TRUE(plane_ != nullptr && plane_->up() && ok_) << "the plane fixture did not come up";
    const std::string path = std::string(CCE_SOURCE_DIR) + "/tests/bad_inputs/" + name;
    ASSERT_TRUE(fs::exists(path)) << path;
    auto cases = ParseCases(ReadFile(path), name);
    ASSERT_TRUE(cases.ok()) << cases.status().message();
    EXPECT_FALSE(cases->empty()) << name << " has no cases";
    for (const Case& c : *cases) {
      const std::string problem = RunCase(c);
      EXPECT_EQ(problem, "") << c.where() << ": " << c.run << c.method << " " << c.path << "\n"
                             << problem;
    }
    std::cout << "[ bad inputs ] " << name << ": " << cases->size() << " cases\n";
  }

  static inline e2e::PlaneFixture* plane_ = nullptr;
  static inline bool ok_ = false;
  static inline std::map<std::string, std::string> tokens_;
  static inline std::map<std::string, std::string> vars_;
  static inline int counter_ = 0;
};

// Every tests/bad_inputs/*.cases file, in name order; cli.cases must be there.
TEST_F(Table, EveryCase) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(std::string(CCE_SOURCE_DIR) + "/tests/bad_inputs")) {
    if (e.path().extension() == ".cases") files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  EXPECT_TRUE(std::find(files.begin(), files.end(), "cli.cases") != files.end())
      << "tests/bad_inputs/cli.cases is missing";
  for (const std::string& f : files) RunFile(f);
}

}  // namespace
}  // namespace cce::bad_inputs
