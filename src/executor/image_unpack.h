// executor/image_unpack: turns a consumer's OCI image into the root
// filesystem the container runs on. Every blob is verified on the way in;
// every layer entry is placed beneath the root with openat2(RESOLVE_BENEATH)
// and refused if it would escape, create a device, or break a limit.
// The rules, and why each exists, are on UnpackImage below.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "image/blob_store.h"

namespace cce::executor {

// Where an image comes from, as `cce sandbox run --image` spells it:
//   oci:PATH[:TAG]             an OCI image layout directory
//   oci-archive:PATH[:TAG]     a tar (optionally gzip) of an OCI layout
//   docker-archive:PATH[:TAG]  `docker save` output; TAG matches RepoTags
//   dir:ROOTFS                 a root filesystem used as is (no unpacking)
// As in skopeo, PATH ends at its first ':'; everything after is the TAG
// (which may itself contain ':', e.g. "docker-archive:a.tar:busybox:1").
struct ImageRef {
  enum class Kind { kOciLayout, kOciArchive, kDockerArchive, kDir };
  Kind kind = Kind::kOciLayout;
  std::string path;
  std::string tag;  // empty: the input must hold exactly one image
};

// kInvalidArgument naming the part that is wrong: an unknown transport
// (listing the known ones), an empty PATH, an empty TAG after ':', a TAG on
// dir:.
StatusOr<ImageRef> ParseImageRef(std::string_view text);

struct UnpackLimits {
  // Compressed: manifest + config + distinct layer blobs (ReadLocalImage).
  uint64_t max_image_bytes = 8ull << 30;
  // Bytes written to regular files, all layers together (a file rewritten by
  // a later layer counts twice: this bounds disk writes, not the result).
  uint64_t max_bytes = 8ull << 30;
  uint64_t max_file_bytes = 8ull << 30;  // one regular file
  // One layer's uncompressed tar stream (headers and padding included):
  // bounds the work a gzip bomb of zeros can cause.
  uint64_t max_tar_bytes = 16ull << 30;
  uint64_t max_entries = 1'000'000;  // tar entries, all layers together
  uint32_t max_path_depth = 64;      // components of an entry's path
  uint32_t max_path_bytes = 4096;    // an entry's path, a link's target
};

// Running totals across ApplyLayer calls; the limits apply to them.
struct UnpackStats {
  uint64_t layers = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;  // written to regular files
};

// What the runtime needs from the image config's "config" object. Absent
// fields are empty; JSON null counts as absent.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "NAME=value"
  std::string working_dir;
  std::string user;
  std::string manifest_digest;  // "sha256:..."; empty for dir:
};

// Unpacks the image's layers, in manifest order, into rootfs_dir, which
// must be an existing empty directory (not a symlink). Every blob is checked
// against its digest and size (a changed byte is kDataLoss naming the blob),
// and each layer's uncompressed stream against the config's
// rootfs.diff_ids[i]. expected_manifest_digest non-empty: refused with
// kDataLoss, before anything is unpacked, unless the chosen image's manifest
// has that digest (the agent pins the digest the plane recorded).
//
// Entries are created by the calling process, so owned by it (root in the
// executor; the container's user is mapped by a user namespace later).
// Modes are kept except: setuid and setgid are dropped everywhere, sticky is
// dropped on files; every file and directory becomes readable by all,
// directories and executable files searchable/executable by all. Hard links
// must point at an entry already in the tree. Device nodes, FIFOs and
// sockets are refused (an image needs none, and a device node is a door to
// the host's hardware). xattrs and ACLs (file capabilities included) are
// never applied. Whiteouts follow the OCI image spec. zstd layers are
// refused (kInvalidArgument): we ship no zstd decompressor in the trusted
// path.
//
// Errors name the layer (index and digest) and the entry path. On error the
// contents of rootfs_dir are unspecified: the caller removes the directory.
// ref.kind == kDir: nothing is read or written (rootfs_dir is ignored; the
// caller runs ref.path as is) and the config is the default (PATH set,
// working directory "/").
StatusOr<ImageConfig> UnpackImage(const ImageRef& ref, const std::string& rootfs_dir,
                                  const UnpackLimits& limits,
                                  const std::string& expected_manifest_digest = "");

// Applies one layer (a tar stream, uncompressed or gzip) onto the directory
// rootfs_fd with the rules above, adding to *stats. `label` starts every
// error message ("layer 1 (sha256:..)"). The source is read to its end, so a
// VerifyingSource-style check on the blob runs. Returns the SHA-256 of the
// uncompressed stream (the layer's diff_id). Errors: kInvalidArgument for a
// refused entry, a limit, an unsupported compression or a malformed tar;
// the source's own error (e.g. kDataLoss) if reading it fails; kIo for a
// failed system call.
StatusOr<image::Digest> ApplyLayer(int rootfs_fd, image::ByteSource& layer, std::string_view label,
                                   const UnpackLimits& limits, UnpackStats* stats);

}  // namespace cce::executor
