// Private to src/store: RAII over sqlite3 connections and prepared
// statements, and the mapping of SQLite result codes to Status. A Connection
// is used by one thread at a time (opened SQLITE_OPEN_NOMUTEX) and caches
// its prepared statements.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::store::sqlite {

// Maps a SQLite result code to a Status: BUSY/LOCKED -> kUnavailable,
// UNIQUE/PRIMARY KEY -> kAlreadyExists, FOREIGN KEY/TRIGGER ->
// kFailedPrecondition, CHECK/NOT NULL -> kInvalidArgument, CORRUPT/NOTADB ->
// kDataLoss, IOERR/FULL/CANTOPEN -> kIo, the rest kInternal.
Status SqliteStatus(sqlite3* db, int rc, std::string_view what);

// A prepared statement borrowed from a Connection's cache (or owned, when the
// cached one is already stepping). Bind* fill parameters left to right; the
// destructor resets the statement for its next use.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt, bool owned) : db_(db), stmt_(stmt), owned_(owned) {}
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Stmt& Bind(int64_t v);
  Stmt& Bind(double v);
  Stmt& Bind(std::string_view text);
  Stmt& BindBlob(crypto::ByteSpan blob);
  Stmt& BindNull();
  Stmt& Bind(std::optional<int64_t> v) { return v ? Bind(*v) : BindNull(); }

  // Advances: true when a row is available, false when done.
  StatusOr<bool> Step();
  // Runs to completion; rows, if any, are ignored.
  Status Run();

  bool IsNull(int col) const;
  int64_t Int(int col) const;
  double Real(int col) const;
  std::string Text(int col) const;
  crypto::Bytes Blob(int col) const;
  // A 32-byte BLOB column; anything else is kDataLoss naming `what`.
  StatusOr<crypto::Sha256Digest> Digest(int col, std::string_view what) const;

 private:
  std::string What() const;

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool owned_;
  int next_param_ = 1;
  int bind_rc_ = SQLITE_OK;
};

class Connection {
 public:
  // flags: SQLITE_OPEN_READONLY or SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE.
  static StatusOr<std::unique_ptr<Connection>> Open(const std::string& path, int flags,
                                                    int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements without results.
  Status Exec(std::string_view sql);
  // A single-value query (PRAGMA x, SELECT count(*)...), as text.
  StatusOr<std::string> QueryText(std::string_view sql);
  StatusOr<Stmt> Prepare(std::string_view sql);

  int64_t Changes() const { return sqlite3_changes64(db_); }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* raw() const { return db_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;  // bounded: the store's fixed SQL
};

}  // namespace cce::store::sqlite
