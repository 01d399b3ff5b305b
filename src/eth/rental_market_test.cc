#include "eth/rental_market.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eth/abi.h"

namespace cce::eth {
namespace {

// Vectors from npm ethers 6.13.5 over contracts/build/RentalMarket.json's ABI
// (an independent implementation): plane key = bytes 0..31, dataset id 7.
constexpr char kPlaneId[] = "0xefce776c088e831a5c07aeab528c0830d4b09ac5a7e786e9aad16f6e74b1ec89";
constexpr char kDataset7[] = "0x299f654838c90a53f5382d5366332d78696692bd68012dcb3fb6ad145eb9df9b";

template <typename T>
T Must(StatusOr<T> v) {
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return std::move(v).value();
}

crypto::Bytes Hex(std::string_view s) {
  return Must(ParseHex(s, "test"));
}

Hash32 H(std::string_view s) {
  return Must(ParseHash32(s, "test"));
}

const U256 kEther = U256(1'000'000'000'000'000'000ULL);

TEST(RentalMarket, PlaneAndDatasetIdsMatchEthers) {
  crypto::Bytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(PlaneId(key).Hex(), kPlaneId);
  EXPECT_EQ(ChainDatasetId(H(kPlaneId), 7).Hex(), kDataset7);
  EXPECT_NE(ChainDatasetId(H(kPlaneId), 8), ChainDatasetId(H(kPlaneId), 7));
}

TEST(RentalMarket, CallDataMatchesEthers) {
  EXPECT_EQ(ToHex(EncodeRent(H(kDataset7), 3)),
            "0x6e7f7a8d299f654838c90a53f5382d5366332d78696692bd68012dcb3fb6ad145eb9df9b"
            "0000000000000000000000000000000000000000000000000000000000000003");
  const Address provider =
      Must(ParseAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "provider"));
  EXPECT_EQ(
      ToHex(EncodeRegisterDataset(H(kDataset7), provider, U256(10'000'000'000'000'000ULL), 30)),
      "0x11b4e2fc299f654838c90a53f5382d5366332d78696692bd68012dcb3fb6ad145eb9df9b"
      "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"
      "000000000000000000000000000000000000000000000000002386f26fc10000"
      "000000000000000000000000000000000000000000000000000000000000001e");
  EXPECT_EQ(ToHex(EncodeSetPaused(true)),
            "0x16c38b3c0000000000000000000000000000000000000000000000000000000000000001");
  EXPECT_EQ(RentedTopic().Hex(),
            "0xe086115d71e15517fdfc6be4695bbd953517b7b68aed64baf61fff8d0a9e0a5a");
}

TEST(RentalMarket, EmbeddedBytecodeIsTheCommittedBuild) {
  std::ifstream in(std::string(CCE_SOURCE_DIR) + "/contracts/build/RentalMarket.json");
  ASSERT_TRUE(in) << "contracts/build/RentalMarket.json";
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str());
  const crypto::Bytes creation = Hex(j.at("bytecode").get<std::string>());
  const crypto::Bytes deploy = DeployData(H(kPlaneId));
  ASSERT_EQ(deploy.size(), creation.size() + 32);
  EXPECT_TRUE(std::equal(creation.begin(), creation.end(), deploy.begin()));
  EXPECT_EQ(ToHex(crypto::ByteSpan(deploy).subspan(creation.size())), kPlaneId);
  EXPECT_EQ(ToHex(DeployedBytecode()), j.at("deployedBytecode").get<std::string>());
  EXPECT_EQ(ContractCompiler(), j.at("compiler").get<std::string>());
}

TEST(RentalMarket, DescribesTheContractsErrors) {
  EXPECT_EQ(DescribeRevert(
                Hex("0x0dd32d1c0000000000000000000000000000000000000000000000001bc16d674ec80000"
                    "0000000000000000000000000000000000000000000000000de0b6b3a7640000")),
            "WrongPayment(expected 2 ETH, sent 1 ETH)");
  EXPECT_EQ(DescribeRevert(
                Hex("0xa5de7228000000000000000000000000000000000000000000000000000000000000001e")),
            "TooManyDays(max 30)");
  const auto sel = [](std::string_view sig) {
    const auto s = Selector(sig);
    return crypto::Bytes(s.begin(), s.end());
  };
  EXPECT_EQ(DescribeRevert(sel("NotOperator()")), "NotOperator()");
  EXPECT_EQ(DescribeRevert(sel("ContractPaused()")), "ContractPaused()");
  EXPECT_EQ(DescribeRevert(sel("ZeroDays()")), "ZeroDays()");
  crypto::Bytes unknown = sel("UnknownDataset(bytes32)");
  const auto id = H(kDataset7);
  unknown.insert(unknown.end(), id.bytes.begin(), id.bytes.end());
  EXPECT_EQ(DescribeRevert(unknown), std::string("UnknownDataset(") + kDataset7 + ")");
  // Error("hi") as solc encodes require(false, "hi").
  EXPECT_EQ(DescribeRevert(Hex("0x08c379a0"
                               "0000000000000000000000000000000000000000000000000000000000000020"
                               "0000000000000000000000000000000000000000000000000000000000000002"
                               "6869000000000000000000000000000000000000000000000000000000000000")),
            "Error(\"hi\")");
  EXPECT_EQ(DescribeRevert(Hex("0x4e487b71"
                               "0000000000000000000000000000000000000000000000000000000000000011")),
            "Panic(0x11)");
  EXPECT_EQ(DescribeRevert({}), "no revert data");
  EXPECT_EQ(DescribeRevert(Hex("0xdeadbeef")), "unknown revert data 0xdeadbeef");
  // Arguments of the wrong size are not decoded as if they were right.
  EXPECT_EQ(DescribeRevert(
                Hex("0x0dd32d1c0000000000000000000000000000000000000000000000001bc16d674ec80000")),
            "unknown revert data "
            "0x0dd32d1c0000000000000000000000000000000000000000000000001bc16d674ec80000");
  // Error(string) whose length runs past the data.
  EXPECT_EQ(DescribeRevert(Hex("0x08c379a0"
                               "0000000000000000000000000000000000000000000000000000000000000020"
                               "00000000000000000000000000000000000000000000000000000000000000ff"))
                .rfind("unknown revert data", 0),
            0u);
}

Log RentedLog(int64_t start, int64_t end, uint32_t days, const U256& amount) {
  Log l;
  l.address = Must(ParseAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3", "contract"));
  Word consumer{};
  consumer[31] = 0x42;
  l.topics = {RentedTopic(), H(kDataset7), WordHash(consumer)};
  l.data = AbiEncoder().Uint(U256(start)).Uint(U256(end)).Uint(days).Uint(amount).Finish();
  l.block_number = 9;
  l.block_hash.bytes[0] = 0xbb;
  l.tx_hash.bytes[0] = 0xcc;
  l.log_index = 2;
  return l;
}

TEST(RentalMarket, DecodesRented) {
  const Log l = RentedLog(1'000'000, 1'000'000 + 3 * 86'400, 3, 3 * kEther);
  const RentedEvent e = Must(DecodeRented(l));
  EXPECT_EQ(e.dataset.Hex(), kDataset7);
  EXPECT_EQ(e.consumer.Hex(), "0x0000000000000000000000000000000000000042");
  EXPECT_EQ(e.start, 1'000'000);
  EXPECT_EQ(e.end, 1'000'000 + 3 * 86'400);
  EXPECT_EQ(e.days, 3u);
  EXPECT_EQ(e.amount, 3 * kEther);
  EXPECT_EQ(e.block_number, 9u);
  EXPECT_EQ(e.block_hash, l.block_hash);
  EXPECT_EQ(e.tx_hash, l.tx_hash);
  EXPECT_EQ(e.log_index, 2u);
}

TEST(RentalMarket, RefusesMalformedRented) {
  const Log good = RentedLog(1'000'000, 1'000'000 + 86'400, 1, kEther);
  const auto fails = [](const Log& l, std::string_view needle) {
    auto e = DecodeRented(l);
    ASSERT_FALSE(e.ok()) << needle;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(e.status().message().find(needle), std::string::npos) << e.status().message();
    EXPECT_NE(e.status().message().find("#2"), std::string::npos) << "names the log";
  };
  Log l = good;
  l.removed = true;
  fails(l, "removed");
  l = good;
  l.topics.pop_back();
  fails(l, "3 topics");
  l = good;
  l.topics[0] = H(kDataset7);
  fails(l, "topic0");
  l = good;
  l.topics[2].bytes[0] = 1;  // an address with high bytes set
  fails(l, "consumer");
  l = good;
  l.data.push_back(0);
  fails(l, "128 bytes");
  fails(RentedLog(1'000'000, 1'000'001, 1, kEther), "is not start");
  fails(RentedLog(1'000'000, 1'000'000, 0, kEther), "days is 0");
  l = good;
  l.data[32] = 0x80;  // end >= 2^63: beyond int64
  fails(l, "end");
}

TEST(RentalMarket, DecodesDatasetGetterStrictly) {
  const Address provider =
      Must(ParseAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "provider"));
  crypto::Bytes ret = AbiEncoder().Addr(provider).Uint(U256(5)).Uint(30).Bool(true).Finish();
  const ChainDataset d = Must(DecodeDataset(ret));
  EXPECT_EQ(d.provider, provider);
  EXPECT_EQ(d.price_per_day, 5);
  EXPECT_EQ(d.max_days, 30u);
  EXPECT_TRUE(d.active);
  ret[3 * 32 + 31] = 2;  // bool 2
  EXPECT_FALSE(DecodeDataset(ret).ok());
  ret = AbiEncoder().Addr(provider).Uint(U256(1) << 128).Uint(30).Bool(true).Finish();
  auto wide = DecodeDataset(ret);
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.status().message().find("pricePerDay"), std::string::npos);
  EXPECT_FALSE(DecodeDataset(crypto::Bytes(96)).ok());
}

}  // namespace
}  // namespace cce::eth
