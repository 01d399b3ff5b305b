// Test-only: how store_conformance_test.cc reaches a SQLite database. A
// PostgreSQL backend adds a factory with the same members (a fresh database
// per test; ExecSql through its own client connection) and one more
// INSTANTIATE line.
#pragma once

#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"
#include "store/sqlite_store.h"

namespace cce::store::storetest {

template <size_t kMaxBatch>
class SqliteFactory {
 public:
  SqliteFactory() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cce-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
  }
  ~SqliteFactory() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  SqliteFactory(const SqliteFactory&) = delete;
  SqliteFactory& operator=(const SqliteFactory&) = delete;

  std::string path() const { return dir_ + "/plane.db"; }

  // A new, independent Store over the same database (another server, or a
  // `cce-plane user add` process, or the server after a restart).
  StatusOr<std::unique_ptr<Store>> Open() const {
    if (dir_.empty()) return Internal("mkdtemp failed");
    SqliteStoreOptions options;
    options.path = path();
    options.max_batch = kMaxBatch;
    options.read_connections = 2;
    auto s = SqliteStore::Open(options);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(std::move(s).value());
  }

  // Runs SQL the way an operator (or attacker) with the sqlite3 CLI would:
  // its own connection, foreign keys off, no triggers of ours bypassed.
  Status ExecSql(std::string_view sql) const {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    std::string error;
    if (rc == SQLITE_OK) {
      sqlite3_busy_timeout(db, 5000);
      char* err = nullptr;
      rc = sqlite3_exec(db, std::string(sql).c_str(), nullptr, nullptr, &err);
      if (err != nullptr) error = err;
      sqlite3_free(err);
    } else {
      error = sqlite3_errstr(rc);
    }
    sqlite3_close_v2(db);
    if (rc != SQLITE_OK) return FailedPrecondition("sql: " + error + " in: " + std::string(sql));
    return Status::Ok();
  }

  static std::string BlobLiteral(crypto::ByteSpan bytes) {
    return "X'" + crypto::ToHex(bytes) + "'";
  }

  // Drops the append-only guards, as someone editing the file would.
  Status AllowTampering() const {
    return ExecSql(
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;"
        "DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;"
        "DROP TRIGGER rentals_no_update; DROP TRIGGER rentals_no_delete;");
  }

  // Fault injection: every audit insert whose action is `action` fails.
  Status FailAuditInsertsFor(std::string_view action) const {
    return ExecSql("CREATE TRIGGER test_fail_audit_" + std::to_string(++triggers_) +
                   " BEFORE INSERT ON audit_log WHEN NEW.action = '" + std::string(action) +
                   "' BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END;");
  }

  // Records that the database is at `version`, as a newer binary would.
  Status PretendNewerSchema(int64_t version) const {
    return ExecSql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (" +
                   std::to_string(version) + ", 'from the future', 0)");
  }

  static constexpr size_t kBatch = kMaxBatch;

 private:
  std::string dir_;
  mutable int triggers_ = 0;
};

using SqliteGroupCommit = SqliteFactory<256>;
using SqliteOneTxnPerWrite = SqliteFactory<1>;

}  // namespace cce::store::storetest
