// explore/sample_policy: the provider's desensitization policy for
// `cce dataset sample` (docs/explore/desensitizer.md): how rows are sampled,
// what happens to every column, and the k-anonymity / l-diversity target.
// Parsing is strict: an unknown or duplicate key, a missing parameter or a
// value out of range is an error naming "FILE:LINE:COL: key.path".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::explore {

enum class ColumnAction { kDrop, kKeep, kMask, kHash, kGeneralize, kDate, kTopK };
std::string_view ColumnActionName(ColumnAction action);

enum class DateUnit { kDay = 0, kMonth = 1, kYear = 2 };
std::string_view DateUnitName(DateUnit unit);

struct ColumnPolicy {
  std::string name;
  ColumnAction action = ColumnAction::kKeep;
  int line = 0;    // where the column is declared in the policy file (1-based)
  int column = 0;  // ... and its byte column (1-based)
  // mask: the last keep_last characters (code points) stay; values no longer
  // than keep_last are masked entirely.
  int keep_last = 0;
  // hash: hex digits kept of HMAC-SHA256(secret, value), 8..64.
  int length = 16;
  // generalize: exactly one of bands (>= 2 strictly increasing edges),
  // width (> 0) or prefix (>= 1 characters).
  std::vector<double> bands;
  double width = 0;
  int prefix = 0;
  // date: truncation unit, and/or a shift of up to +-shift_days_max days
  // (keyed by the secret; the same shift for every row of one `entity`).
  DateUnit truncate = DateUnit::kDay;
  int shift_days_max = 0;
  std::string entity;  // a declared column; empty: each row its own shift
  // top_k: the k most frequent values of the source stay, the rest become
  // `other`.
  int top_k = 0;
  std::string other = "other";
};

struct LDiversity {
  std::string column;  // the sensitive column
  int l = 0;           // >= 2
};

struct KAnonymity {
  int k = 0;  // >= 2
  std::vector<std::string> quasi_identifiers;
  double max_suppression = 0;  // fraction of the sampled rows, 0..1
  std::optional<LDiversity> l_diversity;
};

struct SamplePolicy {
  std::string source;  // the policy file's name, for messages
  uint64_t seed = 0;
  // rows: exactly one of rate (0 < rate <= 1) or count (>= 1). Default: every row.
  double rate = 1.0;
  uint64_t count = 0;  // 0: sample by rate
  // secret_file resolved against the policy file's directory; empty if none.
  // Needed by `hash` and date shifting.
  std::string secret_file;
  std::optional<KAnonymity> k_anonymity;
  std::vector<ColumnPolicy> columns;  // in declaration order, names unique

  const ColumnPolicy* Find(std::string_view name) const;
};

// Parses policy YAML. `source_name` names the file in messages; `base_dir`
// is where a relative secret_file is resolved ("" leaves it as written).
// Errors: kInvalidArgument "SOURCE:LINE:COL: key.path: what is wrong" for
// YAML syntax, unknown/duplicate keys, wrong types, out-of-range values,
// actions missing their parameters, k_anonymity naming undeclared or dropped
// columns; "SOURCE: larger than N bytes" for an oversized document.
StatusOr<SamplePolicy> ParseSamplePolicy(std::string_view yaml_text, const std::string& source_name,
                                         const std::string& base_dir);

// Reads and parses the policy file at `path` (at most 1 MiB).
// Errors: as ParseSamplePolicy; kIo / kNotFound if the file cannot be read.
StatusOr<SamplePolicy> LoadSamplePolicy(const std::string& path);

// Reads the policy's secret_file: a regular file (not a symlink) of at least
// 32 bytes whose mode grants nothing to group or others (0600 or 0400). The
// whole contents are the HMAC key.
// Errors: kFailedPrecondition if the policy has no secret_file;
// kPermissionDenied naming the file and its mode if it is group/other
// accessible; kInvalidArgument if shorter than 32 bytes; kIo otherwise.
StatusOr<crypto::SecretBytes> LoadSampleSecret(const SamplePolicy& policy);

}  // namespace cce::explore
