// Private to src/format: the encrypt pipeline behind EncryptDataset.
// One reader thread reads each plaintext file in large runs (1 MiB) and packs
// runs of several small files into one work item; encrypt workers seal each
// run with FileCipher::SealRun and write it with one pwrite at its ciphertext
// offset, then start its writeback (sync_file_range) so the final syncfs of
// the caller has little left to do.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "format/format.h"

namespace cce::format {

// One plaintext file to seal into one new ciphertext object.
struct SealJob {
  std::string src;   // plaintext path, opened with O_NOFOLLOW; named in errors
  std::string dst;   // object to create (O_EXCL); named in write errors
  uint64_t size = 0;  // size when the tree was listed: any other size fails the run
  crypto::Sha256Digest header_sha256{};  // set when the job's header is made
};

// pread(2)'s signature: the seam through which the reader reads plaintext
// (tests inject read errors and files that change while they are read).
using PreadFn = std::function<ssize_t(int fd, void* buf, size_t count, off_t offset)>;

struct SealOptions {
  unsigned threads = 2;  // encrypt workers (at least 1); the reader is one more thread
  ProgressFn progress;   // polled from the calling thread about every 100 ms
  const std::atomic<bool>* cancel = nullptr;
  PreadFn pread;  // empty: ::pread
};

// Seals every job. Stops at the first failure and returns it, naming the file
// and, for read errors, the byte offset ("<src>: read at byte 1048576: ...");
// a file whose size differs from job.size, or changes while it is read, fails
// with kFailedPrecondition naming it. When *cancel becomes true the run stops
// within about one 1 MiB run and returns kFailedPrecondition ("interrupted").
// On any failure, objects already (partly) written are left for the caller to
// remove (EncryptDataset removes its whole staging directory).
Status SealFiles(std::vector<SealJob>& jobs, const DatasetKey& key, const SealOptions& options);

// Plaintext bytes per read and per work item (a multiple of every segment size
// up to 1 MiB). Exposed for tests of sizes around it.
inline constexpr size_t kSealIoBytes = size_t{1} << 20;

}  // namespace cce::format
