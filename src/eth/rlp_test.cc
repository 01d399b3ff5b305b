// RLP against the examples of the Ethereum wiki / yellow paper appendix B, and
// the canonical-only decoder's refusals.
#include "eth/rlp.h"

#include <gtest/gtest.h>

#include <string>

namespace cce::eth {
namespace {

crypto::Bytes B(std::string_view s) {
  return crypto::Bytes(s.begin(), s.end());
}

std::string Enc(const crypto::Bytes& b) {
  return ToHex(b);
}

crypto::Bytes H(std::string_view hex) {
  auto b = ParseHex(hex, "hex");
  EXPECT_TRUE(b.ok());
  return b.ok() ? *b : crypto::Bytes{};
}

TEST(Rlp, WikiExamples) {
  EXPECT_EQ(Enc(RlpBytes(B("dog"))), "0x83646f67");
  EXPECT_EQ(Enc(RlpList({RlpBytes(B("cat")), RlpBytes(B("dog"))})), "0xc88363617483646f67");
  EXPECT_EQ(Enc(RlpBytes(B(""))), "0x80");
  EXPECT_EQ(Enc(RlpList({})), "0xc0");
  EXPECT_EQ(Enc(RlpUint(0)), "0x80");
  EXPECT_EQ(Enc(RlpBytes(crypto::Bytes{0x00})), "0x00");
  EXPECT_EQ(Enc(RlpUint(15)), "0x0f");
  EXPECT_EQ(Enc(RlpUint(1024)), "0x820400");
  // The set-theoretical representation of three: [ [], [[]], [ [], [[]] ] ].
  const crypto::Bytes e = RlpList({});
  const crypto::Bytes ee = RlpList({e});
  EXPECT_EQ(Enc(RlpList({e, ee, RlpList({e, ee})})), "0xc7c0c1c0c3c0c1c0");
  const std::string lorem = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";
  const crypto::Bytes enc = RlpBytes(B(lorem));
  ASSERT_EQ(enc.size(), 58u);
  EXPECT_EQ(enc[0], 0xb8);
  EXPECT_EQ(enc[1], 0x38);
  EXPECT_EQ(crypto::Bytes(enc.begin() + 2, enc.end()), B(lorem));
}

TEST(Rlp, LongListAndLongString) {
  std::vector<crypto::Bytes> items(20, RlpBytes(B("abc")));  // 80 bytes of payload
  const crypto::Bytes list = RlpList(items);
  EXPECT_EQ(list[0], 0xf8);
  EXPECT_EQ(list[1], 80);
  auto d = RlpDecode(list);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->is_list);
  EXPECT_EQ(d->items.size(), 20u);
  const crypto::Bytes big(1024, 0xaa);
  const crypto::Bytes enc = RlpBytes(big);
  EXPECT_EQ(Enc(crypto::Bytes(enc.begin(), enc.begin() + 3)), "0xb90400");
  auto db = RlpDecode(enc);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db->bytes, big);
}

TEST(Rlp, DecodeRoundTrip) {
  auto d = RlpDecode(H("0xc7c0c1c0c3c0c1c0"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_TRUE(d->is_list);
  ASSERT_EQ(d->items.size(), 3u);
  EXPECT_TRUE(d->items[1].items[0].is_list);
  auto dog = RlpDecode(H("0x83646f67"));
  ASSERT_TRUE(dog.ok());
  EXPECT_EQ(dog->bytes, B("dog"));
  auto single = RlpDecode(H("0x7f"));
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->bytes, crypto::Bytes{0x7f});
  EXPECT_EQ(*RlpItemUint(*RlpDecode(H("0x820400")), 8, "n"), 1024);
}

// Each of these is a second encoding of a value that has a canonical one; a
// decoder that accepted them would give one transaction several hashes.
TEST(Rlp, RefusesNonCanonical) {
  struct Case {
    const char* hex;
    const char* error;
  };
  for (const Case& c : {
           Case{"0x8100", "rlp: byte 0: single byte below 0x80 encoded as a string"},
           Case{"0x817f", "rlp: byte 0: single byte below 0x80 encoded as a string"},
           Case{"0xb803646f67", "rlp: byte 0: long form used for a length <= 55"},
           Case{"0xf803c0c0c0", "rlp: byte 0: long form used for a length <= 55"},
           Case{"0xb9003800", "rlp: byte 0: length has a leading zero byte"},
           Case{"0xc3c28100", "rlp: byte 2: single byte below 0x80 encoded as a string"},
       }) {
    auto d = RlpDecode(H(c.hex));
    ASSERT_FALSE(d.ok()) << c.hex << " accepted";
    EXPECT_EQ(d.status().message().rfind(c.error, 0), 0u) << c.hex << ": " << d.status().message();
  }
  // Integers: leading zero bytes are non-canonical too.
  auto padded = RlpDecode(H("0x820004"));
  ASSERT_TRUE(padded.ok());
  EXPECT_FALSE(RlpItemUint(*padded, 8, "n").ok());
  EXPECT_FALSE(RlpItemUint(*RlpDecode(H("0x00")), 8, "n").ok());
}

TEST(Rlp, RefusesTruncatedTrailingAndDeep) {
  EXPECT_EQ(RlpDecode(H("0x83646f")).status().message(),
            "rlp: byte 0: truncated: item of 3 bytes, 2 left");
  EXPECT_EQ(RlpDecode(H("0x83646f6700")).status().message(),
            "rlp: byte 4: 1 trailing bytes after the item");
  EXPECT_FALSE(RlpDecode(H("0x")).ok());
  EXPECT_FALSE(RlpDecode(H("0xc3646f")).ok());              // list payload truncated
  EXPECT_FALSE(RlpDecode(H("0xc283646f67")).ok());          // child overruns its list
  EXPECT_FALSE(RlpDecode(H("0xbf")).ok());                  // length of length truncated
  EXPECT_FALSE(RlpDecode(H("0xbfffffffffffffffff")).ok());  // absurd length
  crypto::Bytes deep = RlpList({});
  for (int i = 0; i < 15; ++i) deep = RlpList({deep});  // 16 nested lists
  EXPECT_TRUE(RlpDecode(deep).ok());
  deep = RlpList({deep});  // 17
  auto too_deep = RlpDecode(deep);
  ASSERT_FALSE(too_deep.ok());
  EXPECT_NE(too_deep.status().message().find("nested deeper than 16"), std::string::npos);
}

}  // namespace
}  // namespace cce::eth
