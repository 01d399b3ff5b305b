// explore/desensitize: builds a dataset's desensitized sample, the only form
// of the data an Explore session ever sees (docs/explore/desensitizer.md).
// Streams every *.csv / *.jsonl file under a source directory through the
// policy (sample_policy.h): row sampling, column actions, k-anonymity by
// generalization and suppression, l-diversity; writes the sample all or
// nothing and reports what was done and how much utility is left.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "explore/sample_policy.h"

namespace cce::explore {

struct ColumnReport {
  std::string name;
  std::string action;  // drop, keep, mask, hash, generalize, date, top_k
  // Generalization level chosen above the declared one (0: as declared) and
  // what it means ("bands [0,30) ...", "prefix 2", "month", "*").
  int level = 0;
  std::string generalization;
  // Utility: total variation distance between the column's distribution in
  // the source (every row, through the same transformation) and in the
  // sample; 0 = identical, 1 = disjoint. Absent (-1) for dropped columns.
  double tvd = -1;
  std::string tvd_basis;  // "categories", "histogram", "hash-buckets"
  uint64_t distinct_source = 0;
  uint64_t distinct_sample = 0;
};

struct FileReport {
  std::string path;  // relative to the source directory
  uint64_t rows_in = 0;
  uint64_t rows_out = 0;
};

struct Report {
  uint64_t files = 0;
  uint64_t bytes_in = 0;
  uint64_t rows_in = 0;          // every source row
  uint64_t rows_sampled = 0;     // selected by rows: rate/count
  uint64_t rows_suppressed = 0;  // sampled, then removed for k-anonymity or l-diversity
  uint64_t rows_out = 0;
  double suppression = 0;  // rows_suppressed / rows_sampled
  int k_requested = 0;     // 0: no k_anonymity section
  // Smallest equivalence class (same quasi-identifier values, same file) in
  // the output; 0 if the output is empty.
  uint64_t k_achieved = 0;
  int l_requested = 0;
  // Fewest distinct sensitive values in an output class, counted up to
  // l_requested (so l_achieved == l_requested means "at least l").
  uint64_t l_achieved = 0;
  uint64_t classes = 0;  // equivalence classes in the output
  // Fraction of the source rows the utility figures' source side counts: 1
  // up to 16 MB of source, else a uniform subsample of about 16 MB drawn
  // independently of the sample (bounds the per-row cost of the figure).
  double utility_source_fraction = 1;
  std::vector<ColumnReport> columns;
  std::vector<FileReport> file_reports;
};

nlohmann::json ReportToJson(const Report& report);
std::string ReportToText(const Report& report);

// (bytes done, bytes total, files done, files total); bytes count every pass.
using ProgressFn = std::function<void(uint64_t, uint64_t, uint64_t, uint64_t)>;

// Desensitizes every *.csv and *.jsonl file under src_dir into out_dir (the
// same relative paths). out_dir must not exist or be an empty directory; the
// sample is written into a temporary sibling directory and renamed into
// place only when complete, so on error nothing is left at out_dir.
// Errors (kInvalidArgument unless said): a file other than *.csv/*.jsonl or
// a symlink under src_dir (named); a data column not declared in the policy
// ("FILE:1:COL: column 'x' is not declared in POLICY"); a declared column
// found in no file ("POLICY:LINE:COL: columns.x: ..."); a value an action
// cannot read ("FILE:LINE:COL: column 'age': expected a number"); parse
// errors from tabular.h; k-anonymity that no generalization meets within
// max_suppression (kFailedPrecondition); secret_file errors
// (LoadSampleSecret); kAlreadyExists if out_dir is a non-empty directory or
// a file; kIo for OS errors.
StatusOr<Report> Desensitize(const std::string& src_dir, const SamplePolicy& policy,
                             const std::string& out_dir, const ProgressFn& progress = {});

}  // namespace cce::explore
