// `cce-plane init --ledger ethereum`: its flags are checked before the data
// directory is made; against a real anvil (npm @foundry-rs/anvil, on a free
// loopback port, started and stopped here) it deploys the contract and
// writes plane.yaml's ledger section; with the node down the plane is made
// on the embedded ledger and the operator token is still printed. Also: the
// messages of init, user add and serve name the cause and the fix (a missing
// parent directory, a missing --role, a port in use).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "base/fd.h"
#include "base/subprocess.h"
#include "cce_plane_commands.h"
#include "eth/node_testing.h"
#include "eth/rpc.h"
#include "plane/config.h"

namespace cce::cmd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using eth::testing::kAnvilKey0;

struct PlaneRun {
  int exit = -1;
  std::string out;
};

// cce-plane ARGS in this process, stdout captured.
PlaneRun RunPlane(const std::vector<std::string>& args) {
  std::ostringstream captured;
  std::streambuf* saved = std::cout.rdbuf(captured.rdbuf());
  PlaneRun r;
  r.exit = cli::RunCommand(PlaneCommandTable(), args);
  std::cout.rdbuf(saved);
  r.out = captured.str();
  return r;
}

class PlaneInitLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "cce-plane-init-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    tmp_ = pattern;
    key_file_ = tmp_ + "/operator.key";
    UniqueFd fd(::open(key_file_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd.valid());
    const std::string line = std::string(kAnvilKey0) + "\n";
    ASSERT_EQ(::write(fd.get(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  void TearDown() override {
    anvil_.reset();  // stops and reaps it
    fs::remove_all(tmp_);
  }

  // Starts anvil on a free loopback port; its URL.
  std::string StartAnvil() {
    auto node = eth::testing::AnvilNode::Start(CCE_SOURCE_DIR, tmp_);
    if (!node.ok()) {
      ADD_FAILURE() << node.status().message();
      return "";
    }
    anvil_ = std::move(node).value();
    return anvil_->url();
  }

  std::string tmp_;
  std::string key_file_;
  std::unique_ptr<eth::testing::AnvilNode> anvil_;
};

TEST_F(PlaneInitLedgerTest, BadLedgerFlagsAreRefusedBeforeTheDirectoryIsMade) {
  const std::string dir = tmp_ + "/plane";
  const std::string loose = tmp_ + "/loose.key";
  { std::ofstream(loose) << kAnvilKey0 << "\n"; }
  fs::permissions(loose, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                             fs::perms::others_read);
  const std::vector<std::vector<std::string>> bad = {
      {"--ledger", "bitcoin"},
      {"--ledger", "ethereum", "--key-file", key_file_},
      {"--ledger", "ethereum", "--rpc", "http://127.0.0.1:1"},
      {"--ledger", "ethereum", "--rpc", "http://127.0.0.1:1", "--key-file", loose},
      {"--ledger", "ethereum", "--rpc", "http://127.0.0.1:1", "--key-file", key_file_,
       "--confirmations", "0"},
      {"--rpc", "http://127.0.0.1:1"},
  };
  for (const auto& extra : bad) {
    std::vector<std::string> args = {"init", "--data-dir", dir, "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    PlaneRun r = RunPlane(args);
    EXPECT_NE(r.exit, 0) << extra.back();
    EXPECT_EQ(r.out.find("cce_"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(dir)) << "made " << dir << " with " << extra.back();
  }
}

TEST_F(PlaneInitLedgerTest, DeploysToANodeAndWritesTheLedgerSection) {
  const std::string url = StartAnvil();
  ASSERT_FALSE(url.empty());
  const std::string dir = tmp_ + "/plane";
  PlaneRun r =
      RunPlane({"init", "--data-dir", dir, "--listen", "127.0.0.1:0", "--ledger", "ethereum",
                "--rpc", url, "--key-file", key_file_, "--confirmations", "2", "--output", "json"});
  ASSERT_EQ(r.exit, 0) << r.out;
  json j = json::parse(r.out);  // one JSON object
  EXPECT_EQ(j["ledger"], "ethereum");
  EXPECT_EQ(j["token"].get<std::string>().rfind("cce_", 0), 0u);
  EXPECT_EQ(j["ethereum"]["chain_id"], 31337);
  EXPECT_EQ(j["ethereum"]["operator"], "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
  auto c = plane::LoadConfig(dir);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->ledger_backend, "ethereum");
  EXPECT_EQ(c->ledger_rpc, url);
  EXPECT_EQ(c->ledger_chain_id, 31337);
  EXPECT_EQ(c->ledger_confirmations, 2);
  auto contract = eth::ParseAddress(c->ledger_contract, "contract");
  ASSERT_TRUE(contract.ok());
  EXPECT_EQ(contract->Checksummed(), j["ethereum"]["contract"]);
}

TEST_F(PlaneInitLedgerTest, ANodeDownLeavesTheEmbeddedLedgerAndPrintsTheToken) {
  const std::string dir = tmp_ + "/plane";
  const std::string url = "http://127.0.0.1:" + std::to_string(eth::testing::FreeLoopbackPort());
  PlaneRun r = RunPlane({"init", "--data-dir", dir, "--listen", "127.0.0.1:0", "--ledger",
                         "ethereum", "--rpc", url, "--key-file", key_file_, "--output", "json"});
  EXPECT_NE(r.exit, 0);
  json j = json::parse(r.out);
  EXPECT_EQ(j["token"].get<std::string>().rfind("cce_", 0), 0u);
  EXPECT_EQ(j["ledger"], "embedded");
  EXPECT_TRUE(j.contains("ledger_error"));
  auto c = plane::LoadConfig(dir);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->ledger_backend, "embedded");
}

// cce-plane ARGS in this process, stderr captured (its error messages).
PlaneRun RunPlaneErrors(const std::vector<std::string>& args) {
  std::ostringstream captured;
  std::streambuf* saved = std::cerr.rdbuf(captured.rdbuf());
  PlaneRun r = RunPlane(args);
  std::cerr.rdbuf(saved);
  r.out = captured.str();
  return r;
}

TEST_F(PlaneInitLedgerTest, MessagesNameTheCauseAndTheFix) {
  PlaneRun missing = RunPlaneErrors({"init", "--data-dir", "/nonexistent-cce/a/b"});
  EXPECT_EQ(missing.exit, 2);
  EXPECT_NE(missing.out.find("the parent directory /nonexistent-cce/a does not exist; create it "
                             "first (mkdir -p /nonexistent-cce/a)"),
            std::string::npos)
      << missing.out;
  PlaneRun listen = RunPlaneErrors({"init", "--data-dir", tmp_ + "/p", "--listen", "8443"});
  EXPECT_EQ(listen.exit, 2);
  EXPECT_NE(listen.out.find("--listen 8443: expected ADDR:PORT"), std::string::npos) << listen.out;
  EXPECT_FALSE(fs::exists(tmp_ + "/p"));

  const std::string dir = tmp_ + "/plane";
  ASSERT_EQ(RunPlane({"init", "--data-dir", dir, "--listen", "127.0.0.1:0"}).exit, 0);
  PlaneRun no_role = RunPlaneErrors({"user", "add", "--data-dir", dir, "bob"});
  EXPECT_EQ(no_role.exit, 2);
  for (const char* role : {"provider", "consumer", "reviewer", "operator"}) {
    EXPECT_NE(no_role.out.find(role), std::string::npos) << no_role.out;
  }
  EXPECT_NE(no_role.out.find("--role ROLE is required"), std::string::npos) << no_role.out;
  PlaneRun not_a_plane = RunPlaneErrors({"serve", "--data-dir", tmp_});
  EXPECT_EQ(not_a_plane.exit, 2);
  EXPECT_NE(not_a_plane.out.find("is not a plane's data directory"), std::string::npos)
      << not_a_plane.out;
}

TEST_F(PlaneInitLedgerTest, ServeSaysWhyItCannotListen) {
  const std::string dir = tmp_ + "/plane";
  ASSERT_EQ(RunPlane({"init", "--data-dir", dir, "--listen", "127.0.0.1:0"}).exit, 0);
  // A socket holding a loopback port, as another program would.
  UniqueFd busy(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(busy.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(busy.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(busy.get(), 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(busy.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string listen = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  PlaneRun r = RunPlaneErrors({"serve", "--data-dir", dir, "--listen", listen});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.out.find("cannot listen on " + listen + ": the address is already in use"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--listen ADDR:PORT"), std::string::npos) << r.out;
  PlaneRun bad = RunPlaneErrors({"serve", "--data-dir", dir, "--listen", "localhost"});
  EXPECT_EQ(bad.exit, 2);
  EXPECT_NE(bad.out.find("--listen localhost: expected ADDR:PORT"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace cce::cmd
