// The Output Gate's policy: every detector's parameters, with the defaults
// docs/gate.md documents, loaded from YAML (unknown keys are errors).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cce::gate {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;

struct Policy {
  // Verdict: release at or under `threshold` with no hard-hold finding.
  double threshold = 0.5;

  // --- limits (gate.limits) ---
  uint64_t max_file_bytes = 128 * kMiB;      // one output file; over: hard hold
  uint64_t max_bundle_bytes = 256 * kMiB;    // all output files; over: hard hold
  uint64_t max_files = 10'000;               // output files (before unpacking)
  int max_depth = 6;                         // nesting of containers and encodings
  uint64_t max_expanded_bytes = 512 * kMiB;  // all unpacked/decoded bytes together
  uint64_t max_child_bytes = 128 * kMiB;     // one unpacked member or stream
  double max_expansion_ratio = 100;          // one stream's output/input; over: a bomb
  uint64_t max_items = 100'000;              // items scanned, nested included
  int64_t max_scan_millis = 120'000;         // wall time of one scan; over: hard hold

  // --- types (gate.types) ---
  // Types released when clean (names from FileTypeName); anything else holds.
  std::vector<std::string> allowed_types = {"csv",      "tsv",    "json", "jsonl", "yaml",   "text",
                                            "markdown", "html",   "svg",  "png",   "jpeg",   "pdf",
                                            "xlsx",     "sqlite", "npy",  "npz",   "pickle", "gzip",
                                            "bzip2",    "xz",     "zip",  "tar",   "empty"};

  // --- exact copies (gate.copies) ---
  size_t min_token_chars = 4;  // shorter tokens are never distinctive (digits: significant ones)
  size_t row_min_cells =
      3;  // a copied row: at least this many distinctive cells of one reference row...
  double row_min_fraction =
      0.5;  // ...and this fraction of that row's distinctive cells, on one output record
  size_t rows_hold = 1;         // copied rows at which the output is held (hard)
  size_t identifiers_hold = 3;  // distinct identifier-column values at which it is held (hard)
  size_t cells_hold = 25;       // distinct distinctive cells at which it is held (hard)
  double cell_score = 0.02;     // score per distinct copied cell below cells_hold

  // --- encodings (gate.encodings) ---
  size_t min_encoded_chars = 48;  // shortest base64/hex run decoded and rescanned

  // --- covert channels (gate.covert) ---
  double entropy_bits_per_byte = 7.5;  // over this on >= entropy_min_bytes without a type: hold
  uint64_t entropy_min_bytes = 1024;
  uint64_t max_text_chunk_bytes = 1024;  // PNG tEXt/zTXt/iTXt, JPEG COM/APPn, PDF metadata
  uint64_t max_trailing_bytes = 0;       // bytes after a format's end marker
  double lsb_threshold = 0.95;           // PNG LSB-randomness statistic over which to hold

  // --- statistical disclosure control (gate.sdc) ---
  int64_t min_cell_count = 10;       // ACRO/OpenSAFELY threshold: counts below it (and > 0) hold
  int nk_n = 2;                      // dominance: the n largest contributors...
  double nk_k = 0.9;                 // ...over this share of a magnitude cell hold
  double p_percent = 10;             // p% rule
  double min_unique_fraction = 0.0;  // microdata: rows unique on quasi-identifiers
  std::vector<std::string> quasi_identifiers = {"age",         "sex",
                                                "gender",      "zip",
                                                "zipcode",     "postcode",
                                                "postal_code", "dob",
                                                "birth_date",  "date_of_birth",
                                                "birth_year",  "ethnicity",
                                                "race",        "marital_status",
                                                "occupation"};
  int64_t microdata_min_rows = 5;  // tables shorter than this are not microdata
  bool differencing = true;        // against tables in the bundle and released earlier
};

// Errors: kInvalidArgument "SOURCE: gate.copies.rows_hold: expected a
// non-negative integer" (unknown keys and wrong types name the key).
StatusOr<Policy> LoadPolicy(std::string_view yaml_text, const std::string& source_name);

}  // namespace cce::gate
