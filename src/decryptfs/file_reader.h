// BlockReader: turns a plaintext byte range of one open dataset file into
// authenticated plaintext. One lower read (pread) covers the whole run of
// 4 KiB blocks a request touches; the run is authenticated and decrypted
// into a per-thread buffer and handed to the caller. No plaintext cache of
// our own: the kernel page cache above us keeps decrypted pages (keep_cache;
// the view is immutable). Independent of FUSE so it can be tested directly.
// Private to DecryptFS.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>

#include "base/fd.h"
#include "base/status.h"
#include "format/format.h"

namespace cce::decryptfs {

// Per-file ciphers (HKDF-derived file keys in locked, wiped memory) by
// inode, so reopening a file skips the key derivation. Bounded: at most
// `capacity` entries; inserting into a full cache drops an arbitrary entry.
// A cipher is only ever inserted after its header matched the manifest.
// Thread-safe.
class KeyCache {
 public:
  explicit KeyCache(size_t capacity) : capacity_(capacity) {}
  std::shared_ptr<const format::FileCipher> Get(uint64_t ino);
  void Put(uint64_t ino, std::shared_ptr<const format::FileCipher> cipher);
  void Clear();
  size_t size();

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
  };
  Stats stats();

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<const format::FileCipher>> map_;  // guarded by mu_
  Stats stats_;                                                                  // guarded by mu_
};

// One opened ciphertext object. Open does no I/O beyond open(2) and statx:
// the object's length must be exactly what the manifest's size implies. The
// 68-byte header is checked against the manifest (digest, kind, key id,
// size, block size) on the first read of each handle, from the same lower
// read as the blocks when that read starts at block 0 (a whole-file read),
// else by a separate read; no block is decrypted before that check.
class OpenFile {
 public:
  // `entry` and `key` must outlive the OpenFile (the inode table and the
  // server own them). With direct_io the lower file is read with O_DIRECT
  // where its file system allows: straight into our buffers, no ciphertext
  // copy in the page cache. An empty file's header and its single (empty)
  // block are authenticated here, since no read ever reaches it.
  static StatusOr<std::shared_ptr<OpenFile>> Open(const std::string& dataset_dir,
                                                  const format::ManifestEntry& entry,
                                                  const format::DatasetKey& key, uint64_t ino,
                                                  uint32_t block_size, bool direct_io,
                                                  KeyCache* keys);

  uint64_t ino() const { return ino_; }
  const std::string& path() const { return path_; }
  const format::Geometry& geometry() const { return geometry_; }
  int fd() const { return fd_.get(); }
  // Whether reads of the lower file bypass the page cache (O_DIRECT).
  bool direct() const { return direct_.load(std::memory_order_relaxed); }
  // Offset and length alignment of O_DIRECT reads of the lower file.
  size_t direct_align() const { return direct_align_; }
  // Falls back to buffered reads (a file system that accepted O_DIRECT at
  // open but refuses our reads).
  void DisableDirect() const;

  // The cipher once the header has been checked on this handle, else null.
  std::shared_ptr<const format::FileCipher> cipher() const;
  // Checks header bytes read from the object against the manifest entry and
  // remembers the file's cipher (from the key cache, else derived).
  Status AcceptHeader(std::span<const uint8_t> header);

 private:
  OpenFile(uint64_t ino, std::string path, const format::ManifestEntry& entry,
           const format::DatasetKey& key, format::Geometry g, UniqueFd fd, KeyCache* keys)
      : ino_(ino),
        path_(std::move(path)),
        entry_(entry),
        key_(key),
        geometry_(g),
        fd_(std::move(fd)),
        keys_(keys) {}

  const uint64_t ino_;
  const std::string path_;  // "'a/b.csv' (objects/<id>)", for messages
  const format::ManifestEntry& entry_;
  const format::DatasetKey& key_;
  const format::Geometry geometry_;  // from the manifest; the header must agree
  const UniqueFd fd_;
  KeyCache* const keys_;
  mutable std::atomic<bool> direct_{false};  // a property of the lower fd, not of the data
  size_t direct_align_ = 4096;               // set once by Open

  mutable std::mutex mu_;
  std::shared_ptr<const format::FileCipher> cipher_;  // guarded by mu_; set once
};

class BlockReader {
 public:
  // Reads plaintext [offset, offset + size) clipped to the file. Either
  // every covered block authenticates and the returned span holds exactly
  // those bytes (in a buffer of the calling thread, valid until its next
  // Read), or the status (kDataLoss, kIo) names the file and block and
  // nothing is returned. Thread-safe.
  static StatusOr<std::span<const uint8_t>> Read(OpenFile& file, uint64_t offset, size_t size);

  // Reads [offset, offset + size) of the lower object; the span points into
  // the calling thread's read buffer. Short only at end of file.
  static StatusOr<std::span<const uint8_t>> ReadLower(const OpenFile& file, uint64_t offset,
                                                      size_t size);

  // Wipes and frees the calling thread's buffers (they are also wiped when
  // the thread exits).
  static void ReleaseThreadBuffers();
};

}  // namespace cce::decryptfs
