// The encrypt pipeline (pipeline.h): reader -> encrypt workers (which write).
#include "format/pipeline.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace cce::format {
namespace {

// Pieces (file runs) per work item: bounds the items' bookkeeping when a
// buffer packs many tiny files.
constexpr size_t kMaxPiecesPerItem = 64;
// The reader opens up to this many files (and bytes) ahead of the one it
// reads and asks the kernel to start reading them (POSIX_FADV_WILLNEED), so a
// tree of small cold files keeps the disk queue full instead of one at a time.
constexpr size_t kPrefetchFiles = 32;
constexpr uint64_t kPrefetchBytes = uint64_t{8} << 20;

struct FileState {
  SealJob* job = nullptr;
  UniqueFd in;                         // reader only: opened (maybe early) by Prefetch
  Status open_status;                  // reader only: why `in` could not be opened
  bool prefetched = false;             // reader only
  std::optional<FileCipher> cipher;    // set by the reader before any piece is queued
  std::atomic<uint64_t> pieces_left{0};  // set by the reader before any piece is queued
  std::mutex mu;
  UniqueFd out;             // guarded by mu; created by the first piece's worker
  bool out_failed = false;  // guarded by mu
};

// A run of consecutive segments of one file, inside an item's buffer.
struct Piece {
  FileState* file = nullptr;
  uint64_t first = 0;
  uint64_t count = 0;
  size_t offset = 0;  // in Item::plain
  size_t length = 0;
};

struct Item {
  std::vector<uint8_t> plain;
  size_t used = 0;
  std::vector<Piece> pieces;
};

class Pipeline {
 public:
  Pipeline(std::vector<SealJob>& jobs, const DatasetKey& key, const SealOptions& o)
      : jobs_(jobs), key_(key), o_(o) {
    pread_ = o.pread ? o.pread : PreadFn(::pread);
    capacity_ = std::max<size_t>(kSealIoBytes, kBlockSize);
  }

  Status Run() {
    files_.resize(jobs_.size());
    uint64_t pieces = 0;
    for (size_t i = 0; i < jobs_.size(); ++i) {
      files_[i] = std::make_unique<FileState>();
      files_[i]->job = &jobs_[i];
      bytes_total_ += jobs_[i].size;
      pieces += PieceCount(jobs_[i].size);
    }
    unsigned workers =
        static_cast<unsigned>(std::clamp<uint64_t>(pieces, 1, std::max(1u, o_.threads)));
    // Two items per worker keep each busy while the reader fills a third.
    for (unsigned i = 0; i < 2 * workers + 1; ++i) {
      auto item = std::make_unique<Item>();
      item->plain.resize(capacity_);
      free_.push_back(item.get());
      items_.push_back(std::move(item));
    }
    std::thread reader([this] { ReadAll(); });
    std::vector<std::thread> pool;
    for (unsigned i = 0; i < workers; ++i) pool.emplace_back([this] { Work(); });
    {
      std::unique_lock<std::mutex> l(mu_);
      unsigned exited_target = workers;
      while (workers_exited_ < exited_target) {
        if (o_.progress) {
          Progress p{std::min(bytes_done_.load(), bytes_total_), bytes_total_, files_done_.load(),
                     jobs_.size()};
          l.unlock();
          o_.progress(p);
          l.lock();
        }
        done_cv_.wait_for(l, std::chrono::milliseconds(100));
      }
    }
    reader.join();
    for (auto& t : pool) t.join();
    if (o_.progress) o_.progress({bytes_total_, bytes_total_, files_done_.load(), jobs_.size()});
    if (Cancelled()) {
      return FailedPrecondition("encrypt: interrupted; the partial output was removed");
    }
    return first_error_;
  }

 private:
  uint64_t PieceCount(uint64_t size) const {
    uint64_t segments = Geometry{kBlockSize, size}.SegmentCount();
    uint64_t per = capacity_ / kBlockSize;
    return (segments + per - 1) / per;
  }

  bool Cancelled() const { return o_.cancel != nullptr && o_.cancel->load(); }
  bool Stopping() const { return stop_.load() || Cancelled(); }

  void Fail(Status s) {
    std::lock_guard<std::mutex> l(mu_);
    if (first_error_.ok()) first_error_ = std::move(s);
    stop_ = true;
    free_cv_.notify_all();
  }

  // ---- reader thread ----

  Item* Acquire() {
    std::unique_lock<std::mutex> l(mu_);
    free_cv_.wait(l, [&] { return !free_.empty() || Stopping(); });
    if (Stopping()) return nullptr;
    Item* it = free_.front();
    free_.pop_front();
    it->used = 0;
    it->pieces.clear();
    return it;
  }

  void Push(Item* it) {
    std::lock_guard<std::mutex> l(mu_);
    work_.push_back(it);
    work_cv_.notify_one();
  }

  void ReadAll() {
    Item* item = nullptr;
    size_t ahead = 0;  // files_[i, ahead) are prefetched
    uint64_t ahead_bytes = 0;
    for (size_t i = 0; i < files_.size(); ++i) {
      if (Stopping()) break;
      FileState& f = *files_[i];
      if (ahead <= i) {
        ahead = i;
        ahead_bytes = 0;
      }
      while (ahead < files_.size() && ahead - i < kPrefetchFiles &&
             (ahead == i || ahead_bytes + files_[ahead]->job->size <= kPrefetchBytes)) {
        Prefetch(*files_[ahead]);
        ahead_bytes += files_[ahead]->job->size;
        ++ahead;
      }
      ahead_bytes -= std::min(ahead_bytes, f.job->size);
      Status s = ReadFile(f, item);
      if (!s.ok()) {
        Fail(std::move(s));
        break;
      }
    }
    std::lock_guard<std::mutex> l(mu_);
    if (item != nullptr) {
      if (item->pieces.empty()) {
        free_.push_back(item);
      } else {
        work_.push_back(item);
      }
    }
    reader_done_ = true;
    work_cv_.notify_all();
  }

  // Reads `size` bytes at `offset` into buf through the seam; names the file
  // and byte on errors and short reads.
  Status ReadRun(int fd, const SealJob& job, uint8_t* buf, size_t size, uint64_t offset) {
    size_t done = 0;
    while (done < size) {
      ssize_t n = pread_(fd, buf + done, size - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(job.src + ": read at byte " + std::to_string(offset + done), errno);
      }
      if (n == 0) {
        return FailedPrecondition(job.src + ": changed size while encrypting: ends at byte " +
                                  std::to_string(offset + done) + ", listed with " +
                                  std::to_string(job.size) + " bytes");
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  // Opens a source and starts reading it in the background. Errors are kept
  // for ReadFile, so they are reported in file order.
  void Prefetch(FileState& f) {
    f.prefetched = true;
    const SealJob& job = *f.job;
    f.in.reset(::open(job.src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!f.in.valid()) {
      f.open_status = ErrnoStatus(job.src, errno);
      return;
    }
    if (job.size > capacity_) {
      ::posix_fadvise(f.in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    } else if (job.size > 0) {
      ::posix_fadvise(f.in.get(), 0, static_cast<off_t>(job.size), POSIX_FADV_WILLNEED);
    }
  }

  Status ReadFile(FileState& f, Item*& item) {
    SealJob& job = *f.job;
    if (!f.prefetched) Prefetch(f);
    RETURN_IF_ERROR(f.open_status);
    UniqueFd in = std::move(f.in);
    struct stat st {};
    if (::fstat(in.get(), &st) != 0) return ErrnoStatus(job.src, errno);
    if (!S_ISREG(st.st_mode)) return FailedPrecondition(job.src + ": no longer a regular file");
    if (static_cast<uint64_t>(st.st_size) != job.size) {
      return FailedPrecondition(job.src + ": changed size while encrypting: " +
                                std::to_string(st.st_size) + " bytes, listed with " +
                                std::to_string(job.size));
    }
    ASSIGN_OR_RETURN(FileCipher c, FileCipher::ForWriting(key_, FileKind::kData, job.size));
    job.header_sha256 = c.header_digest();
    f.cipher.emplace(std::move(c));
    const Geometry& g = f.cipher->geometry();
    const uint64_t segments = g.SegmentCount();
    const uint64_t per = capacity_ / kBlockSize;
    f.pieces_left = (segments + per - 1) / per;
    for (uint64_t first = 0; first < segments; first += per) {
      if (Stopping()) return Status::Ok();  // a failure is recorded, or the run was cancelled
      uint64_t count = std::min(per, segments - first);
      size_t length = static_cast<size_t>(g.RunPlainSize(first, count));
      if (item != nullptr &&
          (item->used + length > capacity_ || item->pieces.size() == kMaxPiecesPerItem)) {
        Push(item);
        item = nullptr;
      }
      if (item == nullptr) item = Acquire();
      if (item == nullptr) return Status::Ok();  // stopping: the failure is recorded already
      uint64_t offset = first * kBlockSize;
      RETURN_IF_ERROR(ReadRun(in.get(), job, item->plain.data() + item->used, length, offset));
      item->pieces.push_back({&f, first, count, item->used, length});
      item->used += length;
      // A big file's run is a whole item: hand it over now.
      if (item->used == capacity_) {
        Push(item);
        item = nullptr;
      }
    }
    // A file that grew while being read is not sealed short.
    if (::fstat(in.get(), &st) != 0) return ErrnoStatus(job.src, errno);
    if (static_cast<uint64_t>(st.st_size) != job.size) {
      return FailedPrecondition(job.src + ": changed size while encrypting: " +
                                std::to_string(st.st_size) + " bytes, listed with " +
                                std::to_string(job.size));
    }
    return Status::Ok();
  }

  // ---- encrypt workers ----

  void Work() {
    std::vector<uint8_t> sealed;
    for (;;) {
      Item* item = nullptr;
      {
        std::unique_lock<std::mutex> l(mu_);
        work_cv_.wait(l, [&] { return !work_.empty() || reader_done_; });
        if (work_.empty()) break;
        item = work_.front();
        work_.pop_front();
      }
      for (const Piece& p : item->pieces) {
        if (Stopping()) break;
        Status s = Seal(*item, p, sealed);
        if (!s.ok()) {
          Fail(std::move(s));
          break;
        }
      }
      std::lock_guard<std::mutex> l(mu_);
      free_.push_back(item);
      free_cv_.notify_one();
    }
    std::lock_guard<std::mutex> l(mu_);
    ++workers_exited_;
    done_cv_.notify_all();
  }

  Status Seal(const Item& item, const Piece& p, std::vector<uint8_t>& sealed) {
    FileState& f = *p.file;
    const FileCipher& cipher = *f.cipher;
    const Geometry& g = cipher.geometry();
    int out = -1;
    {
      std::lock_guard<std::mutex> l(f.mu);
      if (f.out_failed) return Status::Ok();  // reported by the worker that failed
      if (!f.out.valid()) {
        f.out.reset(::open(f.job->dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!f.out.valid()) {
          f.out_failed = true;
          return ErrnoStatus(f.job->dst, errno);
        }
      }
      out = f.out.get();
    }
    // The first run carries the header in front, so a small file is one pwrite.
    const size_t head = p.first == 0 ? kHeaderSize : 0;
    const size_t run = static_cast<size_t>(g.RunSealedSize(p.first, p.count));
    sealed.resize(head + run);
    if (head != 0) std::memcpy(sealed.data(), cipher.header_bytes().data(), kHeaderSize);
    RETURN_IF_ERROR(cipher.SealRun(p.first, p.count, {item.plain.data() + p.offset, p.length},
                                   {sealed.data() + head, run}));
    const uint64_t at = g.SegmentOffset(p.first) - head;
    Status s = PwriteFull(out, sealed, at);
    if (!s.ok()) return s.WithContext(f.job->dst + ": write at byte " + std::to_string(at));
    // Start writeback now (asynchronously): the run's final syncfs then
    // finds little dirty data. Errors surface there.
    ::sync_file_range(out, static_cast<off_t>(at), static_cast<off_t>(sealed.size()),
                      SYNC_FILE_RANGE_WRITE);
    bytes_done_ += p.length;
    if (f.pieces_left.fetch_sub(1) == 1) {
      // The file is complete: nobody uses its key or object any more.
      std::lock_guard<std::mutex> l(f.mu);
      f.out.reset();
      f.cipher.reset();
      ++files_done_;
    }
    return Status::Ok();
  }

  std::vector<SealJob>& jobs_;
  const DatasetKey& key_;
  const SealOptions& o_;
  size_t capacity_ = 0;
  PreadFn pread_;
  std::vector<std::unique_ptr<FileState>> files_;
  std::vector<std::unique_ptr<Item>> items_;
  uint64_t bytes_total_ = 0;
  std::atomic<uint64_t> bytes_done_{0};
  std::atomic<uint64_t> files_done_{0};
  std::atomic<bool> stop_{false};

  std::mutex mu_;
  std::condition_variable work_cv_, free_cv_, done_cv_;
  std::deque<Item*> free_;  // guarded by mu_
  std::deque<Item*> work_;  // guarded by mu_
  bool reader_done_ = false;  // guarded by mu_
  unsigned workers_exited_ = 0;  // guarded by mu_
  Status first_error_;  // guarded by mu_
};

}  // namespace

Status SealFiles(std::vector<SealJob>& jobs, const DatasetKey& key, const SealOptions& options) {
  Pipeline p(jobs, key, options);
  return p.Run();
}

}  // namespace cce::format
