// SegmentReader: turns a plaintext byte range of one open dataset file into
// authenticated plaintext, through the SegmentCache, with asynchronous
// read-ahead for sequential streams. Independent of FUSE so it can be tested
// directly. Private to DecryptFS.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "decryptfs/segment_cache.h"
#include "format/format.h"

namespace cce::decryptfs {

// One opened ciphertext object. Immutable after Open except for the
// read-pattern hints, which are relaxed atomics (a heuristic, never a
// correctness input). Shared by the FUSE file handle and queued read-ahead.
class OpenFile {
 public:
  // Opens the object of a file entry (format::OpenObject checks its header
  // against the manifest) and requires the dataset's segment size. An empty
  // file's single (empty) segment is authenticated here, since no read ever
  // reaches it.
  //
  // With direct_io the lower file is read with O_DIRECT where its file
  // system allows: straight into our buffers, no second (ciphertext) copy in
  // the page cache and no copy out of it. The plaintext is what the kernel
  // caches, above us.
  static StatusOr<std::shared_ptr<OpenFile>> Open(const std::string& dataset_dir,
                                                  const format::ManifestEntry& entry,
                                                  const format::DatasetKey& key, uint64_t ino,
                                                  uint32_t segment_size, bool direct_io);

  uint64_t ino() const { return ino_; }
  const std::string& path() const { return path_; }
  const format::FileCipher& cipher() const { return object_.cipher; }
  const format::Geometry& geometry() const { return object_.cipher.geometry(); }
  int fd() const { return object_.fd.get(); }
  // Whether reads of the lower file bypass the page cache (O_DIRECT).
  bool direct() const { return direct_.load(std::memory_order_relaxed); }
  // Falls back to buffered reads (a file system that accepted O_DIRECT at
  // open but refuses our reads).
  void DisableDirect() const;

 private:
  friend class SegmentReader;
  OpenFile(uint64_t ino, std::string path, format::OpenedObject object)
      : ino_(ino), path_(std::move(path)), object_(std::move(object)) {}

  const uint64_t ino_;
  const std::string path_;  // "'a/b.csv' (objects/<id>)", for messages
  const format::OpenedObject object_;
  mutable std::atomic<bool> direct_{false};  // a property of the lower fd, not of the data

  // Read-pattern hints (see SegmentReader::NoteRead).
  std::atomic<uint64_t> next_segment_{0};   // one past the last segment read
  std::atomic<uint32_t> streak_{0};         // consecutive sequential reads
  std::atomic<uint64_t> readahead_end_{0};  // segments below this were queued
};

// The plaintext of one read: iovecs into pinned cache segments (or, when the
// cache is full, into buffers owned here). Valid until destroyed; wipes any
// buffer it owns.
class ReadReply {
 public:
  ReadReply() = default;
  ~ReadReply();
  ReadReply(const ReadReply&) = delete;
  ReadReply& operator=(const ReadReply&) = delete;

  std::span<const iovec> iov() const { return iov_; }
  size_t size() const { return size_; }

 private:
  friend class SegmentReader;
  std::vector<iovec> iov_;
  size_t size_ = 0;
  std::vector<SegmentCache::Pin> pins_;
  std::vector<std::vector<uint8_t>> overflow_;  // segments the cache had no room for
};

// A bounded set of aligned buffers for O_DIRECT reads of the ciphertext,
// shared by all reading threads: at most `max_buffers` exist, each grown to
// the largest run read with it (about max_read), so their memory is bounded
// however many threads read. A thread holds one only for one read.
class DirectReadBuffers {
 public:
  explicit DirectReadBuffers(size_t max_buffers) : max_buffers_(std::max<size_t>(1, max_buffers)) {}
  ~DirectReadBuffers();
  DirectReadBuffers(const DirectReadBuffers&) = delete;
  DirectReadBuffers& operator=(const DirectReadBuffers&) = delete;

  class Lease {
   public:
    Lease(Lease&& o) noexcept : owner_(o.owner_), data_(o.data_), size_(o.size_) {
      o.owner_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    uint8_t* data() const { return data_; }  // nullptr if out of memory

   private:
    friend class DirectReadBuffers;
    Lease(DirectReadBuffers* owner, uint8_t* data, size_t size)
        : owner_(owner), data_(data), size_(size) {}
    DirectReadBuffers* owner_;
    uint8_t* data_;
    size_t size_;
  };

  // A buffer of at least `size` bytes, aligned for O_DIRECT; waits while
  // all buffers are in use.
  Lease Acquire(size_t size);

 private:
  struct Buffer {
    uint8_t* data = nullptr;
    size_t size = 0;
  };
  void Return(uint8_t* data, size_t size);

  const size_t max_buffers_;
  std::mutex mu_;
  std::condition_variable available_;
  std::vector<Buffer> idle_;  // guarded by mu_
  size_t leased_ = 0;         // guarded by mu_
};

struct ReaderOptions {
  // Sequential streams: after two reads in a row, keep this many segments
  // decrypted ahead of the reader (0 disables read-ahead).
  uint32_t readahead_segments = 32;
  // Read-ahead jobs cover at most this many segments each.
  uint32_t readahead_job_segments = 16;
  unsigned readahead_threads = 4;
  // Queued read-ahead jobs beyond this are dropped.
  size_t readahead_queue = 16;
  // O_DIRECT read buffers (about max_read each) shared by all threads.
  size_t direct_buffers = 6;
};

class SegmentReader {
 public:
  SegmentReader(SegmentCache* cache, ReaderOptions options);
  ~SegmentReader();  // stops and joins the read-ahead threads
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  // Reads plaintext [offset, offset + size) clipped to the file. Either every
  // covered segment authenticates and `reply` holds exactly those bytes, or
  // the status (kDataLoss, kIo) names the file and segment and `reply` holds
  // nothing. Thread-safe.
  Status Read(const std::shared_ptr<OpenFile>& file, uint64_t offset, size_t size,
              ReadReply* reply);

  // Stops read-ahead and drops queued jobs (and their file references).
  void Shutdown();

 private:
  struct Job {
    std::shared_ptr<OpenFile> file;
    uint64_t first = 0;
    uint64_t count = 0;
  };

  void NoteRead(const std::shared_ptr<OpenFile>& file, uint64_t first, uint64_t last);
  void Worker();
  void RunJob(const Job& job);

  SegmentCache* const cache_;
  const ReaderOptions options_;
  DirectReadBuffers direct_buffers_;

  std::mutex mu_;
  std::condition_variable work_;
  std::deque<Job> queue_;             // guarded by mu_; at most options_.readahead_queue jobs
  bool stopping_ = false;             // guarded by mu_
  std::vector<std::thread> workers_;  // started in the constructor, joined in Shutdown
};

}  // namespace cce::decryptfs
