// Tests for the JWE component: published vectors (RFC 7518 Appendix C for
// ECDH + Concat KDF, RFC 3394 4.3/4.5/4.6 for AES key wrap), round trips on
// both curves, and one negative test per check JweDecrypt makes. A JWE with
// a chosen header is assembled here from the exposed building blocks, so the
// decoder is tested against input it did not produce itself.
#include "crypto/jwe.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace cce::crypto {
namespace {

using Json = nlohmann::json;

Bytes H(std::string_view hex) {
  auto r = FromHex(hex);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : Bytes{};
}

Bytes B64(std::string_view text) {
  auto r = Base64UrlDecode(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : Bytes{};
}

std::string Str(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::vector<std::string> Split(const std::string& compact) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = compact.find('.', start);
    parts.push_back(compact.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i != 0) out += '.';
    out += parts[i];
  }
  return out;
}

EphemeralKey MustGenerate(EcdhCurve curve) {
  auto k = EphemeralKey::Generate(curve);
  EXPECT_TRUE(k.ok()) << k.status().ToString();
  return std::move(k).value();
}

JwkPublicKey MustJwk(std::string_view json) {
  auto k = JwkPublicKey::FromJwk(json);
  EXPECT_TRUE(k.ok()) << k.status().ToString();
  return std::move(k).value();
}

// RFC 7518 Appendix C keys (Alice = sender's ephemeral key, Bob = recipient).
constexpr std::string_view kAliceX = "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0";
constexpr std::string_view kAliceY = "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps";
constexpr std::string_view kAliceD = "0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo";
constexpr std::string_view kBobX = "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ";
constexpr std::string_view kBobY = "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck";
constexpr std::string_view kBobD = "VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw";

std::string EcJwk(std::string_view x, std::string_view y) {
  return R"({"kty":"EC","crv":"P-256","x":")" + std::string(x) + R"(","y":")" + std::string(y) +
         R"("})";
}

EcdhPrivateKey MustPrivate(EcdhCurve curve, std::string_view d_b64) {
  auto k = EcdhPrivateKey::FromPrivateBytes(curve, B64(d_b64));
  EXPECT_TRUE(k.ok()) << k.status().ToString();
  return std::move(k).value();
}

// An independent JWE encoder: the header is whatever the test says, plus an
// "epk" from `sender` unless the test supplied one.
std::string BuildJwe(const JwkPublicKey& to, Json header, ByteSpan plaintext,
                     const EcdhPrivateKey& sender, ByteSpan apu = {}, ByteSpan apv = {}) {
  auto sender_pub = sender.PublicKey();
  EXPECT_TRUE(sender_pub.ok());
  if (!header.contains("epk")) {
    auto epk = JwkPublicKey::FromPublicBytes(sender.curve(), *sender_pub);
    EXPECT_TRUE(epk.ok()) << epk.status().ToString();
    header["epk"] = Json::parse(epk->ToJwk());
  }
  auto z = sender.DeriveSharedSecret(to.public_bytes());
  EXPECT_TRUE(z.ok()) << z.status().ToString();
  SecretBytes kek(32);
  EXPECT_TRUE(ConcatKdfSha256(z->span(), "ECDH-ES+A256KW", apu, apv, kek.span()).ok());
  const Bytes cek = H("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  auto wrapped = Aes256KeyWrap(kek.span(), cek);
  EXPECT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  const Bytes iv = H("0f0e0d0c0b0a090807060504");
  const std::string h64 = Base64UrlEncode(AsBytes(header.dump()));
  auto gcm = Aes256Gcm::Create(cek);
  EXPECT_TRUE(gcm.ok());
  Bytes sealed(plaintext.size() + Aes256Gcm::kTagSize);
  EXPECT_TRUE(gcm->Seal(iv, AsBytes(h64), plaintext, sealed).ok());
  const ByteSpan s(sealed);
  return Join({h64, Base64UrlEncode(*wrapped), Base64UrlEncode(iv),
               Base64UrlEncode(s.first(plaintext.size())),
               Base64UrlEncode(s.subspan(plaintext.size()))});
}

Json StdHeader() {
  return Json{{"alg", "ECDH-ES+A256KW"}, {"enc", "A256GCM"}};
}

void ExpectError(const StatusOr<SecretBytes>& r, StatusCode code, std::string_view needle) {
  ASSERT_FALSE(r.ok()) << "expected an error mentioning '" << needle << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
}

// ---- base64url -----------------------------------------------------------------

// Issue 9, finding 5: a tee_pubkey of 400,000 nested '[' crashed the plane
// (the error message serialised the value, recursively).
TEST(JwkPublicKey, RefusesDeepNestingWithoutEchoingTheValue) {
  const std::string deep = std::string(400'000, '[') + std::string(400'000, ']');
  auto k = JwkPublicKey::FromJwk(deep);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find("nested deeper than"), std::string::npos)
      << k.status().message().substr(0, 200);
  EXPECT_LT(k.status().message().size(), 200u);
  // A wrong-type value is named by its type, never printed.
  auto arr = JwkPublicKey::FromJwk(R"([["secret-material"]])");
  ASSERT_FALSE(arr.ok());
  EXPECT_EQ(arr.status().message().find("secret-material"), std::string::npos)
      << arr.status().message();
}

TEST(Base64Url, RoundTripsEveryLengthAndUsesTheUrlAlphabet) {
  Bytes data;
  for (int i = 0; i < 40; ++i) {
    auto back = Base64UrlDecode(Base64UrlEncode(data));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, data);
    data.push_back(static_cast<uint8_t>(0xf7 * i + 0xfb));
  }
  EXPECT_EQ(Base64UrlEncode(H("fbff")), "-_8");
  EXPECT_EQ(Base64UrlEncode(AsBytes("Alice")), "QWxpY2U");
}

TEST(Base64Url, RejectsPaddingBadCharactersBadLengthAndNonCanonical) {
  EXPECT_EQ(Str(B64("QWxpY2U")), "Alice");
  EXPECT_FALSE(Base64UrlDecode("QWxpY2U=").ok());
  EXPECT_FALSE(Base64UrlDecode("QWxp+2U").ok());
  EXPECT_FALSE(Base64UrlDecode("QWxp/2U").ok());
  EXPECT_FALSE(Base64UrlDecode("QWxpY").ok());  // 5 = 1 mod 4
  EXPECT_FALSE(Base64UrlDecode("QWxpY2 ").ok());
  EXPECT_TRUE(Base64UrlDecode("QQ").ok());
  EXPECT_FALSE(Base64UrlDecode("QR").ok());  // same byte, unused bits set
  EXPECT_FALSE(Base64UrlDecode("QWF").ok());
  auto bad = Base64UrlDecode("ab=c");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("offset 2"), std::string::npos) << bad.status().ToString();
  // Every position of a bad byte, in a full group or in the tail, is named.
  const std::string good = Base64UrlEncode(AsBytes("confidential data, 26 bytes"));
  for (size_t i = 0; i < good.size(); ++i) {
    for (char c : {'=', '+', '\0', '\xff'}) {
      std::string t = good;
      t[i] = c;
      auto r = Base64UrlDecode(t);
      ASSERT_FALSE(r.ok()) << i;
      EXPECT_NE(r.status().message().find("at offset " + std::to_string(i)), std::string::npos)
          << r.status().ToString();
    }
  }
  EXPECT_FALSE(Base64UrlDecode("QWxpY2V").ok());  // 3 in the tail: unused bits set
  EXPECT_EQ(Str(B64("QWxpY2VB")), "AliceA");
}

// ---- known answers ----------------------------------------------------------------

// RFC 7518 Appendix C: ECDH-ES on P-256 between Alice's ephemeral key and
// Bob's key, Concat KDF with AlgorithmID "A128GCM", apu "Alice", apv "Bob",
// 128-bit output.
TEST(ConcatKdf, MatchesRfc7518AppendixC) {
  const JwkPublicKey alice_pub = MustJwk(EcJwk(kAliceX, kAliceY));
  const JwkPublicKey bob_pub = MustJwk(EcJwk(kBobX, kBobY));
  const EcdhPrivateKey bob = MustPrivate(EcdhCurve::kP256, kBobD);
  const EcdhPrivateKey alice = MustPrivate(EcdhCurve::kP256, kAliceD);

  auto z_bob = bob.DeriveSharedSecret(alice_pub.public_bytes());
  auto z_alice = alice.DeriveSharedSecret(bob_pub.public_bytes());
  ASSERT_TRUE(z_bob.ok()) << z_bob.status().ToString();
  ASSERT_TRUE(z_alice.ok()) << z_alice.status().ToString();
  const Bytes z_expected = {158, 86,  217, 29,  129, 113, 53,  211, 114, 131, 66,
                            131, 191, 132, 38,  156, 251, 49,  110, 163, 218, 128,
                            106, 72,  246, 218, 167, 121, 140, 254, 144, 196};
  EXPECT_EQ(ToHex(z_bob->span()), ToHex(z_expected));
  EXPECT_EQ(ToHex(z_alice->span()), ToHex(z_expected));

  std::array<uint8_t, 16> derived{};
  ASSERT_TRUE(
      ConcatKdfSha256(z_bob->span(), "A128GCM", AsBytes("Alice"), AsBytes("Bob"), derived).ok());
  EXPECT_EQ(Base64UrlEncode(derived), "VqqN6vgjbSBcIijNcacQGg");

  // Every OtherInfo field is bound: change any one and the key changes.
  std::array<uint8_t, 16> other{};
  ASSERT_TRUE(
      ConcatKdfSha256(z_bob->span(), "A128KW", AsBytes("Alice"), AsBytes("Bob"), other).ok());
  EXPECT_NE(other, derived);
  ASSERT_TRUE(
      ConcatKdfSha256(z_bob->span(), "A128GCM", AsBytes("Alicf"), AsBytes("Bob"), other).ok());
  EXPECT_NE(other, derived);
  ASSERT_TRUE(
      ConcatKdfSha256(z_bob->span(), "A128GCM", AsBytes("Alice"), AsBytes("Boc"), other).ok());
  EXPECT_NE(other, derived);
  std::array<uint8_t, 32> longer{};  // keydatalen is in SuppPubInfo too
  ASSERT_TRUE(
      ConcatKdfSha256(z_bob->span(), "A128GCM", AsBytes("Alice"), AsBytes("Bob"), longer).ok());
  EXPECT_NE(ToHex(ByteSpan(longer).first(16)), ToHex(derived));
}

TEST(ConcatKdf, RejectsEmptyAndOversizedOutput) {
  const Bytes z(32, 1);
  std::vector<uint8_t> out;
  EXPECT_FALSE(ConcatKdfSha256(z, "x", {}, {}, out).ok());
  out.resize(1025);
  EXPECT_FALSE(ConcatKdfSha256(z, "x", {}, {}, out).ok());
}

// RFC 3394 section 4.3, 4.5 and 4.6 (256-bit KEK).
TEST(AesKeyWrap, MatchesRfc3394) {
  const Bytes kek = H("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const Bytes data = H("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f");
  struct Case {
    size_t data_size;
    const char* wrapped;
  };
  const Case cases[] = {
      {16, "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7"},
      {24, "a8f9bc1612c68b3ff6e6f4fbe30e71e4769c8b80a32cb8958cd5d17d6b254da1"},
      {32, "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"},
  };
  for (const Case& c : cases) {
    const ByteSpan key = ByteSpan(data).first(c.data_size);
    auto wrapped = Aes256KeyWrap(kek, key);
    ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
    EXPECT_EQ(ToHex(*wrapped), c.wrapped);
    auto unwrapped = Aes256KeyUnwrap(kek, H(c.wrapped));
    ASSERT_TRUE(unwrapped.ok()) << unwrapped.status().ToString();
    EXPECT_EQ(ToHex(unwrapped->span()), ToHex(key));
  }
}

TEST(AesKeyWrap, UnwrapFailsOnAnyFlippedBitOrWrongKek) {
  const Bytes kek = H("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const Bytes wrapped =
      H("28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21");
  for (size_t i = 0; i < wrapped.size(); ++i) {
    Bytes bad = wrapped;
    bad[i] ^= 0x01;
    auto r = Aes256KeyUnwrap(kek, bad);
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  }
  Bytes other_kek = kek;
  other_kek[31] ^= 0x80;
  auto r = Aes256KeyUnwrap(other_kek, wrapped);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
}

TEST(AesKeyWrap, RejectsBadSizes) {
  const Bytes kek(32, 7);
  EXPECT_FALSE(Aes256KeyWrap(Bytes(16, 7), Bytes(32, 1)).ok());  // AES-128 KEK
  EXPECT_FALSE(Aes256KeyWrap(kek, Bytes(8, 1)).ok());
  EXPECT_FALSE(Aes256KeyWrap(kek, Bytes(20, 1)).ok());
  EXPECT_FALSE(Aes256KeyUnwrap(kek, Bytes(16, 1)).ok());
  EXPECT_FALSE(Aes256KeyUnwrap(kek, Bytes(41, 1)).ok());
}

// ---- JWK ----------------------------------------------------------------------------

TEST(JwkPublicKey, ParsesAndExportsTheCanonicalForm) {
  const JwkPublicKey k =
      MustJwk(R"({"y":")" + std::string(kBobY) + R"(", "x" : ")" + std::string(kBobX) +
              R"(", "crv":"P-256","kty":"EC","kid":"bob","use":"enc","alg":"ECDH-ES+A256KW",)"
              R"("key_ops":["deriveBits"],"ext":true})");
  EXPECT_EQ(k.curve(), EcdhCurve::kP256);
  const std::string canonical = R"({"crv":"P-256","kty":"EC","x":")" + std::string(kBobX) +
                                R"(","y":")" + std::string(kBobY) + R"("})";
  EXPECT_EQ(k.ToJwk(), canonical);
  EXPECT_EQ(k.Thumbprint(), Base64UrlEncode(Sha256(AsBytes(canonical))));
  ASSERT_EQ(k.public_bytes().size(), 65U);
  EXPECT_EQ(k.public_bytes()[0], 0x04);
  auto again = JwkPublicKey::FromPublicBytes(EcdhCurve::kP256, k.public_bytes());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*again == k);

  // RFC 8037 A.6: Bob's X25519 key.
  const JwkPublicKey x = MustJwk(
      R"({"kty":"OKP","crv":"X25519","kid":"Bob","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"})");
  EXPECT_EQ(x.curve(), EcdhCurve::kX25519);
  EXPECT_EQ(x.ToJwk(),
            R"({"crv":"X25519","kty":"OKP","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"})");
  EXPECT_EQ(ToHex(x.public_bytes()),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
}

TEST(JwkPublicKey, RejectsInvalidKeysNamingTheMember) {
  const std::string x(kBobX);
  const std::string y(kBobY);
  // y with its last coordinate byte changed: almost surely off the curve,
  // and the test checks that the error says so.
  Bytes y_bytes = B64(kBobY);
  y_bytes[31] ^= 0x01;
  const std::string bad_y = Base64UrlEncode(y_bytes);
  const std::string x31 = Base64UrlEncode(ByteSpan(B64(kBobX)).first(31));
  struct Case {
    std::string json;
    const char* needle;
  };
  const std::vector<Case> cases = {
      {R"({"kty":"EC","crv":"P-256","x":")" + x + R"(","y":")" + bad_y + R"("})", "curve"},
      {R"({"kty":"EC","crv":"P-256","x":")" + x31 + R"(","y":")" + y + R"("})", "x: expected 32"},
      {R"({"kty":"EC","crv":"P-256","x":")" + x + R"("})", "y: missing"},
      {R"({"kty":"EC","crv":"P-384","x":")" + x + R"(","y":")" + y + R"("})", "crv"},
      {R"({"kty":"RSA","crv":"P-256","x":")" + x + R"(","y":")" + y + R"("})", "kty"},
      {R"({"kty":"EC","crv":"P-256","x":")" + x + R"(","y":")" + y + R"(","d":")" +
           std::string(kBobD) + R"("})",
       "d: a private key"},
      {R"({"kty":"EC","crv":"P-256","x":")" + x + R"(","y":")" + y + R"(","x5c":[]})", "x5c"},
      {R"({"kty":"EC","crv":"P-256","x":")" + x + R"(","y":")" + y + R"(","use":"sig"})", "use"},
      {R"({"kty":"EC","crv":"P-256","x":")" + x + R"(","y":")" + y + R"(","alg":"ECDH-ES"})",
       "alg"},
      {R"({"kty":"EC","crv":"P-256","x":")" + x + R"(","y":")" + y + R"(","key_ops":["encrypt"]})",
       "key_ops"},
      {R"({"kty":"EC","crv":"P-256","x":")" + x + R"(","x":")" + x + R"(","y":")" + y + R"("})",
       "duplicate"},
      {R"({"kty":"EC","crv":"P-256","x":")" + x + R"(=","y":")" + y + R"("})", "padding"},
      {R"({"kty":"EC","crv":"P-256","x":1,"y":")" + y + R"("})", "x: expected a string"},
      {R"(["kty"])", "object"},
      {R"({"kty":"EC",)", "JSON"},
      // X25519: u = 0 and u = 1 are of low order (RFC 7748 section 6.1).
      {R"({"kty":"OKP","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})",
       "low-order"},
      {R"({"kty":"OKP","crv":"X25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})",
       "low-order"},
      {R"({"kty":"OKP","crv":"Ed25519","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"})", "crv"},
      {R"({"kty":"OKP","crv":"X25519","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08","y":"AA"})",
       "y: not allowed"},
  };
  for (const Case& c : cases) {
    auto k = JwkPublicKey::FromJwk(c.json);
    ASSERT_FALSE(k.ok()) << c.json;
    EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument) << k.status().ToString();
    EXPECT_NE(k.status().message().find(c.needle), std::string::npos)
        << c.json << " -> " << k.status().ToString();
  }
  EXPECT_FALSE(JwkPublicKey::FromPublicBytes(EcdhCurve::kP256, Bytes(65, 0)).ok());
  EXPECT_FALSE(JwkPublicKey::FromPublicBytes(EcdhCurve::kP256, Bytes(33, 2)).ok());
  EXPECT_FALSE(JwkPublicKey::FromPublicBytes(EcdhCurve::kX25519, Bytes(31, 9)).ok());
}

// ---- round trips ------------------------------------------------------------------------

class JweRoundTrip : public ::testing::TestWithParam<EcdhCurve> {};

TEST_P(JweRoundTrip, DecryptsWhatItEncryptsWithHeaderParameters) {
  const EphemeralKey key = MustGenerate(GetParam());
  const JwkPublicKey to = MustJwk(key.PublicJwk());
  EXPECT_TRUE(to == key.public_key());
  const Bytes dataset_key = H("8f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff");
  JweOptions opts;
  opts.kid = "dataset/ds-1";
  opts.apu = Bytes{'p', 'l', 'a', 'n', 'e'};
  opts.apv = Bytes{0, 1, 2, 255};
  auto jwe = JweEncrypt(to, dataset_key, opts);
  ASSERT_TRUE(jwe.ok()) << jwe.status().ToString();

  const auto parts = Split(*jwe);
  ASSERT_EQ(parts.size(), 5U);
  const Json header = Json::parse(Str(B64(parts[0])));
  EXPECT_EQ(header["alg"], "ECDH-ES+A256KW");
  EXPECT_EQ(header["enc"], "A256GCM");
  EXPECT_EQ(header["kid"], "dataset/ds-1");
  EXPECT_EQ(header["apu"], "cGxhbmU");
  EXPECT_EQ(header["apv"], "AAEC_w");
  EXPECT_EQ(header["epk"]["kty"], GetParam() == EcdhCurve::kP256 ? "EC" : "OKP");
  EXPECT_EQ(B64(parts[1]).size(), 40U);
  EXPECT_EQ(B64(parts[2]).size(), 12U);
  EXPECT_EQ(B64(parts[3]).size(), dataset_key.size());
  EXPECT_EQ(B64(parts[4]).size(), 16U);

  JweOptions got;
  auto plain = JweDecrypt(key, *jwe, &got);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(ToHex(plain->span()), ToHex(dataset_key));
  EXPECT_EQ(got.kid, opts.kid);
  EXPECT_EQ(got.apu, opts.apu);
  EXPECT_EQ(got.apv, opts.apv);

  // Fresh ephemeral key, CEK and IV each time.
  auto again = JweEncrypt(to, dataset_key, opts);
  ASSERT_TRUE(again.ok());
  const auto parts2 = Split(*again);
  for (size_t i = 0; i < 5; ++i) EXPECT_NE(parts[i], parts2[i]) << "part " << i;
}

TEST_P(JweRoundTrip, EmptyAndLargerPlaintexts) {
  const EphemeralKey key = MustGenerate(GetParam());
  for (size_t size : {0, 1, 15, 16, 17, 4096}) {
    Bytes plain(size);
    for (size_t i = 0; i < size; ++i) plain[i] = static_cast<uint8_t>(i * 7);
    auto jwe = JweEncrypt(key.public_key(), plain);
    ASSERT_TRUE(jwe.ok()) << jwe.status().ToString();
    JweOptions got;
    got.kid = "stale";
    auto back = JweDecrypt(key, *jwe, &got);
    ASSERT_TRUE(back.ok()) << size << ": " << back.status().ToString();
    EXPECT_EQ(ToHex(back->span()), ToHex(plain));
    EXPECT_TRUE(got.kid.empty());
    EXPECT_TRUE(got.apu.empty());
  }
}

TEST_P(JweRoundTrip, WrongRecipientKeyIsDataLossAtTheEncryptedKey) {
  const EphemeralKey key = MustGenerate(GetParam());
  const EphemeralKey other = MustGenerate(GetParam());
  auto jwe = JweEncrypt(key.public_key(), AsBytes("secret"));
  ASSERT_TRUE(jwe.ok());
  ExpectError(JweDecrypt(other, *jwe), StatusCode::kDataLoss, "JWE encrypted key");
}

TEST_P(JweRoundTrip, TamperingWithAnyOfTheFivePartsIsRefused) {
  const EphemeralKey key = MustGenerate(GetParam());
  auto jwe = JweEncrypt(key.public_key(), AsBytes("0123456789abcdef0123456789abcdef"),
                        JweOptions{"k1", {}, {}});
  ASSERT_TRUE(jwe.ok());
  ASSERT_TRUE(JweDecrypt(key, *jwe).ok());
  const auto parts = Split(*jwe);
  const char* const names[] = {"JWE protected header", "JWE encrypted key", "JWE tag", "JWE tag",
                               "JWE tag"};
  for (size_t p = 0; p < 5; ++p) {
    // Flip one bit in the decoded bytes of each position of the part, keeping
    // the encoding canonical, so only the content changes.
    const Bytes decoded = B64(parts[p]);
    for (size_t i = 0; i < decoded.size(); i += 3) {
      Bytes bad = decoded;
      bad[i] ^= 0x20;
      auto tampered = parts;
      tampered[p] = Base64UrlEncode(bad);
      auto r = JweDecrypt(key, Join(tampered));
      ASSERT_FALSE(r.ok()) << "part " << p << " byte " << i;
      if (p > 0) {
        EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
        EXPECT_NE(r.status().message().find(names[p]), std::string::npos) << r.status().ToString();
      }
    }
  }
  // A header that is still valid JSON with the same meaning but different
  // bytes changes the AAD: the tag check refuses it.
  Json header = Json::parse(Str(B64(parts[0])));
  auto respaced = parts;
  respaced[0] = Base64UrlEncode(AsBytes(header.dump(1)));
  ExpectError(JweDecrypt(key, Join(respaced)), StatusCode::kDataLoss, "JWE tag");
  // Changing kid (not a KDF input) is caught by the tag as well.
  header["kid"] = "k2";
  auto rekid = parts;
  rekid[0] = Base64UrlEncode(AsBytes(header.dump()));
  ExpectError(JweDecrypt(key, Join(rekid)), StatusCode::kDataLoss, "JWE tag");
  // Adding apv changes the KEK: the unwrap integrity check refuses it.
  header["kid"] = "k1";
  header["apv"] = "QQ";
  auto reapv = parts;
  reapv[0] = Base64UrlEncode(AsBytes(header.dump()));
  ExpectError(JweDecrypt(key, Join(reapv)), StatusCode::kDataLoss, "JWE encrypted key");
  // Truncated ciphertext and swapped IV.
  auto shorter = parts;
  shorter[3] = Base64UrlEncode(ByteSpan(B64(parts[3])).first(31));
  ExpectError(JweDecrypt(key, Join(shorter)), StatusCode::kDataLoss, "JWE tag");
}

std::string CurveParamName(const ::testing::TestParamInfo<EcdhCurve>& param) {
  return param.param == EcdhCurve::kP256 ? "P256" : "X25519";
}

INSTANTIATE_TEST_SUITE_P(Curves, JweRoundTrip,
                         ::testing::Values(EcdhCurve::kP256, EcdhCurve::kX25519), CurveParamName);

// ---- header and structure checks (JWEs built by the independent encoder) ---------------

class JweDecryptChecks : public ::testing::Test {
 protected:
  JweDecryptChecks()
      : key_(MustGenerate(EcdhCurve::kP256)), sender_(MustPrivate(EcdhCurve::kP256, kAliceD)) {}
  std::string Build(Json header) {
    return BuildJwe(key_.public_key(), std::move(header), AsBytes("payload"), sender_);
  }
  EphemeralKey key_;
  EcdhPrivateKey sender_;
};

TEST_F(JweDecryptChecks, AcceptsAnIndependentlyBuiltJwe) {
  Json h = StdHeader();
  h["typ"] = "JOSE";
  h["cty"] = "application/octet-stream";
  auto r = JweDecrypt(key_, Build(h));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Str(r->span()), "payload");

  const Bytes apu = {1, 2, 3};
  const Bytes apv = {9};
  h["apu"] = Base64UrlEncode(apu);
  h["apv"] = Base64UrlEncode(apv);
  JweOptions got;
  auto r2 = JweDecrypt(key_, BuildJwe(key_.public_key(), h, AsBytes("x"), sender_, apu, apv), &got);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(got.apu, apu);
  EXPECT_EQ(got.apv, apv);
}

// RFC 7518 Appendix C keys end to end: Bob (the receiver) decrypts a JWE whose
// epk is Alice's published key.
TEST_F(JweDecryptChecks, DecryptsForTheRfc7518AppendixCRecipient) {
  auto bob = EphemeralKey::FromEcdhKey(MustPrivate(EcdhCurve::kP256, kBobD));
  ASSERT_TRUE(bob.ok()) << bob.status().ToString();
  EXPECT_TRUE(bob->public_key() == MustJwk(EcJwk(kBobX, kBobY)));
  Json h = StdHeader();
  h["apu"] = "QWxpY2U";
  h["apv"] = "Qm9i";
  const std::string jwe =
      BuildJwe(bob->public_key(), h, AsBytes("to Bob"), sender_, AsBytes("Alice"), AsBytes("Bob"));
  const Json epk = Json::parse(Str(B64(Split(jwe)[0])))["epk"];
  EXPECT_EQ(epk["x"], kAliceX);
  EXPECT_EQ(epk["y"], kAliceY);
  auto r = JweDecrypt(*bob, jwe);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Str(r->span()), "to Bob");
}

TEST_F(JweDecryptChecks, RefusesOtherAlgorithmsAndHeaderParameters) {
  struct Case {
    Json header;
    const char* needle;
  };
  auto with = [](const char* name, Json value) {
    Json h = StdHeader();
    h[name] = std::move(value);
    return h;
  };
  auto bob_epk_with = [](const char* name, std::string_view value) {
    Json epk = Json::parse(MustJwk(EcJwk(kBobX, kBobY)).ToJwk());
    epk[name] = value;
    return epk;
  };
  Json no_alg = StdHeader();
  no_alg.erase("alg");
  Json no_enc = StdHeader();
  no_enc.erase("enc");
  const std::vector<Case> cases = {
      {with("alg", "ECDH-ES"), "alg: expected \"ECDH-ES+A256KW\""},
      {with("alg", "ECDH-ES+A128KW"), "alg: expected"},
      {with("alg", "ecdh-es+a256kw"), "alg: expected"},
      {with("alg", "RSA-OAEP"), "alg: expected"},
      {with("alg", 1), "alg: expected a string"},
      {no_alg, "alg: missing"},
      {with("enc", "A128GCM"), "enc: expected \"A256GCM\""},
      {with("enc", "A256CBC-HS512"), "enc: expected"},
      {no_enc, "enc: missing"},
      {with("zip", "DEF"), "zip"},
      {with("crit", Json::array({"exp"})), "crit"},
      {with("p2s", "AAAA"), "unsupported header parameter"},
      {with("jku", "https://example.invalid/"), "unsupported header parameter"},
      {with("kid", 5), "kid: expected a string"},
      {with("apu", "QQ=="), "apu"},
      {with("apv", 3), "apv"},
      {with("epk", bob_epk_with("d", kBobD)), "epk: d"},
      {with("epk", bob_epk_with("kid", "x")), "epk: kid"},
      {with("epk", "not an object"), "epk: expected a JSON object"},
      {with("epk", Json::parse(R"({"kty":"OKP","crv":"X25519",)"
                               R"("x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"})")),
       "epk: curve X25519 does not match"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header.dump());
    ExpectError(JweDecrypt(key_, Build(c.header)), StatusCode::kInvalidArgument, c.needle);
  }
  // Missing epk: the encoder would add one, so build by hand.
  auto parts = Split(Build(StdHeader()));
  Json h = Json::parse(Str(B64(parts[0])));
  h.erase("epk");
  parts[0] = Base64UrlEncode(AsBytes(h.dump()));
  ExpectError(JweDecrypt(key_, Join(parts)), StatusCode::kInvalidArgument, "epk: missing");
}

TEST_F(JweDecryptChecks, RefusesAnEpkThatIsNotOnTheCurve) {
  Bytes y = B64(kAliceY);
  y[31] ^= 0x01;
  Json h = StdHeader();
  h["epk"] = Json{{"kty", "EC"}, {"crv", "P-256"}, {"x", kAliceX}, {"y", Base64UrlEncode(y)}};
  ExpectError(JweDecrypt(key_, Build(h)), StatusCode::kInvalidArgument,
              "JWE protected header: epk: P-256: (x, y) is not a point on the curve");
  // X25519 recipient, low-order epk.
  const EphemeralKey xkey = MustGenerate(EcdhCurve::kX25519);
  const EcdhPrivateKey xsender = [] {
    auto k = EcdhPrivateKey::Generate(EcdhCurve::kX25519);
    EXPECT_TRUE(k.ok());
    return std::move(k).value();
  }();
  Json hx = StdHeader();
  hx["epk"] = Json{{"kty", "OKP"}, {"crv", "X25519"}, {"x", Base64UrlEncode(Bytes(32, 0))}};
  ExpectError(JweDecrypt(xkey, BuildJwe(xkey.public_key(), hx, AsBytes("p"), xsender)),
              StatusCode::kInvalidArgument, "epk");
}

TEST_F(JweDecryptChecks, RefusesDuplicateHeaderMembersAndNonObjects) {
  auto parts = Split(Build(StdHeader()));
  const std::string body = Str(B64(parts[0]));
  // Prepend a second "alg": the parser must not pick either one.
  const std::string dup = R"({"alg":"ECDH-ES",)" + body.substr(1);
  parts[0] = Base64UrlEncode(AsBytes(dup));
  ExpectError(JweDecrypt(key_, Join(parts)), StatusCode::kInvalidArgument, "duplicate");
  parts[0] = Base64UrlEncode(AsBytes("[1,2]"));
  ExpectError(JweDecrypt(key_, Join(parts)), StatusCode::kInvalidArgument, "JSON object");
  parts[0] = Base64UrlEncode(AsBytes("{\"alg\":"));
  ExpectError(JweDecrypt(key_, Join(parts)), StatusCode::kInvalidArgument, "not valid JSON");
  parts[0] = "";
  ExpectError(JweDecrypt(key_, Join(parts)), StatusCode::kInvalidArgument, "header: empty");
}

TEST_F(JweDecryptChecks, RefusesWrongStructureAndPartSizes) {
  const std::string good = Build(StdHeader());
  const auto parts = Split(good);
  ExpectError(JweDecrypt(key_, Join({parts[0], parts[1], parts[2], parts[3]})),
              StatusCode::kInvalidArgument, "5 parts");
  ExpectError(JweDecrypt(key_, good + "."), StatusCode::kInvalidArgument, "5 parts");
  ExpectError(JweDecrypt(key_, good + ".AAAA"), StatusCode::kInvalidArgument, "5 parts");
  ExpectError(JweDecrypt(key_, ""), StatusCode::kInvalidArgument, "5 parts");

  auto p = parts;
  p[1] = Base64UrlEncode(ByteSpan(B64(parts[1])).first(32));
  ExpectError(JweDecrypt(key_, Join(p)), StatusCode::kInvalidArgument,
              "JWE encrypted key: expected 40 bytes");
  p = parts;
  p[1] = "";  // "dir"-style empty encrypted key
  ExpectError(JweDecrypt(key_, Join(p)), StatusCode::kInvalidArgument, "JWE encrypted key");
  p = parts;
  p[2] = Base64UrlEncode(Bytes(16, 0));
  ExpectError(JweDecrypt(key_, Join(p)), StatusCode::kInvalidArgument, "JWE IV: expected 12");
  p = parts;
  p[4] = Base64UrlEncode(ByteSpan(B64(parts[4])).first(12));
  ExpectError(JweDecrypt(key_, Join(p)), StatusCode::kInvalidArgument, "JWE tag: expected 16");
  p = parts;
  p[3] += "=";
  ExpectError(JweDecrypt(key_, Join(p)), StatusCode::kInvalidArgument, "JWE ciphertext");
  p = parts;
  p[2] = "*" + p[2].substr(1);
  ExpectError(JweDecrypt(key_, Join(p)), StatusCode::kInvalidArgument, "JWE IV: base64url");

  ExpectError(JweDecrypt(key_, std::string(kJweMaxCompactSize + 1, 'A')),
              StatusCode::kInvalidArgument, "exceeds the limit");
}

TEST(JweEncrypt, RefusesInvalidUtf8KidAndOversizedPlaintext) {
  const EphemeralKey key = MustGenerate(EcdhCurve::kX25519);
  auto r = JweEncrypt(key.public_key(), AsBytes("p"), JweOptions{"\xff\xfe", {}, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("kid"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(JweEncrypt(key.public_key(), Bytes(kJweMaxCompactSize, 0)).ok());
}

}  // namespace
}  // namespace cce::crypto
