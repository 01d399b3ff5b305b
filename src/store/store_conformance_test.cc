// The Store conformance suite: every backend must pass it unchanged. It is a
// type-parameterized googletest suite over a factory (see
// sqlite_test_factory.h for the members a factory provides); the bottom of
// this file instantiates it for SQLite, with group commit and with one
// transaction per write. A PostgreSQL factory adds one INSTANTIATE line.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "crypto/crypto.h"
#include "store/sqlite_test_factory.h"
#include "store/store.h"

namespace cce::store {
namespace {

using crypto::Ed25519PrivateKey;

// Helpers throw on error: googletest reports the exception as a failure of
// the test (and SetUp), which keeps the happy paths flat.
template <typename T>
T Must(StatusOr<T> r, std::string_view what = "") {
  if (!r.ok()) throw std::runtime_error(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}
void MustOk(const Status& s, std::string_view what = "") {
  if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.ToString());
}

Sha256Digest TokenHash(std::string_view token) {
  return crypto::Sha256(crypto::AsBytes(token));
}

std::string Digest(char c) {
  return "sha256:" + std::string(64, c);
}

AuditRecord Audit(std::string action, std::string object,
                  AuditDecision decision = AuditDecision::kAllow, int64_t at = 1000) {
  return {at, "user:test", std::move(action), std::move(object), decision, R"({"why":"test"})"};
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

template <typename Factory>
class StoreConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = Must(factory_.Open(), "open store"); }

  Store& S() { return *store_; }
  const Factory& F() const { return factory_; }
  void Reopen() {
    store_.reset();
    store_ = Must(factory_.Open(), "reopen store");
  }
  std::array<uint8_t, 32> PublicKey() const { return key_.PublicKey(); }

  User AddUser(const std::string& name, Role role = Role::kConsumer) {
    User u;
    u.name = name;
    u.role = role;
    u.token_hash = TokenHash("token-" + name);
    u.created_at = 100;
    return Must(S().CreateUser(u, Audit("user.add", "user:" + name)), "create user " + name);
  }

  Dataset NewDataset(const std::string& name, int64_t owner) {
    Dataset d;
    d.name = name;
    d.owner_id = owner;
    d.location = "file:///data/" + name;
    d.description = "claims 2019-2023";
    d.price = "12.50";
    d.max_days = 30;
    d.key_id = "00112233445566778899aabbccddeeff";
    d.wrapped_key = {0x00, 0x01, 0x00, 0xff, 0x10};
    d.manifest_dataset_id = "0123456789abcdef0123456789abcdef";
    d.manifest_version = 3;
    d.created_at = 200;
    return d;
  }
  Dataset AddDataset(const std::string& name, int64_t owner) {
    return Must(S().CreateDataset(NewDataset(name, owner), Audit("dataset.register", name)),
                "create dataset " + name);
  }

  static Job NewJob(int64_t consumer, const std::string& id, const std::string& key = "",
                    std::string_view body = "body") {
    Job j;
    j.id = id;
    j.consumer_id = consumer;
    j.name = "cohort-stats";
    j.spec_json = R"({"image":"x","command":["python3"]})";
    j.image_digest = Digest('a');
    j.reason = "submitted";
    j.idempotency_key = key;
    j.request_hash = crypto::Sha256(crypto::AsBytes(body));
    j.created_at = 300;
    j.deadline = 4000;
    j.flags = kJobFlagSimulatedTee;
    j.datasets = {"claims", "labs-2026"};
    j.timeout_seconds = 3700;
    return j;
  }
  Job SubmitJob(int64_t consumer, const std::string& id, const std::string& key = "") {
    auto r = Must(S().CreateJob(NewJob(consumer, id, key), Audit("job.submit", "job:" + id)),
                  "create job " + id);
    return r.job;
  }
  Job Move(const std::string& id, JobState from, JobState to) {
    return Must(S().TransitionJob(id, from, to, "because " + std::string(JobStateName(to)),
                                  Audit("job.transition", "job:" + id)),
                "transition " + id);
  }
  // Drives a fresh job to OUTPUT_SUBMITTED with a stored output.
  Job JobWithOutput(int64_t consumer, const std::string& id) {
    SubmitJob(consumer, id);
    const JobState path[] = {JobState::kSubmitted,    JobState::kAuthorized,
                             JobState::kProvisioning, JobState::kAttested,
                             JobState::kRunning,      JobState::kOutputSubmitted};
    for (size_t i = 0; i + 1 < std::size(path); ++i) Move(id, path[i], path[i + 1]);
    Output o;
    o.job_id = id;
    o.blob_ref = "outputs/" + id;
    o.size = 1234;
    o.digest = Digest('b');
    o.created_at = 500;
    MustOk(S().PutOutput(o, Audit("output.submit", "job:" + id)), "put output");
    return Must(S().GetJob(id));
  }

  static Review NewReview(const std::string& job, int64_t reviewer,
                          ReviewDecision decision = ReviewDecision::kApprove) {
    Review r;
    r.job_id = job;
    r.reviewer_id = reviewer;
    r.decision = decision;
    r.reason = "aggregates only";
    r.at = 700;
    return r;
  }
  // A job of `consumer` HELD with a "hold" gate verdict, ready for review.
  Job HeldJob(int64_t consumer, const std::string& id) {
    JobWithOutput(consumer, id);
    Must(S().SetGateVerdict(id, GateVerdict::kHold, 0.8, R"([{"detector":"x"}])", 600,
                            Audit("gate.verdict", "job:" + id)));
    return Move(id, JobState::kOutputSubmitted, JobState::kHeld);
  }
  StatusOr<ReviewOutcome> Decide(const std::string& job, int64_t reviewer, ReviewDecision decision,
                                 int64_t required = 1) {
    return S().RecordReview(NewReview(job, reviewer, decision), required, "reviewed",
                            Audit("review.decide", "job:" + job),
                            Audit("job.review_move", "job:" + job));
  }

  int64_t AuditCount() { return Must(S().GetAuditHead()).seq; }
  std::vector<AuditEntry> AllAudit() {
    AuditFilter f;
    f.limit = 10000;
    return Must(S().ListAudit(f));
  }
  ChainReport VerifyAuditLog() { return Must(VerifyAudit(S(), PublicKey()), "verify audit"); }
  ChainReport VerifyRentals() {
    return Must(VerifyRentalChain(S(), PublicKey()), "verify rentals");
  }
  void Checkpoint(int64_t at = 5000) {
    MustOk(S().AddCheckpoint(Must(SignAuditCheckpoint(key_, Must(S().GetAuditHead()), at))),
           "checkpoint");
  }
  // Ten audit entries with checkpoints at 4 and 8.
  void AuditLogOfTen() {
    for (int i = 1; i <= 10; ++i) {
      Must(S().AppendAudit(
          Audit("action." + std::to_string(i), "object", AuditDecision::kAllow, 1000 + i)));
      if (i == 4 || i == 8) Checkpoint(2000 + i);
    }
  }
  RentalSigner Signer() {
    return [this](ByteSpan message) -> StatusOr<Bytes> {
      ASSIGN_OR_RETURN(auto sig, key_.Sign(message));
      return Bytes(sig.begin(), sig.end());
    };
  }
  Rental NewRental(int64_t dataset, int64_t consumer, int64_t start = 1000,
                   int64_t end = 1000 + 86400) {
    Rental r;
    r.dataset_id = dataset;
    r.consumer_id = consumer;
    r.start = start;
    r.end = end;
    r.created_at = 999;
    return r;
  }
  Rental Rent(int64_t dataset, int64_t consumer, int64_t start = 1000) {
    return Must(S().AppendRental(NewRental(dataset, consumer, start), Signer(),
                                 Audit("rental.create", "dataset:" + std::to_string(dataset))),
                "rent");
  }

  Factory factory_;
  std::unique_ptr<Store> store_;
  Ed25519PrivateKey key_ = Must(Ed25519PrivateKey::Generate());
};

TYPED_TEST_SUITE_P(StoreConformanceTest);

// ==== Users ======================================================================

TYPED_TEST_P(StoreConformanceTest, CreatesUserAndFindsItByIdNameAndTokenHash) {
  User u = this->AddUser("alice", Role::kProvider);
  EXPECT_GT(u.id, 0);
  EXPECT_EQ(u.name, "alice");
  EXPECT_EQ(Must(this->S().GetUser(u.id)), u);
  EXPECT_EQ(Must(this->S().GetUserByName("alice")), u);
  EXPECT_EQ(Must(this->S().GetUserByTokenHash(TokenHash("token-alice"))), u);
  EXPECT_EQ(u.role, Role::kProvider);
  EXPECT_EQ(u.created_at, 100);
  EXPECT_FALSE(u.disabled);
}

TYPED_TEST_P(StoreConformanceTest, RejectsDuplicateUserNameAndTokenHash) {
  this->AddUser("alice");
  User dup;
  dup.name = "alice";
  dup.token_hash = TokenHash("another");
  auto r = this->S().CreateUser(dup, Audit("user.add", "user:alice"));
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(Contains(r.status().message(), "alice")) << r.status().message();
  dup.name = "bob";
  dup.token_hash = TokenHash("token-alice");
  EXPECT_EQ(this->S().CreateUser(dup, Audit("user.add", "user:bob")).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(Must(this->S().ListUsers()).size(), 1u);
  EXPECT_EQ(this->AuditCount(), 1);
}

TYPED_TEST_P(StoreConformanceTest, RejectsInvalidUserInputWithoutWriting) {
  User u;
  u.token_hash = TokenHash("t");
  EXPECT_EQ(this->S().CreateUser(u, Audit("user.add", "user:")).status().code(),
            StatusCode::kInvalidArgument);
  u.name = "carol";
  AuditRecord no_actor = Audit("user.add", "user:carol");
  no_actor.actor.clear();
  EXPECT_EQ(this->S().CreateUser(u, no_actor).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Must(this->S().ListUsers()).empty());
  EXPECT_EQ(this->AuditCount(), 0);
}

TYPED_TEST_P(StoreConformanceTest, UnknownUserIsNotFound) {
  EXPECT_EQ(this->S().GetUser(42).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->S().GetUserByName("nobody").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->S().GetUserByTokenHash(TokenHash("nope")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->S().SetUserDisabled(42, true, Audit("user.disable", "user:42")).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(this->AuditCount(), 0);
}

TYPED_TEST_P(StoreConformanceTest, DisablesAndReenablesAUser) {
  User u = this->AddUser("dave");
  MustOk(this->S().SetUserDisabled(u.id, true, Audit("user.disable", "user:dave")));
  EXPECT_TRUE(Must(this->S().GetUserByTokenHash(TokenHash("token-dave"))).disabled);
  MustOk(this->S().SetUserDisabled(u.id, false, Audit("user.enable", "user:dave")));
  EXPECT_FALSE(Must(this->S().GetUser(u.id)).disabled);
  EXPECT_EQ(this->AuditCount(), 3);
}

TYPED_TEST_P(StoreConformanceTest, RotatesATokenHash) {
  User u = this->AddUser("erin");
  User other = this->AddUser("frank");
  MustOk(this->S().SetUserTokenHash(u.id, TokenHash("new"), Audit("user.rotate", "user:erin")));
  EXPECT_EQ(this->S().GetUserByTokenHash(TokenHash("token-erin")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Must(this->S().GetUserByTokenHash(TokenHash("new"))).id, u.id);
  EXPECT_EQ(this->S()
                .SetUserTokenHash(u.id, TokenHash("token-frank"), Audit("user.rotate", "user:erin"))
                .code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(Must(this->S().GetUserByTokenHash(TokenHash("token-frank"))).id, other.id);
}

TYPED_TEST_P(StoreConformanceTest, ListsUsersInCreationOrder) {
  this->AddUser("u1");
  this->AddUser("u2", Role::kReviewer);
  this->AddUser("u3", Role::kOperator);
  auto users = Must(this->S().ListUsers());
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0].name, "u1");
  EXPECT_EQ(users[1].role, Role::kReviewer);
  EXPECT_EQ(users[2].role, Role::kOperator);
}

// ==== Catalog ====================================================================

TYPED_TEST_P(StoreConformanceTest, CreatesADatasetAndReadsBackEveryField) {
  User owner = this->AddUser("hospital", Role::kProvider);
  Dataset want = this->NewDataset("hospital-claims", owner.id);
  Dataset got = this->AddDataset("hospital-claims", owner.id);
  EXPECT_GT(got.id, 0);
  want.id = got.id;
  EXPECT_EQ(got, want);
  EXPECT_EQ(Must(this->S().GetDataset(got.id)), want);
  EXPECT_EQ(Must(this->S().GetDatasetByName("hospital-claims")), want);
}

TYPED_TEST_P(StoreConformanceTest, RejectsDuplicateDatasetNameAndUnknownOwner) {
  User owner = this->AddUser("hospital", Role::kProvider);
  this->AddDataset("claims", owner.id);
  EXPECT_EQ(this->S()
                .CreateDataset(this->NewDataset("claims", owner.id), Audit("dataset.register", "x"))
                .status()
                .code(),
            StatusCode::kAlreadyExists);
  auto r = this->S().CreateDataset(this->NewDataset("other", 999), Audit("dataset.register", "x"));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(r.status().message(), "999")) << r.status().message();
  EXPECT_EQ(Must(this->S().ListDatasets(std::nullopt)).size(), 1u);
}

TYPED_TEST_P(StoreConformanceTest, RejectsMalformedDatasetFields) {
  User owner = this->AddUser("hospital", Role::kProvider);
  auto check = [&](const std::string& field, auto mutate) {
    Dataset d = this->NewDataset("bad", owner.id);
    mutate(d);
    auto r = this->S().CreateDataset(d, Audit("dataset.register", "bad"));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << field;
    EXPECT_TRUE(Contains(r.status().message(), field)) << r.status().message();
  };
  check("price", [](Dataset& d) { d.price = "1,50"; });
  check("price", [](Dataset& d) { d.price = "-1"; });
  check("price", [](Dataset& d) { d.price = "1."; });
  check("price", [](Dataset& d) { d.price = ""; });
  check("key_id", [](Dataset& d) { d.key_id = "ABCD"; });
  check("key_id", [](Dataset& d) { d.key_id = "abc"; });
  check("wrapped_key", [](Dataset& d) { d.wrapped_key.clear(); });
  check("max_days", [](Dataset& d) { d.max_days = -1; });
  check("name", [](Dataset& d) { d.name.clear(); });
  check("location", [](Dataset& d) { d.location.clear(); });
  EXPECT_TRUE(Must(this->S().ListDatasets(std::nullopt)).empty());
}

TYPED_TEST_P(StoreConformanceTest, ListsDatasetsByOwner) {
  User a = this->AddUser("a", Role::kProvider);
  User b = this->AddUser("b", Role::kProvider);
  this->AddDataset("a1", a.id);
  this->AddDataset("b1", b.id);
  this->AddDataset("a2", a.id);
  auto mine = Must(this->S().ListDatasets(a.id));
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].name, "a1");
  EXPECT_EQ(mine[1].name, "a2");
  EXPECT_EQ(Must(this->S().ListDatasets(std::nullopt)).size(), 3u);
  EXPECT_EQ(this->S().GetDataset(77).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->S().GetDatasetByName("zzz").status().code(), StatusCode::kNotFound);
}

// ==== Rentals ====================================================================

TYPED_TEST_P(StoreConformanceTest, AppendsRentalsAsASignedHashChain) {
  User owner = this->AddUser("p", Role::kProvider);
  User c = this->AddUser("c");
  Dataset d = this->AddDataset("ds", owner.id);
  Rental r1 = this->Rent(d.id, c.id);
  Rental r2 = this->Rent(d.id, c.id, 5000);
  EXPECT_EQ(r1.seq, 1);
  EXPECT_EQ(r2.seq, 2);
  EXPECT_EQ(r1.prev_hash, Sha256Digest{});
  EXPECT_EQ(r2.prev_hash, r1.hash);
  EXPECT_EQ(r2.hash, RentalHash(r1.hash, r2));
  EXPECT_TRUE(
      crypto::Ed25519Verify(this->PublicKey(), RentalSignatureMessage(r2.hash), r2.signature));
  auto all = Must(this->S().ListRentals({}));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], r1);
  EXPECT_EQ(all[1], r2);
  ChainReport report = this->VerifyRentals();
  EXPECT_TRUE(report.ok()) << report.reason;
  EXPECT_EQ(report.entries_checked, 2);
}

TYPED_TEST_P(StoreConformanceTest, ListsRentalsByConsumerDatasetAndPage) {
  User owner = this->AddUser("p", Role::kProvider);
  User c1 = this->AddUser("c1");
  User c2 = this->AddUser("c2");
  Dataset d1 = this->AddDataset("d1", owner.id);
  Dataset d2 = this->AddDataset("d2", owner.id);
  this->Rent(d1.id, c1.id);
  this->Rent(d2.id, c1.id);
  this->Rent(d1.id, c2.id);
  this->Rent(d1.id, c1.id, 9000);
  RentalFilter f;
  f.consumer_id = c1.id;
  f.dataset_id = d1.id;
  auto rentals = Must(this->S().ListRentals(f));
  ASSERT_EQ(rentals.size(), 2u);
  EXPECT_EQ(rentals[0].seq, 1);
  EXPECT_EQ(rentals[1].start, 9000);
  f = {};
  f.dataset_id = d1.id;
  EXPECT_EQ(Must(this->S().ListRentals(f)).size(), 3u);
  f = {};
  f.after_seq = 1;
  f.limit = 2;
  auto page = Must(this->S().ListRentals(f));
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].seq, 2);
  f.limit = 0;
  EXPECT_EQ(this->S().ListRentals(f).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST_P(StoreConformanceTest, RejectsRentalWithEmptyIntervalOrUnknownReferences) {
  User owner = this->AddUser("p", Role::kProvider);
  User c = this->AddUser("c");
  Dataset d = this->AddDataset("ds", owner.id);
  const int64_t before = this->AuditCount();
  auto rent = [&](Rental r) {
    return this->S().AppendRental(r, this->Signer(), Audit("rental.create", "x")).status().code();
  };
  EXPECT_EQ(rent(this->NewRental(d.id, c.id, 100, 100)), StatusCode::kInvalidArgument);
  EXPECT_EQ(rent(this->NewRental(d.id, c.id, 100, 50)), StatusCode::kInvalidArgument);
  EXPECT_EQ(rent(this->NewRental(999, c.id)), StatusCode::kNotFound);
  EXPECT_EQ(rent(this->NewRental(d.id, 999)), StatusCode::kNotFound);
  EXPECT_EQ(
      this->S().AppendRental(this->NewRental(d.id, c.id), nullptr, Audit("r", "x")).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_TRUE(Must(this->S().ListRentals({})).empty());
  EXPECT_EQ(this->AuditCount(), before);
}

TYPED_TEST_P(StoreConformanceTest, FailingSignerWritesNothing) {
  User owner = this->AddUser("p", Role::kProvider);
  User c = this->AddUser("c");
  Dataset d = this->AddDataset("ds", owner.id);
  const int64_t before = this->AuditCount();
  RentalSigner broken = [](ByteSpan) -> StatusOr<Bytes> { return Internal("hsm offline"); };
  auto r = this->S().AppendRental(this->NewRental(d.id, c.id), broken, Audit("rental.create", "x"));
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(Contains(r.status().message(), "hsm offline"));
  RentalSigner throwing = [](ByteSpan) -> StatusOr<Bytes> { throw std::runtime_error("boom"); };
  EXPECT_FALSE(this->S().AppendRental(this->NewRental(d.id, c.id), throwing, Audit("r", "x")).ok());
  EXPECT_TRUE(Must(this->S().ListRentals({})).empty());
  EXPECT_EQ(this->AuditCount(), before);
  EXPECT_EQ(this->Rent(d.id, c.id).seq, 1);  // the store still works
}

TYPED_TEST_P(StoreConformanceTest, RentalChainDetectsEachEditedColumn) {
  User owner = this->AddUser("p", Role::kProvider);
  User c = this->AddUser("c");
  Dataset d = this->AddDataset("ds", owner.id);
  for (int i = 0; i < 4; ++i) this->Rent(d.id, c.id, 1000 + i);
  MustOk(this->F().AllowTampering());
  const Rental original = Must(this->S().ListRentals({}))[2];
  const std::vector<std::pair<std::string, ChainFailure>> edits = {
      {"dataset_id = dataset_id + 1", ChainFailure::kEdited},
      {"consumer_id = consumer_id + 1", ChainFailure::kEdited},
      {"start_at = start_at - 86400", ChainFailure::kEdited},
      {"end_at = end_at + 86400", ChainFailure::kEdited},
      {"created_at = created_at + 1", ChainFailure::kEdited},
      {"prev_hash = " + TypeParam::BlobLiteral(Sha256Digest{}), ChainFailure::kEdited},
      {"hash = " + TypeParam::BlobLiteral(Sha256Digest{}), ChainFailure::kEdited},
      {"signature = " + TypeParam::BlobLiteral(Bytes(64, 7)), ChainFailure::kBadSignature},
  };
  for (const auto& [set, failure] : edits) {
    MustOk(this->F().ExecSql("UPDATE rentals SET " + set + " WHERE seq = 3"));
    ChainReport r = this->VerifyRentals();
    EXPECT_EQ(r.failure, failure) << set << ": " << r.reason;
    EXPECT_EQ(r.first_bad_seq, 3) << set;
    MustOk(this->F().ExecSql(
        "UPDATE rentals SET dataset_id = " + std::to_string(original.dataset_id) +
        ", consumer_id = " + std::to_string(original.consumer_id) + ", start_at = " +
        std::to_string(original.start) + ", end_at = " + std::to_string(original.end) +
        ", created_at = " + std::to_string(original.created_at) +
        ", prev_hash = " + TypeParam::BlobLiteral(original.prev_hash) +
        ", hash = " + TypeParam::BlobLiteral(original.hash) +
        ", signature = " + TypeParam::BlobLiteral(original.signature) + " WHERE seq = 3"));
    ASSERT_TRUE(this->VerifyRentals().ok()) << "restore after " << set;
  }
}

TYPED_TEST_P(StoreConformanceTest, RentalChainDetectsDeletedSwappedAndRewrittenRows) {
  User owner = this->AddUser("p", Role::kProvider);
  User c = this->AddUser("c");
  Dataset d = this->AddDataset("ds", owner.id);
  for (int i = 0; i < 5; ++i) this->Rent(d.id, c.id, 1000 + i);
  MustOk(this->F().AllowTampering());
  MustOk(this->F().ExecSql(
      "UPDATE rentals SET seq = -4 WHERE seq = 4; UPDATE rentals SET seq = 4 WHERE seq = 3;"
      "UPDATE rentals SET seq = 3 WHERE seq = -4;"));
  ChainReport swapped = this->VerifyRentals();
  EXPECT_EQ(swapped.failure, ChainFailure::kReordered) << swapped.reason;
  EXPECT_EQ(swapped.first_bad_seq, 3);
  MustOk(this->F().ExecSql(
      "UPDATE rentals SET seq = -4 WHERE seq = 4; UPDATE rentals SET seq = 4 WHERE seq = 3;"
      "UPDATE rentals SET seq = 3 WHERE seq = -4;"));
  ASSERT_TRUE(this->VerifyRentals().ok());

  // Extend a rental and recompute every hash after it: the signatures, made
  // with a key the attacker lacks, no longer match.
  auto rows = Must(this->S().ListRentals({}));
  rows[1].end += 365 * 86400;
  for (size_t i = 1; i < rows.size(); ++i) {
    rows[i].prev_hash = rows[i - 1].hash;
    rows[i].hash = RentalHash(rows[i].prev_hash, rows[i]);
    MustOk(this->F().ExecSql("UPDATE rentals SET end_at = " + std::to_string(rows[i].end) +
                             ", prev_hash = " + TypeParam::BlobLiteral(rows[i].prev_hash) +
                             ", hash = " + TypeParam::BlobLiteral(rows[i].hash) +
                             " WHERE seq = " + std::to_string(rows[i].seq)));
  }
  ChainReport rewritten = this->VerifyRentals();
  EXPECT_EQ(rewritten.failure, ChainFailure::kBadSignature) << rewritten.reason;
  EXPECT_EQ(rewritten.first_bad_seq, 2);

  MustOk(this->F().ExecSql("DELETE FROM rentals WHERE seq = 1"));
  ChainReport deleted = this->VerifyRentals();
  EXPECT_EQ(deleted.failure, ChainFailure::kMissing) << deleted.reason;
  EXPECT_EQ(deleted.first_bad_seq, 1);
}

// Issue 10, finding 2: with the triggers dropped, deleting the last rental
// verified. Each rental now carries a signed checkpoint (also in the
// checkpoint file, outside the database).
TYPED_TEST_P(StoreConformanceTest, DeletingTheLastRentalIsCaughtByTheCheckpoints) {
  User owner = this->AddUser("p", Role::kProvider);
  User c = this->AddUser("c");
  Dataset d = this->AddDataset("ds", owner.id);
  for (int i = 0; i < 3; ++i) this->Rent(d.id, c.id, 1000 + i);
  const auto kept = Must(this->S().ListRentalCheckpoints());
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[2].seq, 3);
  EXPECT_TRUE(crypto::Ed25519Verify(this->PublicKey(),
                                    RentalCheckpointMessage(kept[2].seq, kept[2].hash, kept[2].at),
                                    kept[2].signature));
  EXPECT_FALSE(this->F().ExecSql("DELETE FROM rental_checkpoints").ok());  // append-only
  ChainReport whole = this->VerifyRentals();
  EXPECT_TRUE(whole.ok()) << whole.reason;
  EXPECT_EQ(whole.checkpoints_checked, 3);

  MustOk(this->F().AllowTampering());
  MustOk(this->F().ExecSql("DELETE FROM rentals WHERE seq = 3"));
  ChainReport cut = this->VerifyRentals();
  EXPECT_EQ(cut.failure, ChainFailure::kTruncated) << cut.reason;
  EXPECT_EQ(cut.first_bad_seq, 3);

  // The stored checkpoint deleted too: the database alone now verifies (the
  // finding), the kept copy does not.
  MustOk(
      this->F().ExecSql("DROP TRIGGER rental_checkpoints_no_delete;"
                        "DELETE FROM rental_checkpoints WHERE seq = 3"));
  EXPECT_TRUE(this->VerifyRentals().ok());
  VerifyOptions with_file;
  with_file.extra_checkpoints = kept;
  ChainReport caught = Must(VerifyRentalChain(this->S(), this->PublicKey(), with_file));
  EXPECT_EQ(caught.failure, ChainFailure::kTruncated) << caught.reason;
  EXPECT_EQ(caught.first_bad_seq, 3);
}

// ==== Images =====================================================================

TYPED_TEST_P(StoreConformanceTest, PutsAndResolvesImageTags) {
  User u = this->AddUser("c");
  Image img{"stats", "v1", Digest('1'), u.id, 400};
  EXPECT_EQ(Must(this->S().PutImage(img, Audit("image.push", "image:stats:v1"))), img);
  EXPECT_EQ(Must(this->S().GetImage(u.id, "stats", "v1")), img);
  Image moved{"stats", "v1", Digest('2'), u.id, 401};
  Must(this->S().PutImage(moved, Audit("image.push", "image:stats:v1")));
  EXPECT_EQ(Must(this->S().GetImage(u.id, "stats", "v1")).digest, Digest('2'));
  Must(this->S().PutImage({"stats", "latest", Digest('2'), u.id, 402}, Audit("image.push", "x")));
  auto all = Must(this->S().ListImages({}));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].tag, "latest");
  EXPECT_EQ(this->S().GetImage(u.id, "stats", "v9").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->S().GetImage(store::kPublicImageScope, "stats", "v1").status().code(),
            StatusCode::kNotFound);
}

// The same name:tag of two owners are two images: nobody can move (or squat)
// another's tag; public images live in their own scope, visible to all.
TYPED_TEST_P(StoreConformanceTest, ScopesImageTagsPerOwnerAndRefusesABadDigest) {
  User a = this->AddUser("a");
  User b = this->AddUser("b");
  User op = this->AddUser("op");
  Must(this->S().PutImage({"stats", "v1", Digest('1'), a.id, 400}, Audit("image.push", "x")));
  Must(this->S().PutImage({"stats", "v1", Digest('3'), b.id, 401}, Audit("image.push", "x")));
  EXPECT_EQ(Must(this->S().GetImage(a.id, "stats", "v1")).digest, Digest('1'));
  EXPECT_EQ(Must(this->S().GetImage(b.id, "stats", "v1")).digest, Digest('3'));
  Image pub{"library/base", "v1", Digest('4'), op.id, 402, true};
  Must(this->S().PutImage(pub, Audit("image.push", "x")));
  EXPECT_EQ(Must(this->S().GetImage(store::kPublicImageScope, "library/base", "v1")), pub);
  EXPECT_EQ(this->S().GetImage(op.id, "library/base", "v1").status().code(), StatusCode::kNotFound);
  auto seen_by_a = Must(this->S().ListImages({.visible_to = a.id}));
  ASSERT_EQ(seen_by_a.size(), 2u);
  EXPECT_EQ(seen_by_a[0], pub);
  EXPECT_EQ(seen_by_a[1].digest, Digest('1'));
  EXPECT_EQ(Must(this->S().ListImages({})).size(), 3u);

  EXPECT_EQ(Must(this->S().DeleteImage(a.id, "stats", "v1", Audit("image.delete", "x"))).digest,
            Digest('1'));
  EXPECT_EQ(this->S().GetImage(a.id, "stats", "v1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Must(this->S().GetImage(b.id, "stats", "v1")).digest, Digest('3'));
  EXPECT_EQ(this->S().DeleteImage(a.id, "stats", "v1", Audit("image.delete", "x")).status().code(),
            StatusCode::kNotFound);

  for (const std::string& bad : {std::string("sha256:abc"), "sha512:" + std::string(64, 'a'),
                                 "sha256:" + std::string(64, 'A'), std::string()}) {
    EXPECT_EQ(this->S().PutImage({"x", "v1", bad, a.id, 1}, Audit("p", "x")).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(this->S()
                .PutImage({"x", "v1", Digest('1'), 999, 1}, Audit("image.push", "x"))
                .status()
                .code(),
            StatusCode::kNotFound);
}

TYPED_TEST_P(StoreConformanceTest, RecordsImageBlobsPerScope) {
  User a = this->AddUser("a");
  User b = this->AddUser("b");
  MustOk(this->S().PutImageBlob({a.id, Digest('1'), 10, 100}, Audit("image.blob", "x")));
  MustOk(this->S().PutImageBlob({a.id, Digest('2'), 20, 100}, Audit("image.blob", "x")));
  MustOk(this->S().PutImageBlob({b.id, Digest('1'), 10, 101}, Audit("image.blob", "x")));
  MustOk(this->S().PutImageBlob({a.id, Digest('1'), 10, 105}, Audit("image.blob", "x")));
  auto of_a = Must(this->S().ListImageBlobs(a.id));
  ASSERT_EQ(of_a.size(), 2u);
  EXPECT_EQ(of_a[0], (store::ImageBlob{a.id, Digest('1'), 10, 105}));
  EXPECT_EQ(Must(this->S().ListImageBlobs(std::nullopt)).size(), 3u);
  MustOk(this->S().DeleteImageBlobs({{a.id, Digest('1'), 0, 0}, {a.id, Digest('9'), 0, 0}},
                                    Audit("image.gc", "x")));
  of_a = Must(this->S().ListImageBlobs(a.id));
  ASSERT_EQ(of_a.size(), 1u);
  EXPECT_EQ(of_a[0].digest, Digest('2'));
  EXPECT_EQ(Must(this->S().ListImageBlobs(b.id)).size(), 1u);
  EXPECT_EQ(this->S().PutImageBlob({a.id, "sha256:abc", 1, 1}, Audit("image.blob", "x")).code(),
            StatusCode::kInvalidArgument);
}

// ==== Jobs =======================================================================

TYPED_TEST_P(StoreConformanceTest, CreatesAJobInSubmittedWithItsFirstHistoryEvent) {
  User c = this->AddUser("c");
  Job want = this->NewJob(c.id, "job-0000000000000001", "key-1");
  auto r = Must(this->S().CreateJob(want, Audit("job.submit", "job:job-0000000000000001")));
  EXPECT_TRUE(r.created);
  want.updated_at = want.created_at;
  EXPECT_EQ(r.job, want);
  EXPECT_EQ(Must(this->S().GetJob(want.id)), want);
  auto history = Must(this->S().JobHistory(want.id));
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].seq, 1);
  EXPECT_FALSE(history[0].from.has_value());
  EXPECT_EQ(history[0].to, JobState::kSubmitted);
  EXPECT_EQ(history[0].reason, "submitted");
  EXPECT_EQ(history[0].at, 300);
  auto audit = this->AllAudit();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[1].record, Audit("job.submit", "job:job-0000000000000001"));
}

TYPED_TEST_P(StoreConformanceTest, RejectsAnInvalidNewJob) {
  User c = this->AddUser("c");
  auto code = [&](auto mutate) {
    Job j = this->NewJob(c.id, "job-1");
    mutate(j);
    return this->S().CreateJob(j, Audit("job.submit", "job:job-1")).status().code();
  };
  EXPECT_EQ(code([](Job& j) { j.state = JobState::kRunning; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](Job& j) { j.id.clear(); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](Job& j) { j.image_digest = "latest"; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](Job& j) { j.spec_json.clear(); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](Job& j) { j.consumer_id = 999; }), StatusCode::kNotFound);
  EXPECT_EQ(code([](Job& j) { j.datasets = {"a,b"}; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](Job& j) { j.datasets = {""}; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](Job& j) { j.timeout_seconds = -1; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->S().GetJob("job-1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->AuditCount(), 1);
}

TYPED_TEST_P(StoreConformanceTest, IdempotentReplayReturnsTheExistingJobAndWritesNothing) {
  User c = this->AddUser("c");
  Job first = this->SubmitJob(c.id, "job-a", "retry-key");
  const int64_t audit_before = this->AuditCount();
  // A retried request: same key and body, a freshly generated job id.
  auto replay = Must(this->S().CreateJob(this->NewJob(c.id, "job-b", "retry-key"),
                                         Audit("job.submit", "job:job-b")));
  EXPECT_FALSE(replay.created);
  EXPECT_EQ(replay.job, first);
  EXPECT_EQ(this->S().GetJob("job-b").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->AuditCount(), audit_before);
  EXPECT_EQ(Must(this->S().JobHistory("job-a")).size(), 1u);
}

TYPED_TEST_P(StoreConformanceTest, IdempotencyKeyReusedWithAnotherBodyIsAlreadyExists) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-a", "k");
  auto r = this->S().CreateJob(this->NewJob(c.id, "job-b", "k", "another body"),
                               Audit("job.submit", "job:job-b"));
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(Contains(r.status().message(), "job-a")) << r.status().message();
  EXPECT_EQ(this->S().GetJob("job-b").status().code(), StatusCode::kNotFound);
}

TYPED_TEST_P(StoreConformanceTest, IdempotencyKeysAreScopedPerConsumer) {
  User c1 = this->AddUser("c1");
  User c2 = this->AddUser("c2");
  EXPECT_TRUE(
      Must(this->S().CreateJob(this->NewJob(c1.id, "job-1", "k"), Audit("s", "j"))).created);
  EXPECT_TRUE(
      Must(this->S().CreateJob(this->NewJob(c2.id, "job-2", "k"), Audit("s", "j"))).created);
  // Without a key, identical bodies are distinct jobs.
  EXPECT_TRUE(Must(this->S().CreateJob(this->NewJob(c1.id, "job-3"), Audit("s", "j"))).created);
  EXPECT_TRUE(Must(this->S().CreateJob(this->NewJob(c1.id, "job-4"), Audit("s", "j"))).created);
}

TYPED_TEST_P(StoreConformanceTest, RejectsADuplicateJobId) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  auto r = this->S().CreateJob(this->NewJob(c.id, "job-1"), Audit("job.submit", "job:job-1"));
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Must(this->S().JobHistory("job-1")).size(), 1u);
}

TYPED_TEST_P(StoreConformanceTest, DrivesJobsThroughTheirWholeLifeWithHistory) {
  User c = this->AddUser("c");
  // Reviewed path: ... -> HELD -> APPROVED -> RELEASED.
  this->JobWithOutput(c.id, "job-held");
  EXPECT_EQ(Must(this->S().SetGateVerdict("job-held", GateVerdict::kHold, 0.9, "[]", 600,
                                          Audit("gate.verdict", "job:job-held")))
                .verdict,
            GateVerdict::kHold);
  this->Move("job-held", JobState::kOutputSubmitted, JobState::kHeld);
  User reviewer = this->AddUser("rita", Role::kReviewer);
  Job done =
      Must(this->S().RecordReview(this->NewReview("job-held", reviewer.id), 1, "because RELEASED",
                                  Audit("review.approve", "job:job-held"),
                                  Audit("job.release", "job:job-held")))
          .job;
  EXPECT_EQ(done.state, JobState::kReleased);
  EXPECT_EQ(done.reason, "because RELEASED");
  EXPECT_EQ(done.updated_at, 1000);
  auto history = Must(this->S().JobHistory("job-held"));
  const std::vector<JobState> want = {
      JobState::kSubmitted, JobState::kAuthorized, JobState::kProvisioning,
      JobState::kAttested,  JobState::kRunning,    JobState::kOutputSubmitted,
      JobState::kHeld,      JobState::kApproved,   JobState::kReleased};
  ASSERT_EQ(history.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(history[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(history[i].to, want[i]);
    if (i > 0) {
      EXPECT_EQ(history[i].from, want[i - 1]);
      // The review's two moves share the decision's reason.
      const JobState named = want[i] == JobState::kApproved ? JobState::kReleased : want[i];
      EXPECT_EQ(history[i].reason, "because " + std::string(JobStateName(named)));
    }
  }
  // Rejected path, and a cancellation with its reason.
  this->JobWithOutput(c.id, "job-rejected");
  Must(this->S().SetGateVerdict("job-rejected", GateVerdict::kHold, 0.9, "[]", 600,
                                Audit("gate.verdict", "job:job-rejected")));
  this->Move("job-rejected", JobState::kOutputSubmitted, JobState::kHeld);
  EXPECT_EQ(Must(this->S().RecordReview(
                     this->NewReview("job-rejected", reviewer.id, ReviewDecision::kReject), 1,
                     "because REJECTED", Audit("review.reject", "job:job-rejected"),
                     Audit("job.reject", "job:job-rejected")))
                .job.state,
            JobState::kRejected);
  this->SubmitJob(c.id, "job-cancelled");
  Job cancelled =
      Must(this->S().TransitionJob("job-cancelled", JobState::kSubmitted, JobState::kCancelled,
                                   "consumer asked", Audit("job.cancel", "job:job-cancelled")));
  EXPECT_EQ(cancelled.reason, "consumer asked");
  EXPECT_EQ(Must(this->S().JobHistory("job-cancelled")).back().reason, "consumer asked");
}

TYPED_TEST_P(StoreConformanceTest, TransitionFromTheWrongStateNamesBothStates) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  this->Move("job-1", JobState::kSubmitted, JobState::kAuthorized);
  const int64_t audit_before = this->AuditCount();
  auto r = this->S().TransitionJob("job-1", JobState::kSubmitted, JobState::kAuthorized, "again",
                                   Audit("job.transition", "job:job-1"));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(r.status().message(), "SUBMITTED")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "AUTHORIZED")) << r.status().message();
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kAuthorized);
  EXPECT_EQ(Must(this->S().JobHistory("job-1")).size(), 2u);
  EXPECT_EQ(this->AuditCount(), audit_before);
}

TYPED_TEST_P(StoreConformanceTest, DisallowedTransitionIsInvalidArgumentAndChangesNothing) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  const int64_t audit_before = this->AuditCount();
  auto r = this->S().TransitionJob("job-1", JobState::kSubmitted, JobState::kRunning, "skip",
                                   Audit("job.transition", "job:job-1"));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(r.status().message(), "SUBMITTED -> RUNNING")) << r.status().message();
  this->Move("job-1", JobState::kSubmitted, JobState::kFailed);
  EXPECT_EQ(this->S()
                .TransitionJob("job-1", JobState::kFailed, JobState::kCancelled, "late",
                               Audit("job.transition", "job:job-1"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kFailed);
  EXPECT_EQ(this->AuditCount(), audit_before + 1);
}

TYPED_TEST_P(StoreConformanceTest, TransitionNeedsAKnownJobAndAReason) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  EXPECT_EQ(this->S()
                .TransitionJob("job-404", JobState::kSubmitted, JobState::kAuthorized, "r",
                               Audit("job.transition", "job:job-404"))
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(this->S()
                .TransitionJob("job-1", JobState::kSubmitted, JobState::kFailed, "",
                               Audit("job.transition", "job:job-1"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->S().JobHistory("job-404").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kSubmitted);
}

TYPED_TEST_P(StoreConformanceTest, ReleaseFromTheGateNeedsAReleaseVerdict) {
  User c = this->AddUser("c");
  this->JobWithOutput(c.id, "job-1");
  auto release = [&] {
    return this->S().TransitionJob("job-1", JobState::kOutputSubmitted, JobState::kReleased,
                                   "gate passed", Audit("job.release", "job:job-1"));
  };
  auto pending = release();
  EXPECT_EQ(pending.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(pending.status().message(), "pending")) << pending.status().message();
  Must(this->S().SetGateVerdict("job-1", GateVerdict::kHold, 0.8, "[]", 600,
                                Audit("gate.verdict", "job:job-1")));
  EXPECT_EQ(release().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kOutputSubmitted);

  // A job whose output the gate passed.
  this->JobWithOutput(c.id, "job-2");
  Must(this->S().SetGateVerdict("job-2", GateVerdict::kRelease, 0.1, "[]", 600,
                                Audit("gate.verdict", "job:job-2")));
  EXPECT_EQ(Must(this->S().TransitionJob("job-2", JobState::kOutputSubmitted, JobState::kReleased,
                                         "gate passed", Audit("job.release", "job:job-2")))
                .state,
            JobState::kReleased);
}

TYPED_TEST_P(StoreConformanceTest, ConcurrentTransitionsLetExactlyOneWin) {
  User c = this->AddUser("c");
  for (int round = 0; round < 5; ++round) {
    const std::string id = "job-" + std::to_string(round);
    this->SubmitJob(c.id, id);
    std::atomic<int> won{0};
    std::atomic<int> lost{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        // Half authorize, half cancel: one of the sixteen calls wins.
        const JobState to = t % 2 == 0 ? JobState::kAuthorized : JobState::kCancelled;
        auto r = this->S().TransitionJob(id, JobState::kSubmitted, to, "race",
                                         Audit("job.transition", "job:" + id));
        (r.ok() ? won : lost)++;
        if (!r.ok() && r.status().code() != StatusCode::kFailedPrecondition) lost += 1000;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(won.load(), 1);
    EXPECT_EQ(lost.load(), 7);
    EXPECT_EQ(Must(this->S().JobHistory(id)).size(), 2u);
  }
  EXPECT_TRUE(this->VerifyAuditLog().ok());
}

TYPED_TEST_P(StoreConformanceTest, FailingAuditInsertRollsBackTheTransition) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  const int64_t audit_before = this->AuditCount();
  MustOk(this->F().FailAuditInsertsFor("job.authorize"));
  auto r = this->S().TransitionJob("job-1", JobState::kSubmitted, JobState::kAuthorized,
                                   "rental ok", Audit("job.authorize", "job:job-1"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "injected audit failure")) << r.status().message();
  Job j = Must(this->S().GetJob("job-1"));
  EXPECT_EQ(j.state, JobState::kSubmitted);
  EXPECT_EQ(j.reason, "submitted");
  EXPECT_EQ(Must(this->S().JobHistory("job-1")).size(), 1u);
  EXPECT_EQ(this->AuditCount(), audit_before);
  // Likewise for creation: no job without its audit entry.
  EXPECT_FALSE(
      this->S().CreateJob(this->NewJob(c.id, "job-2"), Audit("job.authorize", "job:job-2")).ok());
  EXPECT_EQ(this->S().GetJob("job-2").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(this->VerifyAuditLog().ok());
}

TYPED_TEST_P(StoreConformanceTest, FailingMutationsDoNotFailTheirBatchMates) {
  User c = this->AddUser("c");
  MustOk(this->F().FailAuditInsertsFor("job.doomed"));
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::atomic<int> ok_good{0};
  std::atomic<int> failed_good{0};
  std::atomic<int> ok_doomed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const bool doomed = (i + t) % 3 == 0;
        const std::string id = "job-" + std::to_string(t) + "-" + std::to_string(i);
        auto r = this->S().CreateJob(this->NewJob(c.id, id),
                                     Audit(doomed ? "job.doomed" : "job.submit", "job:" + id));
        if (doomed) {
          ok_doomed += r.ok() ? 1 : 0;
        } else {
          (r.ok() ? ok_good : failed_good)++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed_good.load(), 0);
  EXPECT_EQ(ok_doomed.load(), 0);
  JobFilter all;
  all.limit = 10000;
  EXPECT_EQ(Must(this->S().ListJobs(all)).size(), static_cast<size_t>(ok_good.load()));
  EXPECT_EQ(this->AuditCount(), 1 + ok_good.load());
  EXPECT_TRUE(this->VerifyAuditLog().ok());
}

TYPED_TEST_P(StoreConformanceTest, ListsJobsWithFiltersAndPaging) {
  User c1 = this->AddUser("c1");
  User c2 = this->AddUser("c2");
  for (int i = 0; i < 5; ++i) this->SubmitJob(c1.id, "job-c1-" + std::to_string(i));
  for (int i = 0; i < 3; ++i) this->SubmitJob(c2.id, "job-c2-" + std::to_string(i));
  this->Move("job-c1-1", JobState::kSubmitted, JobState::kAuthorized);
  this->Move("job-c2-0", JobState::kSubmitted, JobState::kAuthorized);
  JobFilter f;
  f.consumer_id = c1.id;
  auto mine = Must(this->S().ListJobs(f));
  ASSERT_EQ(mine.size(), 5u);
  EXPECT_EQ(mine.front().id, "job-c1-4");  // newest first
  f.state = JobState::kAuthorized;
  auto authorized = Must(this->S().ListJobs(f));
  ASSERT_EQ(authorized.size(), 1u);
  EXPECT_EQ(authorized[0].id, "job-c1-1");
  f = {};
  f.state = JobState::kAuthorized;
  EXPECT_EQ(Must(this->S().ListJobs(f)).size(), 2u);
  f = {};
  f.limit = 3;
  f.offset = 2;
  auto page = Must(this->S().ListJobs(f));
  ASSERT_EQ(page.size(), 3u);
  EXPECT_EQ(page[0].id, "job-c2-0");
  EXPECT_EQ(page[2].id, "job-c1-3");
  f.offset = 100;
  EXPECT_TRUE(Must(this->S().ListJobs(f)).empty());
  f.offset = -1;
  EXPECT_EQ(this->S().ListJobs(f).status().code(), StatusCode::kInvalidArgument);
  f.offset = 0;
  f.limit = 0;
  EXPECT_EQ(this->S().ListJobs(f).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST_P(StoreConformanceTest, ListsJobsInStatesForRecovery) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  this->SubmitJob(c.id, "job-2");
  this->SubmitJob(c.id, "job-3");
  this->Move("job-2", JobState::kSubmitted, JobState::kAuthorized);
  this->Move("job-2", JobState::kAuthorized, JobState::kProvisioning);
  this->Move("job-3", JobState::kSubmitted, JobState::kCancelled);
  std::vector<JobState> live;
  for (JobState s : kAllJobStates) {
    if (!IsFinalState(s)) live.push_back(s);
  }
  auto jobs = Must(this->S().ListJobsInStates(live));
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, "job-1");  // oldest first
  EXPECT_EQ(jobs[1].state, JobState::kProvisioning);
  EXPECT_TRUE(Must(this->S().ListJobsInStates({})).empty());
  EXPECT_EQ(Must(this->S().ListJobsInStates({JobState::kCancelled})).size(), 1u);
}

// ==== Credentials ================================================================

TYPED_TEST_P(StoreConformanceTest, CredentialIsSingleUse) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  MustOk(this->S().IssueCredential({"cred-1", "job-1", 1000, 2000, std::nullopt},
                                   Audit("credential.issue", "job:job-1")));
  EXPECT_EQ(Must(this->S().GetCredential("cred-1")),
            (JobCredential{"cred-1", "job-1", 1000, 2000, std::nullopt}));
  JobCredential used =
      Must(this->S().MarkCredentialUsed("cred-1", 1500, Audit("credential.use", "job:job-1")));
  EXPECT_EQ(used.used_at, 1500);
  const int64_t audit_before = this->AuditCount();
  auto again = this->S().MarkCredentialUsed("cred-1", 1501, Audit("credential.use", "job:job-1"));
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(again.status().message(), "already used")) << again.status().message();
  EXPECT_EQ(Must(this->S().GetCredential("cred-1")).used_at, 1500);
  EXPECT_EQ(this->AuditCount(), audit_before);
}

TYPED_TEST_P(StoreConformanceTest, CredentialAndProvisioningLandTogetherOrNotAtAll) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  const int64_t before = this->AuditCount();
  // Not AUTHORIZED yet: neither the credential nor the move is written.
  auto early = this->S().IssueCredentialAndProvision({"cred-1", "job-1", 1000, 2000, std::nullopt},
                                                     "provisioning", Audit("credential.issue", "x"),
                                                     Audit("job.provision", "x"));
  EXPECT_EQ(early.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->S().GetCredential("cred-1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->AuditCount(), before);
  this->Move("job-1", JobState::kSubmitted, JobState::kAuthorized);
  Job j = Must(this->S().IssueCredentialAndProvision(
      {"cred-1", "job-1", 1000, 2000, std::nullopt}, "credential cred-1 issued",
      Audit("credential.issue", "job:job-1"), Audit("job.provision", "job:job-1")));
  EXPECT_EQ(j.state, JobState::kProvisioning);
  EXPECT_EQ(j.reason, "credential cred-1 issued");
  EXPECT_EQ(Must(this->S().GetCredential("cred-1")).job_id, "job-1");
  EXPECT_EQ(this->AuditCount(), before + 3);  // the AUTHORIZED move, then these two
  // Again: the credential id is taken and the job is no longer AUTHORIZED.
  EXPECT_FALSE(this->S()
                   .IssueCredentialAndProvision({"cred-2", "job-1", 1000, 2000, std::nullopt}, "x",
                                                Audit("a", "x"), Audit("b", "x"))
                   .ok());
  EXPECT_EQ(this->S().GetCredential("cred-2").status().code(), StatusCode::kNotFound);
}

// ==== Key broker ===================================================================

TYPED_TEST_P(StoreConformanceTest, NonceIsSingleUseBoundToItsJobAndShortLived) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  this->SubmitJob(c.id, "job-2");
  MustOk(this->S().IssueCredential({"cred-1", "job-1", 1000, 5000, std::nullopt},
                                   Audit("credential.issue", "job:job-1")));
  MustOk(this->S().IssueNonce({"n-1", "job-1", "cred-1", 1000, 1060, std::nullopt}, 8,
                              Audit("kbs.auth", "job:job-1")));
  MustOk(this->S().IssueNonce({"n-2", "job-1", "cred-1", 1000, 1060, std::nullopt}, 8,
                              Audit("kbs.auth", "job:job-1")));
  EXPECT_EQ(
      this->S()
          .IssueNonce({"n-1", "job-1", "cred-1", 1000, 1060, std::nullopt}, 8, Audit("a", "x"))
          .code(),
      StatusCode::kAlreadyExists);
  EXPECT_EQ(
      this->S()
          .IssueNonce({"n-3", "job-2", "cred-1", 1000, 1060, std::nullopt}, 8, Audit("a", "x"))
          .code(),
      StatusCode::kInvalidArgument);  // cred-1 is job-1's
  const int64_t audit_before = this->AuditCount();
  auto other_job = this->S().ConsumeNonce("n-1", "job-2", 1010, Audit("kbs.attest", "x"));
  EXPECT_EQ(other_job.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(other_job.status().message(), "another job"));
  auto expired = this->S().ConsumeNonce("n-2", "job-1", 1060, Audit("kbs.attest", "x"));
  EXPECT_EQ(expired.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(expired.status().message(), "expired"));
  EXPECT_EQ(this->S().ConsumeNonce("n-404", "job-1", 1010, Audit("a", "x")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(this->AuditCount(), audit_before);  // refusals write nothing
  KbsNonce used = Must(this->S().ConsumeNonce("n-1", "job-1", 1010, Audit("kbs.attest", "x")));
  EXPECT_EQ(used.used_at, 1010);
  EXPECT_EQ(used.credential_id, "cred-1");
  auto replay = this->S().ConsumeNonce("n-1", "job-1", 1011, Audit("kbs.attest", "x"));
  EXPECT_EQ(replay.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(replay.status().message(), "already used"));
  EXPECT_EQ(this->AuditCount(), audit_before + 1);
}

TYPED_TEST_P(StoreConformanceTest, NoncesPerCredentialAreCappedAndExpiredOnesDeleted) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  MustOk(this->S().IssueCredential({"cred-1", "job-1", 1000, 5000, std::nullopt},
                                   Audit("credential.issue", "job:job-1")));
  auto issue = [&](const std::string& n, int64_t at) {
    return this->S().IssueNonce({n, "job-1", "cred-1", at, at + 60, std::nullopt}, 3,
                                Audit("kbs.auth", "job:job-1"));
  };
  MustOk(issue("n-1", 1000));
  MustOk(issue("n-2", 1000));
  MustOk(issue("n-3", 1000));
  // A fourth unused nonce is one too many; the refusal writes nothing.
  const int64_t audit_before = this->AuditCount();
  Status over = issue("n-4", 1001);
  EXPECT_EQ(over.code(), StatusCode::kResourceExhausted) << over.message();
  EXPECT_TRUE(Contains(over.message(), "cred-1")) << over.message();
  EXPECT_EQ(this->AuditCount(), audit_before);
  EXPECT_EQ(this->S().ConsumeNonce("n-4", "job-1", 1002, Audit("a", "x")).status().code(),
            StatusCode::kNotFound);
  // A used nonce no longer counts.
  MustOk(this->S().ConsumeNonce("n-1", "job-1", 1010, Audit("kbs.attest", "x")).status());
  MustOk(issue("n-4", 1020));  // expires at 1080
  // Until another nonce is issued, an expired one is still there to say so.
  auto expired = this->S().ConsumeNonce("n-2", "job-1", 1070, Audit("a", "x"));
  EXPECT_TRUE(Contains(expired.status().message(), "expired")) << expired.status().message();
  // Issuing at 1061 deletes every nonce expired by then, used or not (n-1,
  // n-2, n-3): so the unused expired ones no longer count against the cap.
  MustOk(issue("n-5", 1061));
  for (const char* gone : {"n-1", "n-2", "n-3"}) {
    EXPECT_EQ(this->S().ConsumeNonce(gone, "job-1", 1062, Audit("a", "x")).status().code(),
              StatusCode::kNotFound)
        << gone;
  }
  EXPECT_EQ(Must(this->S().ConsumeNonce("n-4", "job-1", 1062, Audit("a", "x"))).used_at, 1062);
  EXPECT_EQ(
      this->S()
          .IssueNonce({"n-6", "job-1", "cred-1", 1062, 1122, std::nullopt}, 0, Audit("a", "x"))
          .code(),
      StatusCode::kInvalidArgument);
}

TYPED_TEST_P(StoreConformanceTest, AttestationUsesTheCredentialAndMovesTheJobOnce) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  this->SubmitJob(c.id, "job-2");
  MustOk(this->S().IssueCredential({"cred-1", "job-1", 1000, 5000, std::nullopt},
                                   Audit("credential.issue", "job:job-1")));
  MustOk(this->S().IssueCredential({"cred-2", "job-2", 1000, 5000, std::nullopt},
                                   Audit("credential.issue", "job:job-2")));
  // Not yet PROVISIONING: refused, and the credential stays unused.
  auto early = this->S().AcceptAttestation("job-1", "cred-1", kJobFlagSimulatedTee, 1500,
                                           "attested", Audit("kbs.attest", "job:job-1"));
  EXPECT_EQ(early.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(Must(this->S().GetCredential("cred-1")).used_at.has_value());
  this->Move("job-1", JobState::kSubmitted, JobState::kAuthorized);
  this->Move("job-1", JobState::kAuthorized, JobState::kProvisioning);
  auto wrong_cred = this->S().AcceptAttestation("job-1", "cred-2", 0, 1500, "attested",
                                                Audit("kbs.attest", "job:job-1"));
  EXPECT_EQ(wrong_cred.status().code(), StatusCode::kFailedPrecondition);
  Job j = Must(this->S().AcceptAttestation("job-1", "cred-1", kJobFlagSimulatedTee, 1500,
                                           "quote verified", Audit("kbs.attest", "job:job-1")));
  EXPECT_EQ(j.state, JobState::kAttested);
  EXPECT_EQ(j.reason, "quote verified");
  EXPECT_NE(j.flags & kJobFlagSimulatedTee, 0u);
  EXPECT_EQ(Must(this->S().GetCredential("cred-1")).used_at, 1500);
  EXPECT_EQ(Must(this->S().JobHistory("job-1")).back().to, JobState::kAttested);
  // A second VM with the same credential: refused.
  const int64_t audit_before = this->AuditCount();
  auto again = this->S().AcceptAttestation("job-1", "cred-1", 0, 1501, "again",
                                           Audit("kbs.attest", "job:job-1"));
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->AuditCount(), audit_before);
}

TYPED_TEST_P(StoreConformanceTest, ExpiredOrNotYetValidCredentialIsRefused) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  MustOk(this->S().IssueCredential({"cred-1", "job-1", 1000, 2000, std::nullopt},
                                   Audit("credential.issue", "job:job-1")));
  auto expired = this->S().MarkCredentialUsed("cred-1", 2000, Audit("credential.use", "x"));
  EXPECT_EQ(expired.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(expired.status().message(), "expired")) << expired.status().message();
  auto early = this->S().MarkCredentialUsed("cred-1", 999, Audit("credential.use", "x"));
  EXPECT_EQ(early.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(Must(this->S().GetCredential("cred-1")).used_at.has_value());
  EXPECT_EQ(this->S().MarkCredentialUsed("cred-404", 1500, Audit("c", "x")).status().code(),
            StatusCode::kNotFound);
}

TYPED_TEST_P(StoreConformanceTest, RejectsCredentialForUnknownJobOrReusedId) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  EXPECT_EQ(this->S()
                .IssueCredential({"cred-1", "job-404", 1000, 2000, std::nullopt},
                                 Audit("credential.issue", "x"))
                .code(),
            StatusCode::kNotFound);
  MustOk(this->S().IssueCredential({"cred-1", "job-1", 1000, 2000, std::nullopt},
                                   Audit("credential.issue", "x")));
  EXPECT_EQ(this->S()
                .IssueCredential({"cred-1", "job-1", 1000, 2000, std::nullopt},
                                 Audit("credential.issue", "x"))
                .code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(this->S()
                .IssueCredential({"cred-2", "job-1", 2000, 2000, std::nullopt},
                                 Audit("credential.issue", "x"))
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->S().GetCredential("cred-2").status().code(), StatusCode::kNotFound);
}

TYPED_TEST_P(StoreConformanceTest, ConcurrentCredentialUseLetsExactlyOneWin) {
  User c = this->AddUser("c");
  this->SubmitJob(c.id, "job-1");
  MustOk(this->S().IssueCredential({"cred-1", "job-1", 1000, 2000, std::nullopt},
                                   Audit("credential.issue", "x")));
  std::atomic<int> won{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      if (this->S().MarkCredentialUsed("cred-1", 1100 + t, Audit("credential.use", "x")).ok()) {
        ++won;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
}

// ==== Outputs ====================================================================

TYPED_TEST_P(StoreConformanceTest, StoresAnOutputAndSetsItsVerdictOnce) {
  User c = this->AddUser("c");
  this->JobWithOutput(c.id, "job-1");
  Output o = Must(this->S().GetOutput("job-1"));
  EXPECT_EQ(o.blob_ref, "outputs/job-1");
  EXPECT_EQ(o.size, 1234);
  EXPECT_EQ(o.digest, Digest('b'));
  EXPECT_EQ(o.verdict, GateVerdict::kPending);
  Output judged =
      Must(this->S().SetGateVerdict("job-1", GateVerdict::kHold, 0.75, R"([{"rule":"pii"}])", 700,
                                    Audit("gate.verdict", "job:job-1")));
  EXPECT_EQ(judged.verdict, GateVerdict::kHold);
  EXPECT_EQ(judged.gate_score, 0.75);
  EXPECT_EQ(judged.gate_findings_json, R"([{"rule":"pii"}])");
  EXPECT_EQ(judged.gate_at, 700);
  auto again = this->S().SetGateVerdict("job-1", GateVerdict::kRelease, 0, "[]", 701,
                                        Audit("gate.verdict", "job:job-1"));
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Must(this->S().GetOutput("job-1")).verdict, GateVerdict::kHold);
  EXPECT_EQ(this->S()
                .SetGateVerdict("job-1", GateVerdict::kPending, 0, "[]", 1, Audit("g", "x"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->S()
                .SetGateVerdict("job-404", GateVerdict::kHold, 0, "[]", 1, Audit("g", "x"))
                .status()
                .code(),
            StatusCode::kNotFound);
}

TYPED_TEST_P(StoreConformanceTest, RejectsDuplicateOrOrphanOutput) {
  User c = this->AddUser("c");
  this->JobWithOutput(c.id, "job-1");
  Output o;
  o.job_id = "job-1";
  o.blob_ref = "outputs/again";
  o.size = 1;
  o.digest = Digest('c');
  o.created_at = 9;
  EXPECT_EQ(this->S().PutOutput(o, Audit("output.submit", "x")).code(), StatusCode::kAlreadyExists);
  o.job_id = "job-404";
  EXPECT_EQ(this->S().PutOutput(o, Audit("output.submit", "x")).code(), StatusCode::kNotFound);
  o.job_id = "job-1";
  o.verdict = GateVerdict::kRelease;
  EXPECT_EQ(this->S().PutOutput(o, Audit("output.submit", "x")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->S().GetOutput("job-404").status().code(), StatusCode::kNotFound);
}

// ==== Audit ======================================================================

TYPED_TEST_P(StoreConformanceTest, EveryMutationAppendsExactlyItsAuditEntry) {
  User p = this->AddUser("p", Role::kProvider);
  User c = this->AddUser("c");
  Dataset d = this->AddDataset("ds", p.id);
  this->Rent(d.id, c.id);
  Must(this->S().PutImage({"img", "v1", Digest('1'), c.id, 1}, Audit("image.push", "img")));
  this->JobWithOutput(c.id, "job-1");  // 1 submit + 5 transitions + 1 output
  MustOk(
      this->S().IssueCredential({"cred", "job-1", 1, 9, std::nullopt}, Audit("cred.issue", "x")));
  Must(this->S().MarkCredentialUsed("cred", 2, Audit("cred.use", "x")));
  Must(this->S().SetGateVerdict("job-1", GateVerdict::kHold, 1, "[]", 1, Audit("gate", "x")));
  MustOk(this->S().SetUserDisabled(c.id, true, Audit("user.disable", "x")));
  MustOk(this->S().SetUserTokenHash(c.id, TokenHash("z"), Audit("user.rotate", "x")));
  const std::vector<std::string> want = {
      "user.add",       "user.add",       "dataset.register", "rental.create",  "image.push",
      "job.submit",     "job.transition", "job.transition",   "job.transition", "job.transition",
      "job.transition", "output.submit",  "cred.issue",       "cred.use",       "gate",
      "user.disable",   "user.rotate"};
  auto audit = this->AllAudit();
  ASSERT_EQ(audit.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(audit[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(audit[i].record.action, want[i]) << "entry " << i + 1;
  }
}

TYPED_TEST_P(StoreConformanceTest, AuditEntriesFormTheDocumentedChain) {
  auto e1 = Must(this->S().AppendAudit(Audit("key.release", "job:1", AuditDecision::kDeny, 7)));
  auto e2 = Must(this->S().AppendAudit(Audit("authn", "", AuditDecision::kInfo, 8)));
  EXPECT_EQ(e1.seq, 1);
  EXPECT_EQ(e1.prev_hash, Sha256Digest{});
  EXPECT_EQ(e1.hash, AuditEntryHash(Sha256Digest{}, 1, e1.record));
  EXPECT_EQ(e2.prev_hash, e1.hash);
  EXPECT_EQ(e2.hash, AuditEntryHash(e1.hash, 2, Audit("authn", "", AuditDecision::kInfo, 8)));
  auto stored = this->AllAudit();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0], e1);
  EXPECT_EQ(stored[1], e2);
  EXPECT_EQ(Must(this->S().GetAuditHead()), (AuditHead{2, e2.hash}));
  AuditRecord bad = Audit("", "x");
  EXPECT_EQ(this->S().AppendAudit(bad).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST_P(StoreConformanceTest, ListsAuditByObjectAndPage) {
  for (int i = 0; i < 6; ++i) {
    Must(this->S().AppendAudit(Audit("a", i % 2 == 0 ? "job:even" : "job:odd")));
  }
  AuditFilter f;
  f.object = "job:even";
  auto even = Must(this->S().ListAudit(f));
  ASSERT_EQ(even.size(), 3u);
  EXPECT_EQ(even[1].seq, 3);
  f.after_seq = 3;
  EXPECT_EQ(Must(this->S().ListAudit(f)).size(), 1u);
  f = {};
  f.after_seq = 2;
  f.limit = 2;
  auto page = Must(this->S().ListAudit(f));
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].seq, 3);
  EXPECT_EQ(page[1].seq, 4);
}

TYPED_TEST_P(StoreConformanceTest, VerifiesAnIntactLogWithCheckpoints) {
  EXPECT_TRUE(this->VerifyAuditLog().ok());  // empty
  this->AuditLogOfTen();
  ChainReport r = this->VerifyAuditLog();
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.entries_checked, 10);
  EXPECT_EQ(r.checkpoints_checked, 2);
  EXPECT_EQ(r.head, Must(this->S().GetAuditHead()));
  auto checkpoints = Must(this->S().ListCheckpoints());
  ASSERT_EQ(checkpoints.size(), 2u);
  EXPECT_EQ(checkpoints[0].seq, 4);
  EXPECT_EQ(checkpoints[1].at, 2008);
}

// Issue 10, finding 2: deleting the last audit rows and the checkpoints above
// them verified, and so did an emptied log ("OK, 0 entries").
TYPED_TEST_P(StoreConformanceTest, AuditTailDeletedWithItsCheckpointsIsCaughtByAKeptCopy) {
  this->AuditLogOfTen();
  const auto kept = Must(this->S().ListCheckpoints());  // as the checkpoint file has them
  MustOk(this->F().AllowTampering());
  MustOk(this->F().ExecSql(
      "DELETE FROM audit_log WHERE seq > 6; DELETE FROM audit_checkpoints WHERE seq > 6"));
  EXPECT_TRUE(this->VerifyAuditLog().ok());  // the database alone cannot tell
  VerifyOptions with_file;
  with_file.extra_checkpoints = kept;
  ChainReport r = Must(VerifyAudit(this->S(), this->PublicKey(), with_file));
  EXPECT_EQ(r.failure, ChainFailure::kTruncated) << r.reason;
  EXPECT_EQ(r.first_bad_seq, 7);
}

TYPED_TEST_P(StoreConformanceTest, AnEmptiedAuditLogHasNoSignedGenesis) {
  Must(this->S().AppendAudit(Audit("plane.init", "plane", AuditDecision::kAllow, 1000)));
  this->Checkpoint(1000);  // the genesis
  this->AuditLogOfTen();
  VerifyOptions genesis;
  genesis.require_genesis = true;
  ChainReport intact = Must(VerifyAudit(this->S(), this->PublicKey(), genesis));
  EXPECT_TRUE(intact.ok()) << intact.reason;
  EXPECT_EQ(intact.signed_head.seq, 9);
  MustOk(this->F().AllowTampering());
  MustOk(this->F().ExecSql("DELETE FROM audit_log; DELETE FROM audit_checkpoints"));
  EXPECT_TRUE(this->VerifyAuditLog().ok());  // the finding: "OK, 0 entries"
  ChainReport emptied = Must(VerifyAudit(this->S(), this->PublicKey(), genesis));
  EXPECT_EQ(emptied.failure, ChainFailure::kNoGenesis) << emptied.reason;
  EXPECT_EQ(emptied.first_bad_seq, 1);
}

TYPED_TEST_P(StoreConformanceTest, AddCheckpointChecksTheChain) {
  this->AuditLogOfTen();
  AuditHead head = Must(this->S().GetAuditHead());
  AuditCheckpoint cp = Must(SignAuditCheckpoint(this->key_, head, 3000));
  AuditCheckpoint wrong = cp;
  wrong.hash[0] ^= 1;
  EXPECT_EQ(this->S().AddCheckpoint(wrong).code(), StatusCode::kFailedPrecondition);
  AuditCheckpoint beyond = cp;
  beyond.seq = 11;
  EXPECT_EQ(this->S().AddCheckpoint(beyond).code(), StatusCode::kNotFound);
  AuditCheckpoint short_sig = cp;
  short_sig.signature.resize(10);
  EXPECT_EQ(this->S().AddCheckpoint(short_sig).code(), StatusCode::kInvalidArgument);
  MustOk(this->S().AddCheckpoint(cp));
  MustOk(this->S().AddCheckpoint(Must(SignAuditCheckpoint(this->key_, head, 3001))));  // no-op
  auto checkpoints = Must(this->S().ListCheckpoints());
  ASSERT_EQ(checkpoints.size(), 3u);
  EXPECT_EQ(checkpoints[2], cp);
  EXPECT_EQ(SignAuditCheckpoint(this->key_, AuditHead{}, 1).status().code(),
            StatusCode::kFailedPrecondition);
}

TYPED_TEST_P(StoreConformanceTest, AuditLogRefusesUpdateAndDeleteThroughSql) {
  this->AuditLogOfTen();
  EXPECT_FALSE(this->F().ExecSql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2").ok());
  EXPECT_FALSE(this->F().ExecSql("DELETE FROM audit_log WHERE seq = 2").ok());
  EXPECT_FALSE(this->F().ExecSql("DELETE FROM audit_checkpoints").ok());
  EXPECT_TRUE(this->VerifyAuditLog().ok());
}

TYPED_TEST_P(StoreConformanceTest, VerifyDetectsEachEditedAuditColumn) {
  this->AuditLogOfTen();
  MustOk(this->F().AllowTampering());
  const AuditEntry e = this->AllAudit()[2];
  const std::vector<std::string> edits = {
      "at = at + 1",
      "actor = 'mallory'",
      "action = 'nothing.to.see'",
      "object = 'job:other'",
      "decision = 'deny'",
      "details = '{\"why\":\"edited\"}'",
      "prev_hash = " + TypeParam::BlobLiteral(Sha256Digest{}),
      "hash = " + TypeParam::BlobLiteral(Sha256Digest{}),
  };
  auto quote = [](const std::string& s) {
    std::string out = "'";
    for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
    return out + "'";
  };
  for (const std::string& set : edits) {
    MustOk(this->F().ExecSql("UPDATE audit_log SET " + set + " WHERE seq = 3"));
    ChainReport r = this->VerifyAuditLog();
    EXPECT_EQ(r.failure, ChainFailure::kEdited) << set << ": " << r.reason;
    EXPECT_EQ(r.first_bad_seq, 3) << set;
    EXPECT_TRUE(Contains(r.reason, "audit entry 3")) << r.reason;
    MustOk(this->F().ExecSql(
        "UPDATE audit_log SET at = " + std::to_string(e.record.at) +
        ", actor = " + quote(e.record.actor) + ", action = " + quote(e.record.action) +
        ", object = " + quote(e.record.object) +
        ", decision = " + quote(std::string(AuditDecisionName(e.record.decision))) +
        ", details = " + quote(e.record.details_json) +
        ", prev_hash = " + TypeParam::BlobLiteral(e.prev_hash) +
        ", hash = " + TypeParam::BlobLiteral(e.hash) + " WHERE seq = 3"));
    ASSERT_TRUE(this->VerifyAuditLog().ok()) << "restore after " << set;
  }
}

TYPED_TEST_P(StoreConformanceTest, VerifyDetectsADeletedAuditRow) {
  this->AuditLogOfTen();
  MustOk(this->F().AllowTampering());
  MustOk(this->F().ExecSql("DELETE FROM audit_log WHERE seq = 6"));
  ChainReport r = this->VerifyAuditLog();
  EXPECT_EQ(r.failure, ChainFailure::kMissing) << r.reason;
  EXPECT_EQ(r.first_bad_seq, 6);
}

TYPED_TEST_P(StoreConformanceTest, VerifyDetectsSwappedAuditRows) {
  this->AuditLogOfTen();
  MustOk(this->F().AllowTampering());
  MustOk(this->F().ExecSql(
      "UPDATE audit_log SET seq = -6 WHERE seq = 6; UPDATE audit_log SET seq = 6 WHERE seq = 5;"
      "UPDATE audit_log SET seq = 5 WHERE seq = -6;"));
  ChainReport r = this->VerifyAuditLog();
  EXPECT_EQ(r.failure, ChainFailure::kReordered) << r.reason;
  EXPECT_EQ(r.first_bad_seq, 5);
}

TYPED_TEST_P(StoreConformanceTest, VerifyDetectsForgedCheckpoints) {
  this->AuditLogOfTen();
  MustOk(this->F().AllowTampering());
  const AuditCheckpoint original = Must(this->S().ListCheckpoints())[1];  // seq 8
  Bytes forged = original.signature;
  forged[10] ^= 0x40;
  MustOk(this->F().ExecSql("UPDATE audit_checkpoints SET signature = " +
                           TypeParam::BlobLiteral(forged) + " WHERE seq = 8"));
  ChainReport r = this->VerifyAuditLog();
  EXPECT_EQ(r.failure, ChainFailure::kBadSignature) << r.reason;
  EXPECT_EQ(r.first_bad_seq, 8);
  MustOk(this->F().ExecSql("UPDATE audit_checkpoints SET signature = " +
                           TypeParam::BlobLiteral(original.signature) + " WHERE seq = 8"));
  ASSERT_TRUE(this->VerifyAuditLog().ok());

  // A checkpoint signed by a key that is not the plane's.
  auto other = Must(Ed25519PrivateKey::Generate());
  AuditEntry e = this->AllAudit()[9];
  AuditCheckpoint fake = Must(SignAuditCheckpoint(other, AuditHead{e.seq, e.hash}, 1));
  MustOk(this->F().ExecSql("INSERT INTO audit_checkpoints (seq, hash, signature, at) VALUES (10, " +
                           TypeParam::BlobLiteral(fake.hash) + ", " +
                           TypeParam::BlobLiteral(fake.signature) + ", 1)"));
  ChainReport r2 = this->VerifyAuditLog();
  EXPECT_EQ(r2.failure, ChainFailure::kBadSignature) << r2.reason;
  EXPECT_EQ(r2.first_bad_seq, 10);
}

TYPED_TEST_P(StoreConformanceTest, VerifyDetectsAChainRewrittenUnderACheckpoint) {
  this->AuditLogOfTen();
  MustOk(this->F().AllowTampering());
  // Edit entry 6 and recompute the hashes of 6..10, as an attacker with the
  // file (but not the plane key) can: the chain is self-consistent again,
  // but the signed checkpoint at 8 disagrees.
  auto rows = this->AllAudit();
  rows[5].record.actor = "mallory";
  for (size_t i = 5; i < rows.size(); ++i) {
    rows[i].prev_hash = rows[i - 1].hash;
    rows[i].hash = AuditEntryHash(rows[i].prev_hash, rows[i].seq, rows[i].record);
    MustOk(this->F().ExecSql("UPDATE audit_log SET actor = '" + rows[i].record.actor +
                             "', prev_hash = " + TypeParam::BlobLiteral(rows[i].prev_hash) +
                             ", hash = " + TypeParam::BlobLiteral(rows[i].hash) +
                             " WHERE seq = " + std::to_string(rows[i].seq)));
  }
  ChainReport r = this->VerifyAuditLog();
  EXPECT_EQ(r.failure, ChainFailure::kCheckpointMismatch) << r.reason;
  EXPECT_EQ(r.first_bad_seq, 5);  // after the good checkpoint at 4
  EXPECT_TRUE(Contains(r.reason, "checkpoint at seq 8")) << r.reason;
}

TYPED_TEST_P(StoreConformanceTest, VerifyDetectsATruncatedLog) {
  this->AuditLogOfTen();
  MustOk(this->F().AllowTampering());
  MustOk(this->F().ExecSql("DELETE FROM audit_log WHERE seq > 6"));
  ChainReport r = this->VerifyAuditLog();
  EXPECT_EQ(r.failure, ChainFailure::kTruncated) << r.reason;
  EXPECT_EQ(r.first_bad_seq, 7);
}

// ==== Schema =====================================================================

TYPED_TEST_P(StoreConformanceTest, ReopeningKeepsDataAndSchema) {
  const int64_t version = Must(this->S().SchemaVersion());
  EXPECT_GE(version, 1);
  User u = this->AddUser("alice");
  this->SubmitJob(u.id, "job-1");
  this->Reopen();
  EXPECT_EQ(Must(this->S().SchemaVersion()), version);
  EXPECT_EQ(Must(this->S().GetUserByName("alice")), u);
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kSubmitted);
  EXPECT_TRUE(this->VerifyAuditLog().ok());
  this->Reopen();
  EXPECT_EQ(Must(this->S().SchemaVersion()), version);
}

TYPED_TEST_P(StoreConformanceTest, RefusesADatabaseWithANewerSchema) {
  this->AddUser("alice");
  MustOk(this->F().PretendNewerSchema(9999));
  this->store_.reset();
  auto r = this->F().Open();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(r.status().message(), "9999")) << r.status().message();
}

// ==== Concurrency and processes =====================================================

TYPED_TEST_P(StoreConformanceTest, ManyThreadsCreateJobsAndTheLogStaysConsistent) {
  User c = this->AddUser("c");
  constexpr int kThreads = 16;
  constexpr int kPerThread = 70;  // > 1000 entries: VerifyAudit pages
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "job-" + std::to_string(t) + "-" + std::to_string(i);
        if (!this->S().CreateJob(this->NewJob(c.id, id), Audit("job.submit", "job:" + id)).ok()) {
          ++failures;
        }
        if (!this->S().GetJob(id).ok()) ++failures;  // read-your-writes
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  JobFilter all;
  all.limit = 10000;
  EXPECT_EQ(Must(this->S().ListJobs(all)).size(), size_t{kThreads * kPerThread});
  this->Checkpoint();
  ChainReport r = this->VerifyAuditLog();
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.entries_checked, 1 + kThreads * kPerThread);
}

// Returns once `fd` has a line, or false after timeout_ms.
bool ReadLine(int fd, std::string& buffer, std::string& line, int timeout_ms) {
  while (true) {
    const size_t nl = buffer.find('\n');
    if (nl != std::string::npos) {
      line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return true;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

// `cce-plane user add` while the server runs: the first process keeps the
// database open and writes from several threads while a second process
// (fork, then its own Store) creates users. Both append to one audit chain.
TYPED_TEST_P(StoreConformanceTest, SecondProcessCreatesUsersWhileTheFirstHasItOpen) {
  this->AddUser("first");
  int go[2];
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  UniqueFd go_read(go[0]);
  UniqueFd go_write(go[1]);
  // Fork while this process is single-threaded and holds no SQLite state,
  // as if `cce-plane user add` had been exec'd; the child opens the database
  // only after the parent has it open again.
  this->store_.reset();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    go_write.reset();
    char byte = 0;
    int code = read(go_read.get(), &byte, 1) == 1 ? 0 : 2;
    if (code == 0) {
      auto store = this->F().Open();
      if (!store.ok()) _exit(3);
      for (int i = 0; i < 30 && code == 0; ++i) {
        User u;
        u.name = "child-" + std::to_string(i);
        u.token_hash = TokenHash(u.name);
        if (!(*store)->CreateUser(u, Audit("user.add", "user:" + u.name)).ok()) code = 4;
      }
    }
    _exit(code);  // no gtest teardown in the child
  }
  go_read.reset();
  this->Reopen();
  ASSERT_EQ(write(go_write.get(), "g", 1), 1);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        User u;
        u.name = "parent-" + std::to_string(t) + "-" + std::to_string(i);
        u.token_hash = TokenHash(u.name);
        if (!this->S().CreateUser(u, Audit("user.add", "user:" + u.name)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Must(this->S().ListUsers()).size(), 61u);
  EXPECT_EQ(Must(this->S().GetUserByTokenHash(TokenHash("child-29"))).name, "child-29");
  ChainReport r = this->VerifyAuditLog();
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.entries_checked, 61);
}

// A child creates jobs from several threads and reports each id through a
// pipe only after CreateJob returned OK; it is SIGKILLed mid-stream. Every
// reported id must be there after reopening.
TYPED_TEST_P(StoreConformanceTest, AcknowledgedWritesSurviveSigkill) {
  const int64_t consumer = this->AddUser("c").id;
  this->store_.reset();  // nothing open across fork
  int acks[2];
  ASSERT_EQ(pipe2(acks, O_CLOEXEC), 0);
  UniqueFd ack_read(acks[0]);
  UniqueFd ack_write(acks[1]);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ack_read.reset();
    auto store = this->F().Open();
    if (!store.ok()) _exit(3);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          const std::string id = "job-" + std::to_string(t) + "-" + std::to_string(i);
          if ((*store)->CreateJob(this->NewJob(consumer, id), Audit("job.submit", id)).ok()) {
            const std::string line = id + "\n";  // one write() below PIPE_BUF: atomic
            if (write(ack_write.get(), line.data(), line.size()) < 0) _exit(5);
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    _exit(0);
  }
  ack_write.reset();
  std::vector<std::string> acknowledged;
  std::string buffer;
  std::string line;
  while (acknowledged.size() < 300 && ReadLine(ack_read.get(), buffer, line, 20000)) {
    acknowledged.push_back(line);
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  while (ReadLine(ack_read.get(), buffer, line, 5000)) acknowledged.push_back(line);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_GE(acknowledged.size(), 300u);

  this->Reopen();
  size_t missing = 0;
  for (const std::string& id : acknowledged) {
    if (!this->S().GetJob(id).ok()) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged";
  ChainReport r = this->VerifyAuditLog();
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_GE(r.entries_checked, static_cast<int64_t>(acknowledged.size()) + 1);
}

// ==== Reviews ======================================================================

TYPED_TEST_P(StoreConformanceTest, DistinctApprovalsReleaseAHeldJobInOneStep) {
  User c = this->AddUser("c");
  User r1 = this->AddUser("rita", Role::kReviewer);
  User r2 = this->AddUser("rob", Role::kReviewer);
  this->HeldJob(c.id, "job-1");
  const int64_t before = this->AuditCount();
  // The first of two approvals: recorded and audited; the job stays HELD.
  ReviewOutcome first = Must(this->Decide("job-1", r1.id, ReviewDecision::kApprove, 2));
  EXPECT_EQ(first.job.state, JobState::kHeld);
  ASSERT_EQ(first.reviews.size(), 1u);
  EXPECT_GT(first.reviews[0].seq, 0);
  EXPECT_EQ(first.reviews[0].reviewer_id, r1.id);
  EXPECT_EQ(first.reviews[0].decision, ReviewDecision::kApprove);
  EXPECT_EQ(first.reviews[0].reason, "aggregates only");
  EXPECT_EQ(first.reviews[0].at, 700);
  EXPECT_EQ(this->AuditCount(), before + 1);
  // The same reviewer again (either way) is refused and writes nothing.
  for (ReviewDecision d : {ReviewDecision::kApprove, ReviewDecision::kReject}) {
    auto again = this->Decide("job-1", r1.id, d, 2);
    EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
    EXPECT_TRUE(Contains(again.status().message(), "rita")) << again.status().message();
  }
  EXPECT_EQ(this->AuditCount(), before + 1);
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kHeld);
  // A second, distinct reviewer completes the policy: APPROVED then RELEASED.
  ReviewOutcome second = Must(this->Decide("job-1", r2.id, ReviewDecision::kApprove, 2));
  EXPECT_EQ(second.job.state, JobState::kReleased);
  EXPECT_EQ(second.job.reason, "reviewed");
  EXPECT_EQ(second.reviews.size(), 2u);
  EXPECT_EQ(this->AuditCount(), before + 3);  // the decision and the move
  auto history = Must(this->S().JobHistory("job-1"));
  ASSERT_GE(history.size(), 3u);
  EXPECT_EQ(history[history.size() - 2].to, JobState::kApproved);
  EXPECT_EQ(history.back().from, JobState::kApproved);
  EXPECT_EQ(history.back().to, JobState::kReleased);
  EXPECT_EQ(Must(this->S().ListReviews("job-1")), second.reviews);
  EXPECT_TRUE(this->VerifyAuditLog().ok());
  // Settled: no further decision.
  User r3 = this->AddUser("ruth", Role::kReviewer);
  EXPECT_EQ(this->Decide("job-1", r3.id, ReviewDecision::kReject).status().code(),
            StatusCode::kFailedPrecondition);
}

TYPED_TEST_P(StoreConformanceTest, OneRejectRejectsWhateverTheApprovals) {
  User c = this->AddUser("c");
  User r1 = this->AddUser("rita", Role::kReviewer);
  User r2 = this->AddUser("rob", Role::kReviewer);
  this->HeldJob(c.id, "job-1");
  EXPECT_EQ(Must(this->Decide("job-1", r1.id, ReviewDecision::kApprove, 2)).job.state,
            JobState::kHeld);
  ReviewOutcome out = Must(this->Decide("job-1", r2.id, ReviewDecision::kReject, 2));
  EXPECT_EQ(out.job.state, JobState::kRejected);
  EXPECT_EQ(Must(this->S().JobHistory("job-1")).back().from, JobState::kHeld);
  // With one approval required, a lone reject rejects too.
  this->HeldJob(c.id, "job-2");
  EXPECT_EQ(Must(this->Decide("job-2", r1.id, ReviewDecision::kReject)).job.state,
            JobState::kRejected);
}

TYPED_TEST_P(StoreConformanceTest, ReviewNeedsAHeldJobAHoldVerdictAndAnEnabledReviewer) {
  User c = this->AddUser("c");
  User rita = this->AddUser("rita", Role::kReviewer);
  User op = this->AddUser("olga", Role::kOperator);
  this->HeldJob(c.id, "job-1");
  this->JobWithOutput(c.id, "job-2");  // OUTPUT_SUBMITTED, verdict pending
  // HELD, but without the gate's hold verdict (a HELD written by hand).
  this->JobWithOutput(c.id, "job-3");
  this->Move("job-3", JobState::kOutputSubmitted, JobState::kHeld);
  const int64_t before = this->AuditCount();
  auto not_held = this->Decide("job-2", rita.id, ReviewDecision::kApprove);
  EXPECT_EQ(not_held.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(not_held.status().message(), "OUTPUT_SUBMITTED"))
      << not_held.status().message();
  auto pending = this->Decide("job-3", rita.id, ReviewDecision::kApprove);
  EXPECT_EQ(pending.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(pending.status().message(), "'pending'")) << pending.status().message();
  EXPECT_EQ(this->Decide("job-1", c.id, ReviewDecision::kApprove).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->Decide("job-1", op.id, ReviewDecision::kApprove).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->Decide("job-1", 999, ReviewDecision::kApprove).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(this->Decide("job-404", rita.id, ReviewDecision::kApprove).status().code(),
            StatusCode::kNotFound);
  MustOk(this->S().SetUserDisabled(rita.id, true, Audit("user.disable", "user:rita")));
  EXPECT_EQ(this->Decide("job-1", rita.id, ReviewDecision::kApprove).status().code(),
            StatusCode::kFailedPrecondition);
  MustOk(this->S().SetUserDisabled(rita.id, false, Audit("user.enable", "user:rita")));
  // Malformed input.
  auto record = [&](const Review& r, int64_t required, std::string_view move_reason) {
    return this->S()
        .RecordReview(r, required, move_reason, Audit("review", "job:job-1"),
                      Audit("move", "job:job-1"))
        .status()
        .code();
  };
  Review r = this->NewReview("job-1", rita.id);
  r.reason = "";
  EXPECT_EQ(record(r, 1, "m"), StatusCode::kInvalidArgument);
  r.reason = std::string(kMaxReviewReasonBytes + 1, 'x');
  EXPECT_EQ(record(r, 1, "m"), StatusCode::kInvalidArgument);
  r.reason = "ok";
  EXPECT_EQ(record(r, 0, "m"), StatusCode::kInvalidArgument);
  EXPECT_EQ(record(r, kMaxRequiredApprovals + 1, "m"), StatusCode::kInvalidArgument);
  EXPECT_EQ(record(r, 1, ""), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->AuditCount(), before + 2);  // the disable and enable only
  EXPECT_TRUE(Must(this->S().ListReviews("job-1")).empty());
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kHeld);
  EXPECT_EQ(this->S().ListReviews("job-404").status().code(), StatusCode::kNotFound);
}

TYPED_TEST_P(StoreConformanceTest, ReviewMovesAreRefusedOutsideRecordReview) {
  User c = this->AddUser("c");
  this->HeldJob(c.id, "job-1");
  const int64_t before = this->AuditCount();
  for (JobState to : {JobState::kApproved, JobState::kRejected}) {
    auto r = this->S().TransitionJob("job-1", JobState::kHeld, to, "by hand",
                                     Audit("job.transition", "job:job-1"));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << JobStateName(to);
    EXPECT_TRUE(Contains(r.status().message(), "review")) << r.status().message();
  }
  EXPECT_EQ(this->S()
                .TransitionJob("job-1", JobState::kApproved, JobState::kReleased, "by hand",
                               Audit("job.transition", "job:job-1"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->AuditCount(), before);
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kHeld);
  // A held job can still be cancelled.
  EXPECT_EQ(this->Move("job-1", JobState::kHeld, JobState::kCancelled).state, JobState::kCancelled);
}

TYPED_TEST_P(StoreConformanceTest, FailingMoveAuditWritesNeitherTheDecisionNorTheMove) {
  User c = this->AddUser("c");
  User rita = this->AddUser("rita", Role::kReviewer);
  this->HeldJob(c.id, "job-1");
  const int64_t before = this->AuditCount();
  MustOk(this->F().FailAuditInsertsFor("job.review_move"));
  auto r = this->Decide("job-1", rita.id, ReviewDecision::kApprove);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "injected audit failure")) << r.status().message();
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kHeld);
  EXPECT_TRUE(Must(this->S().ListReviews("job-1")).empty());
  EXPECT_EQ(this->AuditCount(), before);
  EXPECT_TRUE(this->VerifyAuditLog().ok());
}

TYPED_TEST_P(StoreConformanceTest, ListsRecentReviewsNewestFirstAndKeepsThemOnReopen) {
  User c = this->AddUser("c");
  User rita = this->AddUser("rita", Role::kReviewer);
  User rob = this->AddUser("rob", Role::kReviewer);
  this->HeldJob(c.id, "job-1");
  this->HeldJob(c.id, "job-2");
  Must(this->Decide("job-1", rita.id, ReviewDecision::kApprove, 2));
  Must(this->Decide("job-2", rita.id, ReviewDecision::kReject, 2));
  Must(this->Decide("job-1", rob.id, ReviewDecision::kApprove, 2));
  this->Reopen();
  auto recent = Must(this->S().ListRecentReviews(2));
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0].job_id, "job-1");
  EXPECT_EQ(recent[0].reviewer_id, rob.id);
  EXPECT_EQ(recent[1].job_id, "job-2");
  EXPECT_GT(recent[0].seq, recent[1].seq);
  EXPECT_EQ(Must(this->S().ListReviews("job-1")).size(), 2u);
  EXPECT_EQ(Must(this->S().GetJob("job-1")).state, JobState::kReleased);
  EXPECT_EQ(this->S().ListRecentReviews(0).status().code(), StatusCode::kInvalidArgument);
  // Append-only through SQL too.
  EXPECT_FALSE(this->F().ExecSql("UPDATE reviews SET decision = 'approve'").ok());
  EXPECT_FALSE(this->F().ExecSql("DELETE FROM reviews").ok());
}

Sample NewSample(int64_t dataset, int64_t publisher, int64_t version, uint8_t digest_byte = 1) {
  Sample out;
  out.dataset_id = dataset;
  out.version = version;
  out.file_count = 3;
  out.total_bytes = 1234;
  out.files_digest.fill(digest_byte);
  out.published_by = publisher;
  out.published_at = 700 + version;
  return out;
}

TYPED_TEST_P(StoreConformanceTest, RecordsSampleVersionsInOrderWithTheirAudit) {
  User p = this->AddUser("p", Role::kProvider);
  Dataset d = this->AddDataset("claims", p.id);
  Dataset other = this->AddDataset("labs", p.id);
  EXPECT_EQ(this->S().GetLatestSample(d.id).status().code(), StatusCode::kNotFound);
  const int64_t before = this->AuditCount();
  Sample v1 = Must(this->S().RecordSample(NewSample(d.id, p.id, 1, 1),
                                          Audit("dataset.sample.publish", "dataset:claims")));
  EXPECT_EQ(v1, NewSample(d.id, p.id, 1, 1));
  EXPECT_EQ(this->AuditCount(), before + 1);
  EXPECT_EQ(this->AllAudit().back().record.action, "dataset.sample.publish");
  Must(this->S().RecordSample(NewSample(d.id, p.id, 2, 2),
                              Audit("dataset.sample.publish", "dataset:claims")));
  this->Reopen();
  EXPECT_EQ(Must(this->S().GetLatestSample(d.id)), NewSample(d.id, p.id, 2, 2));
  // Versions are per dataset.
  EXPECT_EQ(this->S().GetLatestSample(other.id).status().code(), StatusCode::kNotFound);
  Must(this->S().RecordSample(NewSample(other.id, p.id, 1, 3),
                              Audit("dataset.sample.publish", "dataset:labs")));
  EXPECT_EQ(Must(this->S().GetLatestSample(other.id)).version, 1);
  EXPECT_EQ(Must(this->S().GetLatestSample(d.id)).version, 2);
  EXPECT_TRUE(this->VerifyAuditLog().ok());
  // Append-only through SQL too.
  EXPECT_FALSE(this->F().ExecSql("UPDATE samples SET total_bytes = 1").ok());
  EXPECT_FALSE(this->F().ExecSql("DELETE FROM samples").ok());
}

TYPED_TEST_P(StoreConformanceTest, RefusesASampleOutOfOrderOrWithUnknownReferences) {
  User p = this->AddUser("p", Role::kProvider);
  Dataset d = this->AddDataset("claims", p.id);
  const int64_t before = this->AuditCount();
  auto audit = Audit("dataset.sample.publish", "dataset:claims");
  // The first version is 1; a skipped or repeated version is a lost race.
  auto skipped = this->S().RecordSample(NewSample(d.id, p.id, 2), audit);
  EXPECT_EQ(skipped.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(skipped.status().message(), "next is 1")) << skipped.status().message();
  Must(this->S().RecordSample(NewSample(d.id, p.id, 1), audit));
  EXPECT_EQ(this->S().RecordSample(NewSample(d.id, p.id, 1), audit).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->S().RecordSample(NewSample(d.id + 100, p.id, 1), audit).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(this->S().RecordSample(NewSample(d.id, p.id + 100, 2), audit).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(this->S().RecordSample(NewSample(d.id, p.id, 0), audit).status().code(),
            StatusCode::kInvalidArgument);
  Sample negative = NewSample(d.id, p.id, 2);
  negative.total_bytes = -1;
  EXPECT_EQ(this->S().RecordSample(negative, audit).status().code(),
            StatusCode::kInvalidArgument);
  // Only the one good publication was written, with its one audit entry.
  EXPECT_EQ(this->AuditCount(), before + 1);
  EXPECT_EQ(Must(this->S().GetLatestSample(d.id)).version, 1);
}

TYPED_TEST_P(StoreConformanceTest, FailingAuditInsertWritesNoSample) {
  User p = this->AddUser("p", Role::kProvider);
  Dataset d = this->AddDataset("claims", p.id);
  const int64_t before = this->AuditCount();
  MustOk(this->F().FailAuditInsertsFor("dataset.sample.publish"));
  auto r = this->S().RecordSample(NewSample(d.id, p.id, 1),
                                  Audit("dataset.sample.publish", "dataset:claims"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(this->S().GetLatestSample(d.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->AuditCount(), before);
}

// ==== Explore sessions ==============================================================

ExploreSession NewExploreSession(const std::string& id, int64_t owner, char token = 't') {
  ExploreSession x;
  x.id = id;
  x.owner_id = owner;
  x.backend = "local";
  x.datasets = {{7, "claims", 2}, {9, "labs-2026", 1}};
  x.idle_timeout_s = 1800;
  x.created_at = 1000;
  x.last_activity_at = 1000;
  x.sdk_token_hash = TokenHash(std::string("sdk-") + token + id);
  return x;
}

TYPED_TEST_P(StoreConformanceTest, ExploreSessionLivesAndDiesWithItsAudit) {
  User u = this->AddUser("carol");
  const int64_t before = this->AuditCount();
  ExploreSession x = NewExploreSession("xs-00000000000000a1", u.id);
  ExploreSession got = Must(
      this->S().CreateExploreSession(x, 2, Audit("explore.start", "explore:" + x.id)), "create");
  EXPECT_EQ(got, x);
  EXPECT_EQ(this->AuditCount(), before + 1);
  EXPECT_EQ(Must(this->S().GetExploreSession(x.id)), x);
  EXPECT_EQ(Must(this->S().GetExploreSessionBySdkTokenHash(x.sdk_token_hash)).id, x.id);
  EXPECT_EQ(this->S().GetExploreSessionBySdkTokenHash(TokenHash("nope")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(this->S().GetExploreSession("xs-ffffffffffffffff").status().code(),
            StatusCode::kNotFound);

  // No login before RUNNING.
  EXPECT_EQ(
      this->S()
          .SetExploreLoginCode(x.id, TokenHash("code"), 2000, Audit("explore.login_url", x.id))
          .code(),
      StatusCode::kFailedPrecondition);
  ExploreSession running = Must(this->S().TransitionExploreSession(
      x.id, {ExploreState::kStarting}, ExploreState::kRunning, "", std::string(R"({"port":1})"),
      Audit("explore.running", x.id)));
  EXPECT_EQ(running.state, ExploreState::kRunning);
  EXPECT_EQ(running.upstream_json, R"({"port":1})");
  EXPECT_EQ(running.stopped_at, 0);
  // Wrong `from`: names the state.
  auto wrong =
      this->S().TransitionExploreSession(x.id, {ExploreState::kStarting}, ExploreState::kRunning,
                                         "", std::nullopt, Audit("explore.running", x.id));
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(wrong.status().message(), "RUNNING")) << wrong.status().message();

  // A one-time login code: single use, expires.
  MustOk(this->S().SetExploreLoginCode(x.id, TokenHash("code"), 2000,
                                       Audit("explore.login_url", x.id)));
  const int64_t at_code = this->AuditCount();
  EXPECT_EQ(this->S()
                .ConsumeExploreLoginCode(x.id, TokenHash("other"), 1500, TokenHash("cookie"),
                                         Audit("explore.login", x.id))
                .status()
                .code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(this->S()
                .ConsumeExploreLoginCode(x.id, TokenHash("code"), 2000, TokenHash("cookie"),
                                         Audit("explore.login", x.id))
                .status()
                .code(),
            StatusCode::kPermissionDenied)
      << "a code must not work at its expiry";
  EXPECT_EQ(this->AuditCount(), at_code) << "a refused login wrote its allow record";
  ExploreSession in = Must(this->S().ConsumeExploreLoginCode(
      x.id, TokenHash("code"), 1999, TokenHash("cookie"), Audit("explore.login", x.id)));
  EXPECT_EQ(in.cookie_hash, TokenHash("cookie"));
  EXPECT_FALSE(in.login_code_hash.has_value());
  EXPECT_EQ(this->S()
                .ConsumeExploreLoginCode(x.id, TokenHash("code"), 1999, TokenHash("cookie2"),
                                         Audit("explore.login", x.id))
                .status()
                .code(),
            StatusCode::kPermissionDenied)
      << "a login code worked twice";

  // Activity only moves forward.
  MustOk(this->S().TouchExploreSession(x.id, 3000));
  MustOk(this->S().TouchExploreSession(x.id, 2500));
  EXPECT_EQ(Must(this->S().GetExploreSession(x.id)).last_activity_at, 3000);
  EXPECT_EQ(this->S().TouchExploreSession("xs-ffffffffffffffff", 1).code(), StatusCode::kNotFound);

  // Stopping is final and drops the browser's cookie.
  ExploreSession stopped = Must(this->S().TransitionExploreSession(
      x.id, {ExploreState::kStarting, ExploreState::kRunning}, ExploreState::kStopped,
      "idle for 30 min", std::nullopt, Audit("explore.stop", x.id, AuditDecision::kAllow, 4000)));
  EXPECT_EQ(stopped.state, ExploreState::kStopped);
  EXPECT_EQ(stopped.stop_reason, "idle for 30 min");
  EXPECT_EQ(stopped.stopped_at, 4000);
  EXPECT_FALSE(stopped.cookie_hash.has_value());
  EXPECT_EQ(stopped.upstream_json, R"({"port":1})");
  EXPECT_EQ(this->S()
                .TransitionExploreSession(x.id, {ExploreState::kStopped}, ExploreState::kRunning,
                                          "", std::nullopt, Audit("explore.running", x.id))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->S()
                .TransitionExploreSession(x.id, {ExploreState::kRunning}, ExploreState::kLost,
                                          "gone", std::nullopt, Audit("explore.lost", x.id))
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  this->Reopen();
  EXPECT_EQ(Must(this->S().GetExploreSession(x.id)), stopped);
}

TYPED_TEST_P(StoreConformanceTest, ExploreSessionsAreCappedPerOwnerAndListed) {
  User a = this->AddUser("carol");
  User b = this->AddUser("dave");
  auto create = [&](const std::string& id, int64_t owner, int64_t at) {
    ExploreSession x = NewExploreSession(id, owner);
    x.created_at = at;
    return this->S().CreateExploreSession(x, 2, Audit("explore.start", id));
  };
  ASSERT_TRUE(create("xs-0000000000000001", a.id, 1).ok());
  ASSERT_TRUE(create("xs-0000000000000002", a.id, 2).ok());
  const int64_t before = this->AuditCount();
  auto third = create("xs-0000000000000003", a.id, 3);
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Contains(third.status().message(), "max_sessions_per_user"))
      << third.status().message();
  EXPECT_EQ(this->AuditCount(), before);
  EXPECT_TRUE(create("xs-0000000000000004", b.id, 4).ok()) << "the cap is per owner";
  EXPECT_EQ(create("xs-0000000000000001", b.id, 5).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(this->S()
                .CreateExploreSession(NewExploreSession("xs-0000000000000009", 999), 2,
                                      Audit("explore.start", "x"))
                .status()
                .code(),
            StatusCode::kNotFound);
  ExploreSession bad = NewExploreSession("xs-0000000000000008", b.id);
  bad.state = ExploreState::kRunning;
  EXPECT_EQ(this->S().CreateExploreSession(bad, 2, Audit("explore.start", "x")).status().code(),
            StatusCode::kInvalidArgument);
  Must(this->S().TransitionExploreSession("xs-0000000000000001", {ExploreState::kStarting},
                                          ExploreState::kFailed, "runc refused", std::nullopt,
                                          Audit("explore.fail", "x")));
  EXPECT_TRUE(create("xs-0000000000000005", a.id, 6).ok()) << "a failed session frees its slot";

  auto all_a = Must(this->S().ListExploreSessions({.owner_id = a.id, .live_only = false}));
  ASSERT_EQ(all_a.size(), 3u);
  EXPECT_EQ(all_a[0].id, "xs-0000000000000005");  // newest first
  auto live = Must(this->S().ListExploreSessions({.owner_id = std::nullopt, .live_only = true}));
  EXPECT_EQ(live.size(), 3u);
  for (const auto& x : live) EXPECT_TRUE(IsLiveExploreState(x.state)) << x.id;
}

TYPED_TEST_P(StoreConformanceTest, FailingAuditInsertWritesNoExploreSession) {
  User u = this->AddUser("carol");
  const int64_t before = this->AuditCount();
  MustOk(this->F().FailAuditInsertsFor("explore.start"));
  ExploreSession x = NewExploreSession("xs-00000000000000b1", u.id);
  EXPECT_FALSE(this->S().CreateExploreSession(x, 2, Audit("explore.start", x.id)).ok());
  EXPECT_EQ(this->S().GetExploreSession(x.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->AuditCount(), before);
}

// ==== Ethereum ledger index ==========================================================

std::string Hex0x(char c, size_t digits) {
  return "0x" + std::string(digits, c);
}

ChainCursor NewCursor(int64_t next_block, char hash = 'c') {
  return {31337, Hex0x('a', 40), next_block, next_block == 0 ? "" : Hex0x(hash, 64)};
}

ChainRental NewChainRental(char tx, int64_t log_index, int64_t block, int64_t dataset,
                           const std::string& payer, int64_t start = 1000, int64_t end = 2000) {
  ChainRental r;
  r.tx_hash = Hex0x(tx, 64);
  r.log_index = log_index;
  r.block_number = block;
  r.block_hash = Hex0x('b', 64);
  r.dataset_id = dataset;
  r.payer = payer;
  r.start = start;
  r.end = end;
  r.days = 1;
  r.amount_wei = "10000000000000000";
  r.indexed_at = 3000;
  return r;
}

std::vector<std::pair<std::string, int64_t>> Keys(const std::vector<ChainRental>& rentals) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : rentals) out.emplace_back(r.tx_hash, r.log_index);
  return out;
}

TYPED_TEST_P(StoreConformanceTest, WalletLinksAreUniquePerAddressAndPermanent) {
  User carol = this->AddUser("carol");
  User dave = this->AddUser("dave");
  const std::string a1 = Hex0x('1', 40), a2 = Hex0x('2', 40), a3 = Hex0x('3', 40);
  const int64_t before = this->AuditCount();
  EXPECT_EQ(Must(this->S().LinkWallet({a1, carol.id, 10}, Audit("wallet.link", "user:carol"))),
            (WalletLink{a1, carol.id, 10}));
  Must(this->S().LinkWallet({a2, carol.id, 11}, Audit("wallet.link", "user:carol")));
  Must(this->S().LinkWallet({a3, dave.id, 12}, Audit("wallet.link", "user:dave")));
  EXPECT_EQ(this->AuditCount(), before + 3);
  // An address is linked once: not to another user, not again to the same one.
  EXPECT_EQ(
      this->S().LinkWallet({a1, dave.id, 13}, Audit("wallet.link", "user:dave")).status().code(),
      StatusCode::kAlreadyExists);
  EXPECT_EQ(
      this->S().LinkWallet({a1, carol.id, 13}, Audit("wallet.link", "user:carol")).status().code(),
      StatusCode::kAlreadyExists);
  // One spelling per address: mixed case (EIP-55) or a short address is refused.
  auto mixed = this->S().LinkWallet({"0xAb" + std::string(38, '1'), dave.id, 13},
                                    Audit("wallet.link", "user:dave"));
  EXPECT_EQ(mixed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(mixed.status().message(), "wallet.address")) << mixed.status().message();
  EXPECT_EQ(this->S()
                .LinkWallet({Hex0x('4', 38), dave.id, 13}, Audit("wallet.link", "user:dave"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->S()
                .LinkWallet({Hex0x('4', 40), 999, 13}, Audit("wallet.link", "user:x"))
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(this->AuditCount(), before + 3) << "a refused link wrote its audit record";

  auto of_carol = Must(this->S().ListWalletLinks(carol.id));
  ASSERT_EQ(of_carol.size(), 2u);
  EXPECT_EQ(of_carol[0].address, a1);
  EXPECT_EQ(of_carol[1].address, a2);
  EXPECT_EQ(Must(this->S().ListWalletLinks(std::nullopt)).size(), 3u);
  EXPECT_TRUE(Must(this->S().ListWalletLinks(999)).empty());
  // Links are permanent, through SQL too: an address's rentals never move.
  EXPECT_FALSE(this->F()
                   .ExecSql("UPDATE eth_wallets SET user_id = " + std::to_string(dave.id) +
                            " WHERE address = '" + a1 + "'")
                   .ok());
  EXPECT_FALSE(this->F().ExecSql("DELETE FROM eth_wallets").ok());
  this->Reopen();
  EXPECT_EQ(Must(this->S().ListWalletLinks(carol.id)), of_carol);
}

TYPED_TEST_P(StoreConformanceTest, ChainCursorIsACompareAndSet) {
  User p = this->AddUser("p", Role::kProvider);
  Dataset d = this->AddDataset("claims", p.id);
  const std::string payer = Hex0x('1', 40);
  EXPECT_FALSE(Must(this->S().GetChainCursor()).has_value());
  const int64_t before = this->AuditCount();
  std::vector<ChainRental> one = {NewChainRental('e', 0, 5, d.id, payer)};
  std::vector<AuditRecord> audit = {Audit("rental.index", "dataset:claims")};
  // No cursor is stored: a caller expecting one lost a race it did not know of.
  auto stale = this->S().IndexChainRentals(NewCursor(3), NewCursor(10), one, audit);
  EXPECT_EQ(stale.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(stale.message(), "found none")) << stale.message();
  MustOk(this->S().IndexChainRentals(std::nullopt, NewCursor(10), one, audit));
  EXPECT_EQ(Must(this->S().GetChainCursor()), NewCursor(10));
  EXPECT_EQ(this->AuditCount(), before + 1);
  // A second "first round" and a stale expectation both lose, writing nothing.
  std::vector<ChainRental> two = {NewChainRental('f', 0, 12, d.id, payer)};
  EXPECT_EQ(this->S().IndexChainRentals(std::nullopt, NewCursor(20), two, audit).code(),
            StatusCode::kFailedPrecondition);
  auto lost = this->S().IndexChainRentals(NewCursor(10, 'd'), NewCursor(20), two, audit);
  EXPECT_EQ(lost.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(lost.message(), "next block 10")) << lost.message();
  EXPECT_EQ(this->S().DropChainRentals(NewCursor(9), NewCursor(5), Keys(one), audit).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->AuditCount(), before + 1);
  EXPECT_EQ(Must(this->S().GetChainCursor()), NewCursor(10));
  EXPECT_EQ(Must(this->S().ListChainRentals({})), one);
  // The winner moves on; a round that found no rentals still moves the cursor.
  MustOk(this->S().IndexChainRentals(NewCursor(10), NewCursor(20), two, audit));
  MustOk(this->S().IndexChainRentals(NewCursor(20), NewCursor(30), {}, {}));
  this->Reopen();
  EXPECT_EQ(Must(this->S().GetChainCursor()), NewCursor(30));
  EXPECT_EQ(Must(this->S().ListChainRentals({})).size(), 2u);
  // A malformed cursor is refused, naming the field.
  ChainCursor bad = NewCursor(40);
  bad.contract = "0xAA" + std::string(38, 'a');
  auto refused = this->S().IndexChainRentals(NewCursor(30), bad, {}, {});
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(refused.message(), "cursor.contract")) << refused.message();
}

TYPED_TEST_P(StoreConformanceTest, AChainRentalIndexedTwiceKeepsTheFirstRow) {
  User p = this->AddUser("p", Role::kProvider);
  Dataset d = this->AddDataset("claims", p.id);
  const ChainRental first = NewChainRental('e', 3, 5, d.id, Hex0x('1', 40));
  MustOk(this->S().IndexChainRentals(std::nullopt, NewCursor(10), {first}, {}));
  ChainRental again = first;
  again.block_number = 7;
  again.block_hash = Hex0x('9', 64);
  again.end = 99999;
  ChainRental other_log = first;  // the same transaction's next event is another rental
  other_log.log_index = 4;
  MustOk(this->S().IndexChainRentals(NewCursor(10), NewCursor(20), {again, other_log},
                                     {Audit("rental.index", "dataset:claims")}));
  auto rows = Must(this->S().ListChainRentals({}));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], first);
  EXPECT_EQ(rows[1], other_log);
}

TYPED_TEST_P(StoreConformanceTest, DropRemovesExactlyTheNamedChainRentals) {
  User p = this->AddUser("p", Role::kProvider);
  Dataset d = this->AddDataset("claims", p.id);
  const std::string payer = Hex0x('1', 40);
  const std::vector<ChainRental> rows = {
      NewChainRental('e', 0, 5, d.id, payer), NewChainRental('e', 1, 5, d.id, payer),
      NewChainRental('f', 0, 6, d.id, payer), NewChainRental('0', 0, 7, d.id, payer)};
  MustOk(this->S().IndexChainRentals(std::nullopt, NewCursor(10), rows, {}));
  const int64_t before = this->AuditCount();
  // A key that is not there: nothing is dropped, the cursor stays.
  auto missing = this->S().DropChainRentals(NewCursor(10), NewCursor(5),
                                            {{rows[1].tx_hash, 1}, {rows[2].tx_hash, 9}},
                                            {Audit("ledger.reorg", "ledger")});
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.message(), rows[2].tx_hash + "/9")) << missing.message();
  EXPECT_EQ(Must(this->S().ListChainRentals({})), rows);
  EXPECT_EQ(Must(this->S().GetChainCursor()), NewCursor(10));
  EXPECT_EQ(this->AuditCount(), before);
  // Drops (tx e, log 1) and (tx f, log 0); keeps (tx e, log 0) of the same transaction.
  MustOk(this->S().DropChainRentals(
      NewCursor(10), NewCursor(5, 'd'), {{rows[1].tx_hash, 1}, {rows[2].tx_hash, 0}},
      {Audit("ledger.reorg", "ledger"), Audit("ledger.reorg", "ledger")}));
  EXPECT_EQ(Must(this->S().ListChainRentals({})), (std::vector<ChainRental>{rows[0], rows[3]}));
  EXPECT_EQ(Must(this->S().GetChainCursor()), NewCursor(5, 'd'));
  EXPECT_EQ(this->AuditCount(), before + 2);
  // Dropping nothing still moves the cursor (a reorg at the cursor block only).
  MustOk(this->S().DropChainRentals(NewCursor(5, 'd'), NewCursor(4), {},
                                    {Audit("ledger.reorg", "ledger")}));
  EXPECT_EQ(Must(this->S().GetChainCursor()), NewCursor(4));
  EXPECT_EQ(Must(this->S().ListChainRentals({})).size(), 2u);
}

TYPED_TEST_P(StoreConformanceTest, ListsChainRentalsOfAUserThroughItsLinkedAddresses) {
  User p = this->AddUser("p", Role::kProvider);
  User carol = this->AddUser("carol");
  User dave = this->AddUser("dave");
  Dataset claims = this->AddDataset("claims", p.id);
  Dataset labs = this->AddDataset("labs", p.id);
  const std::string carol1 = Hex0x('1', 40), carol2 = Hex0x('2', 40), daves = Hex0x('3', 40),
                    nobody = Hex0x('4', 40);
  Must(this->S().LinkWallet({carol1, carol.id, 1}, Audit("wallet.link", "user:carol")));
  Must(this->S().LinkWallet({carol2, carol.id, 2}, Audit("wallet.link", "user:carol")));
  Must(this->S().LinkWallet({daves, dave.id, 3}, Audit("wallet.link", "user:dave")));
  const std::vector<ChainRental> rows = {
      NewChainRental('a', 0, 5, claims.id, carol1, 100, 200),
      NewChainRental('b', 0, 6, labs.id, carol2, 100, 300),
      NewChainRental('c', 0, 7, claims.id, daves, 100, 400),
      NewChainRental('d', 0, 8, claims.id, nobody, 100, 500),
      NewChainRental('e', 2, 8, claims.id, carol2, 300, 600),
      NewChainRental('e', 1, 9, claims.id, carol1, 300, 700),
  };
  MustOk(this->S().IndexChainRentals(std::nullopt, NewCursor(10), rows, {}));
  auto keys = [](const std::vector<ChainRental>& got) {
    std::vector<std::string> out;
    for (const auto& r : got) out.push_back(r.tx_hash.substr(2, 1) + std::to_string(r.log_index));
    return out;
  };
  using V = std::vector<std::string>;
  ChainRentalFilter f;
  EXPECT_EQ(keys(Must(this->S().ListChainRentals(f))), (V{"a0", "b0", "c0", "d0", "e2", "e1"}));
  f.user_id = carol.id;  // both of carol's addresses, not dave's, not the unlinked one
  EXPECT_EQ(keys(Must(this->S().ListChainRentals(f))), (V{"a0", "b0", "e2", "e1"}));
  f.dataset_id = claims.id;
  EXPECT_EQ(keys(Must(this->S().ListChainRentals(f))), (V{"a0", "e2", "e1"}));
  f.min_end = 600;
  EXPECT_EQ(keys(Must(this->S().ListChainRentals(f))), (V{"e2", "e1"}));
  f = {};
  f.user_id = dave.id;
  EXPECT_EQ(keys(Must(this->S().ListChainRentals(f))), (V{"c0"}));
  f.user_id = 999;
  EXPECT_TRUE(Must(this->S().ListChainRentals(f)).empty());
  f = {};
  f.min_block = 8;
  EXPECT_EQ(keys(Must(this->S().ListChainRentals(f))), (V{"d0", "e2", "e1"}));
  // Pages of two, in (block, log index, tx hash) order.
  f = {};
  f.limit = 2;
  V paged;
  for (;;) {
    auto page = Must(this->S().ListChainRentals(f));
    for (const auto& k : keys(page)) paged.push_back(k);
    if (page.size() < 2) break;
    f.after =
        ChainRentalPosition{page.back().block_number, page.back().log_index, page.back().tx_hash};
  }
  EXPECT_EQ(paged, (V{"a0", "b0", "c0", "d0", "e2", "e1"}));
  f = {};
  f.limit = 0;
  EXPECT_EQ(this->S().ListChainRentals(f).status().code(), StatusCode::kInvalidArgument);
  f.limit = 10001;
  EXPECT_EQ(this->S().ListChainRentals(f).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST_P(StoreConformanceTest, RefusesMalformedChainRentalsWritingNothing) {
  User p = this->AddUser("p", Role::kProvider);
  Dataset d = this->AddDataset("claims", p.id);
  const int64_t before = this->AuditCount();
  auto refuse = [&](ChainRental r, StatusCode code, std::string_view field) {
    std::vector<ChainRental> rows = {NewChainRental('a', 0, 5, d.id, Hex0x('1', 40)), r};
    Status s = this->S().IndexChainRentals(std::nullopt, NewCursor(10), rows,
                                           {Audit("rental.index", "dataset:claims")});
    EXPECT_EQ(s.code(), code) << field << ": " << s.ToString();
    EXPECT_TRUE(Contains(s.message(), field)) << s.message();
  };
  ChainRental r = NewChainRental('b', 0, 5, d.id, Hex0x('1', 40));
  ChainRental bad = r;
  bad.tx_hash = "0x" + std::string(63, 'b');
  refuse(bad, StatusCode::kInvalidArgument, "rentals[1].tx_hash");
  bad = r;
  bad.block_hash = "0x" + std::string(64, 'B');
  refuse(bad, StatusCode::kInvalidArgument, "rentals[1].block_hash");
  bad = r;
  bad.payer = "0xAb" + std::string(38, '1');
  refuse(bad, StatusCode::kInvalidArgument, "rentals[1].payer");
  bad = r;
  bad.end = bad.start;
  refuse(bad, StatusCode::kInvalidArgument, "end must be after start");
  bad = r;
  bad.amount_wei = "012";
  refuse(bad, StatusCode::kInvalidArgument, "rentals[1].amount_wei");
  bad = r;
  bad.amount_wei = "1.5";
  refuse(bad, StatusCode::kInvalidArgument, "rentals[1].amount_wei");
  bad = r;
  bad.days = 0;
  refuse(bad, StatusCode::kInvalidArgument, "rentals[1].days");
  bad = r;
  bad.dataset_id = d.id + 100;
  refuse(bad, StatusCode::kFailedPrecondition, "dataset " + std::to_string(d.id + 100));
  EXPECT_EQ(this->AuditCount(), before);
  EXPECT_FALSE(Must(this->S().GetChainCursor()).has_value());
  EXPECT_TRUE(Must(this->S().ListChainRentals({})).empty());
}

TYPED_TEST_P(StoreConformanceTest, FailingAuditInsertWritesNoLinkNoRentalsAndNoCursorMove) {
  User p = this->AddUser("p", Role::kProvider);
  User carol = this->AddUser("carol");
  Dataset d = this->AddDataset("claims", p.id);
  const ChainRental r = NewChainRental('a', 0, 5, d.id, Hex0x('1', 40));
  MustOk(this->S().IndexChainRentals(std::nullopt, NewCursor(10), {r}, {}));
  const int64_t before = this->AuditCount();
  MustOk(this->F().FailAuditInsertsFor("wallet.link"));
  MustOk(this->F().FailAuditInsertsFor("rental.index"));
  MustOk(this->F().FailAuditInsertsFor("ledger.reorg"));
  EXPECT_FALSE(
      this->S().LinkWallet({Hex0x('1', 40), carol.id, 1}, Audit("wallet.link", "user:carol")).ok());
  EXPECT_TRUE(Must(this->S().ListWalletLinks(std::nullopt)).empty());
  // The failing record is the last of three: the two before it go too.
  const ChainRental r2 = NewChainRental('b', 0, 12, d.id, Hex0x('1', 40));
  EXPECT_FALSE(
      this->S()
          .IndexChainRentals(NewCursor(10), NewCursor(20), {r2},
                             {Audit("ledger.sync", "ledger"), Audit("ledger.sync", "ledger"),
                              Audit("rental.index", "dataset:claims")})
          .ok());
  EXPECT_FALSE(this->S()
                   .DropChainRentals(NewCursor(10), NewCursor(5), {{r.tx_hash, 0}},
                                     {Audit("ledger.reorg", "ledger")})
                   .ok());
  EXPECT_EQ(Must(this->S().GetChainCursor()), NewCursor(10));
  EXPECT_EQ(Must(this->S().ListChainRentals({})), (std::vector<ChainRental>{r}));
  EXPECT_EQ(this->AuditCount(), before);
}

REGISTER_TYPED_TEST_SUITE_P(
    StoreConformanceTest, CreatesUserAndFindsItByIdNameAndTokenHash,
    DeletingTheLastRentalIsCaughtByTheCheckpoints,
    AuditTailDeletedWithItsCheckpointsIsCaughtByAKeptCopy, AnEmptiedAuditLogHasNoSignedGenesis,
    NonceIsSingleUseBoundToItsJobAndShortLived, NoncesPerCredentialAreCappedAndExpiredOnesDeleted,
    AttestationUsesTheCredentialAndMovesTheJobOnce, CredentialAndProvisioningLandTogetherOrNotAtAll,
    RejectsDuplicateUserNameAndTokenHash, RejectsInvalidUserInputWithoutWriting,
    UnknownUserIsNotFound, DisablesAndReenablesAUser, RotatesATokenHash, ListsUsersInCreationOrder,
    CreatesADatasetAndReadsBackEveryField, RejectsDuplicateDatasetNameAndUnknownOwner,
    RejectsMalformedDatasetFields, ListsDatasetsByOwner, AppendsRentalsAsASignedHashChain,
    ListsRentalsByConsumerDatasetAndPage, RejectsRentalWithEmptyIntervalOrUnknownReferences,
    FailingSignerWritesNothing, RentalChainDetectsEachEditedColumn,
    RentalChainDetectsDeletedSwappedAndRewrittenRows, PutsAndResolvesImageTags,
    ScopesImageTagsPerOwnerAndRefusesABadDigest, RecordsImageBlobsPerScope,
    CreatesAJobInSubmittedWithItsFirstHistoryEvent, RejectsAnInvalidNewJob,
    IdempotentReplayReturnsTheExistingJobAndWritesNothing,
    IdempotencyKeyReusedWithAnotherBodyIsAlreadyExists, IdempotencyKeysAreScopedPerConsumer,
    RejectsADuplicateJobId, DrivesJobsThroughTheirWholeLifeWithHistory,
    TransitionFromTheWrongStateNamesBothStates,
    DisallowedTransitionIsInvalidArgumentAndChangesNothing, TransitionNeedsAKnownJobAndAReason,
    ReleaseFromTheGateNeedsAReleaseVerdict, ConcurrentTransitionsLetExactlyOneWin,
    FailingAuditInsertRollsBackTheTransition, FailingMutationsDoNotFailTheirBatchMates,
    ListsJobsWithFiltersAndPaging, ListsJobsInStatesForRecovery, CredentialIsSingleUse,
    ExpiredOrNotYetValidCredentialIsRefused, RejectsCredentialForUnknownJobOrReusedId,
    ConcurrentCredentialUseLetsExactlyOneWin, StoresAnOutputAndSetsItsVerdictOnce,
    RejectsDuplicateOrOrphanOutput, EveryMutationAppendsExactlyItsAuditEntry,
    AuditEntriesFormTheDocumentedChain, ListsAuditByObjectAndPage,
    VerifiesAnIntactLogWithCheckpoints, AddCheckpointChecksTheChain,
    AuditLogRefusesUpdateAndDeleteThroughSql, VerifyDetectsEachEditedAuditColumn,
    VerifyDetectsADeletedAuditRow, VerifyDetectsSwappedAuditRows, VerifyDetectsForgedCheckpoints,
    VerifyDetectsAChainRewrittenUnderACheckpoint, VerifyDetectsATruncatedLog,
    ReopeningKeepsDataAndSchema, RefusesADatabaseWithANewerSchema,
    ManyThreadsCreateJobsAndTheLogStaysConsistent, SecondProcessCreatesUsersWhileTheFirstHasItOpen,
    AcknowledgedWritesSurviveSigkill, DistinctApprovalsReleaseAHeldJobInOneStep,
    OneRejectRejectsWhateverTheApprovals, ReviewNeedsAHeldJobAHoldVerdictAndAnEnabledReviewer,
    ReviewMovesAreRefusedOutsideRecordReview, FailingMoveAuditWritesNeitherTheDecisionNorTheMove,
    ListsRecentReviewsNewestFirstAndKeepsThemOnReopen, RecordsSampleVersionsInOrderWithTheirAudit,
    RefusesASampleOutOfOrderOrWithUnknownReferences, FailingAuditInsertWritesNoSample,
    ExploreSessionLivesAndDiesWithItsAudit, ExploreSessionsAreCappedPerOwnerAndListed,
    FailingAuditInsertWritesNoExploreSession, WalletLinksAreUniquePerAddressAndPermanent,
    ChainCursorIsACompareAndSet, AChainRentalIndexedTwiceKeepsTheFirstRow,
    DropRemovesExactlyTheNamedChainRentals, ListsChainRentalsOfAUserThroughItsLinkedAddresses,
    RefusesMalformedChainRentalsWritingNothing,
    FailingAuditInsertWritesNoLinkNoRentalsAndNoCursorMove);

using SqliteBackends =
    ::testing::Types<storetest::SqliteGroupCommit, storetest::SqliteOneTxnPerWrite>;

// Names the instantiations "Sqlite/StoreConformanceTest/GroupCommit.X".
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kBatch > 1 ? "GroupCommit" : "OneTxnPerWrite";
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, StoreConformanceTest, SqliteBackends, BackendNames);

}  // namespace
}  // namespace cce::store
