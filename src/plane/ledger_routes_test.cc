// An ethereum plane served for real (TLS, real HTTP) against a fake node (a
// plain-HTTP JSON-RPC responder of a few lines): the start refuses another
// chain or another plane's contract naming both values, starts when the node
// is down, and the ledger and wallet routes answer as docs/api.yaml says.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "base/fd.h"
#include "eth/eip191.h"
#include "eth/node_testing.h"
#include "eth/rental_market.h"
#include "eth/secp256k1.h"
#include "plane/config.h"
#include "plane/keys.h"
#include "plane/plane.h"
#include "plane/plane_testing.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;

using eth::testing::FakeRpcNode;
using FakeNode = FakeRpcNode;

const char kContract[] = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

class LedgerRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto plane = TestPlane::Create(clock_, {.dir_prefix = "cce-ledger-routes"});
    ASSERT_TRUE(plane.ok()) << plane.status().message();
    plane_ = std::move(*plane);
    dir_ = plane_->init().data_dir;
    auto config = LoadConfig(dir_);
    ASSERT_TRUE(config.ok());
    auto key = LoadSigningKey(config->Path(config->signing_key_file));
    ASSERT_TRUE(key.ok());
    const auto pub = key->PublicKey();
    plane_id_ = eth::PlaneId(pub);
  }

  // plane.yaml's ledger section: ethereum at `rpc`, chain 31337.
  void UseEthereum(const std::string& rpc) {
    std::ofstream(dir_ + "/plane.yaml", std::ios::app)
        << "ledger:\n  backend: ethereum\n  rpc: \"" << rpc << "\"\n  chain_id: 31337\n"
        << "  contract: \"" << kContract << "\"\n  confirmations: 1\n  poll_seconds: 1\n";
  }
  // A node on chain `chain_id` whose contract's planeId() is `plane_id`;
  // every other method is a JSON-RPC error.
  static FakeNode::Handler Node(uint64_t chain_id, eth::Hash32 plane_id) {
    return FakeRpcNode::Results(
        [chain_id, plane_id](const std::string& method) -> std::optional<json> {
          if (method == "eth_chainId") return eth::ToQuantity(chain_id);
          if (method == "eth_call") return plane_id.Hex();
          return std::nullopt;
        });
  }
  std::string Token(const std::string& name, store::Role role) {
    auto t = AddUser(dir_, name, role, clock_);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? *t : "";
  }
  // GET /api/v1/ledger until it shows a last_sync_error (10 s at most).
  json LedgerWithSyncError(const std::string& token) {
    auto c = plane_->Client();
    json last;
    for (int i = 0; i < 100; ++i) {
      auto r = c->Get("/api/v1/ledger", BearerAuth(token));
      if (r && r->status == 200) {
        last = json::parse(r->body);
        if (last.contains("last_sync_error")) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "no last_sync_error in " << last.dump();
    return last;
  }

  TestClock clock_;
  std::unique_ptr<TestPlane> plane_;
  std::string dir_;
  eth::Hash32 plane_id_;
};

TEST_F(LedgerRoutesTest, StartRefusesAnotherChainNamingBoth) {
  FakeNode node(Node(1, plane_id_));
  UseEthereum(node.url());
  Status s = plane_->Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("ledger.chain_id: plane.yaml expects chain 31337, the node at"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("is on chain 1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("refusing to start"), std::string::npos) << s.message();
}

TEST_F(LedgerRoutesTest, StartRefusesAnotherPlanesContractNamingBoth) {
  eth::Hash32 other = plane_id_;
  other.bytes[0] ^= 1;
  FakeNode node(Node(31337, other));
  UseEthereum(node.url());
  Status s = plane_->Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("belongs to plane " + other.Hex() + ", expected this plane's " +
                             plane_id_.Hex()),
            std::string::npos)
      << s.message();
}

TEST_F(LedgerRoutesTest, StartsWhenTheNodeIsDownAndSaysWhy) {
  // A port nothing listens on (bound, then closed).
  std::string url;
  {
    FakeNode gone(FakeRpcNode::Results([](const std::string&) { return std::nullopt; }));
    url = gone.url();
  }
  UseEthereum(url);
  ASSERT_TRUE(plane_->Start().ok()) << plane_->serve_status().message();
  const std::string carol = Token("carol", store::Role::kConsumer);
  json ledger = LedgerWithSyncError(carol);
  EXPECT_EQ(ledger["backend"], "ethereum");
  EXPECT_NE(ledger.value("last_sync_error", std::string()).find("127.0.0.1"), std::string::npos)
      << ledger.dump();
}

TEST_F(LedgerRoutesTest, LedgerAndWalletRoutes) {
  FakeNode node(Node(31337, plane_id_));
  UseEthereum(node.url());
  ASSERT_TRUE(plane_->Start().ok()) << plane_->serve_status().message();
  const std::string carol = Token("carol", store::Role::kConsumer);
  const std::string pat = Token("pat", store::Role::kProvider);
  auto c = plane_->Client();

  // The ledger: the node answers chain id and planeId() but nothing else, so
  // the sync rounds fail and say so.
  json ledger = LedgerWithSyncError(carol);
  EXPECT_EQ(ledger["backend"], "ethereum");
  EXPECT_EQ(ledger["chain_id"], 31337);
  EXPECT_EQ(ledger["contract"], kContract);
  EXPECT_EQ(ledger["confirmations"], 1);
  EXPECT_EQ(ledger["rpc"], node.url());
  EXPECT_EQ(ledger["plane_id"], plane_id_.Hex());
  EXPECT_NE(ledger["last_sync_error"].get<std::string>().find("method not found"),
            std::string::npos)
      << ledger.dump();
  auto no_dataset = c->Get("/api/v1/ledger/datasets/nope", BearerAuth(carol));
  ASSERT_TRUE(no_dataset);
  EXPECT_EQ(no_dataset->status, 404) << no_dataset->body;

  // Renting is a transaction.
  auto rent = c->Post("/api/v1/rentals", BearerAuth(carol), R"({"dataset":"claims","days":1})",
                      "application/json");
  ASSERT_TRUE(rent);
  EXPECT_EQ(rent->status, 409) << rent->body;
  EXPECT_EQ(json::parse(rent->body)["error"]["message"], Rentals::kEthereumRentHint);

  // Linking a wallet.
  auto key = eth::PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  const std::string address = key->address().Checksummed();
  auto by_provider = c->Post("/api/v1/wallet/challenge", BearerAuth(pat),
                             json{{"address", address}}.dump(), "application/json");
  ASSERT_TRUE(by_provider);
  EXPECT_EQ(by_provider->status, 403) << by_provider->body;
  auto unknown = c->Post("/api/v1/wallet/challenge", BearerAuth(carol),
                         json{{"address", address}, {"user", "pat"}}.dump(), "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400);
  EXPECT_EQ(json::parse(unknown->body)["error"]["message"],
            "body.user: unknown field (allowed: address)");
  auto ch = c->Post("/api/v1/wallet/challenge", BearerAuth(carol),
                    json{{"address", address}}.dump(), "application/json");
  ASSERT_TRUE(ch);
  ASSERT_EQ(ch->status, 200) << ch->body;
  const json challenge = json::parse(ch->body);
  const std::string message = challenge["message"];
  EXPECT_NE(message.find("\nuser: carol\naddress: " + address + "\n"), std::string::npos)
      << message;
  auto signature = eth::SignPersonal(message, *key);
  ASSERT_TRUE(signature.ok());
  auto other = eth::PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  // A wrong signer is refused (and spends the nonce).
  auto wrong = c->Post("/api/v1/wallet/link", BearerAuth(carol),
                       json{{"address", address},
                            {"nonce", challenge["nonce"]},
                            {"signature", *eth::SignPersonal(message, *other)}}
                           .dump(),
                       "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 403) << wrong->body;
  auto ch2 = c->Post("/api/v1/wallet/challenge", BearerAuth(carol),
                     json{{"address", address}}.dump(), "application/json");
  ASSERT_TRUE(ch2);
  const json challenge2 = json::parse(ch2->body);
  auto link = c->Post(
      "/api/v1/wallet/link", BearerAuth(carol),
      json{{"address", address},
           {"nonce", challenge2["nonce"]},
           {"signature", *eth::SignPersonal(challenge2["message"].get<std::string>(), *key)}}
          .dump(),
      "application/json");
  ASSERT_TRUE(link);
  ASSERT_EQ(link->status, 201) << link->body;
  EXPECT_EQ(json::parse(link->body)["address"], address);
  EXPECT_EQ(json::parse(link->body)["user"], "carol");
  auto list = c->Get("/api/v1/wallet", BearerAuth(carol));
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body;
  ASSERT_EQ(json::parse(list->body)["wallets"].size(), 1u);
  EXPECT_EQ(json::parse(list->body)["wallets"][0]["address"], address);
  auto pats = c->Get("/api/v1/wallet", BearerAuth(pat));
  ASSERT_TRUE(pats);
  EXPECT_TRUE(json::parse(pats->body)["wallets"].empty());
  // Linked: a new challenge for the address is a conflict.
  auto again = c->Post("/api/v1/wallet/challenge", BearerAuth(carol),
                       json{{"address", address}}.dump(), "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409) << again->body;
}

// An embedded plane answers the ledger route with its backend only, and the
// wallet routes with 409.
TEST_F(LedgerRoutesTest, EmbeddedPlane) {
  ASSERT_TRUE(plane_->Start().ok()) << plane_->serve_status().message();
  const std::string carol = Token("carol", store::Role::kConsumer);
  auto c = plane_->Client();
  auto ledger = c->Get("/api/v1/ledger", BearerAuth(carol));
  ASSERT_TRUE(ledger);
  ASSERT_EQ(ledger->status, 200);
  EXPECT_EQ(json::parse(ledger->body), json({{"backend", "embedded"}}));
  auto ch = c->Post("/api/v1/wallet/challenge", BearerAuth(carol),
                    json{{"address", "0x" + std::string(40, 'a')}}.dump(), "application/json");
  ASSERT_TRUE(ch);
  EXPECT_EQ(ch->status, 409) << ch->body;
}

}  // namespace
}  // namespace cce::plane
