// RpcClient against a fake node (eth::testing::FakeRpcNode), so each test
// decides exactly what the "node" answers, including answers no real node
// gives.
#include "eth/rpc.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "base/fd.h"
#include "eth/abi.h"
#include "eth/node_testing.h"
#include "eth/rental_market.h"

namespace cce::eth {
namespace {

using nlohmann::json;

template <typename T>
T Must(StatusOr<T> v) {
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return std::move(v).value();
}

using Answer = testing::RpcAnswer;
using FakeNode = testing::FakeRpcNode;

// A node whose every answer is `result` for the request's id.
FakeNode::Handler Result(json result) {
  return [result](const json& req, const std::string&) {
    return Answer{200, json{{"jsonrpc", "2.0"}, {"id", req.at("id")}, {"result", result}}.dump()};
  };
}

FakeNode::Handler Error(json error) {
  return [error](const json& req, const std::string&) {
    return Answer{200, json{{"jsonrpc", "2.0"}, {"id", req.at("id")}, {"error", error}}.dump()};
  };
}

RpcClient Client(const std::string& url) {
  return Must(RpcClient::Create({.url = url, .ca_file = "", .timeout = std::chrono::seconds(5)}));
}

const char kHash[] = "0x1111111111111111111111111111111111111111111111111111111111111111";
const char kParent[] = "0x2222222222222222222222222222222222222222222222222222222222222222";
const char kContract[] = "0x5fbdb2315678afecb367f032d93f642f64180aa3";

json BlockJson(uint64_t number) {
  return {{"number", ToQuantity(number)},  {"hash", kHash},
          {"parentHash", kParent},         {"timestamp", "0x6553f100"},
          {"baseFeePerGas", "0x3b9aca00"}, {"transactions", json::array()}};
}

json LogJson() {
  return {{"address", kContract}, {"topics", json::array({RentedTopic().Hex(), kHash, kParent})},
          {"data", "0x"},         {"blockNumber", "0x5"},
          {"blockHash", kHash},   {"transactionHash", kParent},
          {"logIndex", "0x0"},    {"removed", false}};
}

TEST(RpcClient, NodeDownIsUnavailableNamingTheUrl) {
  int port = 0;
  {
    FakeNode closed(Result(nullptr));  // a port that was free a moment ago
    port = std::stoi(closed.url().substr(17));
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  RpcClient rpc = Client(url);
  auto id = rpc.ChainId();
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(id.status().message().find("eth_chainId"), std::string::npos) << id.status().message();
  EXPECT_NE(id.status().message().find(url), std::string::npos) << id.status().message();
  EXPECT_EQ(id.status().message().find("plane"), std::string::npos) << id.status().message();
}

TEST(RpcClient, ParsesAnswers) {
  FakeNode node([](const json& req, const std::string&) {
    const std::string m = req.at("method");
    json result;
    if (m == "eth_chainId") result = "0x7a69";
    if (m == "eth_getBlockByNumber") result = BlockJson(5);
    if (m == "eth_getLogs") result = json::array({LogJson()});
    return Answer{200, json{{"jsonrpc", "2.0"}, {"id", req.at("id")}, {"result", result}}.dump()};
  });
  RpcClient rpc = Client(node.url());
  EXPECT_EQ(Must(rpc.ChainId()), 31337u);
  const auto block = Must(rpc.BlockByNumber(5));
  ASSERT_TRUE(block.has_value());
  EXPECT_EQ(block->hash.Hex(), kHash);
  EXPECT_EQ(block->parent_hash.Hex(), kParent);
  EXPECT_EQ(block->timestamp, 0x6553f100);
  EXPECT_EQ(block->base_fee, U256(1'000'000'000));
  const Address contract = Must(ParseAddress(kContract, "contract"));
  const auto logs = Must(rpc.GetLogs(contract, {RentedTopic()}, 1, 9));
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].block_number, 5u);
  EXPECT_EQ(logs[0].tx_hash.Hex(), kParent);
}

TEST(RpcClient, NodeErrorIsFailedPreconditionWithMethodCodeAndMessage) {
  FakeNode node(Error({{"code", -32000}, {"message", "nonce too low"}}));
  RpcClient rpc = Client(node.url());
  auto sent = rpc.SendRawTransaction(crypto::Bytes{0x02});
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sent.status().message(), "eth_sendRawTransaction: -32000 nonce too low");
}

TEST(RpcClient, NodeErrorWithRevertDataIsDecoded) {
  const crypto::Bytes revert = AbiEncoder("WrongPayment(uint256,uint256)")
                                   .Uint(U256(2'000'000'000'000'000'000ULL))
                                   .Uint(U256(1'000'000'000'000'000'000ULL))
                                   .Finish();
  FakeNode node(Error({{"code", 3}, {"message", "execution reverted"}, {"data", ToHex(revert)}}));
  RpcClient rpc = Client(node.url());
  auto gas = rpc.EstimateGas(Address{}, Address{}, 1, {});
  ASSERT_FALSE(gas.ok());
  EXPECT_EQ(gas.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(gas.status().message(),
            "eth_estimateGas: 3 execution reverted: WrongPayment(expected 2 ETH, sent 1 ETH)");
}

TEST(RpcClient, MalformedResultNamesTheField) {
  json block = BlockJson(5);
  block["hash"] = "0x1234";
  {
    FakeNode node(Result(block));
    auto b = Client(node.url()).BlockByNumber(5);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(b.status().message().find("eth_getBlockByNumber: result.hash"), std::string::npos)
        << b.status().message();
  }
  block = BlockJson(5);
  block.erase("parentHash");
  {
    FakeNode node(Result(block));
    auto b = Client(node.url()).BlockByNumber(5);
    ASSERT_FALSE(b.ok());
    EXPECT_NE(b.status().message().find("result.parentHash: missing"), std::string::npos)
        << b.status().message();
  }
  {
    FakeNode node(Result("0x01"));  // a leading zero is not a QUANTITY
    auto n = Client(node.url()).BlockNumber();
    ASSERT_FALSE(n.ok());
    EXPECT_NE(n.status().message().find("eth_blockNumber: result"), std::string::npos);
  }
  {
    FakeNode node(Result("0x10000000000000000"));  // 2^64
    auto n = Client(node.url()).ChainId();
    ASSERT_FALSE(n.ok());
    EXPECT_NE(n.status().message().find("beyond 64 bits"), std::string::npos);
  }
  json receipt{{"transactionHash", kHash}, {"blockNumber", "0x1"}, {"blockHash", kHash},
               {"status", "0x2"},          {"gasUsed", "0x5208"},  {"logs", json::array()}};
  {
    FakeNode node(Result(receipt));
    auto r = Client(node.url()).TransactionReceipt(Must(ParseHash32(kHash, "h")));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("result.status"), std::string::npos);
  }
}

TEST(RpcClient, RefusesAnswersToAnotherRequest) {
  {
    FakeNode node([](const json& req, const std::string&) {
      return Answer{
          200, json{{"jsonrpc", "2.0"}, {"id", req.at("id").get<uint64_t>() + 1}, {"result", "0x1"}}
                   .dump()};
    });
    auto id = Client(node.url()).ChainId();
    ASSERT_FALSE(id.ok());
    EXPECT_NE(id.status().message().find("id: expected"), std::string::npos);
  }
  {
    FakeNode node(Result(BlockJson(6)));
    auto b = Client(node.url()).BlockByNumber(5);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), StatusCode::kDataLoss);
  }
  {
    FakeNode node(Result(kHash));  // not keccak256 of what was sent
    auto h = Client(node.url()).SendRawTransaction(crypto::Bytes{0x02, 0x01});
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.status().code(), StatusCode::kDataLoss);
  }
}

TEST(RpcClient, ChecksLogsAgainstTheFilter) {
  const Address contract = Must(ParseAddress(kContract, "contract"));
  const auto fails = [&](json log, uint64_t from, uint64_t to, std::string_view needle) {
    FakeNode node(Result(json::array({std::move(log)})));
    auto logs = Client(node.url()).GetLogs(contract, {RentedTopic()}, from, to);
    ASSERT_FALSE(logs.ok()) << needle;
    EXPECT_EQ(logs.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(logs.status().message().find(needle), std::string::npos) << logs.status().message();
  };
  json other = LogJson();
  other["address"] = "0x0000000000000000000000000000000000000001";
  fails(other, 1, 9, "not of " + std::string(kContract));
  fails(LogJson(), 6, 9, "outside [6, 9]");
  json topic = LogJson();
  topic["topics"][0] = kHash;
  fails(topic, 1, 9, "topic0");
  json removed = LogJson();
  removed["removed"] = true;
  fails(removed, 1, 9, "removed");
}

TEST(RpcClient, HttpErrorIsUnavailable) {
  FakeNode node([](const json&, const std::string&) { return Answer{503, "overloaded"}; });
  auto id = Client(node.url()).ChainId();
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(id.status().message().find("HTTP 503"), std::string::npos) << id.status().message();
}

TEST(RpcClient, GarbageAndDeepNestingAreRefused) {
  {
    FakeNode node([](const json&, const std::string&) { return Answer{200, "<html>"}; });
    auto id = Client(node.url()).ChainId();
    ASSERT_FALSE(id.ok());
    EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(id.status().message().find("not JSON"), std::string::npos);
  }
  {
    FakeNode node([](const json&, const std::string&) {
      return Answer{200, std::string(100'000, '[') + std::string(100'000, ']')};
    });
    auto id = Client(node.url()).ChainId();
    ASSERT_FALSE(id.ok());
    EXPECT_NE(id.status().message().find("nests deeper"), std::string::npos);
  }
}

TEST(RpcClient, UrlPathIsTheTargetAndNeverShown) {
  FakeNode node(Error({{"code", -32601}, {"message", "no such method"}}));
  RpcClient rpc = Client(node.url() + "/v3/SECRETKEY");
  EXPECT_EQ(rpc.url_for_messages(), node.url() + "/...");
  auto id = rpc.ChainId();
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(node.last_target(), "/v3/SECRETKEY");
  EXPECT_EQ(id.status().message().find("SECRETKEY"), std::string::npos);
  // Down: the transport error does not show it either.
  int port = 0;
  {
    FakeNode closed(Result(nullptr));
    port = std::stoi(closed.url().substr(17));
  }
  auto down =
      Client("http://user:pw@127.0.0.1:" + std::to_string(port) + "/v3/SECRETKEY").ChainId();
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().message().find("SECRETKEY"), std::string::npos)
      << down.status().message();
  EXPECT_EQ(down.status().message().find("pw"), std::string::npos) << down.status().message();
}

TEST(RpcClient, RefusesUrlsThatAreNotHttp) {
  EXPECT_FALSE(
      RpcClient::Create({.url = "ws://127.0.0.1:8545", .ca_file = "", .timeout = {}}).ok());
  EXPECT_FALSE(RpcClient::Create({.url = "127.0.0.1:8545", .ca_file = "", .timeout = {}}).ok());
}

}  // namespace
}  // namespace cce::eth
