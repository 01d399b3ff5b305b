// Job outputs at rest: each bundle is sealed under the plane's master key
// (AES-256-GCM, context "output:<job id>", so a sealed file moved to another
// job does not open) and written to DATA_DIR/outputs/<job id>.sealed via a
// temporary file, fsync and rename: a crash leaves either no file or the
// whole one. Plaintext never touches the disk.
#pragma once

#include <string>

#include "base/status.h"
#include "crypto/crypto.h"
#include "plane/master_key.h"

namespace cce::plane {

class OutputStore {
 public:
  // Creates `dir` (mode 0700) if needed.
  static StatusOr<OutputStore> Open(const std::string& dir, MasterKey& master_key);

  // Seals and stores `bundle` for `job_id`; returns the blob reference to
  // record in the store ("outputs/<job id>.sealed"). Replaces an earlier
  // file of the same job (an agent retrying after a crash).
  StatusOr<std::string> Put(const std::string& job_id, crypto::ByteSpan bundle);
  // Reads and opens the bundle; a tampered or swapped file is kDataLoss.
  StatusOr<crypto::SecretBytes> Get(const std::string& job_id);

 private:
  OutputStore(std::string dir, MasterKey& master_key) : dir_(std::move(dir)), mk_(&master_key) {}
  std::string PathFor(const std::string& job_id) const;

  std::string dir_;
  MasterKey* mk_;
};

}  // namespace cce::plane
