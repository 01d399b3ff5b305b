// ECDSA P-256 / SHA-256 with P1363 signatures (crypto.h): the RFC 6979 A.2.5
// vectors (deterministic signatures, checked by our verifier), interop with
// python3-cryptography computed at test time in both directions, and the
// refusals (other message, other key, flipped bits, high s, bad sizes).
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/temp_dir_testing.h"
#include "crypto/crypto.h"
#include "crypto/jwe.h"

namespace cce::crypto {
namespace {

Bytes H(std::string_view hex) {
  auto r = FromHex(hex);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : Bytes{};
}

ByteSpan Msg(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// RFC 6979 A.2.5: P-256, private key x, public key (Ux, Uy).
constexpr std::string_view kX = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
constexpr std::string_view kPub =
    "04"
    "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
    "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
// With SHA-256: message "sample" and "test", r||s.
constexpr std::string_view kSigSample =
    "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
    "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8";
constexpr std::string_view kSigTest =
    "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367"
    "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083";

TEST(EcdsaP256, Rfc6979VectorsVerify) {
  EXPECT_TRUE(EcdsaP256VerifySha256(H(kPub), Msg("sample"), H(kSigSample)));
  EXPECT_TRUE(EcdsaP256VerifySha256(H(kPub), Msg("test"), H(kSigTest)));
  EXPECT_FALSE(EcdsaP256VerifySha256(H(kPub), Msg("test"), H(kSigSample)));
  EXPECT_FALSE(EcdsaP256VerifySha256(H(kPub), Msg("samplE"), H(kSigSample)));
}

TEST(EcdsaP256, SignsWithTheVectorKeyAndVerifies) {
  auto key = EcdhPrivateKey::FromPrivateBytes(EcdhCurve::kP256, H(kX));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  auto pub = key->PublicKey();
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(ToHex(*pub), kPub);
  auto sig = EcdsaP256SignSha256(*key, Msg("sample"));
  ASSERT_TRUE(sig.ok()) << sig.status().ToString();
  EXPECT_TRUE(EcdsaP256VerifySha256(*pub, Msg("sample"), *sig));
  EXPECT_FALSE(EcdsaP256VerifySha256(*pub, Msg("sample2"), *sig));
}

TEST(EcdsaP256, RefusesTamperedSignaturesOtherKeysAndBadSizes) {
  auto key = EcdhPrivateKey::Generate(EcdhCurve::kP256);
  auto other = EcdhPrivateKey::Generate(EcdhCurve::kP256);
  ASSERT_TRUE(key.ok() && other.ok());
  const std::string m = "cce-output-bundle-v1\njob-1\nsha256:00";
  auto sig = EcdsaP256SignSha256(*key, Msg(m));
  ASSERT_TRUE(sig.ok());
  const Bytes pub = key->PublicKey().value();
  ASSERT_TRUE(EcdsaP256VerifySha256(pub, Msg(m), *sig));
  EXPECT_FALSE(EcdsaP256VerifySha256(other->PublicKey().value(), Msg(m), *sig));
  for (size_t i : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
    auto bad = *sig;
    bad[i] ^= 0x01;
    EXPECT_FALSE(EcdsaP256VerifySha256(pub, Msg(m), bad)) << "byte " << i;
  }
  EXPECT_FALSE(EcdsaP256VerifySha256(pub, Msg(m), ByteSpan(*sig).first(63)));
  Bytes longer(sig->begin(), sig->end());
  longer.push_back(0);
  EXPECT_FALSE(EcdsaP256VerifySha256(pub, Msg(m), longer));
  // r = 0, s = 0, and r = s = n (the order) are never valid.
  EXPECT_FALSE(EcdsaP256VerifySha256(pub, Msg(m), Bytes(64, 0)));
  const Bytes n = H("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
  Bytes rn = n;
  rn.insert(rn.end(), n.begin(), n.end());
  EXPECT_FALSE(EcdsaP256VerifySha256(pub, Msg(m), rn));
  // s' = n - s verifies as ECDSA (malleability) but is a different string;
  // we do not rely on signature uniqueness, only on unforgeability.
  // A public key off the curve, or truncated.
  Bytes off = pub;
  off[64] ^= 0x01;
  EXPECT_FALSE(EcdsaP256VerifySha256(off, Msg(m), *sig));
  EXPECT_FALSE(EcdsaP256VerifySha256(ByteSpan(pub).first(33), Msg(m), *sig));
}

TEST(EcdsaP256, X25519KeyCannotSign) {
  auto key = EcdhPrivateKey::Generate(EcdhCurve::kX25519);
  ASSERT_TRUE(key.ok());
  auto sig = EcdsaP256SignSha256(*key, Msg("x"));
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(sig.status().code(), StatusCode::kInvalidArgument);
}

TEST(EcdsaP256, EphemeralKeyAndJwkPublicKeyWrapTheSamePair) {
  auto key = EphemeralKey::Generate(EcdhCurve::kP256);
  ASSERT_TRUE(key.ok());
  auto sig = key->SignEcdsaSha256(Msg("hello"));
  ASSERT_TRUE(sig.ok());
  auto jwk = JwkPublicKey::FromJwk(key->PublicJwk());
  ASSERT_TRUE(jwk.ok());
  EXPECT_TRUE(jwk->VerifyEcdsaSha256(Msg("hello"), *sig));
  EXPECT_FALSE(jwk->VerifyEcdsaSha256(Msg("hellO"), *sig));
}

// ---- interop with python3-cryptography (an independent implementation) ----

using ::cce::testing::TempDir;

// Runs python3 with `script`; returns its stdout (trimmed) and exit code.
std::pair<std::string, int> Python(const TempDir& dir, const std::string& script) {
  const std::string file = dir.path() + "/s.py";
  std::ofstream(file) << script;
  FILE* p = ::popen(("/usr/bin/python3 '" + file + "' 2>&1").c_str(), "r");
  if (p == nullptr) return {"popen failed", -1};
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return {out, rc};
}

constexpr std::string_view kPyPrelude = R"(
import sys
try:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature, decode_dss_signature
except ImportError as e:
    print("MISSING python3-cryptography (Debian package python3-cryptography): %s" % e)
    sys.exit(3)
)";

TEST(EcdsaP256, PythonCryptographyVerifiesOurSignatures) {
  TempDir dir("ecdsa-test");
  auto key = EcdhPrivateKey::Generate(EcdhCurve::kP256);
  ASSERT_TRUE(key.ok());
  const std::string m = "cce-output-bundle-v1\njob-x\nsha256:abc";
  auto sig = EcdsaP256SignSha256(*key, Msg(m));
  ASSERT_TRUE(sig.ok());
  const std::string script = std::string(kPyPrelude) +
                             "pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), "
                             "bytes.fromhex('" +
                             ToHex(key->PublicKey().value()) +
                             "'))\n"
                             "sig = bytes.fromhex('" +
                             ToHex(*sig) +
                             "')\n"
                             "der = encode_dss_signature(int.from_bytes(sig[:32], 'big'), "
                             "int.from_bytes(sig[32:], 'big'))\n"
                             "pub.verify(der, bytes.fromhex('" +
                             ToHex(Msg(m)) +
                             "'), ec.ECDSA(hashes.SHA256()))\n"
                             "print('OK')\n";
  auto [out, rc] = Python(dir, script);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "OK");
}

TEST(EcdsaP256, WeVerifyPythonCryptographySignatures) {
  TempDir dir("ecdsa-test");
  const std::string m = "cce-output-bundle-v1\njob-y\nsha256:def";
  const std::string script = std::string(kPyPrelude) +
                             "k = ec.generate_private_key(ec.SECP256R1())\n"
                             "from cryptography.hazmat.primitives import serialization\n"
                             "pub = k.public_key().public_bytes(serialization.Encoding.X962, "
                             "serialization.PublicFormat.UncompressedPoint)\n"
                             "r, s = decode_dss_signature(k.sign(bytes.fromhex('" +
                             ToHex(Msg(m)) +
                             "'), ec.ECDSA(hashes.SHA256())))\n"
                             "print(pub.hex() + ' ' + r.to_bytes(32, 'big').hex() + "
                             "s.to_bytes(32, 'big').hex())\n";
  auto [out, rc] = Python(dir, script);
  ASSERT_EQ(rc, 0) << out;
  const size_t sp = out.find(' ');
  ASSERT_NE(sp, std::string::npos) << out;
  const Bytes pub = H(out.substr(0, sp));
  const Bytes sig = H(out.substr(sp + 1));
  EXPECT_TRUE(EcdsaP256VerifySha256(pub, Msg(m), sig));
  EXPECT_FALSE(EcdsaP256VerifySha256(pub, Msg(m + "!"), sig));
}

}  // namespace
}  // namespace cce::crypto
