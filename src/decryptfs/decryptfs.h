// DecryptFS: a read-only FUSE file system presenting the plaintext view of
// an encrypted dataset directory (docs/format.md). Every byte it returns has
// been authenticated; a segment that fails authentication reads as EIO. The
// agent runs it with the dataset key passed through a pipe; it is also
// usable standalone (build/bin/cce-decryptfs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"
#include "format/format.h"

namespace cce::decryptfs {

struct MountOptions {
  std::string dataset_dir;   // encrypted dataset directory (manifest.cce, objects/)
  std::string mountpoint;    // existing, empty directory that is not a mount point
  bool foreground = false;   // otherwise detach once the mount is up
  bool allow_other = false;  // let users other than the mounting one read
  // Mount even over a non-empty directory (hiding its files) or an existing
  // mount point (stacking on it); refused otherwise.
  bool nonempty = false;
  // Refuse to mount unless the manifest names this dataset id / at least this
  // version (whole-dataset substitution and rollback, docs/format.md §6).
  std::optional<std::string> expect_dataset_id;
  std::optional<uint64_t> min_dataset_version;
  // Where runtime messages (bad segments) go: this file (appended, created
  // 0600) if set; otherwise stderr in the foreground and syslog once detached
  // (a detached server keeps none of the caller's stdin/stdout/stderr).
  std::string log_file;
  unsigned threads = 16;  // FUSE worker threads (maximum)
  // Kernel read-ahead for the mount (the FUSE default is 128 KiB; larger
  // means fewer, bigger requests). 0 leaves the kernel default.
  unsigned kernel_readahead_kib = 1024;
  // Read the ciphertext with O_DIRECT where the lower file system allows:
  // no ciphertext copy in the page cache (the plaintext is cached above us).
  bool direct_lower_io = true;
};

// Authenticates the manifest, mounts the plaintext view at
// options.mountpoint and serves it until unmounted or sent SIGTERM, SIGINT
// or SIGHUP, then unmounts and wipes the key and every cached plaintext.
// Without options.foreground it returns as soon as a detached server has the
// mount up (mount errors are returned here, before detaching). Errors name
// what failed: kInvalidArgument for bad options or a mount point that is not
// empty or already mounted, kPermissionDenied for a wrong key, kDataLoss for a
// tampered manifest or one failing expect_dataset_id / min_dataset_version.
Status RunDecryptFs(const MountOptions& options, format::DatasetKey key);

}  // namespace cce::decryptfs
