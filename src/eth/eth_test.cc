// Known-answer tests for src/eth/eth.h: Keccak-256, EIP-55, hex, quantities,
// decimals and ether formatting.
#include "eth/eth.h"

#include <gtest/gtest.h>

#include <string>

namespace cce::eth {
namespace {

TEST(Keccak256, KnownVectors) {
  EXPECT_EQ(Keccak256(std::string_view("")).Hex(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  EXPECT_EQ(Keccak256(std::string_view("abc")).Hex(),
            "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
  // Not FIPS SHA3-256 (whose "" digest is a7ffc6f8...).
  EXPECT_NE(Keccak256(std::string_view("")).Hex().substr(0, 10), "0xa7ffc6f8");
}

// The examples of EIP-55 itself.
TEST(Address, Eip55Examples) {
  for (const char* s :
       {"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        "0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26"}) {
    auto a = ParseAddress(s, "addr");
    ASSERT_TRUE(a.ok()) << s << ": " << a.status().ToString();
    std::string lower = s;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(a->Hex(), lower);
    // Checksummed() reproduces the mixed-case examples; all-caps/all-lower
    // examples are ones whose checksum happens to be that (EIP-55 lists them).
    EXPECT_EQ(a->Checksummed(), s);
  }
}

TEST(Address, RefusesEip55Mismatch) {
  // One letter's case flipped in a checksummed address.
  auto a = ParseAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "payout");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("payout: EIP-55 checksum mismatch"), std::string::npos)
      << a.status().message();
  // The same address all lowercase or all uppercase carries no checksum.
  EXPECT_TRUE(ParseAddress("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "a").ok());
  EXPECT_TRUE(ParseAddress("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", "a").ok());
}

TEST(Address, RefusesMalformed) {
  for (const char* s :
       {"", "0x", "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00",
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg"}) {
    EXPECT_FALSE(ParseAddress(s, "a").ok()) << s;
  }
  auto bad = ParseAddress("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", "to");
  EXPECT_EQ(bad.status().message(), "to: non-hex character at offset 41");
}

TEST(Hex, RoundTripAndErrors) {
  EXPECT_EQ(ToHex(crypto::Bytes{}), "0x");
  EXPECT_EQ(ToHex(crypto::Bytes{0x00, 0xab, 0xff}), "0x00abff");
  auto b = ParseHex("0x00ABff", "data");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (crypto::Bytes{0x00, 0xab, 0xff}));
  EXPECT_TRUE(ParseHex("0x", "data")->empty());
  EXPECT_EQ(ParseHex("00ab", "data").status().message(), "data: expected a 0x-prefixed hex string");
  EXPECT_EQ(ParseHex("0xabc", "data").status().message(), "data: odd number of hex digits (3)");
  EXPECT_FALSE(ParseHex("0xzz", "data").ok());
}

TEST(Hash32, Parse) {
  auto h = ParseHash32("0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", "h");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, Keccak256(std::string_view("")));
  EXPECT_FALSE(ParseHash32("0xc5d2", "h").ok());
}

TEST(Quantity, ParseAndFormat) {
  EXPECT_EQ(*ParseQuantity("0x0", "q"), 0);
  EXPECT_EQ(*ParseQuantity("0x1a", "q"), 26);
  EXPECT_EQ(*ParseQuantity("0x1A", "q"), 26);
  EXPECT_EQ(ToQuantity(0), "0x0");
  EXPECT_EQ(ToQuantity(26), "0x1a");
  const U256 max = ~U256(0);
  EXPECT_EQ(ToQuantity(max), "0x" + std::string(64, 'f'));
  EXPECT_EQ(*ParseQuantity(ToQuantity(max), "q"), max);
  for (const char* s : {"0x", "0x01", "0x00", "1a", "", "0xg", "-0x1"}) {
    EXPECT_FALSE(ParseQuantity(s, "q").ok()) << s;
  }
  EXPECT_FALSE(ParseQuantity("0x1" + std::string(64, '0'), "q").ok());  // 2^256
  EXPECT_EQ(ParseQuantity("0x01", "result").status().message(),
            "result: quantity has a leading zero");
}

TEST(Decimal, ParseAndFormat) {
  EXPECT_EQ(*ParseDecimal("0", "d"), 0);
  EXPECT_EQ(*ParseDecimal("1000000000000000000", "d"), U256("1000000000000000000"));
  const std::string max =
      "115792089237316195423570985008687907853269984665640564039457584007913129639935";
  EXPECT_EQ(ToDecimal(*ParseDecimal(max, "d")), max);
  EXPECT_FALSE(
      ParseDecimal("115792089237316195423570985008687907853269984665640564039457584007913129639936",
                   "d")
          .ok());
  EXPECT_FALSE(ParseDecimal(max + "0", "d").ok());
  for (const char* s : {"", "01", "-1", "+1", "1.5", "1e3", " 1", "0x10"}) {
    EXPECT_FALSE(ParseDecimal(s, "d").ok()) << s;
  }
  EXPECT_EQ(ParseDecimal("12a", "price_wei").status().message(),
            "price_wei: non-digit at offset 2");
}

TEST(FormatEther, Exact) {
  EXPECT_EQ(FormatEther(0), "0 ETH");
  EXPECT_EQ(FormatEther(U256("1000000000000000000")), "1 ETH");
  EXPECT_EQ(FormatEther(U256("10500000000000000")), "0.0105 ETH");
  EXPECT_EQ(FormatEther(1), "0.000000000000000001 ETH");
  EXPECT_EQ(FormatEther(U256("2500000000000000000000")), "2500 ETH");
  EXPECT_EQ(FormatEther(U256("1234567890123456789")), "1.234567890123456789 ETH");
}

TEST(U256Bytes, RoundTrip) {
  const U256 v("0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
  const auto b = U256ToBytes(v);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[31], 0x20);
  EXPECT_EQ(U256FromBytes(b), v);
  EXPECT_EQ(U256FromBytes(crypto::Bytes{0x01, 0x00}), 256);
}

}  // namespace
}  // namespace cce::eth
