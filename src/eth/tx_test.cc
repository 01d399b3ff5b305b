// EIP-1559 signing against transactions signed by npm ethers 6.13.5 with
// anvil's dev account 0 (RFC 6979 makes the bytes equal), and the decoder.
#include "eth/tx.h"

#include <gtest/gtest.h>

#include "eth/rlp.h"

namespace cce::eth {
namespace {

constexpr char kAnvilKey0[] = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

PrivateKey AnvilKey() {
  return std::move(PrivateKey::FromBytes(*ParseHex(kAnvilKey0, "k"))).value();
}

Eip1559Tx TransferTx() {
  Eip1559Tx tx;
  tx.chain_id = 31337;
  tx.nonce = 7;
  tx.max_priority_fee_per_gas = 1'000'000'000;
  tx.max_fee_per_gas = U256("30000000000");
  tx.gas_limit = 100'000;
  tx.to = *ParseAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "to");
  tx.value = U256("1234567890123456789");
  tx.data = {0xde, 0xad, 0xbe, 0xef};
  return tx;
}

TEST(SignTx, MatchesEthers) {
  auto signed_tx = SignTx(TransferTx(), AnvilKey());
  ASSERT_TRUE(signed_tx.ok());
  EXPECT_EQ(ToHex(signed_tx->raw),
            "0x02f87a827a6907843b9aca008506fc23ac00830186a09470997970c51812dc3a010c7d01b50e0d17dc"
            "79c888112210f47de9811584deadbeefc001a065bec8626e6916d263f44b21981b8f93e1b57bda5c54d8"
            "c2448ff100a1dcf3fca0190d014b9d228ad115658c7ab5e145919a4e31b74a44263c9c6107a0a9a5b05c");
  EXPECT_EQ(signed_tx->hash.Hex(),
            "0xbff3c3c565e8888c32d2ee604d45f53420bdd013345340f450cd9a794fb5a48d");
}

TEST(SignTx, ContractCreationMatchesEthers) {
  Eip1559Tx tx;
  tx.chain_id = 1;
  tx.data = {0x60, 0x80};
  auto signed_tx = SignTx(tx, AnvilKey());
  ASSERT_TRUE(signed_tx.ok());
  EXPECT_EQ(ToHex(signed_tx->raw),
            "0x02f84e01808080808080826080c080a0b7662fd072f3429227ed01d318612865f7ec6532c6b03b8a9f"
            "c7a823824dbab2a058dc6c4dd99179c4b610801493363f016d6c469324589df4342266bb51d5be85");
  EXPECT_EQ(signed_tx->hash.Hex(),
            "0xbaeabdfa7ec085decbd7f37ee17ff7137aefdf17864077f5cff1aebe419652ee");
}

TEST(DecodeSignedTx, RoundTrip) {
  const PrivateKey key = AnvilKey();
  const Eip1559Tx tx = TransferTx();
  auto signed_tx = SignTx(tx, key);
  ASSERT_TRUE(signed_tx.ok());
  auto d = DecodeSignedTx(signed_tx->raw);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->sender, key.address());
  EXPECT_EQ(d->hash, signed_tx->hash);
  EXPECT_EQ(d->tx.chain_id, tx.chain_id);
  EXPECT_EQ(d->tx.nonce, tx.nonce);
  EXPECT_EQ(d->tx.max_priority_fee_per_gas, tx.max_priority_fee_per_gas);
  EXPECT_EQ(d->tx.max_fee_per_gas, tx.max_fee_per_gas);
  EXPECT_EQ(d->tx.gas_limit, tx.gas_limit);
  EXPECT_EQ(d->tx.to, tx.to);
  EXPECT_EQ(d->tx.value, tx.value);
  EXPECT_EQ(d->tx.data, tx.data);
}

TEST(DecodeSignedTx, TamperingChangesTheSender) {
  const PrivateKey key = AnvilKey();
  auto signed_tx = SignTx(TransferTx(), key);
  ASSERT_TRUE(signed_tx.ok());
  crypto::Bytes raw = signed_tx->raw;
  raw[40] ^= 0x01;  // inside the `to` address
  auto d = DecodeSignedTx(raw);
  if (d.ok()) {
    EXPECT_NE(d->sender, key.address());
  }
}

TEST(DecodeSignedTx, RefusesMalformed) {
  auto signed_tx = SignTx(TransferTx(), AnvilKey());
  ASSERT_TRUE(signed_tx.ok());
  crypto::Bytes legacy = signed_tx->raw;
  legacy[0] = 0x01;
  EXPECT_EQ(DecodeSignedTx(legacy).status().message(),
            "tx: type byte is 1, only EIP-1559 (2) is supported");
  crypto::Bytes trailing = signed_tx->raw;
  trailing.push_back(0);
  EXPECT_FALSE(DecodeSignedTx(trailing).ok());
  EXPECT_FALSE(DecodeSignedTx(crypto::Bytes{0x02}).ok());
  EXPECT_FALSE(DecodeSignedTx(crypto::Bytes{}).ok());
  // A y parity of 2.
  auto item = RlpDecode(crypto::ByteSpan(signed_tx->raw).subspan(1));
  ASSERT_TRUE(item.ok());
  std::vector<crypto::Bytes> fields;
  for (size_t i = 0; i < item->items.size(); ++i) {
    const RlpItem& f = item->items[i];
    fields.push_back(f.is_list ? RlpList({}) : RlpBytes(f.bytes));
  }
  fields[9] = RlpUint(2);
  crypto::Bytes bad = RlpList(fields);
  bad.insert(bad.begin(), 0x02);
  EXPECT_EQ(DecodeSignedTx(bad).status().message(), "tx: yParity must be 0 or 1");
}

}  // namespace
}  // namespace cce::eth
