// ABI selectors, topics, encodings (vectors from npm ethers 6.13.5) and the
// strict word decoders.
#include "eth/abi.h"

#include <gtest/gtest.h>

namespace cce::eth {
namespace {

TEST(Abi, SelectorAndTopic) {
  EXPECT_EQ(ToHex(Selector("rent(bytes32,uint32)")), "0x6e7f7a8d");
  EXPECT_EQ(ToHex(Selector("transfer(address,uint256)")), "0xa9059cbb");
  EXPECT_EQ(EventTopic("Rented(bytes32,address,uint64,uint64,uint32,uint256)").Hex(),
            "0xe086115d71e15517fdfc6be4695bbd953517b7b68aed64baf61fff8d0a9e0a5a");
  EXPECT_EQ(EventTopic("Transfer(address,address,uint256)").Hex(),
            "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
}

TEST(Abi, EncodeMatchesEthers) {
  Hash32 h;
  h.bytes.fill(0x11);
  const crypto::Bytes out =
      AbiEncoder()
          .Bytes32(h)
          .Uint(7)
          .Addr(*ParseAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "a"))
          .Bool(true)
          .Uint(~U256(0))
          .Finish();
  EXPECT_EQ(ToHex(out),
            "0x1111111111111111111111111111111111111111111111111111111111111111"
            "0000000000000000000000000000000000000000000000000000000000000007"
            "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"
            "0000000000000000000000000000000000000000000000000000000000000001"
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
  const crypto::Bytes call = AbiEncoder("rent(bytes32,uint32)").Bytes32(h).Uint(3).Finish();
  ASSERT_EQ(call.size(), 4u + 64u);
  EXPECT_EQ(ToHex(crypto::ByteSpan(call).first(4)), "0x6e7f7a8d");
}

TEST(Abi, WordsAndDecoders) {
  const Address a = *ParseAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "a");
  const crypto::Bytes data = AbiEncoder().Addr(a).Uint(300).Bool(false).Finish();
  auto words = AbiWords(data, 3, "ret");
  ASSERT_TRUE(words.ok());
  ASSERT_EQ(words->size(), 3u);
  EXPECT_EQ(*WordAddress((*words)[0], "provider"), a);
  EXPECT_EQ(*WordUint((*words)[1], 16, "n"), 300);
  EXPECT_FALSE(*WordBool((*words)[2], "active"));
  EXPECT_EQ(WordHash((*words)[1]).bytes, (*words)[1]);

  EXPECT_EQ(AbiWords(data, 4, "ret").status().message(), "ret: expected at least 4 words, got 3");
  EXPECT_FALSE(AbiWords(crypto::ByteSpan(data).first(95), 0, "ret").ok());
  // 300 does not fit in uint8; an address with high bytes set; bool 2.
  EXPECT_EQ(WordUint((*words)[1], 8, "maxDays").status().message(),
            "maxDays: value does not fit in uint8");
  EXPECT_FALSE(WordAddress((*words)[1], "a").ok() && (*words)[1][11] != 0);
  Word dirty = (*words)[0];
  dirty[0] = 1;
  EXPECT_FALSE(WordAddress(dirty, "provider").ok());
  Word two{};
  two[31] = 2;
  EXPECT_FALSE(WordBool(two, "active").ok());
  EXPECT_FALSE(WordUint(two, 7, "x").ok());
  EXPECT_EQ(*WordUint(dirty, 256, "x"), U256FromBytes(dirty));
}

}  // namespace
}  // namespace cce::eth
