// Job outputs at rest: each bundle is sealed segment by segment (the dataset
// format's AES-256-GCM segments, docs/format.md) under a fresh per-output key,
// and that key is sealed under the plane's master key with context
// "output:<job id>", so a sealed file moved to another job does not open. The
// file is written to DATA_DIR/outputs/<job id>.sealed via a temporary file,
// fsync and rename: a crash leaves either no file or the whole one. Plaintext
// never touches the disk, and neither a write nor a read holds more than a
// run of 16 segments (64 KiB) of it in memory (docs/plane.md, "Job outputs").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/status.h"
#include "crypto/crypto.h"
#include "plane/master_key.h"

namespace cce::plane {

// Reads one stored output front to back, a run of up to 16 segments (64 KiB)
// at a time: every segment is authenticated before any of its bytes are
// returned, and the last one carries the final-segment flag, so a truncated,
// extended or reordered file is kDataLoss. When an expected digest is given, the last segment is only
// returned once the SHA-256 of the whole plaintext matches it.
class OutputReader {
 public:
  ~OutputReader();
  OutputReader(const OutputReader&) = delete;
  OutputReader& operator=(const OutputReader&) = delete;

  uint64_t size() const;  // plaintext bytes, authenticated by the file header
  // The next run's plaintext, valid until the next call (the buffer is
  // wiped when it is reused or the reader is destroyed); empty at the end.
  StatusOr<crypto::ByteSpan> Next();

 private:
  friend class OutputStore;
  struct Impl;
  explicit OutputReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A stored output, as recorded in the store.
struct StoredOutput {
  std::string blob_ref;  // "outputs/<job id>.sealed", to record in the store
  uint64_t size = 0;
  std::string digest;  // "sha256:<hex>" of the plaintext
};

// Seals one output pushed to it piece by piece (an upload as it arrives):
// pieces are gathered into a run of 16 segments (64 KiB), which is sealed and
// written as soon as it is full, so no more than that is ever held. The
// plaintext size is fixed at Create because the sealed file's header
// authenticates it. Destroyed without a successful Finish, the partial file
// is removed: nothing is left behind.
class OutputWriter {
 public:
  ~OutputWriter();
  OutputWriter(const OutputWriter&) = delete;
  OutputWriter& operator=(const OutputWriter&) = delete;

  // More bytes than the size given at Create: kInvalidArgument. After any
  // error the writer is dead (every later call fails).
  Status Write(crypto::ByteSpan piece);
  uint64_t written() const;
  // All `size` bytes written (else kInvalidArgument naming both counts) and,
  // when `expected_digest` ("sha256:<hex>") is given, their SHA-256 equal to
  // it (else kInvalidArgument naming both; nothing is stored): fsyncs,
  // renames into place (replacing an earlier file of the job) and fsyncs the
  // directory.
  StatusOr<StoredOutput> Finish(std::string_view expected_digest = {});

 private:
  friend class OutputStore;
  struct Impl;
  explicit OutputWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class OutputStore {
 public:
  // Creates `dir` (mode 0700) if needed.
  static StatusOr<OutputStore> Open(const std::string& dir, MasterKey& master_key);

  // Fills all of `out` with the next plaintext bytes of the bundle.
  using Source = std::function<Status(std::span<uint8_t> out)>;
  using Stored = StoredOutput;
  // A writer for the `size`-byte output of `job_id` (see OutputWriter).
  // Errors: kInvalidArgument for a job id that is not a plain name; I/O.
  StatusOr<std::unique_ptr<OutputWriter>> Create(const std::string& job_id, uint64_t size);
  // Seals `size` bytes pulled from `source` (a segment at a time) and stores
  // them for `job_id` (an OutputWriter fed by `source`). Replaces an earlier
  // file of the same job (an agent retrying after a crash); on error nothing
  // is left behind.
  StatusOr<Stored> Put(const std::string& job_id, uint64_t size, const Source& source);
  // The same for a bundle already in memory; returns the blob reference.
  StatusOr<std::string> Put(const std::string& job_id, crypto::ByteSpan bundle);
  // Opens the stored output for reading. A tampered, swapped or truncated
  // file is kDataLoss (here or from OutputReader::Next); a file in the
  // unsegmented format of earlier builds is kFailedPrecondition.
  // `expected_digest` ("sha256:<hex>"; empty: none) is checked as described
  // at OutputReader.
  StatusOr<std::unique_ptr<OutputReader>> Open(const std::string& job_id,
                                               const std::string& expected_digest);
  // Reads the whole bundle into memory (tests and small outputs only).
  StatusOr<crypto::SecretBytes> Get(const std::string& job_id);

 private:
  OutputStore(std::string dir, MasterKey& master_key) : dir_(std::move(dir)), mk_(&master_key) {}
  std::string PathFor(const std::string& job_id) const;

  std::string dir_;
  MasterKey* mk_;
};

}  // namespace cce::plane
