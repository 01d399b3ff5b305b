// format: the encrypted dataset format (docs/format.md is the spec).
// One plaintext file becomes one ciphertext file: a 68-byte header, then
// fixed-size AES-256-GCM segments under a per-file key derived with HKDF from
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
inline constexpr uint8_t kVersion = 1;
inline constexpr uint8_t kAlgAes256GcmHkdfSha256 = 1;
inline constexpr size_t kHeaderSize = 68;
inline constexpr size_t kKeySize = 32;
inline constexpr size_t kKeyIdSize = 16;
inline constexpr size_t kSaltSize = 32;
inline constexpr size_t kTagSize = 16;
inline constexpr uint8_t kMinSegmentExponent = 12;      // 4 KiB
inline constexpr uint8_t kMaxSegmentExponent = 24;      // 16 MiB
inline constexpr uint8_t kDefaultSegmentExponent = 16;  // 64 KiB

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

struct FileHeader {
  uint8_t segment_exponent = kDefaultSegmentExponent;
  FileKind kind = FileKind::kData;
  KeyId key_id{};
  std::array<uint8_t, kSaltSize> salt{};
  uint64_t plaintext_size = 0;

  std::array<uint8_t, kHeaderSize> Serialize() const;
  // Errors name the byte offset and field ("header byte 8: version 7, expected 1").
  static StatusOr<FileHeader> Parse(ByteSpan bytes);
};

// Where segments sit. Every file has at least one segment (an empty file has
// one empty final segment, so even it carries an authentication tag).
struct Geometry {
  uint32_t segment_size = 0;
  uint64_t plaintext_size = 0;

  static Geometry For(const FileHeader& h) {
    return {uint32_t{1} << h.segment_exponent, h.plaintext_size};
  }
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
};

class FileCipher;

// One keyed AES-GCM context for a run of segments of one file: saves the key
// schedule per segment (measured +67% per 4 KiB segment without it). Not
// thread-safe; cheap to create, so make one per thread per run.
class SegmentCrypter {
 public:
  // Same contracts as FileCipher::SealSegment / OpenSegment.
  Status Seal(uint64_t index, ByteSpan plaintext, std::span<uint8_t> out);
  Status Open(uint64_t index, ByteSpan sealed, std::span<uint8_t> out);

 private:
  friend class FileCipher;
  SegmentCrypter(const FileCipher& cipher, crypto::Aes256Gcm gcm)
      : cipher_(&cipher), gcm_(std::move(gcm)) {}
  const FileCipher* cipher_;
  crypto::Aes256Gcm gcm_;
};

// Per-file segment sealing/opening. Immutable after creation and thread-safe:
// each SealSegment/OpenSegment call keys its own context; loops over many
// segments use NewCrypter() instead.
class FileCipher {
 public:
  // Reader side: parses and binds the header, checks kind and key id.
  static StatusOr<FileCipher> ForReading(const DatasetKey& key, ByteSpan header_bytes,
                                         FileKind expected_kind);
  // Writer side: fresh random salt.
  static StatusOr<FileCipher> ForWriting(const DatasetKey& key, FileKind kind,
                                         uint64_t plaintext_size, uint8_t segment_exponent);
  // Deterministic writer for test vectors only (fixed salt).
  static StatusOr<FileCipher> ForWritingWithSalt(const DatasetKey& key, FileKind kind,
                                                 uint64_t plaintext_size, uint8_t segment_exponent,
                                                 ByteSpan salt);

  const FileHeader& header() const { return header_; }
  const std::array<uint8_t, kHeaderSize>& header_bytes() const { return header_bytes_; }
  crypto::Sha256Digest header_digest() const { return crypto::Sha256(header_bytes_); }
  const Geometry& geometry() const { return geometry_; }

  // plaintext.size() must equal geometry().PlainSegmentSize(index);
  // out holds plaintext.size() + kTagSize bytes.
  Status SealSegment(uint64_t index, ByteSpan plaintext, std::span<uint8_t> out) const;
  // sealed.size() must equal PlainSegmentSize(index) + kTagSize. On failure
  // out is zeroed and the status (kDataLoss) names the segment.
  Status OpenSegment(uint64_t index, ByteSpan sealed, std::span<uint8_t> out) const;
  // A context keyed once for a run of Seal/Open calls on this file. Must not
  // outlive this FileCipher.
  StatusOr<SegmentCrypter> NewCrypter() const;

 private:
  FileCipher() = default;
  static StatusOr<FileCipher> Make(const DatasetKey& key, const FileHeader& header);
  FileHeader header_;
  std::array<uint8_t, kHeaderSize> header_bytes_{};
  Geometry geometry_;
  std::shared_ptr<crypto::SecretBytes> file_key_;
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
  unsigned threads = 0;  // 0: hardware concurrency
  uint8_t segment_exponent = kDefaultSegmentExponent;
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
