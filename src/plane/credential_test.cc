#include "plane/credential.h"

#include <gtest/gtest.h>

namespace cce::plane {
namespace {

JobCredentialClaims Claims() {
  JobCredentialClaims c;
  c.credential_id = "cred-" + std::string(32, 'a');
  c.job_id = "job-0123456789abcdef";
  c.consumer = "carol";
  c.datasets = {"claims", "labs"};
  c.image_digest = "sha256:" + std::string(64, 'b');
  c.issued_at = 1000;
  c.expires_at = 2000;
  return c;
}

TEST(JobCredential, RoundTripsWithinItsWindowOnly) {
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto token = SignJobCredential(Claims(), *key);
  ASSERT_TRUE(token.ok());
  auto back = VerifyJobCredential(*token, key->PublicKey(), 1500);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, Claims());
  EXPECT_EQ(VerifyJobCredential(*token, key->PublicKey(), 2000).status().message(),
            "credential: expired");
  EXPECT_EQ(VerifyJobCredential(*token, key->PublicKey(), 999).status().message(),
            "credential: not valid yet");
}

TEST(JobCredential, RejectsForgeriesAndTampering) {
  auto key = crypto::Ed25519PrivateKey::Generate();
  auto other = crypto::Ed25519PrivateKey::Generate();
  auto token = SignJobCredential(Claims(), *key);
  ASSERT_TRUE(token.ok());
  // Signed by another key.
  EXPECT_FALSE(
      VerifyJobCredential(*SignJobCredential(Claims(), *other), key->PublicKey(), 1500).ok());
  // Any changed character of the payload or signature.
  for (size_t i = 12; i < token->size(); i += 7) {
    std::string t = *token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(VerifyJobCredential(t, key->PublicKey(), 1500).ok()) << i;
  }
  EXPECT_FALSE(VerifyJobCredential("garbage", key->PublicKey(), 1500).ok());
  EXPECT_FALSE(
      VerifyJobCredential(token->substr(0, token->rfind('.')), key->PublicKey(), 1500).ok());
}

TEST(KbsSession, RoundTripsAndIsNotInterchangeableWithACredential) {
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  KbsSessionClaims c;
  c.job_id = "job-0123456789abcdef";
  c.credential_id = "cred-" + std::string(32, 'a');
  c.datasets = {"claims"};
  c.tee_public_jwk =
      R"({"crv":"X25519","kty":"OKP","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"})";
  c.issued_at = 1000;
  c.expires_at = 1300;
  c.simulated_tee = true;
  auto token = SignKbsSession(c, *key);
  ASSERT_TRUE(token.ok());
  auto back = VerifyKbsSession(*token, key->PublicKey(), 1299);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, c);
  EXPECT_EQ(VerifyKbsSession(*token, key->PublicKey(), 1300).status().message(),
            "session: expired");
  for (size_t i = 11; i < token->size(); i += 5) {
    std::string t = *token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(VerifyKbsSession(t, key->PublicKey(), 1100).ok()) << i;
  }
  // A credential is not a session and a session is not a credential, even
  // though the plane signs both with the same key.
  auto cred = SignJobCredential(Claims(), *key);
  ASSERT_TRUE(cred.ok());
  EXPECT_FALSE(VerifyKbsSession(*cred, key->PublicKey(), 1500).ok());
  EXPECT_FALSE(VerifyJobCredential(*token, key->PublicKey(), 1100).ok());
}

// The verified-token cache skips only the signature check: a cached token
// still gets its time window checked, a changed token or another plane key
// is verified afresh (and fails), and the cache stays bounded.
TEST(Ed25519Memo, TokensSkipOnlyTheSignatureAndTheMemoStaysBounded) {
  crypto::Ed25519MemoClearForTest();
  auto key = crypto::Ed25519PrivateKey::Generate();
  auto other = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok() && other.ok());
  auto token = SignJobCredential(Claims(), *key);  // signing remembers it
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(crypto::Ed25519MemoSizeForTest(), 1u);
  ASSERT_TRUE(VerifyJobCredential(*token, key->PublicKey(), 1500).ok());
  EXPECT_EQ(crypto::Ed25519MemoSizeForTest(), 1u);  // a hit adds nothing
  // Cached, yet outside its window: refused.
  EXPECT_EQ(VerifyJobCredential(*token, key->PublicKey(), 2000).status().message(),
            "credential: expired");
  // Cached under `key`: presented for another plane key, verified and refused.
  EXPECT_EQ(VerifyJobCredential(*token, other->PublicKey(), 1500).status().message(),
            "credential: signature does not verify");
  // Tampered after it was cached: a different entry, verified, refused.
  std::string t = *token;
  t[20] = t[20] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyJobCredential(t, key->PublicKey(), 1500).ok());
  // A credential token never passes as a session, cached or not.
  EXPECT_FALSE(VerifyKbsSession(*token, key->PublicKey(), 1500).ok());
  // A token verified by another process's signature (not signed here) is
  // remembered after its first successful check.
  crypto::Ed25519MemoClearForTest();
  ASSERT_TRUE(VerifyJobCredential(*token, key->PublicKey(), 1500).ok());
  EXPECT_EQ(crypto::Ed25519MemoSizeForTest(), 1u);
  // Bounded: emptied when full, never above the limit.
  JobCredentialClaims c = Claims();
  for (size_t i = 0; i < crypto::kEd25519MemoEntries + 10; ++i) {
    c.job_id = "job-" + std::to_string(i);
    ASSERT_TRUE(SignJobCredential(c, *key).ok());
    EXPECT_LE(crypto::Ed25519MemoSizeForTest(), crypto::kEd25519MemoEntries);
  }
  EXPECT_LT(crypto::Ed25519MemoSizeForTest(), crypto::kEd25519MemoEntries);
  crypto::Ed25519MemoClearForTest();
}

}  // namespace
}  // namespace cce::plane
