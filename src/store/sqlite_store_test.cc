// SQLite-specific behaviour of SqliteStore; the backend-independent
// behaviour is in store_conformance_test.cc.
#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_test_factory.h"

namespace cce::store {
namespace {

AuditRecord Audit(std::string action) {
  return {1, "user:test", std::move(action), "x", AuditDecision::kInfo, "{}"};
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  StatusOr<std::unique_ptr<SqliteStore>> Open(size_t max_batch = 256) {
    SqliteStoreOptions o;
    o.path = factory_.path();
    o.max_batch = max_batch;
    return SqliteStore::Open(o);
  }
  // Rows of `sql` on a fresh read-only connection, column `column`, one per
  // line.
  std::string Query(const std::string& sql, int column = 0) {
    sqlite3* db = nullptr;
    std::string value;
    if (sqlite3_open_v2(factory_.path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
          const unsigned char* text = sqlite3_column_text(st, column);
          if (!value.empty()) value += "\n";
          if (text != nullptr) value += reinterpret_cast<const char*>(text);
        }
      }
      sqlite3_finalize(st);
    }
    sqlite3_close_v2(db);
    return value;
  }

  storetest::SqliteGroupCommit factory_;
};

TEST_F(SqliteStoreTest, CreatesAPrivateDatabaseFileInWalMode) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat(factory_.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(Query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(*(*store)->SchemaVersion(), SqliteStore::LatestSchemaVersion());
  User u;
  u.name = "a";
  ASSERT_TRUE((*store)->CreateUser(u, Audit("user.add")).ok());
  struct stat wal {};
  ASSERT_EQ(stat((factory_.path() + "-wal").c_str(), &wal), 0);
  EXPECT_EQ(wal.st_mode & 0777, 0600u);
}

TEST_F(SqliteStoreTest, RefusesMissingPathAndBadOptions) {
  SqliteStoreOptions o;
  EXPECT_EQ(SqliteStore::Open(o).status().code(), StatusCode::kInvalidArgument);
  o.path = ":memory:";
  EXPECT_EQ(SqliteStore::Open(o).status().code(), StatusCode::kInvalidArgument);
  o.path = factory_.path();
  o.max_batch = 0;
  EXPECT_EQ(SqliteStore::Open(o).status().code(), StatusCode::kInvalidArgument);
  o.max_batch = 1;
  o.read_connections = 0;
  EXPECT_EQ(SqliteStore::Open(o).status().code(), StatusCode::kInvalidArgument);
  o.read_connections = 1;
  o.path = "/nonexistent-dir/plane.db";
  EXPECT_EQ(SqliteStore::Open(o).status().code(), StatusCode::kIo);
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabase) {
  {
    std::ofstream f(factory_.path());
    f << std::string(8192, 'x');
  }
  auto store = Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss) << store.status().ToString();
}

// The lookups on every request (token), every submission (idempotency key,
// chain heads) and `cce audit list --job` must be index searches, not scans.
TEST_F(SqliteStoreTest, HotLookupsUseIndexes) {
  ASSERT_TRUE(Open().ok());
  const char* queries[] = {
      "SELECT id FROM users WHERE token_hash = x'00'",
      "SELECT id FROM jobs WHERE consumer_id = 1 AND idempotency_key = 'k'",
      "SELECT id FROM jobs WHERE id = 'job-1'",
      "SELECT seq FROM audit_log WHERE object = 'job:1' AND seq > 0 ORDER BY seq LIMIT 10",
      "SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = 'job-1'",
      "SELECT id FROM jobs WHERE consumer_id = 1 ORDER BY job_seq DESC LIMIT 10",
  };
  for (const char* q : queries) {
    const std::string plan = Query(std::string("EXPLAIN QUERY PLAN ") + q, 3);
    EXPECT_FALSE(plan.empty()) << q;
    EXPECT_EQ(plan.find("SCAN"), std::string::npos) << q << "\n" << plan;
  }
  // The chain heads walk the primary key backwards and stop at one row: a
  // "SCAN" in the plan, but never a sort.
  for (const char* q : {"SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                        "SELECT seq, hash FROM rentals ORDER BY seq DESC LIMIT 1"}) {
    const std::string plan = Query(std::string("EXPLAIN QUERY PLAN ") + q, 3);
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << q << "\n" << plan;
  }
}

// The point of group commit: concurrent mutations share transactions (and
// fsyncs). Asserts on counts, not on time.
TEST_F(SqliteStoreTest, GroupCommitSharesTransactionsBetweenConcurrentWriters) {
  auto store = Open();
  ASSERT_TRUE(store.ok());
  constexpr int kThreads = 16;
  constexpr int kPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!(*store)->AppendAudit(Audit("a")).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  SqliteWriterStats stats = (*store)->WriterStats();
  EXPECT_EQ(stats.mutations, uint64_t{kThreads * kPerThread});
  EXPECT_LT(stats.transactions, stats.mutations);
}

TEST_F(SqliteStoreTest, OneTransactionPerWriteWhenGroupCommitIsOff) {
  auto store = Open(/*max_batch=*/1);
  ASSERT_TRUE(store.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) EXPECT_TRUE((*store)->AppendAudit(Audit("a")).ok());
    });
  }
  for (auto& t : threads) t.join();
  SqliteWriterStats stats = (*store)->WriterStats();
  EXPECT_EQ(stats.transactions, 40u);
  EXPECT_EQ(stats.mutations, 40u);
}

// The literal sqlite3 command-line tool, run while the store is open.
TEST_F(SqliteStoreTest, VerifyDetectsTamperingWithTheSqlite3Cli) {
  ASSERT_EQ(access("/usr/bin/sqlite3", X_OK), 0)
      << "/usr/bin/sqlite3 missing: `make deps` installs it";
  auto store = Open();
  ASSERT_TRUE(store.ok());
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE((*store)->AppendAudit(Audit("a" + std::to_string(i))).ok());
  const std::string cmd = "/usr/bin/sqlite3 " + factory_.path() +
                          " \"DROP TRIGGER audit_log_no_update;"
                          " UPDATE audit_log SET decision = 'allow' WHERE seq = 4;\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto report = VerifyAudit(**store, key->PublicKey());
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->failure, ChainFailure::kEdited) << report->reason;
  EXPECT_EQ(report->first_bad_seq, 4);
}

}  // namespace
}  // namespace cce::store
