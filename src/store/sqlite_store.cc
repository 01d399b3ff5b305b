#include "store/sqlite_store.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "base/fd.h"
#include "store/sqlite_db.h"
#include "store/sqlite_schema.h"

namespace cce::store {

using sqlite::Connection;
using sqlite::Stmt;

namespace {

// Column lists, shared by every SELECT of a table so that the Read* row
// mappers below can address columns by position.
#define USER_COLS "id, name, role, token_hash, created_at, disabled"
#define DATASET_COLS                                                                  \
  "id, name, owner_id, location, description, price, max_days, key_id, wrapped_key, " \
  "manifest_dataset_id, manifest_version, created_at"
#define RENTAL_COLS \
  "seq, dataset_id, consumer_id, start_at, end_at, created_at, prev_hash, hash, signature"
#define IMAGE_COLS "name, tag, digest, owner_id, created_at, scope"
#define IMAGE_BLOB_COLS "scope, digest, size, created_at"
#define JOB_COLS                                                                     \
  "id, consumer_id, name, spec_json, image_digest, state, reason, idempotency_key, " \
  "request_hash, created_at, updated_at, deadline, flags, datasets, timeout_seconds"
#define EVENT_COLS "job_id, seq, from_state, to_state, reason, at"
#define CREDENTIAL_COLS "id, job_id, issued_at, expires_at, used_at"
#define OUTPUT_COLS                                                        \
  "job_id, blob_ref, size, digest, created_at, gate_verdict, gate_score, " \
  "gate_findings_json, gate_at"
#define AUDIT_COLS "seq, at, actor, action, object, decision, details, prev_hash, hash"

// Input bounds. They keep rows small and every canonical encoding's 4-byte
// length prefixes far from overflow.
constexpr size_t kMaxName = 256;
constexpr size_t kMaxText = 4096;
constexpr size_t kMaxDocument = size_t{1} << 20;  // spec JSON, audit details, findings
constexpr int64_t kMaxListLimit = 10000;

std::string Str(int64_t v) {
  return std::to_string(v);
}

std::string Quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

Status CheckText(std::string_view field, std::string_view value, size_t max, bool required) {
  if (required && value.empty()) return InvalidArgument(std::string(field) + ": required");
  if (value.size() > max) {
    return InvalidArgument(std::string(field) + ": " + Str(static_cast<int64_t>(value.size())) +
                           " bytes, at most " + Str(static_cast<int64_t>(max)) + " allowed");
  }
  return Status::Ok();
}

// A job's dataset names are stored as one comma-separated column (names
// cannot contain ',': checked on write).
std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::vector<std::string> SplitNames(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Status CheckDigest(std::string_view field, std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.size() != kPrefix.size() + 64 || digest.substr(0, kPrefix.size()) != kPrefix ||
      !IsLowerHex(digest.substr(kPrefix.size()))) {
    return InvalidArgument(std::string(field) + ": " + Quote(digest.substr(0, 80)) +
                           " is not sha256:<64 lower-case hex digits>");
  }
  return Status::Ok();
}

Status CheckDecimal(std::string_view field, std::string_view s) {
  const size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? "" : s.substr(dot + 1);
  auto digits = [](std::string_view d) {
    return !d.empty() &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (s.size() > 40 || !digits(whole) || (dot != std::string_view::npos && !digits(frac))) {
    return InvalidArgument(std::string(field) + ": " + Quote(s.substr(0, 40)) +
                           " is not a decimal number like 12 or 12.50");
  }
  return Status::Ok();
}

Status CheckLimit(std::string_view what, int64_t limit) {
  if (limit < 1 || limit > kMaxListLimit) {
    return InvalidArgument(std::string(what) + ": limit " + Str(limit) + " is outside 1.." +
                           Str(kMaxListLimit));
  }
  return Status::Ok();
}

Status ValidateAudit(const AuditRecord& r) {
  RETURN_IF_ERROR(CheckText("audit.actor", r.actor, kMaxText, true));
  RETURN_IF_ERROR(CheckText("audit.action", r.action, kMaxText, true));
  RETURN_IF_ERROR(CheckText("audit.object", r.object, kMaxText, false));
  return CheckText("audit.details_json", r.details_json, kMaxDocument, false);
}

// A stored row that no longer parses is corruption (or tampering).
Status Corrupt(std::string_view row, const Status& s) {
  return DataLoss(std::string(row) + ": " + s.message());
}

// ---- Row mappers (column order: the *_COLS lists) -------------------------------

StatusOr<User> ReadUser(const Stmt& s) {
  User u;
  u.id = s.Int(0);
  u.name = s.Text(1);
  const std::string row = "users row " + Str(u.id);
  auto role = ParseRole(s.Text(2));
  if (!role.ok()) return Corrupt(row, role.status());
  u.role = *role;
  ASSIGN_OR_RETURN(u.token_hash, s.Digest(3, row + " token_hash"));
  u.created_at = s.Int(4);
  u.disabled = s.Int(5) != 0;
  return u;
}

StatusOr<Dataset> ReadDataset(const Stmt& s) {
  Dataset d;
  d.id = s.Int(0);
  d.name = s.Text(1);
  d.owner_id = s.Int(2);
  d.location = s.Text(3);
  d.description = s.Text(4);
  d.price = s.Text(5);
  d.max_days = s.Int(6);
  d.key_id = s.Text(7);
  d.wrapped_key = s.Blob(8);
  d.manifest_dataset_id = s.Text(9);
  d.manifest_version = s.Int(10);
  d.created_at = s.Int(11);
  return d;
}

StatusOr<Rental> ReadRental(const Stmt& s) {
  Rental r;
  r.seq = s.Int(0);
  const std::string row = "rentals row " + Str(r.seq);
  r.dataset_id = s.Int(1);
  r.consumer_id = s.Int(2);
  r.start = s.Int(3);
  r.end = s.Int(4);
  r.created_at = s.Int(5);
  ASSIGN_OR_RETURN(r.prev_hash, s.Digest(6, row + " prev_hash"));
  ASSIGN_OR_RETURN(r.hash, s.Digest(7, row + " hash"));
  r.signature = s.Blob(8);
  return r;
}

StatusOr<Image> ReadImage(const Stmt& s) {
  return Image{s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Int(4), s.Int(5) == kPublicImageScope};
}

StatusOr<ImageBlob> ReadImageBlob(const Stmt& s) {
  return ImageBlob{s.Int(0), s.Text(1), s.Int(2), s.Int(3)};
}

StatusOr<Job> ReadJob(const Stmt& s) {
  Job j;
  j.id = s.Text(0);
  const std::string row = "jobs row " + j.id;
  j.consumer_id = s.Int(1);
  j.name = s.Text(2);
  j.spec_json = s.Text(3);
  j.image_digest = s.Text(4);
  auto state = ParseJobState(s.Text(5));
  if (!state.ok()) return Corrupt(row, state.status());
  j.state = *state;
  j.reason = s.Text(6);
  j.idempotency_key = s.IsNull(7) ? "" : s.Text(7);
  ASSIGN_OR_RETURN(j.request_hash, s.Digest(8, row + " request_hash"));
  j.created_at = s.Int(9);
  j.updated_at = s.Int(10);
  j.deadline = s.Int(11);
  j.flags = static_cast<uint32_t>(s.Int(12));
  j.datasets = SplitNames(s.Text(13));
  j.timeout_seconds = s.Int(14);
  return j;
}

StatusOr<JobEvent> ReadEvent(const Stmt& s) {
  JobEvent e;
  e.job_id = s.Text(0);
  e.seq = s.Int(1);
  const std::string row = "job_events row " + e.job_id + "/" + Str(e.seq);
  if (!s.IsNull(2)) {
    auto from = ParseJobState(s.Text(2));
    if (!from.ok()) return Corrupt(row, from.status());
    e.from = *from;
  }
  auto to = ParseJobState(s.Text(3));
  if (!to.ok()) return Corrupt(row, to.status());
  e.to = *to;
  e.reason = s.Text(4);
  e.at = s.Int(5);
  return e;
}

StatusOr<JobCredential> ReadCredential(const Stmt& s) {
  JobCredential c;
  c.id = s.Text(0);
  c.job_id = s.Text(1);
  c.issued_at = s.Int(2);
  c.expires_at = s.Int(3);
  if (!s.IsNull(4)) c.used_at = s.Int(4);
  return c;
}

StatusOr<GateVerdict> ParseVerdict(std::string_view name) {
  for (GateVerdict v : {GateVerdict::kPending, GateVerdict::kRelease, GateVerdict::kHold}) {
    if (GateVerdictName(v) == name) return v;
  }
  return InvalidArgument("unknown gate verdict " + Quote(name));
}

StatusOr<Output> ReadOutput(const Stmt& s) {
  Output o;
  o.job_id = s.Text(0);
  o.blob_ref = s.Text(1);
  o.size = s.Int(2);
  o.digest = s.Text(3);
  o.created_at = s.Int(4);
  auto verdict = ParseVerdict(s.Text(5));
  if (!verdict.ok()) return Corrupt("outputs row " + o.job_id, verdict.status());
  o.verdict = *verdict;
  o.gate_score = s.Real(6);
  o.gate_findings_json = s.Text(7);
  o.gate_at = s.Int(8);
  return o;
}

StatusOr<AuditEntry> ReadAudit(const Stmt& s) {
  AuditEntry e;
  e.seq = s.Int(0);
  const std::string row = "audit_log row " + Str(e.seq);
  e.record.at = s.Int(1);
  e.record.actor = s.Text(2);
  e.record.action = s.Text(3);
  e.record.object = s.Text(4);
  auto decision = ParseAuditDecision(s.Text(5));
  if (!decision.ok()) return Corrupt(row, decision.status());
  e.record.decision = *decision;
  e.record.details_json = s.Text(6);
  ASSIGN_OR_RETURN(e.prev_hash, s.Digest(7, row + " prev_hash"));
  ASSIGN_OR_RETURN(e.hash, s.Digest(8, row + " hash"));
  return e;
}

StatusOr<AuditCheckpoint> ReadCheckpoint(const Stmt& s) {
  AuditCheckpoint c;
  c.seq = s.Int(0);
  ASSIGN_OR_RETURN(c.hash, s.Digest(1, "audit_checkpoints row " + Str(c.seq) + " hash"));
  c.signature = s.Blob(2);
  c.at = s.Int(3);
  return c;
}

// The row `st` yields, or kNotFound("<what> not found").
template <typename T>
StatusOr<T> One(Stmt& st, StatusOr<T> (*read)(const Stmt&), const std::string& what) {
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound(what + " not found");
  return read(st);
}

template <typename T>
StatusOr<std::vector<T>> All(Stmt& st, StatusOr<T> (*read)(const Stmt&)) {
  std::vector<T> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    ASSIGN_OR_RETURN(T v, read(st));
    out.push_back(std::move(v));
  }
}

// ---- In-transaction helpers --------------------------------------------------------

StatusOr<bool> Exists(Connection& c, const char* sql, int64_t key) {
  ASSIGN_OR_RETURN(Stmt st, c.Prepare(sql));
  st.Bind(key);
  return st.Step();
}

StatusOr<bool> Exists(Connection& c, const char* sql, std::string_view key) {
  ASSIGN_OR_RETURN(Stmt st, c.Prepare(sql));
  st.Bind(key);
  return st.Step();
}

Status RequireUser(Connection& c, int64_t id, std::string_view role) {
  ASSIGN_OR_RETURN(bool found, Exists(c, "SELECT 1 FROM users WHERE id = ?", id));
  if (!found) return NotFound(std::string(role) + ": user " + Str(id) + " not found");
  return Status::Ok();
}

Status RequireJob(Connection& c, std::string_view job_id) {
  ASSIGN_OR_RETURN(bool found, Exists(c, "SELECT 1 FROM jobs WHERE id = ?", job_id));
  if (!found) return NotFound("job " + std::string(job_id) + " not found");
  return Status::Ok();
}

// Appends `r` after the current head, read inside the transaction (never
// cached: another process may have appended since our last batch).
StatusOr<AuditEntry> AppendAuditTx(Connection& c, const AuditRecord& r) {
  AuditEntry e;
  e.record = r;
  e.seq = 1;
  {
    ASSIGN_OR_RETURN(Stmt head,
                     c.Prepare("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"));
    ASSIGN_OR_RETURN(bool row, head.Step());
    if (row) {
      e.seq = head.Int(0) + 1;
      ASSIGN_OR_RETURN(e.prev_hash, head.Digest(1, "audit_log head hash"));
    }
  }
  e.hash = AuditEntryHash(e.prev_hash, e.seq, r);
  ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO audit_log (" AUDIT_COLS
                                       ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  ins.Bind(e.seq)
      .Bind(r.at)
      .Bind(r.actor)
      .Bind(r.action)
      .Bind(r.object)
      .Bind(AuditDecisionName(r.decision))
      .Bind(r.details_json)
      .BindBlob(e.prev_hash)
      .BindBlob(e.hash);
  RETURN_IF_ERROR(ins.Run().WithContext("audit"));
  return e;
}

StatusOr<Job> SelectJob(Connection& c, std::string_view job_id) {
  ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " JOB_COLS " FROM jobs WHERE id = ?"));
  st.Bind(job_id);
  return One(st, ReadJob, "job " + std::string(job_id));
}

StatusOr<User> SelectUser(Connection& c, int64_t id) {
  ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " USER_COLS " FROM users WHERE id = ?"));
  st.Bind(id);
  return One(st, ReadUser, "user " + Str(id));
}

StatusOr<Output> SelectOutput(Connection& c, std::string_view job_id) {
  ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " OUTPUT_COLS " FROM outputs WHERE job_id = ?"));
  st.Bind(job_id);
  return One(st, ReadOutput, "output of job " + std::string(job_id));
}

StatusOr<JobCredential> SelectCredential(Connection& c, std::string_view id) {
  ASSIGN_OR_RETURN(Stmt st,
                   c.Prepare("SELECT " CREDENTIAL_COLS " FROM job_credentials WHERE id = ?"));
  st.Bind(id);
  return One(st, ReadCredential, "credential " + std::string(id));
}

// Runs fn, turning an escaping exception (allocation failure, a throwing
// RentalSigner) into a Status: nothing may unwind through the writer loop.
Status RunGuarded(const std::function<Status(Connection&)>& fn, Connection& c) {
  try {
    return fn(c);
  } catch (const std::exception& e) {
    return Internal(std::string("store: unexpected exception: ") + e.what());
  } catch (...) {
    return Internal("store: unexpected exception");
  }
}

}  // namespace

// ---- Lifecycle ------------------------------------------------------------------

SqliteStore::SqliteStore(SqliteStoreOptions options) : options_(std::move(options)) {}

int64_t SqliteStore::LatestSchemaVersion() {
  return sqlite::LatestSchemaVersion();
}

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const SqliteStoreOptions& options) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(options));
  RETURN_IF_ERROR(store->Init());
  return store;
}

Status SqliteStore::Init() {
  const std::string& path = options_.path;
  if (path.empty() || path == ":memory:") {
    return InvalidArgument("sqlite store: a database file path is required");
  }
  if (options_.max_batch < 1 || options_.max_queue < 1 || options_.read_connections < 1 ||
      options_.checkpoint_frames < 1) {
    return InvalidArgument(
        "sqlite store: max_batch, max_queue, read_connections and checkpoint_frames must be "
        "positive");
  }
  // The file holds wrapped keys and token hashes: create it private before
  // SQLite does (it would use 0644); -wal and -shm inherit its mode.
  {
    UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus("sqlite store: create " + path, errno);
  }
  ASSIGN_OR_RETURN(writer_, Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                             options_.busy_timeout_ms));
  ASSIGN_OR_RETURN(std::string mode, writer_->QueryText("PRAGMA journal_mode = WAL"));
  if (mode != "wal") {
    return FailedPrecondition(path + ": cannot use WAL mode (journal_mode is " + Quote(mode) + ")");
  }
  // FULL: WAL commits fsync, so an acknowledged write survives power loss,
  // not just a crash of this process.
  RETURN_IF_ERROR(
      writer_->Exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
                    "PRAGMA journal_size_limit = 67108864"));
  RETURN_IF_ERROR(sqlite::Migrate(*writer_).WithContext(path));

  // Replacing the WAL hook turns off SQLite's auto-checkpoint, which would
  // copy pages and fsync the database file inside some batch's COMMIT: the
  // hook only notes that a checkpoint is due; the batch's leader runs it
  // after handing out the batch's results. Being the only writer here, that
  // checkpoint completes and the next transaction restarts the WAL from its
  // beginning, bounding its size.
  sqlite3_wal_hook(
      writer_->raw(),
      [](void* self, sqlite3*, const char*, int frames) -> int {
        auto* store = static_cast<SqliteStore*>(self);
        if (frames >= store->options_.checkpoint_frames) store->checkpoint_due_ = true;
        return SQLITE_OK;
      },
      this);
  for (int i = 0; i < options_.read_connections; ++i) {
    ASSIGN_OR_RETURN(auto reader,
                     Connection::Open(path, SQLITE_OPEN_READONLY, options_.busy_timeout_ms));
    free_readers_.push_back(reader.get());
    readers_.push_back(std::move(reader));
  }
  return Status::Ok();
}

SqliteStore::~SqliteStore() {
  {
    std::unique_lock<std::mutex> lock(write_mu_);
    stopping_ = true;
    space_cv_.notify_all();
    // Ops already queued are committed by their callers; none is left behind.
    idle_cv_.wait(lock, [&] { return !leading_ && queue_.empty(); });
  }
  readers_.clear();
  writer_.reset();  // the last connection checkpoints the WAL
}

SqliteWriterStats SqliteStore::WriterStats() const {
  std::lock_guard<std::mutex> lock(write_mu_);
  return stats_;
}

// ---- Group commit -------------------------------------------------------------------

Status SqliteStore::Write(const TxnFn& fn) {
  WriteOp op;
  op.fn = &fn;
  std::unique_lock<std::mutex> lock(write_mu_);
  space_cv_.wait(lock, [&] { return stopping_ || queue_.size() < options_.max_queue; });
  if (stopping_) return {StatusCode::kUnavailable, "store: closing"};
  queue_.push_back(&op);
  while (!op.done) {
    if (leading_ || queue_.front() != &op) {
      op.cv.wait(lock);
      continue;
    }
    // Lead: commit the queue's head (this op first) in one transaction.
    leading_ = true;
    const size_t n = std::min(queue_.size(), options_.max_batch);
    batch_.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    space_cv_.notify_all();
    lock.unlock();
    ApplyBatch(batch_);
    lock.lock();
    for (WriteOp* o : batch_) {
      o->done = true;
      // Under the lock: a waiter cannot return (ending its op, cv and all)
      // before this notify is over.
      if (o != &op) o->cv.notify_one();
    }
    ++stats_.transactions;
    stats_.mutations += batch_.size();
    if (checkpoint_due_) {
      lock.unlock();
      CheckpointIfDue();  // still the leader: the writer connection is ours
      lock.lock();
    }
    leading_ = false;
    if (!queue_.empty()) queue_.front()->cv.notify_one();  // the next leader
    idle_cv_.notify_all();
  }
  return op.result;
}

void SqliteStore::CheckpointIfDue() {
  if (!checkpoint_due_) return;
  checkpoint_due_ = false;
  // PASSIVE never waits for readers; a failure (busy, I/O) leaves the
  // frames in the WAL, where they are just as durable, for next time.
  int wal_frames = 0;
  int copied = 0;
  sqlite3_wal_checkpoint_v2(writer_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &wal_frames,
                            &copied);
}

void SqliteStore::ApplyBatch(std::span<WriteOp* const> batch) {
  Connection& c = *writer_;
  auto fail_all = [&](const Status& why) {
    if (c.InTransaction()) static_cast<void>(c.Exec("ROLLBACK"));
    for (WriteOp* op : batch) {
      op->result = {why.code() == StatusCode::kOk ? StatusCode::kInternal : why.code(),
                    "store: write transaction rolled back: " + why.message()};
    }
  };
  Status begin = c.Exec("BEGIN IMMEDIATE");
  if (!begin.ok()) return fail_all(begin);
  for (WriteOp* op : batch) {
    Status savepoint = c.Exec("SAVEPOINT mutation");
    if (!savepoint.ok()) return fail_all(savepoint);
    op->result = RunGuarded(*op->fn, c);
    if (!c.InTransaction()) {
      // SQLite abandoned the whole transaction (I/O error, disk full): the
      // batch-mates already applied are gone too.
      return fail_all(op->result.ok() ? Internal("transaction ended unexpectedly") : op->result);
    }
    Status end = op->result.ok() ? c.Exec("RELEASE mutation")
                                 : c.Exec("ROLLBACK TO mutation; RELEASE mutation");
    if (!end.ok()) return fail_all(end);
  }
  Status commit = c.Exec("COMMIT");
  if (!commit.ok()) fail_all(commit);
}

Status SqliteStore::Read(const TxnFn& fn) {
  Connection* c = nullptr;
  {
    std::unique_lock<std::mutex> lock(read_mu_);
    read_cv_.wait(lock, [&] { return !free_readers_.empty(); });
    c = free_readers_.back();
    free_readers_.pop_back();
  }
  Status s = RunGuarded(fn, *c);
  if (c->InTransaction()) static_cast<void>(c->Exec("ROLLBACK"));
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    free_readers_.push_back(c);
  }
  read_cv_.notify_one();
  return s;
}

template <typename T>
StatusOr<T> SqliteStore::ReadValue(const std::function<StatusOr<T>(Connection&)>& f) {
  std::optional<T> out;
  Status s = Read([&](Connection& c) -> Status {
    StatusOr<T> r = f(c);
    if (!r.ok()) return r.status();
    out.emplace(std::move(r).value());
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return std::move(*out);
}

// The value is handed out only once the batch has committed.
template <typename T>
StatusOr<T> SqliteStore::WriteValue(const std::function<StatusOr<T>(Connection&)>& f) {
  std::optional<T> out;
  Status s = Write([&](Connection& c) -> Status {
    StatusOr<T> r = f(c);
    if (!r.ok()) return r.status();
    out.emplace(std::move(r).value());
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return std::move(*out);
}

// ---- Users -------------------------------------------------------------------------

StatusOr<User> SqliteStore::CreateUser(const User& user, const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckText("user.name", user.name, kMaxName, true));
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<User>([&](Connection& c) -> StatusOr<User> {
    ASSIGN_OR_RETURN(bool taken, Exists(c, "SELECT 1 FROM users WHERE name = ?", user.name));
    if (taken) return AlreadyExists("user " + Quote(user.name) + " already exists");
    ASSIGN_OR_RETURN(Stmt dup, c.Prepare("SELECT 1 FROM users WHERE token_hash = ?"));
    dup.BindBlob(user.token_hash);
    ASSIGN_OR_RETURN(bool token_taken, dup.Step());
    if (token_taken)
      return AlreadyExists("user " + Quote(user.name) + ": token hash already in use");
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO users (name, role, token_hash, created_at, "
                                         "disabled) VALUES (?, ?, ?, ?, ?) RETURNING id"));
    ins.Bind(user.name)
        .Bind(RoleName(user.role))
        .BindBlob(user.token_hash)
        .Bind(user.created_at)
        .Bind(int64_t{user.disabled ? 1 : 0});
    ASSIGN_OR_RETURN(bool row, ins.Step());
    if (!row) return Internal("users: INSERT returned no id");
    User out = user;
    out.id = ins.Int(0);
    RETURN_IF_ERROR(ins.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return out;
  });
}

StatusOr<User> SqliteStore::GetUser(int64_t id) {
  return ReadValue<User>([&](Connection& c) { return SelectUser(c, id); });
}

StatusOr<User> SqliteStore::GetUserByName(std::string_view name) {
  return ReadValue<User>([&](Connection& c) -> StatusOr<User> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " USER_COLS " FROM users WHERE name = ?"));
    st.Bind(name);
    return One(st, ReadUser, "user " + Quote(name));
  });
}

StatusOr<User> SqliteStore::GetUserByTokenHash(const Sha256Digest& token_hash) {
  return ReadValue<User>([&](Connection& c) -> StatusOr<User> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " USER_COLS " FROM users WHERE token_hash = ?"));
    st.BindBlob(token_hash);
    return One(st, ReadUser, "user with this token");
  });
}

StatusOr<std::vector<User>> SqliteStore::ListUsers() {
  return ReadValue<std::vector<User>>([&](Connection& c) -> StatusOr<std::vector<User>> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " USER_COLS " FROM users ORDER BY id"));
    return All(st, ReadUser);
  });
}

Status SqliteStore::SetUserDisabled(int64_t id, bool disabled, const AuditRecord& audit) {
  RETURN_IF_ERROR(ValidateAudit(audit));
  return Write([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("UPDATE users SET disabled = ? WHERE id = ?"));
    st.Bind(int64_t{disabled ? 1 : 0}).Bind(id);
    RETURN_IF_ERROR(st.Run());
    if (c.Changes() == 0) return NotFound("user " + Str(id) + " not found");
    return AppendAuditTx(c, audit).status();
  });
}

Status SqliteStore::SetUserTokenHash(int64_t id, const Sha256Digest& token_hash,
                                     const AuditRecord& audit) {
  RETURN_IF_ERROR(ValidateAudit(audit));
  return Write([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Stmt dup, c.Prepare("SELECT id FROM users WHERE token_hash = ?"));
    dup.BindBlob(token_hash);
    ASSIGN_OR_RETURN(bool taken, dup.Step());
    if (taken) return AlreadyExists("user " + Str(id) + ": token hash already in use");
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("UPDATE users SET token_hash = ? WHERE id = ?"));
    st.BindBlob(token_hash).Bind(id);
    RETURN_IF_ERROR(st.Run());
    if (c.Changes() == 0) return NotFound("user " + Str(id) + " not found");
    return AppendAuditTx(c, audit).status();
  });
}

// ---- Catalog -------------------------------------------------------------------------

StatusOr<Dataset> SqliteStore::CreateDataset(const Dataset& d, const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckText("dataset.name", d.name, kMaxName, true));
  RETURN_IF_ERROR(CheckText("dataset.location", d.location, kMaxText, true));
  RETURN_IF_ERROR(CheckText("dataset.description", d.description, kMaxText, false));
  RETURN_IF_ERROR(CheckDecimal("dataset.price", d.price));
  if (d.max_days < 0) return InvalidArgument("dataset.max_days: " + Str(d.max_days) + " < 0");
  if (d.key_id.empty() || d.key_id.size() > 128 || d.key_id.size() % 2 != 0 ||
      !IsLowerHex(d.key_id)) {
    return InvalidArgument("dataset.key_id: " + Quote(d.key_id.substr(0, 128)) +
                           " is not lower-case hex");
  }
  if (d.wrapped_key.empty() || d.wrapped_key.size() > kMaxText) {
    return InvalidArgument("dataset.wrapped_key: must be 1.." + Str(kMaxText) + " bytes");
  }
  RETURN_IF_ERROR(CheckText("dataset.manifest_dataset_id", d.manifest_dataset_id, kMaxName, false));
  if (d.manifest_version < 0) {
    return InvalidArgument("dataset.manifest_version: " + Str(d.manifest_version) + " < 0");
  }
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<Dataset>([&](Connection& c) -> StatusOr<Dataset> {
    RETURN_IF_ERROR(RequireUser(c, d.owner_id, "dataset " + Quote(d.name) + " owner"));
    ASSIGN_OR_RETURN(bool taken, Exists(c, "SELECT 1 FROM datasets WHERE name = ?", d.name));
    if (taken) return AlreadyExists("dataset " + Quote(d.name) + " already exists");
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO datasets (name, owner_id, location, "
                                         "description, price, max_days, key_id, wrapped_key, "
                                         "manifest_dataset_id, manifest_version, created_at) "
                                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"));
    ins.Bind(d.name)
        .Bind(d.owner_id)
        .Bind(d.location)
        .Bind(d.description)
        .Bind(d.price)
        .Bind(d.max_days)
        .Bind(d.key_id)
        .BindBlob(d.wrapped_key)
        .Bind(d.manifest_dataset_id)
        .Bind(d.manifest_version)
        .Bind(d.created_at);
    ASSIGN_OR_RETURN(bool row, ins.Step());
    if (!row) return Internal("datasets: INSERT returned no id");
    Dataset out = d;
    out.id = ins.Int(0);
    RETURN_IF_ERROR(ins.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return out;
  });
}

StatusOr<Dataset> SqliteStore::GetDataset(int64_t id) {
  return ReadValue<Dataset>([&](Connection& c) -> StatusOr<Dataset> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " DATASET_COLS " FROM datasets WHERE id = ?"));
    st.Bind(id);
    return One(st, ReadDataset, "dataset " + Str(id));
  });
}

StatusOr<Dataset> SqliteStore::GetDatasetByName(std::string_view name) {
  return ReadValue<Dataset>([&](Connection& c) -> StatusOr<Dataset> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " DATASET_COLS " FROM datasets WHERE name = ?"));
    st.Bind(name);
    return One(st, ReadDataset, "dataset " + Quote(name));
  });
}

StatusOr<std::vector<Dataset>> SqliteStore::ListDatasets(std::optional<int64_t> owner_id) {
  return ReadValue<std::vector<Dataset>>([&](Connection& c) -> StatusOr<std::vector<Dataset>> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " DATASET_COLS " FROM datasets"
                                        " WHERE (?1 IS NULL OR owner_id = ?1) ORDER BY id"));
    st.Bind(owner_id);
    return All(st, ReadDataset);
  });
}

// ---- Rentals -------------------------------------------------------------------------

StatusOr<Rental> SqliteStore::AppendRental(const Rental& rental, const RentalSigner& signer,
                                           const AuditRecord& audit) {
  if (rental.end <= rental.start) {
    return InvalidArgument("rental: end " + Str(rental.end) + " is not after start " +
                           Str(rental.start));
  }
  if (!signer) return InvalidArgument("rental: a signer is required");
  RETURN_IF_ERROR(ValidateAudit(audit));
  AuditCheckpoint checkpoint;  // the chain's signed head after this rental
  auto appended = WriteValue<Rental>([&](Connection& c) -> StatusOr<Rental> {
    ASSIGN_OR_RETURN(bool dataset,
                     Exists(c, "SELECT 1 FROM datasets WHERE id = ?", rental.dataset_id));
    if (!dataset) return NotFound("rental: dataset " + Str(rental.dataset_id) + " not found");
    RETURN_IF_ERROR(RequireUser(c, rental.consumer_id, "rental consumer"));
    Rental r;
    r.dataset_id = rental.dataset_id;
    r.consumer_id = rental.consumer_id;
    r.start = rental.start;
    r.end = rental.end;
    r.created_at = rental.created_at;
    r.seq = 1;
    {
      ASSIGN_OR_RETURN(Stmt head,
                       c.Prepare("SELECT seq, hash FROM rentals ORDER BY seq DESC LIMIT 1"));
      ASSIGN_OR_RETURN(bool row, head.Step());
      if (row) {
        r.seq = head.Int(0) + 1;
        ASSIGN_OR_RETURN(r.prev_hash, head.Digest(1, "rentals head hash"));
      }
    }
    r.hash = RentalHash(r.prev_hash, r);
    ASSIGN_OR_RETURN(r.signature, signer(RentalSignatureMessage(r.hash)));
    if (r.signature.empty()) return Internal("rental: the signer returned an empty signature");
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO rentals (" RENTAL_COLS
                                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    ins.Bind(r.seq)
        .Bind(r.dataset_id)
        .Bind(r.consumer_id)
        .Bind(r.start)
        .Bind(r.end)
        .Bind(r.created_at)
        .BindBlob(r.prev_hash)
        .BindBlob(r.hash)
        .BindBlob(r.signature);
    RETURN_IF_ERROR(ins.Run());
    checkpoint = AuditCheckpoint{r.seq, r.hash, {}, r.created_at};
    ASSIGN_OR_RETURN(checkpoint.signature,
                     signer(RentalCheckpointMessage(r.seq, r.hash, r.created_at)));
    if (checkpoint.signature.size() != crypto::Ed25519PrivateKey::kSignatureSize) {
      return Internal("rental checkpoint: the signer did not return a 64-byte signature");
    }
    ASSIGN_OR_RETURN(Stmt cp, c.Prepare("INSERT INTO rental_checkpoints (seq, hash, signature, at)"
                                        " VALUES (?, ?, ?, ?)"));
    cp.Bind(r.seq).BindBlob(r.hash).BindBlob(checkpoint.signature).Bind(r.created_at);
    RETURN_IF_ERROR(cp.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return r;
  });
  if (appended.ok() && !options_.checkpoint_file.empty()) {
    // After the commit: a line in the file always names a committed row.
    RETURN_IF_ERROR(AppendCheckpointFile(options_.checkpoint_file, Chain::kRentals, checkpoint)
                        .WithContext("rental " + Str(appended->seq) + " was recorded, but"));
  }
  return appended;
}

StatusOr<std::vector<Rental>> SqliteStore::ListRentals(const RentalFilter& f) {
  RETURN_IF_ERROR(CheckLimit("rentals", f.limit));
  return ReadValue<std::vector<Rental>>([&](Connection& c) -> StatusOr<std::vector<Rental>> {
    // One statement per filter shape, so each uses its index.
    std::string sql = "SELECT " RENTAL_COLS " FROM rentals WHERE seq > ?";
    if (f.consumer_id) sql += " AND consumer_id = ?";
    if (f.dataset_id) sql += " AND dataset_id = ?";
    sql += " ORDER BY seq LIMIT ?";
    ASSIGN_OR_RETURN(Stmt st, c.Prepare(sql));
    st.Bind(f.after_seq);
    if (f.consumer_id) st.Bind(*f.consumer_id);
    if (f.dataset_id) st.Bind(*f.dataset_id);
    st.Bind(f.limit);
    return All(st, ReadRental);
  });
}

// ---- Images --------------------------------------------------------------------------

StatusOr<Image> SqliteStore::PutImage(const Image& image, const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckText("image.name", image.name, kMaxName, true));
  RETURN_IF_ERROR(CheckText("image.tag", image.tag, kMaxName, true));
  RETURN_IF_ERROR(CheckDigest("image.digest", image.digest));
  RETURN_IF_ERROR(ValidateAudit(audit));
  const std::string ref = image.name + ":" + image.tag;
  return WriteValue<Image>([&](Connection& c) -> StatusOr<Image> {
    RETURN_IF_ERROR(RequireUser(c, image.owner_id, "image " + ref + " owner"));
    ASSIGN_OR_RETURN(Stmt put,
                     c.Prepare("INSERT INTO images (" IMAGE_COLS
                               ") VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, name, tag)"
                               " DO UPDATE SET digest = excluded.digest,"
                               " owner_id = excluded.owner_id,"
                               " created_at = excluded.created_at"));
    put.Bind(image.name)
        .Bind(image.tag)
        .Bind(image.digest)
        .Bind(image.owner_id)
        .Bind(image.created_at)
        .Bind(image.scope());
    RETURN_IF_ERROR(put.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return image;
  });
}

StatusOr<Image> SqliteStore::GetImage(int64_t scope, std::string_view name, std::string_view tag) {
  return ReadValue<Image>([&](Connection& c) -> StatusOr<Image> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " IMAGE_COLS
                                        " FROM images WHERE scope = ? AND name = ? AND tag = ?"));
    st.Bind(scope).Bind(name).Bind(tag);
    return One(st, ReadImage, "image " + std::string(name) + ":" + std::string(tag));
  });
}

StatusOr<std::vector<Image>> SqliteStore::ListImages(const ImageFilter& f) {
  return ReadValue<std::vector<Image>>([&](Connection& c) -> StatusOr<std::vector<Image>> {
    std::string sql = "SELECT " IMAGE_COLS " FROM images";
    if (f.visible_to) sql += " WHERE scope IN (?, ?)";
    sql += " ORDER BY name, tag, scope";
    ASSIGN_OR_RETURN(Stmt st, c.Prepare(sql));
    if (f.visible_to) st.Bind(*f.visible_to).Bind(kPublicImageScope);
    return All(st, ReadImage);
  });
}

StatusOr<Image> SqliteStore::DeleteImage(int64_t scope, std::string_view name, std::string_view tag,
                                         const AuditRecord& audit) {
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<Image>([&](Connection& c) -> StatusOr<Image> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " IMAGE_COLS
                                        " FROM images WHERE scope = ? AND name = ? AND tag = ?"));
    st.Bind(scope).Bind(name).Bind(tag);
    ASSIGN_OR_RETURN(Image old,
                     One(st, ReadImage, "image " + std::string(name) + ":" + std::string(tag)));
    ASSIGN_OR_RETURN(Stmt del,
                     c.Prepare("DELETE FROM images WHERE scope = ? AND name = ? AND tag = ?"));
    del.Bind(scope).Bind(name).Bind(tag);
    RETURN_IF_ERROR(del.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return old;
  });
}

Status SqliteStore::PutImageBlob(const ImageBlob& blob, const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckDigest("image_blob.digest", blob.digest));
  if (blob.scope < 0) return InvalidArgument("image_blob.scope: expected >= 0");
  if (blob.size < 0) return InvalidArgument("image_blob.size: expected >= 0");
  RETURN_IF_ERROR(ValidateAudit(audit));
  return Write([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Stmt put, c.Prepare("INSERT INTO image_blobs (" IMAGE_BLOB_COLS
                                         ") VALUES (?, ?, ?, ?) ON CONFLICT (scope, digest)"
                                         " DO UPDATE SET size = excluded.size,"
                                         " created_at = excluded.created_at"));
    put.Bind(blob.scope).Bind(blob.digest).Bind(blob.size).Bind(blob.created_at);
    RETURN_IF_ERROR(put.Run());
    return AppendAuditTx(c, audit).status();
  });
}

StatusOr<std::vector<ImageBlob>> SqliteStore::ListImageBlobs(std::optional<int64_t> scope) {
  return ReadValue<std::vector<ImageBlob>>([&](Connection& c) -> StatusOr<std::vector<ImageBlob>> {
    std::string sql = "SELECT " IMAGE_BLOB_COLS " FROM image_blobs";
    if (scope) sql += " WHERE scope = ?";
    sql += " ORDER BY scope, digest";
    ASSIGN_OR_RETURN(Stmt st, c.Prepare(sql));
    if (scope) st.Bind(*scope);
    return All(st, ReadImageBlob);
  });
}

Status SqliteStore::DeleteImageBlobs(const std::vector<ImageBlob>& blobs,
                                     const AuditRecord& audit) {
  RETURN_IF_ERROR(ValidateAudit(audit));
  return Write([&](Connection& c) -> Status {
    for (const ImageBlob& b : blobs) {
      ASSIGN_OR_RETURN(Stmt del,
                       c.Prepare("DELETE FROM image_blobs WHERE scope = ? AND digest = ?"));
      del.Bind(b.scope).Bind(b.digest);
      RETURN_IF_ERROR(del.Run());
    }
    return AppendAuditTx(c, audit).status();
  });
}

// ---- Jobs ----------------------------------------------------------------------------

StatusOr<CreateJobResult> SqliteStore::CreateJob(const Job& job, const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckText("job.id", job.id, kMaxName, true));
  RETURN_IF_ERROR(CheckText("job.name", job.name, kMaxName, false));
  RETURN_IF_ERROR(CheckText("job.spec_json", job.spec_json, kMaxDocument, true));
  RETURN_IF_ERROR(CheckDigest("job.image_digest", job.image_digest));
  RETURN_IF_ERROR(CheckText("job.reason", job.reason, kMaxText, false));
  RETURN_IF_ERROR(CheckText("job.idempotency_key", job.idempotency_key, kMaxName, false));
  for (size_t i = 0; i < job.datasets.size(); ++i) {
    const std::string field = "job.datasets[" + Str(static_cast<int64_t>(i)) + "]";
    RETURN_IF_ERROR(CheckText(field, job.datasets[i], kMaxName, true));
    if (job.datasets[i].find(',') != std::string::npos) {
      return InvalidArgument(field + ": a dataset name may not contain ','");
    }
  }
  if (job.timeout_seconds < 0) return InvalidArgument("job.timeout_seconds: must be >= 0");
  if (job.state != JobState::kSubmitted) {
    return InvalidArgument("job " + job.id + ": a new job must be SUBMITTED, not " +
                           std::string(JobStateName(job.state)));
  }
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<CreateJobResult>([&](Connection& c) -> StatusOr<CreateJobResult> {
    if (!job.idempotency_key.empty()) {
      ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " JOB_COLS " FROM jobs"
                                          " WHERE consumer_id = ? AND idempotency_key = ?"));
      st.Bind(job.consumer_id).Bind(job.idempotency_key);
      ASSIGN_OR_RETURN(bool replay, st.Step());
      if (replay) {
        ASSIGN_OR_RETURN(Job existing, ReadJob(st));
        if (existing.request_hash != job.request_hash) {
          return AlreadyExists("idempotency key " + Quote(job.idempotency_key) +
                               " was already used by job " + existing.id +
                               " with a different request");
        }
        return CreateJobResult{std::move(existing), false};
      }
    }
    RETURN_IF_ERROR(RequireUser(c, job.consumer_id, "job " + job.id + " consumer"));
    ASSIGN_OR_RETURN(bool taken, Exists(c, "SELECT 1 FROM jobs WHERE id = ?", job.id));
    if (taken) return AlreadyExists("job " + job.id + " already exists");
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO jobs (" JOB_COLS ") VALUES "
                                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    ins.Bind(job.id)
        .Bind(job.consumer_id)
        .Bind(job.name)
        .Bind(job.spec_json)
        .Bind(job.image_digest)
        .Bind(JobStateName(JobState::kSubmitted))
        .Bind(job.reason);
    if (job.idempotency_key.empty()) {
      ins.BindNull();
    } else {
      ins.Bind(job.idempotency_key);
    }
    ins.BindBlob(job.request_hash)
        .Bind(job.created_at)
        .Bind(job.created_at)
        .Bind(job.deadline)
        .Bind(int64_t{job.flags})
        .Bind(JoinNames(job.datasets))
        .Bind(job.timeout_seconds);
    RETURN_IF_ERROR(ins.Run());
    ASSIGN_OR_RETURN(
        Stmt ev, c.Prepare("INSERT INTO job_events (" EVENT_COLS ") VALUES (?, 1, NULL, ?, ?, ?)"));
    ev.Bind(job.id).Bind(JobStateName(JobState::kSubmitted)).Bind(job.reason).Bind(job.created_at);
    RETURN_IF_ERROR(ev.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    CreateJobResult out{job, true};
    out.job.updated_at = job.created_at;
    return out;
  });
}

StatusOr<Job> SqliteStore::GetJob(std::string_view job_id) {
  return ReadValue<Job>([&](Connection& c) { return SelectJob(c, job_id); });
}

StatusOr<std::vector<Job>> SqliteStore::ListJobs(const JobFilter& f) {
  RETURN_IF_ERROR(CheckLimit("jobs", f.limit));
  if (f.offset < 0) return InvalidArgument("jobs: offset " + Str(f.offset) + " < 0");
  return ReadValue<std::vector<Job>>([&](Connection& c) -> StatusOr<std::vector<Job>> {
    // One statement per filter shape, so each uses its index.
    std::string sql = "SELECT " JOB_COLS " FROM jobs WHERE 1";
    if (f.consumer_id) sql += " AND consumer_id = ?";
    if (f.state) sql += " AND state = ?";
    sql += " ORDER BY job_seq DESC LIMIT ? OFFSET ?";
    ASSIGN_OR_RETURN(Stmt st, c.Prepare(sql));
    if (f.consumer_id) st.Bind(*f.consumer_id);
    if (f.state) st.Bind(JobStateName(*f.state));
    st.Bind(f.limit).Bind(f.offset);
    return All(st, ReadJob);
  });
}

StatusOr<std::vector<Job>> SqliteStore::ListJobsInStates(const std::vector<JobState>& states) {
  if (states.empty()) return std::vector<Job>{};
  if (states.size() > kAllJobStates.size()) {
    return InvalidArgument("jobs: more states than exist");
  }
  return ReadValue<std::vector<Job>>([&](Connection& c) -> StatusOr<std::vector<Job>> {
    std::string sql = "SELECT " JOB_COLS " FROM jobs WHERE state IN (?";
    for (size_t i = 1; i < states.size(); ++i) sql += ", ?";
    sql += ") ORDER BY job_seq";
    ASSIGN_OR_RETURN(Stmt st, c.Prepare(sql));
    for (JobState s : states) st.Bind(JobStateName(s));
    return All(st, ReadJob);
  });
}

StatusOr<std::vector<JobEvent>> SqliteStore::JobHistory(std::string_view job_id) {
  return ReadValue<std::vector<JobEvent>>([&](Connection& c) -> StatusOr<std::vector<JobEvent>> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " EVENT_COLS " FROM job_events"
                                        " WHERE job_id = ? ORDER BY seq"));
    st.Bind(job_id);
    ASSIGN_OR_RETURN(auto events, All(st, ReadEvent));
    if (events.empty()) RETURN_IF_ERROR(RequireJob(c, job_id));
    return events;
  });
}

namespace {

// Inside a write transaction: moves job_id from `from` to `to` (compare and
// set), ORs add_flags into its flags and appends the history event. A job
// not in `from` is kFailedPrecondition; `what` ends that message.
Status MoveJobTx(Connection& c, std::string_view job_id, JobState from, JobState to,
                 std::string_view reason, int64_t at, uint32_t add_flags, const std::string& what) {
  const std::string from_name(JobStateName(from));
  const std::string to_name(JobStateName(to));
  ASSIGN_OR_RETURN(Stmt up, c.Prepare("UPDATE jobs SET state = ?, reason = ?, updated_at = ?,"
                                      " flags = flags | ? WHERE id = ? AND state = ?"));
  up.Bind(to_name).Bind(reason).Bind(at).Bind(int64_t{add_flags}).Bind(job_id).Bind(from_name);
  RETURN_IF_ERROR(up.Run());
  if (c.Changes() == 0) {
    ASSIGN_OR_RETURN(Job current, SelectJob(c, job_id));
    return FailedPrecondition("job " + std::string(job_id) + ": expected state " + from_name +
                              ", found " + std::string(JobStateName(current.state)) + " (" + what +
                              ")");
  }
  ASSIGN_OR_RETURN(Stmt ev, c.Prepare("INSERT INTO job_events (" EVENT_COLS ")"
                                      " SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5"
                                      " FROM job_events WHERE job_id = ?1"));
  ev.Bind(job_id).Bind(from_name).Bind(to_name).Bind(reason).Bind(at);
  return ev.Run();
}

// Inside a write transaction: marks the credential used at `now` if it is
// unused and valid then; otherwise kFailedPrecondition saying why.
Status UseCredentialTx(Connection& c, std::string_view credential_id, int64_t now) {
  ASSIGN_OR_RETURN(Stmt up, c.Prepare("UPDATE job_credentials SET used_at = ?1 WHERE id = ?2"
                                      " AND used_at IS NULL AND issued_at <= ?1"
                                      " AND ?1 < expires_at"));
  up.Bind(now).Bind(credential_id);
  RETURN_IF_ERROR(up.Run());
  if (c.Changes() != 0) return Status::Ok();
  const std::string id(credential_id);
  ASSIGN_OR_RETURN(JobCredential cur, SelectCredential(c, credential_id));
  if (cur.used_at) {
    return FailedPrecondition("credential " + id + " was already used at " + Str(*cur.used_at));
  }
  if (now >= cur.expires_at) {
    return FailedPrecondition("credential " + id + " expired at " + Str(cur.expires_at));
  }
  return FailedPrecondition("credential " + id + " is not valid before " + Str(cur.issued_at));
}

}  // namespace

StatusOr<Job> SqliteStore::TransitionJob(std::string_view job_id, JobState expected_from,
                                         JobState to, std::string_view reason,
                                         const AuditRecord& audit) {
  const std::string id(job_id);
  const std::string from_name(JobStateName(expected_from));
  const std::string to_name(JobStateName(to));
  if (!IsAllowedTransition(expected_from, to)) {
    return InvalidArgument("job " + id + ": transition " + from_name + " -> " + to_name +
                           " is not allowed");
  }
  // A reviewed release needs the decisions behind it: only RecordReview
  // moves a job out of HELD to APPROVED/REJECTED, or on to RELEASED.
  if ((expected_from == JobState::kHeld &&
       (to == JobState::kApproved || to == JobState::kRejected)) ||
      expected_from == JobState::kApproved) {
    if (to != JobState::kFailed && to != JobState::kCancelled) {
      return InvalidArgument("job " + id + ": transition " + from_name + " -> " + to_name +
                             " is made only by a review decision (RecordReview)");
    }
  }
  RETURN_IF_ERROR(CheckText("transition reason", reason, kMaxText, true));
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<Job>([&](Connection& c) -> StatusOr<Job> {
    RETURN_IF_ERROR(
        MoveJobTx(c, job_id, expected_from, to, reason, audit.at, 0, "cannot move to " + to_name));
    if (to == JobState::kReleased && expected_from == JobState::kOutputSubmitted) {
      // Fail closed: only a gate "release" verdict lets output out unreviewed
      // (the error rolls the move back).
      auto output = SelectOutput(c, job_id);
      if (!output.ok() && output.status().code() != StatusCode::kNotFound) return output.status();
      if (!output.ok() || output->verdict != GateVerdict::kRelease) {
        return FailedPrecondition(
            "job " + id + ": cannot release: the gate verdict is " +
            (output.ok() ? Quote(GateVerdictName(output->verdict)) : std::string("missing")) +
            ", not 'release'");
      }
    }
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return SelectJob(c, job_id);
  });
}

// ---- Credentials ---------------------------------------------------------------------

namespace {

Status CheckNewCredential(const JobCredential& cred) {
  RETURN_IF_ERROR(CheckText("credential.id", cred.id, kMaxName, true));
  if (cred.expires_at <= cred.issued_at) {
    return InvalidArgument("credential " + cred.id + ": expires_at " + Str(cred.expires_at) +
                           " is not after issued_at " + Str(cred.issued_at));
  }
  if (cred.used_at) {
    return InvalidArgument("credential " + cred.id + ": a new credential is unused");
  }
  return Status::Ok();
}

// Inside a write transaction: inserts a new credential for an existing job.
Status InsertCredentialTx(Connection& c, const JobCredential& cred) {
  RETURN_IF_ERROR(RequireJob(c, cred.job_id).WithContext("credential " + cred.id));
  ASSIGN_OR_RETURN(bool taken, Exists(c, "SELECT 1 FROM job_credentials WHERE id = ?", cred.id));
  if (taken) return AlreadyExists("credential " + cred.id + " already exists");
  ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO job_credentials (" CREDENTIAL_COLS
                                       ") VALUES (?, ?, ?, ?, NULL)"));
  ins.Bind(cred.id).Bind(cred.job_id).Bind(cred.issued_at).Bind(cred.expires_at);
  return ins.Run();
}

}  // namespace

Status SqliteStore::IssueCredential(const JobCredential& cred, const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckNewCredential(cred));
  RETURN_IF_ERROR(ValidateAudit(audit));
  return Write([&](Connection& c) -> Status {
    RETURN_IF_ERROR(InsertCredentialTx(c, cred));
    return AppendAuditTx(c, audit).status();
  });
}

StatusOr<Job> SqliteStore::IssueCredentialAndProvision(const JobCredential& cred,
                                                       std::string_view reason,
                                                       const AuditRecord& credential_audit,
                                                       const AuditRecord& move_audit) {
  RETURN_IF_ERROR(CheckNewCredential(cred));
  RETURN_IF_ERROR(CheckText("transition reason", reason, kMaxText, true));
  RETURN_IF_ERROR(ValidateAudit(credential_audit));
  RETURN_IF_ERROR(ValidateAudit(move_audit));
  return WriteValue<Job>([&](Connection& c) -> StatusOr<Job> {
    RETURN_IF_ERROR(InsertCredentialTx(c, cred));
    RETURN_IF_ERROR(AppendAuditTx(c, credential_audit).status());
    RETURN_IF_ERROR(MoveJobTx(c, cred.job_id, JobState::kAuthorized, JobState::kProvisioning,
                              reason, move_audit.at, 0, "cannot provision"));
    RETURN_IF_ERROR(AppendAuditTx(c, move_audit).status());
    return SelectJob(c, cred.job_id);
  });
}

StatusOr<JobCredential> SqliteStore::GetCredential(std::string_view credential_id) {
  return ReadValue<JobCredential>(
      [&](Connection& c) { return SelectCredential(c, credential_id); });
}

StatusOr<JobCredential> SqliteStore::MarkCredentialUsed(std::string_view credential_id, int64_t now,
                                                        const AuditRecord& audit) {
  RETURN_IF_ERROR(ValidateAudit(audit));
  const std::string id(credential_id);
  return WriteValue<JobCredential>([&](Connection& c) -> StatusOr<JobCredential> {
    RETURN_IF_ERROR(UseCredentialTx(c, credential_id, now));
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return SelectCredential(c, credential_id);
  });
}

// ---- Key broker ------------------------------------------------------------------------

#define NONCE_COLS "nonce, job_id, credential_id, issued_at, expires_at, used_at"

namespace {

StatusOr<KbsNonce> SelectNonce(Connection& c, std::string_view nonce) {
  ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " NONCE_COLS " FROM kbs_nonces WHERE nonce = ?"));
  st.Bind(nonce);
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("no key broker nonce '" + std::string(nonce) + "'");
  KbsNonce n;
  n.nonce = st.Text(0);
  n.job_id = st.Text(1);
  n.credential_id = st.Text(2);
  n.issued_at = st.Int(3);
  n.expires_at = st.Int(4);
  if (!st.IsNull(5)) n.used_at = st.Int(5);
  return n;
}

}  // namespace

Status SqliteStore::IssueNonce(const KbsNonce& n, int64_t max_outstanding,
                               const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckText("nonce", n.nonce, kMaxName, true));
  if (n.expires_at <= n.issued_at) {
    return InvalidArgument("nonce: expires_at " + Str(n.expires_at) + " is not after issued_at " +
                           Str(n.issued_at));
  }
  if (n.used_at) return InvalidArgument("nonce: a new nonce is unused");
  if (max_outstanding < 1) return InvalidArgument("nonce: max_outstanding must be at least 1");
  RETURN_IF_ERROR(ValidateAudit(audit));
  return Write([&](Connection& c) -> Status {
    RETURN_IF_ERROR(RequireJob(c, n.job_id).WithContext("nonce"));
    ASSIGN_OR_RETURN(JobCredential cred, SelectCredential(c, n.credential_id));
    if (cred.job_id != n.job_id) {
      return InvalidArgument("nonce: credential " + n.credential_id + " is not job " + n.job_id +
                             "'s");
    }
    // An expired nonce can never be used again: keep the table small.
    ASSIGN_OR_RETURN(Stmt prune, c.Prepare("DELETE FROM kbs_nonces WHERE expires_at <= ?"));
    prune.Bind(n.issued_at);
    RETURN_IF_ERROR(prune.Run());
    ASSIGN_OR_RETURN(Stmt count, c.Prepare("SELECT COUNT(*) FROM kbs_nonces WHERE credential_id = ?"
                                           " AND used_at IS NULL"));
    count.Bind(n.credential_id);
    ASSIGN_OR_RETURN(bool row, count.Step());
    const int64_t outstanding = row ? count.Int(0) : 0;
    if (outstanding >= max_outstanding) {
      return ResourceExhausted("nonce: credential " + n.credential_id + " already holds " +
                               Str(outstanding) + " unused nonces (the limit; each expires " +
                               "after its lifetime)");
    }
    ASSIGN_OR_RETURN(bool taken, Exists(c, "SELECT 1 FROM kbs_nonces WHERE nonce = ?", n.nonce));
    if (taken) return AlreadyExists("nonce already issued");
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO kbs_nonces (" NONCE_COLS
                                         ") VALUES (?, ?, ?, ?, ?, NULL)"));
    ins.Bind(n.nonce).Bind(n.job_id).Bind(n.credential_id).Bind(n.issued_at).Bind(n.expires_at);
    RETURN_IF_ERROR(ins.Run());
    return AppendAuditTx(c, audit).status();
  });
}

StatusOr<KbsNonce> SqliteStore::ConsumeNonce(std::string_view nonce, std::string_view job_id,
                                             int64_t now, const AuditRecord& audit) {
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<KbsNonce>([&](Connection& c) -> StatusOr<KbsNonce> {
    ASSIGN_OR_RETURN(Stmt up, c.Prepare("UPDATE kbs_nonces SET used_at = ?1 WHERE nonce = ?2"
                                        " AND job_id = ?3 AND used_at IS NULL"
                                        " AND issued_at <= ?1 AND ?1 < expires_at"));
    up.Bind(now).Bind(nonce).Bind(job_id);
    RETURN_IF_ERROR(up.Run());
    if (c.Changes() == 0) {
      ASSIGN_OR_RETURN(KbsNonce cur, SelectNonce(c, nonce));
      if (cur.job_id != job_id) return FailedPrecondition("nonce was issued for another job");
      if (cur.used_at) return FailedPrecondition("nonce was already used at " + Str(*cur.used_at));
      if (now >= cur.expires_at)
        return FailedPrecondition("nonce expired at " + Str(cur.expires_at));
      return FailedPrecondition("nonce is not valid before " + Str(cur.issued_at));
    }
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return SelectNonce(c, nonce);
  });
}

StatusOr<Job> SqliteStore::AcceptAttestation(std::string_view job_id,
                                             std::string_view credential_id, uint32_t add_flags,
                                             int64_t now, std::string_view reason,
                                             const AuditRecord& audit) {
  const std::string id(job_id);
  const std::string cred_id(credential_id);
  RETURN_IF_ERROR(CheckText("transition reason", reason, kMaxText, true));
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<Job>([&](Connection& c) -> StatusOr<Job> {
    ASSIGN_OR_RETURN(JobCredential cred, SelectCredential(c, credential_id));
    if (cred.job_id != job_id) {
      return FailedPrecondition("credential " + cred_id + " is not job " + id + "'s");
    }
    RETURN_IF_ERROR(UseCredentialTx(c, credential_id, now));
    RETURN_IF_ERROR(MoveJobTx(c, job_id, JobState::kProvisioning, JobState::kAttested, reason,
                              audit.at, add_flags, "cannot attest"));
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return SelectJob(c, job_id);
  });
}

// ---- Outputs ---------------------------------------------------------------------------

Status SqliteStore::PutOutput(const Output& o, const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckText("output.blob_ref", o.blob_ref, kMaxText, true));
  RETURN_IF_ERROR(CheckDigest("output.digest", o.digest));
  if (o.size < 0) return InvalidArgument("output.size: " + Str(o.size) + " < 0");
  if (o.verdict != GateVerdict::kPending) {
    return InvalidArgument("output of job " + o.job_id +
                           ": a new output is pending; set the verdict with SetGateVerdict");
  }
  RETURN_IF_ERROR(ValidateAudit(audit));
  return Write([&](Connection& c) -> Status {
    RETURN_IF_ERROR(RequireJob(c, o.job_id).WithContext("output"));
    ASSIGN_OR_RETURN(bool taken, Exists(c, "SELECT 1 FROM outputs WHERE job_id = ?", o.job_id));
    if (taken) return AlreadyExists("job " + o.job_id + " already has an output");
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO outputs (" OUTPUT_COLS
                                         ") VALUES (?, ?, ?, ?, ?, 'pending', 0, '', 0)"));
    ins.Bind(o.job_id).Bind(o.blob_ref).Bind(o.size).Bind(o.digest).Bind(o.created_at);
    RETURN_IF_ERROR(ins.Run());
    return AppendAuditTx(c, audit).status();
  });
}

StatusOr<Output> SqliteStore::SetGateVerdict(std::string_view job_id, GateVerdict verdict,
                                             double score, std::string_view findings_json,
                                             int64_t at, const AuditRecord& audit) {
  const std::string id(job_id);
  if (verdict == GateVerdict::kPending) {
    return InvalidArgument("gate verdict for job " + id + ": must be release or hold");
  }
  RETURN_IF_ERROR(CheckText("gate findings", findings_json, kMaxDocument, false));
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<Output>([&](Connection& c) -> StatusOr<Output> {
    ASSIGN_OR_RETURN(Stmt up, c.Prepare("UPDATE outputs SET gate_verdict = ?, gate_score = ?,"
                                        " gate_findings_json = ?, gate_at = ?"
                                        " WHERE job_id = ? AND gate_verdict = 'pending'"));
    up.Bind(GateVerdictName(verdict)).Bind(score).Bind(findings_json).Bind(at).Bind(job_id);
    RETURN_IF_ERROR(up.Run());
    if (c.Changes() == 0) {
      ASSIGN_OR_RETURN(Output cur, SelectOutput(c, job_id));
      return FailedPrecondition("output of job " + id + " already has the verdict " +
                                Quote(GateVerdictName(cur.verdict)));
    }
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return SelectOutput(c, job_id);
  });
}

StatusOr<Output> SqliteStore::GetOutput(std::string_view job_id) {
  return ReadValue<Output>([&](Connection& c) { return SelectOutput(c, job_id); });
}

// ---- Reviews ---------------------------------------------------------------------------

#define REVIEW_COLS "seq, job_id, reviewer_id, decision, reason, at"

namespace {

StatusOr<Review> ReadReview(const Stmt& s) {
  Review r;
  r.seq = s.Int(0);
  r.job_id = s.Text(1);
  r.reviewer_id = s.Int(2);
  auto decision = ParseReviewDecision(s.Text(3));
  if (!decision.ok()) return Corrupt("reviews row " + Str(r.seq), decision.status());
  r.decision = *decision;
  r.reason = s.Text(4);
  r.at = s.Int(5);
  return r;
}

StatusOr<std::vector<Review>> SelectReviews(Connection& c, std::string_view job_id) {
  ASSIGN_OR_RETURN(Stmt st,
                   c.Prepare("SELECT " REVIEW_COLS " FROM reviews WHERE job_id = ? ORDER BY seq"));
  st.Bind(job_id);
  return All(st, ReadReview);
}

}  // namespace

StatusOr<ReviewOutcome> SqliteStore::RecordReview(const Review& review, int64_t required_approvals,
                                                  std::string_view move_reason,
                                                  const AuditRecord& audit,
                                                  const AuditRecord& move_audit) {
  const std::string id = review.job_id;
  RETURN_IF_ERROR(CheckText("review.job_id", review.job_id, kMaxName, true));
  RETURN_IF_ERROR(CheckText("review.reason", review.reason, kMaxReviewReasonBytes, true));
  RETURN_IF_ERROR(CheckText("review move reason", move_reason, kMaxText, true));
  if (required_approvals < 1 || required_approvals > kMaxRequiredApprovals) {
    return InvalidArgument("review of job " + id + ": required approvals " +
                           Str(required_approvals) + " is outside 1.." +
                           Str(kMaxRequiredApprovals));
  }
  RETURN_IF_ERROR(ValidateAudit(audit));
  RETURN_IF_ERROR(ValidateAudit(move_audit));
  return WriteValue<ReviewOutcome>([&](Connection& c) -> StatusOr<ReviewOutcome> {
    ASSIGN_OR_RETURN(Job job, SelectJob(c, id));
    if (job.state != JobState::kHeld) {
      return FailedPrecondition("job " + id + " is " + std::string(JobStateName(job.state)) +
                                ", not HELD: there is nothing to review");
    }
    // Fail closed: a review releases only what the gate held.
    auto output = SelectOutput(c, id);
    if (!output.ok() && output.status().code() != StatusCode::kNotFound) return output.status();
    if (!output.ok() || output->verdict != GateVerdict::kHold) {
      return FailedPrecondition(
          "job " + id + ": the gate verdict is " +
          (output.ok() ? Quote(GateVerdictName(output->verdict)) : std::string("missing")) +
          ", not 'hold'");
    }
    ASSIGN_OR_RETURN(User reviewer, SelectUser(c, review.reviewer_id));
    if (reviewer.role != Role::kReviewer || reviewer.disabled) {
      return FailedPrecondition("user " + Quote(reviewer.name) +
                                " is not an enabled reviewer: only reviewers decide on outputs");
    }
    ASSIGN_OR_RETURN(Stmt dup, c.Prepare("SELECT decision FROM reviews"
                                         " WHERE job_id = ? AND reviewer_id = ?"));
    dup.Bind(id).Bind(review.reviewer_id);
    ASSIGN_OR_RETURN(bool decided, dup.Step());
    if (decided) {
      return AlreadyExists("reviewer " + Quote(reviewer.name) + " already decided on job " + id +
                           " (" + dup.Text(0) + "); a second reviewer must decide");
    }
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO reviews (job_id, reviewer_id, decision,"
                                         " reason, at) VALUES (?, ?, ?, ?, ?)"));
    ins.Bind(id)
        .Bind(review.reviewer_id)
        .Bind(ReviewDecisionName(review.decision))
        .Bind(review.reason)
        .Bind(review.at);
    RETURN_IF_ERROR(ins.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    ReviewOutcome out;
    ASSIGN_OR_RETURN(out.reviews, SelectReviews(c, id));
    int64_t approvals = 0;
    for (const Review& r : out.reviews) {
      if (r.decision == ReviewDecision::kApprove) ++approvals;  // one row per reviewer
    }
    const int64_t at = audit.at;
    if (review.decision == ReviewDecision::kReject) {
      RETURN_IF_ERROR(MoveJobTx(c, id, JobState::kHeld, JobState::kRejected, move_reason, at, 0,
                                "cannot reject"));
      RETURN_IF_ERROR(AppendAuditTx(c, move_audit).status());
    } else if (approvals >= required_approvals) {
      RETURN_IF_ERROR(MoveJobTx(c, id, JobState::kHeld, JobState::kApproved, move_reason, at, 0,
                                "cannot approve"));
      RETURN_IF_ERROR(MoveJobTx(c, id, JobState::kApproved, JobState::kReleased, move_reason, at, 0,
                                "cannot release"));
      RETURN_IF_ERROR(AppendAuditTx(c, move_audit).status());
    }
    ASSIGN_OR_RETURN(out.job, SelectJob(c, id));
    return out;
  });
}

StatusOr<std::vector<Review>> SqliteStore::ListReviews(std::string_view job_id) {
  return ReadValue<std::vector<Review>>([&](Connection& c) -> StatusOr<std::vector<Review>> {
    ASSIGN_OR_RETURN(auto reviews, SelectReviews(c, job_id));
    if (reviews.empty()) RETURN_IF_ERROR(RequireJob(c, job_id));
    return reviews;
  });
}

StatusOr<std::vector<Review>> SqliteStore::ListRecentReviews(int64_t limit) {
  RETURN_IF_ERROR(CheckLimit("reviews", limit));
  return ReadValue<std::vector<Review>>([&](Connection& c) -> StatusOr<std::vector<Review>> {
    ASSIGN_OR_RETURN(Stmt st,
                     c.Prepare("SELECT " REVIEW_COLS " FROM reviews ORDER BY seq DESC LIMIT ?"));
    st.Bind(limit);
    return All(st, ReadReview);
  });
}

// ---- Samples ---------------------------------------------------------------------------

#define SAMPLE_COLS \
  "dataset_id, version, file_count, total_bytes, files_digest, published_by, published_at"

namespace {

StatusOr<Sample> ReadSample(const Stmt& s) {
  Sample out;
  out.dataset_id = s.Int(0);
  out.version = s.Int(1);
  out.file_count = s.Int(2);
  out.total_bytes = s.Int(3);
  ASSIGN_OR_RETURN(out.files_digest, s.Digest(4, "samples row " + Str(out.dataset_id) + "/" +
                                                     Str(out.version) + " files_digest"));
  out.published_by = s.Int(5);
  out.published_at = s.Int(6);
  return out;
}

StatusOr<Sample> SelectLatestSample(Connection& c, int64_t dataset_id) {
  ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " SAMPLE_COLS " FROM samples WHERE dataset_id = ?"
                                      " ORDER BY version DESC LIMIT 1"));
  st.Bind(dataset_id);
  return One(st, ReadSample, "sample of dataset " + Str(dataset_id));
}

}  // namespace

StatusOr<Sample> SqliteStore::RecordSample(const Sample& sample, const AuditRecord& audit) {
  const std::string what = "sample of dataset " + Str(sample.dataset_id);
  if (sample.version < 1) {
    return InvalidArgument(what + ": version " + Str(sample.version) + " < 1");
  }
  if (sample.file_count < 0 || sample.total_bytes < 0) {
    return InvalidArgument(what + ": negative file_count or total_bytes");
  }
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<Sample>([&](Connection& c) -> StatusOr<Sample> {
    ASSIGN_OR_RETURN(bool dataset,
                     Exists(c, "SELECT 1 FROM datasets WHERE id = ?", sample.dataset_id));
    if (!dataset) return NotFound("dataset " + Str(sample.dataset_id) + " not found");
    RETURN_IF_ERROR(RequireUser(c, sample.published_by, what + " publisher"));
    auto latest = SelectLatestSample(c, sample.dataset_id);
    if (!latest.ok() && latest.status().code() != StatusCode::kNotFound) return latest.status();
    const int64_t expected = latest.ok() ? latest->version + 1 : 1;
    if (sample.version != expected) {
      return FailedPrecondition(what + ": version " + Str(sample.version) + ", but the next is " +
                                Str(expected) + " (another publication came first)");
    }
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO samples (" SAMPLE_COLS
                                         ") VALUES (?, ?, ?, ?, ?, ?, ?)"));
    ins.Bind(sample.dataset_id)
        .Bind(sample.version)
        .Bind(sample.file_count)
        .Bind(sample.total_bytes)
        .BindBlob(sample.files_digest)
        .Bind(sample.published_by)
        .Bind(sample.published_at);
    RETURN_IF_ERROR(ins.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return sample;
  });
}

StatusOr<Sample> SqliteStore::GetLatestSample(int64_t dataset_id) {
  return ReadValue<Sample>([&](Connection& c) { return SelectLatestSample(c, dataset_id); });
}

// ---- Explore sessions ------------------------------------------------------------------

#define EXPLORE_COLS                                                                         \
  "id, owner_id, backend, state, datasets, idle_timeout_s, created_at, last_activity_at, "   \
  "stopped_at, stop_reason, upstream, login_code_hash, login_code_expires_at, cookie_hash, " \
  "sdk_token_hash"

namespace {

std::string ExploreDatasetsJson(const std::vector<ExploreDataset>& datasets) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& d : datasets) {
    a.push_back(
        {{"dataset_id", d.dataset_id}, {"name", d.name}, {"sample_version", d.sample_version}});
  }
  return a.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

StatusOr<std::vector<ExploreDataset>> ParseExploreDatasets(const std::string& text,
                                                           const std::string& row) {
  nlohmann::json a = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!a.is_array()) return DataLoss(row + " datasets: not a JSON array");
  std::vector<ExploreDataset> out;
  for (const auto& d : a) {
    if (!d.is_object() || !d.contains("dataset_id") || !d["dataset_id"].is_number_integer() ||
        !d.contains("name") || !d["name"].is_string() || !d.contains("sample_version") ||
        !d["sample_version"].is_number_integer()) {
      return DataLoss(row + " datasets: an entry lacks dataset_id, name or sample_version");
    }
    out.push_back({d["dataset_id"].get<int64_t>(), d["name"].get<std::string>(),
                   d["sample_version"].get<int64_t>()});
  }
  return out;
}

StatusOr<std::optional<Sha256Digest>> OptionalDigest(const Stmt& s, int col,
                                                     const std::string& what) {
  if (s.IsNull(col)) return std::optional<Sha256Digest>();
  ASSIGN_OR_RETURN(Sha256Digest d, s.Digest(col, what));
  return std::optional<Sha256Digest>(d);
}

StatusOr<ExploreSession> ReadExploreSession(const Stmt& s) {
  ExploreSession x;
  x.id = s.Text(0);
  const std::string row = "explore_sessions row " + x.id;
  x.owner_id = s.Int(1);
  x.backend = s.Text(2);
  auto state = ParseExploreState(s.Text(3));
  if (!state.ok()) return Corrupt(row, state.status());
  x.state = *state;
  ASSIGN_OR_RETURN(x.datasets, ParseExploreDatasets(s.Text(4), row));
  x.idle_timeout_s = s.Int(5);
  x.created_at = s.Int(6);
  x.last_activity_at = s.Int(7);
  x.stopped_at = s.IsNull(8) ? 0 : s.Int(8);
  x.stop_reason = s.Text(9);
  x.upstream_json = s.Text(10);
  ASSIGN_OR_RETURN(x.login_code_hash, OptionalDigest(s, 11, row + " login_code_hash"));
  x.login_code_expires_at = s.Int(12);
  ASSIGN_OR_RETURN(x.cookie_hash, OptionalDigest(s, 13, row + " cookie_hash"));
  ASSIGN_OR_RETURN(x.sdk_token_hash, s.Digest(14, row + " sdk_token_hash"));
  return x;
}

StatusOr<ExploreSession> SelectExploreSession(Connection& c, std::string_view id) {
  ASSIGN_OR_RETURN(Stmt st,
                   c.Prepare("SELECT " EXPLORE_COLS " FROM explore_sessions WHERE id = ?"));
  st.Bind(id);
  return One(st, ReadExploreSession, "Explore session " + std::string(id));
}

bool IsFinalExploreState(ExploreState s) {
  return !IsLiveExploreState(s);
}

}  // namespace

StatusOr<ExploreSession> SqliteStore::CreateExploreSession(const ExploreSession& x,
                                                           int64_t max_live_per_owner,
                                                           const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckText("explore_session.id", x.id, kMaxName, true));
  RETURN_IF_ERROR(CheckText("explore_session.backend", x.backend, kMaxName, true));
  RETURN_IF_ERROR(CheckText("explore_session.upstream", x.upstream_json, kMaxText, false));
  RETURN_IF_ERROR(CheckText("explore_session.stop_reason", x.stop_reason, kMaxText, false));
  if (x.state != ExploreState::kStarting) {
    return InvalidArgument("explore_session.state: a session is created STARTING, not " +
                           std::string(ExploreStateName(x.state)));
  }
  if (x.idle_timeout_s <= 0) {
    return InvalidArgument("explore_session.idle_timeout_s: must be positive");
  }
  if (x.login_code_hash || x.cookie_hash) {
    return InvalidArgument("explore_session: a new session has no login code or cookie");
  }
  const std::string datasets = ExploreDatasetsJson(x.datasets);
  RETURN_IF_ERROR(CheckText("explore_session.datasets", datasets, kMaxDocument, true));
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<ExploreSession>([&](Connection& c) -> StatusOr<ExploreSession> {
    RETURN_IF_ERROR(RequireUser(c, x.owner_id, "explore_session.owner_id"));
    ASSIGN_OR_RETURN(bool taken, Exists(c, "SELECT 1 FROM explore_sessions WHERE id = ?", x.id));
    if (taken) return AlreadyExists("Explore session " + x.id + " already exists");
    ASSIGN_OR_RETURN(Stmt dup,
                     c.Prepare("SELECT 1 FROM explore_sessions WHERE sdk_token_hash = ?"));
    dup.BindBlob(x.sdk_token_hash);
    ASSIGN_OR_RETURN(bool token_taken, dup.Step());
    if (token_taken) return AlreadyExists("Explore session " + x.id + ": SDK token hash in use");
    ASSIGN_OR_RETURN(Stmt live, c.Prepare("SELECT COUNT(*) FROM explore_sessions WHERE owner_id = ?"
                                          " AND state IN ('STARTING', 'RUNNING')"));
    live.Bind(x.owner_id);
    ASSIGN_OR_RETURN(bool row, live.Step());
    const int64_t n = row ? live.Int(0) : 0;
    if (n >= max_live_per_owner) {
      return ResourceExhausted("user " + Str(x.owner_id) + " already has " + Str(n) +
                               " live Explore sessions (explore.max_sessions_per_user is " +
                               Str(max_live_per_owner) + "): stop one first");
    }
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO explore_sessions (" EXPLORE_COLS
                                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, 0,"
                                         " NULL, ?)"));
    ins.Bind(x.id)
        .Bind(x.owner_id)
        .Bind(x.backend)
        .Bind(ExploreStateName(x.state))
        .Bind(datasets)
        .Bind(x.idle_timeout_s)
        .Bind(x.created_at)
        .Bind(x.last_activity_at)
        .Bind(x.stop_reason)
        .Bind(x.upstream_json)
        .BindBlob(x.sdk_token_hash);
    RETURN_IF_ERROR(ins.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return SelectExploreSession(c, x.id);
  });
}

StatusOr<ExploreSession> SqliteStore::GetExploreSession(std::string_view id) {
  return ReadValue<ExploreSession>([&](Connection& c) { return SelectExploreSession(c, id); });
}

StatusOr<ExploreSession> SqliteStore::GetExploreSessionBySdkTokenHash(const Sha256Digest& hash) {
  return ReadValue<ExploreSession>([&](Connection& c) -> StatusOr<ExploreSession> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " EXPLORE_COLS
                                        " FROM explore_sessions WHERE sdk_token_hash = ?"));
    st.BindBlob(hash);
    return One(st, ReadExploreSession, "Explore session of that token");
  });
}

StatusOr<std::vector<ExploreSession>> SqliteStore::ListExploreSessions(const ExploreFilter& f) {
  return ReadValue<std::vector<ExploreSession>>(
      [&](Connection& c) -> StatusOr<std::vector<ExploreSession>> {
        std::string sql = "SELECT " EXPLORE_COLS " FROM explore_sessions WHERE 1 = 1";
        if (f.owner_id) sql += " AND owner_id = ?";
        if (f.live_only) sql += " AND state IN ('STARTING', 'RUNNING')";
        sql += " ORDER BY created_at DESC, id DESC";
        ASSIGN_OR_RETURN(Stmt st, c.Prepare(sql));
        if (f.owner_id) st.Bind(*f.owner_id);
        return All(st, ReadExploreSession);
      });
}

StatusOr<ExploreSession> SqliteStore::TransitionExploreSession(
    std::string_view id, const std::vector<ExploreState>& from, ExploreState to,
    std::string_view reason, const std::optional<std::string>& upstream_json,
    const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckText("explore session reason", reason, kMaxText, false));
  if (upstream_json) {
    RETURN_IF_ERROR(CheckText("explore_session.upstream", *upstream_json, kMaxText, false));
  }
  if (from.empty()) return InvalidArgument("explore session transition: no `from` state");
  for (ExploreState f : from) {
    if (IsFinalExploreState(f)) {
      return InvalidArgument("Explore session " + std::string(id) + ": " +
                             std::string(ExploreStateName(f)) + " is final, no move leaves it");
    }
  }
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<ExploreSession>([&](Connection& c) -> StatusOr<ExploreSession> {
    ASSIGN_OR_RETURN(ExploreSession x, SelectExploreSession(c, id));
    if (std::find(from.begin(), from.end(), x.state) == from.end()) {
      return FailedPrecondition("Explore session " + x.id + " is " +
                                std::string(ExploreStateName(x.state)) + ", cannot become " +
                                std::string(ExploreStateName(to)));
    }
    // A live move keeps stop_reason empty; a final one records why.
    const bool final_state = IsFinalExploreState(to);
    ASSIGN_OR_RETURN(
        Stmt up,
        c.Prepare(final_state ? "UPDATE explore_sessions SET state = ?,"
                                " upstream = COALESCE(?, upstream), stop_reason = ?,"
                                " stopped_at = ?, login_code_hash = NULL, cookie_hash = NULL"
                                " WHERE id = ?"
                              : "UPDATE explore_sessions SET state = ?,"
                                " upstream = COALESCE(?, upstream) WHERE id = ?"));
    up.Bind(ExploreStateName(to));
    if (upstream_json) {
      up.Bind(std::string_view(*upstream_json));
    } else {
      up.BindNull();
    }
    if (final_state) up.Bind(reason).Bind(audit.at);
    up.Bind(id);
    RETURN_IF_ERROR(up.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return SelectExploreSession(c, id);
  });
}

Status SqliteStore::SetExploreLoginCode(std::string_view id, const Sha256Digest& code_hash,
                                        int64_t expires_at, const AuditRecord& audit) {
  RETURN_IF_ERROR(ValidateAudit(audit));
  return Write([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(ExploreSession x, SelectExploreSession(c, id));
    if (x.state != ExploreState::kRunning) {
      return FailedPrecondition("Explore session " + x.id + " is " +
                                std::string(ExploreStateName(x.state)) +
                                ", not RUNNING: there is nothing to log in to");
    }
    ASSIGN_OR_RETURN(Stmt up, c.Prepare("UPDATE explore_sessions SET login_code_hash = ?,"
                                        " login_code_expires_at = ? WHERE id = ?"));
    up.BindBlob(code_hash).Bind(expires_at).Bind(id);
    RETURN_IF_ERROR(up.Run());
    return AppendAuditTx(c, audit).status();
  });
}

StatusOr<ExploreSession> SqliteStore::ConsumeExploreLoginCode(std::string_view id,
                                                              const Sha256Digest& code_hash,
                                                              int64_t now,
                                                              const Sha256Digest& cookie_hash,
                                                              const AuditRecord& audit) {
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<ExploreSession>([&](Connection& c) -> StatusOr<ExploreSession> {
    auto x = SelectExploreSession(c, id);
    if (!x.ok() && x.status().code() != StatusCode::kNotFound) return x.status();
    const Status refused = PermissionDenied(
        "this login link is not valid (unknown, already used or expired): ask for a new one "
        "with `cce explore open`");
    if (!x.ok() || x->state != ExploreState::kRunning || !x->login_code_hash ||
        !crypto::ConstantTimeEquals(*x->login_code_hash, code_hash) ||
        now >= x->login_code_expires_at) {
      return refused;
    }
    ASSIGN_OR_RETURN(Stmt up, c.Prepare("UPDATE explore_sessions SET login_code_hash = NULL,"
                                        " login_code_expires_at = 0, cookie_hash = ?"
                                        " WHERE id = ? AND login_code_hash = ?"));
    up.BindBlob(cookie_hash).Bind(id).BindBlob(code_hash);
    RETURN_IF_ERROR(up.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return SelectExploreSession(c, id);
  });
}

Status SqliteStore::TouchExploreSession(std::string_view id, int64_t at) {
  return Write([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(bool found, Exists(c, "SELECT 1 FROM explore_sessions WHERE id = ?", id));
    if (!found) return NotFound("Explore session " + std::string(id) + " not found");
    ASSIGN_OR_RETURN(Stmt up, c.Prepare("UPDATE explore_sessions SET last_activity_at = ?"
                                        " WHERE id = ? AND last_activity_at < ?"));
    up.Bind(at).Bind(id).Bind(at);
    return up.Run();
  });
}

// ---- Ethereum ledger index -------------------------------------------------------------

#define WALLET_COLS "address, user_id, linked_at, signature"
#define CHAIN_RENTAL_COLS                                                                     \
  "tx_hash, log_index, block_number, block_hash, dataset_id, payer, start_at, end_at, days, " \
  "amount_wei, indexed_at, signature"
#define CURSOR_COLS "chain_id, contract, next_block, last_block_hash"

namespace {

// "0x" + `digits` lower-case hex: the one spelling the index stores, so an
// address or hash has exactly one key.
Status CheckHex0x(std::string_view field, std::string_view value, size_t digits) {
  if (value.size() != 2 + digits || value.substr(0, 2) != "0x" || !IsLowerHex(value.substr(2))) {
    return InvalidArgument(std::string(field) + ": " + Quote(value.substr(0, 80)) +
                           " is not 0x + " + Str(static_cast<int64_t>(digits)) +
                           " lower-case hex digits");
  }
  return Status::Ok();
}

Status CheckAddress(std::string_view field, std::string_view value) {
  return CheckHex0x(field, value, 40);
}

Status CheckHash(std::string_view field, std::string_view value) {
  return CheckHex0x(field, value, 64);
}

Status CheckWei(std::string_view field, std::string_view value) {
  // uint256 in decimal: at most 78 digits, no sign, no leading zeros.
  if (value.empty() || value.size() > 78 ||
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (value.size() > 1 && value[0] == '0')) {
    return InvalidArgument(std::string(field) + ": " + Quote(value.substr(0, 80)) +
                           " is not a decimal amount of wei");
  }
  return Status::Ok();
}

Status CheckCursor(std::string_view field, const ChainCursor& c) {
  const std::string f(field);
  if (c.chain_id < 1) return InvalidArgument(f + ".chain_id: must be positive");
  RETURN_IF_ERROR(CheckAddress(f + ".contract", c.contract));
  if (c.next_block < 0) return InvalidArgument(f + ".next_block: must not be negative");
  if (!c.last_block_hash.empty()) {
    RETURN_IF_ERROR(CheckHash(f + ".last_block_hash", c.last_block_hash));
  }
  return Status::Ok();
}

Status CheckChainRental(const ChainRental& r, size_t i) {
  const std::string f = "rentals[" + Str(static_cast<int64_t>(i)) + "]";
  RETURN_IF_ERROR(CheckHash(f + ".tx_hash", r.tx_hash));
  if (r.log_index < 0) return InvalidArgument(f + ".log_index: must not be negative");
  if (r.block_number < 0) return InvalidArgument(f + ".block_number: must not be negative");
  RETURN_IF_ERROR(CheckHash(f + ".block_hash", r.block_hash));
  RETURN_IF_ERROR(CheckAddress(f + ".payer", r.payer));
  if (r.end <= r.start) return InvalidArgument(f + ": end must be after start");
  if (r.days < 1) return InvalidArgument(f + ".days: must be at least 1");
  return CheckWei(f + ".amount_wei", r.amount_wei);
}

std::string DescribeCursor(const std::optional<ChainCursor>& c) {
  if (!c) return "none";
  return "{chain " + Str(c->chain_id) + ", contract " + c->contract + ", next block " +
         Str(c->next_block) + ", last block hash " +
         (c->last_block_hash.empty() ? std::string("none") : c->last_block_hash) + "}";
}

StatusOr<WalletLink> ReadWalletLink(const Stmt& s) {
  return WalletLink{s.Text(0), s.Int(1), s.Int(2), s.Blob(3)};
}

StatusOr<ChainRental> ReadChainRental(const Stmt& s) {
  ChainRental r;
  r.tx_hash = s.Text(0);
  r.log_index = s.Int(1);
  r.block_number = s.Int(2);
  r.block_hash = s.Text(3);
  r.dataset_id = s.Int(4);
  r.payer = s.Text(5);
  r.start = s.Int(6);
  r.end = s.Int(7);
  r.days = s.Int(8);
  r.amount_wei = s.Text(9);
  r.indexed_at = s.Int(10);
  r.signature = s.Blob(11);
  return r;
}

StatusOr<ChainCursor> ReadChainCursor(const Stmt& s) {
  return ChainCursor{s.Int(0), s.Text(1), s.Int(2), s.Text(3)};
}

StatusOr<std::optional<ChainCursor>> SelectChainCursor(Connection& c) {
  ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT " CURSOR_COLS " FROM chain_cursor WHERE id = 1"));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<ChainCursor>();
  ASSIGN_OR_RETURN(ChainCursor cursor, ReadChainCursor(st));
  return std::optional<ChainCursor>(std::move(cursor));
}

// The cursor compare-and-set shared by IndexChainRentals and
// DropChainRentals: `expected` must be what is stored, then `next` is.
Status SwapChainCursor(Connection& c, const std::optional<ChainCursor>& expected,
                       const ChainCursor& next) {
  ASSIGN_OR_RETURN(std::optional<ChainCursor> stored, SelectChainCursor(c));
  if (stored != expected) {
    return FailedPrecondition("chain cursor: expected " + DescribeCursor(expected) + ", found " +
                              DescribeCursor(stored) + " (another indexer moved it)");
  }
  ASSIGN_OR_RETURN(Stmt up, c.Prepare("INSERT INTO chain_cursor (id, " CURSOR_COLS
                                      ") VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                                      " chain_id = excluded.chain_id,"
                                      " contract = excluded.contract,"
                                      " next_block = excluded.next_block,"
                                      " last_block_hash = excluded.last_block_hash"));
  up.Bind(next.chain_id).Bind(next.contract).Bind(next.next_block).Bind(next.last_block_hash);
  return up.Run();
}

}  // namespace

StatusOr<WalletLink> SqliteStore::LinkWallet(const WalletLink& link, const AuditRecord& audit) {
  RETURN_IF_ERROR(CheckAddress("wallet.address", link.address));
  RETURN_IF_ERROR(ValidateAudit(audit));
  return WriteValue<WalletLink>([&](Connection& c) -> StatusOr<WalletLink> {
    RETURN_IF_ERROR(RequireUser(c, link.user_id, "wallet.user_id"));
    ASSIGN_OR_RETURN(bool taken,
                     Exists(c, "SELECT 1 FROM eth_wallets WHERE address = ?", link.address));
    if (taken) return AlreadyExists("address " + link.address + " is already linked to a user");
    ASSIGN_OR_RETURN(Stmt ins,
                     c.Prepare("INSERT INTO eth_wallets (" WALLET_COLS ") VALUES (?, ?, ?, ?)"));
    ins.Bind(link.address).Bind(link.user_id).Bind(link.linked_at).BindBlob(link.signature);
    RETURN_IF_ERROR(ins.Run());
    RETURN_IF_ERROR(AppendAuditTx(c, audit).status());
    return link;
  });
}

StatusOr<std::vector<WalletLink>> SqliteStore::ListWalletLinks(std::optional<int64_t> user_id) {
  return ReadValue<std::vector<WalletLink>>(
      [&](Connection& c) -> StatusOr<std::vector<WalletLink>> {
        ASSIGN_OR_RETURN(Stmt st, c.Prepare(user_id ? "SELECT " WALLET_COLS " FROM eth_wallets"
                                                      " WHERE user_id = ?"
                                                      " ORDER BY linked_at, address"
                                                    : "SELECT " WALLET_COLS " FROM eth_wallets"
                                                      " ORDER BY linked_at, address"));
        if (user_id) st.Bind(*user_id);
        return All(st, ReadWalletLink);
      });
}

StatusOr<std::optional<ChainCursor>> SqliteStore::GetChainCursor() {
  return ReadValue<std::optional<ChainCursor>>([&](Connection& c) { return SelectChainCursor(c); });
}

Status SqliteStore::IndexChainRentals(const std::optional<ChainCursor>& expected,
                                      const ChainCursor& next,
                                      const std::vector<ChainRental>& rentals,
                                      const std::vector<AuditRecord>& audits) {
  RETURN_IF_ERROR(CheckCursor("cursor", next));
  for (size_t i = 0; i < rentals.size(); ++i) RETURN_IF_ERROR(CheckChainRental(rentals[i], i));
  for (const auto& a : audits) RETURN_IF_ERROR(ValidateAudit(a));
  return Write([&](Connection& c) -> Status {
    RETURN_IF_ERROR(SwapChainCursor(c, expected, next));
    for (const ChainRental& r : rentals) {
      ASSIGN_OR_RETURN(bool known, Exists(c, "SELECT 1 FROM datasets WHERE id = ?", r.dataset_id));
      if (!known) {
        return FailedPrecondition("chain rental " + r.tx_hash + "/" + Str(r.log_index) +
                                  ": dataset " + Str(r.dataset_id) + " not found");
      }
      ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO chain_rentals (" CHAIN_RENTAL_COLS
                                           ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                                           " ON CONFLICT (tx_hash, log_index) DO NOTHING"));
      ins.Bind(r.tx_hash)
          .Bind(r.log_index)
          .Bind(r.block_number)
          .Bind(r.block_hash)
          .Bind(r.dataset_id)
          .Bind(r.payer)
          .Bind(r.start)
          .Bind(r.end)
          .Bind(r.days)
          .Bind(r.amount_wei)
          .Bind(r.indexed_at)
          .BindBlob(r.signature);
      RETURN_IF_ERROR(ins.Run());
    }
    for (const auto& a : audits) RETURN_IF_ERROR(AppendAuditTx(c, a).status());
    return Status::Ok();
  });
}

Status SqliteStore::DropChainRentals(
    const ChainCursor& expected, const ChainCursor& next,
    const std::vector<std::pair<std::string, int64_t>>& tx_log_keys,
    const std::vector<AuditRecord>& audits) {
  RETURN_IF_ERROR(CheckCursor("cursor", next));
  for (const auto& a : audits) RETURN_IF_ERROR(ValidateAudit(a));
  return Write([&](Connection& c) -> Status {
    RETURN_IF_ERROR(SwapChainCursor(c, expected, next));
    for (const auto& [tx_hash, log_index] : tx_log_keys) {
      ASSIGN_OR_RETURN(Stmt del, c.Prepare("DELETE FROM chain_rentals"
                                           " WHERE tx_hash = ? AND log_index = ?"));
      del.Bind(tx_hash).Bind(log_index);
      RETURN_IF_ERROR(del.Run());
      if (c.Changes() != 1) {
        return NotFound("chain rental " + tx_hash + "/" + Str(log_index) + " not found");
      }
    }
    for (const auto& a : audits) RETURN_IF_ERROR(AppendAuditTx(c, a).status());
    return Status::Ok();
  });
}

StatusOr<std::vector<ChainRental>> SqliteStore::ListChainRentals(const ChainRentalFilter& f) {
  RETURN_IF_ERROR(CheckLimit("chain rentals", f.limit));
  return ReadValue<std::vector<ChainRental>>(
      [&](Connection& c) -> StatusOr<std::vector<ChainRental>> {
        // Columns qualified: the user filter joins eth_wallets.
        std::string sql =
            "SELECT r.tx_hash, r.log_index, r.block_number, r.block_hash, r.dataset_id, r.payer,"
            " r.start_at, r.end_at, r.days, r.amount_wei, r.indexed_at, r.signature"
            " FROM chain_rentals r";
        if (f.user_id) sql += " JOIN eth_wallets w ON w.address = r.payer AND w.user_id = ?";
        sql += " WHERE 1 = 1";
        if (f.dataset_id) sql += " AND r.dataset_id = ?";
        if (f.min_end) sql += " AND r.end_at >= ?";
        if (f.min_block) sql += " AND r.block_number >= ?";
        if (f.after) {
          sql += " AND (r.block_number, r.log_index, r.tx_hash) > (?, ?, ?)";
        }
        sql += " ORDER BY r.block_number, r.log_index, r.tx_hash LIMIT ?";
        ASSIGN_OR_RETURN(Stmt st, c.Prepare(sql));
        if (f.user_id) st.Bind(*f.user_id);
        if (f.dataset_id) st.Bind(*f.dataset_id);
        if (f.min_end) st.Bind(*f.min_end);
        if (f.min_block) st.Bind(*f.min_block);
        if (f.after) {
          st.Bind(f.after->block_number).Bind(f.after->log_index).Bind(f.after->tx_hash);
        }
        st.Bind(f.limit);
        return All(st, ReadChainRental);
      });
}

// ---- Audit -----------------------------------------------------------------------------

StatusOr<AuditEntry> SqliteStore::AppendAudit(const AuditRecord& record) {
  RETURN_IF_ERROR(ValidateAudit(record));
  return WriteValue<AuditEntry>([&](Connection& c) { return AppendAuditTx(c, record); });
}

StatusOr<std::vector<AuditEntry>> SqliteStore::ListAudit(const AuditFilter& f) {
  RETURN_IF_ERROR(CheckLimit("audit", f.limit));
  return ReadValue<std::vector<AuditEntry>>(
      [&](Connection& c) -> StatusOr<std::vector<AuditEntry>> {
        ASSIGN_OR_RETURN(Stmt st, c.Prepare(f.object ? "SELECT " AUDIT_COLS " FROM audit_log"
                                                       " WHERE object = ? AND seq > ?"
                                                       " ORDER BY seq LIMIT ?"
                                                     : "SELECT " AUDIT_COLS " FROM audit_log"
                                                       " WHERE seq > ? ORDER BY seq LIMIT ?"));
        if (f.object) st.Bind(*f.object);
        st.Bind(f.after_seq).Bind(f.limit);
        return All(st, ReadAudit);
      });
}

StatusOr<AuditHead> SqliteStore::GetAuditHead() {
  return ReadValue<AuditHead>([&](Connection& c) -> StatusOr<AuditHead> {
    ASSIGN_OR_RETURN(Stmt st,
                     c.Prepare("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"));
    ASSIGN_OR_RETURN(bool row, st.Step());
    AuditHead head;
    if (row) {
      head.seq = st.Int(0);
      ASSIGN_OR_RETURN(head.hash, st.Digest(1, "audit_log head hash"));
    }
    return head;
  });
}

Status SqliteStore::AddCheckpoint(const AuditCheckpoint& cp) {
  if (cp.signature.size() != crypto::Ed25519PrivateKey::kSignatureSize) {
    return InvalidArgument("audit checkpoint: signature must be 64 bytes (Ed25519)");
  }
  Status s = Write([&](Connection& c) -> Status {
    ASSIGN_OR_RETURN(Stmt entry, c.Prepare("SELECT hash FROM audit_log WHERE seq = ?"));
    entry.Bind(cp.seq);
    ASSIGN_OR_RETURN(bool row, entry.Step());
    if (!row) return NotFound("audit checkpoint: audit entry " + Str(cp.seq) + " not found");
    ASSIGN_OR_RETURN(Sha256Digest stored, entry.Digest(0, "audit_log hash"));
    if (stored != cp.hash) {
      return FailedPrecondition("audit checkpoint: hash does not match audit entry " + Str(cp.seq));
    }
    ASSIGN_OR_RETURN(bool exists,
                     Exists(c, "SELECT 1 FROM audit_checkpoints WHERE seq = ?", cp.seq));
    if (exists) return Status::Ok();  // already checkpointed at this seq: keep the first
    ASSIGN_OR_RETURN(Stmt ins, c.Prepare("INSERT INTO audit_checkpoints (seq, hash, signature, at)"
                                         " VALUES (?, ?, ?, ?)"));
    ins.Bind(cp.seq).BindBlob(cp.hash).BindBlob(cp.signature).Bind(cp.at);
    return ins.Run();
  });
  if (!s.ok() || options_.checkpoint_file.empty()) return s;
  // After the commit (a repeat at a checkpointed seq appends again: harmless,
  // the verifier checks every copy).
  return AppendCheckpointFile(options_.checkpoint_file, Chain::kAudit, cp);
}

StatusOr<std::vector<AuditCheckpoint>> SqliteStore::ListRentalCheckpoints() {
  return ReadValue<std::vector<AuditCheckpoint>>(
      [&](Connection& c) -> StatusOr<std::vector<AuditCheckpoint>> {
        ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT seq, hash, signature, at FROM"
                                            " rental_checkpoints ORDER BY seq"));
        return All(st, ReadCheckpoint);
      });
}

StatusOr<std::vector<AuditCheckpoint>> SqliteStore::ListCheckpoints() {
  return ReadValue<std::vector<AuditCheckpoint>>(
      [&](Connection& c) -> StatusOr<std::vector<AuditCheckpoint>> {
        ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT seq, hash, signature, at FROM audit_checkpoints"
                                            " ORDER BY seq"));
        return All(st, ReadCheckpoint);
      });
}

StatusOr<int64_t> SqliteStore::SchemaVersion() {
  return ReadValue<int64_t>([&](Connection& c) -> StatusOr<int64_t> {
    ASSIGN_OR_RETURN(Stmt st, c.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    ASSIGN_OR_RETURN(bool row, st.Step());
    return row ? st.Int(0) : int64_t{0};
  });
}

}  // namespace cce::store
