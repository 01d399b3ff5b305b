// Keyed fingerprints of reference datasets (docs/gate.md, "Exact copies"):
// every distinctive cell, identifier column and row of the datasets a job
// read, as truncated HMAC-SHA256 values under a fingerprint key, so the
// index reveals nothing of the data without the key and can rest sealed.
// Output tokens go through the same normalisation (number formats, quoting,
// whitespace, Unicode width, invisible characters, case) and are matched
// against it, however the output is formatted or spread over files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"
#include "gate/content.h"
#include "gate/policy.h"

namespace cce::gate {

class ReferenceIndex {
 public:
  ~ReferenceIndex();
  ReferenceIndex(ReferenceIndex&&) noexcept;
  ReferenceIndex& operator=(ReferenceIndex&&) noexcept;

  // Builds an index file by file. `key` (32 bytes) is the fingerprint key;
  // the index keeps a copy in locked memory for matching.
  class Builder {
   public:
    Builder(std::string dataset, crypto::ByteSpan key, const Policy& policy);
    ~Builder();
    // A reference file: CSV/TSV with a header row, or JSON Lines (one flat
    // object per line). Errors: kInvalidArgument "NAME: line N: ..." for a
    // file that is neither.
    Status AddFile(const std::string& name, std::string_view bytes);
    StatusOr<ReferenceIndex> Finish();

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };
  // Every CSV/TSV/JSONL file under `dir` (recursively), with a fresh random
  // key: what `cce gate scan --reference DIR` uses.
  static StatusOr<ReferenceIndex> FromDirectory(const std::string& dir, const Policy& policy);

  // The fingerprints without the key (what the plane seals at rest), and
  // back. Deserialize errors: kDataLoss on malformed bytes.
  std::string Serialize() const;
  static StatusOr<ReferenceIndex> Deserialize(std::string_view bytes, crypto::ByteSpan key);

  const std::string& dataset() const;
  uint64_t rows() const;   // reference rows indexed
  uint64_t cells() const;  // distinctive cells indexed

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit ReferenceIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What the detectors see of a whole output, after every item was parsed.
struct Collected {
  std::vector<std::string> paths;  // every item path (file names carry data too)
  std::vector<TextSpan> texts;
  std::vector<Table> tables;
  std::vector<NumericArray> arrays;
};

// Copied rows, identifier values and distinctive cells (detectors
// "copy.row", "copy.identifier", "copy.cell"), in texts, table cells and
// item paths, counted over the whole output; and memorised reference rows
// in numeric arrays ("model.memorised_row").
void DetectCopies(const Collected& output, const std::vector<const ReferenceIndex*>& references,
                  const Policy& policy, std::vector<Finding>* findings);

}  // namespace cce::gate
