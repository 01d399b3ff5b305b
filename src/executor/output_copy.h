// output_copy: takes a finished container's /output (a host directory the
// untrusted workload could shape freely) and copies only its regular files and
// directories into a destination the agent then packs. Nothing the workload
// planted can make us read outside the source tree: symlinks, magic links,
// mount points, FIFOs, sockets and devices are never followed or read, only
// listed in the manifest's `skipped` with the reason (docs/isolation.md).
//
// Hard links: a hard link is a regular file and its bytes are copied. That is
// acceptable because the container can only link files it can already see
// (same filesystem, inside its own mounts), and those it could copy anyway.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace cce::executor {

struct OutputLimits {
  uint64_t max_bytes = 1ULL << 30;  // sum of copied file sizes
  uint64_t max_files = 10000;       // entries of any kind visited (files, dirs, skipped)
  uint32_t max_depth = 32;          // directory nesting below src_dir
  uint64_t max_name = 255;          // bytes in one path component
};

struct OutputEntry {
  std::string path;    // '/'-separated, relative to src_dir, e.g. "results/a.csv"
  uint64_t size = 0;   // bytes copied
  std::string sha256;  // lowercase hex of the copied bytes
};

struct OutputManifest {
  std::vector<OutputEntry> files;    // sorted by path
  std::vector<std::string> skipped;  // "path: why" (names with odd bytes are \xNN-escaped)
  uint64_t total_bytes = 0;
};

// Copies the tree at `src_dir` into a new directory `dst_dir`. `dst_dir` must
// not exist; its parent must. The copy is built in "<dst_dir>.partial" (a
// leftover one from a crash is removed first) and renamed to `dst_dir` only
// when complete, so on any error nothing is left at `dst_dir`.
// Every open beneath src uses openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), or an O_NOFOLLOW walk with a
// st_dev check where openat2 is missing (ENOSYS); files are opened
// O_NOFOLLOW|O_NONBLOCK and must fstat as S_ISREG. Entries whose names are
// not valid UTF-8 or hold control characters are skipped (the manifest stays
// valid JSON and safe to print). Copied files are 0644, directories 0755.
// Entries are counted against max_files as they are listed, before any copy.
// Errors: kResourceExhausted (a limit was passed; the message names the path
// and the limit), kAlreadyExists (dst_dir exists), kNotFound (src_dir or
// dst_dir's parent missing), kInvalidArgument (src_dir is not a directory or
// a symlink), kIo (a read/write failed; names the path).
StatusOr<OutputManifest> CopyOutput(const std::string& src_dir, const std::string& dst_dir,
                                    const OutputLimits& limits);

// {"files":[{"path":..,"size":..,"sha256":..}],"skipped":[..],"total_bytes":N}
std::string ManifestToJson(const OutputManifest& manifest);

namespace internal {
// CopyOutput with the openat2 path switched off (use_openat2=false) so tests
// cover the O_NOFOLLOW fallback on kernels that have openat2.
StatusOr<OutputManifest> CopyOutputImpl(const std::string& src_dir, const std::string& dst_dir,
                                        const OutputLimits& limits, bool use_openat2);
}  // namespace internal

}  // namespace cce::executor
