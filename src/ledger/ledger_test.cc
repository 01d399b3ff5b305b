#include "ledger/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>

#include "store/sqlite_store.h"

namespace cce::ledger {
namespace {

class EmbeddedLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cce-ledger-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store::SqliteStoreOptions o;
    o.path = dir_ + "/db";
    o.checkpoint_file = dir_ + "/checkpoints.log";
    auto db = store::SqliteStore::Open(o);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(*db);
    auto key = crypto::Ed25519PrivateKey::Generate();
    ASSERT_TRUE(key.ok());
    key_ = std::make_unique<crypto::Ed25519PrivateKey>(std::move(*key));
    ledger_ = std::make_unique<EmbeddedLedger>(*db_, *key_);
    for (const char* name : {"carol", "dave"}) {
      store::User u;
      u.name = name;
      u.role = store::Role::kConsumer;
      u.token_hash = crypto::Sha256(crypto::AsBytes(name));
      auto created = db_->CreateUser(u, Audit("user.add"));
      ASSERT_TRUE(created.ok());
      users_.push_back(created->id);
    }
    store::Dataset d;
    d.name = "claims";
    d.owner_id = users_[0];
    d.location = "file:///x";
    d.price = "1";
    d.max_days = 30;
    d.key_id = std::string(32, 'a');
    d.wrapped_key = {1, 2, 3};
    auto ds = db_->CreateDataset(d, Audit("dataset.register"));
    ASSERT_TRUE(ds.ok()) << ds.status().message();
    dataset_ = ds->id;
  }
  void TearDown() override {
    ledger_.reset();
    db_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static store::AuditRecord Audit(std::string action) {
    store::AuditRecord a;
    a.at = 1000;
    a.actor = "test";
    a.action = std::move(action);
    a.object = "x";
    return a;
  }
  void Rent(int64_t user, int64_t start, int64_t end) {
    auto r = ledger_->Rent(user, dataset_, start, end, start, Audit("rent"));
    ASSERT_TRUE(r.ok()) << r.status().message();
  }
  bool Covers(int64_t user, int64_t t0, int64_t t1) {
    auto c = ledger_->Covers(user, dataset_, t0, t1);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c.ok() && *c;
  }

  // Runs SQL as someone with the database file and the sqlite3 CLI would.
  void ExecSql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2((dir_ + "/db").c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
              SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    const std::string error = err != nullptr ? err : "";
    sqlite3_free(err);
    sqlite3_close_v2(db);
    ASSERT_EQ(rc, SQLITE_OK) << error << " in: " << sql;
  }

  std::string dir_;
  std::unique_ptr<store::SqliteStore> db_;
  std::unique_ptr<crypto::Ed25519PrivateKey> key_;
  std::unique_ptr<EmbeddedLedger> ledger_;
  std::vector<int64_t> users_;
  int64_t dataset_ = 0;
};

TEST_F(EmbeddedLedgerTest, CoversOnlyWholeIntervalsOfTheSameConsumer) {
  EXPECT_FALSE(Covers(users_[0], 100, 200));  // nothing rented
  Rent(users_[0], 100, 200);
  EXPECT_TRUE(Covers(users_[0], 100, 200));
  EXPECT_TRUE(Covers(users_[0], 150, 160));
  EXPECT_FALSE(Covers(users_[0], 150, 201));  // runs past the end
  EXPECT_FALSE(Covers(users_[0], 99, 150));   // starts before
  EXPECT_FALSE(Covers(users_[1], 100, 200));  // someone else's rental
  Rent(users_[0], 200, 300);                  // adjacent: joins up
  EXPECT_TRUE(Covers(users_[0], 150, 300));
  Rent(users_[0], 310, 400);  // leaves a gap [300, 310)
  EXPECT_FALSE(Covers(users_[0], 150, 350));
  EXPECT_FALSE(ledger_->Covers(users_[0], dataset_, 5, 5).ok());
  EXPECT_FALSE(ledger_->Rent(users_[0], dataset_, 10, 10, 10, Audit("rent")).ok());
}

TEST_F(EmbeddedLedgerTest, RentalsAreSignedAndChained) {
  Rent(users_[0], 100, 200);
  Rent(users_[1], 100, 300);
  auto report = store::VerifyRentalChain(*db_, key_->PublicKey());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->reason;
  auto other = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  auto wrong = store::VerifyRentalChain(*db_, other->PublicKey());
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE(wrong->ok());
}

// Issue 10, finding 2: a rental row with a zero hash and signature, inserted
// behind the plane's back, let a consumer use a dataset never rented.
TEST_F(EmbeddedLedgerTest, AForgedRentalRowIsNotHonoured) {
  Rent(users_[1], 100, 200);  // a real rental, so the forged row links to it
  auto head = db_->ListRentals({});
  ASSERT_TRUE(head.ok());
  ASSERT_EQ(head->size(), 1u);
  EXPECT_FALSE(Covers(users_[0], 1000, 2000));
  ExecSql(
      "INSERT INTO rentals (seq, dataset_id, consumer_id, start_at, end_at, created_at,"
      " prev_hash, hash, signature) VALUES (2, " +
      std::to_string(dataset_) + ", " + std::to_string(users_[0]) + ", 0, 9999999999, 1, X'" +
      crypto::ToHex(head->at(0).hash) + "', zeroblob(32), " + "zeroblob(64))");
  auto forged = ledger_->Covers(users_[0], dataset_, 1000, 2000);
  ASSERT_FALSE(forged.ok()) << "a forged rental row was honoured";
  EXPECT_EQ(forged.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(forged.status().message().find("rental 2"), std::string::npos)
      << forged.status().message();
  // A real row re-hashed for another consumer keeps the old signature: refused too.
  ExecSql("DROP TRIGGER rentals_no_delete; DELETE FROM rentals WHERE seq = 2");
  store::Rental copy = head->at(0);
  copy.consumer_id = users_[0];
  copy.hash = store::RentalHash(copy.prev_hash, copy);
  ExecSql(
      "INSERT INTO rentals (seq, dataset_id, consumer_id, start_at, end_at, created_at,"
      " prev_hash, hash, signature) VALUES (2, " +
      std::to_string(dataset_) + ", " + std::to_string(users_[0]) + ", 100, 200, 100, X'" +
      crypto::ToHex(copy.prev_hash) + "', X'" + crypto::ToHex(copy.hash) + "', X'" +
      crypto::ToHex(copy.signature) + "')");
  EXPECT_FALSE(ledger_->Covers(users_[0], dataset_, 100, 200).ok());
}

// Every rental's signed checkpoint also lands in the checkpoint file, so
// deleting the last rental and its stored checkpoint is still caught.
TEST_F(EmbeddedLedgerTest, RentalCheckpointsGoToTheFileAndCatchADeletedLastRental) {
  Rent(users_[0], 100, 200);
  Rent(users_[1], 100, 300);
  auto file = store::ReadCheckpointFile(dir_ + "/checkpoints.log");
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_EQ(file->rentals.size(), 2u);
  EXPECT_EQ(file->rentals[1].seq, 2);
  EXPECT_TRUE(file->audit.empty());
  ExecSql(
      "DROP TRIGGER rentals_no_delete; DROP TRIGGER rental_checkpoints_no_delete;"
      "DELETE FROM rentals WHERE seq = 2; DELETE FROM rental_checkpoints WHERE seq = 2");
  auto alone = store::VerifyRentalChain(*db_, key_->PublicKey());
  ASSERT_TRUE(alone.ok());
  EXPECT_TRUE(alone->ok()) << alone->reason;  // the finding: exit 0
  store::VerifyOptions o;
  o.extra_checkpoints = file->rentals;
  auto caught = store::VerifyRentalChain(*db_, key_->PublicKey(), o);
  ASSERT_TRUE(caught.ok());
  EXPECT_EQ(caught->failure, store::ChainFailure::kTruncated) << caught->reason;
  EXPECT_EQ(caught->first_bad_seq, 2);
}

}  // namespace
}  // namespace cce::ledger
