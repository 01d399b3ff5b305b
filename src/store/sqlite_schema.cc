#include "store/sqlite_schema.h"

#include <iterator>
#include <string>

namespace cce::store::sqlite {
namespace {

struct Migration {
  int64_t version;
  const char* name;
  const char* sql;
};

// Append new migrations at the end; never edit one that has shipped.
// Tables are STRICT (values must match the declared type). The append-only
// triggers stop accidental UPDATE/DELETE through SQL; they are no defence
// against someone who can edit the file, which is what the hash chains and
// signatures are for.
constexpr Migration kMigrations[] = {
    {1, "initial schema", R"sql(
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('provider', 'consumer', 'reviewer', 'operator')),
  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  created_at INTEGER NOT NULL,
  disabled INTEGER NOT NULL CHECK (disabled IN (0, 1))
) STRICT;

CREATE TABLE datasets (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  owner_id INTEGER NOT NULL REFERENCES users (id),
  location TEXT NOT NULL,
  description TEXT NOT NULL,
  price TEXT NOT NULL,
  max_days INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  wrapped_key BLOB NOT NULL,
  manifest_dataset_id TEXT NOT NULL,
  manifest_version INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX datasets_by_owner ON datasets (owner_id);

CREATE TABLE rentals (
  seq INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets (id),
  consumer_id INTEGER NOT NULL REFERENCES users (id),
  start_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  signature BLOB NOT NULL
) STRICT;
CREATE INDEX rentals_by_consumer ON rentals (consumer_id, dataset_id, seq);
CREATE INDEX rentals_by_dataset ON rentals (dataset_id, seq);

CREATE TABLE images (
  name TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  owner_id INTEGER NOT NULL REFERENCES users (id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (name, tag)
) STRICT;

CREATE TABLE jobs (
  job_seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  consumer_id INTEGER NOT NULL REFERENCES users (id),
  name TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  image_digest TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('SUBMITTED', 'AUTHORIZED', 'PROVISIONING', 'ATTESTED',
      'RUNNING', 'OUTPUT_SUBMITTED', 'RELEASED', 'HELD', 'APPROVED', 'REJECTED', 'FAILED',
      'CANCELLED')),
  reason TEXT NOT NULL,
  idempotency_key TEXT,
  request_hash BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deadline INTEGER NOT NULL,
  flags INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (consumer_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_by_consumer ON jobs (consumer_id, job_seq);
CREATE INDEX jobs_by_state ON jobs (state, job_seq);

CREATE TABLE job_events (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  seq INTEGER NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (job_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE job_credentials (
  id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs (id),
  issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
) STRICT;
CREATE INDEX job_credentials_by_job ON job_credentials (job_id);

CREATE TABLE outputs (
  job_id TEXT PRIMARY KEY REFERENCES jobs (id),
  blob_ref TEXT NOT NULL,
  size INTEGER NOT NULL,
  digest TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  gate_verdict TEXT NOT NULL CHECK (gate_verdict IN ('pending', 'release', 'hold')),
  gate_score REAL NOT NULL,
  gate_findings_json TEXT NOT NULL,
  gate_at INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  object TEXT NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'info')),
  details TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
) STRICT;
CREATE INDEX audit_log_by_object ON audit_log (object, seq);

CREATE TABLE audit_checkpoints (
  seq INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,
  signature BLOB NOT NULL,
  at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER rentals_no_update BEFORE UPDATE ON rentals
  BEGIN SELECT RAISE(ABORT, 'rentals is append-only'); END;
CREATE TRIGGER rentals_no_delete BEFORE DELETE ON rentals
  BEGIN SELECT RAISE(ABORT, 'rentals is append-only'); END;
CREATE TRIGGER job_events_no_update BEFORE UPDATE ON job_events
  BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
CREATE TRIGGER job_events_no_delete BEFORE DELETE ON job_events
  BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
)sql"},
    {2, "key broker nonces", R"sql(
CREATE TABLE kbs_nonces (
  nonce TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs (id),
  credential_id TEXT NOT NULL REFERENCES job_credentials (id),
  issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
) STRICT;
CREATE INDEX kbs_nonces_by_job ON kbs_nonces (job_id);
)sql"},
    // The engine and key broker used to re-parse spec_json at every step for
    // these two; they are now typed columns written at submit. Existing rows
    // are filled from their canonical spec (SQLite's JSON functions).
    {3, "job datasets and timeout as columns", R"sql(
ALTER TABLE jobs ADD COLUMN datasets TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN timeout_seconds INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET
  timeout_seconds = COALESCE(json_extract(spec_json, '$.spec.resources.timeoutSeconds'), 0),
  datasets = COALESCE((SELECT group_concat(json_extract(value, '$.name'), ',')
                       FROM json_each(spec_json, '$.spec.datasets')), '')
WHERE json_valid(spec_json);
)sql"},
    // The rental chain's signed checkpoints (one per rental, written in its
    // transaction): the last rental can no longer be deleted unseen.
    {4, "rental checkpoints", R"sql(
CREATE TABLE rental_checkpoints (
  seq INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,
  signature BLOB NOT NULL,
  at INTEGER NOT NULL
) STRICT;
CREATE TRIGGER rental_checkpoints_no_update BEFORE UPDATE ON rental_checkpoints
  BEGIN SELECT RAISE(ABORT, 'rental_checkpoints is append-only'); END;
CREATE TRIGGER rental_checkpoints_no_delete BEFORE DELETE ON rental_checkpoints
  BEGIN SELECT RAISE(ABORT, 'rental_checkpoints is append-only'); END;
)sql"},
    // Images are scoped to their owner (or the public library/ scope, 0), so
    // the same name:tag of two users are two images; blobs are recorded per
    // scope for existence probes, manifest checks, quotas and collection.
    // An operator's existing library/ tags become public.
    {5, "image scopes and blob records", R"sql(
CREATE TABLE images_v5 (
  scope INTEGER NOT NULL CHECK (scope >= 0),
  name TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  owner_id INTEGER NOT NULL REFERENCES users (id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (scope, name, tag)
) STRICT;
INSERT INTO images_v5 (scope, name, tag, digest, owner_id, created_at)
  SELECT CASE WHEN i.name LIKE 'library/%' AND u.role = 'operator' THEN 0 ELSE i.owner_id END,
         i.name, i.tag, i.digest, i.owner_id, i.created_at
  FROM images i JOIN users u ON u.id = i.owner_id;
DROP TABLE images;
ALTER TABLE images_v5 RENAME TO images;
CREATE INDEX images_by_digest ON images (digest);
CREATE TABLE image_blobs (
  scope INTEGER NOT NULL CHECK (scope >= 0),
  digest TEXT NOT NULL,
  size INTEGER NOT NULL CHECK (size >= 0),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (scope, digest)
) STRICT;
CREATE INDEX image_blobs_by_digest ON image_blobs (digest);
)sql"},
    // Expired key broker nonces are deleted when a new one is issued, and a
    // credential may hold only so many unused ones (key broker, IssueNonce).
    {6, "key broker nonce expiry and per-credential cap", R"sql(
CREATE INDEX kbs_nonces_by_expiry ON kbs_nonces (expires_at);
CREATE INDEX kbs_nonces_by_credential ON kbs_nonces (credential_id, used_at);
)sql"},
    // Reviewers' decisions on held outputs (RecordReview), one per reviewer
    // per job, append-only like the other records of decisions.
    {7, "review decisions", R"sql(
CREATE TABLE reviews (
  seq INTEGER PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs (id),
  reviewer_id INTEGER NOT NULL REFERENCES users (id),
  decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
  reason TEXT NOT NULL,
  at INTEGER NOT NULL,
  UNIQUE (job_id, reviewer_id)
) STRICT;
CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
  BEGIN SELECT RAISE(ABORT, 'reviews is append-only'); END;
CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
  BEGIN SELECT RAISE(ABORT, 'reviews is append-only'); END;
)sql"},
    // Published dataset samples (RecordSample): one row per version, the
    // files on disk under DATA_DIR/samples; append-only.
    {8, "dataset samples", R"sql(
CREATE TABLE samples (
  dataset_id INTEGER NOT NULL REFERENCES datasets (id),
  version INTEGER NOT NULL CHECK (version >= 1),
  file_count INTEGER NOT NULL CHECK (file_count >= 0),
  total_bytes INTEGER NOT NULL CHECK (total_bytes >= 0),
  files_digest BLOB NOT NULL CHECK (length(files_digest) = 32),
  published_by INTEGER NOT NULL REFERENCES users (id),
  published_at INTEGER NOT NULL,
  PRIMARY KEY (dataset_id, version)
) STRICT;
CREATE TRIGGER samples_no_update BEFORE UPDATE ON samples
  BEGIN SELECT RAISE(ABORT, 'samples is append-only'); END;
CREATE TRIGGER samples_no_delete BEFORE DELETE ON samples
  BEGIN SELECT RAISE(ABORT, 'samples is append-only'); END;
)sql"},
    // Explore sessions (docs/explore.md): only hashes of their secrets.
    // (Migration 8 is the samples table.)
    {9, "explore sessions", R"sql(
CREATE TABLE explore_sessions (
  id TEXT PRIMARY KEY,
  owner_id INTEGER NOT NULL REFERENCES users (id),
  backend TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('STARTING', 'RUNNING', 'STOPPED', 'LOST', 'FAILED')),
  datasets TEXT NOT NULL,
  idle_timeout_s INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_activity_at INTEGER NOT NULL,
  stopped_at INTEGER,
  stop_reason TEXT NOT NULL,
  upstream TEXT NOT NULL,
  login_code_hash BLOB CHECK (login_code_hash IS NULL OR length(login_code_hash) = 32),
  login_code_expires_at INTEGER NOT NULL,
  cookie_hash BLOB CHECK (cookie_hash IS NULL OR length(cookie_hash) = 32),
  sdk_token_hash BLOB NOT NULL UNIQUE CHECK (length(sdk_token_hash) = 32)
) STRICT;
CREATE INDEX explore_sessions_by_owner ON explore_sessions (owner_id, state);
CREATE INDEX explore_sessions_by_state ON explore_sessions (state);
)sql"},
    // The `ethereum` ledger's index (docs/ledger.md): addresses linked to
    // users (permanent: an address's rentals never move to another user),
    // the Rented events indexed from the chain (deleted only when their block
    // leaves the canonical chain) and the single-row cursor of the indexer.
    {10, "ethereum wallets and chain rentals", R"sql(
CREATE TABLE eth_wallets (
  address TEXT PRIMARY KEY CHECK (length(address) = 42 AND substr(address, 1, 2) = '0x'
      AND substr(address, 3) NOT GLOB '*[^0-9a-f]*'),
  user_id INTEGER NOT NULL REFERENCES users (id),
  linked_at INTEGER NOT NULL,
  signature BLOB NOT NULL  -- the plane's, over WalletLinkSignatureMessage
) STRICT;
CREATE INDEX eth_wallets_by_user ON eth_wallets (user_id);
CREATE TRIGGER eth_wallets_no_update BEFORE UPDATE ON eth_wallets
  BEGIN SELECT RAISE(ABORT, 'eth_wallets links are permanent'); END;
CREATE TRIGGER eth_wallets_no_delete BEFORE DELETE ON eth_wallets
  BEGIN SELECT RAISE(ABORT, 'eth_wallets links are permanent'); END;
CREATE TABLE chain_rentals (
  tx_hash TEXT NOT NULL CHECK (length(tx_hash) = 66),
  log_index INTEGER NOT NULL CHECK (log_index >= 0),
  block_number INTEGER NOT NULL CHECK (block_number >= 0),
  block_hash TEXT NOT NULL CHECK (length(block_hash) = 66),
  dataset_id INTEGER NOT NULL REFERENCES datasets (id),
  payer TEXT NOT NULL CHECK (length(payer) = 42),
  start_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL CHECK (end_at > start_at),
  days INTEGER NOT NULL CHECK (days >= 1),
  amount_wei TEXT NOT NULL,
  indexed_at INTEGER NOT NULL,
  signature BLOB NOT NULL,  -- the plane's, over ChainRentalSignatureMessage
  PRIMARY KEY (tx_hash, log_index)
) STRICT, WITHOUT ROWID;
CREATE INDEX chain_rentals_by_dataset ON chain_rentals (dataset_id, end_at);
CREATE INDEX chain_rentals_by_payer ON chain_rentals (payer, dataset_id, end_at);
CREATE INDEX chain_rentals_by_block ON chain_rentals (block_number, log_index);
CREATE TABLE chain_cursor (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  chain_id INTEGER NOT NULL CHECK (chain_id >= 1),
  contract TEXT NOT NULL CHECK (length(contract) = 42),
  next_block INTEGER NOT NULL CHECK (next_block >= 0),
  last_block_hash TEXT NOT NULL CHECK (last_block_hash = '' OR length(last_block_hash) = 66)
) STRICT;
)sql"},
};

Status MigrateInTransaction(Connection& c) {
  RETURN_IF_ERROR(
      c.Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
             " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL"
             ") STRICT"));
  int64_t current = 0;
  {
    ASSIGN_OR_RETURN(auto st, c.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) current = st.Int(0);
  }
  if (current > LatestSchemaVersion()) {
    return FailedPrecondition("database schema version " + std::to_string(current) +
                              " is newer than this binary supports (" +
                              std::to_string(LatestSchemaVersion()) +
                              "): upgrade cce-plane before opening it");
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= current) continue;
    RETURN_IF_ERROR(c.Exec(m.sql).WithContext("migration " + std::to_string(m.version)));
    // applied_at is informational, the one place the store reads the clock.
    ASSIGN_OR_RETURN(auto st, c.Prepare("INSERT INTO schema_migrations (version, name, applied_at)"
                                        " VALUES (?, ?, CAST(strftime('%s', 'now') AS INTEGER))"));
    st.Bind(m.version).Bind(std::string_view(m.name));
    RETURN_IF_ERROR(st.Run());
  }
  return Status::Ok();
}

}  // namespace

int64_t LatestSchemaVersion() {
  return std::prev(std::end(kMigrations))->version;
}

Status Migrate(Connection& c) {
  // IMMEDIATE: two processes opening a fresh file at once take turns, and the
  // second sees the first's migrations.
  RETURN_IF_ERROR(c.Exec("BEGIN IMMEDIATE"));
  Status s = MigrateInTransaction(c);
  if (!s.ok()) {
    if (c.InTransaction()) static_cast<void>(c.Exec("ROLLBACK"));
    return s;
  }
  return c.Exec("COMMIT");
}

}  // namespace cce::store::sqlite
