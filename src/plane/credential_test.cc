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

store::Job MintableJob() {
  store::Job job;
  job.id = "job-0123456789abcdef";
  job.consumer_id = 7;
  job.datasets = {"claims", "labs"};
  job.image_digest = "sha256:" + std::string(64, 'b');
  job.deadline = 5000;
  return job;
}

// What both issuers (the engine, `cce-plane job credential`) mint: claims
// from the job, a row that agrees with them, a token that verifies to them.
TEST(MintJobCredential, ClaimsRowAndTokenAgree) {
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  const store::Job job = MintableJob();
  auto m = MintJobCredential(job, "carol", 1000, 600, CredentialExpiry::kTtl, *key);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->claims.credential_id.size(), 5u + 32u);
  EXPECT_EQ(m->claims.credential_id.rfind("cred-", 0), 0u);
  EXPECT_EQ(m->claims.credential_id.find_first_not_of("0123456789abcdef", 5), std::string::npos);
  EXPECT_EQ(m->claims.job_id, job.id);
  EXPECT_EQ(m->claims.consumer, "carol");
  EXPECT_EQ(m->claims.datasets, job.datasets);
  EXPECT_EQ(m->claims.image_digest, job.image_digest);
  EXPECT_EQ(m->claims.issued_at, 1000);
  EXPECT_EQ(m->claims.expires_at, 1600);
  EXPECT_FALSE(m->claims.simulated_tee);
  const store::JobCredential want_row{m->claims.credential_id, job.id, 1000, 1600, std::nullopt};
  EXPECT_EQ(m->row, want_row);
  auto back = VerifyJobCredential(m->token, key->PublicKey(), 1000);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, m->claims);
  // Ids are random: a second credential for the same job is another one.
  auto again = MintJobCredential(job, "carol", 1000, 600, CredentialExpiry::kTtl, *key);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->claims.credential_id, m->claims.credential_id);
  // kTtl does not look at the deadline (the engine fails overdue jobs itself).
  auto late = MintJobCredential(job, "carol", 4900, 600, CredentialExpiry::kTtl, *key);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->claims.expires_at, 5500);
  EXPECT_EQ(MintJobCredential(job, "carol", 1000, 0, CredentialExpiry::kTtl, *key).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(MintJobCredential, WithinDeadlineClampsAndRefusesAPastDeadline) {
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  const store::Job job = MintableJob();  // deadline 5000
  // Far from the deadline: the ttl decides.
  auto early =
      MintJobCredential(job, "carol", 1000, 600, CredentialExpiry::kTtlWithinDeadline, *key);
  ASSERT_TRUE(early.ok()) << early.status().message();
  EXPECT_EQ(early->claims.expires_at, 1600);
  // Near it: clamped to the deadline, in the claims, the row and the token.
  auto near =
      MintJobCredential(job, "carol", 4900, 600, CredentialExpiry::kTtlWithinDeadline, *key);
  ASSERT_TRUE(near.ok()) << near.status().message();
  EXPECT_EQ(near->claims.expires_at, 5000);
  EXPECT_EQ(near->row.expires_at, 5000);
  auto back = VerifyJobCredential(near->token, key->PublicKey(), 4999);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->expires_at, 5000);
  EXPECT_EQ(VerifyJobCredential(near->token, key->PublicKey(), 5000).status().message(),
            "credential: expired");
  // At or past the deadline: refused, nothing minted.
  for (int64_t now : {int64_t{5000}, int64_t{6000}}) {
    auto past =
        MintJobCredential(job, "carol", now, 600, CredentialExpiry::kTtlWithinDeadline, *key);
    EXPECT_EQ(past.status().code(), StatusCode::kFailedPrecondition) << now;
    EXPECT_EQ(past.status().message(), "job job-0123456789abcdef is past its deadline") << now;
  }
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
  const crypto::HmacSha256 mac = KbsSessionMac(*key);
  auto token = SignKbsSession(c, mac);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->rfind("cce-kbs-v2.", 0), 0u);
  auto back = VerifyKbsSession(*token, mac, 1299);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, c);
  EXPECT_EQ(VerifyKbsSession(*token, mac, 1300).status().message(), "session: expired");
  // The MAC key is derived from the signing key: the same key after a
  // restart checks it; any other plane's key does not.
  auto again = crypto::Ed25519PrivateKey::FromSeed(key->Seed()->span());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(VerifyKbsSession(*token, KbsSessionMac(*again), 1100).ok());
  auto other = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(VerifyKbsSession(*token, KbsSessionMac(*other), 1100).status().message(),
            "session: signature does not verify");
  for (size_t i = 11; i < token->size(); i += 5) {
    std::string t = *token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(VerifyKbsSession(t, mac, 1100).ok()) << i;
  }
  // A credential is not a session and a session is not a credential, even
  // though both are made from the same key.
  auto cred = SignJobCredential(Claims(), *key);
  ASSERT_TRUE(cred.ok());
  EXPECT_FALSE(VerifyKbsSession(*cred, mac, 1500).ok());
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
  EXPECT_FALSE(VerifyKbsSession(*token, KbsSessionMac(*key), 1500).ok());
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
