// image/blob_store: content-addressed storage for container image blobs.
// A blob lives at ROOT/blobs/sha256/<64 hex> and is only ever placed there
// after its bytes were hashed on the way in and matched the expected digest.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::image {

// A content digest, always "sha256:<64 lower-case hex digits>". A
// default-constructed Digest is empty() and names no blob.
class Digest {
 public:
  Digest() = default;
  // Strict: other algorithms (sha512, ...), upper-case hex, wrong lengths and
  // stray characters are errors that quote the input.
  static StatusOr<Digest> Parse(std::string_view text);
  static Digest FromSha256(const crypto::Sha256Digest& sha);
  static Digest Of(std::string_view data);  // SHA-256 of data

  bool empty() const { return value_.empty(); }
  const std::string& str() const { return value_; }  // "sha256:..."
  std::string_view hex() const;                      // the 64 hex digits

  friend bool operator==(const Digest&, const Digest&) = default;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads defaulted <=>
  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  explicit Digest(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

// A pull-style byte stream. Read fills a prefix of buf and returns how many
// bytes it wrote; 0 means end of stream. Errors are final.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual StatusOr<size_t> Read(std::span<uint8_t> buf) = 0;
};

// Reads an fd (not owned) from its current offset to EOF.
class FdSource : public ByteSource {
 public:
  explicit FdSource(int fd, std::string what = "fd") : fd_(fd), what_(std::move(what)) {}
  StatusOr<size_t> Read(std::span<uint8_t> buf) override;

 private:
  int fd_;
  std::string what_;
};

// Reads a caller-owned buffer that must outlive the source.
class BufferSource : public ByteSource {
 public:
  explicit BufferSource(std::string_view data) : data_(data) {}
  StatusOr<size_t> Read(std::span<uint8_t> buf) override;

 private:
  std::string_view data_;
};

// Layout under the root:
//   ROOT/blobs/sha256/<hex>   verified blobs, mode 0444
//   ROOT/tmp/                 in-flight Puts (put-XXXXXX), removed on failure
// The object holds only immutable paths and every Put writes its own temp
// file and publishes it with one rename(2), so any number of threads or
// processes may use the same root concurrently, including Puts of the same
// digest (the last rename wins with identical bytes).
class BlobStore {
 public:
  // Creates the directories if needed.
  static StatusOr<BlobStore> Create(const std::string& root);

  // Streams source into ROOT/tmp, hashing as it writes, fsyncs, and checks
  // the digest: a mismatch is kDataLoss naming the expected and the actual
  // digest, and leaves nothing behind. More than max_bytes is
  // kInvalidArgument. On success the blob is renamed into place (replacing
  // an existing copy, which is harmless: same digest, freshly verified) and
  // the directory is fsynced. Returns the verified digest.
  StatusOr<Digest> Put(ByteSource& source, const Digest& expected, uint64_t max_bytes) const;
  StatusOr<Digest> PutFromFd(int fd, const Digest& expected, uint64_t max_bytes) const;
  StatusOr<Digest> PutBytes(std::string_view data, const Digest& expected) const;

  // Like PutFromFd, but without a second copy when it can: the bytes of
  // `fd` (from offset 0) are hashed in place and, when they match, the file
  // itself is linked into place (an O_TMPFILE file in ROOT/tmp, such as the
  // plane's upload body). A file that cannot be linked is copied (Put).
  // After success the caller must not write to `fd` again.
  StatusOr<Digest> Adopt(int fd, const Digest& expected, uint64_t max_bytes) const;

  // Every stored blob's digest, sorted (names that are not digests are skipped).
  StatusOr<std::vector<Digest>> List() const;
  // Unlinks a stored blob; an absent blob is not an error.
  Status Remove(const Digest& digest) const;

  bool Has(const Digest& digest) const;
  StatusOr<uint64_t> Size(const Digest& digest) const;  // kNotFound if absent
  StatusOr<UniqueFd> Open(const Digest& digest) const;  // read-only; kNotFound if absent
  std::string Path(const Digest& digest) const;
  // Re-hashes the stored file: kDataLoss naming both digests if it changed.
  Status Verify(const Digest& digest) const;

  const std::string& root() const { return root_; }

 private:
  explicit BlobStore(std::string root);
  std::string root_;
  std::string blob_dir_;  // ROOT/blobs/sha256
  std::string tmp_dir_;   // ROOT/tmp
};

}  // namespace cce::image
