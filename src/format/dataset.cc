// Whole-dataset operations: encrypt a tree, verify and decrypt a dataset.
// Encryption runs through the reader -> encrypt/write pipeline of
// pipeline.cc. Verify and decrypt split the work into chunks of segments
// (about 1 MiB each) that a small pool of threads opens in parallel, so one
// large file uses every core.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "format/format.h"
#include "format/internal.h"
#include "format/pipeline.h"

namespace cce::format {
namespace {

namespace fs = std::filesystem;
constexpr size_t kChunkBytes = size_t{1} << 20;
constexpr size_t kMaxReportedFailures = 20;

unsigned ThreadCount(unsigned requested) {
  if (requested > 0) return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 2 : hw;
}

std::string RandomHexId() {
  std::array<uint8_t, 16> b{};
  // RandomBytes only fails if the kernel CSPRNG is unavailable; then abort
  // rather than produce predictable ids.
  if (!crypto::RandomBytes(b).ok()) std::abort();
  return crypto::ToHex(b);
}

std::string NowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "";
  return buf;
}

// Staging directories are ".<dst name>.partial-<12 hex>" siblings of dst.
std::string StagingPrefix(const fs::path& dst) {
  return "." + dst.filename().string() + ".partial-";
}

bool IsStagingName(const std::string& name, const std::string& prefix) {
  if (!name.starts_with(prefix) || name.size() != prefix.size() + 12) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Removes a staging directory with its marker last, so a run killed while
// removing it still leaves a marked directory that the next run recognises.
void RemoveStagingTree(const std::string& path) {
  std::error_code ec;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename() == kPartialMarkerName) continue;
    std::error_code rm;
    fs::remove_all(it->path(), rm);
  }
  std::error_code rm;
  fs::remove_all(path, rm);
}

// Removes the staging directories of earlier runs on dst that were killed
// (SIGKILL, power loss) before they could clean up. A directory counts only
// if it carries our marker file and no live process holds the marker's lock
// (flock locks die with their process), so a concurrent run is never touched.
void RemoveAbandonedStaging(const fs::path& parent, const fs::path& dst) {
  const std::string prefix = StagingPrefix(dst);
  std::error_code ec;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!IsStagingName(name, prefix)) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    const std::string marker = it->path().string() + "/" + kPartialMarkerName;
    UniqueFd fd(::open(marker.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) continue;  // not ours, or a run already committing
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // still running
    RemoveStagingTree(it->path().string());
  }
}

// A sibling temporary directory of dst, renamed into place on success and
// removed on failure or cancellation: a reader never sees a half-written tree
// at dst. While it exists it holds kPartialMarkerName, flock()ed by this run.
class StagingDir {
 public:
  static StatusOr<StagingDir> Create(const std::string& dst) {
    struct stat st {};
    if (::lstat(dst.c_str(), &st) == 0)
      return AlreadyExists(dst + ": already exists; refusing to overwrite");
    if (errno != ENOENT) return ErrnoStatus(dst, errno);
    fs::path p(dst);
    if (p.filename().empty()) p = p.parent_path();
    fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    RemoveAbandonedStaging(parent, p);
    StagingDir s;
    s.dst_ = dst;
    s.path_ = (parent / (StagingPrefix(p) + RandomHexId().substr(0, 12))).string();
    if (::mkdir(s.path_.c_str(), 0700) != 0) return ErrnoStatus("create " + s.path_, errno);
    s.active_ = true;
    s.marker_path_ = s.path_ + "/" + kPartialMarkerName;
    s.marker_.reset(
        ::open(s.marker_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!s.marker_.valid()) return ErrnoStatus("create " + s.marker_path_, errno);
    if (::flock(s.marker_.get(), LOCK_EX) != 0) return ErrnoStatus("lock " + s.marker_path_, errno);
    return s;
  }
  StagingDir(StagingDir&& o) noexcept
      : path_(std::move(o.path_)),
        dst_(std::move(o.dst_)),
        marker_path_(std::move(o.marker_path_)),
        marker_(std::move(o.marker_)),
        active_(o.active_) {
    o.active_ = false;
  }
  StagingDir& operator=(StagingDir&&) = delete;
  ~StagingDir() {
    if (active_) RemoveStagingTree(path_);
  }
  const std::string& path() const { return path_; }

  // Syncs the staged tree and renames it to dst without replacing anything.
  Status Commit(mode_t final_mode) {
    // The marker goes first: the committed tree must not carry it.
    if (::unlink(marker_path_.c_str()) != 0) return ErrnoStatus("remove " + marker_path_, errno);
    UniqueFd dir(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return ErrnoStatus(path_, errno);
    if (::syncfs(dir.get()) != 0) return ErrnoStatus("syncfs " + path_, errno);
    if (::fchmod(dir.get(), final_mode) != 0) return ErrnoStatus("chmod " + path_, errno);
    if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, dst_.c_str(), RENAME_NOREPLACE) != 0) {
      return ErrnoStatus("rename " + path_ + " to " + dst_, errno);
    }
    active_ = false;
    marker_.reset();
    fs::path parent = fs::path(dst_).parent_path();
    UniqueFd pfd(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (pfd.valid()) ::fsync(pfd.get());
    return Status::Ok();
  }

 private:
  StagingDir() = default;
  std::string path_;
  std::string dst_;
  std::string marker_path_;
  UniqueFd marker_;  // holds the flock while the run lives
  bool active_ = false;
};

Status Cancelled(std::string_view verb) {
  return FailedPrecondition(std::string(verb) + ": interrupted; the partial output was removed");
}

bool IsCancelled(const std::atomic<bool>* cancel) {
  return cancel != nullptr && cancel->load();
}

// One file's share of the parallel work. Open() runs before its first chunk
// and Close() after its last, each exactly once, under the task's mutex.
class FileTask {
 public:
  virtual ~FileTask() = default;
  virtual uint64_t SegmentCount() const = 0;
  virtual uint32_t SegmentSize() const = 0;
  virtual Status Open() = 0;
  virtual Status Process(uint64_t first, uint64_t count, std::vector<uint8_t>& a,
                         std::vector<uint8_t>& b) = 0;
  virtual Status Close() = 0;
  virtual std::string Name() const = 0;

  std::mutex mu;
  bool opened = false;       // guarded by mu
  bool failed = false;       // guarded by mu
  uint64_t chunks_left = 0;  // guarded by mu
};

struct Chunk {
  size_t task;
  uint64_t first;
  uint64_t count;
};

struct RunResult {
  std::vector<std::pair<size_t, Status>> failures;  // (task index, status), by task order
};

// Runs every chunk of every task on `threads` threads. With stop_on_error the
// first failure stops all work (encrypt); otherwise only the failing file's
// remaining chunks are skipped (verify reports every bad file).
RunResult RunTasks(std::vector<std::unique_ptr<FileTask>>& tasks, unsigned threads,
                   bool stop_on_error, const ProgressFn& progress, uint64_t bytes_total,
                   const std::atomic<bool>* cancel) {
  std::vector<Chunk> chunks;
  for (size_t t = 0; t < tasks.size(); ++t) {
    uint64_t n = tasks[t]->SegmentCount();
    uint64_t per = std::max<uint64_t>(1, kChunkBytes / tasks[t]->SegmentSize());
    uint64_t count = 0;
    for (uint64_t s = 0; s < n; s += per, ++count) chunks.push_back({t, s, std::min(per, n - s)});
    tasks[t]->chunks_left = count;
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> files_done{0};
  std::mutex fail_mu;
  RunResult result;  // failures guarded by fail_mu

  auto fail = [&](size_t t, Status s) {
    std::lock_guard<std::mutex> l(fail_mu);
    result.failures.emplace_back(t, std::move(s));
    if (stop_on_error) stop = true;
  };

  auto worker = [&] {
    std::vector<uint8_t> a, b;
    for (;;) {
      if (stop || IsCancelled(cancel)) return;
      size_t i = next.fetch_add(1);
      if (i >= chunks.size()) return;
      const Chunk& c = chunks[i];
      FileTask& task = *tasks[c.task];
      {
        std::lock_guard<std::mutex> l(task.mu);
        if (task.failed) continue;
        if (!task.opened) {
          Status s = task.Open();
          task.opened = true;
          if (!s.ok()) {
            task.failed = true;
            fail(c.task, std::move(s));
            continue;
          }
        }
      }
      Status s = task.Process(c.first, c.count, a, b);
      bool last = false;
      {
        std::lock_guard<std::mutex> l(task.mu);
        if (!s.ok()) {
          if (!task.failed) fail(c.task, std::move(s));
          task.failed = true;
        } else if (--task.chunks_left == 0 && !task.failed) {
          last = true;
          Status cs = task.Close();
          if (!cs.ok()) {
            task.failed = true;
            fail(c.task, std::move(cs));
          }
        }
      }
      uint64_t seg = task.SegmentSize();
      bytes_done += c.count * seg;
      if (last) ++files_done;
    }
  };

  std::vector<std::thread> pool;
  unsigned n = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(chunks.size())));
  for (unsigned i = 0; i < n; ++i) pool.emplace_back(worker);
  if (progress) {
    // Poll from this thread; workers never call back into the caller.
    while (next.load() < chunks.size() && !stop && !IsCancelled(cancel)) {
      progress(
          {std::min(bytes_done.load(), bytes_total), bytes_total, files_done.load(), tasks.size()});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  for (auto& t : pool) t.join();
  if (progress) progress({bytes_total, bytes_total, files_done.load(), tasks.size()});
  std::sort(result.failures.begin(), result.failures.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  return result;
}

Status FailuresToStatus(const RunResult& r, std::string_view verb) {
  if (r.failures.empty()) return Status::Ok();
  std::string m = std::string(verb) + " failed for " + std::to_string(r.failures.size()) +
                  (r.failures.size() == 1 ? " file" : " files");
  size_t shown = 0;
  for (const auto& [t, s] : r.failures) {
    if (shown++ == kMaxReportedFailures) {
      m += "\n  ... and " + std::to_string(r.failures.size() - kMaxReportedFailures) + " more";
      break;
    }
    m += "\n  " + s.message();
  }
  StatusCode code = r.failures.front().second.code();
  return {code, m};
}

// ---- Encryption (the pipeline is in pipeline.cc) ----

// Lists src as sorted manifest entries (directories and regular files only).
StatusOr<std::vector<ManifestEntry>> ScanTree(const std::string& src) {
  std::vector<ManifestEntry> entries;
  std::error_code ec;
  fs::recursive_directory_iterator it(src, fs::directory_options::none, ec), end;
  if (ec) return InvalidArgument(src + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return InvalidArgument(src + ": " + ec.message());
    const fs::path& p = it->path();
    std::string rel = p.lexically_relative(src).generic_string();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return ErrnoStatus(p.string(), errno);
    Status ps = ValidateRelativePath(rel);
    if (!ps.ok()) return InvalidArgument(p.string() + ": " + ps.message());
    ManifestEntry e;
    e.path = rel;
    e.mode = st.st_mode & 07777;
    e.mtime = st.st_mtim.tv_sec;
    if (S_ISDIR(st.st_mode)) {
      e.type = ManifestEntry::Type::kDirectory;
    } else if (S_ISREG(st.st_mode)) {
      e.type = ManifestEntry::Type::kFile;
      e.size = static_cast<uint64_t>(st.st_size);
    } else {
      return InvalidArgument(p.string() +
                             ": not a regular file or directory (symlinks and special files "
                             "are not supported)");
    }
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  return entries;
}

Status WriteSealedFile(const std::string& path, const DatasetKey& key, FileKind kind,
                       std::string_view plaintext) {
  ASSIGN_OR_RETURN(FileCipher c, FileCipher::ForWriting(key, kind, plaintext.size()));
  const Geometry& g = c.geometry();
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus(path, errno);
  std::vector<uint8_t> out(g.CiphertextSize());
  std::copy(c.header_bytes().begin(), c.header_bytes().end(), out.begin());
  auto* in = reinterpret_cast<const uint8_t*>(plaintext.data());
  RETURN_IF_ERROR(c.SealRun(0, g.SegmentCount(), {in, plaintext.size()},
                            std::span<uint8_t>(out).subspan(kHeaderSize)));
  return WriteFull(fd.get(), out);
}

}  // namespace

StatusOr<Summary> EncryptDataset(const std::string& src, const std::string& dst,
                                 const DatasetKey& key, const EncryptOptions& options) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) return ErrnoStatus(src, errno);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(src + ": not a directory");
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> entries, ScanTree(src));
  ASSIGN_OR_RETURN(StagingDir staging, StagingDir::Create(dst));
  std::string objects = staging.path() + "/" + kObjectsDir;
  if (::mkdir(objects.c_str(), 0755) != 0) return ErrnoStatus(objects, errno);

  Summary summary;
  std::vector<SealJob> jobs;
  std::vector<ManifestEntry*> job_entries;
  for (ManifestEntry& e : entries) {
    if (e.type == ManifestEntry::Type::kDirectory) {
      ++summary.directories;
      continue;
    }
    e.id = RandomHexId();
    ++summary.files;
    summary.plaintext_bytes += e.size;
    jobs.push_back({src + "/" + e.path, objects + "/" + e.id, e.size, {}});
    job_entries.push_back(&e);
    summary.ciphertext_bytes += Geometry{kBlockSize, e.size}.CiphertextSize();
  }
  SealOptions so;
  so.threads = ThreadCount(options.threads);
  so.progress = options.progress;
  so.cancel = options.cancel;
  Status sealed = SealFiles(jobs, key, so);
  if (IsCancelled(options.cancel)) return Cancelled("encrypt");
  if (!sealed.ok()) return Status(sealed.code(), "encrypt failed for 1 file\n  " + sealed.message());
  for (size_t i = 0; i < jobs.size(); ++i) job_entries[i]->header_sha256 = jobs[i].header_sha256;

  Manifest m;
  m.dataset_id = options.dataset_id.empty() ? RandomHexId() : options.dataset_id;
  m.dataset_version = options.dataset_version;
  m.segment_size = kBlockSize;
  m.created_at = NowRfc3339();
  m.entries = std::move(entries);
  std::string json = m.ToJson();
  // Validate what we are about to seal with the same parser readers use.
  RETURN_IF_ERROR(Manifest::FromJson(json).status().WithContext("internal: manifest"));
  // The manifest is written last: a staging dir without it never verifies.
  RETURN_IF_ERROR(
      WriteSealedFile(staging.path() + "/" + kManifestName, key, FileKind::kManifest, json));
  RETURN_IF_ERROR(staging.Commit(0755));
  summary.ciphertext_bytes += Geometry{m.segment_size, json.size()}.CiphertextSize();
  summary.dataset_id = m.dataset_id;
  summary.dataset_version = m.dataset_version;
  return summary;
}

// ---- Reading ----

StatusOr<OpenedObject> OpenObject(const std::string& dataset_dir, const ManifestEntry& entry,
                                  const DatasetKey& key) {
  std::string path = ObjectPath(dataset_dir, entry.id);
  std::string what = "'" + entry.path + "' (" + kObjectsDir + "/" + entry.id + ")";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return DataLoss(what + ": object missing (deleted or renamed)");
    return ErrnoStatus(what, errno);
  }
  std::array<uint8_t, kHeaderSize> hb{};
  ASSIGN_OR_RETURN(size_t got, PreadFull(fd.get(), hb, 0));
  if (got != kHeaderSize) return DataLoss(what + ": shorter than the 68-byte header");
  if (!crypto::ConstantTimeEquals(crypto::Sha256(hb), entry.header_sha256)) {
    return DataLoss(what +
                    ": header digest differs from the manifest (tampered, swapped or rolled back)");
  }
  auto cipher = FileCipher::ForReading(key, hb, FileKind::kData);
  if (!cipher.ok()) return cipher.status().WithContext(what);
  if (cipher->geometry().plaintext_size != entry.size) {
    return DataLoss(what + ": header size differs from the manifest");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(what, errno);
  if (static_cast<uint64_t>(st.st_size) != cipher->geometry().CiphertextSize()) {
    return DataLoss(what + ": " + std::to_string(st.st_size) + " bytes, expected " +
                    std::to_string(cipher->geometry().CiphertextSize()) +
                    " (truncated or extended)");
  }
  return OpenedObject{std::move(fd), std::move(*cipher)};
}

Status CheckObjectSet(const std::string& dataset_dir, const Manifest& manifest) {
  std::map<std::string, const ManifestEntry*> want;
  for (const auto& e : manifest.entries) {
    if (e.type == ManifestEntry::Type::kFile) want[e.id] = &e;
  }
  std::string objects = dataset_dir + "/" + kObjectsDir;
  std::error_code ec;
  std::set<std::string> seen;
  for (fs::directory_iterator it(objects, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!want.count(name)) {
      return DataLoss(std::string(kObjectsDir) + "/" + name +
                      ": object not named in the manifest (added, renamed, or a foreign "
                      "manifest)");
    }
    seen.insert(name);
  }
  if (ec) return DataLoss(objects + ": " + ec.message());
  for (const auto& [id, e] : want) {
    if (!seen.count(id)) {
      return DataLoss("'" + e->path + "' (" + kObjectsDir + "/" + id +
                      "): object missing (deleted or renamed)");
    }
  }
  return Status::Ok();
}

Status CheckDatasetIdentity(const Manifest& m, const std::optional<std::string>& expect_dataset_id,
                            const std::optional<uint64_t>& min_dataset_version,
                            const std::string& where) {
  if (expect_dataset_id && m.dataset_id != *expect_dataset_id) {
    return DataLoss(where + ": dataset id '" + m.dataset_id + "', expected '" + *expect_dataset_id +
                    "' (a different dataset was substituted)");
  }
  if (min_dataset_version && m.dataset_version < *min_dataset_version) {
    return DataLoss(where + ": dataset version " + std::to_string(m.dataset_version) +
                    ", expected at least " + std::to_string(*min_dataset_version) +
                    " (rolled back?)");
  }
  return Status::Ok();
}

namespace {

// Opens and authenticates one file; optionally writes its plaintext.
class ReadTask : public FileTask {
 public:
  ReadTask(const std::string& dir, const ManifestEntry& entry, const DatasetKey& key,
           std::string out_path)
      : dir_(dir),
        entry_(entry),
        key_(key),
        out_path_(std::move(out_path)),
        geometry_{0, entry.size} {}

  void SetSegmentSize(uint32_t s) { geometry_.segment_size = s; }
  uint64_t SegmentCount() const override { return geometry_.SegmentCount(); }
  uint32_t SegmentSize() const override { return geometry_.segment_size; }
  std::string Name() const override { return entry_.path; }

  Status Open() override {
    ASSIGN_OR_RETURN(OpenedObject o, OpenObject(dir_, entry_, key_));
    if (o.cipher.geometry().segment_size != geometry_.segment_size) {
      return DataLoss("'" + entry_.path + "': segment size differs from the manifest");
    }
    ::posix_fadvise(o.fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    in_ = std::move(o.fd);
    cipher_ = std::make_unique<FileCipher>(std::move(o.cipher));
    if (!out_path_.empty()) {
      out_.reset(::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!out_.valid()) return ErrnoStatus(out_path_, errno);
      if (::ftruncate(out_.get(), static_cast<off_t>(entry_.size)) != 0) {
        return ErrnoStatus(out_path_, errno);
      }
    }
    return Status::Ok();
  }

  Status Process(uint64_t first, uint64_t count, std::vector<uint8_t>& sealed,
                 std::vector<uint8_t>& plain) override {
    const Geometry& g = geometry_;
    uint64_t plain_start = first * g.segment_size;
    uint64_t plain_end = std::min(entry_.size, (first + count) * g.segment_size);
    sealed.resize(plain_end - plain_start + count * kTagSize);
    plain.resize(plain_end - plain_start);
    ASSIGN_OR_RETURN(size_t got, PreadFull(in_.get(), sealed, g.SegmentOffset(first)));
    // One call authenticates the whole run (a short read is a truncated file).
    Status s = cipher_->OpenRun(first, count, {sealed.data(), got}, plain);
    if (!s.ok()) return s.WithContext(Where());
    if (out_.valid()) {
      s = PwriteFull(out_.get(), plain, plain_start);
      if (!s.ok()) return s.WithContext(out_path_);
    }
    return Status::Ok();
  }

  Status Close() override {
    if (out_.valid()) {
      if (::fchmod(out_.get(), entry_.mode & 0777) != 0) return ErrnoStatus(out_path_, errno);
      struct timespec ts[2] = {{entry_.mtime, 0}, {entry_.mtime, 0}};
      ::futimens(out_.get(), ts);
    }
    in_.reset();
    out_.reset();
    cipher_.reset();
    return Status::Ok();
  }

 private:
  std::string Where() const {
    return "'" + entry_.path + "' (" + kObjectsDir + "/" + entry_.id + ")";
  }
  const std::string& dir_;
  const ManifestEntry& entry_;
  const DatasetKey& key_;
  std::string out_path_;
  Geometry geometry_;
  UniqueFd in_, out_;
  std::unique_ptr<FileCipher> cipher_;
};

StatusOr<Summary> ReadDataset(const std::string& src, const std::string& dst, const DatasetKey& key,
                              const ReadOptions& options) {
  ASSIGN_OR_RETURN(Manifest m, ReadManifest(src, key));
  RETURN_IF_ERROR(
      CheckDatasetIdentity(m, options.expect_dataset_id, options.min_dataset_version, src));
  RETURN_IF_ERROR(CheckObjectSet(src, m));
  std::optional<StagingDir> staging;
  if (!dst.empty()) {
    ASSIGN_OR_RETURN(StagingDir s, StagingDir::Create(dst));
    staging.emplace(std::move(s));
  }
  Summary summary;
  summary.dataset_id = m.dataset_id;
  summary.dataset_version = m.dataset_version;
  std::vector<std::unique_ptr<FileTask>> tasks;
  for (const ManifestEntry& e : m.entries) {
    std::string out = staging ? staging->path() + "/" + e.path : std::string();
    if (e.type == ManifestEntry::Type::kDirectory) {
      ++summary.directories;
      if (staging && ::mkdir(out.c_str(), 0700) != 0) return ErrnoStatus(out, errno);
      continue;
    }
    ++summary.files;
    summary.plaintext_bytes += e.size;
    summary.ciphertext_bytes += Geometry{m.segment_size, e.size}.CiphertextSize();
    auto t = std::make_unique<ReadTask>(src, e, key, out);
    t->SetSegmentSize(m.segment_size);
    tasks.push_back(std::move(t));
  }
  RunResult r = RunTasks(tasks, ThreadCount(options.threads), /*stop_on_error=*/!dst.empty(),
                         options.progress, summary.plaintext_bytes, options.cancel);
  if (IsCancelled(options.cancel)) return Cancelled(dst.empty() ? "verify" : "decrypt");
  RETURN_IF_ERROR(FailuresToStatus(r, dst.empty() ? "verify" : "decrypt"));
  if (staging) {
    // Directory modes last (in reverse so a read-only parent does not block its children).
    for (size_t i = m.entries.size(); i-- > 0;) {
      const ManifestEntry& e = m.entries[i];
      if (e.type != ManifestEntry::Type::kDirectory) continue;
      std::string p = staging->path() + "/" + e.path;
      if (::chmod(p.c_str(), e.mode & 0777) != 0) return ErrnoStatus(p, errno);
    }
    RETURN_IF_ERROR(staging->Commit(0755));
  }
  return summary;
}

}  // namespace

StatusOr<Summary> VerifyDataset(const std::string& dir, const DatasetKey& key,
                                const ReadOptions& options) {
  return ReadDataset(dir, "", key, options);
}

StatusOr<Summary> DecryptDataset(const std::string& src, const std::string& dst,
                                 const DatasetKey& key, const ReadOptions& options) {
  if (dst.empty()) return InvalidArgument("decrypt: empty destination");
  return ReadDataset(src, dst, key, options);
}

}  // namespace cce::format
