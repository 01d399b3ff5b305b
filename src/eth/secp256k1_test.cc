// secp256k1 keys, signatures, recovery, key files and EIP-191, against known
// vectors (anvil's dev account 0; the widely used k=1 RFC 6979 vector;
// personal_sign and public keys computed by npm ethers 6.13.5).
#include "eth/secp256k1.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "eth/eip191.h"

namespace cce::eth {
namespace {

constexpr char kAnvilKey0[] = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
constexpr char kAnvilAddress0[] = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
constexpr char kOrderHex[] = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

PrivateKey KeyFromHex(std::string_view hex) {
  auto bytes = ParseHex(hex, "key");
  EXPECT_TRUE(bytes.ok());
  auto key = PrivateKey::FromBytes(*bytes);
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::move(key).value();
}

TEST(PrivateKey, AnvilAccount0) {
  const PrivateKey key = KeyFromHex(kAnvilKey0);
  EXPECT_EQ(key.address().Checksummed(), kAnvilAddress0);
  EXPECT_EQ(key.address().Hex(), "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
  EXPECT_EQ(ToHex(key.PublicKey()),
            "0x8318535b54105d4a7aae60c08fc45f9687181b4fdfc625bd1a753fa7397fed75"
            "3547f11ca8696646f2f3acb08e31016afac23e630c5d11f59f61fef57b0d2aa5");
  EXPECT_EQ(AddressOfPublicKey(key.PublicKey()), key.address());
}

TEST(PrivateKey, RefusesZeroAndOrderAndAbove) {
  const std::array<uint8_t, 32> zero{};
  auto z = PrivateKey::FromBytes(zero);
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(z.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(z.status().message(), "private key: zero is not a valid secp256k1 key");
  auto n = ParseHex(kOrderHex, "n");
  auto at_n = PrivateKey::FromBytes(*n);
  ASSERT_FALSE(at_n.ok());
  EXPECT_EQ(at_n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(at_n.status().message(), "private key: not below the secp256k1 group order n");
  std::array<uint8_t, 32> ff{};
  ff.fill(0xff);
  EXPECT_FALSE(PrivateKey::FromBytes(ff).ok());
  // n - 1 is the largest valid key.
  (*n)[31] = 0x40;
  EXPECT_TRUE(PrivateKey::FromBytes(*n).ok());
  EXPECT_FALSE(PrivateKey::FromBytes(crypto::Bytes(31, 1)).ok());
}

TEST(PrivateKey, GenerateGivesDistinctWorkingKeys) {
  auto a = PrivateKey::Generate();
  auto b = PrivateKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->address(), b->address());
  const Hash32 d = Keccak256(std::string_view("x"));
  auto sig = a->Sign(d);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(*RecoverAddress(d, sig->Rsv(27)), a->address());
}

// k = 1, digest = SHA-256("Satoshi Nakamoto"): the RFC 6979 secp256k1 vector
// several wallets test against.
TEST(Sign, Rfc6979Vector) {
  std::array<uint8_t, 32> one{};
  one[31] = 1;
  auto key = PrivateKey::FromBytes(one);
  ASSERT_TRUE(key.ok());
  Hash32 digest;
  digest.bytes = crypto::Sha256(crypto::AsBytes("Satoshi Nakamoto"));
  auto sig = key->Sign(digest);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(ToHex(sig->r), "0x934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8");
  EXPECT_EQ(ToHex(sig->s), "0x2442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5");
  EXPECT_EQ(sig->recovery_id, 1);
  EXPECT_EQ(*RecoverAddress(digest, sig->Rsv(0)), key->address());
}

TEST(Recover, AcceptsAllFourVForms) {
  const PrivateKey key = KeyFromHex(kAnvilKey0);
  const Hash32 d = Keccak256(std::string_view("message"));
  auto sig = key.Sign(d);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(*RecoverAddress(d, sig->Rsv(0)), key.address());
  EXPECT_EQ(*RecoverAddress(d, sig->Rsv(27)), key.address());
  auto rsv = sig->Rsv(27);
  rsv[64] = 29;
  EXPECT_FALSE(RecoverAddress(d, rsv).ok());
  rsv[64] = 2;
  EXPECT_FALSE(RecoverAddress(d, rsv).ok());
  // The other parity recovers some other key, never this one.
  rsv[64] = static_cast<uint8_t>(27 + (1 - sig->recovery_id));
  auto other = RecoverAddress(d, rsv);
  if (other.ok()) {
    EXPECT_NE(*other, key.address());
  }
  EXPECT_FALSE(RecoverAddress(d, crypto::Bytes(64, 1)).ok());
}

// EIP-2: (r, n - s, 1 - v) is also a valid ECDSA signature of the same key;
// accepting it would let anyone malleate a signature. It must be refused.
TEST(Recover, RefusesHighS) {
  const PrivateKey key = KeyFromHex(kAnvilKey0);
  const Hash32 d = Keccak256(std::string_view("pay 1 ETH"));
  auto sig = key.Sign(d);
  ASSERT_TRUE(sig.ok());
  const U256 n = *ParseQuantity(kOrderHex, "n");
  const auto high_s = U256ToBytes(n - U256FromBytes(sig->s));
  auto rsv = sig->Rsv(27);
  std::copy(high_s.begin(), high_s.end(), rsv.begin() + 32);
  rsv[64] = static_cast<uint8_t>(27 + (1 - sig->recovery_id));
  auto r = RecoverAddress(d, rsv);
  ASSERT_FALSE(r.ok()) << "high-s signature accepted, recovered " << r->Hex();
  EXPECT_EQ(r.status().message(),
            "signature: s is in the upper half of the group order (malleable)");
}

TEST(Recover, RefusesRAndSOutOfRange) {
  const Hash32 d = Keccak256(std::string_view("m"));
  std::array<uint8_t, 65> rsv{};
  rsv[31] = 1;
  rsv[63] = 1;
  rsv[64] = 27;
  std::array<uint8_t, 65> zero_r = rsv;
  zero_r[31] = 0;
  EXPECT_EQ(RecoverAddress(d, zero_r).status().message(), "signature: r out of range");
  std::array<uint8_t, 65> zero_s = rsv;
  zero_s[63] = 0;
  EXPECT_EQ(RecoverAddress(d, zero_s).status().message(), "signature: s out of range");
  auto n = ParseHex(kOrderHex, "n");
  std::array<uint8_t, 65> r_n = rsv;
  std::copy(n->begin(), n->end(), r_n.begin());
  EXPECT_EQ(RecoverAddress(d, r_n).status().message(), "signature: r out of range");
}

TEST(Eip191, PersonalSignMatchesEthers) {
  EXPECT_EQ(PersonalMessageHash("hello").Hex(),
            "0x50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750");
  const PrivateKey key = KeyFromHex(kAnvilKey0);
  auto sig = SignPersonal("hello", key);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(*sig,
            "0xf16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc"
            "573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f94504311c");
  auto signer = RecoverPersonalSigner("hello", *sig);
  ASSERT_TRUE(signer.ok());
  EXPECT_EQ(signer->Checksummed(), kAnvilAddress0);
  // Another message recovers another address.
  auto other = RecoverPersonalSigner("hello!", *sig);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, key.address());
  EXPECT_FALSE(RecoverPersonalSigner("hello", sig->substr(0, 130)).ok());
  EXPECT_FALSE(RecoverPersonalSigner("hello", sig->substr(2)).ok());
}

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eth_keyfile_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
    close(fd);
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
};

TEST_F(KeyFileTest, ReadsOneLineWithOrWithoutPrefix) {
  for (const std::string& text :
       {std::string(kAnvilKey0) + "\n", std::string(kAnvilKey0),
        std::string(kAnvilKey0).substr(2) + "\n", std::string(kAnvilKey0) + "\r\n"}) {
    const std::string path = Write("k" + std::to_string(text.size()), text, 0600);
    auto key = PrivateKey::ReadFile(path);
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(key->address().Checksummed(), kAnvilAddress0);
  }
  EXPECT_TRUE(PrivateKey::ReadFile(Write("ro", kAnvilKey0, 0400)).ok());
}

TEST_F(KeyFileTest, RefusesGroupOrOtherAccess) {
  for (mode_t mode : {0640, 0604, 0660, 0644, 0610}) {
    const std::string path = Write("m" + std::to_string(mode), kAnvilKey0, mode);
    auto key = PrivateKey::ReadFile(path);
    ASSERT_FALSE(key.ok()) << "mode " << mode << " accepted";
    EXPECT_EQ(key.status().code(), StatusCode::kPermissionDenied);
    char expect[8];
    std::snprintf(expect, sizeof expect, "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(key.status().message().find(std::string("mode ") + expect), std::string::npos)
        << key.status().message();
  }
}

TEST_F(KeyFileTest, RefusesBadContentsWithoutEchoingThem) {
  const std::string secret_ish =
      "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff8g";
  auto bad_hex = PrivateKey::ReadFile(Write("hex", secret_ish, 0600));
  ASSERT_FALSE(bad_hex.ok());
  EXPECT_EQ(bad_hex.status().message().find("ac0974"), std::string::npos);
  EXPECT_FALSE(PrivateKey::ReadFile(Write("short", "0x1234", 0600)).ok());
  EXPECT_FALSE(
      PrivateKey::ReadFile(Write("two", std::string(kAnvilKey0) + "\n" + kAnvilKey0, 0600)).ok());
  auto zero = PrivateKey::ReadFile(Write("zero", "0x" + std::string(64, '0'), 0600));
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PrivateKey::ReadFile(dir_ + "/missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(PrivateKey::ReadFile(dir_).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cce::eth
