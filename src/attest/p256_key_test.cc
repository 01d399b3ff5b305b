// The imported-key cache of p256_key.h: keyed by the exact point, bounded,
// and never a substitute for verification.
#include "attest/p256_key.h"

#include <gtest/gtest.h>

#include "attest/test_util.h"
#include "crypto/x509.h"

namespace cce::attest {
namespace {

using testing::Must;

TEST(P256PublicKey, VerifiesWithTheKeyOfTheExactPointOnly) {
  const crypto::EcP256KeyPair a = Must(crypto::GenerateEcP256KeyPair());
  const crypto::EcP256KeyPair b = Must(crypto::GenerateEcP256KeyPair());
  const std::string msg = "quote body";
  const crypto::Bytes sig = Must(crypto::SignEcdsaP256Sha256(
      a.private_key_pem, crypto::AsBytes(msg), crypto::SignatureEncoding::kRawRS));
  for (int i = 0; i < 2; ++i) {  // the second time from the cache
    auto ka = Must(P256PublicKey::ImportCached(a.public_key));
    auto kb = Must(P256PublicKey::ImportCached(b.public_key));
    EXPECT_TRUE(Must(ka->VerifyRawRs(crypto::AsBytes(msg), sig)));
    EXPECT_FALSE(Must(kb->VerifyRawRs(crypto::AsBytes(msg), sig)));
    crypto::Bytes bad = sig;
    bad[5] ^= 1;
    EXPECT_FALSE(Must(ka->VerifyRawRs(crypto::AsBytes(msg), bad)));
    EXPECT_FALSE(Must(ka->VerifyRawRs(crypto::AsBytes(std::string("quote bodY")), sig)));
    EXPECT_FALSE(ka->VerifyRawRs(crypto::AsBytes(msg), crypto::ByteSpan(sig).first(63)).ok());
    // r = s = 0 and r = s = 0xff..ff (>= n) are well-formed answers: false.
    EXPECT_FALSE(Must(ka->VerifyRawRs(crypto::AsBytes(msg), crypto::Bytes(64, 0))));
    EXPECT_FALSE(Must(ka->VerifyRawRs(crypto::AsBytes(msg), crypto::Bytes(64, 0xff))));
  }
  // A point off the curve is refused and not kept.
  crypto::EcP256PublicKey off = a.public_key;
  off[64] ^= 1;
  const size_t before = P256PublicKey::CachedForTesting();
  auto r = P256PublicKey::ImportCached(off);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(P256PublicKey::CachedForTesting(), before);
  EXPECT_FALSE(P256PublicKey::ImportCached(crypto::ByteSpan(a.public_key).first(64)).ok());
}

TEST(P256PublicKey, TheCacheIsBounded) {
  for (size_t i = 0; i < P256PublicKey::kCacheEntries + 8; ++i) {
    const crypto::EcP256KeyPair k = Must(crypto::GenerateEcP256KeyPair());
    Must(P256PublicKey::ImportCached(k.public_key));
    ASSERT_LE(P256PublicKey::CachedForTesting(), P256PublicKey::kCacheEntries);
  }
}

}  // namespace
}  // namespace cce::attest
