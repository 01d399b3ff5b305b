// DecryptFS over libfuse3's low-level API. The tree is immutable while
// mounted, so the kernel may cache entries, attributes and file pages for as
// long as it likes; all the work is in read(), which goes through the
// BlockReader (authenticate every covered block or fail with EIO).
#define FUSE_USE_VERSION 312

#include "decryptfs/decryptfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/fd.h"
#include "decryptfs/file_reader.h"
#include "decryptfs/inode_table.h"

namespace cce::decryptfs {
namespace {

// Entries and attributes never change while mounted.
constexpr double kCacheSeconds = 365.0 * 24 * 3600;
// Largest read the kernel may send (FUSE's max_pages limit of 256 pages).
constexpr unsigned kMaxRead = 1u << 20;

// Where Log() writes: stderr, or the --log-file fd; syslog once detached
// without a log file (the detached server holds none of the caller's stdio,
// so `$(cce-decryptfs ...)` and pipes see EOF when the parent exits).
std::atomic<int> g_log_fd{STDERR_FILENO};
std::atomic<bool> g_log_syslog{false};

// One line in a single write, so concurrent lines do not interleave.
void Log(const std::string& line) {
  if (g_log_syslog.load()) {
    ::syslog(LOG_ERR, "%s", line.c_str());
    return;
  }
  std::string out = "cce-decryptfs: " + line + "\n";
  ssize_t ignored = ::write(g_log_fd.load(), out.data(), out.size());
  (void)ignored;
}

// libfuse's own messages take the same route.
extern "C" __attribute__((format(printf, 2, 0))) void FuseLog(enum fuse_log_level level,
                                                              const char* fmt, va_list ap) {
  if (level > FUSE_LOG_NOTICE) return;
  char buf[512];
  (void)std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string line = buf;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  Log("libfuse: " + line);
}

struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};
using SessionPtr = std::unique_ptr<fuse_session, SessionDeleter>;

struct LoopConfigDeleter {
  void operator()(fuse_loop_config* c) const { fuse_loop_cfg_destroy(c); }
};

// Unmounts on scope exit unless released (the parent of a detached server
// leaves the mount to the child).
class MountGuard {
 public:
  explicit MountGuard(fuse_session* se) : se_(se) {}
  ~MountGuard() { Unmount(); }
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;
  void Unmount() {
    if (se_ != nullptr) fuse_session_unmount(se_);
    se_ = nullptr;
  }
  void Release() { se_ = nullptr; }

 private:
  fuse_session* se_;
};

class SignalHandlerGuard {
 public:
  explicit SignalHandlerGuard(fuse_session* se) : se_(se) {}
  ~SignalHandlerGuard() { fuse_remove_signal_handlers(se_); }
  SignalHandlerGuard(const SignalHandlerGuard&) = delete;
  SignalHandlerGuard& operator=(const SignalHandlerGuard&) = delete;

 private:
  fuse_session* se_;
};

// mountinfo escapes space, tab, newline and backslash as octal.
std::string EscapeMountPath(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
      char buf[5];
      (void)std::snprintf(buf, sizeof buf, "\\%03o",
                          static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// FUSE mounts start with the kernel's default read-ahead (128 KiB), which
// INIT cannot raise; the per-mount knob is the bdi's read_ahead_kb. Larger
// read-ahead means 1 MiB requests instead of 128 KiB ones for sequential
// readers. Best effort: without the privilege to write sysfs the default
// stays, which only costs throughput.
void SetKernelReadahead(const std::string& mountpoint, unsigned kib) {
  if (kib == 0) return;
  auto info = ReadFile("/proc/self/mountinfo", size_t{64} << 20);
  if (!info.ok()) return;
  const std::string want = EscapeMountPath(mountpoint);
  std::string device;
  std::istringstream lines(*info);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    size_t sep = line.find(" - ");
    if (point != want || sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype == "fuse.cce") device = dev;  // the last match is the topmost mount
  }
  if (device.empty()) return;
  UniqueFd fd(
      ::open(("/sys/class/bdi/" + device + "/read_ahead_kb").c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return;
  std::string value = std::to_string(kib) + "\n";
  Status ignored = WriteFull(fd.get(), crypto::AsBytes(value));
  (void)ignored;
}

class DecryptFs {
 public:
  DecryptFs(MountOptions options, format::DatasetKey key, InodeTable table)
      : options_(std::move(options)),
        key_(std::move(key)),
        table_(std::move(table)),
        segment_size_(table_.manifest().segment_size),
        uid_(::getuid()),
        gid_(::getgid()) {}

  // Mounts, optionally detaches, serves until unmounted or signalled.
  Status Serve();

  // ---- FUSE operations. Each replies exactly once, as its last action. ----
  void Init(fuse_conn_info* conn);
  void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void GetAttr(fuse_req_t req, fuse_ino_t ino);
  void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  void Release(fuse_req_t req, fuse_file_info* fi);
  void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus);
  void StatFs(fuse_req_t req);
  void Access(fuse_req_t req, fuse_ino_t ino, int mask);

 private:
  struct FileHandle {
    std::shared_ptr<OpenFile> file;
  };
  // Per-file keys by inode, bounded (each key is a page of locked memory).
  static constexpr size_t kKeyCacheEntries = 1024;
  // Lower files kept open by inode when the kernel sends no OPEN (bounded:
  // the oldest is dropped, closing once its last read is done). At most
  // this many, and at most half the open-file limit (see Serve).
  static constexpr size_t kMaxInodeFiles = 1024;
  size_t max_inode_files_ = 16;
  // The open lower file of a regular file's inode, opened on first use.
  StatusOr<std::shared_ptr<OpenFile>> InodeFile(const Inode& n);

  struct stat Stat(const Inode& n) const;
  fuse_entry_param Entry(const Inode& n) const;
  Status Detach(MountGuard& mount, bool* is_parent, UniqueFd* ready);
  void CloseAllFiles();
  // Logs a failure once: the kernel retries a failed read-ahead page by
  // page, which would otherwise repeat the same line many times.
  void LogFailureOnce(const std::string& line);

  const MountOptions options_;
  format::DatasetKey key_;
  const InodeTable table_;
  const uint32_t segment_size_;
  const uid_t uid_;
  const gid_t gid_;

  // Derived file keys (locked memory, so created in the final process;
  // wiped when cleared after the session loop ends).
  KeyCache keys_{kKeyCacheEntries};

  std::mutex handles_mu_;
  // Every open file handle, so that handles the kernel never released (files
  // still open at unmount) are closed and their keys wiped on exit. Guarded
  // by handles_mu_; read() uses its handle without the lock, which is safe as
  // the kernel releases a handle only after its last read has completed.
  std::unordered_map<const FileHandle*, std::unique_ptr<FileHandle>> handles_;

  // Whether the kernel agreed to send no OPEN/RELEASE (and OPENDIR/
  // RELEASEDIR): files are then read through InodeFile, not handles.
  std::atomic<bool> no_open_{false};
  std::atomic<bool> no_opendir_{false};
  std::mutex inode_files_mu_;
  // Indexed by inode number; guarded by inode_files_mu_, as is the FIFO of
  // inodes with an open file (eviction order).
  std::vector<std::shared_ptr<OpenFile>> inode_files_;
  std::deque<uint64_t> inode_files_order_;

  std::mutex log_mu_;
  // Failure lines already logged (bounded: once full, lines are logged
  // without deduplication). Guarded by log_mu_.
  std::unordered_set<std::string> logged_;
};

DecryptFs* Fs(fuse_req_t req) {
  return static_cast<DecryptFs*>(fuse_req_userdata(req));
}

// The one exception boundary per operation: nothing escapes into libfuse.
// Operations reply last, so a throw always happens before any reply.
template <typename F>
void Guard(fuse_req_t req, const char* op, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    Log(std::string(op) + ": internal error: " + e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    Log(std::string(op) + ": internal error");
    fuse_reply_err(req, EIO);
  }
}

struct stat DecryptFs::Stat(const Inode& n) const {
  struct stat st {};
  st.st_ino = n.ino;
  st.st_mode = (n.is_dir ? S_IFDIR : S_IFREG) | n.mode;
  st.st_nlink = n.nlink;
  st.st_uid = uid_;
  st.st_gid = gid_;
  st.st_size = static_cast<off_t>(n.is_dir ? 4096 : n.size);
  st.st_blksize = static_cast<blksize_t>(segment_size_);
  st.st_blocks = static_cast<blkcnt_t>((n.size + 511) / 512);
  st.st_mtim.tv_sec = static_cast<time_t>(n.mtime);
  st.st_atim = st.st_mtim;
  st.st_ctim = st.st_mtim;
  return st;
}

fuse_entry_param DecryptFs::Entry(const Inode& n) const {
  fuse_entry_param e{};
  e.ino = n.ino;
  e.generation = 1;
  e.attr = Stat(n);
  e.attr_timeout = kCacheSeconds;
  e.entry_timeout = kCacheSeconds;
  return e;
}

void DecryptFs::Init(fuse_conn_info* conn) {
  // max_write sizes libfuse's request buffer and, through it, max_pages: 256
  // pages lets the kernel send 1 MiB reads.
  conn->max_write = kMaxRead;
  // Must equal the max_read mount option (libfuse refuses INIT otherwise).
  conn->max_read = kMaxRead;
  conn->max_readahead = kMaxRead;  // the kernel caps this at its own value
  conn->max_background = 64;       // async read-ahead requests in flight
  conn->congestion_threshold = 48;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // The small-file path: no OPEN/RELEASE round trips per file (nor
  // OPENDIR/RELEASEDIR per directory). The kernel then opens with
  // keep_cache (and cache_dir) by default; reads name the inode and are
  // served from a lower file kept open per inode.
  if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) {
    conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
    no_open_ = true;
  }
  if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) {
    conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
    no_opendir_ = true;
  }
  // Data never changes: no page-cache invalidation on attribute refresh.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  // Not FUSE_CAP_SPLICE_WRITE: it only saves a copy when replying from a file
  // descriptor (fuse_reply_data with an fd buffer). Our replies are plaintext
  // in memory, which libfuse sends with one writev either way.
}

void DecryptFs::Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  const Inode* dir = table_.Get(parent);
  if (dir == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (!dir->is_dir) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  std::string_view n(name);
  const Inode* child = n == "."    ? dir
                       : n == ".." ? table_.Get(dir->parent)
                                   : table_.Lookup(parent, n);
  if (child == nullptr) {
    // A negative entry the kernel may cache as long as a positive one.
    fuse_entry_param e{};
    e.ino = 0;
    e.entry_timeout = kCacheSeconds;
    fuse_reply_entry(req, &e);
    return;
  }
  fuse_entry_param e = Entry(*child);
  fuse_reply_entry(req, &e);
}

void DecryptFs::GetAttr(fuse_req_t req, fuse_ino_t ino) {
  const Inode* n = table_.Get(ino);
  if (n == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st = Stat(*n);
  fuse_reply_attr(req, &st, kCacheSeconds);
}

void DecryptFs::Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  const Inode* n = table_.Get(ino);
  if (n == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (n->is_dir) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_CREAT)) != 0) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (no_open_) {
    // ENOSYS tells the kernel to open this and every later file without
    // asking us (with keep_cache); reads then come with fh 0.
    fuse_reply_err(req, ENOSYS);
    return;
  }
  auto file = OpenFile::Open(options_.dataset_dir, *n->entry, key_, n->ino, segment_size_,
                             options_.direct_lower_io, &keys_);
  if (!file.ok()) {
    LogFailureOnce("open: " + file.status().message());
    fuse_reply_err(req, EIO);
    return;
  }
  auto handle = std::make_unique<FileHandle>(FileHandle{std::move(*file)});
  const FileHandle* raw = handle.get();
  {
    std::lock_guard<std::mutex> lock(handles_mu_);
    handles_.emplace(raw, std::move(handle));
  }
  fi->fh = reinterpret_cast<uint64_t>(raw);
  fi->keep_cache = 1;  // immutable: pages stay valid across opens
  fi->noflush = 1;     // nothing to flush on close
  if (fuse_reply_open(req, fi) != 0) {
    // The open was interrupted: the kernel will never release this handle.
    std::lock_guard<std::mutex> lock(handles_mu_);
    handles_.erase(raw);
  }
}

StatusOr<std::shared_ptr<OpenFile>> DecryptFs::InodeFile(const Inode& n) {
  {
    std::lock_guard<std::mutex> lock(inode_files_mu_);
    if (n.ino < inode_files_.size() && inode_files_[n.ino]) return inode_files_[n.ino];
  }
  // Opened outside the lock (open(2) may wait for the disk); a racing
  // reader of the same inode may open it too, and the first one is kept.
  ASSIGN_OR_RETURN(std::shared_ptr<OpenFile> file,
                   OpenFile::Open(options_.dataset_dir, *n.entry, key_, n.ino, segment_size_,
                                  options_.direct_lower_io, &keys_));
  std::shared_ptr<OpenFile> dropped;  // closed outside the lock
  std::lock_guard<std::mutex> lock(inode_files_mu_);
  if (inode_files_.size() <= n.ino) inode_files_.resize(table_.size() + 1);
  if (inode_files_[n.ino]) return inode_files_[n.ino];
  if (inode_files_order_.size() >= max_inode_files_) {
    dropped = std::move(inode_files_[inode_files_order_.front()]);
    inode_files_order_.pop_front();
  }
  inode_files_[n.ino] = file;
  inode_files_order_.push_back(n.ino);
  return file;
}

void DecryptFs::Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  std::shared_ptr<OpenFile> file;
  if (fi->fh != 0) {
    // fh is FUSE's 64-bit cookie for the handle Open stored in it.
    file = reinterpret_cast<const FileHandle*>(fi->fh)->file;  // NOLINT(performance-no-int-to-ptr)
  } else {
    // No OPEN was sent (FUSE_CAP_NO_OPEN_SUPPORT): the inode's lower file.
    const Inode* n = table_.Get(ino);
    if (n == nullptr || n->is_dir) {
      fuse_reply_err(req, n == nullptr ? ENOENT : EISDIR);
      return;
    }
    auto f = InodeFile(*n);
    if (!f.ok()) {
      LogFailureOnce("open: " + f.status().message());
      fuse_reply_err(req, EIO);
      return;
    }
    file = std::move(*f);
  }
  auto data = BlockReader::Read(*file, static_cast<uint64_t>(off), size);
  if (!data.ok()) {
    // Never wrong bytes and never a short read (the kernel would take it
    // for end of file): the whole request fails.
    LogFailureOnce("read: " + data.status().message());
    fuse_reply_err(req, EIO);
    return;
  }
  // Straight from this thread's plaintext buffer into the kernel.
  fuse_reply_buf(req, reinterpret_cast<const char*>(data->data()), data->size());
}

void DecryptFs::Release(fuse_req_t req, fuse_file_info* fi) {
  if (fi->fh == 0) {  // not ours (no OPEN was answered)
    fuse_reply_err(req, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(handles_mu_);
    handles_.erase(
        reinterpret_cast<const FileHandle*>(fi->fh));  // NOLINT(performance-no-int-to-ptr)
  }
  fuse_reply_err(req, 0);
}

void DecryptFs::OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  const Inode* n = table_.Get(ino);
  if (n == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (!n->is_dir) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  if ((fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (no_opendir_) {
    // As for files: no OPENDIR/RELEASEDIR from now on; the kernel caches
    // listings by default then.
    fuse_reply_err(req, ENOSYS);
    return;
  }
  fi->cache_readdir = 1;  // the kernel may keep the listing
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

void DecryptFs::ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  const Inode* dir = table_.Get(ino);
  if (dir == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (!dir->is_dir) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  // Offsets: 0 ".", 1 "..", 2 + i the i-th child; each entry carries the
  // offset of the next one.
  const size_t count = 2 + dir->children.size();
  std::vector<char> buf(size);
  size_t used = 0;
  for (auto i = static_cast<size_t>(off); i < count; ++i) {
    const Inode* n = i == 0   ? dir
                     : i == 1 ? table_.Get(dir->parent)
                              : table_.Get(dir->children[i - 2]);
    const char* name = i == 0 ? "." : i == 1 ? ".." : n->name.c_str();
    auto next = static_cast<off_t>(i + 1);
    size_t need;
    if (plus) {
      fuse_entry_param e = Entry(*n);
      need = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next);
    } else {
      struct stat st = Stat(*n);
      need = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
    }
    if (need > size - used) break;  // did not fit; the kernel asks again from here
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void DecryptFs::StatFs(fuse_req_t req) {
  struct statvfs sv {};
  sv.f_bsize = segment_size_;
  sv.f_frsize = segment_size_;
  sv.f_blocks =
      static_cast<fsblkcnt_t>((table_.total_file_bytes() + segment_size_ - 1) / segment_size_);
  sv.f_files = static_cast<fsfilcnt_t>(table_.size());
  sv.f_namemax = NAME_MAX;
  sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
  fuse_reply_statfs(req, &sv);
}

void DecryptFs::Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  if (table_.Get(ino) == nullptr) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  // Mode bits are checked by the kernel (default_permissions).
  fuse_reply_err(req, (mask & W_OK) != 0 ? EROFS : 0);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = [](void* userdata, fuse_conn_info* conn) {
    try {
      static_cast<DecryptFs*>(userdata)->Init(conn);
    } catch (...) {
      Log("init: internal error");
    }
  };
  ops.lookup = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
    Guard(req, "lookup", [&] { Fs(req)->Lookup(req, parent, name); });
  };
  // Inodes live as long as the mount: lookup counts need no tracking.
  ops.forget = [](fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); };
  ops.forget_multi = [](fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); };
  ops.getattr = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    Guard(req, "getattr", [&] { Fs(req)->GetAttr(req, ino); });
  };
  ops.open = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Guard(req, "open", [&] { Fs(req)->Open(req, ino, fi); });
  };
  ops.read = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    Guard(req, "read", [&] { Fs(req)->Read(req, ino, size, off, fi); });
  };
  ops.release = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    Guard(req, "release", [&] { Fs(req)->Release(req, fi); });
  };
  ops.opendir = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Guard(req, "opendir", [&] { Fs(req)->OpenDir(req, ino, fi); });
  };
  ops.readdir = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    Guard(req, "readdir", [&] { Fs(req)->ReadDir(req, ino, size, off, false); });
  };
  ops.readdirplus = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    Guard(req, "readdirplus", [&] { Fs(req)->ReadDir(req, ino, size, off, true); });
  };
  ops.releasedir = [](fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); };
  ops.statfs = [](fuse_req_t req, fuse_ino_t) {
    Guard(req, "statfs", [&] { Fs(req)->StatFs(req); });
  };
  ops.access = [](fuse_req_t req, fuse_ino_t ino, int mask) {
    Guard(req, "access", [&] { Fs(req)->Access(req, ino, mask); });
  };
  // No extended attributes. (Anything that would modify the tree is refused
  // by the kernel on this read-only mount before it reaches us.)
  ops.getxattr = [](fuse_req_t req, fuse_ino_t, const char*, size_t) {
    fuse_reply_err(req, ENODATA);
  };
  ops.listxattr = [](fuse_req_t req, fuse_ino_t, size_t size) {
    if (size == 0) {
      fuse_reply_xattr(req, 0);
    } else {
      fuse_reply_buf(req, nullptr, 0);
    }
  };
  return ops;
}

// Forks after the mount is up. The parent waits until the child reports it
// is serving (then returns, leaving the mount to the child) or exits (then
// reports failure). The child starts a new session and carries on.
Status DecryptFs::Detach(MountGuard& mount, bool* is_parent, UniqueFd* ready) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    *is_parent = false;
    read_end.reset();
    *ready = std::move(write_end);
    ::setsid();
    return Status::Ok();
  }
  *is_parent = true;
  write_end.reset();
  char byte = 0;
  ssize_t n;
  do {
    n = ::read(read_end.get(), &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1 && byte == 'R') {
    mount.Release();  // the child owns the mount now
    return Status::Ok();
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  std::string how = WIFEXITED(wstatus)     ? "exit status " + std::to_string(WEXITSTATUS(wstatus))
                    : WIFSIGNALED(wstatus) ? "signal " + std::to_string(WTERMSIG(wstatus))
                                           : "unknown status";
  return Internal("the detached server stopped before serving (" + how + ")");
}

void DecryptFs::LogFailureOnce(const std::string& line) {
  constexpr size_t kMaxRemembered = 4096;
  {
    std::lock_guard<std::mutex> lock(log_mu_);
    if (logged_.size() < kMaxRemembered && !logged_.insert(line).second) return;
  }
  Log(line);
}

void DecryptFs::CloseAllFiles() {
  {
    std::lock_guard<std::mutex> lock(handles_mu_);
    handles_.clear();
  }
  std::lock_guard<std::mutex> lock(inode_files_mu_);
  inode_files_.clear();
  inode_files_order_.clear();
}

Status DecryptFs::Serve() {
  std::string mount_opts =
      "ro,nosuid,nodev,default_permissions,fsname=cce-decryptfs,subtype=cce,max_read=" +
      std::to_string(kMaxRead);
  if (options_.allow_other) mount_opts += ",allow_other";
  std::string arg0 = "cce-decryptfs", arg1 = "-o";
  std::vector<char*> argv = {arg0.data(), arg1.data(), mount_opts.data(), nullptr};
  fuse_args args = FUSE_ARGS_INIT(3, argv.data());
  fuse_lowlevel_ops ops = MakeOps();
  SessionPtr se(fuse_session_new(&args, &ops, sizeof ops, this));
  fuse_opt_free_args(&args);
  if (!se) return Internal("cannot create the FUSE session (see the message above)");
  if (fuse_session_mount(se.get(), options_.mountpoint.c_str()) != 0) {
    return {StatusCode::kIo, "cannot mount at " + options_.mountpoint +
                                 " (see the message above; is /dev/fuse available?)"};
  }
  MountGuard mount(se.get());
  SetKernelReadahead(options_.mountpoint, options_.kernel_readahead_kib);

  UniqueFd ready;
  if (!options_.foreground) {
    bool is_parent = false;
    RETURN_IF_ERROR(Detach(mount, &is_parent, &ready));
    if (is_parent) return Status::Ok();
    // Memory locks are not inherited across fork: move the key into freshly
    // locked memory (the old copy is wiped).
    ASSIGN_OR_RETURN(format::DatasetKey relocked, format::DatasetKey::FromBytes(key_.bytes()));
    key_ = std::move(relocked);
  }

  // Lower files stay open per inode: raise the soft open-file limit to the
  // hard one (commonly 1024 -> 524288) and use at most half of it.
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur < nofile.rlim_max) {
      struct rlimit raised = nofile;
      raised.rlim_cur = nofile.rlim_max;
      if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
    }
    max_inode_files_ =
        static_cast<size_t>(std::clamp<rlim_t>(nofile.rlim_cur / 2, 16, kMaxInodeFiles));
  }

  if (fuse_set_signal_handlers(se.get()) != 0) return Internal("cannot install signal handlers");
  SignalHandlerGuard signals(se.get());

  if (ready.valid()) {
    // Serving from here on: let the parent exit, and detach from the
    // terminal and every stdio stream of the caller (a kept stderr would hold
    // a caller's pipe open forever). Messages go to --log-file or syslog.
    if (g_log_fd.load() == STDERR_FILENO) {
      ::openlog("cce-decryptfs", LOG_PID, LOG_DAEMON);
      g_log_syslog = true;
    }
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (null.valid()) {
      ::dup2(null.get(), STDIN_FILENO);
      ::dup2(null.get(), STDOUT_FILENO);
      ::dup2(null.get(), STDERR_FILENO);
    }
    // All paths are absolute. (A failed chdir only keeps the old directory
    // busy; the if silences warn_unused_result.)
    if (::chdir("/") != 0) {
    }
    char byte = 'R';
    Status s = WriteFull(ready.get(), {reinterpret_cast<const uint8_t*>(&byte), 1});
    (void)s;
    ready.reset();
  }

  std::unique_ptr<fuse_loop_config, LoopConfigDeleter> config(fuse_loop_cfg_create());
  if (!config) return Internal("cannot create the FUSE loop configuration");
  fuse_loop_cfg_set_clone_fd(config.get(), 1);
  fuse_loop_cfg_set_max_threads(config.get(), options_.threads);
  fuse_loop_cfg_set_idle_threads(config.get(), options_.threads);
  int rc = fuse_session_loop_mt(se.get(), config.get());

  // Unmount first (nothing new arrives), then close what the kernel left
  // open and wipe the cached file keys; key_ is wiped by its owner. The
  // worker threads' plaintext buffers were wiped when they exited.
  mount.Unmount();
  CloseAllFiles();
  keys_.Clear();
  // rc > 0: stopped by a signal; 0: unmounted from outside. Both are clean.
  if (rc < 0) return ErrnoStatus("FUSE session", -rc);
  return Status::Ok();
}

StatusOr<std::string> ExistingDir(const std::string& path, const std::string& what) {
  if (path.empty()) return InvalidArgument(what + ": empty path");
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr), &std::free);
  // ENOTCONN: a FUSE server died without unmounting; say how to recover.
  const auto failed = [&](int err) {
    if (err == ENOTCONN) {
      return InvalidArgument(what + " " + path +
                             ": transport endpoint is not connected: a DecryptFS (or other FUSE) "
                             "server was killed and left its mount; detach it with "
                             "`fusermount3 -u " +
                             path + "` and mount again");
    }
    return InvalidArgument(what + " " + path + ": " + std::strerror(err));
  };
  if (!real) return failed(errno);
  struct stat st {};
  if (::stat(real.get(), &st) != 0) return failed(errno);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(what + " " + path + ": not a directory");
  return std::string(real.get());
}

// True if `dir` (a real path) is the mount point of a mount in this
// namespace (/proc/self/mountinfo field 5).
StatusOr<bool> IsMountPoint(const std::string& dir) {
  UniqueFd fd(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("/proc/self/mountinfo", errno);
  ASSIGN_OR_RETURN(std::string info, ReadAll(fd.get(), size_t{64} << 20, "/proc/self/mountinfo"));
  const std::string want = EscapeMountPath(dir);
  std::istringstream lines(info);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mountpoint;
    if (fields >> id >> parent >> devno >> root >> mountpoint && mountpoint == want) return true;
  }
  return false;
}

// Mounting over files hides them; stacking on a mount hides the first one
// (often our own server, started twice). Both need -o nonempty.
Status CheckMountPoint(const std::string& dir) {
  ASSIGN_OR_RETURN(bool mounted, IsMountPoint(dir));
  if (mounted) {
    return InvalidArgument("mount point " + dir +
                           ": already a mount point (is DecryptFS already mounted there? "
                           "unmount it with `fusermount3 -u " +
                           dir + "`); use -o nonempty to mount on top of it anyway");
  }
  struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, DirCloser> d(::opendir(dir.c_str()));
  if (!d) return InvalidArgument("mount point " + dir + ": " + std::strerror(errno));
  while (const dirent* e = ::readdir(d.get())) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      return InvalidArgument("mount point " + dir +
                             ": not empty (mounting would hide its files); use an empty "
                             "directory, or -o nonempty to mount over it anyway");
    }
  }
  return Status::Ok();
}

}  // namespace

Status RunDecryptFs(const MountOptions& options, format::DatasetKey key) {
  MountOptions o = options;
  ASSIGN_OR_RETURN(o.dataset_dir, ExistingDir(options.dataset_dir, "encrypted dataset directory"));
  ASSIGN_OR_RETURN(o.mountpoint, ExistingDir(options.mountpoint, "mount point"));
  if (o.threads == 0) return InvalidArgument("threads: expected at least 1");
  if (!o.nonempty) RETURN_IF_ERROR(CheckMountPoint(o.mountpoint));
  UniqueFd log_fd;
  if (!o.log_file.empty()) {
    log_fd.reset(
        ::open(o.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!log_fd.valid()) return ErrnoStatus("--log-file " + o.log_file, errno);
  }
  // Authenticate the manifest before mounting anything: a wrong key or a
  // tampered dataset fails here, visibly, with nothing mounted.
  ASSIGN_OR_RETURN(format::Manifest manifest, format::ReadManifest(o.dataset_dir, key));
  // A whole older dataset (rollback) or another dataset (substitution)
  // authenticates under the same key: refused here when the caller says
  // which id and version it expects.
  RETURN_IF_ERROR(format::CheckDatasetIdentity(manifest, o.expect_dataset_id, o.min_dataset_version,
                                               o.dataset_dir));
  // A deleted, renamed or added object is refused up front as well.
  RETURN_IF_ERROR(format::CheckObjectSet(o.dataset_dir, manifest));
  ASSIGN_OR_RETURN(InodeTable table, InodeTable::Build(std::move(manifest)));
  if (log_fd.valid()) g_log_fd = log_fd.get();
  fuse_set_log_func(FuseLog);
  auto fs = std::make_unique<DecryptFs>(std::move(o), std::move(key), std::move(table));
  Status s = fs->Serve();
  g_log_fd = STDERR_FILENO;
  return s;
}

}  // namespace cce::decryptfs
