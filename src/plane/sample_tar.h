// Private to src/plane: a dataset sample as its provider uploads it (a tar of
// the sample directory, PUT /api/v1/datasets/{name}/sample) unpacked into a
// directory the plane owns, and the listing that pins what was unpacked.
// Only regular files and directories with plain relative names are
// accepted; anything else (links, devices, FIFOs, absolute or '..' names,
// too many files or bytes) refuses the whole tar, naming the member.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"
#include "plane/bundle_tar.h"

namespace cce::plane {

struct SampleFile {
  std::string path;  // relative, '/'-separated, no "." or ".." parts
  uint64_t size = 0;
  std::string sha256;  // lower-case hex of the file's bytes
};

struct SampleLimits {
  uint64_t max_files = 10'000;
  uint64_t max_bytes = uint64_t{1} << 30;  // the files' bytes together
};

// A member name longer than this (the whole relative path) is refused.
inline constexpr size_t kMaxSamplePathBytes = 255;

struct UnpackedSample {
  std::vector<SampleFile> files;  // sorted by path, bytewise
  uint64_t total_bytes = 0;
  crypto::Sha256Digest files_digest{};  // SampleFilesDigest(files)
};

// A member name checked and normalized: a leading "./" and a trailing '/'
// dropped; "" for the archive's root ("." or "./"). kInvalidArgument
// saying what is wrong: an absolute name, an empty, "." or ".." part, more
// than kMaxSamplePathBytes bytes, invalid UTF-8 or a control character.
StatusOr<std::string> SampleMemberPath(std::string_view name);

// Reads the tar from `source` and creates its directories and files under
// the directory `dir_fd` (empty, the caller's): files mode 0444, directories
// 0555 once everything is in (`dir_fd` itself is left as it is), owned by
// the plane's user. `what` names the tar in errors ("sample of 'claims'").
// Errors (the caller removes the directory's contents, RemoveSampleTree):
// kInvalidArgument naming the member (a link, device, FIFO, bad name, a
// duplicate path, a path under a file, malformed tar); kResourceExhausted
// past `limits`; kIo from the file system.
StatusOr<UnpackedSample> UnpackSampleTar(BundleTar::Source source, int dir_fd,
                                         const std::string& what, const SampleLimits& limits);

// SHA-256 over "cce-sample-files-v1\n" then, per file in path order, the
// line "<sha256 hex> <size> <path>\n" (paths hold no control characters).
crypto::Sha256Digest SampleFilesDigest(const std::vector<SampleFile>& sorted);

// Removes `name` under the directory `parent_fd` and everything below it,
// never following a symlink; write permission is restored on directories
// first (unpacked ones are 0555). Absent: OK.
Status RemoveSampleTree(int parent_fd, const std::string& name);

}  // namespace cce::plane
