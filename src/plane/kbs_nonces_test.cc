// The key broker's in-memory nonce table: single use, expiry, job binding,
// the per-credential cap and the table's own bound under a flood, and many
// threads racing for one nonce. kbs_test.cc checks that a restart forgets
// every nonce (the plane over HTTPS, stopped and started again).
#include "plane/kbs_nonces.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace cce::plane {
namespace {

KbsNonceEntry Nonce(const std::string& n, const std::string& credential = "cred-1",
                    int64_t at = 1000, int64_t ttl = 60) {
  return {n, "job-1", credential, at, at + ttl};
}

bool Contains(const Status& s, std::string_view what) {
  return s.message().find(what) != std::string::npos;
}

TEST(KbsNonceTable, ANonceIsUsedOnce) {
  KbsNonceTable t(100);
  ASSERT_TRUE(t.Issue(Nonce("n-1"), 8).ok());
  auto used = t.Consume("n-1", "job-1", 1010);
  ASSERT_TRUE(used.ok()) << used.status().message();
  EXPECT_EQ(used->credential_id, "cred-1");
  EXPECT_EQ(used->issued_at, 1000);
  auto again = t.Consume("n-1", "job-1", 1011);
  EXPECT_EQ(again.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(again.status(), "already used")) << again.status().message();
  EXPECT_EQ(t.size(), 0u);
  // Never issued; a prefix or extension of an issued one is another nonce.
  ASSERT_TRUE(t.Issue(Nonce("n-2"), 8).ok());
  EXPECT_EQ(t.Consume("n-9", "job-1", 1010).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(t.Consume("n-", "job-1", 1010).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(t.Consume("n-22", "job-1", 1010).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(t.Issue(Nonce("n-2"), 8).code(), StatusCode::kAlreadyExists);
}

TEST(KbsNonceTable, ANonceExpires) {
  KbsNonceTable t(100);
  ASSERT_TRUE(t.Issue(Nonce("n-1"), 8).ok());
  ASSERT_TRUE(t.Issue(Nonce("n-2"), 8).ok());
  ASSERT_TRUE(t.Issue(Nonce("n-3", "cred-1", 1005), 8).ok());
  EXPECT_TRUE(t.Consume("n-1", "job-1", 1059).ok());  // the last second it is valid
  auto late = t.Consume("n-2", "job-1", 1060);        // expires_at is exclusive
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(late.status(), "expired at 1060")) << late.status().message();
  EXPECT_EQ(t.Consume("n-2", "job-1", 1010).status().code(), StatusCode::kNotFound);  // gone
  // Not yet valid (a clock stepped back): refused, and kept.
  EXPECT_EQ(t.Consume("n-3", "job-1", 1004).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(t.size(), 1u);
  // The next Issue drops what expired by its time.
  ASSERT_TRUE(t.Issue(Nonce("n-4", "cred-2", 1065), 8).ok());
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.Consume("n-3", "job-1", 1066).status().code(), StatusCode::kNotFound);
}

TEST(KbsNonceTable, ANonceIsBoundToItsJobAndAnotherJobCannotSpendIt) {
  KbsNonceTable t(100);
  ASSERT_TRUE(t.Issue(Nonce("n-1"), 8).ok());
  auto other = t.Consume("n-1", "job-2", 1010);
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(other.status(), "another job")) << other.status().message();
  EXPECT_TRUE(t.Consume("n-1", "job-1", 1010).ok());
}

TEST(KbsNonceTable, ACredentialHoldsAtMostItsCap) {
  KbsNonceTable t(100);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(t.Issue(Nonce("a-" + std::to_string(i)), 3).ok());
  Status over = t.Issue(Nonce("a-3"), 3);
  EXPECT_EQ(over.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(over, "cred-1 already holds 3")) << over.message();
  // Another credential is not affected.
  EXPECT_TRUE(t.Issue(Nonce("b-0", "cred-2"), 3).ok());
  // A used nonce no longer counts; nor do expired ones.
  ASSERT_TRUE(t.Consume("a-0", "job-1", 1001).ok());
  EXPECT_TRUE(t.Issue(Nonce("a-3"), 3).ok());
  EXPECT_EQ(t.Issue(Nonce("a-4"), 3).code(), StatusCode::kResourceExhausted);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(t.Issue(Nonce("c-" + std::to_string(i), "cred-1", 1060), 3).ok()) << i;
  }
}

TEST(KbsNonceTable, AFloodOfCredentialsIsBoundedByTheTable) {
  KbsNonceTable t(50);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(t.Issue(Nonce("n-" + std::to_string(i), "cred-" + std::to_string(i)), 8).ok());
  }
  Status full = t.Issue(Nonce("n-50", "cred-50"), 8);
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(full, "its limit")) << full.message();
  EXPECT_EQ(t.size(), 50u);
  // Once the flood's nonces expire they are dropped and the table serves again.
  EXPECT_TRUE(t.Issue(Nonce("n-51", "cred-51", 1060), 8).ok());
  EXPECT_EQ(t.size(), 1u);
}

TEST(KbsNonceTable, RacingThreadsSpendANonceOnce) {
  KbsNonceTable t(1000);
  for (int round = 0; round < 50; ++round) {
    const std::string n = "n-" + std::to_string(round);
    ASSERT_TRUE(t.Issue(Nonce(n), 8).ok());
    std::atomic<int> wins{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        if (t.Consume(n, "job-1", 1010).ok()) ++wins;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wins.load(), 1) << n;
  }
}

TEST(KbsNonceTable, RefusesMalformedNonces) {
  KbsNonceTable t(10);
  EXPECT_EQ(t.Issue(Nonce(""), 8).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.Issue(Nonce("n", "cred-1", 1000, 0), 8).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.Issue(Nonce("n"), 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace cce::plane
