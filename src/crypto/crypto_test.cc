// Known-answer and negative tests for the crypto component. Vectors are the
// published ones, cited per test: McGrew/Viega GCM spec (NIST) test cases
// 13-16, RFC 5869 A.1-A.3, FIPS 180-2 "abc", RFC 8032 7.1 TEST 1-3, RFC 7748
// 6.1, RFC 5903 8.1, RFC 4231 4.2-4.8.
#include "crypto/crypto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace cce::crypto {
namespace {

// Hex with optional spaces (RFC 5903 prints words separated by spaces).
Bytes H(std::string_view hex) {
  std::string compact;
  for (char c : hex) {
    if (c != ' ') compact += c;
  }
  auto r = FromHex(compact);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : Bytes{};
}

template <typename T>
std::string Hex(const T& bytes) {
  return ToHex(ByteSpan(bytes.data(), bytes.size()));
}

// Lower-case hex without spaces, to compare with ToHex output.
std::string Lower(std::string_view s) {
  return ToHex(H(s));
}

bool AllZero(std::span<const uint8_t> s) {
  for (uint8_t b : s) {
    if (b != 0) return false;
  }
  return true;
}

// ---- SecretBytes ----------------------------------------------------------

TEST(SecretBytes, DefaultAndZeroSizeAreEmpty) {
  SecretBytes a;
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.size(), 0u);
  SecretBytes b(0);
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(b.span().empty());
  SecretBytes c = SecretBytes::CopyOf({});
  EXPECT_TRUE(c.empty());
}

TEST(SecretBytes, NewBufferIsZeroFilledAndWritable) {
  for (size_t size : {size_t{1}, size_t{32}, size_t{4096}, size_t{10000}}) {
    SecretBytes s(size);
    ASSERT_EQ(s.size(), size);
    EXPECT_TRUE(AllZero(s.span()));
    std::memset(s.data(), 0xa5, s.size());
    EXPECT_EQ(s.data()[size - 1], 0xa5);
  }
}

// Small secrets share the locked region; a freed slot is wiped at once
// (its memory stays mapped, so the test can look), and a large secret has
// pages of its own.
TEST(SecretBytes, SmallSecretsTakeWipedSlotsOfOneLockedRegion) {
  std::vector<SecretBytes> live;
  for (int i = 0; i < 300; ++i) {
    SecretBytes s(i % 2 ? 32 : 64);
    for (uint8_t b : s.span()) ASSERT_EQ(b, 0) << "secret " << i << " is not zero-filled";
    std::memset(s.data(), 0xa5, s.size());
    live.push_back(std::move(s));
  }
  std::vector<const uint8_t*> ptrs;
  for (const auto& s : live) ptrs.push_back(s.data());
  std::sort(ptrs.begin(), ptrs.end());
  EXPECT_EQ(std::adjacent_find(ptrs.begin(), ptrs.end()), ptrs.end())
      << "a slot was handed out twice";
  for (size_t i = 1; i < ptrs.size(); ++i) ASSERT_GE(ptrs[i] - ptrs[i - 1], 64);
  EXPECT_LT(ptrs.back() - ptrs.front(), 4 * 1024 * 1024);

  const uint8_t* freed = live[7].data();
  live.erase(live.begin() + 7);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(freed[i], 0) << "byte " << i << " of a freed slot";

  SecretBytes big(65);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data()) % 4096, 0u);
  for (uint8_t b : big.span()) ASSERT_EQ(b, 0);
}

// Past the region's 65,536 slots, small secrets still work (own pages).
TEST(SecretBytes, SmallSecretsBeyondTheRegionGetPagesOfTheirOwn) {
  std::vector<SecretBytes> live;
  live.reserve(65536 + 16);
  for (int i = 0; i < 65536 + 16; ++i) {
    live.emplace_back(16);
    ASSERT_EQ(live.back().data()[15], 0);
    live.back().data()[0] = static_cast<uint8_t>(i);
  }
  for (int i = 0; i < 65536 + 16; ++i) ASSERT_EQ(live[i].data()[0], static_cast<uint8_t>(i));
}

TEST(SecretBytes, CopyOfCopiesBytes) {
  const Bytes key = H("000102030405060708090a0b0c0d0e0f");
  SecretBytes s = SecretBytes::CopyOf(key);
  ASSERT_EQ(s.size(), key.size());
  EXPECT_EQ(Hex(s.span()), Hex(key));
}

TEST(SecretBytes, MoveConstructionTransfersAndEmptiesSource) {
  SecretBytes a = SecretBytes::CopyOf(H("deadbeef"));
  const uint8_t* buffer = a.data();
  SecretBytes b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), buffer);  // no copy of the secret was made
  EXPECT_EQ(Hex(b.span()), "deadbeef");
}

TEST(SecretBytes, MoveAssignmentReplacesAndEmptiesSource) {
  SecretBytes a = SecretBytes::CopyOf(H("01020304"));
  SecretBytes b = SecretBytes::CopyOf(H("ffffffffffffffff"));
  b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(Hex(b.span()), "01020304");
  b = SecretBytes();  // releases (wipes, unmaps) the old buffer
  EXPECT_TRUE(b.empty());
}

TEST(SecretBytes, SelfMoveAssignmentKeepsContents) {
  SecretBytes a = SecretBytes::CopyOf(H("0a0b"));
  SecretBytes& alias = a;
  a = std::move(alias);
  EXPECT_EQ(Hex(a.span()), "0a0b");
}

TEST(SecretBytes, MlockFailuresIsMonotonic) {
  const size_t before = SecretBytes::MlockFailures();
  { SecretBytes s(64); }
  EXPECT_GE(SecretBytes::MlockFailures(), before);
}

// ---- random -----------------------------------------------------------------

TEST(Random, FillsBufferWithFreshBytes) {
  std::array<uint8_t, 32> a{};
  std::array<uint8_t, 32> b{};
  ASSERT_TRUE(RandomBytes(a).ok());
  ASSERT_TRUE(RandomBytes(b).ok());
  EXPECT_FALSE(AllZero(a));
  EXPECT_NE(Hex(a), Hex(b));
  EXPECT_TRUE(RandomBytes({}).ok());
}

TEST(Random, RandomSecretHasRequestedSize) {
  auto s = RandomSecret(32);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 32u);
  EXPECT_FALSE(AllZero(s->span()));
  auto empty = RandomSecret(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

// ---- ConstantTimeEquals -------------------------------------------------------

TEST(ConstantTimeEquals, ComparesContents) {
  const Bytes a = H("00112233");
  const Bytes b = H("00112233");
  const Bytes c = H("00112234");
  EXPECT_TRUE(ConstantTimeEquals(a, b));
  EXPECT_FALSE(ConstantTimeEquals(a, c));
  EXPECT_TRUE(ConstantTimeEquals({}, {}));
}

TEST(ConstantTimeEquals, DifferentLengthsAreUnequal) {
  const Bytes a = H("00112233");
  const Bytes prefix = H("001122");
  EXPECT_FALSE(ConstantTimeEquals(a, prefix));
  EXPECT_FALSE(ConstantTimeEquals(prefix, a));
  EXPECT_FALSE(ConstantTimeEquals(a, {}));
}

// ---- hex ----------------------------------------------------------------------

TEST(Hex, RoundTripsAndEmitsLowerCase) {
  const Bytes b = {0x00, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(ToHex(b), "007f80abff");
  auto back = FromHex("007F80ABff");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, b);
  auto empty = FromHex("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(Hex, FromHexRejectsOddLength) {
  auto r = FromHex("abc");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("odd length 3"), std::string::npos) << r.status().message();
}

TEST(Hex, FromHexNamesOffendingCharacterAndOffset) {
  auto r = FromHex("00g1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'g' at offset 2"), std::string::npos)
      << r.status().message();

  auto space = FromHex("0 ");
  ASSERT_FALSE(space.ok());
  EXPECT_NE(space.status().message().find("offset 1"), std::string::npos);

  auto ctrl = FromHex(std::string_view("0\n", 2));
  ASSERT_FALSE(ctrl.ok());
  EXPECT_NE(ctrl.status().message().find("0x0a at offset 1"), std::string::npos)
      << ctrl.status().message();
}

// ---- SHA-2 ----------------------------------------------------------------------

TEST(Sha2, FipsAbcVectors) {  // FIPS 180-2 appendices B.1, D.1, C.1
  EXPECT_EQ(Hex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha384(AsBytes("abc"))),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(Hex(Sha512(AsBytes("abc"))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST(Sha2, EmptyInput) {
  EXPECT_EQ(Hex(Sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Hasher, IncrementalMatchesOneShot) {
  std::vector<uint8_t> msg(100000);
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<uint8_t>(i * 31 + 7);
  const ByteSpan all(msg);
  for (size_t split : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{65536}}) {
    Sha256Hasher h;
    h.Update(all.first(split));
    h.Update({});
    h.Update(all.subspan(split));
    EXPECT_EQ(Hex(h.Finish()), Hex(Sha256(all))) << "split at " << split;
  }
  Sha256Hasher abc;
  abc.Update(AsBytes("a"));
  abc.Update(AsBytes("bc"));
  EXPECT_EQ(Hex(abc.Finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Hasher, FinishResetsForTheNextMessage) {
  Sha256Hasher h;
  h.Update(AsBytes("first message"));
  (void)h.Finish();
  h.Update(AsBytes("abc"));
  EXPECT_EQ(Hex(h.Finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// ---- HKDF-SHA256 (RFC 5869 appendix A) -------------------------------------------

Bytes Range(int first, int last) {
  Bytes out;
  for (int i = first; i <= last; ++i) out.push_back(static_cast<uint8_t>(i));
  return out;
}

// RFC 4231 section 4: test cases 1-7 (6 and 7: a 131-byte key, hashed first;
// 5: the output truncated to 128 bits).
TEST(HmacSha256, Rfc4231TestCases1To7) {
  struct Case {
    Bytes key;
    Bytes data;
    std::string mac;  // hex; a prefix for the truncated case
  };
  const auto text = [](std::string_view s) { return Bytes(s.begin(), s.end()); };
  const Case cases[] = {
      {Bytes(20, 0x0b), text("Hi There"),
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {text("Jefe"), text("what do ya want for nothing?"),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {Bytes(20, 0xaa), Bytes(50, 0xdd),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {H("0102030405060708090a0b0c0d0e0f10111213141516171819"), Bytes(50, 0xcd),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {Bytes(20, 0x0c), text("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b"},
      {Bytes(131, 0xaa), text("Test Using Larger Than Block-Size Key - Hash Key First"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {Bytes(131, 0xaa),
       text("This is a test using a larger than block-size key and a larger than block-size "
            "data. The key needs to be hashed before being used by the HMAC algorithm."),
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  int n = 0;
  for (const Case& c : cases) {
    ++n;
    auto mac = HmacSha256::Create(c.key);
    ASSERT_TRUE(mac.ok()) << "case " << n << ": " << mac.status().ToString();
    EXPECT_EQ(Hex(mac->Mac(c.data)).substr(0, c.mac.size()), c.mac) << "case " << n;
    // Twice: the context re-initialises for the next message.
    EXPECT_EQ(Hex(mac->Mac(c.data)).substr(0, c.mac.size()), c.mac) << "case " << n << " again";
  }
}

TEST(HmacSha256, TwoPartMessageIsTheConcatenation) {
  auto mac = HmacSha256::Create(AsBytes("Jefe"));
  ASSERT_TRUE(mac.ok());
  const std::string want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  EXPECT_EQ(Hex(mac->Mac("what do ya want ", "for nothing?")), want);
  EXPECT_EQ(Hex(mac->Mac("", "what do ya want for nothing?")), want);
  EXPECT_EQ(Hex(mac->Mac("what do ya want for nothing?")), want);
  EXPECT_NE(Hex(mac->Mac("what do ya want ", "for nothing!")), want);
}

TEST(HmacSha256, EmptyKeyAndEmptyMessage) {  // Python hmac.new(b"", b"", sha256)
  auto mac = HmacSha256::Create({});
  ASSERT_TRUE(mac.ok()) << mac.status().ToString();
  EXPECT_EQ(Hex(mac->Mac(ByteSpan{})),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(HmacSha256, KeysAreIndependentAndSurviveMoves) {
  auto a = HmacSha256::Create(Bytes(32, 1));
  auto b = HmacSha256::Create(Bytes(32, 2));
  ASSERT_TRUE(a.ok() && b.ok());
  const Sha256Digest da = a->Mac("m");
  EXPECT_NE(da, b->Mac("m"));
  HmacSha256 moved = std::move(*a);
  EXPECT_EQ(moved.Mac("m"), da);
  *b = std::move(moved);
  EXPECT_EQ(b->Mac("m"), da);
}

TEST(HkdfSha256, Rfc5869Case1) {
  const Bytes ikm(22, 0x0b);
  Bytes okm(42);
  ASSERT_TRUE(
      HkdfSha256(ikm, H("000102030405060708090a0b0c"), H("f0f1f2f3f4f5f6f7f8f9"), okm).ok());
  EXPECT_EQ(ToHex(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfSha256, Rfc5869Case2LongInputs) {
  Bytes okm(82);
  ASSERT_TRUE(HkdfSha256(Range(0x00, 0x4f), Range(0x60, 0xaf), Range(0xb0, 0xff), okm).ok());
  EXPECT_EQ(ToHex(okm),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

TEST(HkdfSha256, Rfc5869Case3EmptySaltAndInfo) {
  const Bytes ikm(22, 0x0b);
  Bytes okm(42);
  ASSERT_TRUE(HkdfSha256(ikm, {}, {}, okm).ok());
  EXPECT_EQ(ToHex(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfSha256, EnforcesOutputLengthLimits) {
  const Bytes ikm(32, 0x01);
  Bytes max(size_t{255} * 32);
  EXPECT_TRUE(HkdfSha256(ikm, {}, {}, max).ok());
  Bytes too_long(size_t{255} * 32 + 1);
  Status s = HkdfSha256(ikm, {}, {}, too_long);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("8161"), std::string::npos) << s.message();
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, {}).code(), StatusCode::kInvalidArgument);
}

// ---- AES-256-GCM ----------------------------------------------------------------

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16
// (the AES-256 ones, as reproduced by NIST).
constexpr const char* kTc15Key = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const GcmVector kGcmVectors[] = {
    {"TC13 empty plaintext", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"TC14 one zero block", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"TC15 64 bytes", kTc15Key, "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"TC16 60 bytes with aad", kTc15Key, "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

Aes256Gcm MakeGcm(const Bytes& key) {
  auto gcm = Aes256Gcm::Create(key);
  EXPECT_TRUE(gcm.ok()) << gcm.status().ToString();
  return std::move(gcm).value();
}

TEST(Aes256Gcm, NistVectorRoundTrip) {
  for (const GcmVector& v : kGcmVectors) {
    SCOPED_TRACE(v.name);
    Aes256Gcm gcm = MakeGcm(H(v.key));
    const Bytes pt = H(v.plaintext);
    Bytes sealed(pt.size() + Aes256Gcm::kTagSize);
    ASSERT_TRUE(gcm.Seal(H(v.iv), H(v.aad), pt, sealed).ok());
    EXPECT_EQ(ToHex(sealed), std::string(v.ciphertext) + v.tag);

    Bytes opened(pt.size(), 0xee);
    Status s = gcm.Open(H(v.iv), H(v.aad), sealed, opened);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(opened, pt);
  }
}

// Tamper tests use TC16 (it has plaintext, aad and a partial final block).
class Aes256GcmTamper : public ::testing::Test {
 protected:
  const GcmVector& v = kGcmVectors[3];
  Bytes key = H(v.key);
  Bytes nonce = H(v.iv);
  Bytes aad = H(v.aad);
  Bytes sealed = H(std::string(v.ciphertext) + v.tag);
  Aes256Gcm gcm = MakeGcm(key);

  // Opens and expects DataLoss with out zeroed.
  void ExpectRejected(const Bytes& n, const Bytes& a, const Bytes& c) {
    Bytes out(c.size() - Aes256Gcm::kTagSize, 0xee);
    Status s = gcm.Open(n, a, c, out);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
    EXPECT_TRUE(AllZero(out)) << "unauthenticated plaintext left in out";
  }
};

TEST_F(Aes256GcmTamper, OpenRejectsFlippedCiphertextBit) {
  for (size_t i : {size_t{0}, size_t{31}, size_t{59}}) {
    Bytes c = sealed;
    c[i] ^= 0x01;
    ExpectRejected(nonce, aad, c);
  }
}

TEST_F(Aes256GcmTamper, OpenRejectsFlippedTagBit) {
  for (size_t i : {size_t{60}, size_t{75}}) {
    Bytes c = sealed;
    c[i] ^= 0x80;
    ExpectRejected(nonce, aad, c);
  }
}

TEST_F(Aes256GcmTamper, OpenRejectsFlippedAadBit) {
  Bytes a = aad;
  a[5] ^= 0x10;
  ExpectRejected(nonce, a, sealed);
  ExpectRejected(nonce, {}, sealed);  // dropped aad
}

TEST_F(Aes256GcmTamper, OpenRejectsFlippedNonceBit) {
  Bytes n = nonce;
  n[11] ^= 0x01;
  ExpectRejected(n, aad, sealed);
}

TEST_F(Aes256GcmTamper, OpenRejectsWrongKey) {
  Bytes k = key;
  k[0] ^= 0x01;
  gcm = MakeGcm(k);
  ExpectRejected(nonce, aad, sealed);
}

TEST_F(Aes256GcmTamper, FailedOpenDoesNotPoisonTheNextOne) {
  Bytes c = sealed;
  c[0] ^= 0x01;
  ExpectRejected(nonce, aad, c);
  Bytes out(60);
  EXPECT_TRUE(gcm.Open(nonce, aad, sealed, out).ok());
  EXPECT_EQ(out, H(v.plaintext));
}

TEST(Aes256Gcm, SealsAndOpensInPlace) {
  const GcmVector& v = kGcmVectors[3];
  Aes256Gcm gcm = MakeGcm(H(v.key));
  const Bytes pt = H(v.plaintext);
  Bytes buf = pt;
  buf.resize(pt.size() + Aes256Gcm::kTagSize);
  const ByteSpan in(buf.data(), pt.size());
  ASSERT_TRUE(gcm.Seal(H(v.iv), H(v.aad), in, buf).ok());
  EXPECT_EQ(ToHex(buf), std::string(v.ciphertext) + v.tag);

  std::span<uint8_t> out(buf.data(), pt.size());
  ASSERT_TRUE(gcm.Open(H(v.iv), H(v.aad), buf, out).ok());
  EXPECT_EQ(Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(pt.size())), pt);
}

TEST(Aes256Gcm, OneContextServesManySegmentsInBothDirections) {
  // The hot path: one keyed context, Seal/Open interleaved on 64 KiB segments
  // with per-segment nonces must match a fresh context every time.
  const Bytes key = H(kTc15Key);
  Aes256Gcm shared = MakeGcm(key);
  Bytes segment(size_t{64} * 1024);
  for (size_t i = 0; i < segment.size(); ++i) segment[i] = static_cast<uint8_t>(i ^ (i >> 8));
  Bytes nonce(12, 0);
  for (uint8_t seg = 0; seg < 8; ++seg) {
    nonce[11] = seg;
    Bytes a(segment.size() + 16);
    Bytes b(segment.size() + 16);
    ASSERT_TRUE(shared.Seal(nonce, AsBytes("segment"), segment, a).ok());
    Aes256Gcm fresh = MakeGcm(key);
    ASSERT_TRUE(fresh.Seal(nonce, AsBytes("segment"), segment, b).ok());
    EXPECT_EQ(a, b);
    Bytes back(segment.size());
    ASSERT_TRUE(shared.Open(nonce, AsBytes("segment"), a, back).ok());
    EXPECT_EQ(back, segment);
  }
}

TEST(Aes256Gcm, RejectsBadSizes) {
  EXPECT_EQ(Aes256Gcm::Create(Bytes(16)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Aes256Gcm::Create({}).status().code(), StatusCode::kInvalidArgument);

  Aes256Gcm gcm = MakeGcm(Bytes(32));
  const Bytes pt(10);
  Bytes out(pt.size() + 16);
  Status s = gcm.Seal(Bytes(8), {}, pt, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("nonce must be 12 bytes, got 8"), std::string::npos) << s.message();

  Bytes small(pt.size() + 15);
  s = gcm.Seal(Bytes(12), {}, pt, small);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("out holds 25 bytes"), std::string::npos) << s.message();

  ASSERT_TRUE(gcm.Seal(Bytes(12), {}, pt, out).ok());
  Bytes short_out(9, 0xee);
  s = gcm.Open(Bytes(12), {}, out, short_out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(AllZero(short_out));

  Bytes opened(10);
  s = gcm.Open(Bytes(12), {}, Bytes(15), opened);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("shorter than the 16-byte tag"), std::string::npos) << s.message();
  EXPECT_EQ(gcm.Open(Bytes(13), {}, out, opened).code(), StatusCode::kInvalidArgument);
}

TEST(Aes256Gcm, AcceptsLargerOutputBuffers) {
  // "out must hold" n bytes: a full-size segment buffer may be reused for a
  // short final segment; only the first n (+tag) bytes are written.
  Aes256Gcm gcm = MakeGcm(Bytes(32, 7));
  const Bytes pt = {1, 2, 3};
  Bytes out(64, 0xcc);
  ASSERT_TRUE(gcm.Seal(Bytes(12), {}, pt, out).ok());
  EXPECT_EQ(out[19], 0xcc);
  Bytes back(64, 0xcc);
  ASSERT_TRUE(gcm.Open(Bytes(12), {}, ByteSpan(out).first(19), back).ok());
  EXPECT_EQ(Bytes(back.begin(), back.begin() + 3), pt);
  EXPECT_EQ(back[3], 0xcc);
}

TEST(Aes256Gcm, RejectsPartiallyOverlappingBuffers) {
  Aes256Gcm gcm = MakeGcm(Bytes(32));
  Bytes buf(64);
  const ByteSpan in(buf.data(), 32);
  std::span<uint8_t> shifted(buf.data() + 1, 48);
  EXPECT_EQ(gcm.Seal(Bytes(12), {}, in, shifted).code(), StatusCode::kInvalidArgument);
}

TEST(Aes256Gcm, MovedFromObjectFailsCleanly) {
  Aes256Gcm a = MakeGcm(Bytes(32));
  Aes256Gcm b = std::move(a);
  Bytes out(16);
  EXPECT_EQ(a.Seal(Bytes(12), {}, {}, out).code(),  // NOLINT(bugprone-use-after-move)
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(b.Seal(Bytes(12), {}, {}, out).ok());
}

// ---- Ed25519 (RFC 8032 section 7.1) -------------------------------------------------

struct Ed25519Vector {
  const char* name;
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};

const Ed25519Vector kEd25519Vectors[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519, Rfc8032Vectors) {
  for (const Ed25519Vector& v : kEd25519Vectors) {
    SCOPED_TRACE(v.name);
    auto key = Ed25519PrivateKey::FromSeed(H(v.seed));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(Hex(key->PublicKey()), v.public_key);
    auto seed = key->Seed();
    ASSERT_TRUE(seed.ok());
    EXPECT_EQ(Hex(seed->span()), v.seed);
    auto sig = key->Sign(H(v.message));
    ASSERT_TRUE(sig.ok()) << sig.status().ToString();
    EXPECT_EQ(Hex(*sig), v.signature);
    EXPECT_TRUE(Ed25519Verify(H(v.public_key), H(v.message), H(v.signature)));
  }
}

TEST(Ed25519, VerifyRejectsModifiedMessage) {
  const Ed25519Vector& v = kEd25519Vectors[2];
  EXPECT_FALSE(Ed25519Verify(H(v.public_key), H("af83"), H(v.signature)));
  EXPECT_FALSE(Ed25519Verify(H(v.public_key), H("af8200"), H(v.signature)));
  EXPECT_FALSE(Ed25519Verify(H(v.public_key), {}, H(v.signature)));
}

// The memo answers exactly as Ed25519Verify: a remembered signature passes,
// and changing the key, the message or the signature is a different entry,
// verified afresh and refused. Failures are never remembered; the set stays
// bounded; SignRemembered remembers only its own key's signature.
TEST(Ed25519Memo, AnswersAsVerifyAndStaysBounded) {
  Ed25519MemoClearForTest();
  const Ed25519Vector& v = kEd25519Vectors[2];
  const Bytes pk = H(v.public_key), msg = H(v.message), sig = H(v.signature);
  EXPECT_TRUE(Ed25519VerifyMemoized(pk, msg, sig));
  EXPECT_EQ(Ed25519MemoSizeForTest(), 1u);
  EXPECT_TRUE(Ed25519VerifyMemoized(pk, msg, sig));
  EXPECT_EQ(Ed25519MemoSizeForTest(), 1u);  // a hit adds nothing
  Bytes other_pk = H(kEd25519Vectors[1].public_key);
  EXPECT_FALSE(Ed25519VerifyMemoized(other_pk, msg, sig));
  EXPECT_FALSE(Ed25519VerifyMemoized(pk, H("af83"), sig));
  EXPECT_FALSE(Ed25519VerifyMemoized(pk, {}, sig));
  for (size_t i : {size_t{0}, size_t{63}}) {
    Bytes bad = sig;
    bad[i] ^= 0x01;
    EXPECT_FALSE(Ed25519VerifyMemoized(pk, msg, bad)) << "byte " << i;
    EXPECT_FALSE(Ed25519VerifyMemoized(pk, msg, bad)) << "byte " << i << ", again";
  }
  EXPECT_FALSE(Ed25519VerifyMemoized(pk, msg, Bytes(sig.begin(), sig.end() - 1)));
  EXPECT_EQ(Ed25519MemoSizeForTest(), 1u);  // no failure was remembered

  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  const Bytes m = {1, 2, 3};
  auto own = key->SignRemembered(m);
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(Ed25519MemoSizeForTest(), 2u);
  EXPECT_TRUE(Ed25519VerifyMemoized(key->PublicKey(), m, *own));
  EXPECT_TRUE(Ed25519Verify(key->PublicKey(), m, *own));  // a real signature
  EXPECT_FALSE(Ed25519VerifyMemoized(pk, m, *own));       // not under another key
  EXPECT_EQ(Ed25519MemoSizeForTest(), 2u);

  for (size_t i = 0; i < kEd25519MemoEntries + 10; ++i) {
    const Bytes mi = {static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8)};
    ASSERT_TRUE(key->SignRemembered(mi).ok());
    ASSERT_LE(Ed25519MemoSizeForTest(), kEd25519MemoEntries);
  }
  Ed25519MemoClearForTest();
  EXPECT_EQ(Ed25519MemoSizeForTest(), 0u);
}

TEST(Ed25519, VerifyRejectsModifiedSignature) {
  const Ed25519Vector& v = kEd25519Vectors[2];
  for (size_t i : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
    Bytes sig = H(v.signature);
    sig[i] ^= 0x01;
    EXPECT_FALSE(Ed25519Verify(H(v.public_key), H(v.message), sig)) << "byte " << i;
  }
}

TEST(Ed25519, VerifyRejectsWrongKeyAndMalformedInputs) {
  const Ed25519Vector& v = kEd25519Vectors[1];
  EXPECT_FALSE(Ed25519Verify(H(kEd25519Vectors[2].public_key), H(v.message), H(v.signature)));
  Bytes sig = H(v.signature);
  EXPECT_FALSE(Ed25519Verify(H(v.public_key), H(v.message), ByteSpan(sig).first(63)));
  EXPECT_FALSE(Ed25519Verify(ByteSpan(H(v.public_key)).first(31), H(v.message), sig));
  EXPECT_FALSE(Ed25519Verify({}, H(v.message), sig));
}

TEST(Ed25519, GeneratedKeySignsAndVerifies) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto sig = key->Sign(AsBytes("job manifest"));
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(Ed25519Verify(key->PublicKey(), AsBytes("job manifest"), *sig));
  EXPECT_FALSE(Ed25519Verify(key->PublicKey(), AsBytes("job manifesT"), *sig));
  // The exported seed reproduces the same key.
  auto seed = key->Seed();
  ASSERT_TRUE(seed.ok());
  auto again = Ed25519PrivateKey::FromSeed(seed->span());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Hex(again->PublicKey()), Hex(key->PublicKey()));
}

TEST(Ed25519, FromSeedRejectsWrongSize) {
  auto key = Ed25519PrivateKey::FromSeed(Bytes(31));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
}

// ---- X25519 (RFC 7748 section 6.1) --------------------------------------------------

constexpr const char* kAlicePriv =
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
constexpr const char* kAlicePub =
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
constexpr const char* kBobPriv = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
constexpr const char* kBobPub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
constexpr const char* kX25519Shared =
    "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

TEST(X25519, Rfc7748Section61) {
  auto alice = EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kX25519, H(kAlicePriv));
  auto bob = EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kX25519, H(kBobPriv));
  ASSERT_TRUE(alice.ok() && bob.ok());
  EXPECT_EQ(alice->curve(), EcdhCurve::kX25519);
  auto alice_pub = alice->PublicKey();
  auto bob_pub = bob->PublicKey();
  ASSERT_TRUE(alice_pub.ok() && bob_pub.ok());
  EXPECT_EQ(ToHex(*alice_pub), kAlicePub);
  EXPECT_EQ(ToHex(*bob_pub), kBobPub);

  auto k1 = alice->DeriveSharedSecret(H(kBobPub));
  auto k2 = bob->DeriveSharedSecret(H(kAlicePub));
  ASSERT_TRUE(k1.ok()) << k1.status().ToString();
  ASSERT_TRUE(k2.ok()) << k2.status().ToString();
  EXPECT_EQ(Hex(k1->span()), kX25519Shared);
  EXPECT_EQ(Hex(k2->span()), kX25519Shared);
}

TEST(X25519, RejectsLowOrderPeerPoints) {
  auto alice = EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kX25519, H(kAlicePriv));
  ASSERT_TRUE(alice.ok());
  // u = 0 and u = 1 are small-order points; the result would be all zero.
  Bytes zero(32, 0);
  Bytes one(32, 0);
  one[0] = 1;
  for (const Bytes& peer : {zero, one}) {
    auto k = alice->DeriveSharedSecret(peer);
    ASSERT_FALSE(k.ok());
    EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument) << k.status().ToString();
  }
}

TEST(X25519, RejectsWrongSizes) {
  EXPECT_EQ(EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kX25519, Bytes(31)).status().code(),
            StatusCode::kInvalidArgument);
  auto alice = EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kX25519, H(kAlicePriv));
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->DeriveSharedSecret(Bytes(33, 9)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(alice->DeriveSharedSecret({}).status().code(), StatusCode::kInvalidArgument);
}

// ---- P-256 ECDH (RFC 5903 section 8.1) ---------------------------------------------

constexpr const char* kP256I =
    "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433";
constexpr const char* kP256Gi =
    "04"
    "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180"
    "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3";
constexpr const char* kP256R =
    "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53";
constexpr const char* kP256Gr =
    "04"
    "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63"
    "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB";
constexpr const char* kP256Girx =
    "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE";

TEST(P256Ecdh, Rfc5903Section81) {
  auto initiator = EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kP256, H(kP256I));
  auto responder = EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kP256, H(kP256R));
  ASSERT_TRUE(initiator.ok()) << initiator.status().ToString();
  ASSERT_TRUE(responder.ok()) << responder.status().ToString();
  auto gi = initiator->PublicKey();
  auto gr = responder->PublicKey();
  ASSERT_TRUE(gi.ok() && gr.ok());
  EXPECT_EQ(ToHex(*gi), Lower(kP256Gi));
  EXPECT_EQ(ToHex(*gr), Lower(kP256Gr));

  auto z1 = initiator->DeriveSharedSecret(H(kP256Gr));
  auto z2 = responder->DeriveSharedSecret(H(kP256Gi));
  ASSERT_TRUE(z1.ok()) << z1.status().ToString();
  ASSERT_TRUE(z2.ok()) << z2.status().ToString();
  EXPECT_EQ(Hex(z1->span()), Lower(kP256Girx));
  EXPECT_EQ(Hex(z2->span()), Lower(kP256Girx));
}

TEST(P256Ecdh, RejectsInvalidPeerPoints) {
  auto key = EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kP256, H(kP256I));
  ASSERT_TRUE(key.ok());
  const Bytes good = H(kP256Gr);
  ASSERT_TRUE(key->DeriveSharedSecret(good).ok());

  auto expect_rejected = [&](const Bytes& peer, const char* what) {
    auto z = key->DeriveSharedSecret(peer);
    ASSERT_FALSE(z.ok()) << what;
    EXPECT_EQ(z.status().code(), StatusCode::kInvalidArgument)
        << what << ": " << z.status().ToString();
  };
  Bytes off_curve = good;
  off_curve[64] ^= 0x01;  // y changed by one bit
  expect_rejected(off_curve, "point not on the curve");
  Bytes x_flipped = good;
  x_flipped[1] ^= 0x80;
  expect_rejected(x_flipped, "x changed");
  expect_rejected(Bytes(65, 0), "all-zero buffer (bad prefix)");
  Bytes origin(65, 0);
  origin[0] = 0x04;
  expect_rejected(origin, "(0, 0) is not on the curve");
  // Coordinates equal to the field prime p are out of range.
  const Bytes p = H("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
  Bytes big = {0x04};
  big.insert(big.end(), p.begin(), p.end());
  big.insert(big.end(), p.begin(), p.end());
  expect_rejected(big, "coordinates >= p");
  Bytes compressed = {0x02};
  compressed.insert(compressed.end(), good.begin() + 1, good.begin() + 33);
  expect_rejected(compressed, "compressed encoding");
  Bytes wrong_prefix = good;
  wrong_prefix[0] = 0x06;
  expect_rejected(wrong_prefix, "hybrid prefix");
  expect_rejected(Bytes(good.begin(), good.end() - 1), "truncated");
  expect_rejected({}, "empty");
}

TEST(P256Ecdh, RejectsOutOfRangePrivateScalar) {
  const Bytes n = H("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
  Bytes n_minus_1 = n;
  n_minus_1[31] = 0x50;
  EXPECT_TRUE(EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kP256, n_minus_1).ok());
  for (const Bytes& bad : {Bytes(32, 0), n, Bytes(32, 0xff)}) {
    auto key = EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kP256, bad);
    ASSERT_FALSE(key.ok()) << ToHex(bad);
    EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kP256, Bytes(33, 1)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Ecdh, GeneratedKeysAgreeOnBothCurves) {
  for (EcdhCurve curve : {EcdhCurve::kX25519, EcdhCurve::kP256}) {
    auto a = EcdhPrivateKey::Generate(curve);
    auto b = EcdhPrivateKey::Generate(curve);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->curve(), curve);
    auto a_pub = a->PublicKey();
    auto b_pub = b->PublicKey();
    ASSERT_TRUE(a_pub.ok() && b_pub.ok());
    EXPECT_EQ(a_pub->size(), curve == EcdhCurve::kX25519 ? 32u : 65u);
    auto k1 = a->DeriveSharedSecret(*b_pub);
    auto k2 = b->DeriveSharedSecret(*a_pub);
    ASSERT_TRUE(k1.ok() && k2.ok());
    EXPECT_EQ(k1->size(), 32u);
    EXPECT_TRUE(ConstantTimeEquals(k1->span(), k2->span()));
  }
}

TEST(Ecdh, CurveMismatchIsRejected) {
  auto x = EcdhPrivateKey::Generate(EcdhCurve::kX25519);
  auto p = EcdhPrivateKey::Generate(EcdhCurve::kP256);
  ASSERT_TRUE(x.ok() && p.ok());
  auto x_pub = x->PublicKey();
  auto p_pub = p->PublicKey();
  ASSERT_TRUE(x_pub.ok() && p_pub.ok());
  EXPECT_FALSE(x->DeriveSharedSecret(*p_pub).ok());
  EXPECT_FALSE(p->DeriveSharedSecret(*x_pub).ok());
}

}  // namespace
}  // namespace cce::crypto

namespace cce::crypto {
namespace {

TEST(Hex, SecretFromHexDecodesIntoLockedMemoryAndRejectsBadDigits) {
  auto s = SecretFromHex("00ff10Ab");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 4u);
  EXPECT_EQ(ToHex(s->span()), "00ff10ab");
  EXPECT_FALSE(SecretFromHex("abc").ok());
  auto bad = SecretFromHex("00zz");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("offset 2"), std::string::npos);
}

}  // namespace
}  // namespace cce::crypto
