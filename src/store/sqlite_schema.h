// Private to src/store: the SQLite schema as numbered migrations, applied in
// order, all pending ones in one transaction, when a SqliteStore opens.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "store/sqlite_db.h"

namespace cce::store::sqlite {

int64_t LatestSchemaVersion();

// Creates schema_migrations if needed and applies every migration newer than
// the database's version. A database newer than this binary is
// kFailedPrecondition and is left untouched.
Status Migrate(Connection& c);

}  // namespace cce::store::sqlite
