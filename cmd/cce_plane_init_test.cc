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
#include "eth/rpc.h"
#include "plane/config.h"

namespace cce::cmd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Anvil's development account 0 ("test test ... junk" mnemonic).
constexpr char kAnvilKey0[] = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

int FreeLoopbackPort() {
  UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!s.valid() || bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 0;
  }
  return ntohs(addr.sin_port);
}

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
    if (anvil_) {
      (void)anvil_->Signal(SIGTERM);
      (void)anvil_->WaitFor(std::chrono::seconds(5));
      anvil_.reset();  // SIGKILL and reap if it is still there
    }
    fs::remove_all(tmp_);
  }

  // Starts anvil on a free loopback port; its URL.
  std::string StartAnvil() {
    const std::string anvil =
        std::string(CCE_SOURCE_DIR) + "/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
    if (!fs::exists(anvil)) {
      ADD_FAILURE() << anvil
                    << " is missing: run `npm ci` in the repository (package.json pins "
                       "@foundry-rs/anvil)";
      return "";
    }
    const int port = FreeLoopbackPort();
    const std::string log = tmp_ + "/anvil.log";
    UniqueFd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    SpawnOptions so;
    so.argv = {anvil, "--host", "127.0.0.1", "--port", std::to_string(port)};
    so.env = {"HOME=" + tmp_};
    so.fds = {{1, log_fd.get()}, {2, log_fd.get()}};
    so.die_with_parent = true;
    auto p = Subprocess::Spawn(so);
    if (!p.ok()) {
      ADD_FAILURE() << "anvil: " << p.status().message();
      return "";
    }
    anvil_ = std::make_unique<Subprocess>(std::move(p).value());
    const std::string url = "http://127.0.0.1:" + std::to_string(port);
    auto rpc =
        eth::RpcClient::Create({.url = url, .ca_file = "", .timeout = std::chrono::seconds(2)});
    for (int i = 0; rpc.ok() && i < 200; ++i) {
      if (rpc->ChainId().ok()) return url;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "anvil did not answer on " << url << " within 20 s (log: " << log << ")";
    return "";
  }

  std::string tmp_;
  std::string key_file_;
  std::unique_ptr<Subprocess> anvil_;
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
  const std::string url = "http://127.0.0.1:" + std::to_string(FreeLoopbackPort());
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
