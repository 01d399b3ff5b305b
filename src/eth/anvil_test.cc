// RpcClient, SendAndWait, the RentalMarket binding and RpcChainSource
// against a real node: anvil (npm @foundry-rs/anvil) on a free loopback port,
// started and stopped by the test, running the committed contract build.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/subprocess.h"
#include "eth/node_testing.h"
#include "eth/rental_market.h"
#include "eth/rpc.h"
#include "eth/secp256k1.h"
#include "eth/send.h"
#include "ledger/rpc_chain_source.h"

namespace cce::eth {
namespace {

namespace fs = std::filesystem;

template <typename T>
T Must(StatusOr<T> v, std::string_view what = "") {
  EXPECT_TRUE(v.ok()) << what << ": " << v.status().ToString();
  if (!v.ok()) throw std::runtime_error(v.status().ToString());
  return std::move(v).value();
}

using testing::kAnvilChainId;
constexpr const char* kOperatorKey = testing::kAnvilKey0;
constexpr const char* kProviderKey = testing::kAnvilKey1;
constexpr const char* kConsumerKey = testing::kAnvilKey2;
constexpr uint64_t kChainId = kAnvilChainId;
const U256 kEther = U256(1'000'000'000'000'000'000ULL);

class Anvil : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("cce-eth-anvil-" + std::to_string(getpid())));
    fs::create_directories(*dir_);
    auto node = testing::AnvilNode::Start(CCE_SOURCE_DIR, dir_->string(), kChainId);
    ASSERT_TRUE(node.ok()) << node.status().message();
    anvil_ = std::move(node).value().release();
    url_ = new std::string(anvil_->url());
    ready_ = true;
  }

  static void TearDownTestSuite() {
    delete anvil_;  // stops and reaps it
    anvil_ = nullptr;
    if (dir_ != nullptr) {
      std::error_code ec;
      fs::remove_all(*dir_, ec);
      delete dir_;
      dir_ = nullptr;
    }
    delete url_;
    url_ = nullptr;
  }

  // A failed suite setup (anvil missing or mute) fails every test by name.
  void SetUp() override {
    ASSERT_TRUE(ready_) << "anvil is not running: see the setup failure reported above";
  }

  RpcClient Rpc() {
    return Must(
        RpcClient::Create({.url = *url_, .ca_file = "", .timeout = std::chrono::seconds(10)}));
  }

  // Keys go through the real reader: a 0600 file in the test's directory.
  PrivateKey Key(const char* hex, const std::string& name) {
    const std::string path = (*dir_ / (name + ".key")).string();
    {
      UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      EXPECT_TRUE(fd.valid());
      const std::string line = std::string(hex) + "\n";
      EXPECT_EQ(write(fd.get(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
    }
    return Must(PrivateKey::ReadFile(path), path);
  }

  SendOptions Options(std::vector<std::string>* stages = nullptr) {
    SendOptions o;
    o.timeout = std::chrono::seconds(30);
    o.poll_interval = std::chrono::milliseconds(100);
    if (stages != nullptr) o.progress = [stages](std::string_view s) { stages->emplace_back(s); };
    return o;
  }

  static Hash32 TestPlaneId() {
    crypto::Bytes key(32, 0x07);
    return PlaneId(key);
  }

  // Deploys a fresh RentalMarket with the test plane's id; returns its
  // address and deployment block.
  std::pair<Address, uint64_t> Deploy(RpcClient& rpc, const PrivateKey& op) {
    TxRequest req;
    req.data = DeployData(TestPlaneId());
    const Receipt r = Must(SendAndWait(rpc, kChainId, op, req, Options()), "deploy");
    EXPECT_TRUE(r.success);
    EXPECT_TRUE(r.contract_address.has_value());
    return {r.contract_address.value_or(Address{}), r.block_number};
  }

  static bool ready_;
  static fs::path* dir_;
  static std::string* url_;
  static testing::AnvilNode* anvil_;
};

bool Anvil::ready_ = false;
fs::path* Anvil::dir_ = nullptr;
std::string* Anvil::url_ = nullptr;
testing::AnvilNode* Anvil::anvil_ = nullptr;

TEST_F(Anvil, DeployRegisterRentAndReadTheEvent) {
  RpcClient rpc = Rpc();
  const PrivateKey op = Key(kOperatorKey, "operator");
  const PrivateKey provider = Key(kProviderKey, "provider");
  const PrivateKey consumer = Key(kConsumerKey, "consumer");
  ASSERT_EQ(op.address().Checksummed(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

  const auto [contract, deployed_in] = Deploy(rpc, op);
  // What runs on chain is the committed build, and it names this plane.
  EXPECT_EQ(Must(rpc.GetCode(contract)), DeployedBytecode());
  EXPECT_EQ(
      Must(DecodeBytes32Return(Must(rpc.EthCall(contract, EncodePlaneIdGetter())), "planeId()")),
      TestPlaneId());
  EXPECT_EQ(
      Must(DecodeAddressReturn(Must(rpc.EthCall(contract, EncodeOperatorGetter())), "operator()")),
      op.address());

  const Hash32 dataset = ChainDatasetId(TestPlaneId(), 7);
  TxRequest reg;
  reg.to = contract;
  reg.data = EncodeRegisterDataset(dataset, provider.address(), kEther, 30);
  std::vector<std::string> stages;
  const Receipt reg_receipt =
      Must(SendAndWait(rpc, kChainId, op, reg, Options(&stages)), "register");
  EXPECT_TRUE(reg_receipt.success);
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0], "sent " + reg_receipt.tx_hash.Hex());
  EXPECT_EQ(stages[1], "mined in block " + std::to_string(reg_receipt.block_number));
  const ChainDataset d =
      Must(DecodeDataset(Must(rpc.EthCall(contract, EncodeDatasetGetter(dataset)))));
  EXPECT_EQ(d.provider, provider.address());
  EXPECT_EQ(d.price_per_day, kEther);
  EXPECT_EQ(d.max_days, 30u);
  EXPECT_TRUE(d.active);

  TxRequest rent;
  rent.to = contract;
  rent.value = 2 * kEther;
  rent.data = EncodeRent(dataset, 2);
  const Receipt rented = Must(SendAndWait(rpc, kChainId, consumer, rent, Options()), "rent");
  EXPECT_TRUE(rented.success);

  const uint64_t head = Must(rpc.BlockNumber());
  const std::vector<Log> logs = Must(rpc.GetLogs(contract, {RentedTopic()}, deployed_in, head));
  ASSERT_EQ(logs.size(), 1u);
  const RentedEvent e = Must(DecodeRented(logs[0]));
  EXPECT_EQ(e.dataset, dataset);
  EXPECT_EQ(e.consumer, consumer.address());
  EXPECT_EQ(e.days, 2u);
  EXPECT_EQ(e.amount, 2 * kEther);
  EXPECT_EQ(e.end - e.start, 2 * 86'400);
  EXPECT_EQ(e.tx_hash, rented.tx_hash);
  EXPECT_EQ(e.block_hash, rented.block_hash);
  EXPECT_EQ(e.block_number, rented.block_number);
  const auto block = Must(rpc.BlockByNumber(rented.block_number));
  ASSERT_TRUE(block.has_value());
  EXPECT_EQ(e.start, block->timestamp);

  // The plane's view of the same chain.
  ledger::RpcChainSource source(Rpc(), contract);
  EXPECT_EQ(Must(source.ChainId()), kChainId);
  const uint64_t source_head = Must(source.HeadNumber());
  EXPECT_GE(source_head, rented.block_number);
  EXPECT_EQ(Must(source.BlockHash(rented.block_number)), std::optional<Hash32>(rented.block_hash));
  EXPECT_EQ(Must(source.BlockHash(source_head + 1000)), std::nullopt);
  const auto events = Must(source.RentedEvents(deployed_in, source_head));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].tx_hash, rented.tx_hash);
  EXPECT_EQ(events[0].consumer, consumer.address());
}

TEST_F(Anvil, RevertsAreRefusedBeforeSendingWithTheReason) {
  RpcClient rpc = Rpc();
  const PrivateKey op = Key(kOperatorKey, "operator");
  const PrivateKey consumer = Key(kConsumerKey, "consumer");
  const auto [contract, deployed_in] = Deploy(rpc, op);
  const Hash32 dataset = ChainDatasetId(TestPlaneId(), 8);
  TxRequest reg;
  reg.to = contract;
  reg.data = EncodeRegisterDataset(dataset, consumer.address(), kEther, 30);
  Must(SendAndWait(rpc, kChainId, op, reg, Options()), "register");
  const uint64_t nonce_before = Must(rpc.PendingNonce(consumer.address()));

  TxRequest under;
  under.to = contract;
  under.value = kEther;
  under.data = EncodeRent(dataset, 2);
  auto r = SendAndWait(rpc, kChainId, consumer, under, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("WrongPayment(expected 2 ETH, sent 1 ETH)"),
            std::string::npos)
      << r.status().message();

  TxRequest not_operator = reg;  // registerDataset from the consumer
  auto n = SendAndWait(rpc, kChainId, consumer, not_operator, Options());
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("NotOperator()"), std::string::npos) << n.status().message();

  TxRequest unknown = under;
  unknown.data = EncodeRent(ChainDatasetId(TestPlaneId(), 9), 1);
  auto u = SendAndWait(rpc, kChainId, consumer, unknown, Options());
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("UnknownDataset(" + ChainDatasetId(TestPlaneId(), 9).Hex()),
            std::string::npos)
      << u.status().message();
  // Nothing was sent.
  EXPECT_EQ(Must(rpc.PendingNonce(consumer.address())), nonce_before);
}

TEST_F(Anvil, WrongChainIdIsRefused) {
  RpcClient rpc = Rpc();
  const PrivateKey op = Key(kOperatorKey, "operator");
  TxRequest req;
  req.data = DeployData(TestPlaneId());
  auto r = SendAndWait(rpc, 1, op, req, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("is on chain 31337, expected chain 1"), std::string::npos)
      << r.status().message();
}

TEST_F(Anvil, WaitsForConfirmations) {
  RpcClient rpc = Rpc();
  const PrivateKey op = Key(kOperatorKey, "operator");
  // anvil mines only on transactions: another connection mines empty blocks.
  std::atomic<bool> stop{false};
  std::thread miner([&] {
    RpcClient m = Rpc();
    while (!stop) {
      (void)m.Call("evm_mine", nlohmann::json::array());
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
  });
  TxRequest req;
  req.data = DeployData(TestPlaneId());
  std::vector<std::string> stages;
  SendOptions o = Options(&stages);
  o.confirmations = 3;
  auto r = SendAndWait(rpc, kChainId, op, req, o);
  stop = true;
  miner.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(Must(rpc.BlockNumber()), r->block_number + 2);
  ASSERT_FALSE(stages.empty());
  EXPECT_EQ(stages.back(), "confirmations 3/3");
}

}  // namespace
}  // namespace cce::eth
