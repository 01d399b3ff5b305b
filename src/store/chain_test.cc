// Known-answer tests for the canonical encodings of docs/store.md (vectors
// computed by the independent Python implementation printed there) and unit
// tests of the chain verifiers over in-memory rows.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "store/chain_internal.h"
#include "store/store.h"

namespace cce::store {
namespace {

using crypto::Ed25519PrivateKey;
using crypto::FromHex;
using crypto::ToHex;

Bytes H(std::string_view hex) {
  auto r = FromHex(hex);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : Bytes{};
}

// RFC 8032 7.1 TEST 1 secret key.
Ed25519PrivateKey TestKey() {
  auto k = Ed25519PrivateKey::FromSeed(
      H("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  EXPECT_TRUE(k.ok());
  return std::move(k).value();
}

AuditRecord Record1() {
  return {
      1700000000,  "user:alice", "job.submit", "job:job-0123456789abcdef", AuditDecision::kAllow,
      R"({"n":1})"};
}
AuditRecord Record2() {
  return {1700000001,           "plane", "key.release", "job:job-0123456789abcdef",
          AuditDecision::kDeny, "{}"};
}

TEST(AuditEncoding, MatchesTheDocumentedVector) {
  EXPECT_EQ(ToHex(EncodeAuditEntry(1, Record1())),
            "00000011636365346c6f6e672f61756469742f76310000000000000001000000006553f1000000000a"
            "757365723a616c6963650000000a6a6f622e7375626d6974000000186a6f623a6a6f622d303132333435"
            "3637383961626364656600000005616c6c6f77000000077b226e223a317d");
}

TEST(AuditEncoding, ChainHashesMatchTheDocumentedVectors) {
  const Sha256Digest h1 = AuditEntryHash(Sha256Digest{}, 1, Record1());
  EXPECT_EQ(ToHex(h1), "c68f56ab18811b4c387733aa6b1db30b57c82c047b73399f244d56c4f823bb47");
  const Sha256Digest h2 = AuditEntryHash(h1, 2, Record2());
  EXPECT_EQ(ToHex(h2), "aac6f0e06804b749426a81018bcd9994a04b2568ba86018966976681967b8219");
}

TEST(AuditEncoding, CheckpointSignatureMatchesTheDocumentedVector) {
  const Sha256Digest h2 =
      AuditEntryHash(AuditEntryHash(Sha256Digest{}, 1, Record1()), 2, Record2());
  EXPECT_EQ(ToHex(AuditCheckpointMessage(2, h2, 1700000002)),
            "0000001c636365346c6f6e672f61756469742d636865636b706f696e742f763100000000000000"
            "02aac6f0e06804b749426a81018bcd9994a04b2568ba86018966976681967b8219000000006553f102");
  auto cp = SignAuditCheckpoint(TestKey(), AuditHead{2, h2}, 1700000002);
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  EXPECT_EQ(ToHex(cp->signature),
            "062b573650575fdffe1a407991dcda0fe8a8e8d6b1a0d0fc5a2ba69e118882128c0fa97fcabe02c91486"
            "724a4291b1a705513bbf0aa2e7ed5634cf1af6ba980f");
}

TEST(AuditEncoding, EveryFieldChangesTheHash) {
  const Sha256Digest base = AuditEntryHash(Sha256Digest{}, 1, Record1());
  std::vector<AuditRecord> variants(6, Record1());
  variants[0].at += 1;
  variants[1].actor += "x";
  variants[2].action += "x";
  variants[3].object += "x";
  variants[4].decision = AuditDecision::kDeny;
  variants[5].details_json = R"({"n":2})";
  for (size_t i = 0; i < variants.size(); ++i) {
    EXPECT_NE(AuditEntryHash(Sha256Digest{}, 1, variants[i]), base) << "field " << i;
  }
  EXPECT_NE(AuditEntryHash(Sha256Digest{}, 2, Record1()), base);
  Sha256Digest other_prev{};
  other_prev[31] = 1;
  EXPECT_NE(AuditEntryHash(other_prev, 1, Record1()), base);
}

TEST(AuditEncoding, LengthPrefixesKeepFieldBoundaries) {
  AuditRecord a = Record1();
  AuditRecord b = Record1();
  a.actor = "ab";
  a.action = "c";
  b.actor = "a";
  b.action = "bc";
  EXPECT_NE(EncodeAuditEntry(1, a), EncodeAuditEntry(1, b));
}

TEST(RentalEncoding, MatchesTheDocumentedVectors) {
  Rental r;
  r.seq = 1;
  r.dataset_id = 3;
  r.consumer_id = 7;
  r.start = 1700000000;
  r.end = 1700086400;
  r.created_at = 1699999999;
  EXPECT_EQ(ToHex(EncodeRental(r)),
            "00000012636365346c6f6e672f72656e74616c2f76310000000000000001000000000000000300000000"
            "00000007000000006553f1000000000065554280000000006553f0ff");
  const Sha256Digest h = RentalHash(Sha256Digest{}, r);
  EXPECT_EQ(ToHex(h), "cf1bc42538c0db73267be59eedb7c15099dfee65987d61e76408d7117ba4366f");
  auto sig = TestKey().Sign(RentalSignatureMessage(h));
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(ToHex(*sig),
            "8cb839a36f2d17c6912a728df4cd8250b08329eb6d24762766a4e1642c1acb916cf795dd47dba47cb8b8"
            "88672d8e83a6a7c40614989a2374b5536420074c3502");
  // The rental chain's checkpoint at seq 1 (at = created_at).
  EXPECT_EQ(ToHex(RentalCheckpointMessage(1, h, r.created_at)),
            "0000001d636365346c6f6e672f72656e74616c2d636865636b706f696e742f763100000000000000"
            "01cf1bc42538c0db73267be59eedb7c15099dfee65987d61e76408d7117ba4366f000000006553f0ff");
  auto cp_sig = TestKey().Sign(RentalCheckpointMessage(1, h, r.created_at));
  ASSERT_TRUE(cp_sig.ok());
  EXPECT_EQ(ToHex(*cp_sig),
            "a31fdd70de90d14f8c0d9ecc78ba1af6317db05a8dccd1fe13493376e0f9e7de3744fcd6331130e23d"
            "01ff78bbfcb9fb1e58bd2826094ee863e907f0842a1d0f");
}

// ---- Verifier over in-memory rows ------------------------------------------------

class AuditVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Sha256Digest prev{};
    for (int64_t seq = 1; seq <= 6; ++seq) {
      AuditEntry e;
      e.seq = seq;
      e.record = Record1();
      e.record.at += seq;
      e.prev_hash = prev;
      e.hash = AuditEntryHash(prev, seq, e.record);
      prev = e.hash;
      entries_.push_back(e);
    }
    for (int64_t seq : {3, 6}) {
      auto cp = SignAuditCheckpoint(key_, AuditHead{seq, entries_[seq - 1].hash}, 99);
      ASSERT_TRUE(cp.ok());
      checkpoints_.push_back(*cp);
    }
  }
  ChainReport Verify() {
    const auto pk = key_.PublicKey();
    return VerifyAuditEntries(entries_, checkpoints_, pk);
  }

  Ed25519PrivateKey key_ = TestKey();
  std::vector<AuditEntry> entries_;
  std::vector<AuditCheckpoint> checkpoints_;
};

TEST_F(AuditVerifierTest, AcceptsAnIntactChain) {
  ChainReport r = Verify();
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.entries_checked, 6);
  EXPECT_EQ(r.checkpoints_checked, 2);
  EXPECT_EQ(r.head.seq, 6);
  EXPECT_EQ(r.head.hash, entries_.back().hash);
}

TEST_F(AuditVerifierTest, AcceptsAnEmptyLog) {
  entries_.clear();
  checkpoints_.clear();
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditVerifierTest, NamesTheEditedEntry) {
  entries_[3].record.object = "job:other";
  ChainReport r = Verify();
  EXPECT_EQ(r.failure, ChainFailure::kEdited);
  EXPECT_EQ(r.first_bad_seq, 4);
  EXPECT_NE(r.reason.find("audit entry 4"), std::string::npos) << r.reason;
}

TEST_F(AuditVerifierTest, NamesTheMissingEntry) {
  entries_.erase(entries_.begin() + 2);
  ChainReport r = Verify();
  EXPECT_EQ(r.failure, ChainFailure::kMissing);
  EXPECT_EQ(r.first_bad_seq, 3);
}

TEST_F(AuditVerifierTest, DetectsEntriesSwappedWithTheirSeqs) {
  std::swap(entries_[1].seq, entries_[2].seq);
  std::swap(entries_[1], entries_[2]);  // read back in seq order
  ChainReport r = Verify();
  EXPECT_EQ(r.failure, ChainFailure::kReordered);
  EXPECT_EQ(r.first_bad_seq, 2);
}

TEST_F(AuditVerifierTest, DetectsAForgedCheckpoint) {
  checkpoints_[0].signature[5] ^= 1;
  ChainReport r = Verify();
  EXPECT_EQ(r.failure, ChainFailure::kBadSignature);
  EXPECT_EQ(r.first_bad_seq, 3);
}

TEST_F(AuditVerifierTest, DetectsARewrittenChainThroughItsCheckpoint) {
  // Edit entry 5 and recompute every later hash: only the signed checkpoint
  // at 6 can tell, and the damage is somewhere after the good one at 3.
  entries_[4].record.actor = "mallory";
  for (size_t i = 4; i < entries_.size(); ++i) {
    entries_[i].prev_hash = entries_[i - 1].hash;
    entries_[i].hash = AuditEntryHash(entries_[i].prev_hash, entries_[i].seq, entries_[i].record);
  }
  ChainReport r = Verify();
  EXPECT_EQ(r.failure, ChainFailure::kCheckpointMismatch);
  EXPECT_EQ(r.first_bad_seq, 4);
  EXPECT_NE(r.reason.find("checkpoint at seq 6"), std::string::npos) << r.reason;
}

TEST_F(AuditVerifierTest, DetectsTruncationBeforeASignedCheckpoint) {
  entries_.resize(4);
  ChainReport r = Verify();
  EXPECT_EQ(r.failure, ChainFailure::kTruncated);
  EXPECT_EQ(r.first_bad_seq, 5);
}

TEST_F(AuditVerifierTest, ReportsTheLowestBadSeq) {
  entries_[1].record.actor = "x";     // seq 2
  checkpoints_[0].signature[0] ^= 1;  // seq 3
  EXPECT_EQ(Verify().first_bad_seq, 2);
}

TEST_F(AuditVerifierTest, RejectsACheckpointSignedByAnotherKey) {
  auto other = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  auto cp = SignAuditCheckpoint(*other, AuditHead{3, entries_[2].hash}, 99);
  ASSERT_TRUE(cp.ok());
  checkpoints_[0] = *cp;
  EXPECT_EQ(Verify().failure, ChainFailure::kBadSignature);
}

TEST(RentalVerifier, AcceptsSignedChainAndRejectsBadSignature) {
  Ed25519PrivateKey key = TestKey();
  const auto pk = key.PublicKey();
  internal::RentalChainVerifier ok_verifier(pk);
  Rental r;
  r.seq = 1;
  r.dataset_id = 1;
  r.consumer_id = 2;
  r.start = 10;
  r.end = 20;
  r.hash = RentalHash(r.prev_hash, r);
  auto sig = key.Sign(RentalSignatureMessage(r.hash));
  ASSERT_TRUE(sig.ok());
  r.signature.assign(sig->begin(), sig->end());
  EXPECT_TRUE(ok_verifier.Add(r));
  EXPECT_TRUE(ok_verifier.Finish().ok());

  internal::RentalChainVerifier bad_verifier(pk);
  r.signature[0] ^= 1;
  EXPECT_FALSE(bad_verifier.Add(r));
  EXPECT_EQ(bad_verifier.Finish().failure, ChainFailure::kBadSignature);
}

// ---- Issue 10, finding 2: cut or forged chains ---------------------------------

TEST(RentalEncoding, CheckpointMessageIsDomainSeparatedFromTheAuditOne) {
  Sha256Digest h{};
  h[0] = 7;
  EXPECT_EQ(ToHex(RentalCheckpointMessage(2, h, 1700000002)).substr(0, 8 + 2 * 29),
            "0000001d" + ToHex(crypto::AsBytes("cce4long/rental-checkpoint/v1")));
  // An audit checkpoint signature never verifies as a rental one (and back).
  Ed25519PrivateKey key = TestKey();
  auto audit_cp = SignAuditCheckpoint(key, AuditHead{2, h}, 1700000002);
  ASSERT_TRUE(audit_cp.ok());
  const auto pk = key.PublicKey();
  EXPECT_FALSE(
      crypto::Ed25519Verify(pk, RentalCheckpointMessage(2, h, 1700000002), audit_cp->signature));
}

TEST_F(AuditVerifierTest, RequiresASignedGenesisWhenAsked) {
  // Finding 2: DELETE FROM audit_log; DELETE FROM audit_checkpoints verified
  // as "OK, 0 entries".
  const auto pk = key_.PublicKey();
  ChainReport empty = VerifyAuditEntries({}, {}, pk, /*require_genesis=*/true);
  EXPECT_EQ(empty.failure, ChainFailure::kNoGenesis) << empty.reason;
  EXPECT_EQ(empty.first_bad_seq, 1);
  // Entries without a checkpoint at seq 1: not this plane's genesis.
  ChainReport unsigned_genesis = VerifyAuditEntries(entries_, checkpoints_, pk, true);
  EXPECT_EQ(unsigned_genesis.failure, ChainFailure::kNoGenesis) << unsigned_genesis.reason;
  auto genesis = SignAuditCheckpoint(key_, AuditHead{1, entries_[0].hash}, 99);
  ASSERT_TRUE(genesis.ok());
  checkpoints_.push_back(*genesis);
  ChainReport ok = VerifyAuditEntries(entries_, checkpoints_, pk, true);
  EXPECT_TRUE(ok.ok()) << ok.reason;
  EXPECT_EQ(ok.signed_head, (AuditHead{6, entries_[5].hash}));
}

TEST_F(AuditVerifierTest, TailAndItsCheckpointsDeletedAreCaughtByAKeptCheckpoint) {
  // The database lost entries 5..6 and the checkpoint at 6; a copy of that
  // checkpoint kept outside the database (the checkpoint file) still names them.
  const AuditCheckpoint kept = checkpoints_[1];
  entries_.resize(4);
  checkpoints_.resize(1);
  EXPECT_TRUE(Verify().ok());  // what the database alone says
  checkpoints_.push_back(kept);
  ChainReport r = Verify();
  EXPECT_EQ(r.failure, ChainFailure::kTruncated) << r.reason;
  EXPECT_EQ(r.first_bad_seq, 5);
}

TEST_F(AuditVerifierTest, ARememberedHeadCatchesTruncationAndForks) {
  const AuditHead remembered{6, entries_[5].hash};
  auto hash_at = [&](int64_t seq) { return entries_[static_cast<size_t>(seq - 1)].hash; };
  ChainReport same = Verify();
  CheckAgainstRemembered(remembered, hash_at, &same);
  EXPECT_TRUE(same.ok()) << same.reason;

  entries_.resize(4);  // the tail and its checkpoint deleted
  checkpoints_.resize(1);
  ChainReport cut = Verify();
  ASSERT_TRUE(cut.ok());
  CheckAgainstRemembered(remembered, hash_at, &cut);
  EXPECT_EQ(cut.failure, ChainFailure::kWentBackwards) << cut.reason;
  EXPECT_EQ(cut.first_bad_seq, 5);
  EXPECT_NE(cut.reason.find("head went backwards"), std::string::npos) << cut.reason;

  // Rewritten from 5 on (hashes recomputed, new entries added): a fork at 6.
  for (int64_t seq = 5; seq <= 7; ++seq) {
    AuditEntry e;
    e.seq = seq;
    e.record = Record2();
    e.prev_hash = entries_.back().hash;
    e.hash = AuditEntryHash(e.prev_hash, seq, e.record);
    entries_.push_back(e);
  }
  ChainReport forked = Verify();
  ASSERT_TRUE(forked.ok()) << forked.reason;
  CheckAgainstRemembered(remembered, hash_at, &forked);
  EXPECT_EQ(forked.failure, ChainFailure::kForked) << forked.reason;
  EXPECT_EQ(forked.first_bad_seq, 6);
}

std::vector<Rental> SignedRentals(const Ed25519PrivateKey& key, int n,
                                  std::vector<AuditCheckpoint>* checkpoints) {
  std::vector<Rental> out;
  Sha256Digest prev{};
  for (int64_t seq = 1; seq <= n; ++seq) {
    Rental r;
    r.seq = seq;
    r.dataset_id = 1;
    r.consumer_id = 2;
    r.start = 10 * seq;
    r.end = 10 * seq + 10;
    r.created_at = 5;
    r.prev_hash = prev;
    r.hash = RentalHash(prev, r);
    auto sig = key.Sign(RentalSignatureMessage(r.hash));
    EXPECT_TRUE(sig.ok());
    r.signature.assign(sig->begin(), sig->end());
    auto cp_sig = key.Sign(RentalCheckpointMessage(seq, r.hash, r.created_at));
    EXPECT_TRUE(cp_sig.ok());
    checkpoints->push_back({seq, r.hash, Bytes(cp_sig->begin(), cp_sig->end()), r.created_at});
    prev = r.hash;
    out.push_back(r);
  }
  return out;
}

TEST(RentalVerifier, DeletingTheLastRentalIsCaughtByItsCheckpoint) {
  Ed25519PrivateKey key = TestKey();
  const auto pk = key.PublicKey();
  std::vector<AuditCheckpoint> cps;
  std::vector<Rental> rentals = SignedRentals(key, 3, &cps);
  ChainReport whole = VerifyRentalEntries(rentals, cps, pk);
  EXPECT_TRUE(whole.ok()) << whole.reason;
  EXPECT_EQ(whole.checkpoints_checked, 3);
  rentals.pop_back();
  ChainReport cut = VerifyRentalEntries(rentals, cps, pk);
  EXPECT_EQ(cut.failure, ChainFailure::kTruncated) << cut.reason;
  EXPECT_EQ(cut.first_bad_seq, 3);
  // An audit checkpoint replayed as a rental one does not verify.
  auto replay = SignAuditCheckpoint(key, AuditHead{3, cps[2].hash}, cps[2].at);
  ASSERT_TRUE(replay.ok());
  rentals = SignedRentals(key, 3, &cps);
  std::vector<AuditCheckpoint> replayed = {*replay};
  EXPECT_EQ(VerifyRentalEntries(rentals, replayed, pk).failure, ChainFailure::kBadSignature);
}

TEST(RentalVerifier, ARowIsSignedOnlyWithAHashAndSignatureOfItsOwn) {
  Ed25519PrivateKey key = TestKey();
  const auto pk = key.PublicKey();
  std::vector<AuditCheckpoint> cps;
  std::vector<Rental> rentals = SignedRentals(key, 2, &cps);
  EXPECT_TRUE(RentalRowIsSigned(rentals[1], pk));
  Rental forged = rentals[1];
  forged.consumer_id = 9;  // someone else's rental, copied
  EXPECT_FALSE(RentalRowIsSigned(forged, pk));
  forged.hash = RentalHash(forged.prev_hash, forged);  // re-hashed, old signature
  EXPECT_FALSE(RentalRowIsSigned(forged, pk));
  Rental zero = rentals[1];  // the finding's row: zero hash, zero signature
  zero.hash = Sha256Digest{};
  zero.signature.assign(64, 0);
  EXPECT_FALSE(RentalRowIsSigned(zero, pk));
}

TEST(CheckpointFile, RoundTripsAndNamesABadLine) {
  const std::string path = testing::TempDir() + "cce-checkpoints-" + std::to_string(::getpid());
  std::remove(path.c_str());
  auto none = ReadCheckpointFile(path);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->audit.empty());
  Ed25519PrivateKey key = TestKey();
  auto cp =
      SignAuditCheckpoint(key, AuditHead{3, AuditEntryHash(Sha256Digest{}, 1, Record1())}, 42);
  ASSERT_TRUE(cp.ok());
  ASSERT_TRUE(AppendCheckpointFile(path, Chain::kAudit, *cp).ok());
  ASSERT_TRUE(AppendCheckpointFile(path, Chain::kRentals, *cp).ok());
  auto read = ReadCheckpointFile(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->audit.size(), 1u);
  ASSERT_EQ(read->rentals.size(), 1u);
  EXPECT_EQ(read->audit[0], *cp);
  {
    std::ofstream out(path, std::ios::app);
    out << "audit 4 nothex 1 00\n";
  }
  auto bad = ReadCheckpointFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find(":3: hash"), std::string::npos) << bad.status().message();
  std::remove(path.c_str());
}

}  // namespace
}  // namespace cce::store
