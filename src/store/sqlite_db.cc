#include "store/sqlite_db.h"

#include <algorithm>
#include <climits>
#include <utility>

namespace cce::store::sqlite {

Status SqliteStatus(sqlite3* db, int rc, std::string_view what) {
  std::string m(what);
  m += ": ";
  m += (db != nullptr && sqlite3_extended_errcode(db) == rc) ? sqlite3_errmsg(db)
                                                             : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return {StatusCode::kUnavailable, std::move(m)};
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY: return AlreadyExists(std::move(m));
        case SQLITE_CONSTRAINT_CHECK:
        case SQLITE_CONSTRAINT_NOTNULL:
        case SQLITE_CONSTRAINT_DATATYPE: return InvalidArgument(std::move(m));
        default: return FailedPrecondition(std::move(m));
      }
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return DataLoss(std::move(m));
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY: return {StatusCode::kIo, std::move(m)};
    default: return Internal(std::move(m));
  }
}

// ---- Stmt --------------------------------------------------------------------

Stmt::Stmt(Stmt&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      owned_(other.owned_),
      next_param_(other.next_param_),
      bind_rc_(other.bind_rc_) {}

Stmt::~Stmt() {
  if (stmt_ == nullptr) return;
  if (owned_) {
    sqlite3_finalize(stmt_);
  } else {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

std::string Stmt::What() const {
  const char* sql = sqlite3_sql(stmt_);
  std::string s = sql != nullptr ? sql : "statement";
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return "sqlite: " + s;
}

Stmt& Stmt::Bind(int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, next_param_++, v);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::Bind(double v) {
  int rc = sqlite3_bind_double(stmt_, next_param_++, v);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::Bind(std::string_view text) {
  int rc = text.size() > INT_MAX
               ? SQLITE_TOOBIG
               : sqlite3_bind_text(stmt_, next_param_, text.data(), static_cast<int>(text.size()),
                                   SQLITE_TRANSIENT);
  ++next_param_;
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindBlob(crypto::ByteSpan blob) {
  // A zero-length blob must still be a BLOB, not NULL: pass a non-null pointer.
  static const uint8_t kEmpty = 0;
  const void* data = blob.empty() ? &kEmpty : blob.data();
  int rc = blob.size() > INT_MAX
               ? SQLITE_TOOBIG
               : sqlite3_bind_blob(stmt_, next_param_, data, static_cast<int>(blob.size()),
                                   SQLITE_TRANSIENT);
  ++next_param_;
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindNull() {
  int rc = sqlite3_bind_null(stmt_, next_param_++);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

StatusOr<bool> Stmt::Step() {
  if (bind_rc_ != SQLITE_OK) return SqliteStatus(db_, bind_rc_, What() + ": bind");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(db_, sqlite3_extended_errcode(db_), What());
}

Status Stmt::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

bool Stmt::IsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}
int64_t Stmt::Int(int col) const {
  return sqlite3_column_int64(stmt_, col);
}
double Stmt::Real(int col) const {
  return sqlite3_column_double(stmt_, col);
}

std::string Stmt::Text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  const int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr || n <= 0) return {};
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(n)};
}

crypto::Bytes Stmt::Blob(int col) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
  const int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr || n <= 0) return {};
  return {p, p + n};
}

StatusOr<crypto::Sha256Digest> Stmt::Digest(int col, std::string_view what) const {
  const crypto::Bytes b = Blob(col);
  crypto::Sha256Digest d{};
  if (b.size() != d.size()) {
    return DataLoss(std::string(what) + ": stored digest has " + std::to_string(b.size()) +
                    " bytes, expected 32");
  }
  std::copy(b.begin(), b.end(), d.begin());
  return d;
}

// ---- Connection --------------------------------------------------------------

StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& path, int flags,
                                                       int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                           nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(db, rc, "sqlite: open " + path);
    sqlite3_close_v2(db);
    return s;
  }
  std::unique_ptr<Connection> c(new Connection(db));
  rc = sqlite3_busy_timeout(db, busy_timeout_ms);
  if (rc != SQLITE_OK) return SqliteStatus(db, rc, "sqlite: busy_timeout");
  return c;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status Connection::Exec(std::string_view sql) {
  const std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);  // the same text is in sqlite3_errmsg
  if (rc != SQLITE_OK) {
    std::string what = s.size() > 80 ? s.substr(0, 77) + "..." : s;
    return SqliteStatus(db_, sqlite3_extended_errcode(db_), "sqlite: " + what);
  }
  return Status::Ok();
}

StatusOr<std::string> Connection::QueryText(std::string_view sql) {
  ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::string();
  return st.Text(0);
}

StatusOr<Stmt> Connection::Prepare(std::string_view sql) {
  std::string key(sql);
  auto it = cache_.find(key);
  if (it != cache_.end() && sqlite3_stmt_busy(it->second) == 0) {
    return Stmt(db_, it->second, /*owned=*/false);
  }
  sqlite3_stmt* stmt = nullptr;
  const bool cache = it == cache_.end();
  int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()),
                              cache ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return SqliteStatus(db_, rc, "sqlite: prepare " + key.substr(0, 80));
  }
  if (!cache) return Stmt(db_, stmt, /*owned=*/true);  // the cached copy is in use
  cache_.emplace(std::move(key), stmt);
  return Stmt(db_, stmt, /*owned=*/false);
}

}  // namespace cce::store::sqlite
