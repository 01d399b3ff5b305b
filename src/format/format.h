// format: the encrypted dataset format (docs/format.md is the spec).
// One plaintext file becomes one ciphertext file: a 68-byte header, then
// 4 KiB AES-256-GCM segments (blocks) under a per-file key derived with HKDF from
// the dataset key, the random salt and the whole header. A dataset is a
// directory of such files named by random ids plus an encrypted manifest.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::format {

using crypto::ByteSpan;

inline constexpr std::array<uint8_t, 8> kMagic = {'C', 'C', 'E', '4', 'D', 'S', 'F', '\n'};
inline constexpr uint8_t kVersion = 2;
inline constexpr uint8_t kAlgAes256GcmHkdfSha256 = 1;
inline constexpr size_t kHeaderSize = 68;
inline constexpr size_t kKeySize = 32;
inline constexpr size_t kKeyIdSize = 16;
inline constexpr size_t kSaltSize = 32;
inline constexpr size_t kTagSize = 16;
// Format v2 has one segment (block) size: 4 KiB. Header byte 10 still holds
// its exponent (12, checked by FileHeader::Parse); nothing else chooses it.
inline constexpr uint8_t kBlockExponent = 12;
inline constexpr uint32_t kBlockSize = uint32_t{1} << kBlockExponent;  // plaintext per block
inline constexpr size_t kSealedBlockSize = kBlockSize + kTagSize;  // a full block on disk

// Names inside an encrypted dataset directory.
inline constexpr char kManifestName[] = "manifest.cce";
inline constexpr char kObjectsDir[] = "objects";
// Inside a staging directory while a run writes it (docs/format.md §7).
inline constexpr char kPartialMarkerName[] = ".cce-partial";

enum class FileKind : uint8_t { kData = 1, kManifest = 2 };

using KeyId = std::array<uint8_t, kKeyIdSize>;

// A dataset key and its public id (HKDF of the key; identifies, never reveals).
class DatasetKey {
 public:
  static StatusOr<DatasetKey> FromBytes(ByteSpan key);
  static StatusOr<DatasetKey> Generate();
  // Key file: one line "cce4long-dataset-key-v1 <64 hex digits>\n".
  static StatusOr<DatasetKey> ParseKeyFile(std::string_view contents, std::string_view what);
  static StatusOr<DatasetKey> LoadFile(const std::string& path);
  static StatusOr<DatasetKey> ReadFromFd(int fd);  // reads the key-file format to EOF
  // Key-file contents in a wiped-on-destruction buffer.
  crypto::SecretBytes EncodeKeyFile() const;

  ByteSpan bytes() const { return key_.span(); }
  const KeyId& id() const { return id_; }

 private:
  crypto::SecretBytes key_;
  KeyId id_{};
};

// Byte 10 (the block size exponent) is always kBlockExponent: Serialize
// writes it, Parse refuses any other value.
struct FileHeader {
  FileKind kind = FileKind::kData;
  KeyId key_id{};
  std::array<uint8_t, kSaltSize> salt{};
  uint64_t plaintext_size = 0;

  std::array<uint8_t, kHeaderSize> Serialize() const;
  // Errors (kDataLoss) name the byte offset and field ("header byte 8: version
  // 7, expected 2"); a version 1 header says that v1 was dropped and how to fix it.
  static StatusOr<FileHeader> Parse(ByteSpan bytes);
};

// Where segments sit. Every file has at least one segment (an empty file has
// one empty final segment, so even it carries an authentication tag).
struct Geometry {
  uint32_t segment_size = 0;
  uint64_t plaintext_size = 0;

  static Geometry For(const FileHeader& h) { return {kBlockSize, h.plaintext_size}; }
  uint64_t SegmentCount() const {
    return plaintext_size == 0 ? 1 : (plaintext_size + segment_size - 1) / segment_size;
  }
  uint64_t SegmentOffset(uint64_t index) const {
    return kHeaderSize + index * (uint64_t{segment_size} + kTagSize);
  }
  size_t PlainSegmentSize(uint64_t index) const {
    uint64_t start = index * segment_size;
    uint64_t left = plaintext_size - start;
    return static_cast<size_t>(left < segment_size ? left : segment_size);
  }
  uint64_t CiphertextSize() const {
    return kHeaderSize + plaintext_size + SegmentCount() * kTagSize;
  }
  // Plaintext and sealed bytes of the run of segments [first, first + count),
  // which must lie within [0, SegmentCount()). The sealed bytes of a run are
  // contiguous in the file from SegmentOffset(first).
  uint64_t RunPlainSize(uint64_t first, uint64_t count) const {
    if (count == 0) return 0;
    uint64_t start = first * segment_size;
    uint64_t end = (first + count) * segment_size;
    return (end < plaintext_size ? end : plaintext_size) - start;
  }
  uint64_t RunSealedSize(uint64_t first, uint64_t count) const {
    return RunPlainSize(first, count) + count * kTagSize;
  }
};

class FileCipher;

// Kept for existing callers: per-segment Seal/Open on the same path as
// FileCipher::SealRun/OpenRun (one segment each). New code uses the run API.
class SegmentCrypter {
 public:
  // Same contracts as FileCipher::SealSegment / OpenSegment.
  Status Seal(uint64_t index, ByteSpan plaintext, std::span<uint8_t> out);
  Status Open(uint64_t index, ByteSpan sealed, std::span<uint8_t> out);

 private:
  friend class FileCipher;
  explicit SegmentCrypter(const FileCipher& cipher) : cipher_(&cipher) {}
  const FileCipher* cipher_;
};

// Per-file segment sealing/opening. Immutable after creation and thread-safe.
// The AES-GCM work runs on one OpenSSL cipher context per thread
// (thread_local, freed and so wiped at thread exit), keyed once per file key
// per thread: a thread that works on one file at a time pays the key schedule
// once per file and only an IV reset per segment.
class FileCipher {
 public:
  // Reader side: parses and binds the header, checks kind and key id.
  static StatusOr<FileCipher> ForReading(const DatasetKey& key, ByteSpan header_bytes,
                                         FileKind expected_kind);
  // Writer side: fresh random salt.
  static StatusOr<FileCipher> ForWriting(const DatasetKey& key, FileKind kind,
                                         uint64_t plaintext_size);
  // Deterministic writer for test vectors only (fixed salt).
  static StatusOr<FileCipher> ForWritingWithSalt(const DatasetKey& key, FileKind kind,
                                                 uint64_t plaintext_size, ByteSpan salt);

  const FileHeader& header() const { return header_; }
  const std::array<uint8_t, kHeaderSize>& header_bytes() const { return header_bytes_; }
  crypto::Sha256Digest header_digest() const { return crypto::Sha256(header_bytes_); }
  const Geometry& geometry() const { return geometry_; }

  // ---- Runs of consecutive segments (the fast path) ----
  // Authenticates and decrypts segments [first, first + count) from `sealed`,
  // the ciphertext exactly as it lies in the file from
  // geometry().SegmentOffset(first) (what one pread of that range returns),
  // into `out`, the run's contiguous plaintext (its first byte is plaintext
  // offset first * segment_size).
  //   out.size() must equal geometry().RunPlainSize(first, count) and
  //   sealed.size() should equal geometry().RunSealedSize(first, count).
  //   out may be disjoint from sealed or start at sealed.data() (in place);
  //   no other overlap.
  // Errors: kDataLoss naming the segment ("segment 7: authentication failed")
  // when a tag does not verify, when sealed is short (a truncated file: names
  // the first incomplete segment) or when the run goes beyond the last
  // segment; kInvalidArgument for a wrong out size, a sealed buffer longer than
  // the run, or a bad overlap; kInternal if OpenSSL fails. On any error, no
  // plaintext of the run is left: out (and, in place, all of sealed) is zeroed.
  Status OpenRun(uint64_t first, uint64_t count, ByteSpan sealed, std::span<uint8_t> out) const;
  // Seals segments [first, first + count) from `plaintext` (the run's
  // contiguous plaintext, RunPlainSize bytes) into `out` (RunSealedSize bytes,
  // laid out as in the file from SegmentOffset(first), ready for one pwrite).
  // out must not overlap plaintext. Errors: kInvalidArgument for sizes or a
  // run beyond the last segment (nothing is written then); kInternal if
  // OpenSSL fails (out is zeroed).
  Status SealRun(uint64_t first, uint64_t count, ByteSpan plaintext,
                 std::span<uint8_t> out) const;

  // One segment: the run API with count 1.
  // plaintext.size() must equal geometry().PlainSegmentSize(index);
  // out holds plaintext.size() + kTagSize bytes.
  Status SealSegment(uint64_t index, ByteSpan plaintext, std::span<uint8_t> out) const;
  // sealed.size() must equal PlainSegmentSize(index) + kTagSize. On failure
  // out is zeroed and the status (kDataLoss) names the segment.
  Status OpenSegment(uint64_t index, ByteSpan sealed, std::span<uint8_t> out) const;
  // Kept for existing callers (no per-object context any more). Must not
  // outlive this FileCipher.
  StatusOr<SegmentCrypter> NewCrypter() const;

 private:
  FileCipher() = default;
  static StatusOr<FileCipher> Make(const DatasetKey& key, const FileHeader& header);
  FileHeader header_;
  std::array<uint8_t, kHeaderSize> header_bytes_{};
  Geometry geometry_;
  std::shared_ptr<crypto::SecretBytes> file_key_;
  // Process-unique id of file_key_ (shared by copies): which key a thread's
  // cipher context holds.
  uint64_t key_serial_ = 0;
};

// The 12-byte nonce of segment `index`: u64 big-endian index, three zero
// bytes, then 1 for the final segment and 0 otherwise.
std::array<uint8_t, 12> SegmentNonce(uint64_t index, bool last);

// ---- Dataset level ----

struct ManifestEntry {
  enum class Type { kFile, kDirectory };
  std::string path;  // relative, '/'-separated, valid UTF-8, no "." or ".." parts
  Type type = Type::kFile;
  std::string id;  // files: 32 lower-case hex digits, the object's name
  uint64_t size = 0;
  crypto::Sha256Digest header_sha256{};
  uint32_t mode = 0644;  // permission bits only
  int64_t mtime = 0;     // seconds since the epoch
};

struct Manifest {
  std::string dataset_id;  // 32 hex digits unless given
  uint64_t dataset_version = 1;
  uint32_t segment_size = 0;
  std::string created_at;              // RFC 3339 UTC
  std::vector<ManifestEntry> entries;  // sorted by path; directories before their contents

  std::string ToJson() const;
  static StatusOr<Manifest> FromJson(std::string_view json);
};

// Reads, decrypts and validates the manifest of an encrypted dataset directory.
StatusOr<Manifest> ReadManifest(const std::string& dataset_dir, const DatasetKey& key);
// The same from a manifest file the caller opened (a regular file; the plane
// opens it beneath an allowed root). `what` names it in errors.
StatusOr<Manifest> ReadManifestFromFd(int fd, const DatasetKey& key, const std::string& what);

// Path of a file entry's ciphertext object.
std::string ObjectPath(const std::string& dataset_dir, const std::string& id);

struct Progress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t files_done = 0;
  uint64_t files_total = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct EncryptOptions {
  unsigned threads = 0;    // 0: hardware concurrency
  std::string dataset_id;  // empty: random
  uint64_t dataset_version = 1;
  ProgressFn progress;  // called from one thread at a time, rate-limited by the caller
  // When it becomes true (e.g. set by a SIGINT handler) the run stops within
  // about one chunk, removes its partial output and returns kFailedPrecondition.
  const std::atomic<bool>* cancel = nullptr;
};

struct Summary {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t plaintext_bytes = 0;
  uint64_t ciphertext_bytes = 0;
  std::string dataset_id;
  uint64_t dataset_version = 0;
};

// Encrypts the tree at src into a new directory dst (must not exist). Writes
// into a sibling temporary directory ".<dst name>.partial-<12 hex>" holding a
// locked marker file, and renames it into place only when complete and synced.
// A failed or cancelled run removes it; the leftover of a killed run (its
// marker no longer locked) is removed by the next run on the same dst.
StatusOr<Summary> EncryptDataset(const std::string& src, const std::string& dst,
                                 const DatasetKey& key, const EncryptOptions& options);

struct ReadOptions {
  unsigned threads = 0;
  ProgressFn progress;
  // When set, the manifest must carry this dataset id / at least this version
  // (protects against rollback of the whole dataset).
  std::optional<std::string> expect_dataset_id;
  std::optional<uint64_t> min_dataset_version;
  const std::atomic<bool>* cancel = nullptr;  // as EncryptOptions::cancel
};

// Authenticates every byte; on failure the status names the file and segment.
StatusOr<Summary> VerifyDataset(const std::string& dir, const DatasetKey& key,
                                const ReadOptions& options);
// Verifies and writes the plaintext tree into a new directory dst, atomically
// (staged and cleaned up as for EncryptDataset).
StatusOr<Summary> DecryptDataset(const std::string& src, const std::string& dst,
                                 const DatasetKey& key, const ReadOptions& options);

// Whole-dataset rollback/substitution check (docs/format.md §6): kDataLoss
// naming `where` when the manifest's id differs or its version is lower.
Status CheckDatasetIdentity(const Manifest& m, const std::optional<std::string>& expect_dataset_id,
                            const std::optional<uint64_t>& min_dataset_version,
                            const std::string& where);

// Checks that objects/ holds exactly the manifest's objects: none missing
// (deleted/renamed) and none extra (added, or the manifest was replaced).
// Cheap (one directory listing); DecryptFS runs it at mount time.
Status CheckObjectSet(const std::string& dataset_dir, const Manifest& manifest);

// One file entry's ciphertext object, opened read-only, with its header
// checked against the manifest entry (digest, size, key id, kind).
struct OpenedObject {
  UniqueFd fd;
  FileCipher cipher;
};
StatusOr<OpenedObject> OpenObject(const std::string& dataset_dir, const ManifestEntry& entry,
                                  const DatasetKey& key);

}  // namespace cce::format
