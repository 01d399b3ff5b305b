// The agent's DecryptFS mounts: one cce-decryptfs per released dataset, the
// key handed over through a pipe (--key-fd; never argv, env or disk), the
// dataset id and manifest version the plane released the key with passed as
// --expect-dataset-id / --min-version so an older or different encryption of
// the dataset is refused at mount time. Mounted with allow_other so the
// container's mapped user can read through the read-only bind mount.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent/kbs_client.h"
#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::agent {

struct DatasetSource {
  std::string name;        // catalog name
  std::string location;    // as registered: file:///DIR (s3://, juicefs:// need their clients)
  std::string mountpoint;  // an empty directory the agent created
};

class DatasetMounts {
 public:
  DatasetMounts() = default;
  DatasetMounts(DatasetMounts&&) noexcept = default;
  DatasetMounts& operator=(DatasetMounts&&) noexcept;
  DatasetMounts(const DatasetMounts&) = delete;
  DatasetMounts& operator=(const DatasetMounts&) = delete;
  ~DatasetMounts();  // UnmountAll, errors logged to stderr

  // Mounts every source with its key and pin (by name). On any failure the
  // mounts made so far are undone. Errors name the dataset:
  //   kInvalidArgument  a location this agent cannot open (scheme, path)
  //   kNotFound         a key or pin missing for a dataset
  //   kFailedPrecondition / kDataLoss  cce-decryptfs refused (its message:
  //                     wrong key, dataset id or version, tampered manifest)
  static StatusOr<DatasetMounts> Mount(const std::string& decryptfs_binary,
                                       const std::vector<DatasetSource>& sources,
                                       const std::map<std::string, crypto::SecretBytes>& keys,
                                       const std::map<std::string, DatasetPin>& pins);

  const std::vector<std::string>& mountpoints() const { return mountpoints_; }
  // Detaches every mount (the cce-decryptfs servers exit when their mount
  // goes); idempotent. Returns the first error.
  Status UnmountAll();

 private:
  std::vector<std::string> mountpoints_;
};

// file:///ABS/DIR -> /ABS/DIR; other schemes: kInvalidArgument naming it.
StatusOr<std::string> LocalPathOfLocation(const std::string& location);

}  // namespace cce::agent
