// `cce-plane init --ledger ethereum`: its flags are checked before the data
// directory is made; against a real anvil (npm @foundry-rs/anvil, on a free
// loopback port, started and stopped here) it deploys the contract and
// writes plane.yaml's ledger section; with the node down the plane is made
// on the embedded ledger and the operator token is still printed.
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

}  // namespace
}  // namespace cce::cmd
