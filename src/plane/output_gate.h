// Private to src/plane: the Output Gate service (docs/gate.md, "In the
// plane"). At registration it fingerprints a dataset's tabular files
// (CSV/TSV/JSON Lines, decrypted in memory only) under a fresh random key
// and seals key and index under the master key in DATA_DIR/fingerprints;
// on every submitted output it scans the bundle against the fingerprints of
// the job's datasets and the tables the same consumer was released earlier
// on them. A missing or unreadable index is a holding finding (fail closed).
#pragma once

#include <mutex>
#include <string>

#include "format/format.h"
#include "gate/gate.h"
#include "plane/gate.h"
#include "plane/log.h"
#include "plane/master_key.h"
#include "plane/output_store.h"
#include "store/store.h"

namespace cce::plane {

struct FingerprintSummary {
  int64_t files = 0;  // tabular files fingerprinted
  int64_t rows = 0;
  int64_t cells = 0;  // distinctive cells
};

class OutputGate : public Gate {
 public:
  OutputGate(store::Store& db, OutputStore& outputs, MasterKey& master_key, Logger& log,
             std::string fingerprint_dir, gate::Policy policy)
      : db_(db),
        outputs_(outputs),
        master_key_(master_key),
        log_(log),
        dir_(std::move(fingerprint_dir)),
        policy_(std::move(policy)) {}

  // Fingerprints the tabular files of the encrypted dataset at `dataset_dir`
  // (its manifest already verified with `key`): the index and its key,
  // sealed for `dataset`, not yet stored. Errors: kInvalidArgument naming
  // the dataset file that is not valid CSV/TSV/JSON Lines; I/O.
  struct Sealed {
    crypto::Bytes bytes;
    FingerprintSummary summary;
  };
  StatusOr<Sealed> Fingerprint(const std::string& dataset, const std::string& dataset_dir,
                               const format::Manifest& manifest, const format::DatasetKey& key);
  // Stores (replaces) the sealed index of `dataset`: only once the dataset
  // is recorded, so a refused registration never replaces another's index.
  Status StoreFingerprints(const std::string& dataset, const Sealed& sealed);

  // The engine's call (Gate): never an error for what the output contains;
  // an error only when the output cannot be read (the engine then holds).
  StatusOr<GateDecision> Score(const store::Output& output) override;

  // Earlier released outputs looked at for differencing, newest first.
  static constexpr int64_t kHistoryJobs = 20;

 private:
  StatusOr<std::string> ReadBundle(const std::string& job_id, const std::string& digest);
  StatusOr<gate::ReferenceIndex> LoadIndex(const std::string& dataset);
  std::string PathFor(const std::string& dataset) const;

  store::Store& db_;
  OutputStore& outputs_;
  MasterKey& master_key_;
  Logger& log_;
  std::string dir_;
  gate::Policy policy_;
  std::mutex mu_;  // one StoreFingerprints at a time writes dir_
};

}  // namespace cce::plane
