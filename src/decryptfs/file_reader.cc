#include "decryptfs/file_reader.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <exception>

namespace cce::decryptfs {
namespace {

using format::kTagSize;

std::string SegmentWhere(const OpenFile& f, uint64_t index) {
  return f.path() + ": segment " + std::to_string(index);
}

// Reads the sealed segments first, first+1, ... into `iov` (one buffer per
// segment, each exactly that segment's sealed size) with as few preadv calls
// as the kernel allows: one for a contiguous range in practice.
Status ReadSealed(const OpenFile& f, uint64_t first, std::vector<iovec> iov) {
  uint64_t offset = f.geometry().SegmentOffset(first);
  size_t next = 0;
  while (next < iov.size()) {
    int count = static_cast<int>(std::min<size_t>(iov.size() - next, IOV_MAX));
    ssize_t n = ::preadv(f.fd(), iov.data() + next, count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(SegmentWhere(f, first + next) + ": read", errno);
    }
    if (n == 0) return DataLoss(SegmentWhere(f, first + next) + ": lower object is truncated");
    offset += static_cast<uint64_t>(n);
    auto left = static_cast<size_t>(n);
    while (left > 0) {
      if (left >= iov[next].iov_len) {
        left -= iov[next].iov_len;
        ++next;
      } else {
        iov[next].iov_base = static_cast<uint8_t*>(iov[next].iov_base) + left;
        iov[next].iov_len -= left;
        left = 0;
      }
    }
  }
  return Status::Ok();
}

// Buffered: reads and authenticates segments [first, first + bufs.size())
// in place: bufs[k] receives the sealed segment first+k, then holds its
// plaintext at the front.
Status LoadRunBuffered(const OpenFile& f, uint64_t first, std::span<uint8_t* const> bufs) {
  const format::Geometry& g = f.geometry();
  std::vector<iovec> iov(bufs.size());
  for (size_t k = 0; k < bufs.size(); ++k) {
    iov[k] = {bufs[k], g.PlainSegmentSize(first + k) + kTagSize};
  }
  RETURN_IF_ERROR(ReadSealed(f, first, std::move(iov)));
  ASSIGN_OR_RETURN(format::SegmentCrypter crypter, f.cipher().NewCrypter());
  for (size_t k = 0; k < bufs.size(); ++k) {
    size_t n = g.PlainSegmentSize(first + k);
    Status s = crypter.Open(first + k, {bufs[k], n + kTagSize}, {bufs[k], n});
    if (!s.ok()) return s.WithContext(f.path());
  }
  return Status::Ok();
}

// O_DIRECT wants offsets, lengths and buffers aligned to the device's logical
// block size; 4 KiB covers every common device.
constexpr size_t kDirectAlign = 4096;

// O_DIRECT: one aligned read of the whole sealed range into a shared bounce
// buffer, then each segment is decrypted from there into bufs[k]. Returns
// kUnavailable if the file system refused the O_DIRECT read.
Status LoadRunDirect(const OpenFile& f, uint64_t first, std::span<uint8_t* const> bufs,
                     DirectReadBuffers& buffers) {
  const format::Geometry& g = f.geometry();
  const uint64_t last = first + bufs.size() - 1;
  const uint64_t begin = g.SegmentOffset(first);
  const uint64_t end = g.SegmentOffset(last) + g.PlainSegmentSize(last) + kTagSize;
  const uint64_t aligned_begin = begin & ~uint64_t{kDirectAlign - 1};
  const uint64_t aligned_end = (end + kDirectAlign - 1) & ~uint64_t{kDirectAlign - 1};
  const auto want = static_cast<size_t>(end - aligned_begin);
  const auto span = static_cast<size_t>(aligned_end - aligned_begin);
  DirectReadBuffers::Lease lease = buffers.Acquire(span);
  uint8_t* buf = lease.data();
  if (buf == nullptr) return Internal(f.path() + ": out of memory for a read buffer");
  size_t got = 0;
  while (got < want) {
    // After a short read, continue from the aligned offset below it (O_DIRECT
    // needs one); no progress means end of file.
    const size_t at = got & ~(kDirectAlign - 1);
    ssize_t n = ::pread(f.fd(), buf + at, span - at, static_cast<off_t>(aligned_begin + at));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && got == 0) return {StatusCode::kUnavailable, "O_DIRECT refused"};
      return ErrnoStatus(SegmentWhere(f, first) + ": read", errno);
    }
    if (at + static_cast<size_t>(n) <= got) break;
    got = at + static_cast<size_t>(n);
  }
  ASSIGN_OR_RETURN(format::SegmentCrypter crypter, f.cipher().NewCrypter());
  for (size_t k = 0; k < bufs.size(); ++k) {
    const uint64_t index = first + k;
    const size_t n = g.PlainSegmentSize(index);
    const auto at = static_cast<size_t>(g.SegmentOffset(index) - aligned_begin);
    if (at + n + kTagSize > got) {
      return DataLoss(SegmentWhere(f, index) + ": lower object is truncated");
    }
    Status s = crypter.Open(index, {buf + at, n + kTagSize}, {bufs[k], n});
    if (!s.ok()) return s.WithContext(f.path());
  }
  return Status::Ok();
}

// Reads and authenticates segments [first, first + bufs.size()); on success
// bufs[k] (of at least the sealed size) starts with the plaintext of
// segment first+k.
Status LoadRun(const OpenFile& f, uint64_t first, std::span<uint8_t* const> bufs,
               DirectReadBuffers& buffers) {
  if (f.direct()) {
    Status s = LoadRunDirect(f, first, bufs, buffers);
    if (s.code() != StatusCode::kUnavailable) return s;
    f.DisableDirect();
  }
  return LoadRunBuffered(f, first, bufs);
}

}  // namespace

// ---- OpenFile ----

StatusOr<std::shared_ptr<OpenFile>> OpenFile::Open(const std::string& dataset_dir,
                                                   const format::ManifestEntry& entry,
                                                   const format::DatasetKey& key, uint64_t ino,
                                                   uint32_t segment_size, bool direct_io) {
  ASSIGN_OR_RETURN(format::OpenedObject object, format::OpenObject(dataset_dir, entry, key));
  std::string path = "'" + entry.path + "' (" + format::kObjectsDir + "/" + entry.id + ")";
  const format::Geometry g = object.cipher.geometry();
  if (g.segment_size != segment_size) {
    return DataLoss(path + ": segment size " + std::to_string(g.segment_size) +
                    " differs from the manifest's " + std::to_string(segment_size));
  }
  // Buffered reads: let the lower file system read ahead generously; random
  // reads are still detected as such by the kernel.
  ::posix_fadvise(object.fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::shared_ptr<OpenFile> file(new OpenFile(ino, std::move(path), std::move(object)));
  if (g.plaintext_size == 0) {
    uint8_t tag[kTagSize];
    uint8_t* buf = tag;
    RETURN_IF_ERROR(LoadRunBuffered(*file, 0, {&buf, 1}));
  }
  if (direct_io) {
    int flags = ::fcntl(file->fd(), F_GETFL);
    bool direct = flags >= 0 && ::fcntl(file->fd(), F_SETFL, flags | O_DIRECT) == 0;
    file->direct_.store(direct, std::memory_order_relaxed);
  }
  return file;
}

void OpenFile::DisableDirect() const {
  int flags = ::fcntl(fd(), F_GETFL);
  if (flags >= 0) ::fcntl(fd(), F_SETFL, flags & ~O_DIRECT);
  direct_.store(false, std::memory_order_relaxed);
}

// ---- DirectReadBuffers ----

DirectReadBuffers::~DirectReadBuffers() {
  for (Buffer& b : idle_) std::free(b.data);
}

DirectReadBuffers::Lease DirectReadBuffers::Acquire(size_t size) {
  size = (size + kDirectAlign - 1) & ~(kDirectAlign - 1);
  Buffer b;
  {
    std::unique_lock<std::mutex> lock(mu_);
    available_.wait(lock, [this] { return !idle_.empty() || leased_ < max_buffers_; });
    if (!idle_.empty()) {
      // Prefer a buffer that is big enough already.
      auto it = std::find_if(idle_.begin(), idle_.end(),
                             [size](const Buffer& x) { return x.size >= size; });
      if (it == idle_.end()) it = idle_.end() - 1;
      b = *it;
      idle_.erase(it);
    }
    ++leased_;
  }
  if (b.size < size) {
    std::free(b.data);
    b.data = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, size));
    b.size = b.data == nullptr ? 0 : size;
  }
  return {this, b.data, b.size};
}

void DirectReadBuffers::Return(uint8_t* data, size_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --leased_;
    idle_.push_back({data, size});
  }
  available_.notify_one();
}

DirectReadBuffers::Lease::~Lease() {
  if (owner_ != nullptr) owner_->Return(data_, size_);
}

// ---- ReadReply ----

ReadReply::~ReadReply() {
  for (auto& b : overflow_) OPENSSL_cleanse(b.data(), b.size());
}

// ---- SegmentReader ----

SegmentReader::SegmentReader(SegmentCache* cache, ReaderOptions options)
    : cache_(cache), options_(options), direct_buffers_(options.direct_buffers) {
  if (options_.readahead_segments == 0) return;
  // Read-ahead threads never take process signals: those go to threads that
  // can act on them (the FUSE loop).
  sigset_t block, old;
  sigfillset(&block);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  for (unsigned i = 0; i < options_.readahead_threads; ++i)
    workers_.emplace_back([this] { Worker(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

SegmentReader::~SegmentReader() {
  Shutdown();
}

void SegmentReader::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  work_.notify_all();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
}

Status SegmentReader::Read(const std::shared_ptr<OpenFile>& file, uint64_t offset, size_t size,
                           ReadReply* reply) {
  const format::Geometry& g = file->geometry();
  if (offset >= g.plaintext_size || size == 0) return Status::Ok();
  const uint64_t end = offset + std::min<uint64_t>(size, g.plaintext_size - offset);
  const uint64_t seg = g.segment_size;
  const uint64_t first = offset / seg;
  const uint64_t last = (end - 1) / seg;
  const auto n = static_cast<size_t>(last - first + 1);
  NoteRead(file, first, last);

  std::vector<SegmentCache::Pin> pins(n);
  std::vector<SegmentCache::Fill> fills(n);
  std::vector<uint8_t*> bufs(n, nullptr);  // segments this call reads itself
  std::vector<std::vector<uint8_t>> overflow;
  overflow.reserve(n);
  struct WipeOverflow {
    std::vector<std::vector<uint8_t>>& v;
    ~WipeOverflow() {
      for (auto& b : v) OPENSSL_cleanse(b.data(), b.size());
    }
  } wipe_overflow{overflow};

  // Published or in-flight segments first (waiting for fills in progress,
  // typically read-ahead, instead of decrypting the same segment twice).
  for (size_t k = 0; k < n; ++k) pins[k] = cache_->Lookup({file->ino(), first + k}, true);
  // Then claim the rest in increasing index order. We may wait below for a
  // segment someone else claimed while holding fills of lower segments of
  // this file only, and no one waits while holding a higher one, so waiting
  // cannot form a cycle. Read-ahead never waits for a fill, and a read
  // buffer (DirectReadBuffers) is held only across one read of the disk.
  for (size_t k = 0; k < n; ++k) {
    if (pins[k]) continue;
    SegmentKey key{file->ino(), first + k};
    SegmentCache::Claimed c = cache_->Claim(key);
    if (c.status == SegmentCache::ClaimStatus::kClaimed) {
      fills[k] = std::move(c.fill);
      bufs[k] = fills[k].buffer().data();
      continue;
    }
    if (c.status == SegmentCache::ClaimStatus::kPresent) {
      pins[k] = cache_->Lookup(key, true);
      if (pins[k]) continue;
    }
    overflow.emplace_back(g.PlainSegmentSize(first + k) + kTagSize);
    bufs[k] = overflow.back().data();
  }

  // One read of the disk per run of consecutive segments, then decryption
  // into the claimed slots (or overflow buffers).
  for (size_t k = 0; k < n;) {
    if (bufs[k] == nullptr) {
      ++k;
      continue;
    }
    size_t j = k;
    while (j < n && bufs[j] != nullptr) ++j;
    RETURN_IF_ERROR(LoadRun(*file, first + k, std::span<uint8_t* const>(bufs.data() + k, j - k),
                            direct_buffers_));
    k = j;
  }

  reply->iov_.clear();
  reply->iov_.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    uint64_t index = first + k;
    size_t plain = g.PlainSegmentSize(index);
    if (fills[k]) pins[k] = fills[k].Publish(plain);
    const uint8_t* data = pins[k] ? pins[k].data().data() : bufs[k];
    uint64_t seg_start = index * seg;
    uint64_t lo = std::max(offset, seg_start) - seg_start;
    uint64_t hi = std::min(end, seg_start + plain) - seg_start;
    reply->iov_.push_back({const_cast<uint8_t*>(data + lo), static_cast<size_t>(hi - lo)});
  }
  reply->size_ = static_cast<size_t>(end - offset);
  for (auto& p : pins) {
    if (p) reply->pins_.push_back(std::move(p));
  }
  for (auto& b : overflow) reply->overflow_.push_back(std::move(b));
  return Status::Ok();
}

void SegmentReader::NoteRead(const std::shared_ptr<OpenFile>& file, uint64_t first, uint64_t last) {
  if (workers_.empty()) return;
  // A read is sequential if it starts near where the previous one ended;
  // the slack absorbs the reordering of concurrent (async) kernel reads.
  const uint64_t slack = options_.readahead_job_segments;
  uint64_t prev = file->next_segment_.load(std::memory_order_relaxed);
  bool sequential = first + slack >= prev && first <= prev + slack;
  file->next_segment_.store(sequential ? std::max(prev, last + 1) : last + 1,
                            std::memory_order_relaxed);
  if (!sequential) {
    file->streak_.store(0, std::memory_order_relaxed);
    return;
  }
  if (file->streak_.fetch_add(1, std::memory_order_relaxed) < 1) return;

  const uint64_t segments = file->geometry().SegmentCount();
  const uint64_t want_end = std::min(segments, last + 1 + options_.readahead_segments);
  uint64_t queued = file->readahead_end_.load(std::memory_order_relaxed);
  uint64_t start = std::max(last + 1, queued);
  if (queued > want_end + options_.readahead_segments) start = last + 1;  // stale: another region
  // Queue whole jobs only (or the file's tail), so one job serves many reads.
  if (start >= want_end ||
      (want_end - start < options_.readahead_job_segments && want_end < segments)) {
    return;
  }
  // One thread extends the window at a time.
  if (!file->readahead_end_.compare_exchange_strong(queued, want_end, std::memory_order_relaxed)) {
    return;
  }
  uint64_t queued_end = start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (queued_end < want_end && queue_.size() < options_.readahead_queue && !stopping_) {
      uint64_t count = std::min<uint64_t>(options_.readahead_job_segments, want_end - queued_end);
      queue_.push_back({file, queued_end, count});
      queued_end += count;
    }
  }
  if (queued_end > start) work_.notify_all();
  // A full queue drops the rest; the next sequential read asks again.
  if (queued_end < want_end) {
    uint64_t expected = want_end;
    file->readahead_end_.compare_exchange_strong(expected, queued_end, std::memory_order_relaxed);
  }
}

void SegmentReader::Worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      RunJob(job);
    } catch (...) {
      // Read-ahead is best effort; the reader itself reports any failure.
    }
  }
}

void SegmentReader::RunJob(const Job& job) {
  const OpenFile& f = *job.file;
  std::vector<SegmentCache::Fill> fills;
  std::vector<uint8_t*> bufs;
  auto flush = [&](uint64_t run_first) {
    if (fills.empty()) return;
    // On failure the fills are abandoned (wiped) and the reader, reading the
    // same segments itself, reports the error.
    if (LoadRun(f, run_first, bufs, direct_buffers_).ok()) {
      for (size_t k = 0; k < fills.size(); ++k) {
        fills[k].Publish(f.geometry().PlainSegmentSize(run_first + k));
      }
    }
    fills.clear();
    bufs.clear();
  };
  uint64_t run_first = job.first;
  for (uint64_t i = job.first; i < job.first + job.count; ++i) {
    SegmentCache::Claimed c = cache_->Claim({f.ino(), i});
    if (c.status != SegmentCache::ClaimStatus::kClaimed) {
      flush(run_first);
      if (c.status == SegmentCache::ClaimStatus::kFull) return;
      run_first = i + 1;
      continue;
    }
    bufs.push_back(c.fill.buffer().data());
    fills.push_back(std::move(c.fill));
  }
  flush(run_first);
}

}  // namespace cce::decryptfs
